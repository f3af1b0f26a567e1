"""Tests for covidlib.data.loaders: the fold DataLoaders over the letterbox cache."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from covidlib.config import AugmentConfig
from covidlib.data.cache import letterbox_cache
from covidlib.data.loaders import CachedImages, fold_dataloaders
from covidlib.transforms import normalize_batch

CANVAS = (24, 16)


def test_without_a_dataset_the_cache_stays_in_memory(images: pd.DataFrame) -> None:
    cache_dir = Path(os.environ["COVIDLIB_DATA"]) / "cache"
    before = set(cache_dir.iterdir()) if cache_dir.is_dir() else set()
    dls = fold_dataloaders(images, [0, 1, 2], [3], CANVAS, 2, device="cpu")
    assert dls.valid.one_batch()[0].shape == (1, 3, CANVAS[1], CANVAS[0])
    assert (set(cache_dir.iterdir()) if cache_dir.is_dir() else set()) == before
    fold_dataloaders(images, [0, 1, 2], [3], CANVAS, 2, dataset="toy", cache_dir=cache_dir)
    new = {p.name.split("-")[0] for p in set(cache_dir.iterdir()) - before}
    assert new - {"locks"} == {"toy"}  # locks/: the build lock of letterbox_cache


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
    cache = letterbox_cache(images, CANVAS, persist=False)
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
    cache = letterbox_cache(images, CANVAS, persist=False)
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
    dls = fold_dataloaders(
        images, [0, 1, 2, 3], [5, 6], CANVAS, 2, device="cpu", mean=half, std=half
    )
    cache = letterbox_cache(images, CANVAS, persist=False)
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
