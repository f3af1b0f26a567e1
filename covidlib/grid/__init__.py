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
    "run_local": "covidlib.grid.local",
    "GridPlan": "covidlib.grid.plan",
    "plan_grid": "covidlib.grid.plan",
    "read_plan": "covidlib.grid.plan",
    "submit_slurm": "covidlib.grid.slurm",
    "grid_status": "covidlib.grid.status",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
