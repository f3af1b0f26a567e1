"""Tests for covidlib.data.loaders: the letterbox cache and the fold DataLoaders."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import covidlib.data.images
from covidlib.data.loaders import CachedImages, fold_dataloaders, letterbox_cache
from covidlib.transforms import AugmentConfig, letterbox, normalize_batch

CANVAS = (24, 16)


@pytest.fixture()
def images(tmp_path: Path) -> pd.DataFrame:
    """Ten small grayscale PNGs of different sizes; image i is filled with gray value 20*i."""
    rows = []
    rng = np.random.default_rng(0)
    for i in range(10):
        width, height = int(rng.integers(8, 60)), int(rng.integers(8, 60))
        folder = tmp_path / "toy" / ("COVID" if i % 2 else "non-COVID")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"img_{i:02d}.png"
        Image.new("L", (width, height), 20 * i + 10).save(path)
        mask = np.zeros((height, width), np.uint8)
        mask[: height // 2, : width // 2] = 255
        mask_path = tmp_path / "toy" / "masks" / f"img_{i:02d}.png"
        mask_path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(mask).save(mask_path)
        rows.append(
            {
                "path": str(path),
                "label": i % 2,
                "width": width,
                "height": height,
                "mask_path": str(mask_path) if i < 8 else pd.NA,
            }
        )
    return pd.DataFrame(rows)


def test_cache_holds_the_letterboxed_pixels(images: pd.DataFrame) -> None:
    cache = letterbox_cache(images, CANVAS)
    assert cache.built and cache.file is not None and cache.file.is_file()
    assert cache.pixels.shape == (10, CANVAS[1], CANVAS[0]) and cache.pixels.dtype == np.uint8
    for row, path in enumerate(images["path"]):
        expected, placement = letterbox(Image.open(path).convert("L"), CANVAS)
        assert np.array_equal(cache.pixels[row], np.asarray(expected))
        assert cache.placements[row] == placement
    assert cache.file.parent == Path(os.environ["COVIDLIB_DATA"]) / "cache"
    assert not [p for p in cache.file.parent.iterdir() if p.name.startswith(".")]


def test_second_build_reuses_the_cache_without_decoding(
    images: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = letterbox_cache(images, CANVAS)

    def refuse(path: object) -> None:
        raise AssertionError(f"decoded {path} although the cache exists")

    monkeypatch.setattr(covidlib.data.images, "load_grayscale", refuse)
    second = letterbox_cache(images, CANVAS)
    assert not second.built and second.file == first.file
    assert np.array_equal(np.asarray(second.pixels), np.asarray(first.pixels))
    # fold_dataloaders on the same index and canvas decodes nothing either
    dls = fold_dataloaders(images, [0, 1, 2, 3], [4, 5], CANVAS, 2, device="cpu")
    assert dls.train.one_batch()[0].shape == (2, 3, CANVAS[1], CANVAS[0])


def test_cache_key_follows_canvas_and_file_changes(images: pd.DataFrame) -> None:
    first = letterbox_cache(images, CANVAS)
    other_canvas = letterbox_cache(images, (16, 24))
    assert other_canvas.file != first.file and other_canvas.built
    path = Path(images["path"][3])
    Image.new("L", (30, 30), 255).save(path)
    os.utime(path, ns=(1, 1))
    changed = letterbox_cache(images, CANVAS)
    assert changed.built and changed.file != first.file
    assert changed.pixels[3].max() == 255


def test_in_memory_cache_and_threads(images: pd.DataFrame) -> None:
    on_disk = letterbox_cache(images, CANVAS)
    in_memory = letterbox_cache(images, CANVAS, persist=False, num_workers=2)
    assert in_memory.file is None and in_memory.built
    assert np.array_equal(in_memory.pixels, np.asarray(on_disk.pixels))


def test_mask_cache_uses_nearest_and_blank_missing_masks(images: pd.DataFrame) -> None:
    masks = letterbox_cache(images, CANVAS, column="mask_path", resample="nearest")
    assert set(np.unique(masks.pixels).tolist()) == {0, 255}
    assert masks.pixels[8].max() == 0 and masks.pixels[9].max() == 0
    assert masks.pixels[0].max() == 255


def test_cache_errors_name_the_problem(images: pd.DataFrame, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no column 'nope'"):
        letterbox_cache(images, CANVAS, column="nope")
    with pytest.raises(ValueError, match="canvas size"):
        letterbox_cache(images, (0, 16))
    missing = images.copy()
    missing.loc[0, "path"] = str(tmp_path / "gone.png")
    with pytest.raises(FileNotFoundError, match="gone.png"):
        letterbox_cache(missing, CANVAS)


def test_fold_dataloaders_shapes_dtypes_and_order(images: pd.DataFrame) -> None:
    train_rows, test_rows = [0, 1, 2, 3, 4, 5, 6], [9, 7, 8]
    dls = fold_dataloaders(images, train_rows, test_rows, CANVAS, 3, seed=0, device="cpu")
    from fastai.data.core import DataLoaders

    assert isinstance(dls, DataLoaders)
    for dl in (dls.train, dls.valid):
        for x, y in dl:
            assert x.dtype == torch.float32 and y.dtype == torch.float32
            assert x.shape[1:] == (3, CANVAS[1], CANVAS[0]) and x.shape[0] == y.shape[0]
    # valid: the test fold in test_rows order, not augmented, ImageNet-normalized
    xs, ys = zip(*list(dls.valid), strict=True)
    x, y = torch.cat(xs), torch.cat(ys)
    assert y.tolist() == [float(images["label"][r]) for r in test_rows]
    cache = letterbox_cache(images, CANVAS)
    expected = normalize_batch(torch.from_numpy(np.asarray(cache.pixels[test_rows]))[:, None])
    assert torch.allclose(x, expected)
    # train: every training image once per epoch (a trailing batch of one is dropped)
    labels = sorted(torch.cat([b[1] for b in dls.train]).tolist())
    assert len(labels) == 6 and set(labels) <= {0.0, 1.0}


def test_train_is_shuffled_and_augmented_valid_is_deterministic(images: pd.DataFrame) -> None:
    rows = list(range(8))
    dls = fold_dataloaders(images, rows, [8, 9], CANVAS, 8, seed=1, device="cpu")
    plain = fold_dataloaders(images, rows, [8, 9], CANVAS, 8, augment=None, seed=1, device="cpu")
    first, second = dls.train.one_batch(), dls.train.one_batch()
    assert not torch.equal(first[0], second[0])
    # the same shuffled order without augmentation differs from the augmented batch
    assert not torch.equal(plain.train.one_batch()[0], first[0])
    assert torch.equal(dls.valid.one_batch()[0], dls.valid.one_batch()[0])
    # seeded: a fresh set of loaders repeats the first batch exactly
    again = fold_dataloaders(images, rows, [8, 9], CANVAS, 8, seed=1, device="cpu")
    repeat = again.train.one_batch()
    assert torch.equal(repeat[0], first[0]) and torch.equal(repeat[1], first[1])


def test_augment_off_gives_letterbox_plus_normalize(images: pd.DataFrame) -> None:
    dls = fold_dataloaders(images, [0, 1], [2], CANVAS, 2, augment=None, device="cpu")
    x, y = dls.train.one_batch()
    cache = letterbox_cache(images, CANVAS)
    options = [
        normalize_batch(torch.from_numpy(np.asarray(cache.pixels[[a, b]]))[:, None])
        for a, b in ((0, 1), (1, 0))
    ]
    assert any(torch.allclose(x, option) for option in options)


@pytest.mark.parametrize(
    ("train", "test", "error"),
    [([], [1], ValueError), ([0, 1], [10], IndexError), ([0.5], [1], TypeError)],
)
def test_fold_dataloaders_rejects_bad_rows(images: pd.DataFrame, train, test, error) -> None:
    with pytest.raises(error, match="rows"):
        fold_dataloaders(images, train, test, CANVAS, 2, device="cpu")


def test_fastai_learner_trains_and_predicts_in_test_order(images: pd.DataFrame) -> None:
    from fastai.learner import Learner
    from fastai.losses import BCEWithLogitsLossFlat

    dls = fold_dataloaders(images, list(range(7)), [9, 8, 7], CANVAS, 4, device="cpu")
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(4, 1),
    )
    learn = Learner(dls, model, loss_func=BCEWithLogitsLossFlat())
    with learn.no_logging():
        learn.fit(1, 1e-3)
        preds, targets = learn.get_preds(ds_idx=1)
    assert preds.shape[0] == 3
    assert targets.flatten().tolist() == [float(images["label"][r]) for r in (9, 8, 7)]


def test_cached_images_batch_keeps_the_requested_order() -> None:
    pixels = np.arange(5)[:, None, None].repeat(2, 1).repeat(3, 2).astype(np.uint8)
    dataset = CachedImages(pixels, np.arange(5) % 2, rows=[4, 0, 3])
    x, y = dataset.batch([2, 0, 1])
    assert x[:, 0, 0, 0].tolist() == [3, 4, 0] and y.tolist() == [1.0, 0.0, 0.0]
    with pytest.raises(IndexError, match="row numbers"):
        CachedImages(pixels, np.zeros(5), rows=[5])


def test_augment_config_passes_through(images: pd.DataFrame) -> None:
    config = AugmentConfig.only("flip", flip_p=1.0)
    dls = fold_dataloaders(images, [0], [1], CANVAS, 1, augment=config, device="cpu")
    plain = fold_dataloaders(images, [0], [1], CANVAS, 1, augment=None, device="cpu")
    assert torch.equal(dls.train.one_batch()[0], plain.train.one_batch()[0].flip(-1))


def test_fold_dataloaders_normalize_with_the_models_statistics(images: pd.DataFrame) -> None:
    half = (0.5, 0.5, 0.5)
    dls = fold_dataloaders(images, [0, 1, 2, 3], [5, 6], CANVAS, 2, device="cpu",
                           mean=half, std=half)
    cache = letterbox_cache(images, CANVAS)
    pixels = torch.from_numpy(np.asarray(cache.pixels[[5, 6]]))[:, None]
    x = torch.cat([b[0] for b in dls.valid])
    assert torch.allclose(x, normalize_batch(pixels, half, half))
    assert torch.allclose(x, pixels.float().div(255).sub(0.5).div(0.5).expand(-1, 3, -1, -1))
    copy = dls.valid.new(shuffle=False)  # what fastai's get_preds builds
    assert torch.allclose(torch.cat([b[0] for b in copy]), x)


def test_reseed_replays_order_and_augmentation(images: pd.DataFrame) -> None:
    rows = np.arange(len(images))
    train = fold_dataloaders(images, rows, rows[:2], (40, 30), 4).train

    def one_pass(seed: int) -> list[torch.Tensor]:
        train.reseed(seed)
        return [x for x, _ in train]

    first, again, other = one_pass(5), one_pass(5), one_pass(6)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, other, strict=True))
