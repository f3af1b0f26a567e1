"""External validation against the within-dataset score: how much does accuracy drop?

``covidlib evaluate`` scores every fold model of a run on every image of another dataset
(a stored result whose provenance names ``external.trained_on``). :func:`external_drop`
sets that against the run's own cross-validation on its training dataset: accuracy on each
side with a bootstrap interval over images, and the drop (within minus external) with a
bootstrap interval of the difference. The two sides hold different images, so the two samples
are resampled independently (``scipy.stats.bootstrap`` with ``paired=False``).

Example:
    >>> import numpy as np
    >>> within = np.array([1.0] * 90 + [0.0] * 10)
    >>> external = np.array([1.0] * 60 + [0.0] * 40)
    >>> drop = accuracy_drop(within, external, n_resamples=500)
    >>> round(drop["drop"], 2), drop["ci_low"] > 0
    (0.3, True)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["accuracy_drop", "external_drop", "per_image_correct"]


def per_image_correct(predictions: pd.DataFrame, threshold: float = 0.5) -> np.ndarray:
    """Return each image's share of correct calls: one call per image for a cross-validation,
    the mean over fold models for an external validation (every fold model saw every image).

    Example:
        >>> table = pd.DataFrame({"relpath": ["a", "a", "b"], "label": [1, 1, 0],
        ...                       "probability": [0.9, 0.2, 0.1], "fold": [0, 1, 0]})
        >>> per_image_correct(table).tolist()
        [0.5, 1.0]
    """
    key = "relpath" if "relpath" in predictions.columns else "path"
    correct = (predictions["probability"] >= threshold).astype(int) == predictions["label"]
    return correct.groupby(predictions[key].astype(str)).mean().to_numpy(dtype=float)


def accuracy_drop(within: np.ndarray, external: np.ndarray, *, n_resamples: int = 2000,
                  seed: int = 0) -> dict[str, Any]:
    """Accuracy within and outside with 95% bootstrap intervals, and their difference.

    Args:
        within: per-image correctness (0..1) on the training dataset's test folds.
        external: per-image correctness on the other dataset.
        n_resamples: bootstrap resamples.
        seed: the resampling seed.
    """
    from scipy.stats import bootstrap

    rng = np.random.default_rng(seed)

    def interval(*samples: np.ndarray, statistic: Any) -> tuple[float, float]:
        result = bootstrap(samples, statistic, paired=False, n_resamples=n_resamples,
                           method="percentile", random_state=rng, vectorized=True)
        return float(result.confidence_interval.low), float(result.confidence_interval.high)

    def mean(sample: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.mean(sample, axis=axis)

    def difference(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.mean(a, axis=axis) - np.mean(b, axis=axis)

    within_low, within_high = interval(within, statistic=mean)
    external_low, external_high = interval(external, statistic=mean)
    low, high = interval(within, external, statistic=difference)
    return {
        "within": float(within.mean()), "within_low": within_low, "within_high": within_high,
        "external": float(external.mean()), "external_low": external_low,
        "external_high": external_high,
        "drop": float(within.mean() - external.mean()), "ci_low": low, "ci_high": high,
        "n_within": int(len(within)), "n_external": int(len(external)),
    }


def external_drop(within_run: Any, external_run: Any, *, threshold: float = 0.5,
                  n_resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """:func:`accuracy_drop` of two scored runs (``covidlib.evaluate.report.load_scored``):
    the cross-validation on the training dataset and the external validation of its models."""
    result = accuracy_drop(per_image_correct(within_run.predictions, threshold),
                           per_image_correct(external_run.predictions, threshold),
                           n_resamples=n_resamples, seed=seed)
    return {"model": within_run.model, "trained_on": within_run.dataset,
            "tested_on": external_run.dataset, **result}
