"""A grid plan: the fold tasks of several experiments, written into one folder.

``plan_grid`` writes, into ``DIR``::

    grid.json                               the tasks: dataset, model, seed, fold, run folder
    runs/<dataset>/folds-<...>.csv          fold assignment, computed once per dataset
    runs/<dataset>/<model>/<digest>/config.json   each experiment, complete (canvas filled in)

Every task is one fold of one run folder of :func:`covidlib.engine.cv.run_cv`; the run
folder is the only coordination between the workers that execute them (the fold's lock
says who trains it, its verified results say it is done).

Example:
    >>> import os, tempfile
    >>> from unittest import mock
    >>> from covidlib.config import get_profile
    >>> from covidlib.data.phantom import generate_phantom
    >>> folder = Path(tempfile.mkdtemp())
    >>> root = generate_phantom(folder / "phantom", n=12)
    >>> configs = [get_profile("quick").experiment("phantom", m, n_folds=2, epochs=1)
    ...            for m in ("squeezenet", "resnet18")]
    >>> plan = plan_grid(configs, folder / "grid", roots={"phantom": root})
    >>> [task.id for task in plan.tasks][:2]
    ['phantom/squeezenet/seed0/fold-0', 'phantom/squeezenet/seed0/fold-1']
    >>> read_plan(folder / "grid").tasks == plan.tasks
    True
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from covidlib.config import ExperimentConfig
from covidlib.utils.fileio import atomic_write_text

PLAN_FILE = "grid.json"
PLAN_VERSION = 1
RUNS_DIR = "runs"


class GridPlanError(ValueError):
    """A grid folder has no plan, or an unreadable one (the message says what to do)."""


@dataclass(frozen=True)
class GridTask:
    """One fold of one experiment.

    Attributes:
        dataset: dataset registry name.
        model: model registry name.
        seed: the experiment's seed.
        fold: the test fold this task trains.
        run: the run folder, relative to the grid folder.
    """

    dataset: str
    model: str
    seed: int
    fold: int
    run: str

    @property
    def id(self) -> str:
        """``dataset/model/seed<s>/fold-<k>``: how messages and status name the task."""
        return f"{self.dataset}/{self.model}/seed{self.seed}/fold-{self.fold}"


@dataclass
class GridPlan:
    """A grid folder's plan (``grid.json``).

    Attributes:
        dir: the grid folder.
        tasks: every fold task, in plan order.
        roots: dataset folder per dataset name (``None``: the registry's default).
        created: when the plan was written (seconds since the epoch).
    """

    dir: Path
    tasks: list[GridTask]
    roots: dict[str, str | None] = field(default_factory=dict)
    created: float = 0.0

    @property
    def runs_root(self) -> Path:
        """The runs root of every run folder of the grid (``DIR/runs``)."""
        return self.dir / RUNS_DIR

    def run_dir(self, task: GridTask) -> Path:
        """Return the run folder of ``task``."""
        return self.dir / task.run

    def root(self, dataset: str) -> Path | None:
        """Return the dataset folder of ``dataset`` (``None``: the registry's)."""
        value = self.roots.get(dataset)
        return Path(value) if value else None

    def run_dirs(self) -> list[Path]:
        """Return every run folder of the plan once, in plan order."""
        return [self.dir / run for run in dict.fromkeys(task.run for task in self.tasks)]


def plan_grid(
    configs: Sequence[ExperimentConfig],
    out: str | Path,
    *,
    roots: Mapping[str, str | Path | None] | None = None,
) -> GridPlan:
    """Write the fold tasks of ``configs`` and their configs into ``out``; return the plan.

    The dataset of each experiment is made ready (the phantom is generated when missing) and
    its fold assignment is computed once and stored beside the runs, where every run of
    that dataset reads it. Planning again into the same folder with the same experiments
    is a no-op; a different experiment for an existing run folder is refused.

    Args:
        configs: the experiments (one per dataset, model and seed).
        out: the grid folder.
        roots: dataset folder per dataset name (missing: the registry's default).

    Raises:
        ValueError: no experiments, two with the same dataset, model and seed, or a run
            folder that holds another experiment (naming the differing keys).
    """
    from covidlib.data.index import index_dataset
    from covidlib.data.sources import ensure_dataset
    from covidlib.engine.cv import check_run_config, phantom_profile
    from covidlib.engine.folds import fold_numbers, folds_file, load_or_assign_folds
    from covidlib.engine.learner import resolve_canvas
    from covidlib.engine.runs import RunFolder

    if not configs:
        raise ValueError("a grid needs at least one experiment (pass --models / --datasets)")
    out = Path(out)
    runs_root = out / RUNS_DIR
    roots = dict(roots or {})
    seen: set[tuple[str, str, int]] = set()
    tasks: list[GridTask] = []
    folds_of: dict[Path, list[int]] = {}
    resolved = [resolve_canvas(config) for config in configs]
    for config in resolved:
        key = (config.dataset, config.model, config.seed)
        if key in seen:
            raise ValueError(f"the grid lists {config.model} on {config.dataset} with seed "
                             f"{config.seed} twice; list each model, dataset and seed once")
        seen.add(key)
    for config in resolved:
        fold_file = folds_file(runs_root, config.dataset, config.split, config.seed,
                               config.n_folds)
        if fold_file not in folds_of:
            root = roots.get(config.dataset)
            dataset_root = ensure_dataset(config.dataset, root, phantom_profile(config))
            index = index_dataset(config.dataset, dataset_root)
            images = index.require_clean(config.skip_problems).reset_index(drop=True)
            folds = load_or_assign_folds(images, fold_file, config.n_folds, config.seed,
                                         config.split)
            folds_of[fold_file] = fold_numbers(folds)
        run = RunFolder(runs_root / config.dataset / config.model / config.digest()[:12])
        if not check_run_config(run.path, config):
            run.write_config(config.to_dict())
        relative = run.path.relative_to(out).as_posix()
        tasks += [GridTask(config.dataset, config.model, config.seed, fold, relative)
                  for fold in folds_of[fold_file]]
    plan = GridPlan(out, tasks, {k: str(Path(v).resolve()) if v else None
                                 for k, v in roots.items()}, time.time())
    write_plan(plan)
    return plan


def write_plan(plan: GridPlan) -> Path:
    """Write ``grid.json`` of ``plan`` atomically and return its path."""
    data = {"version": PLAN_VERSION, "created": plan.created, "roots": plan.roots,
            "tasks": [asdict(task) for task in plan.tasks]}
    return atomic_write_text(plan.dir / PLAN_FILE, json.dumps(data, indent=2) + "\n")


def read_plan(out: str | Path) -> GridPlan:
    """Return the plan of the grid folder ``out``.

    Raises:
        GridPlanError: no ``grid.json`` (run ``covidlib grid plan`` first) or a broken one.
    """
    out = Path(out)
    path = out / PLAN_FILE
    if not path.is_file():
        raise GridPlanError(f"{out} holds no grid plan ({PLAN_FILE}); run `covidlib grid plan "
                            f"--out {out}` first")
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
        tasks = [GridTask(str(t["dataset"]), str(t["model"]), int(t["seed"]), int(t["fold"]),
                          str(t["run"])) for t in data["tasks"]]
        roots = {str(k): (str(v) if v else None) for k, v in dict(data.get("roots", {})).items()}
        created = float(data.get("created", 0.0))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise GridPlanError(f"{path} is not a readable grid plan ({error}); plan the grid "
                            "again with `covidlib grid plan`") from None
    return GridPlan(out, tasks, roots, created)
