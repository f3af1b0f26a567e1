"""Training throughput of the covidlib engine vs a minimal plain PyTorch loop.

Both paths train the same registry model at the same canvas and batch size with the same
optimizer (``torch_optimizer.Lamb``, weight decay 1) on the same batches, already in memory,
so the difference is what the engine adds: fastai's ``Learner`` loop, the step schedule,
per-epoch seeding, the epoch log (no files: ``fold_dir=None``). Rounds alternate between
the two paths so load from other processes hits both alike; the ratio uses each path's best
round (as ``timeit`` does: slower rounds measure other processes' load, not the code), and
the medians are reported next to it. On CUDA both use mixed precision and channels-last.

It also writes the arithmetic of the full reproduction's cost (12 models x 5 folds x 100
epochs x 2 datasets): with a CUDA measurement the GPU hours of each measured model follow;
from a CPU run only the formula can be given.

Writes ``benchmarks/results/train-<cpu|cuda>.json`` and ``.md``.

Example:
    $ .venv/bin/python benchmarks/train.py                  # CPU, squeezenet, ~2 minutes
    $ python benchmarks/train.py --models all --scale 1.0 --batches 20 --rounds 3   # a GPU
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(REPO_ROOT))

from machine import describe_machine  # noqa: E402  (benchmarks/machine.py)

from covidlib.config import TrainConfig, resolve_device  # noqa: E402
from covidlib.engine.learner import train_fold  # noqa: E402
from covidlib.models.factory import create_model  # noqa: E402
from covidlib.models.registry import get_spec  # noqa: E402
from covidlib.utils.fileio import atomic_write_text  # noqa: E402

RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"
TARGET_RATIO = 1.10
# Images per dataset (paper, section 5.1) and the protocol of the full reproduction.
DATASET_IMAGES = {"sars-cov-2-ct": 2482, "covid19-ct": 746}
N_MODELS, N_FOLDS, N_EPOCHS = 12, 5, 100


def make_batches(
    n_batches: int, batch: int, canvas: tuple[int, int], seed: int = 0
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Return in-memory (x [B,3,H,W], y [B]) batches with both classes."""
    generator = torch.Generator().manual_seed(seed)
    width, height = canvas
    return [
        (torch.randn(batch, 3, height, width, generator=generator),
         torch.randint(0, 2, (batch,), generator=generator).float())
        for _ in range(n_batches)
    ]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def plain_loop(
    model_name: str, batches: list[tuple[torch.Tensor, torch.Tensor]], epochs: int,
    config: TrainConfig, device: torch.device,
) -> tuple[float, float]:
    """Train with a bare PyTorch loop; return images per second of wall and of CPU time."""
    import torch_optimizer

    torch.manual_seed(0)
    model = create_model(model_name).to(device)
    cuda = device.type == "cuda"
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch_optimizer.Lamb(
        model.parameters(), lr=config.lr, betas=config.betas, eps=config.eps,
        weight_decay=config.weight_decay,
    )
    scaler = torch.amp.GradScaler("cuda", enabled=cuda)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    model.train()
    _sync(device)
    started, cpu_started = time.perf_counter(), time.process_time()
    for epoch in range(epochs):
        for group in optimizer.param_groups:
            group["lr"] = config.lr_at(epoch)
        order = torch.randperm(len(batches)).tolist()
        for index in order:
            x, y = batches[index]
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with torch.autocast(device.type, enabled=cuda):
                loss = loss_fn(model(x).reshape(-1), y)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
    _sync(device)
    images = epochs * sum(len(y) for _, y in batches)
    return images / (time.perf_counter() - started), images / (time.process_time() - cpu_started)


def engine(
    model_name: str, batches: list[tuple[torch.Tensor, torch.Tensor]], epochs: int,
    config: TrainConfig, device: torch.device,
) -> tuple[float, float]:
    """Train with :func:`covidlib.engine.learner.train_fold`; return images/s of wall and CPU time.

    Wall time is the engine's own epoch log; CPU time covers the whole call (learner set-up
    and the final 2-image prediction included, so it errs against the engine).
    """
    from fastai.data.core import DataLoaders
    from fastai.data.load import DataLoader

    torch.manual_seed(0)
    model = create_model(model_name)
    # bs=None: the items already are batches, as in the plain loop.
    test = [(batches[0][0][i], batches[0][1][i]) for i in range(2)]  # two images, bs=2
    dls = DataLoaders(
        DataLoader(batches, bs=None, shuffle=True, device=device),
        DataLoader(test, bs=2, device=device),
    )
    test_table = pd.DataFrame({"path": ["a", "b"], "label": [int(y) for _, y in test]})
    cpu_started = time.process_time()
    result = train_fold(
        model, dls, test_table, config.with_overrides(epochs=epochs), device=device,
        show_progress=False,
    )
    _sync(device)
    cpu_seconds = time.process_time() - cpu_started
    images = epochs * sum(len(y) for _, y in batches)
    return images / float(result.history["seconds"].sum()), images / cpu_seconds


