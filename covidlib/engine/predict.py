"""Predicting with the fold models of a run folder, after verifying them.

A fold's ``model.pt`` is used only when its sha256 matches ``files.json`` and the fold was
trained for the run's ``config.json`` as it is now (model name, canvas and the config's
digest): an edited config or a damaged file is an error naming the file or key, never a
silent mismatch.

Example:
    >>> import tempfile
    >>> from covidlib.data.phantom import generate_phantom
    >>> from covidlib.models.factory import create_model
    >>> root = generate_phantom(tempfile.mkdtemp(), n=4, seed=0)
    >>> image = sorted(root.glob("*/*.png"))[0]
    >>> run = RunFolder(tempfile.mkdtemp())
    >>> config = {"model": "squeezenet", "canvas": [64, 48]}
    >>> _ = run.write_config(config)
    >>> files = run.fold(0)
    >>> files.begin(config)
    >>> table = pd.DataFrame({"path": ["a.png"], "label": [1], "probability": [0.5], "fold": 0})
    >>> epochs = [{"epoch": 0, "train_loss": 0.7, "lr": 3e-4, "seconds": 1.0}]
    >>> weights = create_model("squeezenet").state_dict()
    >>> files.write_results(weights, table, {"fold": 0, "accuracy": 0.5}, epochs)
    >>> result = predict_images(run.path, [image])
    >>> result.columns.tolist(), result.attrs["folds"]
    (['path', 'probability', 'label', 'label_name'], [0])
    >>> bool(result["probability"].between(0, 1).all())
    True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from covidlib.engine.readers import RunFolderError
from covidlib.engine.runs import RunFolder, run_identity

PREDICT_BATCH = 32  # images per forward pass in predict_images


def check_threshold(threshold: float) -> float:
    """Return ``threshold`` as a float if it is a probability in [0, 1].

    Raises:
        ValueError: otherwise, naming the value.

    Example:
        >>> check_threshold(0.5)
        0.5
        >>> check_threshold(2)
        Traceback (most recent call last):
        ...
        ValueError: threshold must be a probability between 0 and 1 (got 2).
    """
    value = float(threshold)
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"threshold must be a probability between 0 and 1 (got {threshold}).")
    return value


def usable_folds(run_dir: str | Path) -> list[int]:
    """Return the folds whose ``files.json`` records finished results (not yet verified)."""
    run = RunFolder(run_dir)
    return [k for k in run.fold_numbers() if run.fold(k).has_results()]


def load_fold_model(run_dir: str | Path, fold: int) -> torch.nn.Module:
    """Return fold ``fold``'s verified trained model (CPU, eval mode).

    Raises:
        RunFolderError: the fold is not finished, its ``model.pt`` fails its checksum, or it
            was trained for another ``config.json`` (naming the file or key).
    """
    from covidlib.models.factory import create_model

    run = RunFolder(run_dir)
    config = run.read_config()
    files = run.fold(fold)
    if not files.has_results():
        problems = files.problems()
        reason = f" ({problems[0]})" if problems else ""
        raise RunFolderError(
            f"fold {fold} of {run_dir} has no trained model{reason}; finished folds: "
            f"{run.finished_folds()}. Run `covidlib cv` to train it."
        )
    files.check_run(config)
    files.verify(files.model)
    model_name = run_identity(config)["model"]
    model = create_model(str(model_name), pretrained=False)
    try:
        state = torch.load(files.model, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
    except Exception as error:  # torch raises many types for a file it cannot use
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise RunFolderError(
            f"cannot load {files.model} into a {model_name}: {first_line}; delete {files.dir} "
            "and run `covidlib cv` to retrain the fold"
        ) from None
    return model.eval()


def _letterboxed(paths: Sequence[str], canvas: tuple[int, int]) -> np.ndarray:
    """Decode and letterbox images with the training cache's own code (uint8, N x H x W)."""
    from covidlib.data.cache import letterbox_cache

    return np.asarray(letterbox_cache(list(paths), canvas, persist=False).pixels)


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
        fold: use this fold's model; ``None`` averages every finished fold's model.
        threshold: a probability at or above it is labelled COVID (within [0, 1]).

    Returns:
        DataFrame with ``path``, ``probability``, ``label`` (1 = COVID) and ``label_name``;
        ``attrs["folds"]`` lists the models used.

    Raises:
        RunFolderError: no finished fold, or a fold model fails verification.
        ValueError: a threshold outside [0, 1].
    """
    from covidlib.models.registry import get_spec
    from covidlib.transforms.augment import BatchTransform

    threshold = check_threshold(threshold)
    run = RunFolder(run_dir)
    config = run.read_config()
    identity = run_identity(config)
    try:
        canvas = (int(identity["canvas"][0]), int(identity["canvas"][1]))
        mean, std = get_spec(str(identity["model"])).normalization
    except (TypeError, ValueError, IndexError, KeyError) as error:
        raise RunFolderError(
            f"{run.config_file} names no usable model and canvas ({error}); restore it, or "
            f"delete the run folder {run_dir} to start over"
        ) from None
    folds = [fold] if fold is not None else usable_folds(run_dir)
    if not folds:
        raise RunFolderError(f"{run_dir} has no finished fold yet; run `covidlib cv` first.")
    models = [load_fold_model(run_dir, k) for k in folds]
    normalize = BatchTransform(None, mean=mean, std=std)
    files = [str(Path(p).resolve()) for p in paths]
    probabilities = np.zeros(len(files))
    with torch.inference_mode():
        for start in range(0, len(files), PREDICT_BATCH):  # bounded memory for many files
            pixels = normalize(torch.from_numpy(_letterboxed(files[start:start + PREDICT_BATCH],
                                                             canvas))[:, None])
            for model in models:
                logits = model(pixels)
                probabilities[start:start + len(pixels)] += (
                    torch.sigmoid(logits.float()).reshape(-1).numpy() / len(models)
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
