"""`covidlib gradcam`: class activation maps of image files with a run's fold model.

For each image it writes ``<stem>-<method>.png`` (the map over the image, at the original
image's size) and ``<stem>-<method>.npy`` (the map at the original size, float32 in
[0, 1]; all zeros when the map was zero everywhere, which is reported).

Example:
    >>> import tempfile
    >>> from covidlib.cli import main
    >>> main(["gradcam", "--run", tempfile.mkdtemp(), "--method", "nope", "x.png",
    ...       "--out", tempfile.mkdtemp()])
    2

    $ covidlib gradcam --run runs/phantom/resnet18/quick scan.png --out cams/
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from covidlib.cli import CommandError


def register(subparsers: Any) -> None:
    """Add the ``gradcam`` command."""
    from covidlib.explain.cam import CAM_METHODS, CAM_TARGETS

    parser = subparsers.add_parser(
        "gradcam",
        help="Grad-CAM (or another CAM) of images with a run's fold model",
        description="Letterbox each image to the run's canvas, compute the map at the "
        "architecture's Grad-CAM layer and map it back to the image. Methods: "
        + ", ".join(CAM_METHODS) + ".",
    )
    parser.add_argument("--run", type=Path, required=True, help="run folder of `covidlib cv`")
    parser.add_argument("--fold", type=int, default=0, help="fold model (default 0)")
    parser.add_argument("--method", default="gradcam", metavar="NAME",
                        help="CAM method (default gradcam)")
    parser.add_argument("--target", choices=CAM_TARGETS, default="covid",
                        help="explain the COVID logit or the predicted class (default covid)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    parser.set_defaults(func=gradcam_command)


def gradcam_command(args: argparse.Namespace) -> int:
    """Run ``covidlib gradcam``."""
    import numpy as np
    from PIL import Image

    from covidlib.engine.runs import RunFolder
    from covidlib.explain.cam import CAM_METHODS, explain_images, overlay
    from covidlib.utils.fileio import atomic_path
    from covidlib.utils.names import check_name

    method = args.method.strip().lower()
    check_name("--method", method, CAM_METHODS)
    missing = [str(path) for path in args.images if not path.is_file()]
    if missing:
        raise CommandError(f"image file(s) not found: {', '.join(missing)}")
    stems = [path.stem for path in args.images]
    if len(set(stems)) != len(stems):
        raise CommandError("two images share a file stem; their outputs would overwrite "
                           "each other: rename one or run them separately")
    try:
        RunFolder(args.run).read_config()
        cams = explain_images(args.run, args.images, args.fold, method=method,
                              target=args.target, device=args.device)
    except (FileNotFoundError, ValueError) as error:
        raise CommandError(str(error)) from error
    args.out.mkdir(parents=True, exist_ok=True)
    for path, cam in zip(args.images, cams, strict=True):
        png = args.out / f"{path.stem}-{method}.png"
        npy = args.out / f"{path.stem}-{method}.npy"
        with atomic_path(png) as tmp:
            Image.fromarray(overlay(cam.image, cam.map)).save(tmp, format="PNG")
        with atomic_path(npy) as tmp, open(tmp, "wb") as handle:
            np.save(handle, cam.map.astype(np.float32))
        zero = "  (zero map: no evidence for the target)" if cam.zero else ""
        print(f"{path}\tP(COVID) {cam.probability:.4f}\t{png}{zero}")
    return 0
