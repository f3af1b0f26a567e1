"""A grid worker: train every unfinished fold task that no live process holds.

A worker walks the plan (starting at its own offset, so that workers spread out) and calls
:func:`covidlib.engine.cv.run_cv` with ``only_fold`` for each task that is neither finished
nor held by a live lock; ``run_cv`` takes the fold's lock, resumes from its checkpoint and
skips a fold another process took meanwhile. A task that raises is recorded in
``DIR/failed/<task>.json`` with its last error line, and the worker goes on with the next.

Run as ``python -m covidlib.grid.worker DIR [--index I] [--count N] [--threads T]
[--device D]`` by the local executor, or through :func:`run_worker`.

Example:
    >>> failure_file(Path("grid"), GridTask("phantom", "resnet18", 0, 3, "runs/x")).as_posix()
    'grid/failed/phantom--resnet18--seed0--fold-3.json'
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from covidlib.config import RuntimeSettings
from covidlib.grid.plan import GridPlan, GridTask, read_plan
from covidlib.utils.fileio import atomic_write_text

FAILED_DIR = "failed"
LOGS_DIR = "logs"
THREAD_ENV_VARS: tuple[str, ...] = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def failure_file(grid_dir: Path, task: GridTask) -> Path:
    """Return where a failure of ``task`` is recorded."""
    return Path(grid_dir) / FAILED_DIR / (task.id.replace("/", "--") + ".json")


def read_failure(grid_dir: Path, task: GridTask) -> dict[str, Any] | None:
    """Return the recorded failure of ``task`` (worker, time, error), or ``None``."""
    path = failure_file(grid_dir, task)
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"error": f"{path} is unreadable", "worker": "?", "time": 0.0}
    return value if isinstance(value, dict) else None


def _last_line(error: BaseException) -> str:
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[-1] if lines else ''}".rstrip(": ")


def cpu_count() -> int:
    """Return the cores this process may use (its CPU affinity).

    Example:
        >>> cpu_count() >= 1
        True
    """
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """Return ``cores // workers`` (at least 1): each worker's torch threads.

    Example:
        >>> threads_per_worker(4, cores=16), threads_per_worker(4, cores=2)
        (4, 1)
    """
    return max(1, (cores or cpu_count()) // max(1, workers))


def set_threads(threads: int) -> None:
    """Give this process ``threads`` torch (and OpenMP/MKL) threads."""
    import torch

    for name in THREAD_ENV_VARS:
        os.environ[name] = str(threads)
    torch.set_num_threads(threads)


def task_state(plan: GridPlan, task: GridTask) -> tuple[str, str]:
    """Return ``(state, detail)``: ``done``, ``running`` (detail: who), ``failed`` (detail:
    the last error line) or ``pending`` (detail: why, e.g. a stale lock)."""
    from covidlib.engine.locks import lock_state
    from covidlib.engine.runs import RunFolder

    files = RunFolder(plan.run_dir(task)).fold(task.fold)
    if files.is_finished():
        return "done", ""
    detail = ""
    lock = lock_state(files.lock)
    if lock is not None:
        info, stale = lock
        if not stale:
            return "running", info.describe() if info else "a process starting up"
        detail = f"stale lock ({stale}): the next run takes it over"
    failure = read_failure(plan.dir, task)
    if failure is not None:
        return "failed", str(failure.get("error", ""))
    return "pending", detail


def run_task(
    plan: GridPlan,
    task: GridTask,
    runtime: RuntimeSettings,
    log: Callable[[str], None] | None = print,
) -> bool:
    """Train one fold task (or skip it when it is finished or held); return ``False`` when
    it failed, after recording the failure."""
    from covidlib.engine.cv import read_experiment, run_cv
    from covidlib.engine.runs import worker_id

    say = log or (lambda _: None)
    marker = failure_file(plan.dir, task)
    try:
        config = read_experiment(plan.run_dir(task))
        run_cv(config, runtime, root=plan.root(task.dataset), out=plan.runs_root,
               run_dir=plan.run_dir(task), only_fold=task.fold, log=log)
    except Exception as error:  # a worker reports a task's failure and goes on
        say(f"{task.id}: failed: {_last_line(error)}")
        say(traceback.format_exc().rstrip())
        record = {"task": task.id, "worker": worker_id(), "time": time.time(),
                  "error": _last_line(error)}
        atomic_write_text(marker, json.dumps(record, indent=2) + "\n")
        return False
    if marker.exists() and task_state(plan, task)[0] == "done":
        marker.unlink(missing_ok=True)
    return True


def run_worker(
    grid_dir: str | Path,
    runtime: RuntimeSettings | None = None,
    *,
    index: int = 0,
    count: int = 1,
    threads: int | None = None,
    log: Callable[[str], None] | None = print,
    after_task: Callable[[], None] | None = None,
) -> list[str]:
    """Work through the plan of ``grid_dir`` until no task is left to claim; return the ids
    of the tasks that failed in this worker.

    Each task is tried at most once per call. Tasks held by a live lock are left to their
    holder; tasks finished meanwhile are skipped.

    Args:
        grid_dir: the grid folder (``covidlib grid plan --out``).
        runtime: device and progress bars (default CPU or CUDA, no bars).
        index: this worker's number, ``0 <= index < count``: where it starts in the plan.
        count: how many workers share the plan.
        threads: torch threads (default: all cores).
        log: where progress lines go.
        after_task: called after each task this worker tried (a progress display).
    """
    plan = read_plan(grid_dir)
    runtime = runtime or RuntimeSettings(progress=False)
    if threads is not None:
        set_threads(threads)
    tasks = plan.tasks
    start = (index * len(tasks)) // max(1, count) if tasks else 0
    order = tasks[start:] + tasks[:start]
    failed: list[str] = []
    for task in order:
        state, _ = task_state(plan, task)
        if state in ("done", "running"):
            continue
        if not run_task(plan, task, runtime, log):
            failed.append(task.id)
        if after_task is not None:
            after_task()
    return failed


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of a local worker process; exit 1 when a task failed."""
    parser = argparse.ArgumentParser(prog="python -m covidlib.grid.worker")
    parser.add_argument("grid", type=Path)
    parser.add_argument("--index", type=int, default=0)
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)

    def say(line: str) -> None:
        print(line, flush=True)

    runtime = RuntimeSettings(device=args.device, progress=False)
    failed = run_worker(args.grid, runtime, index=args.index, count=args.count,
                        threads=args.threads, log=say)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
