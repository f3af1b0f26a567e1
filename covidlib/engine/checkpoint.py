"""Fold checkpoints: model, optimizer, epoch, RNG states and epoch log, written atomically."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from covidlib.engine.runs import FoldFiles
from covidlib.utils.compat import quiet_fastai_import
from covidlib.utils.fileio import atomic_path

with quiet_fastai_import():
    from fastai.learner import Learner



def rng_states() -> dict[str, Any]:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    states: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [name, torch.from_numpy(np.asarray(keys).copy()), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: Mapping[str, Any]) -> None:
    random.setstate(states["python"])
    name, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((name, keys.numpy(), pos, has_gauss, cached))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def torch_save_atomic(obj: Any, path: Path) -> Path:
    with atomic_path(path) as tmp:  # the temp name keeps the suffix torch.save looks at
        torch.save(obj, tmp)
    return path


def save_checkpoint(
    learner: Learner, path: Path, epochs_done: int, history: Sequence[Mapping[str, Any]]
) -> Path:
    """Write model, optimizer, completed epochs, RNG states and epoch log atomically."""
    state: dict[str, Any] = {
        "epochs_done": epochs_done,
        "model": learner.model.state_dict(),
        "optimizer": learner.opt.state_dict(),
        "rng": rng_states(),
        "history": [dict(row) for row in history],
    }
    scaler = getattr(learner, "scaler", None)
    if scaler is not None:
        state["scaler"] = scaler.state_dict()
    return torch_save_atomic(state, path)


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`.

    Raises:
        ValueError: when the file fails its checksum in the fold's ``files.json``
            (:class:`covidlib.engine.runs.RunFolderError`) or is not a readable covidlib
            checkpoint (delete it to restart the fold).
    """
    path = Path(path)
    FoldFiles(path.parent).verify(path, hint="delete it to restart this fold")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises many types for a broken file
        raise ValueError(
            f"Cannot read checkpoint {path}: {error}. Delete it to restart this fold."
        ) from error
    if not isinstance(state, dict) or "epochs_done" not in state or "model" not in state:
        raise ValueError(f"{path} is not a covidlib training checkpoint; delete it to restart.")
    return state
