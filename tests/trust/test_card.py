"""Model cards, datasheets and the study over stored results."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from covidlib.trust import calibration, study
from covidlib.trust.card import model_card
from covidlib.trust.datasheet import DATASHEET_DATASETS, datasheet


def test_model_card_numbers_come_from_the_run_files(synthetic_result, tmp_path: Path) -> None:
    folder = synthetic_result(tmp_path)
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


def test_model_card_reads_stored_audit_and_external_validation(synthetic_result,
                                                               tmp_path: Path) -> None:
    folder = synthetic_result(tmp_path)
    audit = {"dataset": "covid19-ct", "n_images": 746, "method": "phash+dhash",
             "threshold": 0.125, "identical_sets": 3, "identical_files": 7, "near_pairs": 41,
             "pseudo_patients": 583, "date": "2026-12-07"}
    (tmp_path / "covid19-ct" / "audit.json").write_text(json.dumps(audit))
    external = synthetic_result(tmp_path, dataset="sars-cov-2-ct", seed=1)
    provenance = json.loads((external / "provenance.json").read_text())
    provenance["external"] = {"trained_on": "covid19-ct"}
    (external / "provenance.json").write_text(json.dumps(provenance))
    (external / "summary.json").write_text(json.dumps(
        {"metrics": {"accuracy": {"mean": 0.5123}}}))
    text = model_card(folder, audit="stored", n_resamples=200)
    assert "41 near-duplicate pair(s)" in text and "583 pseudo-patients" in text
    assert "Tested on sars-cov-2-ct" in text and "accuracy 51.2%" in text


def test_shift_pairs_prefer_external_validation(synthetic_result, tmp_path: Path) -> None:
    synthetic_result(tmp_path, dataset="covid19-ct", seed=0)
    synthetic_result(tmp_path, dataset="sars-cov-2-ct", seed=1)
    pairs = study.shift_pairs(study.real_results(tmp_path))
    assert sorted(zip(pairs["calibrated_on"], pairs["applied_to"], strict=True)) == [
        ("covid19-ct", "sars-cov-2-ct"), ("sars-cov-2-ct", "covid19-ct")]
    assert set(pairs["kind"]) == {"carried over"}
    external = synthetic_result(tmp_path, dataset="sars-cov-2-ct", seed=2)
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
    root = Path(__file__).resolve().parents[2]
    for name in DATASHEET_DATASETS:
        page = root / "chapters" / "datasheets" / f"{name}.md"
        assert page.read_text() == datasheet(name, root / "results"), (
            f"{page} is stale: run covidlib.trust.datasheet.write_datasheets("
            "'chapters/datasheets', 'results')")


def test_prevalence_of_stored_results(synthetic_result, tmp_path: Path) -> None:
    synthetic_result(tmp_path)
    table = study.prevalence_stored(study.real_results(tmp_path), 0.05)
    row = table.iloc[0]
    assert row["ppv_low"] <= row["ppv"] <= row["ppv_high"] and row["npv"] > row["ppv"]


def test_stored_results_filter_by_profile_and_dataset(synthetic_result, tmp_path: Path) -> None:
    synthetic_result(tmp_path, dataset="covid19-ct")
    synthetic_result(tmp_path, dataset="sars-cov-2-ct", seed=1)
    assert len(study.stored_results(tmp_path)) == 2
    assert study.stored_results(tmp_path, dataset="sars-cov-2-ct")["id"].tolist() == [
        "synthetic-1"]
    assert study.stored_results(tmp_path, profile="cpu").empty
