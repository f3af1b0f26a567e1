"""Check the cpu profile's settings on an inner validation split, never on a reported fold.

For each model of ``covidlib/tables/cpu_profile.csv`` (or ``--models``), take the training
folds of fold 0 of the image-level 5-fold split (seed 0), hold out a stratified 20% of them
as an inner validation set, train with the profile's settings (and each ``--lr`` given), and
print the inner validation accuracy and ROC-AUC with the seconds per epoch. The reported test
fold 0 is never looked at. Run from the repository root:

    PYTHONPATH=$PWD COVIDLIB_PROGRESS=0 python benchmarks/cpu_profile_pilot.py \
        --dataset sars-cov-2-ct --models shufflenet --lr 0.01 0.003

Results go to ``benchmarks/results/cpu_profile_pilot.json`` (appended, one row a fit).
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime, timezone
from pathlib import Path

from machine import describe_machine
from sklearn.model_selection import train_test_split

from covidlib.config import RuntimeSettings, get_profile

RESULTS = Path(__file__).parent / "results" / "cpu_profile_pilot.json"


def inner_split(dataset: str, root: Path | None, seed: int = 0):  # noqa: ANN201
    """Return (images, inner-train rows, inner-validation rows, dataset name)."""
    from covidlib.data.index import index_dataset
    from covidlib.data.sources import ensure_dataset
    from covidlib.engine.folds import assign_folds, fold_rows

    index = index_dataset(dataset, ensure_dataset(dataset, root, None))
    images = index.require_clean(False).reset_index(drop=True)
    folds = assign_folds(images, n_folds=5, seed=seed, strategy="stratified")
    train_rows, _ = fold_rows(folds, 0)  # fold 0's test rows are never used here
    inner_train, inner_valid = train_test_split(
        train_rows, test_size=0.2, stratify=images["label"].to_numpy()[train_rows],
        random_state=seed)
    return images, inner_train, inner_valid, index.name


def main() -> None:
    import torch

    from covidlib.engine.callbacks import EpochLog
    from covidlib.engine.learner import fit_fold

    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="sars-cov-2-ct")
    parser.add_argument("--root", type=Path)
    parser.add_argument("--models", nargs="+")
    parser.add_argument("--lr", type=float, nargs="+", help="rates to try (default: table's)")
    parser.add_argument("--epochs", type=int, help="override the table's epochs")
    args = parser.parse_args()
    profile = get_profile("cpu")
    images, inner_train, inner_valid, name = inner_split(args.dataset, args.root)
    device = RuntimeSettings(device="cpu").torch_device()
    rows = json.loads(RESULTS.read_text())["fits"] if RESULTS.is_file() else []
    for model in args.models or list(profile.per_model):
        for lr in args.lr or [None]:
            overrides = {"lr": lr} if lr is not None else {}
            if args.epochs:
                overrides["epochs"] = args.epochs
            config = profile.experiment(args.dataset, model, **overrides)
            started = time.perf_counter()
            fit = fit_fold(config, images, inner_train, inner_valid, dataset=name,
                           device=device, show_progress=False,
                           callbacks=[EpochLog(print, 0, config.train.epochs)])
            seconds = time.perf_counter() - started
            row = {
                "dataset": args.dataset, "model": model, "canvas_scale": config.canvas_scale,
                "epochs": config.train.epochs, "lr": config.train.lr,
                "batch_size": config.train.batch_size,
                "n_inner_train": len(inner_train), "n_inner_valid": len(inner_valid),
                "inner_accuracy": round(fit.metrics["accuracy"], 4),
                "inner_roc_auc": round(fit.metrics["roc_auc"], 4),
                "final_train_loss": round(float(fit.history["train_loss"].iloc[-1]), 4),
                "seconds": round(seconds, 1),
                "seconds_per_epoch": round(seconds / config.train.epochs, 2),
                "torch_threads": torch.get_num_threads(),
                "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
            RESULTS.write_text(
                json.dumps({"machine": describe_machine(), "fits": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
