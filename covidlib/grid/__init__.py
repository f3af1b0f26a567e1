"""The study as a grid of fold tasks: plan it, run it on one machine or a SLURM cluster, follow it.

Modules, lowest first: ``plan`` (fold tasks and their configs in a grid folder), ``worker``
(a worker process: train every task nobody holds; task states), ``status`` (done, running,
failed, pending), ``local`` (N worker processes and the progress display), ``slurm`` (a
``submitit`` job array) and ``report`` (the paper's tables and figures from the runs).
The run folders are the only coordination between workers.

Example:
    $ covidlib grid plan --models squeezenet resnet18 --epochs 1 --out grid
    $ covidlib grid run --out grid --workers 2
    $ covidlib grid status --out grid --json
"""

from covidlib.utils.lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "CLUSTERS": "covidlib.grid.slurm",
    "FoldJob": "covidlib.grid.slurm",
    "GridPlan": "covidlib.grid.plan",
    "GridPlanError": "covidlib.grid.plan",
    "GridStatus": "covidlib.grid.status",
    "GridTask": "covidlib.grid.plan",
    "PLAN_FILE": "covidlib.grid.plan",
    "STATES": "covidlib.grid.status",
    "TaskStatus": "covidlib.grid.status",
    "check_outcome": "covidlib.grid.local",
    "cpu_count": "covidlib.grid.worker",
    "failure_file": "covidlib.grid.worker",
    "grid_status": "covidlib.grid.status",
    "plan_grid": "covidlib.grid.plan",
    "progress_line": "covidlib.grid.local",
    "read_failure": "covidlib.grid.worker",
    "read_plan": "covidlib.grid.plan",
    "render_report": "covidlib.grid.report",
    "run_local": "covidlib.grid.local",
    "run_task": "covidlib.grid.worker",
    "run_worker": "covidlib.grid.worker",
    "scored_runs": "covidlib.grid.report",
    "slurm_parameters": "covidlib.grid.slurm",
    "submit_slurm": "covidlib.grid.slurm",
    "task_state": "covidlib.grid.worker",
    "threads_per_worker": "covidlib.grid.worker",
    "worker_environment": "covidlib.grid.local",
    "write_plan": "covidlib.grid.plan",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
