"""Getting the datasets: resumable, verified, all-or-nothing downloads, and
:func:`ensure_dataset`, which returns a dataset folder ready to index.

* :func:`download_file` fetches one URL into ``<name>.part`` and resumes an interrupted
  transfer with an HTTP ``Range`` request; the file gets its final name only when it is
  complete (and its SHA-256 matches, when known).
* :func:`download_dataset` fetches every file of a registry entry, extracts the zips into
  a temporary folder next to the target, checks the class folders and image counts, and
  only then renames the folder to its final name (:func:`covidlib.utils.fileio.atomic_dir`).
  Without a network it fails at once (short timeout, no retries) and says which URL to
  fetch by hand and where to put it.

COVID19-CT comes from its GitHub repository. SARS-CoV-2 CT comes from Kaggle (via
``kagglehub``) when Kaggle credentials are set up; otherwise from its public mirror (a
repository snapshot, :class:`covidlib.data.registry.ArchiveMirror`), every image checked
against the SHA-256 table shipped with covidlib. Or download the Kaggle zip yourself and put
it into the target folder.

Example:
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> root = pathlib.Path(tempfile.mkdtemp()) / "covid19-ct"
    >>> for folder in ("CT_COVID", "CT_NonCOVID"):
    ...     (root / folder).mkdir(parents=True)
    ...     Image.new("L", (8, 6)).save(root / folder / "a.png")
    >>> ensure_dataset("covid19-ct", root) == root
    True
    >>> count_class_files(find_layout("covid19-ct", root))
    {'COVID': 1, 'non-COVID': 1}
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from covidlib.data.index import (
    DatasetLayoutError,
    extract_archives,
    find_layout,
    is_ignored_name,
    walk_visible_files,
)
from covidlib.data.phantom import (
    PATIENT_PHANTOM,
    PhantomExistsError,
    ensure_patient_phantom,
    ensure_phantom,
)
from covidlib.data.registry import DatasetSpec, default_root, get_dataset
from covidlib.utils.fileio import atomic_dir, sha256_file

if TYPE_CHECKING:
    from covidlib.config import Profile

__all__ = [
    "DownloadError",
    "count_class_files",
    "download_dataset",
    "download_file",
    "download_lesion_masks",
    "ensure_dataset",
    "kaggle_configured",
    "pixel_digest",
]

DEFAULT_TIMEOUT = 15.0
_CHUNK = 1 << 16


class DownloadError(RuntimeError):
    """A download that could not be completed (offline, bad checksum, wrong content)."""


def _offline_message(url: str, dest: Path, reason: object) -> str:
    return (
        f"cannot download {url}: {reason}. Are you offline? Fetch that URL by hand and "
        f"put the file at {dest} (folder {dest.parent}), then run the command again."
    )


def download_file(
    url: str,
    dest: str | Path,
    *,
    sha256: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    opener: Any | None = None,
) -> Path:
    """Download ``url`` to ``dest``, resuming a previous partial download.

    Bytes go to ``dest`` + ``.part``; when that exists, only the rest is requested
    (``Range: bytes=N-``). A server that ignores the range sends everything again.

    Args:
        url: ``http(s)://`` or ``file://`` URL.
        dest: final file path; an existing complete file is kept (and checked).
        sha256: expected hex digest; a mismatch removes the file and raises.
        timeout: seconds to wait for the connection and for each read.
        opener: a :class:`urllib.request.OpenerDirector` (tests pass fakes).

    Raises:
        DownloadError: unreachable server, HTTP error, incomplete transfer (run again
            to resume) or checksum mismatch.

    Example:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / "remote.bin").write_bytes(b"payload")
        >>> download_file((folder / "remote.bin").as_uri(), folder / "local" / "a.bin").read_bytes()
        b'payload'
    """
    target = Path(dest)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_file():
        _verify(target, sha256, url)
        return target
    part = target.with_name(target.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "covidlib"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    client = opener or urllib.request.build_opener()
    try:
        response = client.open(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and have:  # nothing left to send: the part is complete
            os.replace(part, target)
            _verify(target, sha256, url)
            return target
        raise DownloadError(
            _offline_message(url, target, f"HTTP {error.code} {error.reason}")
        ) from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise DownloadError(_offline_message(url, target, reason)) from None

    with contextlib.closing(response):
        status = getattr(response, "status", None) or response.getcode() or 200
        resumed = have > 0 and status == 206
        length = response.headers.get("Content-Length")
        expected_total = (int(length) + (have if resumed else 0)) if length else None
        try:
            with open(part, "ab" if resumed else "wb") as handle:
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    handle.write(chunk)
        except OSError as error:
            raise DownloadError(
                f"download of {url} was interrupted ({error}); run the command again to "
                f"resume from {part}."
            ) from None
    size = part.stat().st_size
    if expected_total is not None and size < expected_total:
        raise DownloadError(
            f"download of {url} stopped after {size} of {expected_total} bytes; run the "
            f"command again to resume from {part}."
        )
    os.replace(part, target)
    _verify(target, sha256, url)
    return target


def _verify(path: Path, sha256: str | None, url: str) -> None:
    if sha256 is None:
        return
    actual = sha256_file(path)
    if actual.lower() != sha256.lower():
        path.unlink()
        raise DownloadError(
            f"checksum mismatch for {path} from {url}: expected sha256 {sha256}, got "
            f"{actual}. The file was removed; download it again."
        )


def count_class_files(folders: dict[str, Path]) -> dict[str, int]:
    """Count the visible files below each class folder (no decoding).

    Example:
        >>> count_class_files({})
        {}
    """
    return {
        class_name: sum(1 for _ in walk_visible_files(folder))
        for class_name, folder in folders.items()
    }


def _validate(spec: DatasetSpec, root: Path) -> str | None:
    """Check the layout and counts of a finished folder; return the matched variant."""
    folders = find_layout(spec.name, root, extract=False)
    counts = count_class_files(folders)
    found = (counts[spec.classes[0].name], counts[spec.classes[1].name])
    if not spec.expected_counts:
        return None
    for variant in spec.expected_counts:
        if (variant.covid, variant.non_covid) == found:
            return variant.name
    expected = "; ".join(f"{v.name}: {v.covid}/{v.non_covid}" for v in spec.expected_counts)
    raise DownloadError(
        f"{spec.name} at {root} holds {found[0]}/{found[1]} COVID/non-COVID files; "
        f"expected {expected}. The download looks incomplete or changed upstream."
    )


def _already_there(spec: DatasetSpec, root: Path) -> bool:
    if not root.exists():
        return False
    if root.is_dir() and not any(not is_ignored_name(p.name) for p in root.iterdir()):
        return False  # an empty folder: download into it
    try:
        find_layout(spec.name, root)  # also extracts zips the user placed there
    except DatasetLayoutError as error:
        raise DownloadError(
            f"{root} exists but is not a complete {spec.name} copy ({error}). Remove it or "
            "choose another --root."
        ) from None
    _validate(spec, root)
    return True


def _kaggle_instructions(spec: DatasetSpec, root: Path) -> str:
    archives = " or ".join(spec.archives)
    return (
        f"Download it by hand from {spec.homepage} (a free Kaggle account is needed), then "
        f"either unzip it so that {root / spec.classes[0].folder} and "
        f"{root / spec.classes[1].folder} exist, or put the zip ({archives}) into {root}; "
        f"then run `covidlib datasets index {spec.name} --root {root}`."
    )


def _download_github(spec: DatasetSpec, root: Path, timeout: float, opener: Any) -> Path:
    staging = root.parent / f".{root.name}.download"
    try:
        fetched = _fetch_all(spec, staging, timeout, opener)
    except DownloadError as error:
        archives = [Path(f.relpath).name for f in spec.files if f.extract]
        others = [f.relpath for f in spec.files if not f.extract]
        raise DownloadError(
            f"{error} Alternatively put {' and '.join(archives)} (from {spec.homepage}) into "
            f"{root}, optionally with {', '.join(others)}; covidlib extracts them on first use."
        ) from None
    # replace=True: a root that exists holds nothing but ignored names (see _already_there).
    with atomic_dir(root, replace=True) as tmp:
        for item, path in fetched:
            if not item.extract:
                (tmp / item.relpath).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, tmp / item.relpath)
        extract_archives(spec, tmp, [path for item, path in fetched if item.extract])
        _validate(spec, tmp)
    shutil.rmtree(staging, ignore_errors=True)
    return root


def _fetch_all(
    spec: DatasetSpec, staging: Path, timeout: float, opener: Any
) -> list[tuple[Any, Path]]:
    return [
        (
            item,
            download_file(
                item.url, staging / item.relpath, sha256=item.sha256, timeout=timeout, opener=opener
            ),
        )
        for item in spec.files
    ]


def _download_kaggle(spec: DatasetSpec, root: Path, timeout: float, opener: Any) -> Path:
    probe = "https://www.kaggle.com/"
    try:
        client = opener or urllib.request.build_opener()
        with contextlib.closing(client.open(urllib.request.Request(probe), timeout=timeout)):
            pass
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise DownloadError(
            f"cannot reach {probe} ({reason}). " + _kaggle_instructions(spec, root)
        ) from None
    try:
        import kagglehub

        cache = Path(kagglehub.dataset_download(str(spec.kaggle_slug)))
    except Exception as error:  # kagglehub raises many types (auth, HTTP, ...)
        raise DownloadError(
            f"kagglehub could not download {spec.kaggle_slug} ({error}). "
            + _kaggle_instructions(spec, root)
        ) from None
    folders = find_layout(spec.name, cache)
    with atomic_dir(root, replace=True) as tmp:
        for class_spec in spec.classes:
            shutil.copytree(folders[class_spec.name], tmp / class_spec.folder)
        _validate(spec, tmp)
    return root


def kaggle_configured() -> bool:
    """Return whether Kaggle credentials are set up (what ``kagglehub`` reads).

    Example:
        >>> import os
        >>> from unittest import mock
        >>> with mock.patch.dict(os.environ, {"KAGGLE_USERNAME": "me", "KAGGLE_KEY": "k"}):
        ...     kaggle_configured()
        True
    """
    if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
        return True
    folders = [os.environ.get("KAGGLE_CONFIG_DIR"), "~/.kaggle", "~/.config/kaggle"]
    return any(
        (Path(folder).expanduser() / "kaggle.json").is_file() for folder in folders if folder
    )


def _extract_verified(archive: Path, folder: str, expected: dict[str, str], target: Path
                      ) -> set[str]:
    """Extract the images of ``folder`` (below the archive's top folder) whose relpath is in
    ``expected`` into ``target``, checking each one's SHA-256; return the relpaths written."""
    written: set[str] = set()
    try:
        with zipfile.ZipFile(archive) as bundle:
            for member in bundle.infolist():
                parts = member.filename.split("/")
                relpath = "/".join(parts[2:]) if parts[1:2] == [folder] else ""
                if member.is_dir() or relpath not in expected:
                    continue
                digest = hashlib.sha256()
                dest = target / relpath
                dest.parent.mkdir(parents=True, exist_ok=True)
                with bundle.open(member) as source, dest.open("wb") as sink:
                    for chunk in iter(lambda: source.read(_CHUNK), b""):
                        digest.update(chunk)
                        sink.write(chunk)
                if digest.hexdigest() != expected[relpath]:
                    raise DownloadError(
                        f"{relpath} in {archive} does not match its recorded sha256 "
                        f"({digest.hexdigest()[:12]}... instead of {expected[relpath][:12]}...)"
                        "; the archive was removed: download it again."
                    )
                written.add(relpath)
    except zipfile.BadZipFile:
        raise DownloadError(
            f"{archive} is not a readable zip archive; it was removed: download it again."
        ) from None
    return written


def _download_mirror(spec: DatasetSpec, root: Path, timeout: float, opener: Any) -> Path:
    mirror = spec.mirror
    assert mirror is not None
    staging = root.parent / f".{root.name}.download"
    archive = download_file(mirror.url, staging / "archive.zip", timeout=timeout, opener=opener)
    expected = mirror.checksum_table()
    try:
        with atomic_dir(root, replace=True) as tmp:
            written = _extract_verified(archive, mirror.folder, expected, tmp)
            missing = sorted(set(expected) - written)
            if missing:
                raise DownloadError(
                    f"{archive} lacks {len(missing)} of the {len(expected)} images of the copy "
                    f"(first: {missing[0]}); it was removed: download it again."
                )
            _validate(spec, tmp)
    except DownloadError:
        archive.unlink(missing_ok=True)
        raise
    shutil.rmtree(staging, ignore_errors=True)
    return root


def download_dataset(
    name: str,
    root: str | Path | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    opener: Any | None = None,
) -> Path:
    """Download a registry dataset into ``root`` (default ``data_dir()/name``).

    A Kaggle dataset with a public mirror comes from the mirror when no Kaggle credentials
    are set up (:func:`kaggle_configured`). A root that already holds the dataset (or its
    zips) is checked and returned. The phantom is generated instead of downloaded. (The
    example needs the network, so it is not run as a test; the module's example shows the
    offline path.)

    Raises:
        DownloadError: offline, failed checksum, wrong counts, or a non-empty root that
            holds something else.

    Example:
        >>> download_dataset("covid19-ct", "/tmp/covid19-ct")  # doctest: +SKIP
    """
    spec = get_dataset(name)
    target = (default_root(name) if root is None else Path(root)).expanduser().absolute()
    if spec.source == "generated":
        try:  # the same phantom ensure_dataset makes; the default folder is a cache
            if name == PATIENT_PHANTOM:
                return ensure_patient_phantom(None if root is None else target)
            return ensure_phantom(None if root is None else target)
        except PhantomExistsError as error:
            raise DownloadError(str(error)) from None
    if spec.loose_folders:
        raise DownloadError(f"{name} stands for a folder of your own images: nothing to "
                            "download; pass --root DIR to the command that reads it.")
    if _already_there(spec, target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    if spec.source == "github":
        return _download_github(spec, target, timeout, opener)
    if spec.source == "kaggle":
        if spec.mirror is not None and not kaggle_configured():
            return _download_mirror(spec, target, timeout, opener)
        return _download_kaggle(spec, target, timeout, opener)
    raise DownloadError(f"no download method for source {spec.source!r} of {name}")


def ensure_dataset(
    name: str, root: str | Path | None = None, profile: Profile | None = None
) -> Path:
    """Return a dataset's root folder, ready to index.

    The phantom is generated into ``data_dir()/"phantom"`` (size and difficulty from
    ``profile``, by default the one ``COVIDLIB_PROFILE`` selects) when missing or stale
    (:func:`covidlib.data.phantom.ensure_phantom`). A real dataset must already be there
    (class folders, or the repository's zips, which are extracted); otherwise this says
    how to download it. Nothing is downloaded here.

    Raises:
        FileNotFoundError: a real dataset is not there (the message says how to get it).
        DatasetLayoutError: the folder exists but holds something else.

    Example:
        >>> import tempfile, pathlib
        >>> missing = pathlib.Path(tempfile.mkdtemp()) / "none"
        >>> ensure_dataset("covid19-ct", missing)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        FileNotFoundError: the covid19-ct dataset is not at ...
    """
    spec = get_dataset(name)
    if spec.loose_folders:  # class folders or a labels file: index_dataset checks which
        if root is None or not Path(root).expanduser().is_dir():
            raise FileNotFoundError("a folder of your own images needs its root (--root DIR)"
                                    + (f"; {root} is not a folder." if root else "."))
        return Path(root).expanduser()
    if spec.source == "generated" and root is None:
        if name == PATIENT_PHANTOM:
            return ensure_patient_phantom()
        return ensure_phantom(profile=profile)
    base = default_root(name) if root is None else Path(root).expanduser()
    try:
        find_layout(name, base)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"the {name} dataset is not at {base}. Run `covidlib datasets download {name}"
            + ("" if root is None else f" --root {base}")
            + f"` or place its folders {', '.join(spec.expected_layout())} there "
            f"(source: {spec.homepage})."
        ) from None
    return base


# --------------------------------------------------------------------------- lesion masks
# `covidlib datasets download ct-lesion-masks`


def pixel_digest(pixels: Any) -> str:
    """sha256 of a uint8 image's size and pixel bytes (what the lesion-mask table records).

    Example:
        >>> import numpy as np
        >>> pixel_digest(np.zeros((2, 3), np.uint8))[:12]
        'd24e1adee09f'
    """
    import numpy as np

    array = np.ascontiguousarray(pixels, dtype=np.uint8)
    return hashlib.sha256(f"{array.shape[1]}x{array.shape[0]}:".encode() + array.tobytes()
                          ).hexdigest()


def download_lesion_masks(
    name: str = "ct-lesion-masks",
    root: str | Path | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    opener: Any | None = None,
    rows: Any = None,
) -> Path:
    """Fetch a lesion-mask set from its repository at the pinned commit into ``root``.

    Writes ``images/<id>.png`` (8-bit grayscale), ``multiclass/<id>.png`` (0 background,
    1 ground-glass opacity, 2 consolidation), ``masks/<id>.png`` (0/255, the union) and
    ``manifest.csv``, all at once (a temporary folder renamed into place).

    What is verified: the upstream slices are JPEGs, and the set is distributed (and was
    checksummed, from the shared copy) as the PNGs they decode to, so no digest of the
    upstream bytes is known here. Each file is therefore checked after decoding: the
    sha256 of its size and pixels must equal the table's. A changed upstream file, or a JPEG
    decoder that decodes differently, is refused, naming the file.

    Args:
        name: a key of :data:`covidlib.data.registry.LESION_MASK_SETS`.
        root: target folder (default ``data_dir()/name``); an existing complete copy is
            checked and kept.
        timeout: network timeout per file (seconds).
        opener: a ``urllib`` opener (tests pass fakes).
        rows: the slices to fetch (default: the set's table; tests pass a small one).

    Raises:
        DownloadError: offline, a file fails verification, or ``root`` holds something else.

    Example:
        >>> download_lesion_masks("ct-lesion-masks", "/tmp/ct-lesion-masks")  # doctest: +SKIP
    """
    import numpy as np
    from PIL import Image

    from covidlib.data.images import load_grayscale
    from covidlib.data.registry import LESION_MASK_SETS

    if name not in LESION_MASK_SETS:
        raise DownloadError(f"unknown lesion-mask set {name!r}; known: {sorted(LESION_MASK_SETS)}")
    spec = LESION_MASK_SETS[name]
    table = spec.rows() if rows is None else rows
    from covidlib.config import data_dir

    target = (data_dir() / name if root is None else Path(root)).expanduser().absolute()
    if target.exists() and any(not is_ignored_name(p.name) for p in target.iterdir()):
        if _lesion_copy_complete(target, table):
            return target
        raise DownloadError(f"{target} exists but is not a complete {name} copy; remove it or "
                            "choose another --root.")
    staging = target.parent / f".{target.name}.download"
    decoded: list[tuple[str, Any, Any]] = []
    for row in table.itertuples(index=False):
        image_file = download_file(spec.raw_url(row.src_image), staging / row.src_image,
                                   timeout=timeout, opener=opener)
        mask_file = download_file(spec.raw_url(row.src_mask), staging / row.src_mask,
                                  timeout=timeout, opener=opener)
        image = np.asarray(load_grayscale(image_file))
        labels = np.asarray(Image.open(mask_file))
        labels = labels[..., 0] if labels.ndim == 3 else labels
        for what, pixels, expected, url in (
            ("image", image, row.image_pixels_sha256, spec.raw_url(row.src_image)),
            ("mask", labels, row.multiclass_pixels_sha256, spec.raw_url(row.src_mask)),
        ):
            if pixel_digest(pixels) != expected:
                raise DownloadError(
                    f"the decoded {what} of {url} does not match {row.id} of the {name} table "
                    f"(pixel sha256 {pixel_digest(pixels)}, expected {expected}); nothing was "
                    f"written to {target}. The upstream file changed or decodes differently."
                )
        decoded.append((str(row.id), image, labels.astype(np.uint8)))
    manifest = ["id,height,width,lesion_frac,src_image,src_mask"]
    with atomic_dir(target, replace=True) as tmp:
        for part in ("images", "masks", "multiclass"):
            (tmp / part).mkdir()
        for (ident, image, labels), row in zip(decoded, table.itertuples(index=False),
                                               strict=True):
            Image.fromarray(image).save(tmp / "images" / f"{ident}.png")
            Image.fromarray(labels).save(tmp / "multiclass" / f"{ident}.png")
            Image.fromarray(np.where(labels > 0, 255, 0).astype(np.uint8)).save(
                tmp / "masks" / f"{ident}.png")
            manifest.append(f"{ident},{image.shape[0]},{image.shape[1]},"
                            f"{float((labels > 0).mean()):.5f},{row.src_image},{row.src_mask}")
        (tmp / "manifest.csv").write_text("\n".join(manifest) + "\n", encoding="utf-8")
        (tmp / "LICENSE.txt").write_text(
            f"{spec.title}\nfrom https://github.com/{spec.repository} at commit {spec.commit}\n"
            f"License: {spec.license}\nCite: {spec.citation}\n", encoding="utf-8")
    shutil.rmtree(staging, ignore_errors=True)
    return target


def _lesion_copy_complete(root: Path, table: Any) -> bool:
    return all((root / part / f"{ident}.png").is_file()
               for ident in table["id"] for part in ("images", "masks"))
