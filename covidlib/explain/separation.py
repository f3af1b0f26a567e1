"""Does training separate the classes? t-SNE/PCA separation of a trained and an untrained model.

A t-SNE picture of two clusters says little unless the same network *before training*
does not draw them too (random convolutional features already separate images by
brightness and texture). :func:`separation_study` embeds the penultimate features of a
run's images under fold ``fold``'s trained model and under the untrained network it started
from (the run's initial weights: random with the run's seed, or the weights file it named),
and scores both with :func:`covidlib.explain.embedding.separation_report` (silhouette and
5-NN accuracy, in the 2-D map and in the feature space).

Example:
    >>> study_keys()
    ('trained', 'untrained')
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["initial_model", "separation_study", "study_keys"]


def study_keys() -> tuple[str, str]:
    """The two models a separation study compares."""
    return ("trained", "untrained")


def initial_model(config: dict[str, Any]) -> Any:
    """The network a run started from: its ``weights`` (``random``: seeded by its ``seed``).

    Example:
        >>> model = initial_model({"model": "squeezenet", "weights": "random", "seed": 0})
        >>> type(model).__name__
        'SqueezeNet'
    """
    import torch

    from covidlib.models.factory import create_model

    weights = str(config.get("weights", "random"))
    torch.manual_seed(int(config.get("seed", 0) or 0))
    if weights in ("random", "None", "none", "False"):
        return create_model(str(config["model"]))
    if weights == "imagenet":
        return create_model(str(config["model"]), pretrained=True)
    return create_model(str(config["model"]), pretrained=weights)


def separation_study(
    run_dir: str | Path,
    fold: int = 0,
    *,
    method: str = "tsne",
    device: str = "cpu",
    seed: int = 0,
    with_points: bool = False,
) -> dict[str, Any]:
    """Separation scores of the trained fold model and of the untrained network.

    Returns:
        ``model``, ``fold``, ``method``, ``n_images``, ``n_train``, ``n_test`` and, for
        ``trained`` and ``untrained``, ``{"embedding": {silhouette, knn_accuracy},
        "features": {...}}``; with ``with_points`` also the 2-D points with their ``label``
        and ``split`` (no paths), to draw the figure from the stored result.
    """
    from covidlib.data.cache import letterbox_cache
    from covidlib.engine.predict import load_fold_model
    from covidlib.engine.runs import RunFolder
    from covidlib.explain.embedding import embed, separation_report
    from covidlib.explain.features import extract_features, run_inputs

    run = RunFolder(run_dir)
    config = run.read_config()
    inputs = run_inputs(run_dir)
    images = run.read_folds().reset_index(drop=True)
    labels = images["label"].astype(int).to_numpy()
    split = np.where(images["fold"].to_numpy() == fold, "test", "train")
    pixels = letterbox_cache(list(images["path"]), inputs.canvas, persist=False).pixels
    models = {"trained": load_fold_model(run_dir, fold),
              "untrained": initial_model({**config, "model": inputs.model}).eval()}
    result: dict[str, Any] = {
        "model": inputs.model, "fold": fold, "method": method, "n_images": int(len(labels)),
        "n_train": int((split == "train").sum()), "n_test": int((split == "test").sum()),
    }
    for name, model in models.items():
        features = extract_features(model, inputs.model, pixels, device=device)
        points = embed(features, method, seed=seed)
        result[name] = separation_report(features, points, labels)
        if with_points:
            result[name]["points"] = {
                "x": np.round(points[:, 0], 3).tolist(), "y": np.round(points[:, 1], 3).tolist(),
                "label": labels.tolist(), "split": split.tolist(),
            }
    return result
