"""Forward speed of every architecture at its custom canvas vs its default square input.

For each model the two input sizes are timed side by side (iterations interleaved, so load
from other processes hits both alike). Printed per model: images/s at the default and at
the custom size, the measured cost ratio (custom time / default time) and the pixel-count
ratio it is expected to track. On a CUDA machine it adds mixed-precision channels-last
forward images/s and training steps/s (BCE loss, SGD step) at the custom size.

Writes ``benchmarks/results/models-<cpu|cuda>.json`` with the machine described.

Example:
    $ .venv/bin/python benchmarks/models.py                      # all 12, CPU, ~5 min
    $ .venv/bin/python benchmarks/models.py --models squeezenet resnet18 --iters 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(REPO_ROOT))

from machine import describe_machine  # noqa: E402  (benchmarks/machine.py)

from covidlib.models.factory import create_model  # noqa: E402
from covidlib.models.registry import get_spec, list_models  # noqa: E402

RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_forward_pair(
    model: nn.Module,
    sizes: dict[str, tuple[int, int]],
    batch: int,
    iters: int,
    device: torch.device,
    amp: bool = False,
    channels_last: bool = False,
) -> dict[str, float]:
    """Return median seconds per batch for each (width, height) in ``sizes``, interleaved."""
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    inputs = {
        key: torch.randn(batch, 3, h, w, device=device).contiguous(memory_format=memory_format)
        for key, (w, h) in sizes.items()
    }
    times: dict[str, list[float]] = {key: [] for key in sizes}
    autocast = torch.autocast(device.type, dtype=torch.float16, enabled=amp)
    with torch.no_grad(), autocast:
        for key in sizes:  # warm-up (allocator, cudnn algorithm choice)
            model(inputs[key])
        for _ in range(iters):
            for key in sizes:
                _sync(device)
                start = time.perf_counter()
                model(inputs[key])
                _sync(device)
                times[key].append(time.perf_counter() - start)
    return {key: statistics.median(values) for key, values in times.items()}


def time_training_steps(
    model: nn.Module, size: tuple[int, int], batch: int, iters: int, device: torch.device
) -> float:
    """Return training steps/s (mixed precision, channels-last, BCE, SGD) on ``device``."""
    model.train()
    width, height = size
    x = torch.randn(batch, 3, height, width, device=device).contiguous(
        memory_format=torch.channels_last
    )
    y = torch.randint(0, 2, (batch, 1), device=device).float()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler(device.type)
    loss_fn = nn.BCEWithLogitsLoss()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.float16):
            loss = loss_fn(model(x), y)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    for _ in range(2):
        step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(iters):
        step()
    _sync(device)
    model.eval()
    return iters / (time.perf_counter() - start)


def benchmark_model(
    name: str, batch: int, iters: int, device: torch.device, train_batch: int
) -> dict[str, Any]:
    """Measure one architecture; returns a result row."""
    spec = get_spec(name)
    torch.manual_seed(0)
    model = create_model(name).eval().to(device)
    sizes = {"default": spec.default_input, "custom": spec.custom_input}
    seconds = time_forward_pair(model, sizes, batch, iters, device)
    pixel_ratio = (spec.custom_input[0] * spec.custom_input[1]) / (
        spec.default_input[0] * spec.default_input[1]
    )
    row: dict[str, Any] = {
        "name": name,
        "default_input": list(spec.default_input),
        "custom_input": list(spec.custom_input),
        "batch": batch,
        "default_images_per_s": round(batch / seconds["default"], 2),
        "custom_images_per_s": round(batch / seconds["custom"], 2),
        "cost_ratio": round(seconds["custom"] / seconds["default"], 3),
        "pixel_ratio": round(pixel_ratio, 3),
    }
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
        amp_seconds = time_forward_pair(
            model, sizes, batch, iters, device, amp=True, channels_last=True
        )
        row["amp_cl_default_images_per_s"] = round(batch / amp_seconds["default"], 1)
        row["amp_cl_custom_images_per_s"] = round(batch / amp_seconds["custom"], 1)
        row["amp_cl_cost_ratio"] = round(amp_seconds["custom"] / amp_seconds["default"], 3)
        row["train_batch"] = train_batch
        row["amp_cl_train_steps_per_s_custom"] = round(
            time_training_steps(model, spec.custom_input, train_batch, iters, device), 2
        )
    return row


def write_results(
    rows: list[dict[str, Any]], machine: dict[str, Any], args: argparse.Namespace,
    names: list[str], seconds: float, out: Path,
) -> None:
    """Write the rows measured so far (after every model: a cut run keeps them)."""
    from covidlib.utils.fileio import atomic_write_text

    results = {
        "benchmark": "models: forward images/s at custom vs default input",
        "machine": machine,
        "settings": {"batch": args.batch, "iters": args.iters, "models": names},
        "total_seconds": round(seconds, 1),
        "rows": rows,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps(results, indent=2) + "\n")
    atomic_write_text(out.with_suffix(".md"), markdown(results))


def markdown(results: dict[str, Any]) -> str:
    """Return a results file as a Markdown report."""
    machine, settings, rows = results["machine"], results["settings"], results["rows"]
    cuda = any("amp_cl_custom_images_per_s" in row for row in rows)
    lines = [
        f"# benchmarks/models.py on {machine.get('gpu', machine['cpu'])}",
        "",
        f"{machine['cores']} CPU cores, torch {machine['torch']}, Python {machine['python']}. "
        f"Forward batch {settings['batch']}, {settings['iters']} timed batches per size "
        "(default and custom interleaved, median seconds per batch); "
        f"{len(rows)} of {len(settings['models'])} models, {results['total_seconds']} s.",
        "",
        "| model | default | img/s | custom | img/s | cost ratio | pixel ratio |"
        + (" AMP+CL default / custom img/s | AMP+CL train steps/s (batch 32) |" if cuda else ""),
        "| --- | --- | --- | --- | --- | --- | --- |" + (" --- | --- |" if cuda else ""),
    ]
    for row in rows:
        (dw, dh), (cw, ch) = row["default_input"], row["custom_input"]
        line = (
            f"| {row['name']} | {dw}x{dh} | {row['default_images_per_s']} | {cw}x{ch} | "
            f"{row['custom_images_per_s']} | {row['cost_ratio']} | {row['pixel_ratio']} |"
        )
        if cuda:
            line += (
                f" {row['amp_cl_default_images_per_s']} / {row['amp_cl_custom_images_per_s']} |"
                f" {row['amp_cl_train_steps_per_s_custom']} |"
            )
        lines.append(line)
    if "note" in results:
        lines += ["", f"Note: {results['note']}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the results file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list_models(), metavar="NAME")
    parser.add_argument("--batch", type=int, default=8, help="forward batch size (default 8)")
    parser.add_argument("--iters", type=int, default=3, help="timed batches per size")
    parser.add_argument("--train-batch", type=int, default=32, help="GPU training batch size")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--out", type=Path, default=None, help="results JSON path")
    args = parser.parse_args(argv)

    names = [get_spec(n).name for n in args.models]
    use_cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    device = torch.device("cuda" if use_cuda else "cpu")
    if use_cuda:
        torch.backends.cudnn.benchmark = True
    machine = describe_machine(device)
    print(f"machine: {json.dumps(machine)}", flush=True)
    rows = []
    header = f"{'model':<12} {'default':>9} {'img/s':>7} {'custom':>9} {'img/s':>7} "
    print(header + f"{'cost ratio':>10} {'pixel ratio':>11}", flush=True)
    started = time.perf_counter()
    out = args.out or RESULTS_DIR / f"models-{device.type}.json"
    for name in names:
        row = benchmark_model(name, args.batch, args.iters, device, args.train_batch)
        rows.append(row)
        write_results(rows, machine, args, names, time.perf_counter() - started, out)
        d, c = row["default_input"], row["custom_input"]
        print(
            f"{name:<12} {d[0]:>4}x{d[1]:<4} {row['default_images_per_s']:>7.1f} "
            f"{c[0]:>4}x{c[1]:<4} {row['custom_images_per_s']:>7.1f} "
            f"{row['cost_ratio']:>10.2f} {row['pixel_ratio']:>11.2f}",
            flush=True,
        )
        if device.type == "cuda":
            print(
                f"{'':<12} amp+channels-last: {row['amp_cl_default_images_per_s']} / "
                f"{row['amp_cl_custom_images_per_s']} img/s, train "
                f"{row['amp_cl_train_steps_per_s_custom']} steps/s (batch {args.train_batch})",
                flush=True,
            )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
