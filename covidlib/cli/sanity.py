"""`covidlib sanity`: the cascading-randomization sanity check of a run's heat maps.

For each ``--run`` (one per architecture), the fold model's maps of the images of
``--masks DIR`` (its ``images/``) or of the given image files are compared with the maps
of the same model whose layer groups are re-initialized one by one from the head down
(Adebayo et al., 2018): Spearman rank correlation and SSIM at each step. Maps that stay
similar fail the check. ``--out-json FILE`` stores ``randomization`` per architecture (the
layers randomized in order, rank correlation and SSIM per step) with each run's
``trained_on`` and provenance; ``--plot FILE.png`` draws the curves.

Example:
    >>> import tempfile
    >>> from covidlib.cli import main
    >>> main(["sanity", "--run", tempfile.mkdtemp(), "x.png"])
    2

    $ covidlib sanity --run RUN_A --run RUN_B --masks ../shared/datasets/ct-lesion-masks \\
          --out-json results/explain/sanity-randomization.json --plot sanity.png
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from covidlib.cli import CommandError


def register(subparsers: Any) -> None:
    """Add the ``sanity`` command."""
    from covidlib.explain.cam import CAM_METHODS, CAM_TARGETS

    parser = subparsers.add_parser(
        "sanity",
        help="cascading-randomization sanity check of a run's heat maps",
        description="Re-initialize the fold model's layers from the head down and compare "
        "each step's maps with the trained model's (Spearman rank correlation, SSIM). "
        "Methods: " + ", ".join(CAM_METHODS) + ".",
    )
    parser.add_argument("--run", type=Path, action="append", required=True,
                        help="run folder of `covidlib cv` (repeat for several architectures)")
    parser.add_argument("--fold", type=int, default=0, help="fold model (default 0)")
    parser.add_argument("--method", default="gradcam", metavar="NAME",
                        help="CAM method (default gradcam)")
    parser.add_argument("--target", choices=CAM_TARGETS, default="covid",
                        help="explain the COVID logit or the predicted class (default covid)")
    parser.add_argument("--masks", type=Path, metavar="DIR",
                        help="use the images of DIR/images (e.g. the lesion slices)")
    parser.add_argument("--limit", type=int, metavar="N", help="use the first N images only")
    parser.add_argument("--depth", type=int, default=2,
                        help="dotted name parts per layer group (default 2)")
    parser.add_argument("--max-steps", type=int, metavar="K",
                        help="stop after K layer groups (default: down to the input)")
    parser.add_argument("--out-json", type=Path, metavar="FILE",
                        help="write the curves with provenance to FILE")
    parser.add_argument("--plot", type=Path, metavar="FILE", help="draw the curves (.png)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    parser.add_argument("images", nargs="*", type=Path, metavar="IMAGE")
    parser.set_defaults(func=sanity_command)


def _images(args: argparse.Namespace) -> list[Path]:
    from covidlib.explain.localization import IMAGE_SUFFIXES

    images = list(args.images)
    if args.masks is not None:
        folder = args.masks / "images"
        if not folder.is_dir():
            raise CommandError(f"{args.masks} has no images/ folder; give --masks DIR with "
                               "DIR/images, or image files")
        images += sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    missing = [str(p) for p in images if not p.is_file()]
    if missing:
        raise CommandError(f"image file(s) not found: {', '.join(missing[:3])}")
    if args.limit is not None:
        if args.limit < 1:
            raise CommandError(f"--limit must be at least 1, got {args.limit}")
        images = images[:args.limit]
    if not images:
        raise CommandError("no images: give image files or --masks DIR")
    return images


def sanity_command(args: argparse.Namespace) -> int:
    """Run ``covidlib sanity``."""
    from covidlib.engine.runs import RunFolder
    from covidlib.explain.cam import CAM_METHODS
    from covidlib.explain.features import run_inputs
    from covidlib.explain.records import explanation_provenance, write_result
    from covidlib.explain.sanity import randomization_record, run_randomization

    method = args.method.strip().lower()
    if method not in CAM_METHODS:
        raise CommandError(f"unknown --method {args.method!r}; choose one of: "
                           f"{', '.join(CAM_METHODS)}")
    if args.plot is not None and args.plot.suffix.lower() != ".png":
        raise CommandError(f"--plot {args.plot}: give a .png file name")
    images = _images(args)
    curves: dict[str, dict[str, Any]] = {}
    for run in args.run:
        try:
            RunFolder(run).read_config()
            name = run_inputs(run).model
            table = run_randomization(run, images, args.fold, method=method,
                                      target=args.target, depth=args.depth,
                                      max_steps=args.max_steps, device=args.device)
        except (FileNotFoundError, ValueError) as error:
            raise CommandError(str(error)) from error
        record: dict[str, Any] = randomization_record(table)
        if args.out_json is not None:
            record["provenance"] = explanation_provenance(run)
            record["trained_on"] = record["provenance"].pop("trained_on")
        curves[name] = record
        print(f"# {name} ({run}), {method}, target {args.target}, {len(images)} images")
        print(table.to_string(index=False))
    if args.out_json is not None:
        result = {"check": "cascading model-parameter randomization (Adebayo et al. 2018)",
                  "method": method, "target": args.target, "fold": args.fold,
                  "n_images": len(images), "depth": args.depth,
                  "images": args.masks.resolve().name if args.masks is not None else None,
                  "randomization": curves}
        print(f"wrote {write_result(args.out_json, result)}")
    if args.plot is not None:
        _plot(curves, args.plot, method)
    return 0


def _plot(curves: dict[str, dict[str, Any]], path: Path, method: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from covidlib.explain.sanity import plot_randomization
    from covidlib.utils.fileio import atomic_path

    ax = plot_randomization(curves)
    ax.set_title(f"{method}: cascading randomization")
    figure = ax.get_figure(root=True)
    assert figure is not None
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(figure)
    print(f"wrote {path}")