# Training images one model sees in the full reproduction (4 of 5 folds train each time).
TRAINING_IMAGES_PER_MODEL = sum(
    N_EPOCHS * N_FOLDS * round(n * (N_FOLDS - 1) / N_FOLDS) for n in DATASET_IMAGES.values()
)


def reproduction_cost() -> dict[str, Any]:
    """Return the training images of the full reproduction and how its hours follow."""
    return {
        "formula": (
            "hours = sum over models of (100 epochs x 5 folds x 4/5 x (2482 + 746) images) "
            "/ (training images per second of that model at its canvas) / 3600"
        ),
        "training_images_per_model": TRAINING_IMAGES_PER_MODEL,
        "training_images_total": TRAINING_IMAGES_PER_MODEL * N_MODELS,
    }


def measure_model(
    model_name: str, args: argparse.Namespace, config: TrainConfig, device: torch.device
) -> dict[str, Any]:
    """Alternate rounds of the plain loop and the engine on one model; return its row."""
    canvas = get_spec(model_name).canvas(args.scale)
    batches = make_batches(args.batches, args.batch, canvas)
    plain_loop(model_name, batches[:1], 1, config, device)  # warm-up (allocator, kernels)
    engine(model_name, batches[:1], 1, config, device)
    rates: dict[str, list[float]] = {"plain": [], "engine": []}
    cpu_rates: dict[str, list[float]] = {"plain": [], "engine": []}
    for round_ in range(args.rounds):
        for name, run in (("plain", plain_loop), ("engine", engine)):
            wall, cpu = run(model_name, batches, args.epochs, config, device)
            rates[name].append(wall)
            cpu_rates[name].append(cpu)
        print(f"{model_name} round {round_}: plain {rates['plain'][-1]:.1f} img/s, "
              f"engine {rates['engine'][-1]:.1f} img/s (wall)", flush=True)
    plain, eng = max(rates["plain"]), max(rates["engine"])
    # On a shared CPU, CPU time is far less disturbed by other processes than wall time.
    cpu_ratio = statistics.median(cpu_rates["plain"]) / statistics.median(cpu_rates["engine"])
    row: dict[str, Any] = {
        "model": model_name,
        "canvas": list(canvas),
        "plain": plain,
        "engine": eng,
        "plain_median": statistics.median(rates["plain"]),
        "engine_median": statistics.median(rates["engine"]),
        "rounds": rates,
        "cpu_rounds": cpu_rates,
        "overhead_ratio": plain / eng,
        "overhead_ratio_cpu_time": cpu_ratio if device.type == "cpu" else None,
    }
    if device.type == "cuda":  # the median round: the best one flatters a short run
        row["hours_full_reproduction"] = TRAINING_IMAGES_PER_MODEL / row["engine_median"] / 3600
    return row


def earlier_rows(
    path: Path, args: argparse.Namespace, names: list[str], device: torch.device
) -> list[dict[str, Any]]:
    """Rows of models not in ``names`` from an earlier results file of the same setup, card
    and torch version."""
    if not path.is_file():
        return []
    earlier = json.loads(path.read_text())
    try:
        setup, machine = earlier["setup"], earlier["machine"]
        same = (setup["canvas_scale"], setup["batch"], setup["batches_per_epoch"],
                setup["epochs"], setup["rounds"], machine.get("gpu"), machine["torch"]) == (
            args.scale, args.batch, args.batches, args.epochs, args.rounds,
            describe_machine(device).get("gpu"), torch.__version__)
        rows = [row for row in earlier["models"] if row["model"] not in names]
    except (KeyError, TypeError) as error:
        raise SystemExit(f"{path} is not a results file of this script ({error!r}); "
                         "drop --append or move it.") from error
    if not same:
        raise SystemExit(f"{path} was measured with another setup, card or torch; drop "
                         "--append or move it.")
    return rows


