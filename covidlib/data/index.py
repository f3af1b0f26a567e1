"""Dataset folders: layout checks, archive extraction, patient groups, official splits and
the image index.

:func:`index_dataset` turns a dataset folder into a table with one row per readable
image. Every file it could not use is listed in ``problems`` with the reason; nothing
is dropped silently. Only these are skipped without a word: hidden files (names starting
with ``.``, which covers ``.DS_Store`` and macOS ``._*`` resource forks), ``Thumbs.db``
and ``desktop.ini``, and ``__MACOSX`` folders.

Example:
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for folder in ("CT_COVID", "CT_NonCOVID"):
    ...     (root / folder).mkdir()
    ...     Image.new("L", (8, 6)).save(root / folder / "a%0.png")
    >>> index = index_dataset("covid19-ct", root)
    >>> index.counts(), index.images["group_kind"].tolist()
    ({'covid': 1, 'non_covid': 1}, ['source', 'source'])
"""

from __future__ import annotations

import os
import shutil
import zipfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from covidlib.data.folder import LAYOUT_HINT, folder_dataset_name, folder_key, read_labels_file
from covidlib.data.images import ImageLoadError, probe_image
from covidlib.data.registry import SPLITS, ClassSpec, DatasetSpec, default_root, get_dataset

__all__ = [
    "IMAGE_COLUMNS",
    "DatasetIndex",
    "DatasetLayoutError",
    "DatasetProblemsError",
    "extract_archives",
    "find_layout",
    "index_dataset",
    "is_ignored_name",
    "source_prefix",
    "walk_visible_files",
]

IGNORED_NAMES = frozenset({"thumbs.db", "desktop.ini", "__macosx"})


class DatasetLayoutError(ValueError):
    """A dataset root that does not look like the dataset (wrong or missing folders)."""


class DatasetProblemsError(ValueError):
    """An index with unreadable files, raised by :meth:`DatasetIndex.require_clean`."""


# --------------------------------------------------------------------------- layout


def is_ignored_name(name: str) -> bool:
    """Return whether a file or folder name is skipped silently by the index.

    Hidden names (``.DS_Store``, macOS ``._*`` forks), ``Thumbs.db``, ``desktop.ini`` and
    ``__MACOSX`` are operating-system litter, not data.

    Example:
        >>> [is_ignored_name(n) for n in (".DS_Store", "._a.png", "Thumbs.db", "a.png")]
        [True, True, True, False]
    """
    return name.startswith(".") or name.lower() in IGNORED_NAMES


def _visible_entries(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not is_ignored_name(p.name))


def _match_folder(parent: Path, folder: str, aliases: Sequence[str] = ()) -> Path | None:
    """Return ``parent/folder`` matched case-insensitively, if it is a folder; with
    ``aliases``, any of those names too, ignoring case, spaces, ``-`` and ``_``."""
    exact = parent / folder
    if exact.is_dir():
        return exact
    keys = {folder_key(name) for name in aliases}
    for entry in _visible_entries(parent):
        if entry.is_dir() and (entry.name.lower() == folder.lower()
                               or folder_key(entry.name) in keys):
            return entry
    return None


def _class_folder(spec: DatasetSpec, parent: Path, class_spec: ClassSpec) -> Path | None:
    if not spec.loose_folders:
        return _match_folder(parent, class_spec.folder)
    return _match_folder(parent, class_spec.folder, (class_spec.folder, *class_spec.aliases))


def _find_class_folders(spec: DatasetSpec, root: Path) -> dict[str, Path] | None:
    """Find the class folders in ``root`` or in one wrapper folder below it (a dataset
    with loose folders needs only one of them)."""
    candidates = [root] + [p for p in _visible_entries(root) if p.is_dir()]
    for base in candidates:
        found = {c.name: _class_folder(spec, base, c) for c in spec.classes}
        if all(found.values()) or (spec.loose_folders and any(found.values())):
            return {k: v for k, v in found.items() if v is not None}
    return None


def _archive_candidates(spec: DatasetSpec, root: Path) -> list[Path]:
    names = [a for c in spec.classes for a in c.archives] + list(spec.archives)
    found = []
    for base in (root, root / "Images-processed"):
        for name in names:
            if (base / name).is_file():
                found.append(base / name)
    return found


