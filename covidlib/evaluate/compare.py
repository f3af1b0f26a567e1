"""Paired comparison of two models scored on the same images.

A lead of 0.1 accuracy points between two networks is often noise. Two tests that use the
pairing (both models saw the same test images):

* McNemar's exact test (``statsmodels``) on the images where exactly one model is right;
* a paired bootstrap of the accuracy difference (:func:`covidlib.evaluate.intervals.
  paired_bootstrap_difference`).

Example:
    >>> a = [1, 1, 1, 1, 0, 1, 1, 1]
    >>> b = [1, 1, 1, 0, 0, 1, 1, 1]
    >>> result = compare_correct(a, b)
    >>> result["accuracy_difference"], result["mcnemar_p"]
    (0.125, 1.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from covidlib.evaluate.intervals import paired_bootstrap_difference


def mcnemar_table(
    correct_a: Sequence[float] | np.ndarray, correct_b: Sequence[float] | np.ndarray
) -> np.ndarray:
    """Return the 2x2 table [[both right, only A right], [only B right, both wrong]].

    Example:
        >>> mcnemar_table([1, 1, 0, 0], [1, 0, 1, 0]).tolist()
        [[1, 1], [1, 1]]
    """
    a = np.asarray(correct_a, dtype=bool).ravel()
    b = np.asarray(correct_b, dtype=bool).ravel()
    if a.shape != b.shape:
        raise ValueError(f"the two models were scored on {a.size} and {b.size} images; "
                         "pair them on the same images first.")
    return np.array([[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]])


def mcnemar_exact(
    correct_a: Sequence[float] | np.ndarray, correct_b: Sequence[float] | np.ndarray
) -> float:
    """Return McNemar's exact two-sided p-value (binomial test on the discordant pairs).

    No discordant image (the models agree everywhere) gives p = 1.

    Example:
        >>> round(mcnemar_exact([1] * 10 + [0] * 0, [0] * 10), 5)  # 10 vs 0 discordant
        0.00195
    """
    from statsmodels.stats.contingency_tables import mcnemar

    table = mcnemar_table(correct_a, correct_b)
    if table[0, 1] + table[1, 0] == 0:
        return 1.0
    return float(min(1.0, mcnemar(table, exact=True).pvalue))


def compare_correct(
    correct_a: Sequence[float] | np.ndarray,
    correct_b: Sequence[float] | np.ndarray,
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Compare two models from their per-image correctness on the same images.

    Returns:
        ``accuracy_a``, ``accuracy_b``, ``accuracy_difference`` (A - B), ``ci_low``,
        ``ci_high`` (paired bootstrap, percentile), ``mcnemar_p``, ``n_images``,
        ``only_a_right``, ``only_b_right``.
    """
    a = np.asarray(correct_a, dtype=float).ravel()
    b = np.asarray(correct_b, dtype=float).ravel()
    table = mcnemar_table(a, b)
    difference, low, high = paired_bootstrap_difference(
        a, b, confidence=confidence, n_resamples=n_resamples, seed=seed
    )
    return {
        "n_images": int(a.size),
        "accuracy_a": float(a.mean()),
        "accuracy_b": float(b.mean()),
        "accuracy_difference": difference,
        "ci_low": low,
        "ci_high": high,
        "mcnemar_p": mcnemar_exact(a, b),
        "only_a_right": int(table[0, 1]),
        "only_b_right": int(table[1, 0]),
    }
