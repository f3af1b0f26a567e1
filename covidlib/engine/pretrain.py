"""An offline source task to transfer from: the phantom's non-COVID findings.

ImageNet weights cannot be downloaded offline, so the course trains its own source model.
The source task shares the target's domain (chest-CT-like slices) but not its labels: the
five non-COVID findings of the phantom (normal, nodules, lobar consolidation, emphysema,
effusion; the ``finding`` column of ``labels.csv``), read from the non-COVID images of a
*separately seeded*, larger phantom (seed :data:`SOURCE_SEED_OFFSET` + ``seed``; the target
phantom uses seed 0 and each image depends only on ``(seed, index)``, so the source never
holds a target image). A stratified fifth of the source images is held out to score the
source model.

:func:`pretrain` trains ``create_model(NAME)`` with a five-way head on that task (fastai
``Learner``, the profile's optimizer and schedule, cross-entropy) and writes

* ``FILE`` (``.pt``): a torch state dict with exactly the keys of
  ``create_model(NAME).state_dict()`` except the head's, which
  ``create_model(NAME, pretrained=FILE)`` and ``covidlib cv --weights FILE`` load;
* ``FILE`` with suffix ``.json``: its provenance (source task, source phantom, model,
  canvas, epochs, seed, accuracy on the held-out source images, sha256 of the weights).

Both are written to temporary names and renamed. :func:`source_model` caches the result
under ``data_dir()/"pretrained"`` keyed by its settings, so the book trains it once.

Example:
    >>> import os, tempfile
    >>> from unittest import mock
    >>> from covidlib.models.factory import create_model
    >>> folder = Path(tempfile.mkdtemp())
    >>> with mock.patch.dict(os.environ, {"COVIDLIB_DATA": str(folder)}):
    ...     result = pretrain("squeezenet", folder / "source.pt", epochs=1,
    ...                       phantom_size=24, canvas_scale=0.12, show_progress=False)
    >>> result.provenance["source"], result.provenance["classes"][:2]
    ('phantom-findings', ['normal', 'nodules'])
    >>> _ = create_model("squeezenet", pretrained=result.weights_file)
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.nn import functional as F

from covidlib.config import ExperimentConfig, Profile, data_dir, get_profile, progress_enabled
from covidlib.data.loaders import fold_dataloaders
from covidlib.data.phantom import LABELS_NAME, NON_COVID_FINDINGS, generate_phantom
from covidlib.engine.callbacks import EpochSeeding, SkipValidation, StepSchedule
from covidlib.engine.learner import make_learner, resolve_canvas
from covidlib.engine.transfer import backbone_state, replace_head
from covidlib.models.factory import create_model
from covidlib.models.registry import get_spec
from covidlib.utils.compat import quiet_fastai_import
from covidlib.utils.fileio import atomic_path, atomic_write_text, sha256_file
from covidlib.utils.names import UnknownNameError

with quiet_fastai_import():
    from fastai.callback.core import Callback
    from fastai.torch_core import set_seed

__all__ = [
    "PRETRAIN_SETTINGS",
    "SOURCE_SEED_OFFSET",
    "SOURCE_TASKS",
    "PretrainResult",
    "findings_table",
    "pretrain",
    "provenance_file",
    "read_provenance",
    "source_model",
]

SOURCE_TASKS: tuple[str, ...] = ("phantom-findings",)
#: The source phantom's seed is this plus the pretraining seed (the target phantom's is 0).
SOURCE_SEED_OFFSET = 1000
#: Fraction of the source images held out to score the source model.
HOLDOUT_FRACTION = 0.2
#: Source phantom size per profile (about half its images are non-COVID: the source task).
PRETRAIN_SETTINGS: dict[str, dict[str, Any]] = {
    # From random weights ShuffleNet's loss only starts to fall after about 12 epochs.
    "quick": {"phantom_size": 400, "epochs": 30},
    "full": {"phantom_size": 4000, "epochs": 30},
}
FORMAT = "covidlib.pretrain/1"


@dataclass(frozen=True)
class PretrainResult:
    """What :func:`pretrain` wrote.

    Attributes:
        weights_file: the state dict (backbone keys of ``create_model(model)``).
        provenance_file: the JSON beside it.
        provenance: its content.
        history: per-epoch ``epoch``, ``train_loss``, ``lr``, ``seconds``.
    """

    weights_file: Path
    provenance_file: Path
    provenance: dict[str, Any]
    history: pd.DataFrame


def provenance_file(weights_file: str | Path) -> Path:
    """Return the provenance JSON beside a weights file (same name, ``.json``).

    Example:
        >>> provenance_file("runs/resnet18-source.pt").name
        'resnet18-source.json'
    """
    return Path(weights_file).with_suffix(".json")


def read_provenance(weights_file: str | Path) -> dict[str, Any]:
    """Read the provenance JSON of a weights file written by :func:`pretrain`.

    Raises:
        FileNotFoundError / ValueError: naming the file.
    """
    path = provenance_file(weights_file)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not JSON ({error}); pretrain again to rewrite it") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path} is not a provenance file of `covidlib pretrain`")
    return data


def findings_table(root: str | Path) -> pd.DataFrame:
    """The source task's images of a phantom folder: non-COVID images, finding as label.

    Returns:
        Columns ``path``, ``finding`` and ``label`` (the finding's position in
        :data:`covidlib.data.phantom.NON_COVID_FINDINGS`).

    Example:
        >>> import tempfile
        >>> root = generate_phantom(Path(tempfile.mkdtemp()) / "ph", n=6, seed=1000)
        >>> table = findings_table(root)
        >>> len(table), set(table["finding"]) <= set(NON_COVID_FINDINGS)
        (3, True)
    """
    root = Path(root)
    labels = pd.read_csv(root / LABELS_NAME)
    labels = labels[labels["label"] == 0].reset_index(drop=True)
    classes = list(NON_COVID_FINDINGS)
    return pd.DataFrame({
        "path": [str(root / file) for file in labels["file"]],
        "finding": labels["finding"].astype(str),
        "label": [classes.index(f) for f in labels["finding"]],
    })


def _split(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    rows = np.arange(len(labels))
    counts = np.bincount(labels)
    stratify = labels if counts[counts > 0].min() >= 2 else None
    train, test = train_test_split(
        rows, test_size=HOLDOUT_FRACTION, random_state=seed, stratify=stratify
    )
    return np.sort(train), np.sort(test)


def _cross_entropy(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(output, target.long())


def _settings(
    model: str, profile: Profile, epochs: int | None, seed: int, phantom_size: int | None,
    canvas_scale: float | None,
) -> dict[str, Any]:
    defaults = PRETRAIN_SETTINGS.get(profile.name, PRETRAIN_SETTINGS["quick"])
    return {
        "source": "phantom-findings",
        "model": model,
        "profile": profile.name,
        "epochs": int(epochs if epochs is not None else defaults["epochs"]),
        "seed": int(seed),
        "phantom_size": int(phantom_size or defaults["phantom_size"]),
        "phantom_seed": SOURCE_SEED_OFFSET + int(seed),
        "phantom_difficulty": float(profile.phantom_difficulty),
        "canvas_scale": float(canvas_scale if canvas_scale is not None else profile.canvas_scale),
        "batch_size": profile.batch_size,
        "lr": profile.lr,
        "optimizer": profile.train.optimizer,
    }


def pretrain(
    model: str,
    out: str | Path,
    *,
    source: str = "phantom-findings",
    profile: Profile | None = None,
    epochs: int | None = None,
    seed: int = 0,
    phantom_size: int | None = None,
    canvas_scale: float | None = None,
    device: torch.device | str | None = None,
    show_progress: bool | None = None,
    log: Callable[[str], None] | None = None,
) -> PretrainResult:
    """Train ``model`` on the source task and write its backbone and provenance.

    Args:
        model: registry name of the network.
        out: the weights file to write (``.pt``); the provenance goes beside it (``.json``).
        source: the source task; only ``"phantom-findings"``.
        profile: training settings (optimizer, learning rate, batch size, canvas scale,
            difficulty); ``None`` is the ``COVIDLIB_PROFILE`` one.
        epochs: training epochs (default :data:`PRETRAIN_SETTINGS` of the profile).
        seed: seeds the source phantom (``SOURCE_SEED_OFFSET + seed``), the split, the
            initialisation and the data order; the same seed gives identical weights (CPU).
        phantom_size: images of the source phantom (about half are non-COVID).
        canvas_scale: factor on the model's custom input (default the profile's).
        device: where to train (``None``: CPU).
        show_progress: progress bars; ``None`` asks :func:`covidlib.config.progress_enabled`.
        log: called with one line when done.

    Raises:
        ValueError: an unknown source task or model, or a bad setting.
    """
    if source not in SOURCE_TASKS:
        raise UnknownNameError("source task", source, SOURCE_TASKS)
    spec = get_spec(model)
    chosen = profile or get_profile()
    settings = _settings(spec.name, chosen, epochs, seed, phantom_size, canvas_scale)
    if settings["epochs"] < 1:
        raise ValueError(f"--epochs must be at least 1, got {settings['epochs']}")
    if seed < 0:
        raise ValueError(f"--seed must be a non-negative integer, got {seed}")
    started = time.perf_counter()
    root = data_dir() / "phantom-source" / (
        f"n{settings['phantom_size']}-s{settings['phantom_seed']}"
        f"-d{settings['phantom_difficulty']:g}"
    )
    generate_phantom(root, n=settings["phantom_size"], seed=settings["phantom_seed"],
                     difficulty=settings["phantom_difficulty"], overwrite=True)
    table = findings_table(root)
    labels = table["label"].to_numpy()
    train_rows, test_rows = _split(labels, seed)
    canvas = resolve_canvas(ExperimentConfig(
        "phantom", spec.name, canvas_scale=settings["canvas_scale"])).canvas
    assert canvas is not None
    train_config = chosen.train.with_overrides(epochs=settings["epochs"])
    target = torch.device("cpu") if device is None else torch.device(device)
    set_seed(seed)
    network = replace_head(create_model(spec.name), spec.name, len(NON_COVID_FINDINGS))
    mean, std = spec.normalization
    dls = fold_dataloaders(
        table, train_rows, test_rows, canvas, train_config.batch_size, augment=chosen.augment,
        seed=seed, device=target, mean=mean, std=std,
    )
    show = progress_enabled() if show_progress is None else show_progress
    learner = make_learner(network, dls, train_config, device=target, show_progress=show)
    learner.loss_func = _cross_entropy
    history: list[dict[str, Any]] = []
    recorder = _History(history)
    learner.fit(
        train_config.epochs, lr=train_config.lr, wd=train_config.weight_decay,
        cbs=[StepSchedule(train_config), EpochSeeding(seed, 0), SkipValidation(), recorder],
    )
    network.eval()
    predicted = []
    with torch.no_grad():
        for x, _ in dls.valid:
            predicted.append(network(x).argmax(dim=1).cpu())
    guesses = torch.cat(predicted).numpy()
    accuracy = float((guesses == labels[test_rows]).mean())
    majority = float(np.bincount(labels[test_rows]).max() / len(test_rows))
    state = {k: v.cpu() for k, v in backbone_state(network, spec.name).items()}
    out = Path(out)
    with atomic_path(out) as tmp:
        torch.save(state, tmp)
    classes = list(NON_COVID_FINDINGS)
    provenance = {
        "format": FORMAT,
        **settings,
        "canvas": list(canvas),
        "classes": classes,
        "data": {
            "phantom": str(root),
            "images": int(len(table)),
            "train_images": int(len(train_rows)),
            "test_images": int(len(test_rows)),
            "class_counts": {c: int((labels == i).sum()) for i, c in enumerate(classes)},
        },
        "source_accuracy": accuracy,
        "majority_accuracy": majority,
        "final_train_loss": float(history[-1]["train_loss"]) if history else None,
        "history": history,
        "seconds": round(time.perf_counter() - started, 1),
        "weights_file": out.name,
        "weights_sha256": sha256_file(out),
    }
    meta = provenance_file(out)
    atomic_write_text(meta, json.dumps(provenance, indent=2) + "\n")
    if log is not None:
        log(f"{spec.name} pretrained on {source} ({len(train_rows)} images, "
            f"{settings['epochs']} epochs): source accuracy {accuracy:.3f} "
            f"(majority {majority:.3f}); wrote {out} and {meta.name}")
    return PretrainResult(out, meta, provenance, pd.DataFrame(history))


class _History(Callback):
    """Record each epoch's mean training loss, learning rate and seconds."""

    order = 60

    def __init__(self, history: list[dict[str, Any]]) -> None:
        self.history = history

    def before_epoch(self) -> None:
        self.started = time.perf_counter()
        self.losses: list[float] = []

    def after_batch(self) -> None:
        if self.training:
            self.losses.append(float(self.loss.detach()))

    def after_epoch(self) -> None:
        self.history.append({
            "epoch": int(self.epoch),
            "train_loss": float(np.mean(self.losses)) if self.losses else float("nan"),
            "lr": float(self.opt.hypers[0]["lr"]),
            "seconds": round(time.perf_counter() - self.started, 3),
        })


