"""Conformal triage: answer {COVID}, {non-COVID}, or both (refer to a radiologist).

Class-conditional (Mondrian) split conformal prediction for two classes. The score of an
image for a candidate class is 1 - the model's probability of that class; for each class
the threshold is the ceil((n + 1) c) / n empirical quantile of the scores of the
calibration images *of that class*, so that each class separately gets coverage >= c
(Vovk et al. 2005; Angelopoulos & Bates 2021). A class enters an image's prediction set
when its score is at most its threshold; a set of two classes, or none, is a referral.

:func:`cross_conformal` calibrates each test fold on the other folds' out-of-fold
predictions (cross-conformal in the sense of Vovk 2015, one test fold at a time): stored
results hold test-fold predictions only. :func:`transfer_conformal` calibrates on one set
of predictions and applies the thresholds to another (another dataset: the shift).
Calibration refuses any image of the set it is applied to.

Written here rather than taken from MAPIE or crepes: both accept precomputed scores only
around a fitted classifier (MAPIE's prefit estimator; crepes' Mondrian bins belong to the
test object, while label-conditional bins belong to each candidate label), and the method
is the few lines of :func:`class_thresholds`; the tests check its guarantee.

Example:
    >>> calibration = ConformalTriage.fit([1, 1, 1, 0, 0, 0], [0.9, 0.8, 0.6, 0.1, 0.3, 0.7],
    ...                                   coverage=0.75)
    >>> calibration.predict_sets([0.95, 0.65, 0.2]).to_dict("list")  # COVID, refer, non-COVID
    {'covid': [True, True, False], 'non_covid': [False, True, True]}
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import proportion_confint

from covidlib.trust._sources import image_keys

COVERAGES: tuple[float, ...] = (0.90, 0.95, 0.99)
CLASS_NAMES: dict[int, str] = {1: "covid", 0: "non_covid"}


def check_coverage(coverage: float) -> float:
    """Return ``coverage`` if it lies in (0, 1); else a one-line error naming it."""
    value = float(coverage)
    if not 0 < value < 1:
        raise ValueError(f"coverage {coverage} is outside (0, 1); use e.g. 0.9, 0.95 or 0.99.")
    return value


def class_thresholds(labels: Any, probability: Any, coverage: float) -> dict[int, float]:
    """Return each class's score threshold (``inf`` when it has too few images to refuse).

    Raises:
        ValueError: a coverage outside (0, 1), or a calibration set without both classes.

    Example:
        >>> class_thresholds([1, 1, 1, 0], [0.9, 0.7, 0.2, 0.4], 0.5)
        {0: 0.4, 1: 0.30000000000000004}
    """
    coverage = check_coverage(coverage)
    y = np.asarray(labels, dtype=int).ravel()
    p = np.asarray(probability, dtype=float).ravel()
    missing = [CLASS_NAMES[c] for c in (0, 1) if not (y == c).any()]
    if missing:
        raise ValueError(f"the calibration set has no {' and no '.join(missing)} image; "
                         "class-conditional conformal needs both classes.")
    thresholds = {}
    for cls in (0, 1):
        scores = np.sort(1 - np.where(cls == 1, p, 1 - p)[y == cls])
        rank = math.ceil((scores.size + 1) * coverage)
        thresholds[cls] = float(scores[rank - 1]) if rank <= scores.size else math.inf
    return thresholds


@dataclass(frozen=True)
class ConformalTriage:
    """Class thresholds fitted on a calibration set, for one target coverage."""

    coverage: float
    thresholds: dict[int, float]
    n_calibration: int

    @classmethod
    def fit(cls, labels: Any, probability: Any, coverage: float) -> ConformalTriage:
        """Fit the thresholds on calibration labels and COVID probabilities."""
        return cls(check_coverage(coverage), class_thresholds(labels, probability, coverage),
                   int(np.asarray(labels).size))

    def predict_sets(self, probability: Any) -> pd.DataFrame:
        """Return, for each image, whether ``covid`` and ``non_covid`` are in its set."""
        p = np.asarray(probability, dtype=float).ravel()
        return pd.DataFrame({"covid": 1 - p <= self.thresholds[1],
                             "non_covid": p <= self.thresholds[0]})


def triage_summary(labels: Any, sets: pd.DataFrame, coverage: float,
                   confidence: float = 0.95) -> dict[str, Any]:
    """Return what the sets did: coverage per class with Clopper-Pearson intervals, the
    referral rate (sets of two classes or none) and the accuracy on the images kept.

    Example:
        >>> sets = pd.DataFrame({"covid": [True, True, False], "non_covid": [False, True, True]})
        >>> summary = triage_summary([1, 0, 0], sets, 0.9)
        >>> summary["coverage_covid"], round(summary["referral_rate"], 3), summary["accuracy_kept"]
        (1.0, 0.333, 1.0)
    """
    y = np.asarray(labels, dtype=int).ravel()
    covered = np.where(y == 1, sets["covid"].to_numpy(), sets["non_covid"].to_numpy())
    single = sets["covid"].to_numpy() != sets["non_covid"].to_numpy()
    summary: dict[str, Any] = {"coverage": float(coverage), "n": int(y.size)}
    for cls, name in CLASS_NAMES.items():
        hits, total = int(covered[y == cls].sum()), int((y == cls).sum())
        low, high = (proportion_confint(hits, total, 1 - confidence, method="beta")
                     if total else (math.nan, math.nan))
        summary[f"coverage_{name}"] = hits / total if total else math.nan
        summary[f"coverage_{name}_low"], summary[f"coverage_{name}_high"] = (float(low),
                                                                            float(high))
    kept = covered[single]
    summary.update(referral_rate=float(1 - single.mean()), n_kept=int(single.sum()),
                   accuracy_kept=float(kept.mean()) if kept.size else math.nan)
    return summary


def check_disjoint(calibration: pd.DataFrame, test: pd.DataFrame) -> None:
    """Refuse a calibration set sharing images with the set it will be applied to.

    Example:
        >>> table = pd.DataFrame({"path": ["a.png"]})
        >>> check_disjoint(table, table)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: 1 calibration image(s) are also test images (e.g. 'a.png'); calibrate on ...
    """
    shared = sorted(set(image_keys(calibration)) & set(image_keys(test)))
    if shared:
        raise ValueError(f"{len(shared)} calibration image(s) are also test images (e.g. "
                         f"{shared[0]!r}); calibrate on data disjoint from the test fold.")


def cross_conformal(predictions: pd.DataFrame, coverage: float) -> pd.DataFrame:
    """Return every row's prediction set, each test fold calibrated on the other folds.

    Raises:
        ValueError: one fold only, a fold whose calibration set lacks a class, or an image
            in a test fold and its calibration folds (planted or duplicated rows).
    """
    folds = sorted(int(k) for k in predictions["fold"].unique())
    if len(folds) < 2:
        raise ValueError("cross-conformal needs at least two folds (it calibrates each test "
                         "fold on the others).")
    sets = pd.DataFrame(index=predictions.index, columns=["covid", "non_covid"], dtype=bool)
    for fold in folds:
        test = predictions["fold"].to_numpy() == fold
        calibration, target = predictions[~test], predictions[test]
        check_disjoint(calibration, target)
        triage = ConformalTriage.fit(calibration["label"], calibration["probability"], coverage)
        sets.loc[test] = triage.predict_sets(target["probability"]).to_numpy()
    return sets.astype(bool)


def transfer_conformal(calibration: pd.DataFrame, test: pd.DataFrame, coverage: float
                       ) -> pd.DataFrame:
    """Return the prediction sets of ``test`` with thresholds calibrated on ``calibration``."""
    check_disjoint(calibration, test)
    triage = ConformalTriage.fit(calibration["label"], calibration["probability"], coverage)
    return triage.predict_sets(test["probability"]).set_axis(test.index)


def conformal_table(predictions: pd.DataFrame, coverages: Sequence[float] = COVERAGES, *,
                    calibration: pd.DataFrame | None = None) -> pd.DataFrame:
    """Return one :func:`triage_summary` row per target coverage.

    Cross-conformal over the folds of ``predictions``, or, given ``calibration``, its
    thresholds applied to ``predictions`` (:func:`transfer_conformal`).
    """
    rows = []
    for coverage in coverages:
        sets = (cross_conformal(predictions, coverage) if calibration is None
                else transfer_conformal(calibration, predictions, coverage))
        rows.append(triage_summary(predictions["label"], sets, coverage))
    return pd.DataFrame(rows)
