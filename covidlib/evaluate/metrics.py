"""Binary classification metrics of the paper (section 5.3) and their summary over folds.

The paper reports accuracy, precision, recall (sensitivity), specificity and F1 with COVID as
the positive class, each as the mean and standard deviation over the five test folds.
scikit-learn computes every number; this module only names them and collects them.

Example:
    >>> m = binary_metrics([1, 0, 1, 0], [0.9, 0.2, 0.4, 0.1])
    >>> m["accuracy"], m["recall"], m["specificity"]
    (0.75, 0.5, 1.0)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

METRIC_NAMES: tuple[str, ...] = ("accuracy", "precision", "recall", "specificity", "f1")


def binary_metrics(
    y_true: Sequence[int] | np.ndarray,
    y_score: Sequence[float] | np.ndarray,
    threshold: float = 0.5,
) -> dict[str, float]:
    """Return accuracy, precision, recall, specificity and F1 (COVID = 1 is positive).

    Args:
        y_true: true labels, 0 or 1.
        y_score: predicted probabilities of COVID in [0, 1].
        threshold: a probability at or above it predicts COVID.

    Raises:
        ValueError: for different lengths, no samples, labels other than 0/1 or scores
            outside [0, 1].

    Example:
        >>> binary_metrics([1, 1, 0], [0.7, 0.6, 0.8])["precision"]
        0.6666666666666666
    """
    labels = np.asarray(y_true).astype(float).ravel()
    scores = np.asarray(y_score, dtype=float).ravel()
    if labels.shape != scores.shape:
        raise ValueError(
            f"y_true has {labels.size} values but y_score has {scores.size}; pass one score "
            "per label."
        )
    if labels.size == 0:
        raise ValueError("binary_metrics needs at least one sample; got empty arrays.")
    if not np.isin(labels, (0.0, 1.0)).all():
        raise ValueError(f"y_true must hold only 0 and 1; got {sorted(set(labels.tolist()))}.")
    if not np.isfinite(scores).all() or scores.min() < 0.0 or scores.max() > 1.0:
        raise ValueError(
            "y_score must be probabilities in [0, 1] (apply a sigmoid to logits first); "
            f"got range [{np.nanmin(scores)}, {np.nanmax(scores)}]."
        )
    truth = labels.astype(int)
    predicted = (scores >= threshold).astype(int)
    return {
        "accuracy": float(accuracy_score(truth, predicted)),
        "precision": float(precision_score(truth, predicted, zero_division=0)),
        "recall": float(recall_score(truth, predicted, zero_division=0)),
        "specificity": float(recall_score(truth, predicted, pos_label=0, zero_division=0)),
        "f1": float(f1_score(truth, predicted, zero_division=0)),
    }


def summarize_folds(per_fold: Mapping[int, Mapping[str, float]]) -> dict[str, Any]:
    """Return per-fold metrics with their mean and (population, ddof=0) standard deviation.

    Args:
        per_fold: fold number -> metrics dictionary from :func:`binary_metrics`.

    Example:
        >>> s = summarize_folds({0: {"accuracy": 0.8}, 1: {"accuracy": 1.0}})
        >>> round(s["mean"]["accuracy"], 3), round(s["std"]["accuracy"], 3)
        (0.9, 0.1)
    """
    if not per_fold:
        raise ValueError("summarize_folds needs the metrics of at least one fold.")
    folds = sorted(per_fold)
    names = [name for name in METRIC_NAMES if name in per_fold[folds[0]]]
    names += [name for name in per_fold[folds[0]] if name not in names]
    table = {name: np.array([per_fold[k][name] for k in folds], dtype=float) for name in names}
    return {
        "folds": {str(k): {name: float(per_fold[k][name]) for name in names} for k in folds},
        "mean": {name: float(values.mean()) for name, values in table.items()},
        "std": {name: float(values.std(ddof=0)) for name, values in table.items()},
        "std_ddof": 0,
        "n_folds": len(folds),
    }


def format_summary(summary: Mapping[str, Any], percent: bool = True) -> str:
    """Return the summary as a small text table: one row per fold, then mean ± std.

    Example:
        >>> print(format_summary(summarize_folds({0: {"accuracy": 1.0}})))
        fold     accuracy
        0           100.0
        mean  100.0 ± 0.0
    """
    scale = 100.0 if percent else 1.0
    names = list(summary["mean"])
    lines = ["fold  " + "  ".join(f"{name:>11}" for name in names).rstrip()]
    for fold, metrics in summary["folds"].items():
        lines.append(f"{fold:<4}  " + "  ".join(f"{metrics[n] * scale:>11.1f}" for n in names))
    lines.append(
        "mean  "
        + "  ".join(
            f"{summary['mean'][n] * scale:.1f} ± {summary['std'][n] * scale:.1f}".rjust(11)
            for n in names
        )
    )
    return "\n".join(line.rstrip() for line in lines)
