"""Calibration: how often a model is right when it says 0.93.

* :func:`expected_calibration_error` (ECE): the top-label confidence max(p, 1 - p) binned
  into equal-width bins on [0, 1] (15, as Guo et al. 2017) or equal-mass bins, the weighted
  mean gap between each bin's accuracy and its mean confidence; :func:`ece_interval` is its
  percentile bootstrap over images.
* :func:`brier_decomposition`: the Brier score and Murphy's reliability, resolution and
  uncertainty (binned on the COVID probability).
* :func:`fit_temperature`: temperature scaling, one scalar T dividing the logit, fitted by
  minimizing the negative log-likelihood; :func:`cross_fitted_temperature` fits it for each
  test fold on the other folds' out-of-fold predictions only, never on the fold it scales.

Example:
    >>> labels = np.array([1, 1, 0, 0, 1])
    >>> probability = np.array([0.9, 0.6, 0.3, 0.8, 0.45])  # 3 of 5 right, confidence 0.71
    >>> round(expected_calibration_error(labels, probability, n_bins=2), 3)
    0.11
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from scipy.special import expit, log_expit
from scipy.stats import bootstrap

from covidlib.trust._sources import logits_of
from covidlib.trust.conformal import check_disjoint

BINNINGS: tuple[str, ...] = ("width", "mass")
ECE_BINS = 15
# Temperatures searched (on a log scale): from 20x sharper to 20x softer than the model.
TEMPERATURE_RANGE = (0.05, 20.0)


def _arrays(labels: Any, probability: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels, dtype=int).ravel()
    p = np.asarray(probability, dtype=float).ravel()
    if y.size != p.size or y.size == 0:
        raise ValueError(f"calibration needs equally many labels and probabilities "
                         f"(got {y.size} and {p.size}, at least one).")
    if not np.isfinite(p).all() or (p < 0).any() or (p > 1).any():
        raise ValueError("probabilities must be numbers in [0, 1].")
    return y, p


def top_label(labels: Any, probability: Any) -> tuple[np.ndarray, np.ndarray]:
    """Return the confidence max(p, 1 - p) and whether the 0.5-threshold call is right."""
    y, p = _arrays(labels, probability)
    return np.maximum(p, 1 - p), (p >= 0.5).astype(int) == y


def _bin_index(confidence: np.ndarray, n_bins: int, binning: str) -> np.ndarray:
    if binning == "width":
        # Bins ((m - 1) / M, m / M], the first one closed at 0, as Guo et al.
        return np.clip(np.ceil(confidence * n_bins).astype(int) - 1, 0, n_bins - 1)
    if binning == "mass":
        order = np.argsort(confidence, kind="stable")
        index = np.empty(confidence.size, dtype=int)
        for k, chunk in enumerate(np.array_split(order, min(n_bins, confidence.size))):
            index[chunk] = k
        return index
    raise ValueError(f"binning must be one of {BINNINGS}; got {binning!r}.")


def reliability_table(labels: Any, probability: Any, *, n_bins: int = ECE_BINS,
                      binning: str = "width") -> pd.DataFrame:
    """Return one row per non-empty bin: ``bin``, ``count``, ``confidence`` (mean top-label
    confidence), ``accuracy`` and ``gap`` (accuracy - confidence).

    Example:
        >>> reliability_table([1, 0, 1], [0.9, 0.8, 0.7], n_bins=2)[["count", "accuracy"]]
           count  accuracy
        0      3  0.666667
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1 (got {n_bins}).")
    confidence, correct = top_label(labels, probability)
    frame = pd.DataFrame({"bin": _bin_index(confidence, n_bins, binning),
                          "confidence": confidence, "correct": correct.astype(float)})
    table = frame.groupby("bin").agg(count=("correct", "size"),
                                     confidence=("confidence", "mean"),
                                     accuracy=("correct", "mean")).reset_index(drop=True)
    return table.assign(gap=table["accuracy"] - table["confidence"])


