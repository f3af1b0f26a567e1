"""`covidlib grid plan|run|status`: the study as fold tasks, on one machine or a SLURM cluster.

Example:
    >>> from covidlib.cli import build_parser
    >>> args = build_parser().parse_args(["grid", "run", "--out", "g", "--gpus", "0,1"])
    >>> args.gpus, args.executor
    ([0, 1], 'local')

    $ covidlib grid plan --models squeezenet resnet18 --epochs 1 --out grid
    $ covidlib grid run --out grid --workers 2
    $ covidlib grid status --out grid --json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from covidlib.cli import CommandError
from covidlib.cli.options import add_experiment_options, experiments_from_args


def gpu_list(text: str) -> list[int]:
    """Parse ``--gpus 0,1,3``.

    Example:
        >>> gpu_list("0, 2")
        [0, 2]
    """
    try:
        gpus = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a list of GPU numbers; write e.g. --gpus 0,1") from None
    if not gpus or min(gpus) < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give GPU numbers 0, 1, ... e.g. --gpus 0,1")
    return gpus


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """Add the executor options of ``grid run`` (also used by ``reproduce``)."""
    group = parser.add_argument_group("executor")
    group.add_argument("--executor", choices=("local", "slurm"), default="local",
                       help="local worker processes (default) or a SLURM job array")
    group.add_argument("--workers", type=int, default=0,
                       help="local worker processes (default: one per --gpus, else 1)")
    group.add_argument("--gpus", type=gpu_list,
                       help="GPUs for the local workers, e.g. 0,1,2,3 (one worker each)")
    group.add_argument("--device", default="auto", help="device without --gpus: auto or cpu")
    slurm = parser.add_argument_group("slurm (with --executor slurm)")
    slurm.add_argument("--partition", help="SLURM partition (default: the cluster's)")
    slurm.add_argument("--time", type=int, default=240,
                       help="time limit per fold in minutes (requeued after it; default 240)")
    slurm.add_argument("--gpus-per-task", type=int, default=1, help="GPUs per fold (default 1)")
    slurm.add_argument("--cpus-per-task", type=int, help="CPU cores per fold")
    slurm.add_argument("--mem-gb", type=float, help="memory per fold in GB")
    slurm.add_argument("--array-parallelism", type=int, default=64,
                       help="most folds running at once (default 64)")


def register(subparsers: Any) -> None:
    """Add the ``grid`` command group."""
    grid = subparsers.add_parser(
        "grid", help="plan, run and follow a grid of fold tasks (models x datasets x folds)",
        description="The study as fold tasks in one folder: plan writes them, run trains "
        "every unfinished one (local worker processes or a SLURM job array), status says "
        "which are done, running, failed or pending. The run folders are the only "
        "coordination: run it again, on more machines, or after a crash.",
    )
    commands = grid.add_subparsers(dest="grid_command", metavar="SUBCOMMAND")
    commands.required = True

    plan = commands.add_parser("plan", help="write the fold tasks and their configs")
    add_experiment_options(plan, several=True, runtime=False)
    plan.add_argument("--out", type=Path, required=True, help="the grid folder")
    plan.set_defaults(func=plan_command)

    run = commands.add_parser("run", help="train every unfinished fold task")
    run.add_argument("--out", type=Path, required=True, help="the grid folder")
    add_run_options(run)
    run.set_defaults(func=run_command)

    status = commands.add_parser("status", help="done, running, failed and pending tasks")
    status.add_argument("--out", type=Path, required=True, help="the grid folder")
    status.add_argument("--json", action="store_true", help="print JSON (counts and tasks)")
    status.set_defaults(func=status_command)


def plan_command(args: argparse.Namespace) -> int:
    """Run ``covidlib grid plan``."""
    from covidlib.grid.plan import plan_grid

    configs = experiments_from_args(args)
    roots = {config.dataset: args.root for config in configs} if args.root else None
    plan = plan_grid(configs, args.out, roots=roots)
    runs = len(plan.run_dirs())
    print(f"planned {len(plan.tasks)} fold tasks ({runs} runs) in {args.out}; "
          f"next: covidlib grid run --out {args.out}")
    return 0


def run_grid(args: argparse.Namespace) -> int:
    """Run the grid of ``args.out`` with the executor options; return the exit code."""
    from covidlib.grid.local import check_outcome, run_local
    from covidlib.grid.slurm import submit_slurm

    if args.executor == "slurm":
        jobs = submit_slurm(
            args.out, device=args.device, partition=args.partition, timeout_min=args.time,
            gpus=args.gpus_per_task, cpus=args.cpus_per_task, mem_gb=args.mem_gb,
            array_parallelism=args.array_parallelism,
        )
        if not jobs:
            print("nothing to submit: every task is done or running")
            return 0
        array = jobs[0].job_id.split("_")[0]
        print(f"submitted {len(jobs)} fold task(s) as SLURM job array {array}; follow it "
              f"with covidlib grid status --out {args.out}")
        return 0
    status = run_local(args.out, workers=args.workers, gpus=args.gpus, device=args.device)
    problem = check_outcome(status)
    print(status.format())
    if problem:
        print(f"covidlib grid: {problem}", file=sys.stderr)
        return 1
    return 0


def run_command(args: argparse.Namespace) -> int:
    """Run ``covidlib grid run``."""
    if args.workers < 0:
        raise CommandError(f"--workers {args.workers}: use 1 or more")
    if not args.workers:
        args.workers = len(args.gpus) if args.gpus else 1
    return run_grid(args)


def status_command(args: argparse.Namespace) -> int:
    """Run ``covidlib grid status``."""
    from covidlib.grid.status import grid_status

    status = grid_status(args.out)
    if args.json:
        print(json.dumps(status.to_dict(), indent=2))
    else:
        print(status.format())
    return 0
