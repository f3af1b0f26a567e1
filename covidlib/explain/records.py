"""Explanation results as stored JSON: where they come from, and why maps are zero.

Every stored explanation result (localization scores, sanity-check curves, t-SNE
separation) names the model's training dataset (``trained_on``, its registry name) and
carries the provenance of the run folder that made it
(:func:`covidlib.evaluate.provenance.run_provenance`: profile, weights, dataset and a digest
of its copy, hardware, date, commit). :func:`localize_targets` scores the maps of several
methods and targets (the COVID logit and the predicted class) in one result, and
:func:`zero_map_diagnostics` says what the model predicted on the slices whose map is zero
everywhere.

Example:
    >>> import pandas as pd
    >>> table = pd.DataFrame({"image": ["a.png", "b.png", "c.png"],
    ...                       "zero_map": [True, True, False],
    ...                       "probability": [0.1, 0.2, 0.9]})
    >>> found = zero_map_diagnostics(table)
    >>> found["zero_maps"], found["zero_predicted_covid"], found["mean_probability_zero"]
    (2, 0, 0.15)
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = [
    "MANY_ZERO_MAPS",
    "explanation_provenance",
    "localize_targets",
    "run_label",
    "write_result",
    "zero_map_diagnostics",
]

#: From this share of zero maps on, a localization result explains them (diagnostics).
MANY_ZERO_MAPS = 0.2


def run_label(run_dir: str | Path) -> str:
    """The run folder's last three parts (``<dataset>/<model>/<id>``): no machine path.

    Example:
        >>> run_label("/home/me/runs/covid19-ct/resnet18/0123abcd")
        'covid19-ct/resnet18/0123abcd'
    """
    return "/".join(Path(run_dir).resolve().parts[-3:])


def _dataset_root(run_dir: str | Path) -> Path:
    from covidlib.engine.runs import RunFolder

    paths = [str(Path(p).resolve()) for p in RunFolder(run_dir).read_folds()["path"]]
    if not paths:
        raise ValueError(f"{run_dir}/folds.csv lists no image; give --data-root DIR")
    # Class folders sit one level below the dataset root.
    return Path(os.path.commonpath(paths)) if len(set(paths)) > 1 else Path(paths[0]).parent


def explanation_provenance(
    run_dir: str | Path, dataset_root: str | Path | None = None
) -> dict[str, Any]:
    """``trained_on`` (the run's dataset), ``run`` (:func:`run_label`) and the run's provenance.

    Args:
        run_dir: a finished run folder.
        dataset_root: the copy it was trained on (default: the folder that holds every
            image of its ``folds.csv``).
    """
    from covidlib.engine.runs import RunFolder
    from covidlib.evaluate.provenance import run_provenance

    config = RunFolder(run_dir).read_config()
    root = Path(dataset_root) if dataset_root is not None else _dataset_root(run_dir)
    return {"trained_on": str(config["dataset"]), "run": run_label(run_dir),
            **run_provenance(run_dir, root)}


def write_result(path: str | Path, result: dict[str, Any]) -> Path:
    """Write ``result`` as indented JSON (temporary name, then renamed); return the path."""
    from covidlib.utils.fileio import atomic_write_text

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(target, json.dumps(result, indent=2, allow_nan=True) + "\n")


def zero_map_diagnostics(table: pd.DataFrame) -> dict[str, Any]:
    """What the model predicted on the images whose map is zero, next to the others.

    Args:
        table: one row per image with ``image``, ``zero_map`` and ``probability`` (the
            model's COVID probability), as :class:`LocalizationResult.table` holds them.

    Returns:
        ``zero_maps``, ``zero_predicted_covid`` (probability >= 0.5), mean probability of
        the zero and the non-zero maps' images, and ``zero_images`` (file name and
        probability of each zero map).
    """
    zero = table["zero_map"].astype(bool).to_numpy()
    probability = table["probability"].astype(float).to_numpy()

    def mean(values: Any) -> float | None:
        return round(float(values.mean()), 4) if len(values) else None

    return {
        "zero_maps": int(zero.sum()),
        "zero_predicted_covid": int((probability[zero] >= 0.5).sum()),
        "nonzero_predicted_covid": int((probability[~zero] >= 0.5).sum()),
        "mean_probability_zero": mean(probability[zero]),
        "mean_probability_nonzero": mean(probability[~zero]),
        "zero_images": [{"image": Path(str(name)).name, "probability": round(float(p), 4)}
                        for name, p in zip(table["image"][zero], probability[zero],
                                           strict=True)],
    }


def _per_image(table: pd.DataFrame, method: str, key: str) -> list[dict[str, Any]]:
    """One row per image: file name, probability, and the map's zero flag and scores.

    Example:
        >>> table = pd.DataFrame({"image": ["/x/a.png"], "probability": [0.7],
        ...                       "zero_map": [False], "gradcam_pointing_game": [1.0],
        ...                       "gradcam_energy": [0.4], "body_energy": [0.2]})
        >>> _per_image(table, "gradcam", "gradcam")[0]["image"]
        'a.png'
    """
    rows = []
    for record in table.to_dict("records"):
        row: dict[str, Any] = {"image": Path(str(record["image"])).name,
                               "probability": round(float(record["probability"]), 4),
                               f"{key}:zero_map": bool(record["zero_map"])}
        for name, value in record.items():
            if name.endswith(("_pointing_game", "_energy")):
                base = name.rsplit("_energy", 1)[0] if name.endswith("_energy") else \
                    name.rsplit("_pointing_game", 1)[0]
                label = key if base == method else base
                row[label + name[len(base):]] = None if pd.isna(value) else round(float(value), 4)
        rows.append(row)
    return rows


def localize_targets(
    run_dir: str | Path,
    folder: str | Path,
    *,
    methods: Sequence[str] = ("gradcam",),
    targets: Sequence[str] = ("covid",),
    fold: int | None = None,
    device: str = "cpu",
) -> dict[str, Any]:
    """Localization scores of several methods and targets on ``folder``, in one summary.

    The first method with the first target gives the summary (the keys of
    ``covidlib localize --json``); every further pair adds its scores as
    ``scores["<method>"]`` (first target) or ``scores["<method>:<target>"]``.
    ``per_image`` lists each image's file name, the model's probability, and every map's
    zero flag and scores (to choose a gallery by a stated rule). ``zero_maps_by_map``
    counts each map's zero maps, and where at least
    :data:`MANY_ZERO_MAPS` of a map's images are zero, ``zero_map_diagnostics[<map>]``
    says what the model predicted on them.
    """
    from covidlib.explain.localization import localize_folder

    if not methods or not targets:
        raise ValueError("give at least one method and one target")
    summary: dict[str, Any] = {}
    for method in methods:
        for target in targets:
            key = method if target == targets[0] else f"{method}:{target}"
            result = localize_folder(run_dir, folder, fold, method=method, target=target,
                                     device=device)
            per_image = _per_image(result.table, method, key)
            if not summary:
                summary = dict(result.summary)
                summary["per_image"] = per_image
                summary["scores"] = dict(summary["scores"])
                summary["zero_maps_by_map"] = {}
                summary["zero_map_diagnostics"] = {}
            else:
                summary["scores"][key] = result.summary["scores"][method]
                for row, extra in zip(summary["per_image"], per_image, strict=True):
                    row.update({k: v for k, v in extra.items() if k.startswith(key + "_")
                                or k == f"{key}:zero_map"})
            zero = int(result.summary["zero_maps"])
            summary["zero_maps_by_map"][key] = zero
            if zero >= MANY_ZERO_MAPS * max(result.summary["n_images"], 1):
                summary["zero_map_diagnostics"][key] = zero_map_diagnostics(result.table)
    summary["methods"] = list(methods)
    summary["per_image"] = summary.get("per_image", [])
    summary["targets"] = list(targets)
    return summary
