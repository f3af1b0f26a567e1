"""Tests for covidlib.transforms: letterbox geometry, placement, masks, augmentation."""

from __future__ import annotations

import random
from dataclasses import FrozenInstanceError, replace

import numpy as np
import pytest
import torch
from PIL import Image

from covidlib.config import AugmentConfig
from covidlib.transforms import (
    BatchTransform,
    augment_batch,
    center_crop,
    letterbox,
    letterbox_mask,
    normalize_batch,
    resize_to_canvas,
    stretch,
)
from covidlib.transforms.augment import IMAGENET_MEAN, IMAGENET_STD

CANVASES = [(349, 253), (331, 267), (327, 231), (335, 255), (321, 225), (64, 64), (7, 300)]


def _random_sizes(count: int, seed: int) -> list[tuple[int, int]]:
    rng = random.Random(seed)
    sizes = [(1, 400), (400, 1), (1, 1), (2, 3)]
    while len(sizes) < count:
        sizes.append((rng.randint(1, 700), rng.randint(1, 700)))
    return sizes


SIZES = _random_sizes(40, seed=3)


@pytest.mark.parametrize("canvas", CANVASES)
def test_letterbox_output_is_exactly_the_canvas_and_keeps_aspect(canvas: tuple[int, int]) -> None:
    for width, height in SIZES:
        image = np.full((height, width), 200, dtype=np.uint8)
        out, placement = letterbox(image, canvas, fill=7)
        assert out.shape == (canvas[1], canvas[0])
        content_w, content_h = placement.content_size
        assert 1 <= content_w <= canvas[0] and 1 <= content_h <= canvas[1]
        # one side fills the canvas; the other keeps the aspect ratio within one pixel
        assert content_w == canvas[0] or content_h == canvas[1]
        if content_w == canvas[0]:
            assert abs(content_h - height * canvas[0] / width) <= 1 or content_h == 1
        else:
            assert abs(content_w - width * canvas[1] / height) <= 1 or content_w == 1
        left, top, right, bottom = placement.box
        assert np.all(out[top:bottom, left:right] == 200)
        padding = np.ones(out.shape, dtype=bool)
        padding[top:bottom, left:right] = False
        assert np.all(out[padding] == 7)


@pytest.mark.parametrize("size", [(1, 400), (400, 1), (5000, 3)])
def test_extreme_aspect_ratios_give_a_valid_canvas(size: tuple[int, int]) -> None:
    out, placement = letterbox(Image.new("L", size, 255), (349, 253))
    assert out.size == (349, 253)
    assert min(placement.content_size) >= 1
    assert np.asarray(out).max() == 255


@pytest.mark.parametrize(
    "make",
    [
        lambda: Image.new("L", (30, 10), 9),
        lambda: Image.new("RGB", (30, 10), (9, 9, 9)),
        lambda: np.full((10, 30), 9, dtype=np.uint8),
        lambda: np.full((10, 30, 3), 9.0, dtype=np.float32),
        lambda: torch.full((3, 10, 30), 9, dtype=torch.uint8),
        lambda: torch.full((2, 1, 10, 30), 9.0),
    ],
)
@pytest.mark.parametrize("function", [letterbox, stretch, center_crop])
def test_same_type_in_and_out(make, function) -> None:
    image = make()
    out, placement = function(image, (20, 20))
    assert type(out) is type(image)
    if isinstance(image, Image.Image):
        assert out.mode == image.mode and out.size == (20, 20)
    elif isinstance(image, np.ndarray):
        assert out.dtype == image.dtype and out.shape[:2] == (20, 20)
        assert out.shape[2:] == image.shape[2:]
    else:
        assert out.dtype == image.dtype and out.shape == image.shape[:-2] + (20, 20)
    assert placement.canvas_size == (20, 20)


def test_stretch_and_crop_fill_the_canvas_without_padding() -> None:
    image = np.full((10, 40), 100, dtype=np.uint8)
    stretched, p_stretch = stretch(image, (20, 20), fill=0)
    cropped, p_crop = center_crop(image, (20, 20), fill=0)
    assert np.all(stretched == 100) and np.all(cropped == 100)
    assert p_stretch.scale == (0.5, 2.0)
    assert p_crop.box == (-30, 0, 50, 20)
    assert p_crop.visible_box == (0, 0, 20, 20)


