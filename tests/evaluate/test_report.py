"""Reports and paired comparisons on hand-made run folders and stored results."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from covidlib.cli import main
from covidlib.engine.runs import FoldFiles
from covidlib.evaluate.report import (
    REPORT_METRICS,
    ReportError,
    compare_scored,
    format_report,
    load_scored,
    store_result,
    summarize_scored,
    write_example_result,
)


def make_run(folder: Path, dataset: str = "phantom", model: str = "resnet18", n_folds: int = 5,
             finished: tuple[int, ...] | None = None, seed: int = 0, skill: float = 0.3,
             fold_seed: int = 0) -> Path:
    """A run folder as `covidlib cv` writes it, with made-up predictions (no training)."""
    rng = np.random.default_rng(seed)
    n = 20 * n_folds
    labels = np.tile([0, 1], n // 2)
    folds = np.random.default_rng(fold_seed).permutation(np.repeat(np.arange(n_folds), 20))
    scores = np.clip(labels * skill + rng.random(n) * (1 - skill), 0, 1)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(
        {"dataset": dataset, "model": model, "n_folds": n_folds, "split": "stratified",
         "profile": "quick"}))
    for fold in range(n_folds) if finished is None else finished:
        rows = folds == fold
        table = pd.DataFrame({"path": [f"/data/img{i}.png" for i in np.flatnonzero(rows)],
                              "relpath": [f"img{i}.png" for i in np.flatnonzero(rows)],
                              "label": labels[rows], "probability": scores[rows], "fold": fold})
        FoldFiles(folder / f"fold-{fold}").write_results({}, table, {"fold": fold}, [])
    return folder


def test_summary_of_a_run_folder(tmp_path: Path) -> None:
    run = load_scored(make_run(tmp_path / "run"))
    report = summarize_scored(run, n_resamples=300)
    assert report["n_folds"] == 5 and not report["partial"] and report["n_images"] == 100
    for name in REPORT_METRICS:
        values = report["metrics"][name]
        per_fold = [report["per_fold"][k][name] for k in report["per_fold"]]
        assert values["mean"] == pytest.approx(np.mean(per_fold))
        assert values["std"] == pytest.approx(np.std(per_fold, ddof=1))
        assert 0 <= values["ci_low"] <= values["mean"] <= values["ci_high"] <= 1
        assert 0 <= values["boot_low"] <= values["boot_high"] <= 1
    tp = [report["per_fold"][k]["tp"] for k in report["per_fold"]]
    assert report["confusion"]["tp"] == pytest.approx(np.mean(tp))


def test_missing_folds_are_named_and_allow_partial_says_so(tmp_path: Path) -> None:
    folder = make_run(tmp_path / "run", finished=(0, 1, 2))
    with pytest.raises(ReportError, match=r"2 of 5 folds .*fold-3, fold-4.*--allow-partial"):
        load_scored(folder)
    run = load_scored(folder, allow_partial=True)
    assert run.partial and run.folds == [0, 1, 2]
    report = summarize_scored(run, n_resamples=200)
    assert "(partial)" in format_report([report], "md")


def test_not_a_run_and_broken_files_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="neither a run folder"):
        load_scored(tmp_path)
    folder = make_run(tmp_path / "run")
    (folder / "fold-2" / "predictions.csv").write_text("")
    with pytest.raises(ReportError, match=r"fold-2/predictions.csv"):
        load_scored(folder)
    (folder / "config.json").write_text("[1, 2]")
    with pytest.raises(ReportError, match="config.json holds a JSON list"):
        load_scored(folder)


def test_stored_result_reads_like_a_run(tmp_path: Path) -> None:
    run = load_scored(make_run(tmp_path / "run", dataset="covid19-ct"))
    provenance = {"weights": "random", "data": "made up", "hardware": "test", "date": "today",
                  "commit": "abc"}
    stored = store_result(run, tmp_path / "results", "r1", provenance)
    assert stored == tmp_path / "results" / "covid19-ct" / "resnet18" / "r1"
    again = load_scored(stored)
    assert again.kind == "stored" and again.folds == run.folds
    stored_columns = pd.read_csv(stored / "fold-0" / "predictions.csv").columns
    assert "path" not in stored_columns and "relpath" in stored_columns  # no machine paths
    assert (again.predictions["path"] == again.predictions["relpath"]).all()
    pd.testing.assert_frame_equal(again.predictions.drop(columns="path"),
                                  run.predictions.drop(columns="path"))
    assert not list(stored.rglob("*.pt"))
    with pytest.raises(ReportError, match="exists already"):
        store_result(run, tmp_path / "results", "r1", provenance)


def test_cli_report_markdown_with_the_paper_rows(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    folder = make_run(tmp_path / "covid", dataset="covid19-ct", model="densenet201")
    assert main(["report", str(folder), "--paper", "--format", "md", "--resamples", "200"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if "densenet201" in line.lower()]
    assert len(lines) == 2 and "paper" in lines[1] and "92.9 ± 2.2" in lines[1]
    assert "±" in lines[0] and "[" in lines[0]


def test_cli_report_json_is_only_json_and_never_nan(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    folder = make_run(tmp_path / "run")
    assert main(["report", str(folder), "--format", "json", "--resamples", "200"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [d["model"] for d in data] == ["resnet18"] and data[0]["profile"] == "quick"
    for name in REPORT_METRICS:
        values = data[0]["metrics"][name]
        assert set(values) == {"mean", "std", "ci_low", "ci_high", "boot_low", "boot_high"}
        assert all(v is not None and 0 <= v <= 1 for v in values.values())
    assert set(data[0]["confusion"]) == {"tp", "tn", "fp", "fn"}


def test_cli_report_refuses_mixed_datasets_and_bad_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = make_run(tmp_path / "a")
    b = make_run(tmp_path / "b", dataset="covid19-ct")
    assert main(["report", str(a), str(b), "--resamples", "200"]) == 2
    assert "different datasets" in capsys.readouterr().err
    assert main(["report", str(a), "--threshold", "2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--threshold 2" in err


def test_compare_a_run_with_itself_and_with_another(tmp_path: Path) -> None:
    a = load_scored(make_run(tmp_path / "a"))
    same = compare_scored(a, a, n_resamples=200)
    assert same["accuracy_difference"] == 0 and same["mcnemar_p"] == 1.0
    assert (same["ci_low"], same["ci_high"]) == (0.0, 0.0) and same["paired_on"] == "relpath"
    b = load_scored(make_run(tmp_path / "b", model="squeezenet", seed=5, skill=0.6))
    other = compare_scored(a, b, n_resamples=200)
    assert other["ci_low"] <= other["accuracy_difference"] <= other["ci_high"]
    assert 0 < other["mcnemar_p"] <= 1


def test_compare_refuses_other_folds_and_datasets(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    a = make_run(tmp_path / "a")
    moved = make_run(tmp_path / "moved", fold_seed=1)
    other = make_run(tmp_path / "other", dataset="covid19-ct")
    assert main(["compare", str(a), str(moved)]) == 2
    assert "different folds" in capsys.readouterr().err
    assert main(["compare", str(a), str(other)]) == 2
    assert "compare runs of one dataset" in capsys.readouterr().err
    assert main(["compare", str(a), str(a), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"accuracy_difference", "ci_low", "ci_high", "mcnemar_p"} <= set(result)


def test_example_result(tmp_path: Path) -> None:
    run = load_scored(write_example_result(tmp_path))
    assert run.kind == "stored" and run.dataset == "covid19-ct" and len(run.predictions) == 8


def test_figures_draw(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from covidlib.evaluate.figures import (
        plot_calibration,
        plot_confusion_grid,
        plot_metrics,
        plot_roc,
    )

    runs = [load_scored(make_run(tmp_path / name, dataset="covid19-ct", model=name))
            for name in ("resnet18", "densenet201")]
    reports = [summarize_scored(run, n_resamples=100) for run in runs]
    ax = plot_metrics(reports, paper=True)
    assert len(ax.get_legend().get_texts()) == 4  # two runs, two paper rows
    figure = plot_confusion_grid(reports)
    assert len([a for a in figure.axes if a.images]) == 2
    assert len(plot_roc(runs).get_lines()) == 3
    assert len(plot_calibration(runs).get_lines()) == 3
    plt.close("all")
