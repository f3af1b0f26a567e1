"""Reading run folders of :func:`covidlib.engine.cv.run_cv`: fold models and predictions.

Example:
    >>> table = predict_images("runs/phantom/squeezenet/quick", ["a.png"])  # doctest: +SKIP
    >>> table.columns.tolist()  # doctest: +SKIP
    ['path', 'probability', 'label', 'label_name']
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

PREDICT_BATCH = 32  # images per forward pass in predict_images


def read_run_config(run_dir: str | Path) -> dict[str, Any]:
    """Return ``config.json`` of a run folder.

    Raises:
        FileNotFoundError: ``run_dir`` is not a run folder.
    """
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a run folder of `covidlib cv` (no config.json).")
    return json.loads(path.read_text())


def fold_dir(run_dir: str | Path, fold: int) -> Path:
    """Return the folder of fold ``fold`` inside a run folder."""
    return Path(run_dir) / f"fold-{fold}"


def finished_folds(run_dir: str | Path) -> list[int]:
    """Return the folds of a run folder that are finished, in order.

    A fold is finished once its ``metrics.json`` exists: training writes it last, after the
    predictions and the model. Folders not named ``fold-<k>`` are ignored.
    """
    from covidlib.engine.learner import METRICS_FILE

    folds = []
    for folder in Path(run_dir).glob("fold-*"):
        match = re.fullmatch(r"fold-(\d+)", folder.name)
        if match and (folder / METRICS_FILE).is_file():
            folds.append(int(match.group(1)))
    return sorted(folds)


def load_fold_model(run_dir: str | Path, fold: int) -> torch.nn.Module:
    """Return fold ``fold``'s trained model (CPU, eval mode).

    Raises:
        FileNotFoundError: the fold has not finished (no ``model.pt``).
    """
    from covidlib.engine.learner import MODEL_FILE
    from covidlib.models.registry import create_model

    config = read_run_config(run_dir)
    path = fold_dir(run_dir, fold) / MODEL_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"Fold {fold} of {run_dir} has no trained model ({path} is missing); finished "
            f"folds: {finished_folds(run_dir)}. Run `covidlib cv` to train it."
        )
    model = create_model(config["model"], pretrained=False)
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    return model.eval()


def predict_images(
    run_dir: str | Path,
    paths: Sequence[str | Path],
    fold: int | None = None,
    threshold: float = 0.5,
) -> pd.DataFrame:
    """Return the COVID probability of image files, letterboxed like the run's test folds.

    Args:
        run_dir: a run folder.
        paths: image files.
        fold: use this fold's model; ``None`` averages the probabilities of all finished
            folds.
        threshold: a probability at or above it is labelled COVID.

    Returns:
        DataFrame with ``path``, ``probability``, ``label`` (1 = COVID) and ``label_name``;
        ``attrs["folds"]`` lists the models used.
    """
    from covidlib.data.loaders import letterbox_cache
    from covidlib.models.registry import get_spec
    from covidlib.transforms.augment import BatchTransform

    config = read_run_config(run_dir)
    folds = [fold] if fold is not None else finished_folds(run_dir)
    if not folds:
        raise FileNotFoundError(f"{run_dir} has no finished fold yet; run `covidlib cv` first.")
    canvas = (int(config["canvas"][0]), int(config["canvas"][1]))
    files = [str(Path(p).resolve()) for p in paths]
    cache = letterbox_cache(files, canvas, persist=False)
    mean, std = get_spec(config["model"]).normalization
    normalize = BatchTransform(None, mean=mean, std=std)
    probabilities = np.zeros(len(files))
    with torch.inference_mode():
        for k in folds:
            model = load_fold_model(run_dir, k)
            for start in range(0, len(files), PREDICT_BATCH):  # bounded memory for many files
                pixels = np.asarray(cache.pixels[start : start + PREDICT_BATCH])
                logits = model(normalize(torch.from_numpy(pixels)[:, None]))
                probabilities[start : start + len(pixels)] += (
                    torch.sigmoid(logits.float()).reshape(-1).numpy() / len(folds)
                )
    labels = (probabilities >= threshold).astype(int)
    table = pd.DataFrame(
        {
            "path": [str(p) for p in paths],
            "probability": probabilities,
            "label": labels,
            "label_name": np.where(labels == 1, "COVID", "non-COVID"),
        }
    )
    table.attrs["folds"] = folds
    return table
