"""`covidlib grid plan|run|status` end to end on a tiny phantom: two models x 5 folds with two
local workers, and two `grid run` processes started together on one folder."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from covidlib.cli import main
from covidlib.engine.runs import RunFolder
from covidlib.grid.plan import read_plan

REPO = Path(__file__).resolve().parents[2]
TINY = ["--epochs", "1", "--canvas-scale", "0.1", "--batch-size", "8"]


@pytest.fixture(scope="module")
def tiny_phantom(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 images: 10 per class, enough for 5 stratified folds."""
    from covidlib.data.phantom import generate_phantom

    return Path(generate_phantom(tmp_path_factory.mktemp("phantom") / "phantom", n=20))


@pytest.fixture(autouse=True)
def _workers_import_this_covidlib(monkeypatch: pytest.MonkeyPatch) -> None:
    paths = [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))


def trainings(grid: Path) -> dict[tuple[str, int], int]:
    """How many times each (run, fold) was trained, from every worker log."""
    counts: dict[tuple[str, int], int] = {}
    for log in (grid / "logs").glob("*.log"):
        run = ""
        for line in log.read_text().splitlines():
            if " -> " in line:
                run = line.rsplit(" -> ", 1)[1]
            match = re.match(r"fold (\d+): accuracy", line)
            if match:
                key = (run, int(match.group(1)))
                counts[key] = counts.get(key, 0) + 1
    return counts


def test_plan_run_status_two_models_five_folds_two_workers(
    tiny_phantom: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    grid = tmp_path / "grid"
    assert main(["grid", "plan", "--models", "squeezenet", "resnet18", "--root",
                 str(tiny_phantom), *TINY, "--out", str(grid)]) == 0
    assert "planned 10 fold tasks (2 runs)" in capsys.readouterr().out
    assert main(["grid", "status", "--out", str(grid), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["pending"] == 10

    assert main(["grid", "run", "--out", str(grid), "--workers", "2", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "2 worker(s), 1 thread(s) each" in printed and "10/10 tasks done" in printed
    assert main(["grid", "status", "--out", str(grid), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert {k: status[k] for k in ("done", "running", "failed", "pending", "total")} == {
        "done": 10, "running": 0, "failed": 0, "pending": 0, "total": 10}
    plan = read_plan(grid)
    for run_dir in plan.run_dirs():
        run = RunFolder(run_dir)
        assert run.finished_folds() == [0, 1, 2, 3, 4]
        for fold in range(5):
            log = pd.read_csv(run.fold(fold).epochs)
            assert log["epoch"].tolist() == [0] and log["worker"].str.contains(":").all()
        assert run.read_summary()["complete"] is True  # the last writer saw every fold
    counts = trainings(grid)
    assert len(counts) == 10 and set(counts.values()) == {1}, counts
    assert len(list((grid / "logs").glob("worker-*.log"))) == 2

    assert main(["grid", "run", "--out", str(grid), "--workers", "2"]) == 0  # nothing left
    assert trainings(grid) == counts


def test_two_grid_runs_started_together_train_each_fold_once(
    tiny_phantom: Path, tmp_path: Path
) -> None:
    grid = tmp_path / "grid"
    assert main(["grid", "plan", "--models", "squeezenet", "--folds", "3", "--root",
                 str(tiny_phantom), *TINY, "--out", str(grid)]) == 0
    env = {**os.environ, "COVIDLIB_DATA": str(tmp_path / "empty-data")}  # caches built here
    command = [sys.executable, "-m", "covidlib", "grid", "run", "--out", str(grid),
               "--device", "cpu"]
    processes = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [process.communicate(timeout=600) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], results
    counts = trainings(grid)
    assert sorted(fold for _, fold in counts) == [0, 1, 2] and set(counts.values()) == {1}
    run = RunFolder(read_plan(grid).run_dirs()[0])
    for fold in range(3):
        assert pd.read_csv(run.fold(fold).epochs)["epoch"].tolist() == [0]
    assert run.read_summary()["complete"] is True
    caches = list((tmp_path / "empty-data" / "cache").glob("*.npy"))
    assert len(caches) == 1  # one letterbox cache, built by one of them


def test_bad_options_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["grid", "status", "--out", str(tmp_path)]) == 2
    assert "holds no grid plan" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["grid", "run", "--out", str(tmp_path), "--gpus", "a,b"])
    assert "not a list of GPU numbers" in capsys.readouterr().err


def test_grid_plan_takes_the_experiment_options_of_cv() -> None:
    import argparse

    from covidlib.cli.options import add_experiment_options, experiments_from_args

    single, several = argparse.ArgumentParser(), argparse.ArgumentParser()
    add_experiment_options(single)
    add_experiment_options(several, several=True, runtime=False)
    # a labels file labels one plain folder: cv's, not a grid's
    dests = {a.dest for a in single._actions} - {"device", "workers", "labels"}
    assert dests == {a.dest for a in several._actions}
    args = several.parse_args(["--datasets", "phantom", "--models", "squeezenet", "vgg16",
                               "--seeds", "1", "2", "--epochs", "3", "--canvas-scale", "0.2"])
    configs = experiments_from_args(args)
    assert [(c.model, c.seed) for c in configs] == [
        ("squeezenet", 1), ("squeezenet", 2), ("vgg16", 1), ("vgg16", 2)]
    assert {(c.train.epochs, c.canvas_scale) for c in configs} == {(3, 0.2)}
    assert len(experiments_from_args(several.parse_args([]))) == 12  # the paper's models
