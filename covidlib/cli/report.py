"""`covidlib report`: Table 2 for run folders and stored results, the paper beside it.

Example:
    $ covidlib report runs/phantom/resnet18/quick --paper --format md
    $ covidlib report results/covid19-ct/*/* --format json --out table2.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from covidlib.utils.fileio import atomic_write_text

FORMATS: tuple[str, ...] = ("md", "csv", "json", "html")


def register(subparsers: Any) -> None:
    """Add the ``report`` command."""
    parser = subparsers.add_parser(
        "report",
        help="Table 2 (mean ± std and 95%% intervals) for run folders or stored results",
        description="Summarize each run's test folds: the paper's metrics and ROC-AUC in "
        "percent, mean ± sample std over folds, with a 95% t-interval over folds (or the "
        "bootstrap over the pooled test images, --interval bootstrap). --format json prints "
        "one object per run with every interval.",
    )
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR",
                        help="run folders of `covidlib cv` or stored results")
    parser.add_argument("--format", choices=FORMATS, default="md", help="output format")
    parser.add_argument("--paper", action="store_true",
                        help="add the paper's row for the same dataset and model under each")
    parser.add_argument("--interval", choices=("t", "bootstrap"), default="t",
                        help="the interval shown in the table (default: t over folds)")
    parser.add_argument("--threshold", type=float, default=0.5, help="COVID at or above it")
    parser.add_argument("--allow-partial", action="store_true",
                        help="summarize the finished folds of unfinished runs")
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    parser.add_argument("--out", type=Path, help="write to this file instead of stdout")
    parser.set_defaults(func=report_command)


def check_threshold(value: float) -> None:
    """Refuse a threshold outside [0, 1] (or NaN), naming the flag."""
    from covidlib.cli import CommandError
    from covidlib.engine.predict import check_threshold as valid_threshold

    try:
        valid_threshold(value)
    except ValueError:
        raise CommandError(
            f"--threshold {value} is not a probability; use a value in [0, 1]."
        ) from None


def report_command(args: argparse.Namespace) -> int:
    """Run ``covidlib report``."""
    from covidlib.cli import CommandError
    from covidlib.evaluate.report import format_report, load_scored, summarize_scored

    check_threshold(args.threshold)
    if args.resamples < 100:
        raise CommandError(f"--resamples {args.resamples} is too few; use at least 100.")
    scored = [load_scored(path, allow_partial=args.allow_partial) for path in args.runs]
    reports = [summarize_scored(run, threshold=args.threshold, n_resamples=args.resamples,
                                seed=args.seed) for run in scored]
    text = format_report(reports, args.format, paper=args.paper, interval=args.interval)
    if args.out is not None:
        atomic_write_text(args.out, text)
        print(f"report: {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
