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

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    roc_auc_score,
    roc_curve,
)

# The paper's five metrics (Table 2), then the threshold-free ones this course adds.
METRIC_NAMES: tuple[str, ...] = ("accuracy", "precision", "recall", "specificity", "f1")
RANKING_NAMES: tuple[str, ...] = ("roc_auc", "average_precision")
COUNT_NAMES: tuple[str, ...] = ("tp", "tn", "fp", "fn")


def confusion_counts(
    y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray
) -> dict[str, int]:
    """Return TP, TN, FP and FN with COVID (1) as the positive class (scikit-learn's matrix).

    Example:
        >>> confusion_counts([1, 1, 0, 0], [1, 0, 0, 1])
        {'tp': 1, 'tn': 1, 'fp': 1, 'fn': 1}
    """
    matrix = confusion_matrix(np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int),
                              labels=[0, 1])
    (tn, fp), (fn, tp) = matrix.tolist()
    return {"tp": int(tp), "tn": int(tn), "fp": int(fp), "fn": int(fn)}


def _ratio(numerator: int, denominator: int, name: str) -> float:
    """``numerator / denominator``; 0.0 with a warning when the denominator is zero."""
    if denominator == 0:
        warnings.warn(
            f"{name} is undefined (zero denominator: no such images or predictions); "
            "reported as 0.0.",
            UndefinedMetricWarning,
            stacklevel=3,
        )
        return 0.0
    return numerator / denominator


def _check_inputs(y_true: Any, y_score: Any) -> tuple[np.ndarray, np.ndarray]:
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
    return labels.astype(int), scores


def sensitivity_at_specificity(
    y_true: Sequence[int] | np.ndarray,
    y_score: Sequence[float] | np.ndarray,
    specificity: float = 0.95,
) -> float:
    """Return the highest sensitivity among thresholds whose specificity is >= ``specificity``.

    The clinical operating point: how many COVID cases a test finds when it may raise a false
    alarm on at most 5% of the others (scikit-learn's ROC curve; 0.0 with a warning when one
    class is absent).

    Example:
        >>> sensitivity_at_specificity([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], 0.95)
        0.5
    """
    truth, scores = _check_inputs(y_true, y_score)
    if truth.min() == truth.max():
        warnings.warn("sensitivity at fixed specificity needs both classes; reported as 0.0.",
                      UndefinedMetricWarning, stacklevel=2)
        return 0.0
    fpr, tpr, _ = roc_curve(truth, scores)
    allowed = fpr <= 1.0 - specificity + 1e-12
    return float(tpr[allowed].max())


def binary_metrics(
    y_true: Sequence[int] | np.ndarray,
    y_score: Sequence[float] | np.ndarray,
    threshold: float = 0.5,
    *,
    at_specificity: float = 0.95,
) -> dict[str, float]:
    """Return the paper's metrics (equations 1-5), ranking metrics and the confusion counts.

    With COVID (1) as the positive class: accuracy = (TP + TN) / N, precision = TP / (TP + FP),
    recall (sensitivity) = TP / (TP + FN), specificity = TN / (TN + FP), F1 = 2PR / (P + R);
    then ROC-AUC and average precision (threshold-free; NaN with a warning when one class is
    absent), the sensitivity at ``at_specificity`` (key ``sensitivity_at_95_specificity`` for
    0.95), and ``tp``, ``tn``, ``fp``, ``fn``. A zero denominator gives a warning and 0.0.

    Args:
        y_true: true labels, 0 or 1.
        y_score: predicted probabilities of COVID in [0, 1].
        threshold: a probability at or above it predicts COVID.
        at_specificity: the specificity of the clinical operating point.

    Raises:
        ValueError: for different lengths, no samples, labels other than 0/1, scores
            outside [0, 1] or a threshold outside [0, 1].

    Example:
        >>> m = binary_metrics([1, 1, 0], [0.7, 0.6, 0.8])
        >>> round(m["precision"], 4), m["tp"], m["fp"]
        (0.6667, 2.0, 1.0)
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1]; got {threshold}.")
    truth, scores = _check_inputs(y_true, y_score)
    counts = confusion_counts(truth, (scores >= threshold).astype(int))
    tp, tn, fp, fn = counts["tp"], counts["tn"], counts["fp"], counts["fn"]
    precision = _ratio(tp, tp + fp, "precision")
    recall = _ratio(tp, tp + fn, "recall")
    both_classes = truth.min() != truth.max()
    if not both_classes:
        warnings.warn("ROC-AUC and average precision need both classes; reported as NaN.",
                      UndefinedMetricWarning, stacklevel=2)
    metrics = {
        "accuracy": float(accuracy_score(truth, scores >= threshold)),
        "precision": precision,
        "recall": recall,
        "specificity": _ratio(tn, tn + fp, "specificity"),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn, "f1"),
        "roc_auc": float(roc_auc_score(truth, scores)) if both_classes else float("nan"),
        "average_precision": (
            float(average_precision_score(truth, scores)) if both_classes else float("nan")
        ),
        f"sensitivity_at_{round(100 * at_specificity)}_specificity": (
            sensitivity_at_specificity(truth, scores, at_specificity) if both_classes else 0.0
        ),
    }
    return {**metrics, **{key: float(value) for key, value in counts.items()}}


def summarize_folds(
    per_fold: Mapping[int, Mapping[str, float]], confidence: float = 0.95
) -> dict[str, Any]:
    """Return per-fold metrics with their mean, standard deviation and t-interval over folds.

    The standard deviation is the sample one (``ddof=1``, recorded as ``std_ddof``; the paper
    does not say which it reports); one fold gives 0. ``ci_low``/``ci_high`` are the
    ``confidence`` t-interval of the mean over folds
    (:func:`covidlib.evaluate.intervals.t_interval`, clipped to [0, 1] for fractions; counts
    are not clipped). A metric that is undefined (NaN) in some folds is summarized over the
    others.

    Args:
        per_fold: fold number -> metrics dictionary from :func:`binary_metrics`.
        confidence: level of the t-interval.

    Example:
        >>> s = summarize_folds({0: {"accuracy": 0.8}, 1: {"accuracy": 1.0}})
        >>> round(s["mean"]["accuracy"], 3), round(s["std"]["accuracy"], 4), s["std_ddof"]
        (0.9, 0.1414, 1)
    """
    from covidlib.evaluate.intervals import t_interval

    if not per_fold:
        raise ValueError("summarize_folds needs the metrics of at least one fold.")
    folds = sorted(per_fold)
    names = [name for name in METRIC_NAMES if name in per_fold[folds[0]]]
    names += [name for name in per_fold[folds[0]] if name not in names]
    table = {name: np.array([per_fold[k][name] for k in folds], dtype=float) for name in names}
    mean, std, low, high = {}, {}, {}, {}
    for name, values in table.items():
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            mean[name] = std[name] = low[name] = high[name] = float("nan")
            continue
        mean[name] = float(finite.mean())
        std[name] = float(finite.std(ddof=1)) if finite.size > 1 else 0.0
        bounds = None if name in COUNT_NAMES else (0.0, 1.0)
        low[name], high[name] = t_interval(finite, confidence, bounds=bounds)
    return {
        "folds": {str(k): {name: float(per_fold[k][name]) for name in names} for k in folds},
        "mean": mean,
        "std": std,
        "std_ddof": 1,
        "ci_low": low,
        "ci_high": high,
        "ci_method": f"t-interval over folds, {round(100 * confidence)}%",
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
    shown = (*METRIC_NAMES, "roc_auc")
    names = [name for name in summary["mean"] if name in shown]
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