def summarize(
    rows: list[dict[str, Any]], names: list[str], args: argparse.Namespace, device: torch.device
) -> dict[str, Any]:
    """Return the results of the models measured so far."""
    measured = [row for row in rows if "error" not in row]
    worst = max(measured, key=lambda row: row["overhead_ratio"], default=None)
    cpu_ratios = [row["overhead_ratio_cpu_time"] for row in measured]
    meets = bool(measured) and all(
        min(row["overhead_ratio"], row["overhead_ratio_cpu_time"] or row["overhead_ratio"])
        <= TARGET_RATIO
        for row in measured
    )
    results: dict[str, Any] = {
        "machine": describe_machine(device),
        "setup": {"models": names, "measured": [row["model"] for row in rows],
                  "canvas_scale": args.scale, "batch": args.batch,
                  "batches_per_epoch": args.batches, "epochs": args.epochs,
                  "rounds": args.rounds, "optimizer": "torch_optimizer.Lamb, weight decay 1",
                  "mixed_precision_channels_last": device.type == "cuda"},
        "models": rows,
        "overhead_ratio_worst": worst["overhead_ratio"] if worst else None,
        "overhead_ratio_cpu_time_worst": max(cpu_ratios)
        if cpu_ratios and None not in cpu_ratios else None,
        "target_ratio": TARGET_RATIO,
        "meets_target": meets,
        "reproduction": reproduction_cost(),
    }
    if device.type == "cuda" and len(measured) == N_MODELS and args.scale == 1.0:
        results["reproduction"]["gpu_hours_all_12"] = sum(
            row["hours_full_reproduction"] for row in measured
        )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["squeezenet"], metavar="NAME",
                        help="registry names, or 'all' for the 12 of Table 1")
    parser.add_argument("--scale", type=float, default=0.4, help="canvas scale (1.0 = paper)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--batches", type=int, default=6, help="batches per epoch")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--append", action="store_true",
                        help="keep the results file's rows of other models (same setup)")
    args = parser.parse_args(argv)

    os.environ.setdefault("COVIDLIB_PROGRESS", "0")
    if args.threads:
        torch.set_num_threads(args.threads)
    config = TrainConfig(batch_size=args.batch)
    from covidlib.models.registry import list_models

    device = resolve_device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as make_learner does: a fixed canvas
    names = list_models() if args.models == ["all"] else [get_spec(n).name for n in args.models]
    name = f"train-{device.type}"
    rows = earlier_rows(RESULTS_DIR / f"{name}.json", args, names, device) if args.append else []
    for model_name in names:  # results are rewritten after each model: a cut run keeps them
        try:
            rows.append(measure_model(model_name, args, config, device))
        except (RuntimeError, ValueError) as error:  # one failing model must not stop the rest
            print(f"{model_name}: FAILED: {error}", flush=True)
            rows.append({"model": model_name, "error": str(error)})
        results = summarize(rows, [row["model"] for row in rows], args, device)
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        atomic_write_text(RESULTS_DIR / f"{name}.json", json.dumps(results, indent=2) + "\n")
        atomic_write_text(RESULTS_DIR / f"{name}.md", markdown(results))
    print(markdown(results))
    return 0


def markdown(results: dict[str, Any]) -> str:
    """Return the results as a short Markdown report."""
    machine, setup, repro = results["machine"], results["setup"], results["reproduction"]
    cuda = setup["mixed_precision_channels_last"]
    lines = [
        f"# Training engine vs plain PyTorch ({machine['device']})",
        "",
        f"Machine: {machine.get('gpu', machine['cpu'])}, {machine['cores']} cores, "
        f"torch {machine['torch']} ({machine['torch_threads']} threads), 1-min load average "
        f"{machine['load_average_1min']:.1f} at the end (the machine is shared).",
        f"Setup: canvas scale {setup['canvas_scale']}, batch {setup['batch']}, "
        f"{setup['batches_per_epoch']} batches x {setup['epochs']} epochs, {setup['rounds']} "
        f"alternating rounds, {setup['optimizer']}"
        + (", float16 mixed precision and channels-last." if cuda else ", float32."),
        "",
        "| model | canvas | plain images/s (best / median) | engine images/s (best / median) "
        "| overhead ratio |" + (" GPU hours, full reproduction (median) |" if cuda else ""),
        "| --- | --- | --- | --- | --- |" + (" --- |" if cuda else ""),
    ]
    for row in results["models"]:
        if "error" in row:
            lines.append(f"| {row['model']} | failed: {row['error'][:80]} |")
            continue
        ratio = f"{row['overhead_ratio']:.3f}"
        if row["overhead_ratio_cpu_time"] is not None:
            ratio += f" (CPU time {row['overhead_ratio_cpu_time']:.3f})"
        line = (
            f"| {row['model']} | {row['canvas'][0]}x{row['canvas'][1]} | "
            f"{row['plain']:.1f} / {row['plain_median']:.1f} | "
            f"{row['engine']:.1f} / {row['engine_median']:.1f} | {ratio} |"
        )
        if cuda:
            line += f" {row['hours_full_reproduction']:.2f} |"
        lines.append(line)
    lines += [
        "",
        f"**Worst overhead ratio (plain / engine, wall time, best rounds): "
        f"{results['overhead_ratio_worst'] or float('nan'):.3f}** "
        f"(target <= {results['target_ratio']}; "
        f"{'met' if results['meets_target'] else 'NOT met'}).",
        "",
        "## Cost of the full reproduction",
        "",
        f"12 models x 5 folds x 100 epochs x 2 datasets = "
        f"{repro['training_images_per_model']:,} training images per model, "
        f"{repro['training_images_total']:,} in all.",
        "",
        f"Formula: {repro['formula']}.",
        "",
    ]
    if "gpu_hours_all_12" in repro:
        lines.append(
            f"At the measured training rates (median rounds): **{repro['gpu_hours_all_12']:.1f} "
            "GPU hours** for all 12 models on this card, for the training steps on data already "
            "in memory: the data path (see data_pipeline) and each fold's test predictions "
            "come on top."
        )
    elif cuda:
        lines.append("Run with `--models all --scale 1.0` for the hours of all 12 models.")
    else:
        lines.append(
            "This run is on a CPU, so no GPU hours can be measured: run the script on a GPU "
            "with `--models all --scale 1.0`."
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
