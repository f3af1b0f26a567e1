"""The multi-slice phantom of the leakage audit: several slices per synthetic patient."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import ndimage

from covidlib.data.phantom._anatomy import (
    CLASS_NAMES,
    PhantomSlice,
    _check_count,
    _check_difficulty,
    _check_seed,
    sample_size,
)
from covidlib.data.phantom._disk import (
    GENERATOR_VERSION,
    LABELS_COLUMNS,
    LABELS_NAME,
    MANIFEST_NAME,
    PhantomExistsError,
    _save_png,
    is_covid_index,
    read_manifest,
)
from covidlib.data.phantom._render import render_phantom
from covidlib.utils.fileio import atomic_dir

if TYPE_CHECKING:
    pass


PATIENT_PHANTOM = "phantom-patients"  # its registry name: caches never collide with "phantom"
PATIENT_GENERATOR = "covidlib.phantom-patients"
PATIENT_DEFAULTS: dict[str, Any] = {"patients": 40, "slices": 5, "seed": 0, "difficulty": 0.2}


def _patient_slice(base: PhantomSlice, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A neighbouring slice of one patient: the same anatomy and lesions, slightly scaled
    and shifted, through another window and another scanner noise."""
    height, width = base.image.shape
    scale = rng.uniform(0.95, 1.05)
    shift = rng.uniform(-0.03, 0.03, size=2) * (height, width)
    centre = np.array([height, width]) / 2.0
    matrix = np.eye(2) / scale
    offset = centre - matrix @ (centre + shift)
    image = ndimage.affine_transform(base.image.astype(np.float32), matrix, offset, order=1)
    mask = ndimage.affine_transform(base.lesion_mask.astype(np.float32), matrix, offset,
                                    order=0) > 0.5
    gamma, gain = rng.uniform(0.85, 1.15), rng.uniform(0.9, 1.1)
    image = 255.0 * np.clip(gain * (image / 255.0) ** gamma, 0.0, 1.0)
    image = image + rng.normal(0.0, 4.0, size=image.shape)
    return np.clip(np.round(image), 0, 255).astype(np.uint8), mask


def generate_patient_phantom(
    out_dir: str | Path,
    patients: int = 40,
    slices: int = 5,
    seed: int = 0,
    difficulty: float = 0.5,
) -> Path:
    """Write a phantom with ``slices`` slices of each of ``patients`` synthetic patients.

    The slices of one patient share anatomy and lesions (one rendered slice, moved a little,
    windowed and noised anew each time), as the neighbouring slices of one scan do: a model
    tested on one slice of a patient it was trained on has seen the answer. Files are
    ``<class>/p<patient>%<slice>.png``, so the index groups them by patient (the registry's
    ``source`` grouping: the name before ``%``). Reused when already there with the same
    parameters; written to a temporary folder and renamed.

    Example:
        >>> import tempfile, pathlib
        >>> root = generate_patient_phantom(pathlib.Path(tempfile.mkdtemp()) / "pp", 2, 3)
        >>> sorted(p.name for p in (root / "COVID").iterdir())
        ['p0001%01.png', 'p0001%02.png', 'p0001%03.png']
    """
    _check_count(patients)
    _check_seed(seed)
    _check_difficulty(difficulty)
    if isinstance(slices, bool) or not isinstance(slices, int) or slices < 1:
        raise ValueError(f"slices must be a positive integer, got {slices!r}")
    out = Path(out_dir)
    wanted = {"generator": PATIENT_GENERATOR, "version": GENERATOR_VERSION,
              "patients": patients, "slices": slices, "seed": seed,
              "difficulty": float(difficulty)}
    manifest = read_manifest(out)
    if manifest is not None and all(manifest.get(k) == v for k, v in wanted.items()):
        return out
    if out.exists() and any(out.iterdir()) and (manifest or {}).get("generator") != (
            PATIENT_GENERATOR):
        raise PhantomExistsError(f"{out} exists and is not a multi-slice phantom; choose an "
                                 "empty or new folder.")
    try:
        with atomic_dir(out, replace=True) as tmp:
            _write_patient_phantom(tmp, wanted)
    except FileExistsError:
        manifest = read_manifest(out)
        if manifest is None or any(manifest.get(k) != v for k, v in wanted.items()):
            raise
    return out


def _write_patient_phantom(root: Path, wanted: dict[str, Any]) -> None:
    for class_name in CLASS_NAMES.values():
        (root / class_name).mkdir()
        (root / "masks" / class_name).mkdir(parents=True)
    rows = []
    for patient in range(1, wanted["patients"] + 1):
        covid = is_covid_index(wanted["seed"], patient)
        rng = np.random.default_rng([wanted["seed"], patient, 7])
        size = sample_size(rng)
        base = render_phantom(rng, covid, wanted["difficulty"], size)
        class_name = CLASS_NAMES[int(covid)]
        for index in range(1, wanted["slices"] + 1):
            image, mask = _patient_slice(base, np.random.default_rng(
                [wanted["seed"], patient, index, 11]))
            file = f"{class_name}/p{patient:04d}%{index:02d}.png"
            _save_png(image, root / file)
            _save_png(mask.astype(np.uint8) * 255, root / "masks" / file)
            rows.append((file, int(covid), class_name, base.finding, *size, f"masks/{file}"))
    with open(root / LABELS_NAME, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(LABELS_COLUMNS)
        writer.writerows(rows)
    text = json.dumps(wanted, indent=2, sort_keys=True) + "\n"
    (root / MANIFEST_NAME).write_text(text, encoding="utf-8")


def ensure_patient_phantom(root: str | Path | None = None) -> Path:
    """Return the multi-slice phantom (:data:`PATIENT_DEFAULTS`), generating it when missing;
    the default folder is ``data_dir()/"phantom-patients"``."""
    from covidlib.data.registry import default_root

    return generate_patient_phantom(default_root(PATIENT_PHANTOM) if root is None else root,
                                    **PATIENT_DEFAULTS)
