"""Confidence intervals, the paired comparison and the curves."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from covidlib.evaluate.compare import compare_correct, mcnemar_exact, mcnemar_table
from covidlib.evaluate.curves import calibration, mean_roc
from covidlib.evaluate.intervals import (
    bootstrap_interval,
    paired_bootstrap_difference,
    pooled_bootstrap,
    t_interval,
)


def test_t_interval_matches_scipy() -> None:
    values = np.array([0.91, 0.93, 0.90, 0.95, 0.92])
    expected = stats.t.interval(0.95, df=4, loc=values.mean(), scale=stats.sem(values))
    assert t_interval(values) == pytest.approx(expected)
    assert t_interval([0.2, 0.4], bounds=None)[0] < 0  # unclipped when asked


def test_t_interval_is_never_nan() -> None:
    assert t_interval([0.7]) == (0.7, 0.7)
    assert t_interval([0.5, 0.5, float("nan")]) == (0.5, 0.5)
    with pytest.raises(ValueError):
        t_interval([float("nan")])


def test_bootstrap_contains_the_estimate_and_narrows_with_more_samples() -> None:
    rng = np.random.default_rng(0)
    widths = []
    for n in (50, 800):
        correct = (rng.random(n) < 0.8).astype(float)
        low, high = bootstrap_interval(np.mean, correct, n_resamples=500, seed=1)
        assert low <= correct.mean() <= high
        widths.append(high - low)
    assert widths[1] < widths[0] / 2


def test_bootstrap_is_seeded_and_degenerate_data_gives_a_point() -> None:
    data = np.random.default_rng(3).random(40)
    assert bootstrap_interval(np.mean, data, seed=5) == bootstrap_interval(np.mean, data, seed=5)
    assert bootstrap_interval(np.mean, np.ones(30)) == (1.0, 1.0)
    with pytest.raises(ValueError, match="method"):
        bootstrap_interval(np.mean, data, method="magic")


def test_pooled_bootstrap_of_every_metric() -> None:
    rng = np.random.default_rng(1)
    truth = np.repeat([0, 1], 100)
    scores = np.clip(truth * 0.4 + rng.random(200) * 0.6, 0, 1)
    intervals = pooled_bootstrap(truth, scores, n_resamples=300)
    accuracy = np.mean((scores >= 0.5) == truth)
    assert intervals["accuracy"][0] <= accuracy <= intervals["accuracy"][1]
    for low, high in intervals.values():
        assert 0.0 <= low <= high <= 1.0
    with pytest.raises(ValueError, match="no bootstrap"):
        pooled_bootstrap(truth, scores, names=("kappa",))


def test_mcnemar_exact_textbook_value() -> None:
    """10 images only A gets right, 2 only B: p = 2 * P(X <= 2 | n=12, p=1/2) = 0.0386."""
    a = [1] * 10 + [0] * 2 + [1] * 30
    b = [0] * 10 + [1] * 2 + [1] * 30
    assert mcnemar_table(a, b).tolist() == [[30, 10], [2, 0]]
    assert mcnemar_exact(a, b) == pytest.approx(2 * (1 + 12 + 66) / 4096)


def test_a_model_compared_with_itself() -> None:
    correct = np.random.default_rng(0).random(150) < 0.9
    result = compare_correct(correct, correct)
    assert result["accuracy_difference"] == 0.0
    assert (result["ci_low"], result["ci_high"]) == (0.0, 0.0)
    assert result["mcnemar_p"] == 1.0


def test_a_small_lead_is_noise() -> None:
    """Two models one image apart on 150 test images: the interval straddles 0."""
    a = np.array([1] * 149 + [0])
    b = np.array([1] * 148 + [0, 1])
    b[:1] = 0
    difference, low, high = paired_bootstrap_difference(a, b, n_resamples=500)
    assert difference == pytest.approx(1 / 150) and low < 0 < high
    assert mcnemar_exact(a, b) > 0.5
    with pytest.raises(ValueError, match="pair them"):
        paired_bootstrap_difference(a, b[:-1])


def test_mean_roc_and_calibration() -> None:
    rng = np.random.default_rng(0)
    labels = np.tile([0, 1], 60)
    table = pd.DataFrame({"label": labels, "fold": np.repeat([0, 1, 2], 40),
                          "probability": np.clip(labels * 0.3 + rng.random(120) * 0.7, 0, 1)})
    roc = mean_roc(table)
    assert roc["fpr"].iloc[0] == 0 and roc["tpr_mean"].iloc[-1] == 1.0
    assert (roc["tpr_low"] <= roc["tpr_mean"]).all() and (roc["tpr_mean"] <= roc["tpr_high"]).all()
    assert roc.attrs["n_folds"] == 3 and 0.5 < roc.attrs["auc_mean"] <= 1.0
    curve = calibration(table, n_bins=5)
    assert curve["count"].sum() == len(table)
    assert 0 < curve.attrs["brier"] < 0.25
    with pytest.raises(ValueError, match="both classes"):
        mean_roc(table.assign(label=0))


def test_pooled_bootstrap_auc_matches_scikit_learn_on_the_full_sample() -> None:
    """The resampled AUC uses the Mann-Whitney form; with ties it equals roc_auc_score."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(4)
    truth = rng.integers(0, 2, 300)
    scores = np.round(np.clip(truth * 0.2 + rng.random(300) * 0.8, 0, 1), 1)  # many ties
    low, high = pooled_bootstrap(truth, scores, names=("roc_auc",), n_resamples=300)["roc_auc"]
    assert low <= roc_auc_score(truth, scores) <= high
    # a degenerate resample statistic reaches the estimate itself when nothing varies
    assert pooled_bootstrap(truth, truth * 0.9, names=("roc_auc",))["roc_auc"][1] == 1.0
