"""``covidlib datasets``: list, download and index the datasets.

Example:
    $ covidlib datasets list
    $ covidlib datasets download covid19-ct
    $ covidlib datasets index covid19-ct --root ../shared/datasets/covid19-ct --json

``index`` exits with 2 when the root is missing or has the wrong layout; unreadable files
alone are listed as problems but do not change the exit code.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    """Add ``datasets list|download|index`` to the top-level parser."""
    from covidlib.data.registry import DATASETS

    names = sorted(DATASETS)
    parser = subparsers.add_parser(
        "datasets",
        help="list, download and index the datasets",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="datasets_command", metavar="ACTION", required=True)

    listing = commands.add_parser("list", help="print the dataset registry")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(func=list_command)

    from covidlib.data.registry import LESION_MASK_SETS

    download = commands.add_parser("download", help="download a dataset (resumable)")
    download.add_argument("name", choices=names + sorted(LESION_MASK_SETS))
    download.add_argument("--root", type=Path, help="target folder (default: data dir/NAME)")
    download.add_argument("--timeout", type=float, default=15.0, help="network timeout (s)")
    download.set_defaults(func=download_command)

    index = commands.add_parser("index", help="check a dataset folder and summarize it")
    index.add_argument("name", choices=names)
    index.add_argument("--root", type=Path, help="dataset folder (default: data dir/NAME)")
    index.add_argument("--json", action="store_true", help="print one JSON object")
    index.add_argument("--csv", type=Path, help="also write the image table to this CSV file")
    index.set_defaults(func=index_command)


def list_command(args: argparse.Namespace) -> int:
    from covidlib.data.registry import list_datasets

    table = list_datasets()
    if args.json:
        print(json.dumps(table.reset_index().to_dict(orient="records"), indent=2))
    else:
        columns = ["title", "folders", "counts", "source", "default_root"]
        print(table[columns].to_string())
    return 0


def download_command(args: argparse.Namespace) -> int:
    from covidlib.cli import CommandError
    from covidlib.data.registry import LESION_MASK_SETS
    from covidlib.data.sources import DownloadError, download_dataset, download_lesion_masks

    if args.name in LESION_MASK_SETS:  # images/ + masks/ for `covidlib localize --masks`
        spec = LESION_MASK_SETS[args.name]
        print(f"{spec.title}\nlicence: {spec.license}\ncite: {spec.citation}")
        try:
            root = download_lesion_masks(args.name, args.root, timeout=args.timeout)
        except DownloadError as error:
            raise CommandError(str(error)) from None
        print(f"{args.name} is ready at {root} (score with `covidlib localize --masks {root}`)")
        return 0
    from covidlib.data.registry import get_dataset
    from covidlib.data.sources import kaggle_configured

    spec = get_dataset(args.name)
    if spec.mirror is not None and not kaggle_configured():
        print(f"no Kaggle credentials: using {spec.mirror.description}")
    if spec.source != "generated":
        print(f"{spec.title}\nlicence: {spec.license}\ncite: {spec.citation}")
    try:
        root = download_dataset(args.name, args.root, timeout=args.timeout)
    except DownloadError as error:
        raise CommandError(str(error)) from None
    print(f"{args.name} is ready at {root}")
    return 0


def index_command(args: argparse.Namespace) -> int:
    """Index a dataset folder and print its summary (text or JSON).

    Example:
        >>> import tempfile, pathlib
        >>> from PIL import Image
        >>> from covidlib.cli import main
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> for folder in ("COVID", "non-COVID"):
        ...     (root / folder).mkdir()
        ...     Image.new("L", (8, 6)).save(root / folder / "a.png")
        >>> main(["datasets", "index", "sars-cov-2-ct", "--root", str(root)])
        ... # doctest: +ELLIPSIS
        dataset:   sars-cov-2-ct at ...
        images:    2 (1 COVID, 1 non-COVID); expected counts matched: none
        ...
        problems:  0
        0
    """
    from covidlib.cli import CommandError
    from covidlib.data.index import DatasetLayoutError, index_dataset
    from covidlib.utils.fileio import atomic_path

    try:
        index = index_dataset(args.name, args.root)
    except (FileNotFoundError, DatasetLayoutError) as error:
        raise CommandError(str(error)) from None
    if args.csv:
        with atomic_path(args.csv) as tmp:
            index.images.to_csv(tmp, index=False)
    summary = index.summary()
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    counts = summary["counts"]
    print(f"dataset:   {summary['dataset']} at {summary['root']}")
    print(
        f"images:    {summary['n_images']} ({counts['covid']} COVID, "
        f"{counts['non_covid']} non-COVID); expected counts matched: "
        f"{summary['counts_match'] or 'none'}"
    )
    if summary["n_images"]:
        print(
            f"sizes:     {summary['size_min'][0]}x{summary['size_min'][1]} .. "
            f"{summary['size_max'][0]}x{summary['size_max'][1]} (width x height)"
        )
    print(f"modes:     {summary['modes']}")
    print(f"groups:    {summary['n_groups']} {summary['group_kinds']}")
    if summary["splits"]:
        print(f"splits:    {summary['splits']}")
    print(f"problems:  {summary['n_problems']}")
    for problem in summary["problems"]:
        print(f"  {problem['path']}: {problem['error']}")
    return 0
