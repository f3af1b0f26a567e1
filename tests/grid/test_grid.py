"""The grid: plans, task states, a killed worker resumed, a stale lock taken over, failures
named, and the SLURM executor through submitit's debug executor and a stand-in sbatch."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import submitit

from covidlib.cli import main
from covidlib.config import ExperimentConfig
from covidlib.engine.locks import FoldLock
from covidlib.engine.runs import RunFolder
from covidlib.grid.local import check_outcome, progress_line
from covidlib.grid.plan import GridPlan, GridPlanError, plan_grid, read_plan
from covidlib.grid.slurm import FoldJob, submit_slurm
from covidlib.grid.status import grid_status

PlanMaker = Callable[..., GridPlan]


def test_plan_writes_configs_and_one_fold_file_per_dataset(
    make_plan: PlanMaker, tiny_config: Callable[..., ExperimentConfig]
) -> None:
    tiny = tiny_config
    plan = make_plan(("squeezenet", "resnet18"), n_folds=3)
    assert [t.id for t in plan.tasks][:3] == [
        "phantom/squeezenet/seed0/fold-0", "phantom/squeezenet/seed0/fold-1",
        "phantom/squeezenet/seed0/fold-2"]
    assert len(plan.tasks) == 6 and len(plan.run_dirs()) == 2
    assert [p.name for p in (plan.runs_root / "phantom").glob("folds-*.csv")] == [
        "folds-stratified-k3-seed0.csv"]
    for run_dir in plan.run_dirs():
        assert RunFolder(run_dir).read_config()["canvas"] is not None  # resolved at plan time
    assert read_plan(plan.dir).tasks == plan.tasks
    again = plan_grid([tiny("squeezenet", n_folds=3), tiny("resnet18", n_folds=3)], plan.dir,
                      roots=plan.roots)
    assert again.tasks == plan.tasks  # planning again is a no-op
    changed = plan_grid([tiny("squeezenet", n_folds=3, epochs=2)], plan.dir, roots=plan.roots)
    assert len(changed.tasks) == 3 and changed.run_dirs()[0] not in plan.run_dirs()
    with pytest.raises(ValueError, match="twice"):
        plan_grid([tiny("squeezenet")] * 2, plan.dir, roots=plan.roots)
    with pytest.raises(GridPlanError, match="grid plan"):
        read_plan(plan.dir / "nowhere")


def test_failed_task_is_named_and_run_exits_non_zero(
    make_plan: PlanMaker, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = make_plan(n_folds=2)
    RunFolder(plan.run_dirs()[0]).config_file.write_text("{}")  # no experiment in it
    assert main(["grid", "run", "--out", str(plan.dir), "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert "2 task(s) failed: phantom/squeezenet/seed0/fold-0 (ValueError" in err
    assert main(["grid", "status", "--out", str(plan.dir), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert {k: status[k] for k in ("done", "running", "failed", "pending", "total")} == {
        "done": 0, "running": 0, "failed": 2, "pending": 0, "total": 2}
    assert "missing config key" in status["tasks"][0]["detail"]


def _fold_workers(run_dir: Path, fold: int) -> list[str]:
    return pd.read_csv(RunFolder(run_dir).fold(fold).epochs)["worker"].tolist()


def test_killed_worker_resumes_and_stale_lock_is_taken_over(
    make_plan: PlanMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = make_plan(n_folds=2, epochs=2)
    run_dir = plan.run_dirs()[0]
    fold0 = RunFolder(run_dir).fold(0)
    worker = subprocess.Popen(
        [sys.executable, "-m", "covidlib.grid.worker", str(plan.dir), "--device", "cpu"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not fold0.checkpoint.exists() and time.monotonic() < deadline:
        assert worker.poll() is None, "the worker exited before its first checkpoint"
        time.sleep(0.05)
    worker.send_signal(signal.SIGKILL)  # a crash: no cleanup, the lock stays behind
    worker.wait()
    assert fold0.lock.exists() and not fold0.is_finished()
    assert grid_status(plan).tasks[0].detail.startswith("stale lock (pid")

    # fold 1: a live pid (this test) whose heartbeat stopped long ago
    monkeypatch.setenv("COVIDLIB_LOCK_STALE_SECONDS", "60")
    old = time.time() - 3600
    lock = RunFolder(run_dir).fold(1).lock
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                                "started": old, "heartbeat": old, "token": "abc"}))
    assert grid_status(plan).tasks[1].detail.startswith("stale lock (no heartbeat")

    assert main(["grid", "run", "--out", str(plan.dir), "--device", "cpu"]) == 0
    assert grid_status(plan).counts()["done"] == 2
    workers = _fold_workers(run_dir, 0)
    assert len(workers) == 2 and workers[0] == f"{socket.gethostname()}:{worker.pid}"
    assert len(set(workers)) == 2  # resumed by another process after the killed one's epochs
    logs = "".join(p.read_text() for p in (plan.dir / "logs").glob("*.log"))
    assert "fold 1: took over the stale lock" in logs and "resumed after epoch" in logs


def test_slurm_executor_runs_through_submitit_debug(make_plan: PlanMaker) -> None:
    plan = make_plan(n_folds=2)
    jobs = submit_slurm(plan.dir, cluster="debug", device="cpu", timeout_min=5)
    assert sorted(job.result() for job in jobs) == [t.id for t in plan.tasks]
    assert grid_status(plan).counts()["done"] == 2
    assert submit_slurm(plan.dir, cluster="debug") == []  # nothing left to submit
    lock = FoldLock(RunFolder(plan.run_dirs()[0]).fold(0).lock)
    assert lock.acquire()  # as if this process were training the fold when SLURM signals it
    requeued = FoldJob(plan.dir, plan.tasks[0].id).checkpoint()
    assert isinstance(requeued, submitit.helpers.DelayedSubmission)  # requeued on preemption
    assert not lock.path.exists()  # the requeued job may take the fold on any node


def test_slurm_job_array_script(
    make_plan: PlanMaker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    plan = make_plan(n_folds=3)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sbatch = bin_dir / "sbatch"  # a stand-in: keeps the script, answers like sbatch
    sbatch.write_text(f'#!/bin/sh\ncp "$1" {tmp_path}/job.sh\necho "Submitted batch job 4242"\n')
    sbatch.chmod(0o755)
    srun = bin_dir / "srun"  # submitit looks for it before it submits
    srun.write_text("#!/bin/sh\nexit 0\n")
    srun.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    code = main(["grid", "run", "--out", str(plan.dir), "--executor", "slurm",
                 "--partition", "gpu", "--time", "90", "--cpus-per-task", "4",
                 "--mem-gb", "32", "--array-parallelism", "2"])
    assert code == 0
    assert "3 fold task(s) as SLURM job array 4242" in capsys.readouterr().out
    script = (tmp_path / "job.sh").read_text()
    for line in ("#SBATCH --array=0-2%2", "#SBATCH --partition=gpu", "#SBATCH --time=90",
                 "#SBATCH --gpus-per-node=1", "#SBATCH --cpus-per-task=4",
                 "#SBATCH --mem=32GB", "#SBATCH --signal=USR2@90"):
        assert line in script.splitlines(), line
    assert str(plan.dir / "slurm") in script


def test_progress_and_outcome(make_plan: PlanMaker) -> None:
    assert progress_line(0, 4, 0, 10.0) == "0/4 tasks done"
    assert progress_line(2, 4, 2, 1800.0) == "2/4 tasks done, 4.0 folds/h, about 0:30:00 left"
    plan = make_plan(n_folds=2)
    assert "2 task(s) not run" in check_outcome(grid_status(plan))
