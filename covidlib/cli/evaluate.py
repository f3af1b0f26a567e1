"""`covidlib evaluate`: external validation of a run's fold models on another dataset.

Every finished fold model of a run folder scores every image of another dataset (for
example trained on COVID19-CT, tested on SARS-CoV-2 CT): a model that learned COVID keeps
its accuracy, one that learned its training data's sources does not. The result gets the
report's metrics and intervals (:func:`covidlib.evaluate.report.summarize_scored`) and is
stored like any result (:func:`covidlib.evaluate.report.store_result`):
``<out>/<dataset>/<model>/<id>/{provenance.json, report.json, fold-<k>/predictions.csv}``.
``--root DIR`` without ``--dataset`` tests on a folder of your own images (class folders
``COVID``/``non-COVID``, or ``--labels FILE.csv``), stored under ``<out>/<folder name>/``;
a folder of one class is scored, with the metrics it cannot give named.

Example:
    >>> from covidlib.cli import build_parser
    >>> args = build_parser().parse_args(
    ...     ["evaluate", "--run", "runs/x", "--dataset", "sars-cov-2-ct", "--json"])
    >>> args.dataset, args.json, args.func.__name__
    ('sars-cov-2-ct', True, 'evaluate_command')

    $ covidlib evaluate --run runs/covid19-ct/resnet18/full --dataset sars-cov-2-ct --json
    $ covidlib evaluate --run runs/covid19-ct/resnet18/full --root my-scans
"""

from __future__ import annotations

import argparse
import json
import platform
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from covidlib.cli import CommandError
from covidlib.cli.dataset_args import add_dataset_arguments, dataset_name, index_images


def register(subparsers: Any) -> None:
    """Add the ``evaluate`` command."""
    evaluate = subparsers.add_parser(
        "evaluate",
        help="score a run's fold models on another dataset (external validation)",
        description="External validation: every finished fold model of a run scores every "
        "image of another dataset; the metrics get the report's intervals and the "
        "predictions are stored like any result (no weights).",
    )
    evaluate.add_argument("--run", type=Path, required=True, help="a run folder of covidlib cv")
    add_dataset_arguments(evaluate)
    evaluate.add_argument("--out", type=Path, default=Path("results"),
                          help="results root (default results/)")
    evaluate.add_argument("--id", help="result id (default external-<run folder name>)")
    evaluate.add_argument("--threshold", type=float, default=0.5, help="COVID at or above it")
    evaluate.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples")
    evaluate.add_argument("--json", action="store_true", help="print the report as JSON")
    evaluate.set_defaults(func=evaluate_command)


def external_predictions(run_dir: Path, images: pd.DataFrame, threshold: float = 0.5
                         ) -> pd.DataFrame:
    """Return each finished fold model's predictions on ``images`` (one row per image and
    fold: ``path``, ``relpath``, ``label``, ``probability``, ``fold``)."""
    from covidlib.engine.predict import predict_images, usable_folds

    folds = usable_folds(run_dir)
    if not folds:
        raise CommandError(f"{run_dir} has no finished fold yet; run `covidlib cv` first.")
    tables = []
    for fold in folds:
        scored = predict_images(run_dir, images["path"].astype(str).tolist(), fold=fold,
                                threshold=threshold)
        tables.append(pd.DataFrame({
            "path": images["path"].astype(str).to_numpy(),
            "relpath": images["relpath"].astype(str).to_numpy(),
            "label": images["label"].astype(int).to_numpy(),
            "probability": scored["probability"].to_numpy(),
            "fold": fold,
        }))
    return pd.concat(tables, ignore_index=True)


def one_class_gaps(labels: pd.Series) -> dict[str, str]:
    """Return the metrics a dataset of one class cannot give, each with the reason.

    Example:
        >>> one_class_gaps(pd.Series([1, 1]))
        {'specificity': 'no non-COVID image', 'roc_auc': 'needs both classes'}
        >>> one_class_gaps(pd.Series([0, 1]))
        {}
    """
    present = set(labels.astype(int))
    if present == {1}:
        return {"specificity": "no non-COVID image", "roc_auc": "needs both classes"}
    if present == {0}:
        return {name: "no COVID image" for name in ("recall", "precision", "f1")} | {
            "roc_auc": "needs both classes"}
    return {}


def evaluate_command(args: argparse.Namespace) -> int:
    """Run ``covidlib evaluate``."""
    from sklearn.exceptions import UndefinedMetricWarning

    from covidlib.engine.runs import RunFolder
    from covidlib.evaluate.provenance import current_commit
    from covidlib.evaluate.report import (
        ScoredRun,
        load_scored,
        profile_of,
        store_result,
        summarize_scored,
    )

    config = RunFolder(args.run).read_config()  # one line naming the folder when it is none
    tested_on, _, images = index_images(args, dataset_name(args))
    run_name = "/".join(args.run.resolve().parts[-3:])  # <dataset>/<model>/<name>: no machine
    predictions = external_predictions(args.run, images, args.threshold)
    folds = sorted(int(k) for k in predictions["fold"].unique())
    trained_on = str(config.get("dataset"))
    provenance = {
        "weights": str(config.get("weights")),
        "data": f"trained on {trained_on} ({run_name}), tested on {tested_on} "
                f"({len(images)} images)",
        "hardware": f"{platform.machine()} {platform.processor() or platform.system()}",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "commit": current_commit(),
        "external": {"trained_on": trained_on, "run": run_name,
                     "split": config.get("split"), "seed": config.get("seed")},
    }
    run = ScoredRun(Path(run_name), "external", tested_on, str(config.get("model")),
                    profile_of(config), len(folds), folds, predictions, provenance)
    result_id = args.id or f"external-{args.run.name}"
    not_computed = one_class_gaps(images["label"])
    with warnings.catch_warnings():
        if not_computed:  # said once below, not as a warning per fold
            warnings.simplefilter("ignore", UndefinedMetricWarning)
        target = store_result(run, args.out, result_id, provenance)
        report = summarize_scored(load_scored(target), threshold=args.threshold,
                                  n_resamples=args.resamples)
    report["n_images"] = int(len(images))
    for name in not_computed:
        report["metrics"].pop(name, None)
    report["not_computed"] = not_computed
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return 0
    metrics = report["metrics"]
    print(f"{run.model} trained on {trained_on}, tested on {tested_on} "
          f"({len(images)} images, {len(folds)} fold model(s)):")
    for name in ("accuracy", "recall", "specificity", "roc_auc"):
        if name in metrics:
            value = metrics[name]
            print(f"  {name:12s} {100 * value['mean']:5.1f}  "
                  f"[{100 * value['ci_low']:.1f}, {100 * value['ci_high']:.1f}]")
    for name, reason in not_computed.items():
        print(f"  {name:12s} not computed: {reason}")
    print(f"stored: {target}")
    return 0
