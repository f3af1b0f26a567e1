"""Benchmark: naive per-item loading vs the letterbox cache, and the data wait of a step.

Measured side by side in one run, on the real COVID19-CT copy (``COVIDLIB_COVID19_CT`` or
``../shared/datasets/covid19-ct``; skipped with a note when absent) and on the phantom:

(a) naive: a torch ``DataLoader`` whose items open the PNG (``load_grayscale``), letterbox
    it and run the same augmentation (torchvision v2 kernels) on that one image;
(b) cached: :func:`covidlib.data.fold_dataloaders` (letterbox cache built once, batches
    gathered by one index and augmented batch-wise on the device);
(c) the share of a ResNet18 training step (canvas 349x253, batch 32, random init) spent
    waiting for the next batch from (b).

Targets: (b) >= 5x (a); data wait < 10 % of the step. Absolute numbers are noisy on a
shared machine; the ratios are measured side by side. Results go to
``benchmarks/results/data_pipeline-<device>.json``.

Example:
    $ .venv/bin/python benchmarks/data_pipeline.py
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from machine import describe_machine  # noqa: E402  (benchmarks/machine.py)

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CANVAS = (349, 253)
BATCH = 32
NAIVE_WORKERS = 2
NAIVE_BATCHES = 10  # timed batches after one warm-up batch
CACHED_BATCHES = 30
TRAIN_STEPS = 2  # timed ResNet18 steps after one warm-up step (first dataset only)
TRAIN_STEPS_CUDA = 30  # a GPU step is far shorter: more of them


def real_images() -> pd.DataFrame | None:
    """The real COVID19-CT images (path, label) listed from the class folders, or None."""
    env = os.environ.get("COVIDLIB_COVID19_CT")
    root = Path(env) if env else REPO.parent / "shared" / "datasets" / "covid19-ct"
    rows = []
    for folder, label in (("CT_COVID", 1), ("CT_NonCOVID", 0)):
        for path in sorted((root / folder).glob("*")):
            if path.suffix.lower() in {".png", ".jpg", ".jpeg"}:
                rows.append({"path": str(path), "label": label})
    return pd.DataFrame(rows) if rows else None


def phantom_images() -> pd.DataFrame:
    """The phantom of the quick profile (generated under data_dir() when missing)."""
    from covidlib.data.index import index_dataset
    from covidlib.data.sources import ensure_dataset

    return index_dataset("phantom", ensure_dataset("phantom")).images[["path", "label"]]


class NaiveDataset(torch.utils.data.Dataset):
    """The usual per-item path: decode, letterbox, augment one image, normalize."""

    def __init__(self, images: pd.DataFrame) -> None:
        self.paths = images["path"].tolist()
        self.labels = images["label"].to_numpy(np.float32)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, item: int) -> tuple[torch.Tensor, torch.Tensor]:
        from covidlib.config import AugmentConfig
        from covidlib.data.images import load_grayscale
        from covidlib.transforms import augment_batch, normalize_batch
        from covidlib.transforms.geometry import letterbox

        canvas, _ = letterbox(load_grayscale(self.paths[item]), CANVAS)
        x = torch.from_numpy(np.array(canvas))[None, None]
        x = normalize_batch(augment_batch(x, AugmentConfig()))[0]
        return x, torch.tensor(self.labels[item])


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)


def images_per_second(batches: Any, count: int, device: torch.device) -> float:
    """Images/s over ``count`` batches after one warm-up batch."""
    iterator = iter(batches)
    next(iterator)
    start, seen = time.perf_counter(), 0
    for _ in range(count):
        x, _ = next(iterator)
        seen += x.shape[0]
    if device.type == "cuda":
        torch.cuda.synchronize()
    return seen / (time.perf_counter() - start)


def data_wait_share(dls: Any, device: torch.device) -> dict[str, float]:
    """Seconds waiting for batches vs computing, over ResNet18 training steps.

    On CUDA the step runs as the engine trains: float16 autocast and channels-last.
    """
    import timm

    cuda = device.type == "cuda"
    model = timm.create_model("resnet18", pretrained=False, num_classes=1).to(device)
    if cuda:
        torch.backends.cudnn.benchmark = True
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    model.train()
    iterator = iter(dls.train)
    wait = compute = 0.0
    steps = TRAIN_STEPS_CUDA if device.type == "cuda" else TRAIN_STEPS
    timed, first_done = 0, False
    while timed < steps:
        start = time.perf_counter()
        x, y = next(iterator)
        if device.type == "cuda":
            torch.cuda.synchronize()
        fetched = time.perf_counter()
        with torch.autocast(device.type, enabled=cuda):
            loss = loss_fn(model(x).squeeze(1), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        done = time.perf_counter()
        # Time full batches only, and not the first: a new batch shape (the first batch, an
        # epoch's short last one) makes cuDNN time its kernels, which would inflate the step.
        if x.shape[0] == BATCH and first_done:
            wait += fetched - start
            compute += done - fetched
            timed += 1
        first_done = first_done or x.shape[0] == BATCH
    return {
        "step_seconds": (wait + compute) / steps,
        "data_wait_seconds": wait / steps,
        "data_wait_share": wait / (wait + compute),
    }


def run_dataset(
    name: str, images: pd.DataFrame, device: torch.device, cache_dir: Path, train_step: bool
) -> dict:
    """Measure (a), (b) and (c) on one dataset."""
    from covidlib.data.cache import letterbox_cache
    from covidlib.data.loaders import fold_dataloaders

    print(f"\n== {name}: {len(images)} images, canvas {CANVAS[0]}x{CANVAS[1]}, batch {BATCH}")
    naive = torch.utils.data.DataLoader(
        NaiveDataset(images),
        batch_size=BATCH,
        shuffle=True,
        num_workers=NAIVE_WORKERS,
        worker_init_fn=_worker_init,
        generator=torch.Generator().manual_seed(0),
    )
    # one pass at most: a second epoch would restart the worker processes
    naive_rate = images_per_second(naive, min(NAIVE_BATCHES, len(naive) - 1), device)
    print(f"(a) naive per-item path ({NAIVE_WORKERS} workers): {naive_rate:8.1f} images/s")

    start = time.perf_counter()
    letterbox_cache(images, CANVAS, cache_dir=cache_dir, dataset=name)
    build_seconds = time.perf_counter() - start
    print(f"    cache build (once per canvas): {build_seconds:.1f} s")

    rows = np.arange(len(images))
    dls = fold_dataloaders(  # the cache just built, kept out of data/
        images, rows, rows[:BATCH], CANVAS, BATCH, dataset=name, cache_dir=cache_dir, device=device
    )
    cached_rate = images_per_second(_cycle(dls.train), CACHED_BATCHES, device)
    print(f"(b) cached path (augmented on {device.type}): {cached_rate:8.1f} images/s")
    step: dict[str, float] = {}
    if train_step:
        step = data_wait_share(_CycleLoaders(dls), device)
        print(
            f"(c) ResNet18 step {step['step_seconds']:.2f} s, waiting for data "
            f"{step['data_wait_seconds'] * 1000:.1f} ms ({step['data_wait_share']:.1%})"
        )
    return {
        "images": len(images),
        "naive_images_per_second": naive_rate,
        "cached_images_per_second": cached_rate,
        "cache_build_seconds": build_seconds,
        "speedup": cached_rate / naive_rate,
        **step,
    }


def _cycle(loader: Any) -> Any:
    while True:
        yield from loader


class _CycleLoaders:
    def __init__(self, dls: Any) -> None:
        self.train = _cycle(dls.train)


def _verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def main() -> int:
    """Run every measurement and print the ratios last."""
    os.environ.setdefault("COVIDLIB_PROGRESS", "0")
    torch.manual_seed(0)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    info = describe_machine()
    print("machine:", json.dumps(info))
    print("note: the machine is shared; absolute numbers are noisy, ratios are side by side.")
    results: dict[str, Any] = {"machine": info, "canvas": list(CANVAS), "batch_size": BATCH}
    datasets: dict[str, pd.DataFrame] = {}
    real = real_images()
    if real is None:
        print("note: real COVID19-CT copy not found (set COVIDLIB_COVID19_CT); skipped")
        results["covid19-ct"] = "skipped: dataset not found"
    else:
        datasets["covid19-ct"] = real
    datasets["phantom"] = phantom_images()
    with tempfile.TemporaryDirectory(prefix="covidlib-bench-") as tmp:
        for position, (name, images) in enumerate(datasets.items()):
            results[name] = run_dataset(name, images, device, Path(tmp), position == 0)

    print("\n== ratios (targets: cached >= 5x naive; data wait < 10 % of a step)")
    for name in datasets:
        r = results[name]
        line = f"{name:>11}: cached/naive = {r['speedup']:5.1f}x [{_verdict(r['speedup'] >= 5)}]"
        if "data_wait_share" in r:
            share = r["data_wait_share"]
            line += f"; data wait = {share:.1%} of a ResNet18 step [{_verdict(share < 0.10)}]"
        print(line)
    out = REPO / "benchmarks" / "results" / f"data_pipeline-{device.type}.json"
    from covidlib.utils.fileio import atomic_write_text

    atomic_write_text(out, json.dumps(results, indent=2) + "\n")
    print(f"results written to {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
