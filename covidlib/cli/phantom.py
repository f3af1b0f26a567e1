"""``covidlib phantom``: generate the synthetic chest-CT phantom dataset.

Example:
    $ covidlib phantom --n 40 --out /tmp/phantom --seed 0 --difficulty 0.5
    phantom of 40 images written in /tmp/phantom (COVID: 20, non-COVID: 20)
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``phantom`` command to the top-level parser."""
    parser = subparsers.add_parser(
        "phantom",
        help="generate the synthetic chest-CT phantom dataset",
        description=(
            "Write N synthetic chest-CT slices with lesion masks into DIR (COVID/, non-COVID/, "
            "masks/, labels.csv, manifest.json). The same seed gives identical files; an "
            "existing folder with the same parameters is reused."
        ),
    )
    parser.add_argument("--n", type=int, default=200, metavar="N", help="number of images")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (>= 0)")
    parser.add_argument(
        "--difficulty",
        type=float,
        default=0.5,
        metavar="D",
        help="0 (obvious lesions) to 1 (subtle lesions, strong confounders); default 0.5",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a phantom in DIR that was made with other parameters",
    )
    parser.set_defaults(func=phantom_command)


def phantom_command(args: argparse.Namespace) -> int:
    """Generate (or reuse) the phantom and print where it is and the class counts.

    Example:
        >>> import tempfile, pathlib
        >>> from covidlib.cli import main
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "ph"
        >>> main(["phantom", "--n", "2", "--out", str(out)])  # doctest: +ELLIPSIS
        phantom of 2 images written in .../ph (COVID: 1, non-COVID: 1)
        0
    """
    from covidlib.cli import CommandError
    from covidlib.data.phantom import generate_phantom, is_current, read_manifest

    if args.n < 2:
        raise CommandError(f"--n must be at least 2 (one image per class), got {args.n}")
    if args.seed < 0:
        raise CommandError(f"--seed must be a non-negative integer, got {args.seed}")
    if not 0.0 <= args.difficulty <= 1.0:
        raise CommandError(f"--difficulty must be between 0 and 1, got {args.difficulty}")
    reused = is_current(args.out, args.n, args.seed, args.difficulty)
    try:
        out = generate_phantom(
            args.out,
            n=args.n,
            seed=args.seed,
            difficulty=args.difficulty,
            overwrite=args.overwrite,
        )
    except (ValueError, OSError) as error:
        raise CommandError(str(error)) from error
    manifest = read_manifest(out) or {}
    counts = ", ".join(f"{name}: {count}" for name, count in manifest.get("counts", {}).items())
    state = "reused" if reused else "written"
    print(f"phantom of {args.n} images {state} in {out} ({counts})")
    return 0
