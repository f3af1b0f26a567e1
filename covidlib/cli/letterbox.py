"""`covidlib letterbox`: put one image onto a network's input canvas.

Example:
    $ covidlib letterbox slice.png /tmp/slice_resnet.png --model ResNet18
    $ covidlib letterbox slice.png /tmp/slice.png --size 331x267 --mode stretch
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``letterbox`` command to the top-level parser."""
    parser = subparsers.add_parser(
        "letterbox",
        help="letterbox (or stretch / centre-crop) one image onto a model's input canvas",
        description=(
            "Read IN as 8-bit grayscale, fit it onto the canvas (--size WxH, or the custom "
            "input of --model from Table 1) and write OUT (format from its extension). "
            "Prints the placement as JSON."
        ),
    )
    parser.add_argument("input", metavar="IN", type=Path, help="image file to read")
    parser.add_argument("output", metavar="OUT", type=Path, help="image file to write")
    canvas = parser.add_mutually_exclusive_group(required=True)
    canvas.add_argument("--size", metavar="WxH", help="canvas width x height, e.g. 349x253")
    canvas.add_argument("--model", metavar="NAME", help="use this model's custom input size")
    parser.add_argument(
        "--mode",
        choices=("letterbox", "stretch", "crop"),
        default="letterbox",
        help="letterbox (default: fit and pad), stretch (distort) or crop (cover, cut)",
    )
    parser.add_argument("--fill", type=int, default=0, help="padding gray value 0..255")
    parser.set_defaults(func=letterbox_command)


def parse_size(text: str) -> tuple[int, int]:
    """Parse ``"349x253"`` into (349, 253); anything else is a :class:`CommandError`.

    Example:
        >>> parse_size("349x253")
        (349, 253)
    """
    from covidlib.cli import CommandError

    match = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text)
    if not match or int(match.group(1)) <= 0 or int(match.group(2)) <= 0:
        raise CommandError(
            f"--size must look like WIDTHxHEIGHT with positive integers, got {text!r}"
        )
    return int(match.group(1)), int(match.group(2))


def model_canvas(name: str) -> tuple[int, int]:
    """Custom input (width, height) of a registry model (``resnet18`` or ``ResNet18``)."""
    from covidlib.models.registry import get_spec

    return get_spec(name).custom_input


def _resolved(path: Path, role: str) -> Path:
    """``path.resolve()``, or a :class:`CommandError` for a symbolic link loop."""
    from covidlib.cli import CommandError

    try:
        return path.resolve()
    except (RuntimeError, OSError) as error:  # Python < 3.13 raises RuntimeError for loops
        raise CommandError(
            f"cannot resolve {role} {path}: {error}; it is (or passes through) a symbolic "
            "link loop. Fix the link or give the real path."
        ) from None


def letterbox_command(args: argparse.Namespace) -> int:
    """Letterbox/stretch/crop IN onto the canvas and write OUT atomically.

    Example:
        >>> import tempfile, pathlib
        >>> from PIL import Image
        >>> from covidlib.cli import main
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> Image.new("L", (40, 20)).save(folder / "in.png")
        >>> main(["letterbox", str(folder / "in.png"), str(folder / "out.png"), "--size", "20x20"])
        ... # doctest: +ELLIPSIS
        {"input": ..., "canvas_size": [20, 20], "box": [0, 5, 20, 15], "scale": [0.5, 0.5]}
        0
    """
    from covidlib.cli import CommandError
    from covidlib.data.images import ImageLoadError, load_grayscale
    from covidlib.transforms.geometry import resize_to_canvas
    from covidlib.utils.fileio import atomic_path

    size = parse_size(args.size) if args.size else model_canvas(args.model)
    if not 0 <= args.fill <= 255:
        raise CommandError(f"--fill must be a gray value in 0..255, got {args.fill}")
    if _resolved(args.input, "IN") == _resolved(args.output, "OUT"):
        raise CommandError(f"OUT must differ from IN ({args.input}); choose another file name")
    try:
        image = load_grayscale(args.input)
    except ImageLoadError as error:
        raise CommandError(str(error)) from error
    canvas, placement = resize_to_canvas(image, size, mode=args.mode, fill=args.fill)
    try:
        with atomic_path(args.output) as tmp:
            canvas.save(tmp)
    except (ValueError, OSError) as error:
        raise CommandError(f"cannot write {args.output}: {error}") from error
    print(
        json.dumps(
            {
                "input": str(args.input),
                "output": str(args.output),
                "mode": args.mode,
                "original_size": list(placement.original_size),
                "canvas_size": list(placement.canvas_size),
                "box": list(placement.box),
                "scale": [round(value, 6) for value in placement.scale],
            }
        )
    )
    return 0
