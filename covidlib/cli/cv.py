"""`covidlib cv`: cross-validation into a resumable run folder (`covidlib predict` reads it).

The experiment flags are shared with every training command (:mod:`covidlib.cli.options`).

Example:
    >>> from covidlib.cli import build_parser
    >>> args = build_parser().parse_args(["cv", "--model", "squeezenet", "--fold", "7"])
    >>> args.fold, args.func.__name__
    (7, 'cv_command')

    $ covidlib cv --dataset phantom --model squeezenet --epochs 1 --out runs
    $ covidlib cv --root my-scans --model squeezenet   # a folder of your own images
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from covidlib.cli import CommandError
from covidlib.cli.options import add_experiment_options, experiment_from_args


def register(subparsers: Any) -> None:
    """Add the ``cv`` command."""
    cv = subparsers.add_parser(
        "cv",
        help="cross-validate a model (LAMB, the paper's schedule) into a run folder",
        description="Train and evaluate a model with k-fold cross-validation. Re-running "
        "the same command skips finished folds and resumes an interrupted one; a changed "
        "experiment is refused. Without a terminal, one line per epoch replaces the "
        "progress bars.",
    )
    add_experiment_options(cv)
    cv.add_argument("--fold", type=int, help="run only this fold (share a grid over machines)")
    cv.add_argument("--out", type=Path, default=Path("runs"), help="runs root (default runs/)")
    cv.add_argument("--run-name", help="run folder name (default: the profile's name)")
    cv.set_defaults(func=cv_command)



def cv_command(args: argparse.Namespace) -> int:
    """Run ``covidlib cv``: validate everything, then train into the run folder."""
    from covidlib.config import get_profile
    from covidlib.engine.cv import RunConfigError, run_cv
    from covidlib.engine.runs import RunFolder

    try:
        config, runtime = experiment_from_args(args)
        result = run_cv(
            config, runtime, root=args.root, labels=args.labels, out=args.out,
            only_fold=args.fold,
            run_name=args.run_name or get_profile(args.profile).name,
        )
    except (RunConfigError, FileNotFoundError, ValueError) as error:
        raise CommandError(str(error)) from error
    print(f"summary: {RunFolder(result.run_dir).summary_file}")
    return 0
