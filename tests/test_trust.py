"""Calibration, conformal triage, prevalence and model cards (covidlib.trust, its commands)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from scipy.stats import binom

from covidlib.cli import main
from covidlib.trust import calibration, conformal, prevalence
from covidlib.trust.card import model_card


def stored_result(folder: Path, n_folds: int = 3, per_fold: int = 80, seed: int = 0,
                  dataset: str = "covid19-ct", logit: bool = True) -> Path:
    """A stored result of an overconfident model (logits 2.5x the true log-odds 2.4 x)."""
    rng = np.random.default_rng(seed)
    target = folder / dataset / "resnet18" / f"synthetic-{seed}"
    provenance = {"dataset": dataset, "model": "resnet18", "profile": "synthetic",
                  "n_folds": n_folds, "weights": "random", "data": "synthetic",
                  "hardware": "none", "date": "2026-12-07", "commit": "none"}
    target.mkdir(parents=True)
    (target / "provenance.json").write_text(json.dumps(provenance))
    for fold in range(n_folds):
        label = np.arange(per_fold) % 2
        truth = rng.normal(1.2 * (2 * label - 1), 1.0)
        rows = pd.DataFrame({"path": [f"f{fold}-{i}.png" for i in range(per_fold)],
                             "relpath": [f"f{fold}-{i}.png" for i in range(per_fold)],
                             "label": label, "probability": expit(6 * truth), "fold": fold})
        if logit:
            rows["logit"] = 6 * truth
        (target / f"fold-{fold}").mkdir()
        rows.to_csv(target / f"fold-{fold}" / "predictions.csv", index=False)
    return target


# -- calibration ---------------------------------------------------------------------------

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


def test_cross_fitted_temperature_never_uses_the_test_fold(tmp_path: Path) -> None:
    from covidlib.trust._sources import load_run

    run = load_run(stored_result(tmp_path))
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


# -- conformal -----------------------------------------------------------------------------

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


def test_conformal_refuses_a_planted_test_fold_overlap(tmp_path: Path) -> None:
    from covidlib.trust._sources import load_run

    predictions = load_run(stored_result(tmp_path)).predictions
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


# -- prevalence ----------------------------------------------------------------------------

@pytest.mark.parametrize("prev", [0.02, 0.05, 0.3, 0.5, 0.9])
def test_predictive_values_match_the_textbook(prev: float) -> None:
    # 1000 patients: sensitivity 0.85, specificity 0.95 -> counts, then PPV = TP / (TP + FP)
    se, sp, n = 0.85, 0.95, 1000
    tp, fn = se * prev * n, (1 - se) * prev * n
    tn, fp = sp * (1 - prev) * n, (1 - sp) * (1 - prev) * n
    ppv, npv = prevalence.predictive_values(se, sp, prev)
    assert float(ppv) == pytest.approx(tp / (tp + fp))
    assert float(npv) == pytest.approx(tn / (tn + fn))


def test_predictive_value_intervals_contain_the_estimate() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 400)
    p = expit(rng.normal(2 * labels - 1, 1))
    curves = prevalence.predictive_value_curves(labels, p)
    assert (curves["ppv_low"] <= curves["ppv"]).all()
    assert (curves["ppv"] <= curves["ppv_high"]).all()
    assert curves["ppv"].is_monotonic_increasing and curves["npv"].is_monotonic_decreasing
    point = prevalence.operating_point(labels, p, 0.9)
    assert point["sensitivity"] >= 0.9
    assert prevalence.rates(labels, p, point["threshold"] + 1e-9)["sensitivity"] < 0.9


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1, 1.5])
def test_prevalence_outside_the_unit_interval_is_refused(bad: float) -> None:
    with pytest.raises(ValueError, match=f"prevalence {bad} is outside"):
        prevalence.predictive_values(0.9, 0.9, bad)


# -- model card ----------------------------------------------------------------------------

def test_model_card_numbers_come_from_the_run_files(tmp_path: Path) -> None:
    folder = stored_result(tmp_path)
    table = pd.concat([pd.read_csv(f) for f in sorted(folder.glob("fold-*/predictions.csv"))])
    correct = (table["probability"] >= 0.5).astype(int) == table["label"]
    accuracy = correct.groupby(table["fold"]).mean().mean()
    ece = calibration.expected_calibration_error(table["label"], table["probability"])
    text = model_card(folder, audit="none", n_resamples=200)
    assert f"| {100 * accuracy:.1f} ± " in text
    assert f"ECE (top label, 15 equal-width bins, pooled test folds): {100 * ece:.1f}%" in text
    assert f"{len(table)} test predictions ({int(table['label'].sum())} COVID" in text
    assert "Not for clinical use" in text and "Source bias" in text
    assert "No external validation" in text and "No audit of covid19-ct" in text


def test_model_card_reads_stored_audit_and_external_validation(tmp_path: Path) -> None:
    folder = stored_result(tmp_path)
    audit = {"dataset": "covid19-ct", "n_images": 746, "method": "phash+dhash",
             "threshold": 0.125, "identical_sets": 3, "identical_files": 7, "near_pairs": 41,
             "pseudo_patients": 583, "date": "2026-12-07"}
    (tmp_path / "covid19-ct" / "audit.json").write_text(json.dumps(audit))
    external = stored_result(tmp_path, dataset="sars-cov-2-ct", seed=1)
    provenance = json.loads((external / "provenance.json").read_text())
    provenance["external"] = {"trained_on": "covid19-ct"}
    (external / "provenance.json").write_text(json.dumps(provenance))
    (external / "summary.json").write_text(json.dumps(
        {"metrics": {"accuracy": {"mean": 0.5123}}}))
    text = model_card(folder, audit="stored", n_resamples=200)
    assert "41 near-duplicate pair(s)" in text and "583 pseudo-patients" in text
    assert "Tested on sars-cov-2-ct" in text and "accuracy 51.2%" in text


# -- commands ------------------------------------------------------------------------------

def test_calibrate_json_has_the_headline_keys(tmp_path: Path, capsys) -> None:
    folder = stored_result(tmp_path, logit=False)
    assert main(["calibrate", str(folder), "--coverage", "0.9", "0.95", "--json",
                 "--resamples", "200"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert {"ece", "ece_scaled", "brier", "temperature", "conformal"} <= set(result)
    assert 0 <= result["ece_scaled"] < result["ece"] <= 1
    assert result["temperature"] > 1.5
    assert [row["coverage"] for row in result["conformal"]] == [0.9, 0.95]
    assert all(0 <= row["referral_rate"] <= 1 for row in result["conformal"])


def test_card_writes_a_file(tmp_path: Path) -> None:
    out = tmp_path / "card.md"
    assert main(["card", str(stored_result(tmp_path)), "--out", str(out), "--audit", "none",
                 "--resamples", "200"]) == 0
    assert out.read_text().startswith("# Model card: ResNet18 on COVID19-CT")


def _no_probability(tmp_path: Path) -> str:
    folder = stored_result(tmp_path, logit=False)
    table = pd.read_csv(folder / "fold-1" / "predictions.csv")
    table["probability"] = np.nan
    table.to_csv(folder / "fold-1" / "predictions.csv", index=False)
    return str(folder)


@pytest.mark.parametrize(("argv", "message"), [
    (lambda tmp: ["calibrate", str(stored_result(tmp)), "--coverage", "1.5"], "--coverage"),
    (lambda tmp: ["calibrate", str(tmp / "nowhere")], "is not a folder"),
    (lambda tmp: ["calibrate", _no_probability(tmp)], "have no probability"),
    (lambda tmp: ["card", str(tmp)], "neither a run folder"),
])
def test_bad_input_is_one_line_with_exit_2(tmp_path: Path, capsys, argv, message: str) -> None:
    assert main(argv(tmp_path)) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and message in error and "Traceback" not in error


def test_logits_fall_back_to_clipped_probabilities() -> None:
    from covidlib.trust._sources import logits_of

    logits = logits_of(pd.DataFrame({"probability": [0.0, 0.5, 0.8]}))
    assert np.isfinite(logits).all() and logits[1] == 0
    assert math.isclose(logits[2], math.log(4))
    assert re.match(r"-1[56]\.", f"{logits[0]:.1f}")


# -- the study over stored results, datasheets ---------------------------------------------

def test_shift_pairs_prefer_external_validation(tmp_path: Path) -> None:
    from covidlib.trust import study

    stored_result(tmp_path, dataset="covid19-ct", seed=0)
    stored_result(tmp_path, dataset="sars-cov-2-ct", seed=1)
    pairs = study.shift_pairs(study.real_results(tmp_path))
    assert sorted(zip(pairs["calibrated_on"], pairs["applied_to"], strict=True)) == [
        ("covid19-ct", "sars-cov-2-ct"), ("sars-cov-2-ct", "covid19-ct")]
    assert set(pairs["kind"]) == {"carried over"}
    external = stored_result(tmp_path, dataset="sars-cov-2-ct", seed=2)
    provenance = json.loads((external / "provenance.json").read_text())
    (external / "provenance.json").write_text(json.dumps(
        {**provenance, "external": {"trained_on": "covid19-ct"}}))
    pairs = study.shift_pairs(study.stored_results(tmp_path))
    where = zip(pairs["calibrated_on"], pairs["applied_to"], strict=True)
    kinds = dict(zip(where, pairs["kind"], strict=True))
    assert kinds[("covid19-ct", "sars-cov-2-ct")] == "external"
    shift = study.shift_table(pairs, 0.9)
    # exchangeable synthetic data: the coverage carried to the other dataset holds
    assert shift["holds"].all() and (shift["shifted_referral"] < 1).all()


def test_datasheet_pages_are_current() -> None:
    from covidlib.trust.datasheet import DATASHEET_DATASETS, datasheet

    root = Path(__file__).resolve().parents[1]
    for name in DATASHEET_DATASETS:
        page = root / "chapters" / "datasheets" / f"{name}.md"
        assert page.read_text() == datasheet(name, root / "results"), (
            f"{page} is stale: run covidlib.trust.datasheet.write_datasheets("
            "'chapters/datasheets', 'results')")
