"""Class-conditional conformal triage: the coverage guarantee, refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from scipy.stats import binom

from covidlib.trust import conformal
from covidlib.trust._sources import load_run


@pytest.mark.parametrize("coverage", [0.8, 0.95])
def test_conformal_coverage_holds_on_exchangeable_data(coverage: float) -> None:
    rng = np.random.default_rng(3)
    repeats, n_cal, n_test = 200, 100, 100
    hits = {0: 0, 1: 0}
    totals = {0: 0, 1: 0}
    for _ in range(repeats):
        labels = rng.integers(0, 2, size=n_cal + n_test)
        probability = expit(rng.normal(1.5 * (2 * labels - 1), 1.5))
        triage = conformal.ConformalTriage.fit(labels[:n_cal], probability[:n_cal], coverage)
        sets = triage.predict_sets(probability[n_cal:])
        test = labels[n_cal:]
        covered = np.where(test == 1, sets["covid"], sets["non_covid"])
        for cls in (0, 1):
            hits[cls] += int(covered[test == cls].sum())
            totals[cls] += int((test == cls).sum())
    for cls in (0, 1):
        # at least the target (the guarantee), and not far above it (ceil((n+1)c)/n)
        low = binom.ppf(0.001, totals[cls], coverage) / totals[cls]
        assert low <= hits[cls] / totals[cls] <= coverage + 0.03


def test_conformal_refuses_a_planted_test_fold_overlap(synthetic_result, tmp_path: Path) -> None:
    predictions = load_run(synthetic_result(tmp_path)).predictions
    planted = predictions[predictions["fold"] == 0].iloc[:1].assign(fold=1)
    with pytest.raises(ValueError, match="also test images"):
        conformal.cross_conformal(pd.concat([predictions, planted], ignore_index=True), 0.9)


@pytest.mark.parametrize(("labels", "coverage", "message"), [
    ([1, 1, 1], 0.9, "no non_covid image"),
    ([1, 0, 1], 1.0, "outside"),
    ([1, 0, 1], 0.0, "outside"),
])
def test_conformal_bad_calibration(labels: list[int], coverage: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        conformal.ConformalTriage.fit(labels, [0.9, 0.2, 0.7], coverage)
