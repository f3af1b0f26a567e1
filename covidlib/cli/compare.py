"""`covidlib compare`: is one model better than another on the same images?

Example:
    $ covidlib compare runs/phantom/resnet18/quick runs/phantom/squeezenet/quick --json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``compare`` command."""
    parser = subparsers.add_parser(
        "compare",
        help="paired comparison of two runs: accuracy difference, its CI, McNemar's test",
        description="Pair the test predictions of two runs image by image (by the path "
        "relative to the dataset root) and print the accuracy difference A - B with its "
        "95% paired-bootstrap interval and McNemar's exact p-value.",
    )
    parser.add_argument("run_a", type=Path, metavar="RUN_A")
    parser.add_argument("run_b", type=Path, metavar="RUN_B")
    parser.add_argument("--threshold", type=float, default=0.5, help="COVID at or above it")
    parser.add_argument("--allow-partial", action="store_true",
                        help="compare the finished folds of unfinished runs")
    parser.add_argument("--json", action="store_true", help="print only JSON")
    parser.set_defaults(func=compare_command)


def compare_command(args: argparse.Namespace) -> int:
    """Run ``covidlib compare``."""
    from covidlib.cli.report import check_threshold
    from covidlib.evaluate.report import compare_scored, load_scored

    check_threshold(args.threshold)
    a = load_scored(args.run_a, allow_partial=args.allow_partial)
    b = load_scored(args.run_b, allow_partial=args.allow_partial)
    result = compare_scored(a, b, threshold=args.threshold)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['model_a']} - {result['model_b']} on {result['n_images']} {result['dataset']} "
          f"test images: accuracy {100 * result['accuracy_a']:.1f}% vs "
          f"{100 * result['accuracy_b']:.1f}%, difference "
          f"{100 * result['accuracy_difference']:+.1f} points "
          f"[95% CI {100 * result['ci_low']:+.1f}, {100 * result['ci_high']:+.1f}]")
    print(f"McNemar exact p = {result['mcnemar_p']:.3g} ({result['only_a_right']} images only A "
          f"classified correctly, {result['only_b_right']} only B)")
    return 0
