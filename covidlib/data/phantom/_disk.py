"""The phantom on disk: labels, masks and a manifest, generated once and reused."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from covidlib.data.phantom._anatomy import (
    CLASS_NAMES,
    _check_count,
    _check_difficulty,
    _check_seed,
    sample_size,
)
from covidlib.data.phantom._render import render_phantom
from covidlib.utils.fileio import atomic_dir, exclusive_lock

if TYPE_CHECKING:
    from covidlib.config import Profile


GENERATOR = "covidlib.phantom"
GENERATOR_VERSION = 1
MANIFEST_NAME = "manifest.json"
LABELS_NAME = "labels.csv"
LABELS_COLUMNS: tuple[str, ...] = (
    "file",
    "label",
    "class_name",
    "finding",
    "width",
    "height",
    "mask",
)
# Parameters compared to decide whether a cached phantom can be reused.
_PARAMETER_KEYS: tuple[str, ...] = ("generator", "version", "n", "seed", "difficulty")


class PhantomExistsError(FileExistsError):
    """The output folder exists and holds something other than the requested phantom."""


def is_covid_index(seed: int, index: int) -> bool:
    """Whether image ``index`` (1-based) of the phantom with ``seed`` is a COVID image.

    Each consecutive pair (1, 2), (3, 4), ... holds one image of each class in a random
    order, so classes stay balanced for any ``n`` and image ``k`` does not depend on ``n``.

    Example:
        >>> is_covid_index(0, 1) != is_covid_index(0, 2)
        True
    """
    pair = (index - 1) // 2
    covid_first = bool(np.random.default_rng([seed, pair, 1]).integers(2))
    return ((index - 1) % 2 == 0) == covid_first


def phantom_manifest(n: int, seed: int, difficulty: float) -> dict[str, Any]:
    """The parameters that identify a phantom (compared to reuse a cached copy)."""
    return {
        "generator": GENERATOR,
        "version": GENERATOR_VERSION,
        "n": int(n),
        "seed": int(seed),
        "difficulty": float(difficulty),
    }


def read_manifest(out_dir: str | Path) -> dict[str, Any] | None:
    """Return the manifest of a generated phantom folder, or None when there is none."""
    path = Path(out_dir) / MANIFEST_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def is_current(out_dir: str | Path, n: int, seed: int, difficulty: float) -> bool:
    """Whether ``out_dir`` already holds the phantom with these parameters.

    Example:
        >>> is_current("/nonexistent/phantom", 200, 0, 0.5)
        False
    """
    manifest = read_manifest(out_dir)
    if manifest is None or not (Path(out_dir) / LABELS_NAME).is_file():
        return False
    wanted = phantom_manifest(n, seed, difficulty)
    return all(manifest.get(key) == wanted[key] for key in _PARAMETER_KEYS)


def generate_phantom(
    out_dir: str | Path,
    n: int = 200,
    seed: int = 0,
    difficulty: float = 0.5,
    overwrite: bool = False,
) -> Path:
    """Write the phantom dataset into ``out_dir`` (or reuse it when already there).

    Layout: ``COVID/phantom_00001.png``, ``non-COVID/phantom_00002.png`` ... (8-bit
    grayscale, global numbering), ``masks/<class>/<same name>`` (0/255 lesion masks, all
    zero for non-COVID), ``labels.csv`` (columns :data:`LABELS_COLUMNS`) and
    ``manifest.json``. Everything is written into a temporary sibling folder that is
    renamed into place only when complete. The same arguments give byte-identical files.

    Args:
        out_dir: the dataset folder to create.
        n: number of images (at least 2); classes alternate in random order per pair.
        seed: non-negative integer seed.
        difficulty: 0 (obvious lesions) to 1 (subtle lesions, strong confounders).
        overwrite: replace an existing phantom made with other parameters.

    Returns:
        ``out_dir`` as a Path.

    Raises:
        ValueError: for a bad ``n``, ``seed`` or ``difficulty``.
        PhantomExistsError: ``out_dir`` holds something else and ``overwrite`` is False,
            or it is not a phantom folder (never deleted, even with ``overwrite``).

    Example:
        >>> import tempfile, pathlib
        >>> out = generate_phantom(pathlib.Path(tempfile.mkdtemp()) / "ph", n=2, seed=3)
        >>> read_manifest(out)["counts"]
        {'COVID': 1, 'non-COVID': 1}
    """
    _check_count(n)
    _check_seed(seed)
    _check_difficulty(difficulty)
    out = Path(out_dir)
    if is_current(out, n, seed, difficulty):
        return out
    # Runners started together build it once: the others wait here, then find it current.
    out.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(out.parent):
        if out.exists() or out.is_symlink():
            if is_current(out, n, seed, difficulty):
                return out
            _refuse_to_replace(out, overwrite)
        try:
            # An old phantom is replaced only once the new one is complete.
            with atomic_dir(out, replace=True) as tmp:
                _write_phantom(tmp, n, seed, difficulty)
        except FileExistsError:
            # Another process may have finished the same phantom first: that is fine.
            if not is_current(out, n, seed, difficulty):
                raise
    return out


def ensure_phantom(root: str | Path | None = None, profile: Profile | None = None) -> Path:
    """Return the phantom a profile asks for, generating it when missing or stale.

    The size and difficulty come from ``profile`` (default: the one ``COVIDLIB_PROFILE``
    selects). The default folder, ``data_dir()/"phantom"``, is a cache: a phantom of
    another profile there is replaced. A phantom of other parameters in an explicit
    ``root`` is not (:class:`PhantomExistsError`).

    Example:
        >>> import tempfile, pathlib
        >>> from covidlib.config import get_profile
        >>> small = get_profile("quick").with_overrides(phantom_size=4)
        >>> root = ensure_phantom(pathlib.Path(tempfile.mkdtemp()) / "phantom", small)
        >>> read_manifest(root)["n"]
        4
    """
    from covidlib.config import get_profile
    from covidlib.data.registry import default_root

    chosen = profile or get_profile()
    return generate_phantom(
        default_root("phantom") if root is None else root,
        n=chosen.phantom_size,
        difficulty=chosen.phantom_difficulty,
        overwrite=root is None,
    )


def _refuse_to_replace(out: Path, overwrite: bool) -> None:
    """Raise unless ``out`` may be replaced by a freshly generated phantom."""
    if not out.is_dir():
        what = "is a broken symbolic link or a link loop" if not out.exists() else "is not a folder"
        raise PhantomExistsError(f"{out} exists and {what}; choose another --out.")
    manifest = read_manifest(out)
    is_empty = not any(out.iterdir())
    if not is_empty and (manifest is None or manifest.get("generator") != GENERATOR):
        raise PhantomExistsError(
            f"{out} exists and is not a phantom folder (no {MANIFEST_NAME} from {GENERATOR}); "
            "refusing to replace it. Choose an empty or new folder."
        )
    if not overwrite and not is_empty:
        found = {key: manifest.get(key) for key in _PARAMETER_KEYS} if manifest else {}
        raise PhantomExistsError(
            f"{out} holds a phantom made with other parameters ({found}); pass "
            "overwrite=True (--overwrite) to replace it, or choose another folder."
        )


def _write_phantom(root: Path, n: int, seed: int, difficulty: float) -> None:
    """Render all images into ``root`` and write labels.csv and manifest.json."""
    for class_name in CLASS_NAMES.values():
        (root / class_name).mkdir()
        (root / "masks" / class_name).mkdir(parents=True)
    rows = []
    counts = {name: 0 for name in sorted(CLASS_NAMES.values())}
    findings: dict[str, int] = {}
    for index in range(1, n + 1):
        covid = is_covid_index(seed, index)
        rng = np.random.default_rng([seed, index])
        size = sample_size(rng)
        rendered = render_phantom(rng, covid, difficulty, size)
        class_name = CLASS_NAMES[int(covid)]
        file = f"{class_name}/phantom_{index:05d}.png"
        mask = f"masks/{file}"
        _save_png(rendered.image, root / file)
        _save_png(rendered.lesion_mask.astype(np.uint8) * 255, root / mask)
        rows.append((file, int(covid), class_name, rendered.finding, *size, mask))
        counts[class_name] += 1
        findings[rendered.finding] = findings.get(rendered.finding, 0) + 1
    with open(root / LABELS_NAME, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(LABELS_COLUMNS)
        writer.writerows(rows)
    manifest = phantom_manifest(n, seed, difficulty)
    manifest["counts"] = counts
    manifest["findings"] = dict(sorted(findings.items()))
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    (root / MANIFEST_NAME).write_text(text, encoding="utf-8")


def _save_png(array: np.ndarray, path: Path) -> None:
    # Fixed options and no metadata: the same array always gives the same bytes.
    # Level 1 is three times faster than the default 6 and only ~15% bigger here.
    Image.fromarray(array).save(path, format="PNG", optimize=False, compress_level=1)


