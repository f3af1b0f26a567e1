"""`covidlib audit`: byte-identical and near-duplicate images, pseudo-patients, fold leaks.

Example:
    >>> from covidlib.cli import build_parser
    >>> args = build_parser().parse_args(["audit", "covid19-ct", "--json"])
    >>> args.name, args.json, args.func.__name__
    ('covid19-ct', True, 'audit_command')

    $ covidlib audit covid19-ct --root ../shared/datasets/covid19-ct --json
    $ covidlib audit --root my-scans
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import pandas as pd

from covidlib.cli import CommandError
from covidlib.cli.dataset_args import add_dataset_arguments, dataset_name, index_images

SHOWN_PAIRS = 10


def register(subparsers: Any) -> None:
    """Add the ``audit`` command."""
    audit = subparsers.add_parser(
        "audit",
        help="find byte-identical and near-duplicate images, pseudo-patients and fold leaks",
        description="Audit a dataset for leakage: sets of byte-identical files, "
        "near-duplicate pairs (perceptual hashes, or CNN features with --features), "
        "pseudo-patient groups and, with --folds, how many test images of each fold have "
        "a near twin in their training folds.",
    )
    add_dataset_arguments(audit, positional=True)
    audit.add_argument("--folds", type=Path,
                       help="a fold file (folds-*.csv, or a run folder's folds.csv)")
    audit.add_argument("--threshold", type=float,
                       help="largest distance of a near-duplicate pair (default 0.125 for "
                       "hashes, 0.05 for features)")
    audit.add_argument("--min-pairs", type=int, default=100,
                       help="list at least this many nearest pairs (default 100)")
    audit.add_argument("--features",
                       help="cosine distance of resnet18 features from this weights file "
                       "(or 'imagenet': the cached ImageNet weights) instead of hashes")
    audit.add_argument("--groups-out", type=Path,
                       help="write the pseudo-patients as a groups file (CSV path,group) for "
                       "covidlib cv --split grouped --groups FILE")
    audit.add_argument("--json", action="store_true", help="print the result as JSON")
    audit.set_defaults(func=audit_command)


def read_fold_file(path: Path, images: pd.DataFrame) -> list[int]:
    """Return the fold of every row of ``images`` from a fold file (matched by relpath or
    path), naming the file when it does not fit the dataset."""
    from covidlib.engine.readers import read_csv

    table = read_csv(path, ("fold",), dtype={"key": str, "path": str},
                     hint="pass a folds-*.csv of a runs folder or a run folder's folds.csv")
    column = "key" if "key" in table.columns else "path" if "path" in table.columns else None
    if column is None:
        raise CommandError(f"{path} has neither a key nor a path column; pass a fold file.")
    lookup = dict(zip(table[column].astype(str), table["fold"].astype(int), strict=True))
    folds = []
    relpaths, fulls = images["relpath"].astype(str), images["path"].astype(str)
    for relpath, full in zip(relpaths, fulls, strict=True):
        fold = lookup.get(relpath, lookup.get(full))
        if fold is None:
            raise CommandError(f"{path} has no fold for {relpath}; it was made for another "
                               "dataset or folder.")
        folds.append(fold)
    return folds


def audit_command(args: argparse.Namespace) -> int:
    """Run ``covidlib audit``."""
    from covidlib.audit.leaks import audit_images
    from covidlib.utils.fileio import atomic_write_text

    if args.min_pairs < 0:
        raise CommandError(f"--min-pairs must be >= 0 (got {args.min_pairs}).")
    started = time.perf_counter()
    audited, _, images = index_images(args, dataset_name(args))
    folds = read_fold_file(args.folds, images) if args.folds is not None else None
    result = audit_images(
        images["path"].astype(str).tolist(), images["label"].astype(int).tolist(),
        threshold=args.threshold, min_pairs=args.min_pairs, features=args.features,
    )
    if folds is not None:
        result.with_leaks(folds)
    if args.groups_out is not None:
        table = result.groups_table(images["relpath"].astype(str).tolist())
        atomic_write_text(args.groups_out, table.to_csv(index=False))
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
        return 0
    close = sum(1 for pair in result.near if pair["distance"] <= result.threshold)
    print(f"{audited}: {len(images)} images audited ({result.method}) in "
          f"{time.perf_counter() - started:.1f} s")
    print(f"identical: {len(result.identical)} set(s) of byte-identical files "
          f"({sum(len(s) for s in result.identical)} files)")
    print(f"near:      {close} pair(s) at distance <= {result.threshold:g}")
    for pair in result.near[:SHOWN_PAIRS]:
        print(f"  {pair['distance']:.3f}  {pair['a']}  {pair['b']}")
    print(f"groups:    {result.n_groups} pseudo-patient group(s)")
    if result.leaks is not None:
        print("leaks:     " + ", ".join(f"fold {k}: {v}" for k, v in result.leaks.items())
              + " test image(s) with a near twin in training")
    if args.groups_out is not None:
        print(f"groups file: {args.groups_out}")
    return 0
