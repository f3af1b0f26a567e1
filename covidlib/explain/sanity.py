"""Sanity checks for saliency maps: cascading model-parameter randomization.

Adebayo et al. (NeurIPS 2018, "Sanity checks for saliency maps") ask whether a map depends
on what the model learned: re-initialize the network's layers one after the other, from the
head down to the input, and compare each step's maps with the trained model's. A method
whose maps barely change while the weights they explain are destroyed shows the image's
edges, not the model's reasons, and fails the check.

:func:`cascading_randomization` does this for one model and a batch of letterboxed images:
step 0 is the trained model (its maps compared with themselves), step k has the first k
layer groups of :func:`randomization_layers` re-initialized (each module's own
``reset_parameters``, i.e. its initial distribution). Two similarities per step, averaged
over the images: the Spearman rank correlation of the two maps' pixels (scipy; undefined,
hence left out, where a map is constant, e.g. zero) and their SSIM (scikit-image,
``data_range`` 1). :func:`randomization_record` turns the table into the stored JSON
entry; :func:`plot_randomization` draws the curves of several architectures.

Example:
    >>> from covidlib.models.factory import create_model
    >>> model = create_model("squeezenet").eval()
    >>> randomization_layers(model)[:2]
    ['classifier.1', 'features.12']
    >>> pixels = np.random.default_rng(0).integers(0, 255, (2, 40, 40), dtype=np.uint8)
    >>> table = cascading_randomization(model, "squeezenet", pixels, max_steps=2)
    >>> table["layer"].tolist(), float(table["ssim"].iloc[0])
    (['none', 'classifier.1', 'features.12'], 1.0)
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import torch
    from matplotlib.axes import Axes
    from torch import nn

__all__ = [
    "cascading_randomization",
    "map_similarity",
    "plot_randomization",
    "randomization_layers",
    "randomization_record",
    "randomize_layer",
    "run_randomization",
]

#: Dotted parts of a parameter's name that make one layer group (``layer4.1`` of ResNet18).
DEFAULT_DEPTH = 2


def randomization_layers(model: nn.Module, depth: int = DEFAULT_DEPTH) -> list[str]:
    """The model's layer groups holding parameters, from the output down to the input.

    A group is a parameter name's first ``depth`` dotted parts (``features.denseblock4``,
    ``layer4.1``, ``fc``).

    Example:
        >>> from torch import nn
        >>> randomization_layers(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Linear(2, 1)))
        ['2', '0']
    """
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}")
    groups: list[str] = []
    for name, _ in model.named_parameters():
        group = ".".join(name.split(".")[:-1][:depth]) or name
        if group not in groups:
            groups.append(group)
    return groups[::-1]


def randomize_layer(model: nn.Module, group: str, seed: int = 0) -> int:
    """Re-initialize every module in ``group`` (in place); return how many were reset.

    Modules with ``reset_parameters`` (convolutions, linear and batch-norm layers) use it;
    any other parameter of the group is drawn from N(0, 0.02^2).

    Example:
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Linear(3, 2))
        >>> before = net[0].weight.detach().clone()
        >>> randomize_layer(net, "0"), bool((net[0].weight != before).any())
        (1, True)
    """
    import torch

    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    reset = 0
    try:
        for name, module in model.named_modules():
            if not (name == group or name.startswith(group + ".")):
                continue
            own = list(module.parameters(recurse=False))
            if not own:
                continue
            with torch.no_grad():
                if hasattr(module, "reset_parameters"):
                    module.reset_parameters()
                else:
                    for parameter in own:
                        parameter.normal_(0.0, 0.02)
            reset += 1
    finally:
        torch.random.set_rng_state(generator_state)
    if reset == 0:
        raise ValueError(f"no module with parameters is named {group!r}")
    return reset


def _spearman(first: np.ndarray, second: np.ndarray) -> float:
    from scipy.stats import spearmanr

    a, b = first.ravel(), second.ravel()
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def _ssim(first: np.ndarray, second: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    side = min(first.shape)
    window = min(7, side if side % 2 else side - 1)
    if window < 3:
        return float("nan")
    return float(structural_similarity(first, second, data_range=1.0, win_size=window))


def map_similarity(reference: np.ndarray, maps: np.ndarray) -> dict[str, float]:
    """Mean rank correlation and SSIM of N maps with N reference maps (NaN-skipping).

    Example:
        >>> maps = np.random.default_rng(0).random((2, 16, 16))
        >>> map_similarity(maps, maps)
        {'rank_correlation': 1.0, 'ssim': 1.0}
    """
    ref, other = np.asarray(reference, np.float64), np.asarray(maps, np.float64)
    if ref.shape != other.shape:
        raise ValueError(f"maps of shape {other.shape} and {ref.shape} differ")
    ranks = [_spearman(a, b) for a, b in zip(ref, other, strict=True)]
    ssims = [_ssim(a, b) for a, b in zip(ref, other, strict=True)]

    def mean(values: list[float]) -> float:
        finite = [v for v in values if np.isfinite(v)]
        return round(float(np.mean(finite)), 4) if finite else float("nan")

    return {"rank_correlation": mean(ranks), "ssim": mean(ssims)}


def cascading_randomization(
    model: nn.Module,
    model_name: str,
    pixels: np.ndarray,
    *,
    method: str = "gradcam",
    target: str = "covid",
    depth: int = DEFAULT_DEPTH,
    max_steps: int | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> pd.DataFrame:
    """Maps of a model whose layers are re-initialized from the head down, step by step.

    Args:
        model: the trained registry model (left unchanged: a copy is randomized).
        model_name: its registry name (target layer, normalization).
        pixels: uint8 N x H x W letterboxed images.
        method, target, device: as for :func:`covidlib.explain.cam.compute_cams`.
        depth: dotted parts per layer group (:func:`randomization_layers`).
        max_steps: stop after this many groups (default: all, down to the input).
        seed: seeds each step's re-initialization (step k uses ``seed + k``).

    Returns:
        One row per step: ``step``, ``layer`` (the group randomized at that step, ``none``
        at step 0), ``rank_correlation``, ``ssim`` (to the trained model's maps) and
        ``zero_maps``.
    """
    from covidlib.explain.cam import compute_cams

    trained = compute_cams(model, model_name, pixels, method=method, target=target,
                           device=device)
    rows = [{"step": 0, "layer": "none", **map_similarity(trained.maps, trained.maps),
             "zero_maps": int(trained.zero.sum())}]
    randomized = copy.deepcopy(model)
    layers = randomization_layers(randomized, depth)
    for step, group in enumerate(layers[:max_steps], start=1):
        randomize_layer(randomized, group, seed + step)
        cams = compute_cams(randomized, model_name, pixels, method=method, target=target,
                            device=device)
        rows.append({"step": step, "layer": group, **map_similarity(trained.maps, cams.maps),
                     "zero_maps": int(cams.zero.sum())})
    return pd.DataFrame(rows)


def run_randomization(
    run_dir: str | Path,
    images: Sequence[str | Path],
    fold: int = 0,
    **options: Any,
) -> pd.DataFrame:
    """:func:`cascading_randomization` of a run's fold model on image files.

    The images are letterboxed to the run's canvas; ``options`` go to
    :func:`cascading_randomization`.
    """
    from covidlib.data.cache import letterbox_cache
    from covidlib.engine.predict import load_fold_model
    from covidlib.explain.features import run_inputs

    files = [str(Path(p)) for p in images]
    if not files:
        raise ValueError("no images to explain")
    inputs = run_inputs(run_dir)
    cache = letterbox_cache(files, inputs.canvas, persist=False)
    model = load_fold_model(run_dir, fold)
    return cascading_randomization(model, inputs.model, np.asarray(cache.pixels), **options)


def randomization_record(table: pd.DataFrame) -> dict[str, list[Any]]:
    """The stored JSON entry of one architecture: the columns of the table as lists.

    Example:
        >>> table = pd.DataFrame({"step": [0, 1], "layer": ["none", "fc"],
        ...                       "rank_correlation": [1.0, 0.2], "ssim": [1.0, 0.5],
        ...                       "zero_maps": [0, 0]})
        >>> randomization_record(table)["layers"]
        ['none', 'fc']
    """
    return {
        "layers": [str(v) for v in table["layer"]],
        "rank_correlation": [None if not np.isfinite(v) else float(v)
                             for v in table["rank_correlation"]],
        "ssim": [None if not np.isfinite(v) else float(v) for v in table["ssim"]],
        "zero_maps": [int(v) for v in table["zero_maps"]],
    }


def plot_randomization(curves: Mapping[str, Mapping[str, Sequence[Any]]]) -> Axes:
    """Rank correlation (solid) and SSIM (dashed) against the randomization step.

    Args:
        curves: architecture -> :func:`randomization_record` (or the stored JSON's
            ``randomization``).

    Example:
        >>> ax = plot_randomization({"m": {"layers": ["none", "fc"],
        ...                               "rank_correlation": [1.0, 0.1], "ssim": [1.0, 0.4]}})
        >>> len(ax.get_lines())  # two curves and the zero line
        3
    """
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=(7, 3.8))
    for index, (name, curve) in enumerate(curves.items()):
        colour = f"C{index}"
        steps = np.arange(len(curve["layers"]))
        ranks = [np.nan if v is None else v for v in curve["rank_correlation"]]
        ssims = [np.nan if v is None else v for v in curve["ssim"]]
        ax.plot(steps, ranks, "-o", color=colour, markersize=3, label=f"{name}: rank corr.")
        ax.plot(steps, ssims, "--", color=colour, label=f"{name}: SSIM")
    ax.axhline(0.0, color="0.6", linewidth=0.8)
    ax.set_xlabel("layer groups re-initialized, from the head down")
    ax.set_ylabel("similarity to the trained model's maps")
    ax.set_ylim(-0.2, 1.05)
    ax.legend(fontsize=7, loc="upper right")
    return ax
