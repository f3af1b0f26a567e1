"""The honest-evaluation experiment on real COVID19-CT (issue 13): one model from scratch
under image-level stratified folds, patient/source-grouped folds and the official
patient-level split, several seeds. Run from the repository root:

    PYTHONPATH=$PWD COVIDLIB_PROGRESS=0 OMP_NUM_THREADS=1 nice python \
        benchmarks/honest_evaluation.py --out data/honest/runs --worker 0 --workers 2

Each worker trains every ``--workers``-th (split, seed) job; the run folders are resumable.
``--store`` then copies the finished runs' predictions into ``results/`` with provenance.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from covidlib.config import RuntimeSettings, get_profile
from covidlib.engine.runs import RunFolder

MODEL = "shufflenet"
SPLITS = ("stratified", "grouped", "official")
SEEDS = (0, 1, 2)
SETTINGS = {"canvas_scale": 0.15, "epochs": 4, "n_folds": 3, "weights": "random"}
ROOT = Path("../shared/datasets/covid19-ct")


def experiment(split: str, seed: int):  # noqa: ANN201 - an ExperimentConfig
    """The experiment of one (split, seed) job."""
    return get_profile("quick").experiment("covid19-ct", MODEL, split=split, seed=seed,
                                           **SETTINGS)


def jobs() -> list[tuple[str, int]]:
    return [(split, seed) for seed in SEEDS for split in SPLITS]


def main() -> None:
    import torch

    from covidlib.engine.cv import run_cv

    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("data/honest/runs"))
    parser.add_argument("--worker", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--store", type=Path, help="store the finished runs under this folder")
    args = parser.parse_args()
    if args.store is not None:
        store(args.out, args.store)
        return
    torch.set_num_threads(1)
    for split, seed in jobs()[args.worker::args.workers]:
        started = time.perf_counter()
        run_cv(experiment(split, seed), RuntimeSettings(device="cpu", progress=False),
               root=ROOT, out=args.out, run_name=f"{split}-seed{seed}", log=print)
        print(f"job {split} seed {seed}: {time.perf_counter() - started:.0f} s", flush=True)


def store(out: Path, results: Path) -> None:
    """Copy every finished run's predictions into ``results/`` with provenance (no weights)."""
    import os
    import platform
    import subprocess
    from datetime import datetime, timezone

    from covidlib.evaluate.report import load_scored, store_result

    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=False).stdout.strip()
    started = Path(out).parent / "started.txt"
    for split, seed in jobs():
        run_dir = out / "covid19-ct" / MODEL / f"{split}-seed{seed}"
        if not RunFolder(run_dir).summary_file.is_file():
            print(f"{run_dir}: not finished, not stored")
            continue
        config = experiment(split, seed)
        provenance = {
            "weights": "random (trained from scratch, no ImageNet weights)",
            "data": "COVID19-CT, 746 images (349 COVID, 397 non-COVID) at "
                    "../shared/datasets/covid19-ct; official patient-level split from "
                    "Data-split/",
            "hardware": f"{platform.machine()} CPU, {os.cpu_count()} cores shared with other "
                        "jobs (nice 10, 1 thread per run), torch CPU",
            "date": datetime.now(timezone.utc).date().isoformat(),
            "commit": commit or "unknown",
            "experiment": {"split": split, "seed": seed, "groups": config.groups,
                           "canvas_scale": config.canvas_scale, "epochs": config.train.epochs,
                           "n_folds": config.n_folds, "lr": config.train.lr,
                           "batch_size": config.train.batch_size,
                           "digest": config.digest()},
            "started": started.read_text().strip() if started.is_file() else None,
            "script": "benchmarks/honest_evaluation.py",
        }
        target = store_result(load_scored(run_dir), results, f"honest-{split}-seed{seed}",
                              provenance)
        print(f"stored {target}")


if __name__ == "__main__":
    main()
