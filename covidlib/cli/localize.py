"""`covidlib localize`: do a run's heat maps point at the lesions? Scores with baselines.

Without ``--masks`` it scores the run's phantom test images of class COVID against their
lesion masks, each with the fold model that held it out; with ``--masks DIR`` every image
of ``DIR/images`` against ``DIR/masks`` (same stems; images of the run's own data with the
fold that held them out, others with fold 0). ``--fold K`` uses fold K's model only.
Printed: the pointing game and the energy share of the method and of the baselines
(``random``, ``center``, and ``body`` and ``lungs`` with ``--masks``), each with a 95%
bootstrap interval. With ``--masks``, ``--also-method NAME`` scores more CAM methods and
``--also-predicted`` the maps of the predicted class too (``scores["<method>:predicted"]``);
zero maps are counted per map, with diagnostics where many are zero. ``--out-json FILE``
writes the result with ``trained_on`` and the run's provenance (a stored result).

Example:
    >>> import tempfile
    >>> from covidlib.cli import main
    >>> main(["localize", "--run", tempfile.mkdtemp()])
    2

    $ covidlib localize --run runs/phantom/resnet18/quick --json
    $ covidlib localize --run RUN --masks ../shared/datasets/ct-lesion-masks
    $ covidlib localize --run RUN --masks DIR --also-method gradcam++ --also-predicted \
          --out-json results/explain/localization-resnet18.json
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from covidlib.cli import CommandError


def register(subparsers: Any) -> None:
    """Add the ``localize`` command."""
    from covidlib.explain.cam import CAM_TARGETS

    parser = subparsers.add_parser(
        "localize",
        help="score a run's heat maps against lesion masks (pointing game, energy)",
        description="Pointing game and energy share of the CAMs inside lesion masks, next to "
        "random, centre (and body) baselines, with bootstrap intervals.",
    )
    parser.add_argument("--run", type=Path, required=True, help="run folder of `covidlib cv`")
    parser.add_argument("--fold", type=int, help="use only this fold's model")
    parser.add_argument("--method", default="gradcam", metavar="NAME",
                        help="CAM method (default gradcam)")
    parser.add_argument("--target", choices=CAM_TARGETS, default="covid",
                        help="explain the COVID logit or the predicted class (default covid)")
    parser.add_argument("--masks", type=Path, metavar="DIR",
                        help="a folder with images/ and masks/ (same file stems)")
    parser.add_argument("--json", action="store_true", help="print the scores as JSON")
    parser.add_argument("--also-method", action="append", default=[], metavar="NAME",
                        help="with --masks: score this CAM method too (repeatable)")
    parser.add_argument("--also-predicted", action="store_true",
                        help="with --masks: score the maps of the predicted class too")
    parser.add_argument("--out-json", type=Path, metavar="FILE",
                        help="write the result with trained_on and provenance to FILE")
    parser.add_argument("--data-root", type=Path, metavar="DIR",
                        help="the copy the run was trained on, for the provenance digest "
                        "(default: the folder holding the run's images)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    parser.set_defaults(func=localize_command)


def localize_command(args: argparse.Namespace) -> int:
    """Run ``covidlib localize``."""
    from covidlib.engine.runs import RunFolder
    from covidlib.explain.cam import CAM_METHODS
    from covidlib.explain.localization import localize_folder, localize_run
    from covidlib.utils.names import check_name

    method = args.method.strip().lower()
    check_name("--method", method, CAM_METHODS)
    extra = [m.strip().lower() for m in args.also_method]
    for name in extra:
        check_name("--also-method", name, CAM_METHODS)
    if (extra or args.also_predicted) and args.masks is None:
        raise CommandError("--also-method and --also-predicted need --masks DIR")
    if extra or args.also_predicted:
        return _localize_targets(args, [method, *extra])
    try:
        RunFolder(args.run).read_config()
        if args.masks is not None:
            result = localize_folder(args.run, args.masks, args.fold, method=method,
                                     target=args.target, device=args.device)
        else:
            result = localize_run(args.run, args.fold, method=method, target=args.target,
                                  device=args.device)
    except (FileNotFoundError, ValueError) as error:
        raise CommandError(str(error)) from error
    result.summary["run"] = str(args.run)
    result.summary["masks"] = str(args.masks) if args.masks is not None else None
    if args.out_json is not None:
        _write_stored(args, result.summary)
    if args.json:
        print(result.to_json(), end="")
    else:
        print("\n".join(result.lines()))
    return 0


def _localize_targets(args: argparse.Namespace, methods: list[str]) -> int:
    """Several methods and targets in one result (``covidlib.explain.records``)."""
    import json

    from covidlib.engine.runs import RunFolder
    from covidlib.explain.localization import LocalizationResult
    from covidlib.explain.records import localize_targets

    targets = [args.target] + (["predicted"] if args.also_predicted
                               and args.target != "predicted" else [])
    try:
        RunFolder(args.run).read_config()
        summary = localize_targets(args.run, args.masks, methods=methods, targets=targets,
                                   fold=args.fold, device=args.device)
    except (FileNotFoundError, ValueError) as error:
        raise CommandError(str(error)) from error
    summary["run"] = str(args.run)
    summary["masks"] = str(args.masks)
    if args.out_json is not None:
        _write_stored(args, summary)
    if args.json:
        print(json.dumps(summary, indent=2, allow_nan=True))
    else:
        print("\n".join(LocalizationResult(None, summary).lines()))  # type: ignore[arg-type]
        for name, zero in summary["zero_maps_by_map"].items():
            print(f"{name}: {zero} zero map(s)")
    return 0


def _write_stored(args: argparse.Namespace, summary: dict[str, Any]) -> None:
    """Write ``summary`` with ``trained_on`` and provenance; no machine path in it."""
    from covidlib.explain.records import explanation_provenance, write_result

    stored = {**summary, **explanation_provenance(args.run, args.data_root)}
    if args.masks is not None:
        stored["masks"] = Path(args.masks).resolve().name
    path = write_result(args.out_json, stored)
    print(f"wrote {path}")
