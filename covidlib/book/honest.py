"""The honest-evaluation chapter (``chapters/honest-evaluation.ipynb``): leakage, measured."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from covidlib.book.results import stored_results

if TYPE_CHECKING:
    import pandas as pd



HONEST_PREFIX = "honest-"  # stored results of benchmarks/honest_evaluation.py


# The phantom demo: several slices per synthetic patient, image-level vs patient-level folds.
PHANTOM_LEAKAGE_MODEL = "shufflenet"


PHANTOM_LEAKAGE_SETTINGS: dict[str, Any] = {"n_folds": 3, "canvas_scale": 0.15, "epochs": 8}


def honest_results(folder: str | Path | None = None) -> pd.DataFrame:
    """The stored honest-evaluation runs: one row per (split, seed) with its accuracy.

    Columns ``id``, ``split``, ``seed``, ``accuracy`` (mean over test folds), ``pooled``
    (accuracy over every test image), ``n_images``, ``n_folds``, ``date``, ``hardware``,
    ``commit``, ``path``; empty when none is stored.

    Example:
        >>> import tempfile
        >>> honest_results(tempfile.mkdtemp()).empty
        True
    """
    import pandas as pd

    from covidlib.engine.runs import RunFolder
    from covidlib.evaluate.report import load_scored

    columns = ["id", "split", "seed", "accuracy", "pooled", "n_images", "n_folds", "date",
               "hardware", "commit", "path"]
    rows = []
    for _, stored in stored_results(folder).iterrows():
        if not str(stored["id"]).startswith(HONEST_PREFIX):
            continue
        path = Path(stored["path"])
        provenance = RunFolder(path).read_provenance()
        summary = RunFolder(path).read_report()
        predictions = load_scored(path).predictions
        correct = (predictions["probability"] >= 0.5).astype(int) == predictions["label"]
        rows.append({
            "id": stored["id"], "split": provenance["experiment"]["split"],
            "seed": int(provenance["experiment"]["seed"]),
            "accuracy": float(summary["metrics"]["accuracy"]["mean"]),
            "pooled": float(correct.mean()), "n_images": int(len(predictions)),
            "n_folds": int(provenance["n_folds"]), "date": provenance["date"],
            "hardware": provenance["hardware"], "commit": provenance["commit"],
            "path": str(path),
        })
    return pd.DataFrame(rows, columns=columns).sort_values(["split", "seed"],
                                                           ignore_index=True)


def accuracy_gap(table: pd.DataFrame, image_level: str = "stratified",
                 patient_level: str = "official", confidence: float = 0.95) -> dict[str, Any]:
    """The image-level minus patient-level accuracy over seeds, paired by seed.

    Returns ``gap`` (mean difference), ``ci_low``/``ci_high`` (a t-interval over the seeds'
    differences, :func:`covidlib.evaluate.intervals.t_interval`), ``n_seeds`` and the two
    mean accuracies.

    Example:
        >>> import pandas as pd
        >>> table = pd.DataFrame({"split": ["stratified"] * 3 + ["official"] * 3,
        ...                       "seed": [0, 1, 2] * 2,
        ...                       "accuracy": [0.9, 0.92, 0.91, 0.8, 0.83, 0.8]})
        >>> round(accuracy_gap(table)["gap"], 4)
        0.1
    """
    from covidlib.evaluate.intervals import t_interval

    wide = table.pivot_table(index="seed", columns="split", values="accuracy")
    both = wide[[image_level, patient_level]].dropna()
    if both.empty:
        raise ValueError(f"no seed has both a {image_level!r} and a {patient_level!r} result.")
    differences = (both[image_level] - both[patient_level]).to_numpy()
    low, high = t_interval(differences, confidence, bounds=None)
    return {"gap": float(differences.mean()), "ci_low": low, "ci_high": high,
            "n_seeds": int(len(both)), image_level: float(both[image_level].mean()),
            patient_level: float(both[patient_level].mean())}


def phantom_leakage(seed: int = 0) -> dict[str, Any]:
    """Cross-validate one model on the multi-slice phantom under image-level (stratified)
    and patient-level (grouped) folds; trained once (:func:`cached_run`).

    Returns the two runs' accuracies (``stratified``, ``grouped``: mean over folds) and the
    paired bootstrap of the difference over images (each image is tested once in each
    cross-validation): ``gap``, ``ci_low``, ``ci_high``, plus ``runs`` (the two CVResults).
    """
    from covidlib.config import get_profile
    from covidlib.data.phantom import PATIENT_PHANTOM
    from covidlib.engine.cv import cached_run
    from covidlib.evaluate.intervals import paired_bootstrap_difference

    profile = get_profile("quick")
    runs = {split: cached_run(profile.experiment(PATIENT_PHANTOM, PHANTOM_LEAKAGE_MODEL,
                                                 split=split, seed=seed,
                                                 **PHANTOM_LEAKAGE_SETTINGS))
            for split in ("stratified", "grouped")}
    tables = {split: run.predictions.set_index("path").sort_index()
              for split, run in runs.items()}
    correct = {split: ((t["probability"] >= 0.5).astype(int) == t["label"]).to_numpy()
               for split, t in tables.items()}
    gap, low, high = paired_bootstrap_difference(correct["stratified"], correct["grouped"])
    return {"stratified": float(runs["stratified"].summary["mean"]["accuracy"]),
            "grouped": float(runs["grouped"].summary["mean"]["accuracy"]),
            "gap": gap, "ci_low": low, "ci_high": high, "runs": runs}


def show_pairs(pairs: Sequence[Mapping[str, Any]], n: int = 4, size: float = 2.2) -> Any:
    """Show near-duplicate pairs side by side (one row per pair, its distance above)."""
    import matplotlib.pyplot as plt

    from covidlib.data.images import load_grayscale

    shown = list(pairs)[:n]
    figure, axes = plt.subplots(len(shown), 2, figsize=(2 * size, size * len(shown)),
                                squeeze=False)
    for row, pair in zip(axes, shown, strict=True):
        for ax, key in zip(row, ("a", "b"), strict=True):
            ax.imshow(load_grayscale(pair[key]), cmap="gray")
            ax.set_title(f"{Path(pair[key]).name[:28]}", fontsize=9)
            ax.axis("off")
        row[0].text(1.02, 1.12, f"distance {pair['distance']:.3f}", transform=row[0].transAxes,
                    ha="center", fontsize=9)
    figure.tight_layout()
    return figure
