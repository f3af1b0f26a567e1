"""`covidlib cv` (cross-validation into a resumable run folder) and `covidlib predict`.

The experiment flags are shared with every training command (:mod:`covidlib.cli.options`).

Example:
    >>> from covidlib.cli import build_parser
    >>> args = build_parser().parse_args(["cv", "--model", "squeezenet", "--fold", "7"])
    >>> args.fold, args.func.__name__
    (7, 'run_cv_command')

    $ covidlib cv --dataset phantom --model squeezenet --epochs 1 --out runs
    $ covidlib predict --run runs/phantom/squeezenet/quick --fold 0 image.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from covidlib.cli import CommandError
from covidlib.cli.options import add_experiment_options, experiment_from_args


def register(subparsers: Any) -> None:
    """Add the ``cv`` and ``predict`` commands."""
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
    """Run ``covidlib cv``: validate everything, then train into the run folder."""
    from covidlib.config import get_profile
    from covidlib.engine.cv import RunConfigError, run_cv

    try:
        config, runtime = experiment_from_args(args)
        result = run_cv(
            config, runtime, root=args.root, out=args.out, only_fold=args.fold,
            run_name=args.run_name or get_profile(args.profile).name,
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
