"""ROC curves over folds and calibration (reliability) curves, computed by scikit-learn.

Example:
    >>> import pandas as pd
    >>> table = pd.DataFrame({"label": [0, 1, 0, 1] * 5, "fold": [0] * 10 + [1] * 10,
    ...                       "probability": [0.2, 0.8, 0.4, 0.6] * 5})
    >>> roc = mean_roc(table)
    >>> float(roc["tpr_mean"].iloc[-1]), round(float(roc.attrs["auc_mean"]), 3)
    (1.0, 1.0)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve
from sklearn.metrics import auc, brier_score_loss, roc_curve

ROC_GRID = np.linspace(0.0, 1.0, 101)


def _check(predictions: pd.DataFrame, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in predictions.columns]
    if missing:
        raise ValueError(f"predictions need the columns {list(columns)}; missing {missing}.")


def mean_roc(predictions: pd.DataFrame, grid: np.ndarray = ROC_GRID) -> pd.DataFrame:
    """Return the mean ROC curve over folds with its band (mean ± one std of the TPR).

    Each fold's curve is interpolated onto the common false-positive-rate ``grid`` (the
    "vertical averaging" of Fawcett 2006). ``attrs`` hold ``auc_mean``/``auc_std`` of the
    folds' AUCs (std with ``ddof=1``) and ``n_folds``. Folds with one class are skipped.

    Returns:
        DataFrame with ``fpr``, ``tpr_mean``, ``tpr_low``, ``tpr_high``.
    """
    _check(predictions, ("label", "probability", "fold"))
    curves, aucs = [], []
    for _, fold in predictions.groupby("fold"):
        labels = fold["label"].to_numpy(dtype=int)
        if labels.min() == labels.max():
            continue
        fpr, tpr, _ = roc_curve(labels, fold["probability"].to_numpy(dtype=float))
        curve = np.interp(grid, fpr, tpr)
        curve[0] = 0.0
        curves.append(curve)
        aucs.append(auc(fpr, tpr))
    if not curves:
        raise ValueError("no fold holds both classes: a ROC curve needs COVID and non-COVID.")
    stack = np.vstack(curves)
    mean = stack.mean(axis=0)
    mean[-1] = 1.0
    spread = stack.std(axis=0, ddof=1) if len(curves) > 1 else np.zeros_like(mean)
    table = pd.DataFrame({
        "fpr": grid,
        "tpr_mean": mean,
        "tpr_low": np.clip(mean - spread, 0, 1),
        "tpr_high": np.clip(mean + spread, 0, 1),
    })
    table.attrs.update(
        auc_mean=float(np.mean(aucs)),
        auc_std=float(np.std(aucs, ddof=1)) if len(aucs) > 1 else 0.0,
        n_folds=len(curves),
    )
    return table


def calibration(predictions: pd.DataFrame, n_bins: int = 10) -> pd.DataFrame:
    """Return the reliability curve (mean predicted vs observed COVID rate per bin).

    Uniform bins over [0, 1] (``sklearn.calibration.calibration_curve``; empty bins are
    dropped). ``attrs["brier"]`` is the Brier score of all predictions (0 is perfect, 0.25 is
    a constant 0.5).

    Example:
        >>> table = pd.DataFrame({"label": [0, 0, 1, 1], "probability": [0.1, 0.3, 0.7, 0.9]})
        >>> round(calibration(table, n_bins=2).attrs["brier"], 2)
        0.05
    """
    _check(predictions, ("label", "probability"))
    labels = predictions["label"].to_numpy(dtype=int)
    scores = predictions["probability"].to_numpy(dtype=float)
    observed, predicted = calibration_curve(labels, scores, n_bins=n_bins, strategy="uniform")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    counts = np.bincount(np.searchsorted(edges[1:-1], scores), minlength=n_bins)  # sklearn's bins
    table = pd.DataFrame({
        "predicted": predicted,
        "observed": observed,
        "count": counts[counts > 0],
    })
    table.attrs["brier"] = float(brier_score_loss(labels, scores))
    return table
