"""Tests of `covidlib evaluate`: external validation stored like any result."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from covidlib.cli import main
from covidlib.evaluate.report import load_scored


def test_evaluate_scores_every_fold_model_on_another_dataset(
    phantom_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from covidlib.data.phantom import generate_patient_phantom

    assert main(["cv", "--dataset", "phantom", "--root", str(phantom_root), "--model",
                 "squeezenet", "--profile", "quick", "--folds", "2", "--epochs", "1",
                 "--out", str(tmp_path / "runs"), "--device", "cpu"]) == 0
    run = tmp_path / "runs" / "phantom" / "squeezenet" / "quick"
    other = generate_patient_phantom(tmp_path / "pp", patients=4, slices=3)
    capsys.readouterr()
    assert main(["evaluate", "--run", str(run), "--dataset", "phantom-patients", "--root",
                 str(other), "--out", str(tmp_path / "results"), "--json",
                 "--resamples", "200"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n_images"] == 12 and report["folds"] == [0, 1]
    assert report["dataset"] == "phantom-patients" and report["model"] == "squeezenet"
    assert 0 <= report["metrics"]["accuracy"]["mean"] <= 1
    stored = tmp_path / "results" / "phantom-patients" / "squeezenet" / "external-quick"
    assert {p.name for p in stored.iterdir()} == {"provenance.json", "report.json", "fold-0",
                                                 "fold-1"}
    provenance = json.loads((stored / "provenance.json").read_text())
    assert provenance["external"]["trained_on"] == "phantom"
    assert len(load_scored(stored).predictions) == 24
    # stored once: a second run is refused with one line
    assert main(["evaluate", "--run", str(run), "--dataset", "phantom-patients", "--root",
                 str(other), "--out", str(tmp_path / "results")]) == 2
    assert "exists already" in capsys.readouterr().err


def test_evaluate_refuses_a_folder_that_is_no_run(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "--run", str(tmp_path), "--dataset", "phantom"]) == 2
    assert "is not a run folder" in capsys.readouterr().err
