"""``covidlib pretrain``: train a source model offline, to transfer from with ``cv --weights``.

Example:
    >>> from covidlib.cli import build_parser
    >>> args = build_parser().parse_args(["pretrain", "--model", "resnet18", "--out", "r.pt"])
    >>> args.source, args.seed, args.func.__name__
    ('phantom-findings', 0, 'pretrain_command')

    $ covidlib pretrain --source phantom-findings --model resnet18 --out resnet18-source.pt
    $ covidlib pretrain --source sars-cov-2-ct --root data/sars-cov-2-ct --profile cpu \
          --model resnet18 --out resnet18-sars.pt
    $ covidlib cv --model resnet18 --weights resnet18-source.pt --strategy features
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from covidlib.config import PROFILES

SOURCES: tuple[str, ...] = ("phantom-findings",)  # covidlib.engine.pretrain.SOURCE_TASKS
# A real labelled dataset (registry name) is a source task too: COVID vs non-COVID.
DATASET_SOURCES: tuple[str, ...] = ("sars-cov-2-ct", "covid19-ct", "phantom")


def register(subparsers: Any) -> None:
    """Add the ``pretrain`` command."""
    parser = subparsers.add_parser(
        "pretrain",
        help="train a source model on the phantom's non-COVID findings (offline transfer)",
        description=(
            "Train a network on a source task of the target's domain but not its labels: the "
            "five non-COVID findings of a separately seeded, larger phantom, or a real "
            "labelled dataset (--source sars-cov-2-ct --root DIR: COVID vs non-COVID, a "
            "held-out share scores it). Writes FILE, a "
            "state dict with the backbone keys of the model (load it with `covidlib cv "
            "--weights FILE --strategy features|finetune`), and FILE's provenance as .json."
        ),
    )
    parser.add_argument("--source", choices=SOURCES + DATASET_SOURCES,
                        default="phantom-findings",
                        help="source task (default phantom-findings) or a labelled dataset")
    parser.add_argument("--root", type=Path, metavar="DIR",
                        help="the source dataset's folder (with a dataset --source)")
    parser.add_argument("--holdout", type=float, default=0.2,
                        help="share of a source dataset held out to score it (default 0.2)")
    parser.add_argument("--model", required=True, help="model name (covidlib models list)")
    parser.add_argument("--out", type=Path, required=True, metavar="FILE",
                        help="weights file to write (.pt); provenance goes beside it (.json)")
    parser.add_argument("--profile", choices=sorted(PROFILES),
                        help="run profile (default: COVIDLIB_PROFILE, else quick)")
    parser.add_argument("--epochs", type=int, help="training epochs (default: the profile's)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the source phantom, split and training (default 0)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.set_defaults(func=pretrain_command)


def pretrain_command(args: argparse.Namespace) -> int:
    """Run ``covidlib pretrain`` and print where the files are."""
    from covidlib.cli import CommandError
    from covidlib.config import get_profile, resolve_device
    from covidlib.engine.pretrain import pretrain

    if args.out.suffix not in {".pt", ".pth"}:
        raise CommandError(f"--out {args.out}: name a .pt or .pth file")
    if args.out.is_dir():
        raise CommandError(f"--out {args.out} is a folder; name a .pt file inside it")
    if args.epochs is not None and args.epochs < 1:
        raise CommandError(f"--epochs must be at least 1, got {args.epochs}")
    if args.seed < 0:
        raise CommandError(f"--seed must be a non-negative integer, got {args.seed}")
    if args.source in DATASET_SOURCES:
        return _pretrain_dataset(args)
    if args.root is not None:
        raise CommandError("--root is for a dataset --source (e.g. sars-cov-2-ct)")
    pretrain(
        args.model, args.out, source=args.source, profile=get_profile(args.profile),
        epochs=args.epochs, seed=args.seed, device=resolve_device(args.device), log=print,
    )
    return 0


def _pretrain_dataset(args: argparse.Namespace) -> int:
    """``--source DATASET``: :func:`covidlib.engine.pretrain_dataset.pretrain_on_dataset`."""
    from covidlib.config import get_profile, resolve_device
    from covidlib.engine.pretrain_dataset import pretrain_on_dataset
    from covidlib.evaluate.provenance import current_commit, hardware_description

    pretrain_on_dataset(
        args.model, args.out, source=args.source, root=args.root,
        profile=get_profile(args.profile), epochs=args.epochs, seed=args.seed,
        holdout=args.holdout, device=resolve_device(args.device),
        extra_provenance={"hardware": hardware_description(), "commit": current_commit()},
        log=print,
    )
    return 0