def test_rgb_fill_per_channel() -> None:
    out, _ = letterbox(np.zeros((10, 40, 3), np.uint8), (20, 20), fill=(1, 2, 3))
    assert out[0, 0].tolist() == [1, 2, 3]
    pil, _ = letterbox(Image.new("RGB", (40, 10)), (20, 20), fill=(1, 2, 3))
    assert pil.getpixel((0, 0)) == (1, 2, 3)


@pytest.mark.parametrize("size", [(37, 91), (500, 120), (64, 64)])
@pytest.mark.parametrize("function", [letterbox, stretch, center_crop])
def test_placement_maps_points_back_within_one_pixel(size, function) -> None:
    _, placement = function(np.zeros(size[::-1], np.uint8), (349, 253))
    rng = np.random.default_rng(0)
    xs, ys = rng.uniform(0, size[0], 50), rng.uniform(0, size[1], 50)
    cx, cy = placement.to_canvas(xs, ys)
    bx, by = placement.to_original(cx, cy)
    assert np.allclose(bx, xs, atol=1e-6) and np.allclose(by, ys, atol=1e-6)
    # a marked pixel lands where the placement says (within one original pixel)
    for x, y in [(0, 0), (size[0] - 1, size[1] - 1), (size[0] // 2, size[1] // 3)]:
        marker = np.zeros(size[::-1], np.uint8)
        marker[y, x] = 255
        out, _ = function(marker, (349, 253), resample="nearest")
        hits = np.argwhere(out == 255)
        if hits.size == 0:  # cropped away or shrunk out (centre crop / strong downscale)
            continue
        hy, hx = hits.mean(axis=0)
        ox, oy = placement.to_original(hx + 0.5, hy + 0.5)
        assert abs(ox - (x + 0.5)) <= 1 / min(placement.scale) + 1
        assert abs(oy - (y + 0.5)) <= 1 / min(placement.scale) + 1


def test_placement_maps_canvas_corner_to_original_corner() -> None:
    _, placement = letterbox(np.zeros((100, 300), np.uint8), (349, 253))
    left, top, right, bottom = placement.box
    assert placement.to_original(left, top) == (0.0, 0.0)
    x, y = placement.to_original(right, bottom)
    assert abs(x - 300) < 1e-9 and abs(y - 100) < 1e-9
    assert placement.box_to_original(placement.box) == (0.0, 0.0, 300.0, 100.0)


@pytest.mark.parametrize("size", [(123, 77), (60, 200), (349, 253)])
def test_mask_and_image_stay_aligned(size: tuple[int, int]) -> None:
    width, height = size
    image = np.zeros((height, width), np.uint8)
    mask = np.zeros((height, width), np.uint8)
    box = (width // 4, height // 3, width // 2, height // 2)  # left, top, right, bottom
    image[box[1] : box[3], box[0] : box[2]] = 255
    mask[box[1] : box[3], box[0] : box[2]] = 255
    out_image, p_image = letterbox(image, (140, 101))
    out_mask, p_mask = letterbox_mask(mask, (140, 101))
    assert p_image == p_mask
    assert set(np.unique(out_mask).tolist()) <= {0, 255}
    bright = out_image > 127
    inside = out_mask == 255
    # the thresholded image and the nearest-neighbour mask differ only on the edge pixels
    assert np.sum(bright ^ inside) <= 2 * (bright.sum(axis=0).max() + bright.sum(axis=1).max())
    expected = p_mask.box_to_canvas(box)
    ys, xs = np.nonzero(inside)
    assert abs(xs.min() - expected[0]) <= 1 and abs(xs.max() + 1 - expected[2]) <= 1
    assert abs(ys.min() - expected[1]) <= 1 and abs(ys.max() + 1 - expected[3]) <= 1


def test_bool_mask_stays_bool() -> None:
    mask = np.zeros((10, 30), bool)
    mask[2:5, 3:9] = True
    out, _ = letterbox(mask, (60, 60))
    assert out.dtype == bool and out.any()


def test_restore_maps_a_canvas_map_back_onto_the_original() -> None:
    image = np.zeros((50, 200), np.float32)
    image[10:20, 30:60] = 1.0
    out, placement = letterbox(image, (100, 100), resample="nearest")
    restored = placement.restore(out, resample="nearest")
    assert restored.shape == image.shape
    assert np.mean(restored == image) > 0.97


@pytest.mark.parametrize("size", [(0, 10), (10, 0), (-1, 5), (3.5, 4), "349x253", (1, 2, 3), None])
def test_bad_canvas_is_a_value_error_naming_it(size) -> None:
    with pytest.raises(ValueError, match="canvas size"):
        letterbox(np.zeros((4, 4), np.uint8), size)


@pytest.mark.parametrize("image", ["scan.png", [[1, 2]], 3.0, None])
def test_non_image_is_a_type_error(image) -> None:
    with pytest.raises(TypeError, match="PIL image"):
        letterbox(image, (10, 10))


@pytest.mark.parametrize(
    "image", [np.zeros((0, 5), np.uint8), np.zeros((5, 0, 3)), torch.zeros(3, 4, 0)]
)
def test_zero_size_image_is_a_value_error(image) -> None:
    with pytest.raises(ValueError, match="zero size"):
        letterbox(image, (10, 10))


def test_unknown_mode_and_resample() -> None:
    with pytest.raises(ValueError, match="mode"):
        resize_to_canvas(np.zeros((4, 4)), (2, 2), mode="squash")
    with pytest.raises(ValueError, match="resample"):
        letterbox(np.zeros((4, 4)), (2, 2), resample="lanczos")  # type: ignore[arg-type]


def test_normalize_batch_uses_imagenet_statistics() -> None:
    x = torch.full((2, 1, 4, 4), 255, dtype=torch.uint8)
    out = normalize_batch(x)
    assert out.shape == (2, 3, 4, 4) and out.dtype == torch.float32
    for channel in range(3):
        expected = (1.0 - IMAGENET_MEAN[channel]) / IMAGENET_STD[channel]
        assert torch.allclose(out[:, channel], torch.tensor(expected))


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
@pytest.mark.parametrize("channels", [1, 3])
def test_augmented_batches_keep_shape_and_dtype_and_differ(dtype, channels) -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(6, channels, 40, 56, generator=gen)
    x = (x * 255).to(torch.uint8) if dtype == torch.uint8 else x
    out = augment_batch(x, AugmentConfig(), torch.Generator().manual_seed(1))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert not torch.equal(out, x)
    if dtype == torch.float32:
        assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("operation", ["crop", "flip", "brightness", "contrast", "blur", "noise"])
def test_each_operation_changes_the_batch_on_its_own(operation: str) -> None:
    x = torch.rand(8, 1, 32, 48, generator=torch.Generator().manual_seed(0))
    config = AugmentConfig.only(operation, **({"flip_p": 1.0} if operation == "flip" else {}))
    if operation == "blur":
        config = AugmentConfig.only("blur", blur_p=1.0)
    out = augment_batch(x, config, torch.Generator().manual_seed(2))
    assert not torch.allclose(out, x)
    if operation == "flip":
        assert torch.equal(out, x.flip(-1))


@pytest.mark.parametrize("channels", [1, 3])
def test_noise_is_zero_mean_per_image_and_differs_between_images(channels: int) -> None:
    x = torch.full((6, channels, 64, 80), 0.5)
    config = AugmentConfig.only("noise", noise_std=0.2)
    noise = augment_batch(x, config, torch.Generator().manual_seed(3)) - x
    per_image_std = noise.flatten(1).std(dim=1)
    assert per_image_std.max() <= 0.2 + 0.01  # each image's std is drawn from [0, 0.2]
    assert noise.flatten(1).mean(dim=1).abs().max() < 0.01
    assert len({round(float(s), 4) for s in per_image_std}) == 6
    for i in range(5):
        assert not torch.allclose(noise[i] / per_image_std[i], noise[i + 1] / per_image_std[i + 1])


@pytest.mark.parametrize("shape", [(5, 1, 40, 56), (3, 3, 17, 9)])
def test_per_image_blur_matches_torchvision_image_by_image(shape: tuple[int, ...]) -> None:
    import torchvision.transforms.v2.functional as TF

    from covidlib.transforms.augment import _gaussian_blur

    x = torch.rand(*shape, generator=torch.Generator().manual_seed(0))
    sigmas = torch.tensor([0.3, 0.8, 1.5, 0.5, 1.1][: shape[0]])
    out = _gaussian_blur(x, sigmas, 5)
    for image, sigma, blurred in zip(x, sigmas, out, strict=True):
        expected = TF.gaussian_blur(image, [5, 5], [float(sigma), float(sigma)])
        torch.testing.assert_close(blurred, expected, atol=1e-5, rtol=1e-5)


def test_flip_is_applied_inside_the_crop_pass() -> None:
    x = torch.rand(6, 1, 32, 48, generator=torch.Generator().manual_seed(0))
    # a crop fraction that rounds to the whole canvas: the crop pass changes nothing itself
    config = replace(AugmentConfig.disabled(), crop_fraction=(0.999, 0.999), flip_p=1.0)
    out = augment_batch(x, config, torch.Generator().manual_seed(1))
    torch.testing.assert_close(out, x.flip(-1))


def test_disabled_config_is_identity() -> None:
    x = torch.rand(4, 1, 16, 16)
    assert torch.equal(augment_batch(x, AugmentConfig.disabled(), torch.Generator()), x)


def test_augmentation_is_per_image_not_per_batch() -> None:
    x = torch.rand(1, 1, 32, 48).expand(16, 1, 32, 48).contiguous()
    out = augment_batch(x, AugmentConfig(), torch.Generator().manual_seed(0))
    assert len({round(float(v), 5) for v in out.mean(dim=(1, 2, 3))}) > 8


def test_augmentation_is_reproducible_with_a_seeded_generator() -> None:
    x = torch.rand(4, 1, 20, 30)
    first = augment_batch(x, AugmentConfig(), torch.Generator().manual_seed(5))
    second = augment_batch(x, AugmentConfig(), torch.Generator().manual_seed(5))
    assert torch.equal(first, second)


def test_crop_keeps_the_content_aspect_ratio() -> None:
    """A centred square stays a square (up to rounding) after random crops."""
    x = torch.zeros(8, 1, 100, 140)
    x[:, :, 30:70, 50:90] = 1.0
    out = augment_batch(x, AugmentConfig.only("crop"), torch.Generator().manual_seed(0))
    for image in out:
        ys, xs = torch.nonzero(image[0] > 0.5, as_tuple=True)
        width, height = int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)
        assert abs(width - height) <= 2


def test_evaluation_transform_is_deterministic() -> None:
    x = torch.randint(0, 256, (4, 1, 20, 30), dtype=torch.uint8)
    tfm = BatchTransform(None)
    assert torch.equal(tfm(x), tfm(x))
    assert torch.equal(tfm(x), normalize_batch(x))


def test_training_transform_differs_between_calls() -> None:
    x = torch.randint(0, 256, (4, 1, 20, 30), dtype=torch.uint8)
    tfm = BatchTransform(AugmentConfig(), seed=0)
    first, second = tfm(x), tfm(x)
    assert first.shape == (4, 3, 20, 30) and not torch.equal(first, second)


@pytest.mark.parametrize(
    "changes",
    [
        {"crop_fraction": (0.0, 1.0)},
        {"crop_fraction": (0.9, 0.8)},
        {"blur_p": 1.5},
        {"flip_p": -0.1},
        {"blur_kernel_size": 4},
        {"noise_std": -0.1},
        {"brightness": 1.0},
    ],
)
def test_augment_config_rejects_bad_values(changes) -> None:
    with pytest.raises(ValueError, match=next(iter(changes))):
        AugmentConfig(**changes)


def test_augment_config_is_frozen_and_printable() -> None:
    config = AugmentConfig()
    with pytest.raises(FrozenInstanceError):
        config.blur_p = 0.5  # type: ignore[misc]
    assert config.blur_p == 0.25 and "blur_p" in config.to_dict()
    with pytest.raises(ValueError, match="unknown operation"):
        AugmentConfig.only("rotate")


def test_empty_batch_passes_through_augmentation() -> None:
    empty = torch.zeros(0, 1, 8, 8, dtype=torch.uint8)
    out = augment_batch(empty, AugmentConfig(), torch.Generator().manual_seed(0))
    assert out.shape == empty.shape and out.dtype == torch.uint8


def test_batch_transform_reseed_replays_and_shows_the_seed() -> None:
    x = torch.randint(0, 256, (3, 1, 12, 16), dtype=torch.uint8)
    tfm = BatchTransform(AugmentConfig(), seed=0)
    tfm.reseed(7)
    first = tfm(x)
    tfm.reseed(7)
    assert torch.equal(tfm(x), first) and "seed=7" in repr(tfm)
