"""Where a stored result comes from: its provenance, and storing a finished run with it.

A real run is kept in the repository as a small stored result (predictions, summary,
provenance; never weights). :func:`run_provenance` gathers what a reader needs to trust it
from the run folder and the dataset copy it was trained on: the profile, the weights, the
dataset and a digest of its copy (relative paths and SHA-256 of every image), the hardware,
the wall time, the date, the commit, and the experiment settings. :func:`store_run` stores a
finished run with it.

Example:
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for folder in ("COVID", "non-COVID"):
    ...     (root / folder).mkdir()
    ...     Image.new("L", (8, 6)).save(root / folder / "a.png")
    >>> copy = data_copy_digest(root, ["COVID/a.png", "non-COVID/a.png"])
    >>> copy["n_images"], len(copy["sha256"])
    (2, 64)
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = ["current_commit", "data_copy_digest", "hardware_description", "run_provenance",
           "store_run"]

EXPERIMENT_KEYS: tuple[str, ...] = (
    "split", "groups", "seed", "n_folds", "canvas_scale", "canvas", "skip_problems",
)
TRAIN_KEYS: tuple[str, ...] = ("epochs", "lr", "batch_size", "optimizer", "weight_decay")


def data_copy_digest(root: str | Path, relpaths: Iterable[str]) -> dict[str, Any]:
    """Return ``{"n_images", "sha256"}``: one digest of the copy's images (relative path and
    SHA-256 of each file's bytes, sorted), the same on any machine that holds the same copy.

    Example:
        >>> data_copy_digest(".", [])["n_images"]
        0
    """
    from covidlib.utils.fileio import sha256_file

    base = Path(root)
    lines = sorted(f"{relpath}\t{sha256_file(base / relpath)}\n" for relpath in set(relpaths))
    return {"n_images": len(lines),
            "sha256": hashlib.sha256("".join(lines).encode()).hexdigest()}


def hardware_description() -> str:
    """Return the CPU (and GPU, when torch sees one), its cores and the torch version.

    Example:
        >>> "cores" in hardware_description()
        True
    """
    import torch

    parts = [f"{cpu_model()}, {os.cpu_count()} cores"]
    if torch.cuda.is_available():
        parts.append(torch.cuda.get_device_name(0))
    parts.append(f"torch {torch.__version__}, {platform.system()}")
    return "; ".join(parts)


def cpu_model() -> str:
    """Return the CPU's model name (``/proc/cpuinfo`` on Linux), or what platform knows.

    Example:
        >>> isinstance(cpu_model(), str)
        True
    """
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def current_commit() -> str:
    """The git commit of this covidlib checkout (``"unknown"`` outside a git checkout).

    Example:
        >>> isinstance(current_commit(), str)
        True
    """
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=False, cwd=Path(__file__).resolve().parent, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() or "unknown"


def run_provenance(run_dir: str | Path, dataset_root: str | Path) -> dict[str, Any]:
    """Return the provenance of a finished run folder trained on the copy at ``dataset_root``.

    The wall time is the sum of the folds' epoch times (``epochs.csv``): the training steps,
    whatever else shared the machine. Only relative paths are recorded.
    """
    import pandas as pd

    from covidlib.engine.runs import RunFolder, config_digest
    from covidlib.evaluate.report import profile_of

    run = RunFolder(run_dir)
    config = run.read_config()
    folds = run.finished_folds()
    seconds = sum(float(pd.read_csv(run.fold(k).epochs)["seconds"].sum()) for k in folds)
    folds_table = run.read_folds()
    relpaths = [_relative(path, Path(dataset_root)) for path in folds_table["path"]]
    weights = str(config.get("weights"))
    return {
        "profile": profile_of(config),
        "weights": "random (trained from scratch, no ImageNet weights)"
                   if weights == "random" else weights,
        "data": {"dataset": config["dataset"], **data_copy_digest(dataset_root, relpaths)},
        "hardware": hardware_description(),
        "wall_time_s": round(seconds, 1),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "commit": current_commit(),
        "experiment": {
            **{key: config.get(key) for key in EXPERIMENT_KEYS},
            **{key: config.get("train", {}).get(key) for key in TRAIN_KEYS},
            "config_sha256": config_digest(config),
        },
    }


def _relative(path: str, root: Path) -> str:
    candidate = Path(path)
    try:
        return candidate.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return candidate.as_posix()


def store_run(run_dir: str | Path, results_root: str | Path, result_id: str,
              dataset_root: str | Path) -> Path:
    """Store a finished run folder as ``results_root/<dataset>/<model>/<result_id>/``.

    Raises:
        covidlib.evaluate.report.ReportError: unfinished folds, or the result exists.
    """
    from covidlib.evaluate.report import load_scored, store_result

    run = load_scored(run_dir)
    return store_result(run, results_root, result_id, run_provenance(run_dir, dataset_root))
