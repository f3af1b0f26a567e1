"""`covidlib calibrate` and `covidlib card`: can a single prediction be trusted?

Example:
    >>> from covidlib.cli import build_parser
    >>> args = build_parser().parse_args(["calibrate", "runs/x", "--coverage", "0.9", "--json"])
    >>> args.coverage, args.json, args.func.__name__
    ([0.9], True, 'run_calibrate_command')

    $ covidlib calibrate results/covid19-ct/*/cpu-* --json
    $ covidlib card results/covid19-ct/resnet18/cpu-seed0 --out card.md
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from covidlib.cli import CommandError


def register(subparsers: Any) -> None:
    """Add the ``calibrate`` and ``card`` commands."""
    calibrate = subparsers.add_parser(
        "calibrate",
        help="calibration (ECE, Brier, temperature scaling) and conformal triage of runs",
        description="For each run folder or stored result: the ECE of the top-label "
        "confidence (15 equal-width bins, pooled test folds) before and after temperature "
        "scaling fitted for each test fold on the other folds, the Brier score, and "
        "class-conditional conformal triage (each test fold calibrated on the others) at "
        "each target coverage: coverage per class, referral rate, accuracy on the rest.",
    )
    calibrate.add_argument("runs", nargs="+", type=Path, metavar="RUN_OR_RESULT",
                           help="run folders of `covidlib cv` or stored results")
    calibrate.add_argument("--coverage", nargs="+", type=float, default=[0.9, 0.95, 0.99],
                           metavar="C", help="target coverages in (0, 1) (default 0.9 0.95 0.99)")
    calibrate.add_argument("--resamples", type=int, default=1000,
                           help="bootstrap resamples of the ECE interval")
    calibrate.add_argument("--json", action="store_true",
                           help="print a JSON list, one object per run")
    calibrate.set_defaults(func=run_calibrate_command)

    card = subparsers.add_parser(
        "card",
        help="write the model card (Markdown) of a run folder or stored result",
        description="A model card from what the run records: intended use, data and split, "
        "Table-2 metrics with intervals, calibration, external validation where stored, "
        "the dataset's leakage audit and known limits. Not for clinical use.",
    )
    card.add_argument("run", type=Path, metavar="RUN_OR_RESULT",
                      help="a run folder of `covidlib cv` or a stored result")
    card.add_argument("--out", type=Path, help="write to this Markdown file (default stdout)")
    card.add_argument("--audit", choices=("auto", "stored", "none"), default="auto",
                      help="audit figures: the dataset folder if present, else a stored "
                      "audit.json (auto); stored only; or none")
    card.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples")
    card.set_defaults(func=run_card_command)


def _check_resamples(value: int) -> None:
    if value < 100:
        raise CommandError(f"--resamples {value} is too few; use at least 100.")


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):
        return _clean(value.item())
    return value


def _percent(value: float | None) -> str:
    return "  n/a" if value is None or not math.isfinite(value) else f"{100 * value:5.1f}"


def format_calibration(result: dict[str, Any]) -> str:
    """Return the text ``covidlib calibrate`` prints for one run (percent, one decimal)."""
    lines = [f"{result['path']}: {result['model']} on {result['dataset']} "
             f"({result['n_images']} images, {len(result['folds'])} fold(s))",
             f"  ECE {_percent(result['ece'])}% [{_percent(result['ece_low']).strip()}, "
             f"{_percent(result['ece_high']).strip()}]  equal-mass {_percent(result['ece_mass'])}%"
             f"  Brier {result['brier']:.3f}"]
    if result["temperature"] is not None:
        lines.append(f"  temperature {result['temperature']:.2f}: ECE "
                     f"{_percent(result['ece_scaled']).strip()}%  Brier "
                     f"{result['brier_scaled']:.3f}")
    if result["conformal"]:
        lines.append("  coverage  COVID  non-COVID  referred  accuracy kept")
        for row in result["conformal"]:
            lines.append(f"  {_percent(row['coverage'])}%  {_percent(row['coverage_covid'])}  "
                         f"{_percent(row['coverage_non_covid'])}      "
                         f"{_percent(row['referral_rate'])}  {_percent(row['accuracy_kept'])}")
    if result["note"]:
        lines.append(f"  note: {result['note']}")
    return "\n".join(lines)


def run_calibrate_command(args: argparse.Namespace) -> int:
    """Run ``covidlib calibrate``."""
    from covidlib.trust.conformal import check_coverage
    from covidlib.trust.study import calibrate_run

    _check_resamples(args.resamples)
    for coverage in args.coverage:
        try:
            check_coverage(coverage)
        except ValueError as error:
            raise CommandError(f"--coverage: {error}") from None
    results = [_clean(calibrate_run(path, list(args.coverage), args.resamples))
               for path in args.runs]
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print("\n\n".join(format_calibration(r) for r in results))
    return 0


def run_card_command(args: argparse.Namespace) -> int:
    """Run ``covidlib card``."""
    from covidlib.trust.card import model_card
    from covidlib.utils.fileio import atomic_write_text

    _check_resamples(args.resamples)
    text = model_card(args.run, audit=args.audit, n_resamples=args.resamples)
    if args.out is None:
        sys.stdout.write(text)
        return 0
    atomic_write_text(args.out, text)
    print(f"card: {args.out}", file=sys.stderr)
    return 0
