"""Tests of `covidlib cv` and `covidlib predict`."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from covidlib.cli import main


def recomputed(predictions: pd.DataFrame) -> dict[str, float]:
    truth, predicted = predictions["label"], (predictions["probability"] >= 0.5).astype(int)
    return {
        "accuracy": accuracy_score(truth, predicted),
        "precision": precision_score(truth, predicted, zero_division=0),
        "recall": recall_score(truth, predicted, zero_division=0),
        "specificity": recall_score(truth, predicted, pos_label=0, zero_division=0),
        "f1": f1_score(truth, predicted, zero_division=0),
    }


def assert_summary_matches_predictions(run_dir: Path) -> None:
    summary = json.loads((run_dir / "summary.json").read_text())
    predictions = pd.read_csv(run_dir / "predictions.csv")
    assert summary["complete"] and sorted(summary["folds"]) == ["0", "1", "2", "3", "4"]
    for fold, rows in predictions.groupby("fold"):
        expected = recomputed(rows)
        scored = summary["folds"][str(fold)]
        assert {name: scored[name] for name in expected} == pytest.approx(expected)
        fold_rows = pd.read_csv(run_dir / f"fold-{fold}" / "predictions.csv")
        pd.testing.assert_frame_equal(fold_rows, rows.reset_index(drop=True))


@pytest.fixture(scope="module")
def small_phantom(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from covidlib.data.phantom import generate_phantom

    return Path(generate_phantom(tmp_path_factory.mktemp("phantom"), n=30, seed=1))


def test_cv_and_predict_on_a_small_phantom(
    small_phantom: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["cv", "--dataset", "phantom", "--root", str(small_phantom), "--model", "squeezenet",
            "--epochs", "1", "--profile", "quick", "--out", str(tmp_path)]
    assert main(args) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "fold 4:" in out and "mean" in out and "±" in out
    # not a terminal: one line per epoch instead of progress-bar frames
    assert [line.split(":")[0] for line in out.splitlines() if " epoch 1/1:" in line] == [
        f"fold {k} epoch 1/1" for k in range(5)]
    assert "\r" not in captured.out + captured.err
    run_dir = tmp_path / "phantom" / "squeezenet" / "quick"
    assert_summary_matches_predictions(run_dir)

    assert main(args) == 0  # a rerun skips every finished fold
    assert capsys.readouterr().out.count("skipped") == 5

    # the run reads back as Table 2 and compares with itself as a tie
    assert main(["report", str(run_dir), "--paper", "--format", "md", "--resamples", "200"]) == 0
    table = capsys.readouterr().out
    assert "| phantom" in table and "squeezenet" in table and "run (custom)" in table
    assert "| paper " not in table  # the paper has no row for the phantom
    assert main(["compare", str(run_dir), str(run_dir), "--json"]) == 0
    tie = json.loads(capsys.readouterr().out)
    assert tie["accuracy_difference"] == 0 and tie["mcnemar_p"] == 1.0

    images = sorted(small_phantom.glob("*/phantom_*.png"))[:2]
    assert main(["predict", "--run", str(run_dir), "--fold", "2", *map(str, images)]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("#")]
    assert len(lines) == 2
    for line, image in zip(lines, images, strict=True):
        path, probability, label = line.split("\t")
        assert path == str(image) and 0.0 <= float(probability) <= 1.0
        assert label == ("COVID" if float(probability) >= 0.5 else "non-COVID")


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--model", "nonet"], "nonet"), (["--model", "squeezenet", "--fold", "7"], "fold"),
     (["--model", "squeezenet", "--split", "official"], "official")],
)
def test_cv_errors_are_one_line(
    small_phantom: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    extra: list[str], message: str,
) -> None:
    out = tmp_path / "runs"
    code = main(["cv", "--dataset", "phantom", "--root", str(small_phantom), "--epochs", "1",
                 "--out", str(out), *extra])
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()  # nothing written: no folds file, no run folder


def test_experiment_options_are_shared(tmp_path: Path) -> None:
    import argparse

    from covidlib.cli import build_parser
    from covidlib.cli.options import add_experiment_options, experiment_from_args

    shared = argparse.ArgumentParser()
    add_experiment_options(shared)
    names = {a.dest for a in shared._actions if a.dest != "help"}
    assert names == {"dataset", "root", "model", "profile", "split", "groups", "folds", "seed",
                     "epochs", "batch_size", "lr", "weights", "strategy", "skip_problems",
                     "device", "workers", "canvas_scale", "labels"}
    args = build_parser().parse_args([
        "cv", "--model", "resnet18", "--profile", "full", "--dataset", "phantom", "--folds", "3",
        "--seed", "2", "--epochs", "4", "--batch-size", "8", "--lr", "0.01", "--weights",
        "random", "--skip-problems", "--device", "cpu", "--workers", "2",
        "--out", str(tmp_path)])
    assert names <= set(vars(args))
    config, runtime = experiment_from_args(args)
    assert (config.dataset, config.model, config.n_folds, config.seed, config.weights) == (
        "phantom", "resnet18", 3, 2, "random")
    assert (config.train.epochs, config.train.batch_size, config.train.lr) == (4, 8, 0.01)
    assert config.skip_problems and config.canvas_scale == 1.0  # the full profile's
    assert (runtime.device, runtime.num_workers) == ("cpu", 2)
    defaults, _ = experiment_from_args(build_parser().parse_args(
        ["cv", "--model", "resnet18", "--profile", "quick"]))
    assert (defaults.dataset, defaults.n_folds, defaults.train.epochs) == ("phantom", 5, 6)


def test_skip_problems_reports_the_skipped_files(
    small_phantom: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    root = tmp_path / "phantom"
    shutil.copytree(small_phantom, root)
    for name in ("bad1.png", "bad2.png"):
        (root / "COVID" / name).write_bytes(b"not a png")
    args = ["cv", "--dataset", "phantom", "--root", str(root), "--model", "squeezenet",
            "--epochs", "1", "--profile", "quick", "--out", str(tmp_path / "runs"), "--fold", "0"]
    assert main(args) == 2
    assert "bad1.png" in capsys.readouterr().err
    assert main([*args, "--skip-problems"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("skipped"))
    assert line.startswith("skipped 2 unreadable file(s)") and "bad1.png" in line
    run_dir = tmp_path / "runs" / "phantom" / "squeezenet" / "quick"
    assert len(pd.read_csv(run_dir / "skipped.csv")) == 2
    assert json.loads((run_dir / "config.json").read_text())["skip_problems"] is True


def test_changed_epochs_are_refused(
    small_phantom: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["cv", "--dataset", "phantom", "--root", str(small_phantom), "--model", "squeezenet",
            "--profile", "quick", "--out", str(tmp_path), "--fold", "0"]
    assert main([*base, "--epochs", "1"]) == 0
    assert main([*base, "--epochs", "2"]) == 2
    assert "train.epochs" in capsys.readouterr().err


def test_predict_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", "--run", str(tmp_path), "x.png"]) == 2
    assert "not a run folder" in capsys.readouterr().err


@pytest.mark.slow
def test_done_when_command(tmp_path: Path) -> None:
    """The issue's command: 5 folds of SqueezeNet on the quick phantom, 1 epoch, on CPU."""
    args = ["cv", "--dataset", "phantom", "--model", "squeezenet", "--epochs", "1",
            "--profile", "quick", "--out", str(tmp_path)]
    assert main(args) == 0
    assert_summary_matches_predictions(tmp_path / "phantom" / "squeezenet" / "quick")