def extract_archives(spec: DatasetSpec, root: Path, archives: Sequence[Path]) -> None:
    """Extract archives into a temporary folder of ``root``; move class folders into place.

    A class archive whose files sit at its top level becomes that class's folder.
    """
    for archive in archives:
        tmp = root / f".extract-{archive.stem}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            try:
                with zipfile.ZipFile(archive) as bundle:
                    bundle.extractall(tmp)
            except (zipfile.BadZipFile, OSError) as error:
                raise DatasetLayoutError(
                    f"cannot extract {archive}: {error}. Delete it and download it again."
                ) from None
            for class_spec in spec.classes:
                if _match_folder(root, class_spec.folder) is not None:
                    continue
                source = _find_below(tmp, class_spec.folder)
                if source is None and archive.name in class_spec.archives:
                    source = tmp  # files at the archive's top level
                if source is not None:
                    os.replace(source, root / class_spec.folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _find_below(folder: Path, name: str, depth: int = 2) -> Path | None:
    if not folder.is_dir():
        return None
    match = _match_folder(folder, name)
    if match is not None or depth == 0:
        return match
    for entry in _visible_entries(folder):
        if entry.is_dir():
            below = _find_below(entry, name, depth - 1)
            if below is not None:
                return below
    return None


def _missing_root_message(spec: DatasetSpec, root: Path) -> str:
    how = (
        f"run `covidlib datasets download {spec.name} --root {root}`"
        if spec.source != "generated"
        else "call covidlib.data.ensure_dataset('phantom') or run `covidlib phantom`"
    )
    return f"dataset root {root} does not exist; {how}."


def find_layout(name: str, root: str | Path, *, extract: bool = True) -> dict[str, Path]:
    """Return the class folders of a dataset root, extracting known zips if needed.

    Args:
        name: registry name.
        root: the dataset folder.
        extract: extract ``CT_COVID.zip``-style archives found in the root (or its
            ``Images-processed/``) when the class folders are missing.

    Returns:
        ``{"COVID": Path, "non-COVID": Path}``.

    Raises:
        FileNotFoundError: the root does not exist.
        DatasetLayoutError: the class folders are missing; lists expected and found entries.

    Example:
        >>> import tempfile, pathlib
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> for f in ("COVID", "non-COVID"): (root / f).mkdir()
        >>> sorted(find_layout("phantom", root))
        ['COVID', 'non-COVID']
    """
    spec = get_dataset(name)
    base = Path(root).expanduser()
    if not base.is_dir():
        if base.exists():
            raise DatasetLayoutError(f"dataset root {base} is a file, not a folder.")
        if base.is_symlink():
            raise DatasetLayoutError(
                f"dataset root {base} is a broken symbolic link or a link loop; point it at "
                "the dataset folder."
            )
        raise FileNotFoundError(_missing_root_message(spec, base))
    found = _find_class_folders(spec, base)
    if found is None and extract:
        archives = _archive_candidates(spec, base)
        if archives:
            extract_archives(spec, base, archives)
            found = _find_class_folders(spec, base)
    if found is not None:
        return found
    entries = [p.name + ("/" if p.is_dir() else "") for p in _visible_entries(base)]
    shown = ", ".join(entries[:30])
    if len(entries) > 30:
        shown += f", ... ({len(entries)} entries)"
    archive_hint = [a for c in spec.classes for a in c.archives] + list(spec.archives)
    if spec.loose_folders:
        raise DatasetLayoutError(f"{base} has no class folder: {LAYOUT_HINT}; found "
                                 f"{shown or 'nothing'}.")
    raise DatasetLayoutError(
        f"{base} does not look like the {spec.name} dataset: expected the folders "
        f"{', '.join(spec.expected_layout())}"
        + (f" (or the archives {', '.join(archive_hint)})" if archive_hint else "")
        + f"; found {shown or 'nothing'}."
    )


# --------------------------------------------------------------------------- groups, splits


def source_prefix(file_name: str) -> str:
    """Return the source of a file: its name with the ``%<k>`` crop number removed.

    COVID19-CT names the crops of one figure ``<source>%<k>.<ext>``. The extension is
    kept because ``14.png`` and ``14%0.jpg`` come from different sources (they sit in
    different official splits).

    Example:
        >>> source_prefix("2020.02.10.20021584-p6-52%13.png"), source_prefix("14%2.jpg")
        ('2020.02.10.20021584-p6-52.png', '14.jpg')
    """
    stem, dot, extension = file_name.rpartition(".")
    if not dot:
        stem, extension = file_name, ""
    return stem.split("%", 1)[0] + (f".{extension.lower()}" if extension else "")


def _read_patient_ids(spec: DatasetSpec, root: Path) -> dict[str, str]:
    """Map file name -> patient ID from the metadata spreadsheet (empty when absent)."""
    meta = spec.metadata
    if meta is None or not (root / meta.relpath).is_file():
        return {}
    path = root / meta.relpath
    try:
        table = pd.read_excel(
            path, sheet_name=meta.sheet, usecols=[meta.file_column, meta.group_column]
        ).dropna()
    except (ValueError, KeyError, OSError, zipfile.BadZipFile) as error:
        raise DatasetLayoutError(
            f"cannot read patient IDs from {path} (sheet {meta.sheet!r}, columns "
            f"{meta.file_column!r} and {meta.group_column!r}): {error}. Replace the file with "
            f"the dataset's original, or remove it to group images by file name instead."
        ) from None
    names = table[meta.file_column].astype(str).str.strip()
    names = names.where(names.str.lower().str.endswith(meta.suffix), names + meta.suffix)
    patients = table[meta.group_column].astype(str).str.strip()
    return dict(zip(names, patients, strict=True))


def _read_split_lists(
    spec: DatasetSpec, root: Path
) -> tuple[dict[tuple[str, str], str], list[dict[str, str]]]:
    """Return ``{(class_name, file name): split}`` and problems for unknown names."""
    splits: dict[tuple[str, str], str] = {}
    for class_spec in spec.classes:
        if class_spec.split_list is None:
            continue
        for split in SPLITS:
            list_path = root / class_spec.split_list.format(split=split)
            if not list_path.is_file():
                continue
            for line in list_path.read_text(encoding="utf-8", errors="replace").splitlines():
                if line.strip():
                    splits[(class_spec.name, line.strip())] = split
    return splits, []


def _group_for(
    spec: DatasetSpec, class_name: str, relpath: str, file_name: str, patients: dict[str, str]
) -> tuple[str, str]:
    """Return ``(group, group_kind)`` for one image."""
    if spec.metadata is not None and class_name == spec.metadata.class_name:
        patient = patients.get(file_name)
        if patient is not None:
            return patient, "patient"
    if spec.group_fallback == "source":
        return f"{class_name}:{source_prefix(file_name)}", "source"
    return f"file:{relpath}", "file"


# --------------------------------------------------------------------------- index


IMAGE_COLUMNS: tuple[str, ...] = (
    "path",
    "relpath",
    "label",
    "class_name",
    "width",
    "height",
    "mode",
    "format",
    "group",
    "group_kind",
    "split",
    "mask_path",
)


@dataclass
class DatasetIndex:
    """The result of :func:`index_dataset`.

    Attributes:
        name: registry name.
        root: the dataset folder.
        images: one row per readable image (see :data:`IMAGE_COLUMNS`).
        problems: one row per unusable file or folder (``path``, ``error``).
        spec: the registry entry.
    """

    name: str
    root: Path
    images: pd.DataFrame
    problems: pd.DataFrame
    spec: DatasetSpec = field(repr=False)

    def counts(self) -> dict[str, int]:
        """Return ``{"covid": n, "non_covid": n}`` of readable images."""
        covid = int((self.images["label"] == 1).sum())
        return {"covid": covid, "non_covid": int(len(self.images) - covid)}

    def matched_counts(self) -> str | None:
        """Return the name of the expected count variant that matches, if any."""
        counts = self.counts()
        for variant in self.spec.expected_counts:
            if (variant.covid, variant.non_covid) == (counts["covid"], counts["non_covid"]):
                return variant.name
        return None

    def summary(self) -> dict[str, Any]:
        """Return the numbers the CLI prints with ``--json``.

        ``size_min``/``size_max`` are the smallest/largest width and height, taken
        separately, as ``[width, height]``.
        """
        images = self.images
        sizes_known = len(images) > 0
        splits: dict[str, dict[str, int]] | None = None
        if images["split"].notna().any():
            splits = {
                split: {
                    "covid": int(((images["split"] == split) & (images["label"] == 1)).sum()),
                    "non_covid": int(((images["split"] == split) & (images["label"] == 0)).sum()),
                }
                for split in SPLITS
            }
            splits["none"] = {
                "covid": int((images["split"].isna() & (images["label"] == 1)).sum()),
                "non_covid": int((images["split"].isna() & (images["label"] == 0)).sum()),
            }
        return {
            "dataset": self.name,
            "root": str(self.root),
            "n_images": int(len(images)),
            "counts": self.counts(),
            "expected_counts": {
                v.name: {"covid": v.covid, "non_covid": v.non_covid}
                for v in self.spec.expected_counts
            },
            "counts_match": self.matched_counts(),
            "size_min": [int(images["width"].min()), int(images["height"].min())]
            if sizes_known
            else None,
            "size_max": [int(images["width"].max()), int(images["height"].max())]
            if sizes_known
            else None,
            "modes": {str(k): int(v) for k, v in images["mode"].value_counts().items()},
            "n_groups": int(images["group"].nunique()),
            "group_kinds": {
                str(k): int(v)
                for k, v in images.drop_duplicates("group")["group_kind"].value_counts().items()
            },
            "splits": splits,
            "n_problems": int(len(self.problems)),
            "problems": [
                {"path": str(row.path), "error": str(row.error)}
                for row in self.problems.itertuples(index=False)
            ],
        }

    def require_clean(self, skip_problems: bool = False) -> pd.DataFrame:
        """Return ``images``, refusing an index with problems unless told to skip them.

        Raises:
            DatasetProblemsError: listing each bad file, when there are problems and
                ``skip_problems`` is false.
        """
        if len(self.problems) and not skip_problems:
            lines = [f"  {row.path}: {row.error}" for row in self.problems.itertuples()]
            raise DatasetProblemsError(
                f"{len(lines)} problem(s) in {self.name} at {self.root} "
                "(fix or remove these files, or pass skip_problems=True / --skip-problems):\n"
                + "\n".join(lines)
            )
        return self.images


def walk_visible_files(folder: Path) -> Iterable[Path]:
    """Yield the visible files below ``folder`` (sorted, recursive; hidden names skipped).

    Example:
        >>> list(walk_visible_files(Path("no-such-folder")))
        []
    """
    for current, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not is_ignored_name(d))
        for name in sorted(files):
            if not is_ignored_name(name):
                yield Path(current) / name