def source_model(
    model: str,
    *,
    profile: Profile | None = None,
    epochs: int | None = None,
    seed: int = 0,
    phantom_size: int | None = None,
    canvas_scale: float | None = None,
    device: torch.device | str | None = None,
    folder: str | Path | None = None,
) -> PretrainResult:
    """Return the cached source model of these settings, pretraining it when missing.

    The file is ``folder/<model>-<12 hex of the settings' digest>.pt`` (default folder
    ``data_dir()/"pretrained"``); a file whose provenance or sha256 does not match is
    trained again.
    """
    chosen = profile or get_profile()
    spec_name = _settings(model, chosen, epochs, seed, phantom_size, canvas_scale)
    key = hashlib.sha256(json.dumps(spec_name, sort_keys=True).encode()).hexdigest()[:12]
    where = Path(folder) if folder is not None else data_dir() / "pretrained"
    weights = where / f"{spec_name['model']}-{key}.pt"
    if weights.is_file() and provenance_file(weights).is_file():
        try:
            provenance = read_provenance(weights)
        except ValueError:
            provenance = {}
        fresh = all(provenance.get(k) == v for k, v in spec_name.items())
        if fresh and provenance.get("weights_sha256") == sha256_file(weights):
            history = pd.DataFrame(provenance.get("history", []))
            return PretrainResult(weights, provenance_file(weights), provenance, history)
    return pretrain(model, weights, profile=chosen, epochs=epochs, seed=seed,
                    phantom_size=phantom_size, canvas_scale=canvas_scale, device=device,
                    show_progress=False)
