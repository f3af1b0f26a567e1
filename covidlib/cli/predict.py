"""`covidlib predict`: COVID probability of image files with the model(s) of a run folder.

Every fold model is verified first (its sha256 in ``fold-<k>/files.json``, and the model
name, canvas and config digest it was trained for against ``config.json``); a damaged or
mismatched file ends the command with one line naming it (exit code 2).

Example:
    >>> import tempfile
    >>> from covidlib.cli import main
    >>> main(["predict", "--run", tempfile.mkdtemp(), "--threshold", "2", "scan.png"])
    2

    $ covidlib predict --run runs/phantom/squeezenet/quick --fold 0 scan.png
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from covidlib.cli import CommandError


def register(subparsers: Any) -> None:
    """Add the ``predict`` command."""
    predict = subparsers.add_parser(
        "predict",
        help="COVID probability of images with the model(s) of a run folder",
        description="Letterbox each image to the run's canvas and print its COVID "
        "probability and label. Without --fold the finished folds' models are averaged.",
    )
    predict.add_argument("--run", type=Path, required=True, help="run folder of `covidlib cv`")
    predict.add_argument("--fold", type=int, help="use only this fold's model")
    predict.add_argument(
        "--threshold", type=float, default=0.5, help="COVID at or above it, in [0, 1]"
    )
    predict.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    predict.set_defaults(func=predict_command)


def predict_command(args: argparse.Namespace) -> int:
    """Run ``covidlib predict``."""
    from covidlib.engine.predict import check_threshold, predict_images
    from covidlib.engine.runs import RunFolder, run_identity

    try:
        threshold = check_threshold(args.threshold)
        config = RunFolder(args.run).read_config()
    except ValueError as error:
        raise CommandError(str(error)) from error
    missing = [str(path) for path in args.images if not path.is_file()]
    if missing:
        raise CommandError(f"image file(s) not found: {', '.join(missing)}")
    try:
        table = predict_images(args.run, args.images, fold=args.fold, threshold=threshold)
    except (FileNotFoundError, ValueError) as error:
        raise CommandError(str(error)) from error
    identity = run_identity(config)
    canvas = "x".join(str(side) for side in identity["canvas"])
    print(f"# {identity['model']}, canvas {canvas}, "
          f"folds {', '.join(str(f) for f in table.attrs['folds'])}")
    for row in table.itertuples(index=False):
        print(f"{row.path}\t{row.probability:.4f}\t{row.label_name}")
    return 0
