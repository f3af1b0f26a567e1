"""The SLURM executor: one job array through ``submitit``, one fold task per array task.

Every array task runs :class:`FoldJob`, which trains its fold into the shared run folder
(the fold lock keeps two jobs off one fold) and is *checkpointable*: on preemption or at
its time limit SLURM signals it, submitit requeues it, and the requeued job resumes the
fold from its last epoch checkpoint. Only unfinished tasks are submitted.

Example:
    >>> params = slurm_parameters(partition="gpu", timeout_min=90, gpus=1, cpus=8)
    >>> params["slurm_partition"], params["timeout_min"], params["gpus_per_node"]
    ('gpu', 90, 1)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import submitit

from covidlib.config import RuntimeSettings
from covidlib.grid.plan import GridTask, read_plan
from covidlib.grid.status import grid_status

SLURM_DIR = "slurm"
CLUSTERS: tuple[str, ...] = ("slurm", "local", "debug")


class FoldJob(submitit.helpers.Checkpointable):
    """Train one fold task of a grid (a picklable callable for submitit).

    Args:
        grid_dir: the grid folder (on a file system every node sees).
        task_id: :attr:`GridTask.id` of the task.
        device: ``auto`` (the job's GPU when it has one), ``cpu``, ``cuda``.
    """

    def __init__(self, grid_dir: str | Path, task_id: str, device: str = "auto") -> None:
        self.grid_dir = str(grid_dir)
        self.task_id = task_id
        self.device = device

    def __call__(self) -> str:
        from covidlib.grid.worker import read_failure, run_task, set_threads

        plan = read_plan(self.grid_dir)
        task = _find(plan.tasks, self.task_id)
        cpus = os.environ.get("SLURM_CPUS_PER_TASK")
        if cpus and cpus.isdigit():
            set_threads(int(cpus))
        if not run_task(plan, task, RuntimeSettings(device=self.device, progress=False)):
            failure = read_failure(plan.dir, task) or {}
            raise RuntimeError(f"{task.id} failed: {failure.get('error', 'see its log')}")
        return task.id


    def checkpoint(self, *args: Any, **kwargs: Any) -> submitit.helpers.DelayedSubmission:
        """Requeue this fold (preemption or time limit): free its lock at once, so that the
        requeued job, on any node, resumes the fold from its last epoch checkpoint."""
        from covidlib.engine.locks import release_held_locks

        release_held_locks()
        return super().checkpoint(*args, **kwargs)


def _find(tasks: Sequence[GridTask], task_id: str) -> GridTask:
    for task in tasks:
        if task.id == task_id:
            return task
    raise ValueError(f"the grid plan has no task {task_id!r}; plan it again")


def slurm_parameters(
    *,
    partition: str | None = None,
    timeout_min: int = 240,
    gpus: int = 1,
    cpus: int | None = None,
    mem_gb: float | None = None,
    array_parallelism: int = 64,
    job_name: str = "covidlib-grid",
) -> dict[str, Any]:
    """Return the ``submitit.AutoExecutor.update_parameters`` of one fold job.

    Args:
        partition: the SLURM partition (``None``: the cluster's default).
        timeout_min: time limit per fold, minutes (the job is requeued after it).
        gpus: GPUs per job.
        cpus: CPU cores per job (also its torch threads).
        mem_gb: memory per job.
        array_parallelism: most array tasks running at once.
        job_name: the job's name in ``squeue``.
    """
    if timeout_min < 1:
        raise ValueError(f"--time {timeout_min}: give the time limit in minutes (at least 1)")
    if gpus < 0:
        raise ValueError(f"--gpus-per-task {gpus}: use 0 or more")
    params: dict[str, Any] = {
        "name": job_name,
        "timeout_min": int(timeout_min),
        "gpus_per_node": int(gpus),
        "tasks_per_node": 1,
        "slurm_array_parallelism": int(array_parallelism),
    }
    if partition:
        params["slurm_partition"] = partition
    if cpus:
        params["cpus_per_task"] = int(cpus)
    if mem_gb:
        params["mem_gb"] = float(mem_gb)
    return params


def submit_slurm(
    grid_dir: str | Path,
    *,
    cluster: str = "slurm",
    device: str = "auto",
    **parameters: Any,
) -> list[submitit.Job[str]]:
    """Submit every unfinished, unheld task of a grid as one job array; return the jobs.

    Args:
        grid_dir: the grid folder.
        cluster: ``slurm``, or submitit's ``local`` / ``debug`` executors (tests, no cluster).
        device: the jobs' device.
        **parameters: :func:`slurm_parameters` arguments.
    """
    if cluster not in CLUSTERS:
        raise ValueError(f"unknown cluster {cluster!r}; choose one of {CLUSTERS}")
    plan = read_plan(grid_dir)
    todo = [row.task for row in grid_status(plan).tasks if row.state in ("pending", "failed")]
    if not todo:
        return []
    executor = submitit.AutoExecutor(folder=plan.dir / SLURM_DIR / "%j", cluster=cluster)
    executor.update_parameters(**slurm_parameters(**parameters))
    jobs = []
    with executor.batch():  # one sbatch call: a job array, one task per fold
        for task in todo:
            jobs.append(executor.submit(FoldJob(plan.dir, task.id, device)))
    return jobs
