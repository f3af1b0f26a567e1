"""The local executor: N worker processes on this machine, and the progress display.

Each worker is ``python -m covidlib.grid.worker`` with ``cores // workers`` torch threads
(a single worker without GPUs runs in this process);
with GPUs, worker ``i`` sees only GPU ``gpus[i % len(gpus)]`` (``CUDA_VISIBLE_DEVICES``), so
one worker per GPU, or several sharing one. Their logs go to
``DIR/logs/worker-<i>-<host>-<pid>.log`` (one per worker and run);
this process shows the tasks done, folds per hour and the estimated time left (a bar on a
terminal, one line per finished task otherwise: :func:`covidlib.config.progress_enabled`).

submitit's local and debug executors (``submit_slurm(..., cluster="debug")``) run the SLURM jobs
on this machine, which is how the tests cover that path; they pin no GPU per worker, split no
CPU threads between workers and show no progress, so they cannot replace this executor.

Example:
    >>> worker_environment(1, gpus=[0, 1], threads=4)["CUDA_VISIBLE_DEVICES"]
    '1'
    >>> progress_line(done=3, total=10, finished=2, seconds=3600.0)
    '3/10 tasks done, 2.0 folds/h, about 3:30:00 left'
"""

from __future__ import annotations

import datetime
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from covidlib.grid.plan import read_plan
from covidlib.grid.status import GridStatus, grid_status
from covidlib.grid.worker import LOGS_DIR, THREAD_ENV_VARS, threads_per_worker


def worker_environment(
    index: int, *, gpus: Sequence[int] | None = None, threads: int = 1
) -> dict[str, str]:
    """Return the environment of worker ``index``: its threads and the GPU it sees."""
    env = dict(os.environ)
    for name in THREAD_ENV_VARS:
        env[name] = str(threads)
    if gpus:
        env["CUDA_VISIBLE_DEVICES"] = str(gpus[index % len(gpus)])
    return env


def progress_line(done: int, total: int, finished: int, seconds: float) -> str:
    """Return ``done/total tasks done, R folds/h, about H:MM:SS left``.

    ``finished`` folds were finished by this run in ``seconds``: the rate and the estimate
    come from them (none yet: no estimate).
    """
    line = f"{done}/{total} tasks done"
    if finished > 0 and seconds > 0:
        rate = finished / seconds * 3600
        left = datetime.timedelta(seconds=round((total - done) / rate * 3600))
        line += f", {rate:.1f} folds/h, about {left} left"
    return line


