"""`covidlib transfer`: the transfer study on a real target (label budgets x strategies).

Trains ``scratch``, ``features`` and ``finetune`` at each label budget on the target
dataset (default COVID19-CT; its official test split is the one fixed test set) from each
``--source NAME=FILE`` backbone (written by ``covidlib pretrain``), and prints (and with
``--out-json`` stores) the table: source, target, strategy, labels per class, accuracy with
its 95% interval and the paired interval against scratch at the same budget.

Example:
    >>> from covidlib.cli import build_parser
    >>> args = build_parser().parse_args(["transfer", "--model", "resnet18"])
    >>> args.budgets, args.target
    ('10,25,50,100,all', 'covid19-ct')

    $ covidlib transfer --model resnet18 --root ../shared/datasets/covid19-ct \\
          --source sars-cov-2-ct=resnet18-sars.pt --source phantom=resnet18-phantom.pt \\
          --profile cpu --out-json results/explain/transfer-covid19-ct-resnet18.json
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from covidlib.cli import CommandError
from covidlib.config import PROFILES


def register(subparsers: Any) -> None:
    """Add the ``transfer`` command."""
    parser = subparsers.add_parser(
        "transfer",
        help="transfer study on a real target: label budgets x scratch/features/finetune",
        description="Train scratch, features and finetune at several label budgets on a real "
        "target dataset from source backbones, on one fixed test set; accuracy with "
        "intervals and the paired interval against scratch.",
    )
    parser.add_argument("--model", required=True, help="model name (covidlib models list)")
    parser.add_argument("--source", action="append", default=[], metavar="NAME=FILE",
                        help="a source backbone written by `covidlib pretrain` (repeatable)")
    parser.add_argument("--target", default="covid19-ct", help="target dataset (registry name)")
    parser.add_argument("--root", type=Path, metavar="DIR", help="the target dataset's folder")
    parser.add_argument("--budgets", default="10,25,50,100,all",
                        help="labelled images per class, comma-separated; all = whole pool")
    parser.add_argument("--strategies", default="scratch,features,finetune",
                        help="comma-separated subset of scratch,features,finetune")
    parser.add_argument("--profile", choices=sorted(PROFILES),
                        help="run profile (default: COVIDLIB_PROFILE, else quick)")
    parser.add_argument("--epochs", type=int, help="epochs per fit (default: the profile's)")
    parser.add_argument("--test-per-class", type=int, default=50,
                        help="test images per class without an official split (default 50)")
    parser.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--out-json", type=Path, metavar="FILE",
                        help="store the table with provenance in FILE")
    parser.set_defaults(func=transfer_command)


def _budgets(text: str) -> list[int | None]:
    budgets: list[int | None] = []
    for item in text.split(","):
        item = item.strip().lower()
        if item == "all":
            budgets.append(None)
        elif item.isdigit() and int(item) > 0:
            budgets.append(int(item))
        else:
            raise CommandError(f"--budgets {text!r}: give positive integers or 'all'")
    return budgets


def _sources(items: list[str]) -> dict[str, Path]:
    sources: dict[str, Path] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise CommandError(f"--source {item!r}: use NAME=FILE (e.g. sars-cov-2-ct=r18.pt)")
        if not Path(path).is_file():
            raise CommandError(f"--source {item!r}: {path} not found; write it with "
                               "`covidlib pretrain`")
        sources[name] = Path(path)
    return sources


def transfer_command(args: argparse.Namespace) -> int:
    """Run ``covidlib transfer``."""
    from covidlib.config import get_profile, resolve_device
    from covidlib.engine.pretrain import read_provenance
    from covidlib.engine.transfer_study import real_transfer_study
    from covidlib.evaluate.provenance import current_commit, hardware_description
    from covidlib.explain.records import write_result

    budgets = _budgets(args.budgets)
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    sources = _sources(args.source)
    if args.epochs is not None and args.epochs < 1:
        raise CommandError(f"--epochs must be at least 1, got {args.epochs}")
    profile = get_profile(args.profile)
    study = real_transfer_study(
        args.model, sources, target=args.target, root=args.root, budgets=budgets,
        strategies=strategies, profile=profile, epochs=args.epochs,
        test_per_class=args.test_per_class, seed=args.seed,
        device=resolve_device(args.device), log=print,
    )
    print(study.table.drop(columns=["target", "model"]).to_string(index=False))
    if args.out_json is not None:
        provenance = {}
        for name, path in sources.items():
            try:
                provenance[name] = read_provenance(path)
            except (FileNotFoundError, ValueError):
                provenance[name] = {"weights_file": path.name}
            provenance[name].pop("history", None)
        from datetime import datetime, timezone

        result = {
            "study": "transfer on a real target", "target": args.target, "model": args.model,
            "profile": profile.name, "epochs": args.epochs, "seed": args.seed,
            "test": study.test, "sources": provenance, "table": study.records(),
            "hardware": hardware_description(), "commit": current_commit(),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        print(f"wrote {write_result(args.out_json, result)}")
    return 0
