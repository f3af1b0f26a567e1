"""How a command takes its dataset: a registry name, or ``--root DIR`` alone (a plain folder
of your own images, with class folders or ``--labels FILE.csv``).

Example:
    >>> import argparse
    >>> parser = argparse.ArgumentParser()
    >>> add_dataset_arguments(parser)
    >>> dataset_name(parser.parse_args(["--root", "scans"]))
    'folder'
    >>> dataset_name(parser.parse_args(["--dataset", "covid19-ct"]))
    'covid19-ct'
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from covidlib.cli import CommandError

LABELS_HELP = ("with --root DIR alone: a CSV with columns path,label (paths relative to DIR, "
               "labels 1/0 or COVID/non-COVID) instead of class folders")
ROOT_HELP = ("dataset folder (default: the registry's); alone, without a dataset name: a "
             "folder of your own images with class folders COVID/ and non-COVID/")
SHOWN_SKIPPED = 3


def add_dataset_arguments(parser: argparse.ArgumentParser, *, positional: bool = False) -> None:
    """Add the dataset name (``--dataset``, or an optional positional ``name``), ``--root``
    and ``--labels``."""
    if positional:
        parser.add_argument("name", nargs="?", help="dataset name (covidlib datasets list); "
                            "leave it out for a folder of your own (--root DIR)")
    else:
        parser.add_argument("--dataset", help="dataset name (covidlib datasets list); leave "
                            "it out for a folder of your own (--root DIR)")
    parser.add_argument("--root", type=Path, help=ROOT_HELP)
    parser.add_argument("--labels", type=Path, metavar="FILE.csv", help=LABELS_HELP)


def dataset_name(args: argparse.Namespace, *, default: str | None = None) -> str:
    """Return the registry name the arguments ask for: ``folder`` for ``--root DIR`` without
    a dataset name, else the name (or ``default``).

    Raises:
        CommandError: neither a name nor a root, or ``--labels`` without a plain folder.
    """
    from covidlib.data.registry import FOLDER_DATASET

    name = getattr(args, "dataset", None) or getattr(args, "name", None)
    labels = getattr(args, "labels", None)
    if name is None and args.root is not None:
        return FOLDER_DATASET
    if labels is not None:
        if args.root is None:
            raise CommandError(f"--labels {labels} needs --root DIR (the folder its paths are "
                               "relative to).")
        if name != FOLDER_DATASET:
            raise CommandError(f"--labels {labels} labels a folder of your own images; leave "
                               f"out the dataset name {name}.")
    name = name or default
    if name is None:
        raise CommandError("give a dataset name or --root DIR (a folder of your own images).")
    return name


def index_images(args: argparse.Namespace, name: str) -> tuple[str, Path, pd.DataFrame]:
    """Index the dataset the arguments name: ``(dataset name, root, readable images)``.

    Unreadable files are left out with a note on stderr; a plain folder is named after the
    folder (:func:`covidlib.data.folder.folder_dataset_name`).

    Raises:
        covidlib.utils.names.UnknownNameError: an unknown dataset name (one line).
    """
    from covidlib.data.index import index_dataset
    from covidlib.data.sources import ensure_dataset

    root = ensure_dataset(name, args.root, None)
    index = index_dataset(name, root, labels=getattr(args, "labels", None))
    if len(index.problems):
        shown = ", ".join(str(p) for p in index.problems["path"].head(SHOWN_SKIPPED))
        more = len(index.problems) - SHOWN_SKIPPED
        print(f"skipped {len(index.problems)} unreadable file(s): {shown}"
              + (f" and {more} more" if more > 0 else ""), file=sys.stderr)
    return index.name, root, index.images.reset_index(drop=True)
