"""Class activation maps (Grad-CAM and relatives) for the 12 networks, with pytorch-grad-cam.

The target layer of each architecture is the registry's ``gradcam_layer`` (the last
convolutional block), the target is the single logit (``BinaryClassifierOutputTarget``:
COVID by default, or the predicted class), and every computation runs inside the
library's context manager, so its hooks are removed afterwards. Maps are computed on the
letterboxed canvas (what the network saw) and mapped back to the original image with the
letterbox :class:`~covidlib.transforms.geometry.Placement`.

pytorch-grad-cam scales every map to [0, 1] by its own maximum. A map that is zero
everywhere (no positive evidence for the target: every weighted activation is negative)
has nothing to scale: :func:`compute_cams` reads the raw map before the library scales it
and reports such a map as zero (``CamBatch.zero``, all values 0), never normalized.

Selvaraju et al. (ICCV 2017) defined Grad-CAM; Chattopadhay et al. (WACV 2018) Grad-CAM++;
Draelos and Carin (2020) HiResCAM; Wang et al. (CVPR-W 2020) Score-CAM; Muhammad and
Yeasin (IJCNN 2020) Eigen-CAM.

Example:
    >>> import numpy as np
    >>> from covidlib.models.factory import create_model
    >>> model = create_model("squeezenet").eval()
    >>> pixels = np.random.default_rng(0).integers(0, 255, (2, 48, 64), dtype=np.uint8)
    >>> result = compute_cams(model, "squeezenet", pixels)
    >>> result.maps.shape, result.maps.dtype.name, bool(result.maps.max() <= 1)
    ((2, 48, 64), 'float32', True)
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from covidlib.utils.names import UnknownNameError

if TYPE_CHECKING:
    import torch
    from matplotlib.figure import Figure
    from torch import nn

    from covidlib.transforms.geometry import Placement

__all__ = [
    "CAM_BATCH",
    "CAM_METHODS",
    "CAM_TARGETS",
    "COSTLY_METHODS",
    "CamBatch",
    "ImageCam",
    "compute_cams",
    "explain_images",
    "faithfulness",
    "leftover_hooks",
    "overlay",
    "plot_cams",
]

# Method name (as the command line takes it) -> pytorch_grad_cam class name.
CAM_METHODS: dict[str, str] = {
    "gradcam": "GradCAM",
    "gradcam++": "GradCAMPlusPlus",
    "hirescam": "HiResCAM",
    "xgradcam": "XGradCAM",
    "layercam": "LayerCAM",
    "gradcamelementwise": "GradCAMElementWise",
    "eigencam": "EigenCAM",
    "eigengradcam": "EigenGradCAM",
    "kpcacam": "KPCA_CAM",
    "shapleycam": "ShapleyCAM",
    "scorecam": "ScoreCAM",
    "ablationcam": "AblationCAM",
    "randomcam": "RandomCAM",
}
# One forward pass per channel of the target layer: tests and on demand, not the book build.
COSTLY_METHODS: tuple[str, ...] = ("scorecam", "ablationcam")
CAM_TARGETS: tuple[str, ...] = ("covid", "predicted")
CAM_BATCH = 8  # images per CAM call (the backward pass keeps the activations)


def _method_class(method: str) -> Any:
    """The library's CAM class of ``method``, subclassed to keep each raw map's peak."""
    key = method.strip().lower()
    if key not in CAM_METHODS:
        raise UnknownNameError("CAM method", method, CAM_METHODS, "CAM_METHODS lists them")
    base = getattr(importlib.import_module("pytorch_grad_cam"), CAM_METHODS[key])

    class PeakRecording(base):  # type: ignore[misc, valid-type]
        # The library scales every map to [0, 1]; a map with no positive value comes out all
        # zero or noise, so the raw peak is read here, before that scaling.
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.raw_peaks: list[np.ndarray] = []

        def get_cam_image(self, *args: Any, **kwargs: Any) -> np.ndarray:
            raw = np.asarray(super().get_cam_image(*args, **kwargs))
            self.raw_peaks.append(np.maximum(raw, 0).reshape(len(raw), -1).max(axis=1))
            return raw

    PeakRecording.__name__ = PeakRecording.__qualname__ = f"PeakRecording{base.__name__}"
    return PeakRecording


def leftover_hooks(model: nn.Module) -> list[str]:
    """Names of the modules that still carry forward or backward hooks.

    Example:
        >>> from torch import nn
        >>> layer = nn.Linear(2, 1)
        >>> handle = layer.register_forward_hook(lambda *args: None)
        >>> leftover_hooks(layer), handle.remove(), leftover_hooks(layer)
        ([''], None, [])
    """
    return [
        name for name, module in model.named_modules()
        if module._forward_hooks or module._forward_pre_hooks or module._backward_hooks
        or getattr(module, "_backward_pre_hooks", None)
    ]


@dataclass(frozen=True)
class CamBatch:
    """CAMs of a batch of letterboxed images.

    Attributes:
        maps: N x H x W float32 in [0, 1] on the canvas (all 0 where ``zero``).
        zero: N booleans: the raw map had no positive value (nothing to normalize).
        probabilities: N COVID probabilities of the model.
        method: the CAM method's name. target: ``"covid"`` or ``"predicted"``.
    """

    maps: np.ndarray
    zero: np.ndarray
    probabilities: np.ndarray
    method: str
    target: str


def compute_cams(
    model: nn.Module,
    model_name: str,
    pixels: np.ndarray,
    *,
    method: str = "gradcam",
    target: str = "covid",
    batch_size: int = CAM_BATCH,
    device: str | torch.device = "cpu",
) -> CamBatch:
    """Compute one CAM per letterboxed image at the registry's target layer.

    Args:
        model: a registry model (set to eval mode and moved to ``device`` here).
        model_name: its registry name (gives the target layer and the normalization).
        pixels: uint8 N x H x W letterboxed images.
        method: a key of :data:`CAM_METHODS` (``"gradcam"``, ``"gradcam++"``, ...).
        target: ``"covid"`` explains the COVID logit; ``"predicted"`` the predicted class
            (the negated logit for images predicted non-COVID).
        batch_size: images per CAM call.
        device: where it runs.

    Raises:
        ValueError: an unknown method or target.
    """
    import torch
    from pytorch_grad_cam.utils.model_targets import BinaryClassifierOutputTarget

    from covidlib.explain.features import normalized_batch
    from covidlib.models.factory import get_module
    from covidlib.models.registry import get_spec

    cam_class = _method_class(method)
    if target not in CAM_TARGETS:
        raise ValueError(f"target must be one of {CAM_TARGETS}, got {target!r}")
    spec = get_spec(model_name)
    layer = get_module(model, spec.gradcam_layer)
    model.eval().to(device)
    maps, zeros, probabilities = [], [], []
    for start in range(0, len(pixels), batch_size):
        batch = normalized_batch(pixels[start:start + batch_size], spec.name).to(device)
        with torch.inference_mode():
            logits = model(batch).float().reshape(-1).cpu()
        probabilities.append(torch.sigmoid(logits).numpy())
        categories = [1 if target == "covid" or logit >= 0 else 0 for logit in logits.tolist()]
        with cam_class(model=model, target_layers=[layer]) as cam:
            scaled = cam(input_tensor=batch,
                         targets=[BinaryClassifierOutputTarget(c) for c in categories])
            raw_max = cam.raw_peaks
        model.zero_grad(set_to_none=True)
        zero = raw_max[0] <= 0 if raw_max else np.zeros(len(batch), bool)
        scaled = np.clip(np.nan_to_num(np.asarray(scaled, dtype=np.float32), nan=0.0), 0, None)
        scaled[zero] = 0.0
        # The library divides by (1e-7 + max): a map with a tiny maximum comes out dim, not
        # wrong; bring its peak to 1 like every other map.
        peaks = scaled.reshape(len(scaled), -1).max(axis=1)
        live = peaks > 0
        scaled[live] /= peaks[live][:, None, None]
        maps.append(np.clip(scaled, 0.0, 1.0))
        zeros.append(zero)
    height, width = pixels.shape[1:3]
    return CamBatch(
        maps=np.concatenate(maps) if maps else np.zeros((0, height, width), np.float32),
        zero=np.concatenate(zeros) if zeros else np.zeros(0, bool),
        probabilities=np.concatenate(probabilities) if probabilities else np.zeros(0),
        method=method.strip().lower(),
        target=target,
    )


@dataclass(frozen=True)
class ImageCam:
    """The CAM of one image file, on the canvas and at the original image's size.

    Attributes:
        path: the image file. image: its decoded grayscale pixels (original size, uint8).
        map: H x W float32 in [0, 1] at the original size. canvas_map: the map the network
        made, on the letterbox canvas. zero: the map was zero everywhere. probability: the
        model's COVID probability. placement: where the image sits on the canvas.
    """

    path: str
    image: np.ndarray
    map: np.ndarray
    canvas_map: np.ndarray
    zero: bool
    probability: float
    placement: Placement


def explain_images(
    run_dir: str | Path,
    paths: Sequence[str | Path],
    fold: int = 0,
    *,
    method: str = "gradcam",
    target: str = "covid",
    device: str | torch.device = "cpu",
    batch_size: int = CAM_BATCH,
    model: nn.Module | None = None,
) -> list[ImageCam]:
    """CAMs of image files with fold ``fold``'s model of a run, mapped back to each image.

    Args:
        run_dir: a run folder of ``covidlib cv``.
        paths: image files (any size; letterboxed like the run's test images).
        fold: the fold whose model explains them.
        method, target, device, batch_size: as for :func:`compute_cams`.
        model: that fold's model when already loaded (skips loading and verifying).

    Raises:
        RunFolderError: the fold is not finished or fails verification.
    """
    from covidlib.data.cache import letterbox_cache
    from covidlib.data.images import load_grayscale
    from covidlib.engine.predict import load_fold_model
    from covidlib.explain.features import run_inputs

    inputs = run_inputs(run_dir)
    files = [str(Path(p)) for p in paths]
    if not files:
        return []
    cache = letterbox_cache(files, inputs.canvas, persist=False)
    fold_model = model if model is not None else load_fold_model(run_dir, fold)
    result = compute_cams(fold_model, inputs.model, np.asarray(cache.pixels), method=method,
                          target=target, batch_size=batch_size, device=device)
    cams = []
    for row, (path, placement) in enumerate(zip(files, cache.placements, strict=True)):
        restored = np.clip(placement.restore(result.maps[row]), 0.0, 1.0).astype(np.float32)
        cams.append(ImageCam(
            path=path,
            image=np.asarray(load_grayscale(path)),
            map=restored,
            canvas_map=result.maps[row],
            zero=bool(result.zero[row]),
            probability=float(result.probabilities[row]),
            placement=placement,
        ))
    return cams


def overlay(image: np.ndarray, cam_map: np.ndarray, image_weight: float = 0.5) -> np.ndarray:
    """The map drawn over the image (jet colours, pytorch-grad-cam's ``show_cam_on_image``).

    Args:
        image: H x W grayscale (uint8) or H x W x 3 image.
        cam_map: H x W map in [0, 1] of the same size.
        image_weight: share of the image in the blend.

    Returns:
        H x W x 3 uint8 RGB.

    Example:
        >>> overlay(np.zeros((4, 6), np.uint8), np.ones((4, 6), np.float32)).shape
        (4, 6, 3)
    """
    from pytorch_grad_cam.utils.image import show_cam_on_image

    pixels = np.asarray(image, dtype=np.float32)
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[..., None], 3, axis=2)
    pixels = pixels / 255.0 if pixels.max(initial=0) > 1 else pixels
    cam = np.clip(np.asarray(cam_map, dtype=np.float32), 0.0, 1.0)
    if cam.shape != pixels.shape[:2]:
        raise ValueError(f"map of shape {cam.shape} does not match the image {pixels.shape[:2]}")
    return np.asarray(show_cam_on_image(pixels, cam, use_rgb=True, image_weight=image_weight))


def plot_cams(
    cams: Sequence[ImageCam],
    *,
    titles: Sequence[str] | None = None,
    masks: Sequence[np.ndarray | None] | None = None,
) -> Figure:
    """The paper's layout: each image (left) next to its map over it (right).

    A lesion mask, where given, is outlined in white on both panels.
    """
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(len(cams), 2, figsize=(6, 2.8 * len(cams)), squeeze=False)
    for row, cam in enumerate(cams):
        left, right = axes[row]
        left.imshow(cam.image, cmap="gray")
        right.imshow(overlay(cam.image, cam.map))
        mask = masks[row] if masks is not None else None
        for ax in (left, right):
            if mask is not None and np.any(mask):
                ax.contour(np.asarray(mask) > 0, levels=[0.5], colors="white", linewidths=0.8)
            ax.set_axis_off()
        label = titles[row] if titles is not None else Path(cam.path).name
        zero = ", zero map" if cam.zero else ""
        left.set_title(label, fontsize=9)
        right.set_title(f"P(COVID) = {cam.probability:.2f}{zero}", fontsize=9)
    figure.tight_layout()
    return figure


def faithfulness(
    model: nn.Module,
    model_name: str,
    pixels: np.ndarray,
    maps: np.ndarray,
    *,
    percentiles: Sequence[int] = (20, 40, 60, 80),
    device: str | torch.device = "cpu",
) -> dict[str, np.ndarray]:
    """Faithfulness without masks, with ``pytorch_grad_cam.metrics``, for the COVID logit.

    ``confidence_change``: the change of the COVID logit when the image is multiplied by
    its map (``CamMultImageConfidenceChange``; higher = the map keeps what matters).
    ``road``: ROAD (Rong et al., ICML 2022), the combined most- and least-relevant-first
    score at the ``percentiles`` of removal (``ROADCombined``; higher = more faithful; each
    percentile costs two imputations per image).

    Example:
        >>> from covidlib.models.factory import create_model
        >>> pixels = np.random.default_rng(0).integers(0, 255, (1, 40, 40), dtype=np.uint8)
        >>> scores = faithfulness(create_model("squeezenet"), "squeezenet", pixels,
        ...                       np.ones((1, 40, 40), np.float32))
        >>> sorted(scores), scores["road"].shape
        (['confidence_change', 'road'], (1,))
    """
    import torch
    from pytorch_grad_cam.metrics.cam_mult_image import CamMultImageConfidenceChange
    from pytorch_grad_cam.metrics.road import ROADCombined
    from pytorch_grad_cam.utils.model_targets import BinaryClassifierOutputTarget

    from covidlib.explain.features import normalized_batch

    model.eval().to(device)
    batch = normalized_batch(pixels, model_name).to(device)
    targets = [BinaryClassifierOutputTarget(1) for _ in range(len(batch))]
    cams = np.asarray(maps, dtype=np.float32)
    with torch.no_grad(), warnings.catch_warnings():
        # ROAD's imputer wraps torch tensors in numpy calls (a NumPy 2 deprecation, upstream)
        warnings.simplefilter("ignore", DeprecationWarning)
        change = CamMultImageConfidenceChange()(batch, cams, targets, model)
        road = ROADCombined(percentiles=list(percentiles))(batch, cams, targets, model)
    return {"confidence_change": np.asarray(change, dtype=float).reshape(-1),
            "road": np.asarray(road, dtype=float).reshape(-1)}
