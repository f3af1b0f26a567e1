"""`covidlib cv` (cross-validation into a resumable run folder) and `covidlib predict`.

Example:
    $ covidlib cv --dataset phantom --model squeezenet --epochs 1 --out runs
    $ covidlib predict --run runs/phantom/squeezenet/quick --fold 0 image.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from covidlib.cli import CommandError


def register(subparsers: Any) -> None:
    """Add the ``cv`` and ``predict`` commands."""
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

    predict = subparsers.add_parser(
        "predict",
        help="COVID probability of images with the model(s) of a run folder",
        description="Letterbox each image to the run's canvas and print its COVID "
        "probability and label. Without --fold the finished folds' models are averaged.",
    )
    predict.add_argument("--run", type=Path, required=True, help="run folder of `covidlib cv`")
    predict.add_argument("--fold", type=int, help="use only this fold's model")
    predict.add_argument("--threshold", type=float, default=0.5, help="COVID at or above it")
    predict.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    predict.set_defaults(func=predict_command)


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


def predict_command(args: argparse.Namespace) -> int:
    """Run ``covidlib predict``."""
    from covidlib.engine.runs import predict_images

    config_file = args.run / "config.json"
    if not config_file.is_file():
        raise CommandError(f"{args.run} is not a run folder of `covidlib cv` (no config.json).")
    missing = [str(path) for path in args.images if not path.is_file()]
    if missing:
        raise CommandError(f"image file(s) not found: {', '.join(missing)}")
    try:
        table = predict_images(args.run, args.images, fold=args.fold, threshold=args.threshold)
    except (FileNotFoundError, ValueError) as error:
        raise CommandError(str(error)) from error
    run_config = json.loads(config_file.read_text())
    print(f"# {run_config['model']}, canvas {run_config['canvas'][0]}x{run_config['canvas'][1]},"
          f" folds {', '.join(str(f) for f in table.attrs['folds'])}")
    for row in table.itertuples(index=False):
        print(f"{row.path}\t{row.probability:.4f}\t{row.label_name}")
    return 0
