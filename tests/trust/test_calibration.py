"""Calibration: ECE by hand, the Brier decomposition, temperature scaling."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from covidlib.trust import calibration
from covidlib.trust._sources import load_run, logits_of


@pytest.mark.parametrize(("binning", "expected"), [
    # width, 2 bins: confidences 0.9, 0.6, 0.7, 0.8, 0.55 all fall in (0.5, 1]: accuracy 3/5,
    # mean confidence 0.71 -> |0.6 - 0.71| = 0.11.
    ("width", 0.11),
    # mass, 2 bins of sorted confidences {0.55, 0.6, 0.7} (2 right: |2/3 - 0.6166|) and
    # {0.8, 0.9} (1 right: |0.5 - 0.85|): 3/5 * 0.05 + 2/5 * 0.35 = 0.17.
    ("mass", 0.17),
])
def test_ece_by_hand(binning: str, expected: float) -> None:
    labels = [1, 1, 0, 0, 1]
    probability = [0.9, 0.6, 0.3, 0.8, 0.45]  # calls: right, right, right, wrong, wrong
    ece = calibration.expected_calibration_error(labels, probability, n_bins=2,
                                                 binning=binning)
    assert ece == pytest.approx(expected)


def test_ece_with_15_bins_matches_the_table() -> None:
    rng = np.random.default_rng(1)
    p = rng.uniform(size=200)
    y = rng.uniform(size=200) < p
    table = calibration.reliability_table(y, p)
    by_table = float((table["count"] * table["gap"].abs()).sum() / 200)
    assert calibration.expected_calibration_error(y, p) == pytest.approx(by_table)
    assert table["count"].sum() == 200


def test_temperature_scaling_lowers_the_nll_of_an_overconfident_model() -> None:
    rng = np.random.default_rng(0)
    truth = rng.normal(size=3000)
    labels = (rng.uniform(size=3000) < expit(truth)).astype(int)
    logits = 4 * truth
    temperature = calibration.fit_temperature(logits[:1500], labels[:1500])
    assert 3 < temperature < 5
    held_out = slice(1500, None)
    before = calibration.negative_log_likelihood(logits[held_out], labels[held_out])
    after = calibration.negative_log_likelihood(logits[held_out], labels[held_out], temperature)
    assert after < before - 0.1
    ece_after = calibration.expected_calibration_error(labels[held_out],
                                                       expit(logits[held_out] / temperature))
    assert ece_after < calibration.expected_calibration_error(labels[held_out],
                                                              expit(logits[held_out]))


def test_cross_fitted_temperature_never_uses_the_test_fold(synthetic_result,
                                                           tmp_path: Path) -> None:
    run = load_run(synthetic_result(tmp_path))
    per_fold, scaled = calibration.cross_fitted_temperature(run.predictions)
    changed = run.predictions.assign(logit=np.where(run.predictions["fold"] == 0, 0.0,
                                                    run.predictions["logit"]))
    again, _ = calibration.cross_fitted_temperature(changed)
    assert again.loc[0, "temperature"] == pytest.approx(per_fold.loc[0, "temperature"])
    assert (per_fold["temperature"] > 1.5).all()
    assert (per_fold["nll_scaled"] < per_fold["nll"]).all()
    assert scaled.shape == (len(run.predictions),)


def test_brier_decomposition_adds_up() -> None:
    parts = calibration.brier_decomposition([1, 0, 1, 0], [0.9, 0.9, 0.1, 0.1], n_bins=10)
    assert parts["brier"] == pytest.approx(0.41)
    assert parts["reliability"] - parts["resolution"] + parts["uncertainty"] == pytest.approx(
        parts["brier"])


def test_logits_fall_back_to_clipped_probabilities() -> None:
    logits = logits_of(pd.DataFrame({"probability": [0.0, 0.5, 0.8]}))
    assert np.isfinite(logits).all() and logits[1] == 0
    assert math.isclose(logits[2], math.log(4))
    assert re.match(r"-1[56]\.", f"{logits[0]:.1f}")


def test_temperature_refuses_folds_that_share_images(synthetic_result, tmp_path: Path) -> None:
    predictions = load_run(synthetic_result(tmp_path)).predictions
    first = predictions[predictions["fold"] == 0]
    external = pd.concat([first, first.assign(fold=1)], ignore_index=True)  # two fold models
    with pytest.raises(ValueError, match="also test images"):
        calibration.cross_fitted_temperature(external)


def test_a_run_with_logits_only_is_read_through_the_sigmoid(synthetic_result,
                                                            tmp_path: Path) -> None:
    folder = synthetic_result(tmp_path)
    for table_file in folder.glob("fold-*/predictions.csv"):
        table = pd.read_csv(table_file)
        table.assign(probability=np.nan).to_csv(table_file, index=False)
    predictions = load_run(folder).predictions
    assert np.allclose(predictions["probability"], expit(predictions["logit"]))