def _probe(path: Path) -> tuple[Path, Any]:
    try:
        return path, probe_image(path)
    except ImageLoadError as error:
        return path, error


def _relpath(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def index_dataset(
    name: str,
    root: str | Path | None = None,
    *,
    workers: int | None = None,
    labels: str | Path | None = None,
) -> DatasetIndex:
    """Index a dataset folder: one row per readable image, one problem per bad file.

    Every file in the class folders is decoded once (a truncated file cannot be told
    from its header). Hidden files, ``Thumbs.db`` and ``desktop.ini`` are skipped.

    Args:
        name: registry name (``"covid19-ct"``, ``"sars-cov-2-ct"``, ``"phantom"``).
        root: dataset folder; default ``data_dir()/name`` (the phantom of the current
            profile is generated there when missing, see
            :func:`covidlib.data.phantom.ensure_phantom`).
        workers: threads used to decode images (default: up to 4).
        labels: for a folder of your own images (``name="folder"``): a CSV with columns
            ``path,label`` (see :func:`covidlib.data.folder.read_labels_file`) instead of
            class folders.

    Returns:
        A :class:`DatasetIndex`; a folder of your own is named after the folder
        (:func:`covidlib.data.folder.folder_dataset_name`).

    Raises:
        FileNotFoundError: the root does not exist (or a folder of your own got none).
        DatasetLayoutError: the root lacks the class folders (a folder of your own: also
            an unreadable or empty class folder, or no readable image).
        LabelsFileError: a labels file that cannot be used.

    Example:
        >>> import tempfile, pathlib
        >>> from PIL import Image
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> for folder in ("COVID", "non-COVID"):
        ...     (root / folder).mkdir()
        ...     Image.new("L", (8, 6)).save(root / folder / "a.png")
        >>> index = index_dataset("phantom", root)
        >>> index.summary()["counts"], len(index.problems)
        ({'covid': 1, 'non_covid': 1}, 0)
    """
    spec = get_dataset(name)
    if labels is not None and not spec.loose_folders:
        raise ValueError(f"a labels file ({labels}) labels a folder of your own images, "
                         f"not the {name} dataset; leave out the dataset name.")
    if root is not None:
        base = Path(root).expanduser()
    elif spec.loose_folders:
        raise FileNotFoundError("a folder of your own images needs its root (--root DIR).")
    elif spec.source == "generated":
        from covidlib.data.phantom import PATIENT_PHANTOM, ensure_patient_phantom, ensure_phantom

        base = ensure_patient_phantom() if name == PATIENT_PHANTOM else ensure_phantom()
    else:
        base = default_root(name)
    if labels is None:
        files, problems = _class_files(spec, find_layout(name, base))
    else:
        if not base.is_dir():
            find_layout(name, base)  # says what is wrong with the root
        by_label = {c.label: c for c in spec.classes}
        files = [(by_label[label], path) for label, path in read_labels_file(labels, base)]
        problems = []
    patients = _read_patient_ids(spec, base)
    splits, split_problems = _read_split_lists(spec, base)
    problems.extend(split_problems)

    n_workers = workers or min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=n_workers) as pool:
        probed = list(pool.map(_probe, [path for _, path in files]))

    rows = []
    listed: set[tuple[str, str]] = set()
    for (class_spec, path), (_, info) in zip(files, probed, strict=True):
        listed.add((class_spec.name, path.name))
        if isinstance(info, ImageLoadError):
            problems.append({"path": str(path), "error": info.reason})
            continue
        relpath = _relpath(path, base)
        group, group_kind = _group_for(spec, class_spec.name, relpath, path.name, patients)
        mask = None
        if spec.mask_folder is not None:
            candidate = base / spec.mask_folder / class_spec.folder / path.name
            mask = str(candidate) if candidate.is_file() else None
        rows.append(
            {
                "path": str(path.resolve()),
                "relpath": relpath,
                "label": class_spec.label,
                "class_name": class_spec.name,
                "width": info.width,
                "height": info.height,
                "mode": info.mode,
                "format": info.format,
                "group": group,
                "group_kind": group_kind,
                "split": splits.get((class_spec.name, path.name)),
                "mask_path": mask,
            }
        )
    for (class_name, file_name), split in sorted(splits.items()):
        if (class_name, file_name) not in listed:
            problems.append(
                {
                    "path": file_name,
                    "error": f"listed in the official {split} split of {class_name} "
                    "but missing from its folder",
                }
            )

    images = pd.DataFrame(rows, columns=list(IMAGE_COLUMNS))
    images = images.astype(
        {
            "label": "int64",
            "width": "int64",
            "height": "int64",
            "split": "string",
            "mask_path": "string",
        }
    )
    problem_table = pd.DataFrame(problems, columns=["path", "error"])
    if not spec.loose_folders:
        return DatasetIndex(spec.name, base, images, problem_table, spec)
    if images.empty:
        raise DatasetLayoutError(f"no readable image in {base} ({len(problems)} unusable "
                                 f"file(s), e.g. {problems[0]['path']}: {problems[0]['error']}).")
    return DatasetIndex(folder_dataset_name(base), base, images, problem_table, spec)


def _class_files(
    spec: DatasetSpec, folders: dict[str, Path]
) -> tuple[list[tuple[ClassSpec, Path]], list[dict[str, str]]]:
    """Every visible file below each class folder, and a problem per empty one (an error in
    a folder of your own, which may also lack a class)."""
    files: list[tuple[ClassSpec, Path]] = []
    problems: list[dict[str, str]] = []
    for class_spec in (c for c in spec.classes if c.name in folders):
        folder = folders[class_spec.name]
        class_files = list(walk_visible_files(folder))
        if not class_files and spec.loose_folders:  # os.walk skips an unreadable one too
            raise DatasetLayoutError(f"the class folder {folder} holds no readable file.")
        if not class_files:
            problems.append({"path": str(folder),
                             "error": f"class folder {class_spec.folder}/ contains no images"})
        files.extend((class_spec, path) for path in class_files)
    return files, problems
