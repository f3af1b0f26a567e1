"""Penultimate features of any of the 12 networks, and the inputs of a run's fold models.

Every registry model ends in one linear layer (``head_layer``); its input is the pooled
penultimate feature vector of ``feature_dim`` numbers (512 for ResNet18, 2048 for
InceptionV3, 1664 for DenseNet169). A forward hook on the head reads that input, so the
same code serves the torchvision and timm models (SqueezeNet's head is a 1x1 convolution:
its input map is averaged over positions, which is what its average pool does after it).

Example:
    >>> import numpy as np
    >>> from covidlib.models.factory import create_model
    >>> model = create_model("resnet18").eval()
    >>> pixels = np.zeros((3, 40, 56), np.uint8)
    >>> extract_features(model, "resnet18", pixels, batch_size=2).shape
    (3, 512)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from covidlib.engine.readers import RunFolderError
from covidlib.engine.runs import RunFolder, run_identity

__all__ = [
    "FEATURE_BATCH",
    "FeatureSet",
    "RunInputs",
    "extract_features",
    "normalized_batch",
    "run_features",
    "run_inputs",
]

FEATURE_BATCH = 32  # images per forward pass


@dataclass(frozen=True)
class RunInputs:
    """What a run's fold models expect: the model name, canvas and normalization."""

    model: str
    canvas: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]


def run_inputs(run_dir: str | Path) -> RunInputs:
    """Return the model name, letterbox canvas and normalization of a run folder.

    Raises:
        RunFolderError: ``config.json`` names no usable model and canvas.
    """
    from covidlib.models.registry import get_spec

    run = RunFolder(run_dir)
    identity = run_identity(run.read_config())
    try:
        canvas = (int(identity["canvas"][0]), int(identity["canvas"][1]))
        name = get_spec(str(identity["model"])).name
    except (TypeError, ValueError, IndexError, KeyError) as error:
        raise RunFolderError(
            f"{run.config_file} names no usable model and canvas ({error}); restore it, or "
            f"delete the run folder {run_dir} to start over"
        ) from None
    mean, std = get_spec(name).normalization
    return RunInputs(name, canvas, tuple(mean), tuple(std))


def normalized_batch(pixels: np.ndarray, model_name: str) -> torch.Tensor:
    """Turn letterboxed uint8 pixels (N x H x W) into the model's float N x 3 x H x W input.

    Example:
        >>> normalized_batch(np.zeros((2, 8, 8), np.uint8), "resnet18").shape
        torch.Size([2, 3, 8, 8])
    """
    from covidlib.models.registry import get_spec
    from covidlib.transforms.augment import BatchTransform

    mean, std = get_spec(model_name).normalization
    batch = torch.from_numpy(np.ascontiguousarray(pixels))[:, None]
    return BatchTransform(None, mean=mean, std=std)(batch)


def extract_features(
    model: nn.Module,
    model_name: str,
    pixels: np.ndarray,
    *,
    batch_size: int = FEATURE_BATCH,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Return the penultimate features (N x ``feature_dim``, float32) of letterboxed images.

    Args:
        model: a registry model (eval mode is set here; its device is changed to ``device``).
        model_name: its registry name (the head's path comes from the registry).
        pixels: uint8 N x H x W letterboxed images (e.g. ``letterbox_cache(...).pixels``).
        batch_size: images per forward pass.
        device: ``"cpu"``, ``"cuda"``...
    """
    from covidlib.models.factory import get_module
    from covidlib.models.registry import get_spec

    spec = get_spec(model_name)
    head = get_module(model, spec.head_layer)
    captured: list[torch.Tensor] = []

    def grab(_module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        value = inputs[0]
        captured.append(value.mean(dim=(2, 3)) if value.dim() == 4 else value.flatten(1))

    model.eval().to(device)
    chunks = []
    handle = head.register_forward_pre_hook(grab)
    try:
        with torch.inference_mode():
            for start in range(0, len(pixels), batch_size):
                batch = normalized_batch(pixels[start:start + batch_size], spec.name)
                captured.clear()
                model(batch.to(device))
                chunks.append(captured[0].float().cpu().numpy())
    finally:
        handle.remove()
    if not chunks:
        return np.zeros((0, spec.feature_dim), np.float32)
    features = np.concatenate(chunks)
    if features.shape[1] != spec.feature_dim:
        raise ValueError(
            f"{spec.name}: the head's input has {features.shape[1]} features, the registry "
            f"says {spec.feature_dim}; check covidlib/tables/models.csv"
        )
    return features


@dataclass(frozen=True)
class FeatureSet:
    """Features of a run's images under one fold model.

    Attributes:
        features: N x ``feature_dim`` float32.
        images: one row per image: ``path``, ``label`` (1 = COVID), ``split``
            (``"train"`` or ``"test"`` for this fold).
        model: registry name. fold: the fold whose model made the features.
    """

    features: np.ndarray
    images: pd.DataFrame
    model: str
    fold: int


def run_features(
    run_dir: str | Path,
    fold: int = 0,
    *,
    paths: Sequence[str | Path] | None = None,
    device: str | torch.device = "cpu",
    batch_size: int = FEATURE_BATCH,
) -> FeatureSet:
    """Penultimate features of a run's images (its ``folds.csv``) under fold ``fold``'s model.

    Args:
        run_dir: a run folder of ``covidlib cv``.
        fold: the fold model to use; its test images get ``split="test"``.
        paths: only these images (default: every image of the run).
        device: where the forward passes run.
        batch_size: images per forward pass.

    Raises:
        RunFolderError: no such finished fold, or it fails verification.
    """
    from covidlib.data.cache import letterbox_cache
    from covidlib.engine.predict import load_fold_model

    inputs = run_inputs(run_dir)
    images = RunFolder(run_dir).read_folds()
    if paths is not None:
        wanted = {str(Path(p).resolve()) for p in paths}
        images = images[images["path"].map(lambda p: str(Path(p).resolve()) in wanted)]
    images = images.reset_index(drop=True)
    model = load_fold_model(run_dir, fold)
    pixels = letterbox_cache(list(images["path"]), inputs.canvas, persist=False).pixels
    features = extract_features(model, inputs.model, pixels, batch_size=batch_size, device=device)
    table = pd.DataFrame({
        "path": images["path"].astype(str),
        "label": images["label"].astype(int),
        "split": np.where(images["fold"].to_numpy() == fold, "test", "train"),
    })
    return FeatureSet(features, table, inputs.model, fold)