def expected_calibration_error(labels: Any, probability: Any, *, n_bins: int = ECE_BINS,
                               binning: str = "width") -> float:
    """Return the ECE, a fraction in [0, 1]: sum over bins of count / n * |accuracy -
    confidence| of the top label (the same bins as :func:`reliability_table`)."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1 (got {n_bins}).")
    confidence, correct = top_label(labels, probability)
    index = _bin_index(confidence, n_bins, binning)
    # numpy sums rather than the table: the bootstrap calls this a thousand times
    gaps = np.bincount(index, correct.astype(float), n_bins) - np.bincount(index, confidence,
                                                                            n_bins)
    return float(np.abs(gaps).sum() / confidence.size)


def ece_interval(labels: Any, probability: Any, *, n_bins: int = ECE_BINS,
                 binning: str = "width", confidence: float = 0.95, n_resamples: int = 1000,
                 seed: int = 0) -> tuple[float, float]:
    """Return the percentile bootstrap interval of the ECE over images.

    The percentile method, not BCa: the ECE is biased upwards on small samples, and BCa's
    bias correction would shift the interval by that bias's own noisy estimate.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> p = rng.uniform(size=300)
        >>> low, high = ece_interval(rng.uniform(size=300) < p, p, n_resamples=200)
        >>> 0 <= low < high < 0.2
        True
    """
    y, p = _arrays(labels, probability)

    def statistic(y_: np.ndarray, p_: np.ndarray) -> float:
        return expected_calibration_error(y_, p_, n_bins=n_bins, binning=binning)

    result = bootstrap((y, p), statistic, paired=True, vectorized=False,
                       confidence_level=confidence, n_resamples=n_resamples,
                       method="percentile", rng=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def brier_decomposition(labels: Any, probability: Any, *, n_bins: int = ECE_BINS
                        ) -> dict[str, float]:
    """Return ``brier`` and Murphy's ``reliability``, ``resolution``, ``uncertainty``.

    Bins are equal-width on the COVID probability; brier = reliability - resolution +
    uncertainty holds up to ``within_bin`` (the spread of probabilities inside the bins,
    zero when each bin holds one value).

    Example:
        >>> parts = brier_decomposition([1, 1, 0, 0], [0.8, 0.8, 0.2, 0.2])
        >>> {k: round(v, 3) for k, v in parts.items()}  # doctest: +NORMALIZE_WHITESPACE
        {'brier': 0.04, 'reliability': 0.04, 'resolution': 0.25, 'uncertainty': 0.25,
         'within_bin': 0.0}
    """
    y, p = _arrays(labels, probability)
    index = np.clip(np.ceil(p * n_bins).astype(int) - 1, 0, n_bins - 1)
    counts = np.bincount(index, minlength=n_bins).astype(float)
    used = counts > 0
    mean_p = np.bincount(index, p, n_bins)[used] / counts[used]
    mean_y = np.bincount(index, y, n_bins)[used] / counts[used]
    weights = counts[used] / y.size
    base = y.mean()
    brier = float(np.mean((p - y) ** 2))
    reliability = float(np.sum(weights * (mean_p - mean_y) ** 2))
    resolution = float(np.sum(weights * (mean_y - base) ** 2))
    uncertainty = float(base * (1 - base))
    return {"brier": brier, "reliability": reliability, "resolution": resolution,
            "uncertainty": uncertainty,
            "within_bin": brier - (reliability - resolution + uncertainty)}


def negative_log_likelihood(logits: Any, labels: Any, temperature: float = 1.0) -> float:
    """Return the mean binary cross-entropy of sigmoid(logit / T).

    Example:
        >>> round(negative_log_likelihood([0.0], [1]), 4)
        0.6931
    """
    z = np.asarray(logits, dtype=float) / temperature
    y = np.asarray(labels, dtype=int)
    return float(-np.mean(np.where(y == 1, log_expit(z), log_expit(-z))))


def fit_temperature(logits: Any, labels: Any) -> float:
    """Return the temperature T > 0 that minimizes the NLL of sigmoid(logit / T).

    Raises:
        ValueError: a calibration set with one class (T would only grow or shrink without
            bound towards that class).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> truth = rng.normal(size=2000)
        >>> labels = rng.uniform(size=2000) < expit(truth)
        >>> round(fit_temperature(3 * truth, labels), 1)  # 3x overconfident logits
        3.0
    """
    z = np.asarray(logits, dtype=float).ravel()
    y = np.asarray(labels, dtype=int).ravel()
    if z.size != y.size or not np.isfinite(z).all():
        raise ValueError("temperature scaling needs one finite logit per label.")
    classes = np.unique(y)
    if classes.size < 2:
        raise ValueError(f"the calibration set has one class only ({classes.tolist()}); "
                         "temperature scaling needs both classes.")
    low, high = np.log(TEMPERATURE_RANGE)
    result = minimize_scalar(lambda t: negative_log_likelihood(z, y, float(np.exp(t))),
                             bounds=(low, high), method="bounded",
                             options={"xatol": 1e-5})
    return float(np.exp(result.x))


def cross_fitted_temperature(predictions: pd.DataFrame, *, n_bins: int = ECE_BINS
                             ) -> tuple[pd.DataFrame, np.ndarray]:
    """Scale each test fold with a temperature fitted on the other folds only.

    Stored results hold only test-fold predictions; the other folds' out-of-fold
    predictions are the nearest data that never saw this fold's images (they come from the
    other folds' models, which trained on this fold: a small mismatch, said where used).

    Returns:
        ``(per_fold, scaled)``: one row per fold (``fold``, ``n``, ``temperature``,
        ``ece``, ``ece_scaled``, ``nll``, ``nll_scaled``, ``accuracy``; accuracy does not
        change, as T > 0 keeps the logit's sign) and the scaled probability of every row.

    Raises:
        ValueError: fewer than two folds (nothing to fit on without the test fold), folds
            that share images (an external validation, where every fold model scored the
            same images), or a calibration set with one class.
    """
    folds = sorted(int(k) for k in predictions["fold"].unique())
    if len(folds) < 2:
        raise ValueError(f"{len(folds)} test fold: a temperature fitted without the test fold "
                         "needs the out-of-fold predictions of at least two folds.")
    logits = logits_of(predictions)
    labels = predictions["label"].to_numpy(int)
    fold_of = predictions["fold"].to_numpy(int)
    scaled = np.empty(len(predictions))
    rows = []
    for fold in folds:
        test = fold_of == fold
        check_disjoint(predictions[~test], predictions[test])
        temperature = fit_temperature(logits[~test], labels[~test])
        scaled[test] = expit(logits[test] / temperature)
        before = expit(logits[test])
        rows.append({
            "fold": fold, "n": int(test.sum()), "temperature": temperature,
            "ece": expected_calibration_error(labels[test], before, n_bins=n_bins),
            "ece_scaled": expected_calibration_error(labels[test], scaled[test], n_bins=n_bins),
            "nll": negative_log_likelihood(logits[test], labels[test]),
            "nll_scaled": negative_log_likelihood(logits[test], labels[test], temperature),
            "accuracy": float(((before >= 0.5).astype(int) == labels[test]).mean()),
        })
    return pd.DataFrame(rows), scaled


def calibration_summary(predictions: pd.DataFrame, *, n_bins: int = ECE_BINS,
                        n_resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Return a run's calibration, pooled over its test folds.

    Keys: ``ece`` (equal-width, :data:`ECE_BINS` bins), ``ece_low``/``ece_high`` (its
    bootstrap interval), ``ece_mass`` (equal-mass bins), ``brier`` and its decomposition,
    ``temperature`` (the geometric mean of the folds' cross-fitted temperatures),
    ``ece_scaled`` and ``brier_scaled`` after scaling, ``per_fold``; the scaled values are
    ``None`` for a run of one fold, with ``note`` saying why.
    """
    labels = predictions["label"].to_numpy(int)
    probability = predictions["probability"].to_numpy(float)
    low, high = ece_interval(labels, probability, n_bins=n_bins, n_resamples=n_resamples,
                             seed=seed)
    summary: dict[str, Any] = {
        "ece": expected_calibration_error(labels, probability, n_bins=n_bins),
        "ece_low": low, "ece_high": high,
        "ece_mass": expected_calibration_error(labels, probability, n_bins=n_bins,
                                               binning="mass"),
        **brier_decomposition(labels, probability, n_bins=n_bins),
        "temperature": None, "ece_scaled": None, "brier_scaled": None, "per_fold": [],
        "note": "",
    }
    try:
        per_fold, scaled = cross_fitted_temperature(predictions, n_bins=n_bins)
    except ValueError as error:
        summary["note"] = f"no temperature scaling: {error}"
        return summary
    summary.update(
        temperature=float(np.exp(np.log(per_fold["temperature"]).mean())),
        ece_scaled=expected_calibration_error(labels, scaled, n_bins=n_bins),
        brier_scaled=float(np.mean((scaled - labels) ** 2)),
        per_fold=per_fold.to_dict("records"),
    )
    return summary


def plot_reliability(curves: dict[str, tuple[Sequence[int], Sequence[float]]], *,
                     n_bins: int = ECE_BINS, binning: str = "width", ax: Any = None) -> Any:
    """Draw reliability diagrams (accuracy against top-label confidence), one line per
    ``label -> (labels, probabilities)``, with each model's ECE in the legend."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4.8, 4.2))
    ax.plot([0.5, 1], [0.5, 1], color="grey", linestyle=":", label="perfect calibration")
    for name, (labels, probability) in curves.items():
        table = reliability_table(labels, probability, n_bins=n_bins, binning=binning)
        ece = expected_calibration_error(labels, probability, n_bins=n_bins, binning=binning)
        ax.plot(table["confidence"], table["accuracy"], marker="o",
                label=f"{name} (ECE {100 * ece:.1f}%)")
    ax.set_xlabel("confidence of the predicted class")
    ax.set_ylabel("accuracy in the bin")
    ax.set_xlim(0.5, 1.0)
    ax.set_ylim(0.0, 1.02)
    ax.legend(fontsize="small" if len(curves) <= 4 else "x-small", loc="lower right")
    return ax
