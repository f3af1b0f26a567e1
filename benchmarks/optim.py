"""Optimizer step time: covidlib's multi-tensor LAMB vs torch_optimizer.Lamb vs foreach Adam.

Each model of the registry is built with random weights; its real parameter tensors get
random gradients once, and the three optimizers step over them with the paper's settings
(learning rate 3e-4, weight decay 1, eps 1e-6):

* ``lamb``: :class:`covidlib.engine.lamb.Lamb` (no host reads);
* ``torch_optimizer``: ``torch_optimizer.Lamb`` (one tensor at a time, 8 host reads each);
* ``adam``: ``torch.optim.Adam(foreach=True)``, the reference an optimizer step should cost.

The optimizers share the parameter tensors (each keeps its own state; the values the
steps write do not change the time a step takes). Rounds alternate ``lamb``,
``torch_optimizer``, ``adam``, ``lamb``... so load from other processes hits all alike; each
round times ``--steps`` steps, and the ratios use the medians of the rounds. On the CPU the
default is one torch thread and the CPU time of the process is measured next to the wall
time (far less disturbed by other processes on a shared machine). On CUDA the device is
synchronised around each round. One profiled step per optimizer counts its host reads
(``aten::item``, ``aten::is_nonzero``, ``aten::_local_scalar_dense``).

Writes ``benchmarks/results/optim-<cpu|cuda>.json`` and ``.md`` after every model.

Example:
    $ .venv/bin/python benchmarks/optim.py                        # CPU, all 12, ~5 minutes
    $ .venv/bin/python benchmarks/optim.py --models resnet18 densenet121
    $ python benchmarks/optim.py --device cuda                     # a GPU machine
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(REPO_ROOT))

from machine import describe_machine  # noqa: E402  (benchmarks/machine.py)

from covidlib.engine.lamb import Lamb  # noqa: E402
from covidlib.models.factory import create_model  # noqa: E402
from covidlib.models.registry import get_spec, list_models  # noqa: E402
from covidlib.utils.fileio import atomic_write_text  # noqa: E402

RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"
TARGET_RATIO = 1.5  # new LAMB step time / foreach Adam step time
HOST_READS = ("aten::item", "aten::is_nonzero", "aten::_local_scalar_dense")
HYPER: dict[str, Any] = {"lr": 3e-4, "weight_decay": 1.0, "eps": 1e-6}


def optimizers(params: list[torch.nn.Parameter]) -> dict[str, torch.optim.Optimizer]:
    """The three contenders over the same parameter tensors, in the order of the rounds."""
    import torch_optimizer

    return {
        "lamb": Lamb(params, **HYPER),
        "torch_optimizer": torch_optimizer.Lamb(params, **HYPER),
        "adam": torch.optim.Adam(params, foreach=True, **HYPER),
    }


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(step: Callable[[], Any], steps: int, device: torch.device) -> tuple[float, float]:
    """Return (wall seconds, CPU seconds) per step of ``steps`` calls of ``step``."""
    _sync(device)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    _sync(device)
    return (time.perf_counter() - wall) / steps, (time.process_time() - cpu) / steps


def host_reads(optimizer: torch.optim.Optimizer) -> int:
    """Host reads the profiler sees in one ``optimizer.step()``."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        optimizer.step()
    return sum(1 for event in prof.events() if event.name in HOST_READS)


