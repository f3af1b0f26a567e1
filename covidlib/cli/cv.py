"""`covidlib cv`: cross-validation into a resumable run folder (`covidlib predict` reads it).

Example:
    $ covidlib cv --dataset phantom --model squeezenet --epochs 1 --out runs
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from covidlib.cli import CommandError


def register(subparsers: Any) -> None:
    """Add the ``cv`` command."""
    cv = subparsers.add_parser(
        "cv",
        help="cross-validate a model (LAMB, the paper's schedule) into a run folder",
        description="Train and evaluate a model with k-fold cross-validation. Re-running "
        "the same command skips finished folds and resumes an interrupted one.",
    )
    cv.add_argument("--dataset", required=True, help="dataset name (covidlib datasets list)")
    cv.add_argument("--root", type=Path, help="dataset folder (default: the registry's)")
    cv.add_argument("--model", required=True, help="model name (covidlib models list)")
    cv.add_argument("--folds", type=int, default=5, help="number of folds (default 5)")
    cv.add_argument("--fold", type=int, help="run only this fold (share a grid over machines)")
    cv.add_argument("--epochs", type=int, help="epochs per fold (default: the profile's)")
    cv.add_argument("--profile", choices=("quick", "full"), help="run profile (default: env)")
    cv.add_argument(
        "--split", choices=("stratified", "grouped", "official"), default="stratified",
        help="fold strategy (default stratified)",
    )
    cv.add_argument("--out", type=Path, default=Path("runs"), help="runs root (default runs/)")
    cv.add_argument("--run-name", help="run folder name (default: the profile's name)")
    cv.add_argument("--seed", type=int, default=0, help="seed of folds and training")
    cv.add_argument("--skip-problems", action="store_true", help="skip unreadable images")
    cv.set_defaults(func=run_cv_command)



def run_cv_command(args: argparse.Namespace) -> int:
    """Run ``covidlib cv``."""
    from covidlib.config import get_profile
    from covidlib.engine.cv import RunConfigError, run_cv
    from covidlib.engine.learner import TrainConfig

    profile = get_profile(args.profile)
    overrides: dict[str, Any] = {"seed": args.seed}
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    try:
        config = TrainConfig.from_profile(profile, **overrides)
        result = run_cv(
            args.dataset, args.model, root=args.root, profile=profile, config=config,
            n_folds=args.folds, only_fold=args.fold, out=args.out, split=args.split,
            run_name=args.run_name, skip_problems=args.skip_problems,
        )
    except (RunConfigError, FileNotFoundError, KeyError) as error:
        raise CommandError(str(error).strip("'\"")) from error
    except ValueError as error:
        raise CommandError(str(error)) from error
    print(f"summary: {result.run_dir / 'summary.json'}")
    return 0
