"""Benchmark: the data path's share of one cpu-profile training epoch on real CT.

Trains one epoch of the cpu profile's ShuffleNet (its canvas, batch and rate from
``covidlib/tables/cpu_profile.csv``) on fold 0's training folds of SARS-CoV-2 CT (or of
COVID19-CT when that copy is absent) with the engine, and times, in the same epoch, the time
spent waiting for each next batch (gathering it from the letterbox cache and augmenting it)
against the whole epoch. Target: the data path under 10% of the epoch. The letterbox cache is
built before the timing (once per canvas; later runs map it). Run from the repository root:

    PYTHONPATH=$PWD COVIDLIB_PROGRESS=0 python benchmarks/cpu_epoch.py

Results go to ``benchmarks/results/cpu_epoch-cpu.json``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from fastai.callback.core import Callback
from machine import describe_machine

from covidlib.config import RuntimeSettings, get_profile

RESULTS = Path(__file__).parent / "results" / "cpu_epoch-cpu.json"
MODEL = "shufflenet"
TARGET = 0.10


class DataWait(Callback):
    """Sum the time between one batch's end and the next batch's start (the data path)."""

    order = 0

    def before_train(self) -> None:
        self.waits: list[float] = []
        self.started = self.last = time.perf_counter()

    def before_batch(self) -> None:
        self.waits.append(time.perf_counter() - self.last)

    def after_batch(self) -> None:
        self.last = time.perf_counter()

    def after_train(self) -> None:
        self.epoch_seconds = time.perf_counter() - self.started


def dataset_and_root() -> tuple[str, Path | None]:
    """SARS-CoV-2 CT when its copy is under the data folder, else the shared COVID19-CT."""
    from covidlib.data.registry import default_root

    if (default_root("sars-cov-2-ct") / "COVID").is_dir():
        return "sars-cov-2-ct", None
    return "covid19-ct", Path(os.environ.get("COVIDLIB_COVID19_CT",
                                             "../shared/datasets/covid19-ct"))


def main() -> None:
    from covidlib.data.index import index_dataset
    from covidlib.data.sources import ensure_dataset
    from covidlib.engine.folds import assign_folds, fold_rows
    from covidlib.engine.learner import fit_fold, resolve_canvas

    dataset, root = dataset_and_root()
    config = resolve_canvas(get_profile("cpu").experiment(dataset, MODEL, epochs=1))
    index = index_dataset(dataset, ensure_dataset(dataset, root, None))
    images = index.require_clean(False).reset_index(drop=True)
    train_rows, test_rows = fold_rows(assign_folds(images, 5, 0), 0)
    device = RuntimeSettings(device="cpu").torch_device()
    # a first short fit builds the letterbox cache, so the timed epoch maps it
    fit_fold(config, images, train_rows[:64], test_rows[:32], dataset=index.name,
             device=device, show_progress=False)
    wait = DataWait()
    fit_fold(config, images, train_rows, test_rows, dataset=index.name, device=device,
             show_progress=False, callbacks=[wait])
    data_seconds = sum(wait.waits)
    share = data_seconds / wait.epoch_seconds
    result = {
        "dataset": dataset, "model": MODEL, "canvas": list(config.canvas or ()),
        "canvas_scale": config.canvas_scale, "batch_size": config.train.batch_size,
        "train_images": len(train_rows), "batches": len(wait.waits),
        "epoch_seconds": round(wait.epoch_seconds, 2), "data_seconds": round(data_seconds, 3),
        "data_share": round(share, 4), "target": TARGET, "machine": describe_machine(),
    }
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{MODEL} on {dataset}, one cpu-profile epoch of {len(train_rows)} images: "
          f"{wait.epoch_seconds:.1f} s, of which waiting for data {data_seconds:.2f} s")
    print(f"data path share {share:.1%} (target < {TARGET:.0%}): "
          f"{'met' if share < TARGET else 'NOT met'}")


if __name__ == "__main__":
    main()
