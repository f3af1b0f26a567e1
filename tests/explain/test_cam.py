"""Grad-CAM for all 12 architectures, zero maps, hooks, and the map back on the original."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from covidlib.explain.cam import (
    CAM_METHODS,
    compute_cams,
    leftover_hooks,
    overlay,
)
from covidlib.models.factory import create_model
from covidlib.models.registry import get_spec, list_models
from covidlib.transforms.geometry import letterbox

# A fifth of the custom canvas (InceptionV3: 0.45) leaves a last feature map of at least
# 2 x 2 cells, so that a map can vary at all.
SCALES = {"inceptionv3": 0.45}


def _pixels(canvas: tuple[int, int], n: int = 2, seed: int = 0) -> np.ndarray:
    width, height = canvas
    return np.random.default_rng(seed).integers(0, 256, (n, height, width), dtype=np.uint8)


@pytest.mark.parametrize("name", list_models())
def test_gradcam_every_architecture(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name).eval()
    with torch.no_grad():  # without a bias the predicted class's map has a positive mean
        model.get_submodule(get_spec(name).head_layer).bias.zero_()
    canvas = get_spec(name).canvas(SCALES.get(name, 0.2))
    pixels = _pixels(canvas, n=1)
    first = compute_cams(model, name, pixels, target="predicted")
    assert first.maps.shape == (1, canvas[1], canvas[0])
    assert np.isfinite(first.maps).all()
    assert first.maps.min() >= 0 and first.maps.max() <= 1
    assert not first.zero[0], f"{name}: the map was zero"
    assert np.ptp(first.maps[0]) > 0.1, f"{name}: a constant map"
    assert leftover_hooks(model) == []
    second = compute_cams(model, name, pixels, target="predicted")  # hooks were released
    np.testing.assert_allclose(second.maps, first.maps, atol=1e-5)
    assert leftover_hooks(model) == []
    assert all(p.grad is None for p in model.parameters())


def test_zero_map_is_reported_not_normalized() -> None:
    torch.manual_seed(0)
    model = create_model("resnet18").eval()
    head = model.get_submodule("fc")
    with torch.no_grad():  # every feature is >= 0 after ReLU: a negative head never points
        head.weight.fill_(-1.0)
        head.bias.zero_()
    result = compute_cams(model, "resnet18", _pixels((64, 64)), target="covid")
    assert result.zero.all()
    assert not result.maps.any()


@pytest.mark.parametrize("method", ["gradcam++", "hirescam", "eigencam", "scorecam"])
def test_other_methods_by_name(method: str) -> None:
    torch.manual_seed(0)
    model = create_model("squeezenet").eval()
    result = compute_cams(model, "squeezenet", _pixels((40, 32), n=1), method=method)
    assert result.maps.shape == (1, 32, 40) and result.method == method
    assert np.isfinite(result.maps).all()
    assert leftover_hooks(model) == []


def test_unknown_method_offers_close_matches() -> None:
    with pytest.raises(ValueError, match="'gradcm': did you mean gradcam"):
        compute_cams(create_model("squeezenet"), "squeezenet", _pixels((40, 40)), method="gradcm")
    assert "scorecam" in CAM_METHODS


def test_map_back_to_original_size() -> None:
    image = np.random.default_rng(1).integers(0, 256, (90, 160), dtype=np.uint8)
    canvas, placement = letterbox(image, (64, 64))
    model = create_model("squeezenet").eval()
    result = compute_cams(model, "squeezenet", canvas[None], target="predicted")
    restored = placement.restore(result.maps[0])
    assert restored.shape == image.shape
    assert overlay(image, np.clip(restored, 0, 1)).shape == (90, 160, 3)