def measure_model(name: str, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """Alternate rounds of the three optimizers over one model's parameters; return its row."""
    torch.manual_seed(0)
    params = list(create_model(name).to(device).parameters())
    generator = torch.Generator(device=device).manual_seed(1)
    for p in params:
        p.grad = torch.randn(p.shape, generator=generator, device=device) * 1e-3
    contenders = optimizers(params)
    reads = {}
    for key, optimizer in contenders.items():  # the first step creates the state
        optimizer.step()
        reads[key] = host_reads(optimizer)
    wall: dict[str, list[float]] = {key: [] for key in contenders}
    cpu: dict[str, list[float]] = {key: [] for key in contenders}
    for _ in range(args.rounds):
        for key, optimizer in contenders.items():
            seconds, cpu_seconds = time_steps(optimizer.step, args.steps, device)
            wall[key].append(seconds)
            cpu[key].append(cpu_seconds)
    median = {key: statistics.median(values) for key, values in wall.items()}
    cpu_median = {key: statistics.median(values) for key, values in cpu.items()}
    row: dict[str, Any] = {
        "model": name,
        "tensors": len(params),
        "parameters": sum(p.numel() for p in params),
        "step_ms_median": {key: 1e3 * value for key, value in median.items()},
        "rounds_ms": {key: [1e3 * v for v in values] for key, values in wall.items()},
        "ratio_lamb_adam": median["lamb"] / median["adam"],
        "ratio_torch_optimizer_adam": median["torch_optimizer"] / median["adam"],
        "host_reads_per_step": reads,
    }
    if device.type == "cpu":
        row["cpu_step_ms_median"] = {key: 1e3 * value for key, value in cpu_median.items()}
        row["cpu_ratio_lamb_adam"] = cpu_median["lamb"] / cpu_median["adam"]
        row["cpu_ratio_torch_optimizer_adam"] = (
            cpu_median["torch_optimizer"] / cpu_median["adam"]
        )
    print(f"{name}: lamb/adam {row['ratio_lamb_adam']:.2f}, torch_optimizer/adam "
          f"{row['ratio_torch_optimizer_adam']:.2f} (wall medians)"
          + (f"; CPU time {row['cpu_ratio_lamb_adam']:.2f}, "
             f"{row['cpu_ratio_torch_optimizer_adam']:.2f}" if device.type == "cpu" else ""),
          flush=True)
    return row


def judged_ratio(row: dict[str, Any]) -> float:
    """The ratio the target is about: CPU time on the (shared) CPU, wall time on a GPU."""
    return float(row.get("cpu_ratio_lamb_adam", row["ratio_lamb_adam"]))


def summarize(rows: list[dict[str, Any]], args: argparse.Namespace,
              device: torch.device) -> dict[str, Any]:
    """Return the results of the models measured so far."""
    measured = [row for row in rows if "error" not in row]
    worst = max((judged_ratio(row) for row in measured), default=None)
    return {
        "machine": describe_machine(device),
        "setup": {
            "measured": [row["model"] for row in rows], "rounds": args.rounds,
            "steps_per_round": args.steps, "hyper_parameters": HYPER,
            "optimizers": {"lamb": "covidlib.engine.lamb.Lamb",
                           "torch_optimizer": "torch_optimizer.Lamb",
                           "adam": "torch.optim.Adam(foreach=True)"},
            "float": "float32",
        },
        "models": rows,
        "ratio_lamb_adam_worst": worst,
        "ratio_judged": "CPU-time medians" if device.type == "cpu" else "wall-time medians",
        "target_ratio": TARGET_RATIO,
        "meets_target": worst is not None and worst <= TARGET_RATIO,
    }


def markdown(results: dict[str, Any]) -> str:
    """Return the results as a short Markdown report."""
    machine, setup = results["machine"], results["setup"]
    cpu = "cpu_ratio_lamb_adam" in next(
        (row for row in results["models"] if "error" not in row), {}
    )
    lines = [
        f"# Optimizer step time: multi-tensor LAMB vs torch_optimizer.Lamb vs foreach Adam "
        f"({machine['device']})",
        "",
        f"Machine: {machine.get('gpu', machine['cpu'])}, {machine['cores']} cores, torch "
        f"{machine['torch']} ({machine['torch_threads']} threads), 1-min load average "
        f"{machine['load_average_1min']:.1f} at the end (the machine is shared).",
        f"Setup: random init, gradients preset, lr {setup['hyper_parameters']['lr']}, weight "
        f"decay {setup['hyper_parameters']['weight_decay']}, {setup['float']}; median of "
        f"{setup['rounds']} alternating rounds of {setup['steps_per_round']} steps.",
        "",
        "| model | tensors | parameters (M) | step ms: lamb / torch_optimizer / adam (wall) "
        "| lamb / adam | torch_optimizer / adam |"
        + (" lamb / adam, CPU time | torch_optimizer / adam, CPU time |" if cpu else "")
        + " host reads per step: lamb / torch_optimizer |",
        "| --- | --- | --- | --- | --- | --- |" + (" --- | --- |" if cpu else "") + " --- |",
    ]
    for row in results["models"]:
        if "error" in row:
            lines.append(f"| {row['model']} | failed: {row['error'][:80]} |")
            continue
        ms, reads = row["step_ms_median"], row["host_reads_per_step"]
        line = (
            f"| {row['model']} | {row['tensors']} | {row['parameters'] / 1e6:.1f} | "
            f"{ms['lamb']:.1f} / {ms['torch_optimizer']:.1f} / {ms['adam']:.1f} | "
            f"{row['ratio_lamb_adam']:.2f} | {row['ratio_torch_optimizer_adam']:.2f} |"
        )
        if cpu:
            line += (f" {row['cpu_ratio_lamb_adam']:.2f} |"
                     f" {row['cpu_ratio_torch_optimizer_adam']:.2f} |")
        lines.append(line + f" {reads['lamb']} / {reads['torch_optimizer']} |")
    worst = results["ratio_lamb_adam_worst"]
    lines += [
        "",
        f"**Worst lamb / adam ratio ({results['ratio_judged']}): "
        f"{worst if worst is not None else float('nan'):.2f}** (target <= "
        f"{results['target_ratio']}; {'met' if results['meets_target'] else 'NOT met'}).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["all"], metavar="NAME",
                        help="registry names, or 'all' (default) for the 12 of Table 1")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1...")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per round")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: 1 on the CPU, torch's on a GPU)")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: no CUDA device here; use --device cpu.")
    threads = args.threads or (1 if device.type == "cpu" else None)
    if threads:
        torch.set_num_threads(threads)
    names = list_models() if args.models == ["all"] else [get_spec(n).name for n in args.models]
    path = RESULTS_DIR / f"optim-{device.type}"
    rows: list[dict[str, Any]] = []
    results: dict[str, Any] = {}
    for name in names:  # results are rewritten after each model: a cut run keeps them
        try:
            rows.append(measure_model(name, args, device))
        except (RuntimeError, ValueError) as error:  # one failing model must not stop the rest
            print(f"{name}: FAILED: {error}", flush=True)
            rows.append({"model": name, "error": str(error)})
        results = summarize(rows, args, device)
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path.with_suffix(".json"), json.dumps(results, indent=2) + "\n")
        atomic_write_text(path.with_suffix(".md"), markdown(results))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
