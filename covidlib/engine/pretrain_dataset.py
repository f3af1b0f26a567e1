"""A real labelled dataset as the source task: train COVID vs non-COVID, keep the backbone.

The phantom's findings (:mod:`covidlib.engine.pretrain`) show the idea of a source task;
a real one is another real CT dataset with the same two classes, e.g. SARS-CoV-2 CT as the
source for COVID19-CT. :func:`pretrain_on_dataset` trains ``create_model(NAME)`` from
random weights on a stratified, patient-grouped share of the source dataset
(:func:`covidlib.engine.learner.fit_fold`: the profile's optimizer, schedule and
augmentation), scores it on the held-out rest (accuracy with a 95% bootstrap interval, and
the majority class's accuracy beside it) and writes the same two files as
:func:`covidlib.engine.pretrain.pretrain`: the backbone state dict (``.pt``, loaded by
``create_model(NAME, pretrained=FILE)`` and ``covidlib cv --weights FILE``) and its
provenance (``.json``).

Example:
    >>> holdout_split([0, 0, 0, 0, 1, 1, 1, 1, 1, 1], list(range(10)), 0.2)[1].size
    2
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from covidlib.config import Profile, get_profile
from covidlib.engine.pretrain import FORMAT, PretrainResult, provenance_file
from covidlib.utils.fileio import atomic_path, atomic_write_text, sha256_file

__all__ = ["DEFAULT_HOLDOUT", "holdout_split", "pretrain_on_dataset"]

#: Share of the source dataset held out to score the source model.
DEFAULT_HOLDOUT = 0.2


def holdout_split(
    labels: Sequence[int], groups: Sequence[Any], fraction: float = DEFAULT_HOLDOUT,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Training and held-out rows: stratified by label, no group on both sides.

    Raises:
        ValueError: a fraction outside (0, 0.5] or a class with fewer than two groups.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    if not 0 < fraction <= 0.5:
        raise ValueError(f"the held-out fraction must be in (0, 0.5], got {fraction}")
    y = np.asarray(labels, dtype=int)
    g = np.asarray([str(v) for v in groups])
    splits = max(2, round(1 / fraction))
    for label in (0, 1):
        if len(set(g[y == label])) < 2:
            raise ValueError(f"class {label} needs images of at least two patients/groups "
                             "to hold some out")
    splitter = StratifiedGroupKFold(n_splits=min(splits, len(set(g))), shuffle=True,
                                    random_state=seed)
    train, test = next(splitter.split(np.zeros(len(y)), y, g))
    return np.sort(train), np.sort(test)


def pretrain_on_dataset(
    model: str,
    out: str | Path,
    *,
    source: str,
    root: str | Path | None = None,
    profile: Profile | None = None,
    epochs: int | None = None,
    seed: int = 0,
    holdout: float = DEFAULT_HOLDOUT,
    canvas_scale: float | None = None,
    device: torch.device | str | None = None,
    show_progress: bool | None = False,
    extra_provenance: dict[str, Any] | None = None,
    log: Callable[[str], None] | None = None,
) -> PretrainResult:
    """Train ``model`` on the real labelled ``source`` dataset and write its backbone.

    Args:
        model: registry name of the network.
        out: the weights file (``.pt``); the provenance goes beside it (``.json``).
        source: the source dataset's registry name (``sars-cov-2-ct``, ``covid19-ct``...).
        root: its folder (default: its default place, :func:`covidlib.data.sources.ensure_dataset`).
        profile: training settings (default: the ``COVIDLIB_PROFILE`` one).
        epochs: training epochs (default: the profile's).
        seed: the split, the initialisation and the data order.
        holdout: share of the images held out to score the source model.
        canvas_scale: factor on the model's custom input (default: the profile's).
        device: where to train (``None``: CPU).
        show_progress: progress bars.
        extra_provenance: more fields for the provenance (the CLI adds hardware, commit and
            the copy's digest).
        log: called with one line when done.
    """
    from covidlib.data.index import index_dataset
    from covidlib.data.sources import ensure_dataset
    from covidlib.engine.learner import fit_fold
    from covidlib.engine.transfer import backbone_state
    from covidlib.evaluate.intervals import bootstrap_interval
    from covidlib.models.registry import get_spec

    spec = get_spec(model)
    chosen = profile or get_profile()
    started = time.perf_counter()
    base = ensure_dataset(source, root, chosen)
    index = index_dataset(source, base)
    images = index.require_clean(True).reset_index(drop=True)
    labels = images["label"].to_numpy().astype(int)
    groups = images["group"] if "group" in images else images["path"]
    train_rows, test_rows = holdout_split(labels, groups, holdout, seed)
    overrides: dict[str, Any] = {"weights": "random", "strategy": "scratch", "seed": seed}
    if epochs is not None:
        overrides["epochs"] = epochs
    if canvas_scale is not None:
        overrides["canvas_scale"] = canvas_scale
    config = chosen.experiment(source, spec.name, **overrides)
    target = torch.device("cpu") if device is None else torch.device(device)
    fit = fit_fold(config, images, train_rows, test_rows, dataset=index.name, device=target,
                   show_progress=show_progress)
    predicted = (fit.predictions["probability"].to_numpy() >= 0.5).astype(int)
    correct = (predicted == labels[test_rows]).astype(float)
    low, high = bootstrap_interval(np.mean, correct, seed=seed)
    majority = float(max(labels[test_rows].mean(), 1 - labels[test_rows].mean()))
    network = fit.learner.model
    state = {k: v.detach().cpu() for k, v in backbone_state(network, spec.name).items()}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        torch.save(state, tmp)
    history = fit.history.to_dict("records")
    provenance = {
        "format": FORMAT,
        "source": source,
        "task": "COVID vs non-COVID",
        "model": spec.name,
        "profile": chosen.name,
        "epochs": int(config.train.epochs),
        "seed": int(seed),
        "canvas_scale": float(config.canvas_scale),
        "batch_size": config.train.batch_size,
        "lr": config.train.lr,
        "optimizer": config.train.optimizer,
        "classes": ["non-COVID", "COVID"],
        "data": {
            "dataset": index.name,
            "images": int(len(images)),
            "train_images": int(len(train_rows)),
            "test_images": int(len(test_rows)),
            "class_counts": {"non-COVID": int((labels == 0).sum()),
                             "COVID": int((labels == 1).sum())},
            "split": f"stratified by class, grouped by patient, {holdout:g} held out",
        },
        "source_accuracy": round(float(correct.mean()), 4),
        "source_accuracy_ci": [round(low, 4), round(high, 4)],
        "majority_accuracy": round(majority, 4),
        "source_auc": fit.metrics.get("auc"),
        "history": history,
        "seconds": round(time.perf_counter() - started, 1),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **(extra_provenance or {}),
        "weights_file": out.name,
        "weights_sha256": sha256_file(out),
    }
    meta = provenance_file(out)
    atomic_write_text(meta, json.dumps(provenance, indent=2, default=float) + "\n")
    if log is not None:
        log(f"{spec.name} pretrained on {source} ({len(train_rows)} images, "
            f"{config.train.epochs} epochs): held-out accuracy {correct.mean():.3f} "
            f"[{low:.3f}, {high:.3f}] (majority {majority:.3f}); wrote {out} and {meta.name}")
    import pandas as pd

    return PretrainResult(out, meta, provenance, pd.DataFrame(history))