class _Progress:
    """A tqdm bar on a terminal, else one line per change of the done count."""

    def __init__(self, total: int, done: int, log: Callable[[str], None] | None) -> None:
        from covidlib.config import progress_enabled

        self.total, self.start_done, self.done = total, done, done
        self.started = time.monotonic()
        self.log = log
        self.bar = None
        if progress_enabled():
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done, desc="grid", unit="fold",
                            file=sys.stderr, disable=False)

    def update(self, done: int) -> None:
        if done == self.done:
            return
        line = progress_line(done, self.total, done - self.start_done,
                             time.monotonic() - self.started)
        if self.bar is not None:
            self.bar.update(done - self.done)
            self.bar.set_postfix_str(line.split(", ", 1)[-1] if ", " in line else "")
        elif self.log is not None:
            self.log(line)
        self.done = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_local(
    grid_dir: str | Path,
    *,
    workers: int = 1,
    gpus: Sequence[int] | None = None,
    device: str = "auto",
    log: Callable[[str], None] | None = print,
    poll: float = 1.0,
) -> GridStatus:
    """Run every unfinished task of a grid with ``workers`` local processes; return the
    status once they have exited.

    Args:
        grid_dir: the grid folder.
        workers: worker processes (with ``gpus`` and ``workers`` < 1: one per GPU).
        gpus: GPU numbers; worker ``i`` uses ``gpus[i % len(gpus)]``.
        device: the workers' device without ``gpus`` (``auto``, ``cpu``).
        log: where progress lines go (``None``: silent).
        poll: seconds between looks at the run folders.
    """
    plan = read_plan(grid_dir)
    if gpus and workers < 1:
        workers = len(gpus)
    if workers < 1:
        raise ValueError(f"--workers {workers}: use at least one worker")
    threads = threads_per_worker(workers)
    logs = plan.dir / LOGS_DIR
    logs.mkdir(parents=True, exist_ok=True)
    status = grid_status(plan)
    say = log or (lambda _: None)
    say(f"{len(plan.tasks)} tasks in {plan.dir}: {status.counts()['done']} done; "
        f"{workers} worker(s), {threads} thread(s) each"
        + (f", GPUs {','.join(map(str, gpus))}" if gpus else "")
        + f"; logs in {logs}")
    if workers == 1 and not gpus:
        return _run_here(plan.dir, logs, device, threads, status, log)
    processes = []
    handles = []
    try:
        for index in range(workers):
            name = f"worker-{index}-{socket.gethostname()}-{os.getpid()}.log"  # one per run
            handle = open(logs / name, "a", encoding="utf-8")  # noqa: SIM115
            handles.append(handle)
            command = [sys.executable, "-m", "covidlib.grid.worker", str(plan.dir),
                       "--index", str(index), "--count", str(workers),
                       "--threads", str(threads), "--device", "cuda" if gpus else device]
            processes.append(subprocess.Popen(
                command, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=worker_environment(index, gpus=gpus, threads=threads),
            ))
        progress = _Progress(len(plan.tasks), status.counts()["done"], log)
        try:
            while any(p.poll() is None for p in processes):
                time.sleep(poll)
                progress.update(grid_status(plan).counts()["done"])
            status = grid_status(plan)
            progress.update(status.counts()["done"])
        finally:
            progress.close()
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        for handle in handles:
            handle.close()
    return status


def _run_here(
    grid_dir: Path, logs: Path, device: str, threads: int, status: GridStatus,
    log: Callable[[str], None] | None,
) -> GridStatus:
    """One worker: run it in this process (no second interpreter to start)."""
    from covidlib.config import RuntimeSettings
    from covidlib.grid.worker import run_worker

    plan = status.plan
    progress = _Progress(len(plan.tasks), status.counts()["done"], log)
    name = f"worker-0-{socket.gethostname()}-{os.getpid()}.log"
    with open(logs / name, "a", encoding="utf-8") as handle:

        def write(line: str) -> None:
            handle.write(line + "\n")
            handle.flush()

        try:
            run_worker(grid_dir, RuntimeSettings(device=device, progress=False),
                       threads=threads, log=write,
                       after_task=lambda: progress.update(grid_status(plan).counts()["done"]))
        finally:
            progress.close()
    return grid_status(plan)


def check_outcome(status: GridStatus) -> str:
    """Return '' when every task is done or held by a live worker, else why not.

    Example:
        >>> import tempfile
        >>> from covidlib.grid.plan import GridPlan, GridTask
        >>> plan = GridPlan(Path(tempfile.mkdtemp()), [GridTask("phantom", "vgg16", 0, 1, "r")])
        >>> check_outcome(grid_status(plan))
        '1 task(s) not run: phantom/vgg16/seed0/fold-1; run `covidlib grid run` again'
    """
    failed = status.of("failed")
    if failed:
        named = "; ".join(f"{t.task.id} ({t.detail})" for t in failed)
        logs = status.plan.dir / LOGS_DIR
        return f"{len(failed)} task(s) failed: {named}; their tracebacks are in {logs}"
    pending = status.of("pending")
    if pending:
        named = ", ".join(t.task.id for t in pending[:5]) + (" ..." if len(pending) > 5 else "")
        return f"{len(pending)} task(s) not run: {named}; run `covidlib grid run` again"
    return ""
