"""The data path for training: fastai ``DataLoaders`` per fold over the letterbox cache.

Every image is letterboxed once per canvas (:func:`covidlib.data.cache.letterbox_cache`);
epochs then only slice that array. :func:`fold_dataloaders` wraps the cache into fastai
``DataLoaders`` for one cross-validation fold. Batches are gathered with one fancy index,
copied to the training device (pinned memory and ``non_blocking`` copies with CUDA),
augmented there batch-wise, expanded to three channels and normalized with the model's
statistics (:class:`covidlib.transforms.BatchTransform`).

Example:
    >>> import tempfile, pathlib
    >>> from covidlib.data.index import index_dataset
    >>> from covidlib.data.phantom import generate_phantom
    >>> root = generate_phantom(pathlib.Path(tempfile.mkdtemp()) / "phantom", n=6)
    >>> images = index_dataset("phantom", root).images
    >>> dls = fold_dataloaders(images, [0, 1, 2, 3], [4, 5], (40, 30), 2, device="cpu")
    >>> x, y = dls.train.one_batch()
    >>> tuple(x.shape), x.dtype, tuple(y.shape)
    ((2, 3, 30, 40), torch.float32, (2,))
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from covidlib.config import resolve_device
from covidlib.data.cache import letterbox_cache
from covidlib.utils.allocator import keep_freed_memory
from covidlib.utils.compat import quiet_fastai_import

with quiet_fastai_import():
    from fastai.data.core import DataLoaders
    from fastai.data.load import DataLoader

from covidlib.transforms.augment import (
    DEFAULT_AUGMENT,
    IMAGENET_MEAN,
    IMAGENET_STD,
    AugmentConfig,
    BatchTransform,
)


class CachedImages(torch.utils.data.Dataset):
    """Rows of a letterbox cache with their labels; items are (uint8 1xHxW, float).

    :meth:`batch` gathers many rows with one fancy index (what the loaders use).

    Example:
        >>> ds = CachedImages(np.zeros((3, 4, 5), np.uint8), np.array([0, 1, 1]), [2, 0])
        >>> ds.batch([0, 1])[0].shape, ds[0][1]
        (torch.Size([2, 1, 4, 5]), tensor(1.))
    """

    def __init__(self, pixels: np.ndarray, labels: Sequence[float] | np.ndarray, rows: Any) -> None:
        self.pixels = pixels
        self.rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        labels_array = np.asarray(labels, dtype=np.float32)
        if len(labels_array) != len(pixels):
            raise ValueError(f"{len(labels_array)} labels for {len(pixels)} cached images")
        if len(self.rows) and (self.rows.min() < 0 or self.rows.max() >= len(pixels)):
            raise IndexError(
                f"row numbers must be in 0..{len(pixels) - 1}, "
                f"got {self.rows.min()}..{self.rows.max()}"
            )
        self.labels = torch.from_numpy(labels_array[self.rows].copy())

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, item: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.batch([item])
        return x[0], y[0]

    def batch(self, items: Sequence[int] | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (uint8 Bx1xHxW, float32 B) for positions ``items`` of this dataset."""
        positions = np.asarray(items, dtype=np.int64)
        x = torch.from_numpy(np.ascontiguousarray(self.pixels[self.rows[positions]]))[:, None]
        return x, self.labels[positions]


class CachedDataLoader(DataLoader):
    """fastai ``DataLoader`` over :class:`CachedImages` with batch-wise device transforms.

    Batches are gathered with one fancy index in the main process (no per-item work, hence
    no worker processes), copied to ``device`` (pinned and non-blocking with CUDA), then
    augmented and normalized there by a :class:`~covidlib.transforms.BatchTransform`.
    On the CPU it first calls :func:`covidlib.utils.allocator.keep_freed_memory`, so that each
    batch's large tensors reuse freed memory instead of page-faulting fresh pages in.

    Example:
        >>> ds = CachedImages(np.zeros((5, 8, 8), np.uint8), np.ones(5), range(5))
        >>> x, y = CachedDataLoader(ds, augment=None, bs=2, device="cpu").one_batch()
        >>> tuple(x.shape), x.dtype, tuple(y.shape)
        ((2, 3, 8, 8), torch.float32, (2,))
    """

    def __init__(
        self,
        dataset: CachedImages | None = None,
        augment: AugmentConfig | None = None,
        seed: int = 0,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        **kwargs: Any,
    ) -> None:
        super().__init__(dataset, **kwargs)
        self.augment, self.seed = augment, seed
        self.batch_tfm = BatchTransform(augment, seed=seed, mean=mean, std=std)
        self.rng = random.Random(seed)

    def reseed(self, seed: int) -> None:
        """Make the next pass's order and augmentation depend on ``seed`` alone.

        The training engine calls it before every epoch (see
        :class:`covidlib.engine.callbacks.EpochSeeding`), so a resumed run draws what an
        uninterrupted one would have drawn.
        """
        self.seed = seed
        self.rng = random.Random(seed)
        self.batch_tfm.reseed(seed)

    def create_item(self, s: int) -> int:
        """Items are positions; :meth:`do_batch` gathers a whole batch at once."""
        return s

    def do_batch(self, b: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Gather positions ``b`` as (uint8 Bx1xHxW, float32 B) on the CPU, pinned for CUDA."""
        x, y = self.dataset.batch(list(b))
        if self.pin_memory and torch.cuda.is_available():
            x, y = x.pin_memory(), y.pin_memory()
        return x, y

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        self.randomize()
        self.before_iter()
        positions = self.get_idxs()
        for start in range(0, len(positions), self.bs):
            chunk = positions[start : start + self.bs]
            if self.drop_last and len(chunk) < self.bs:
                break
            yield self.after_batch(self.do_batch(chunk))
        self.after_iter()

    def after_batch(self, b: tuple[torch.Tensor, torch.Tensor]) -> Any:
        """Copy to the device (non-blocking), augment (train only) and normalize there."""
        x, y = b
        device = self.device if self.device is not None else torch.device("cpu")
        if device.type == "cpu":
            keep_freed_memory()  # no page faults for each batch's large tensors
        x = x.to(device, non_blocking=True)
        y = y.to(device, non_blocking=True)
        return self.batch_tfm(x), y

    def new(self, dataset: Any = None, cls: Any = None, **kwargs: Any) -> Any:
        """Copy with changes (fastai uses it for ``get_preds``); keeps augment and seed."""
        kwargs.setdefault("augment", self.augment)
        kwargs.setdefault("seed", self.seed)
        kwargs.setdefault("mean", self.batch_tfm.mean)
        kwargs.setdefault("std", self.batch_tfm.std)
        return super().new(dataset=dataset, cls=cls, **kwargs)


def _rows(rows: Any, n: int, name: str) -> np.ndarray:
    array = np.asarray(rows).reshape(-1)
    if array.size == 0:
        raise ValueError(f"{name} is empty: a fold needs at least one image")
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{name} must be positional row numbers (integers), got {array.dtype}")
    if array.min() < 0 or array.max() >= n:
        raise IndexError(
            f"{name} must be row numbers in 0..{n - 1}, got {array.min()}..{array.max()}"
        )
    return array.astype(np.int64)


def fold_dataloaders(
    images: pd.DataFrame,
    train_rows: Any,
    test_rows: Any,
    canvas: tuple[int, int],
    batch_size: int,
    *,
    dataset: str | None = None,
    augment: AugmentConfig | None = DEFAULT_AUGMENT,
    seed: int = 0,
    device: str | torch.device | None = None,
    num_workers: int = 0,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    cache_dir: str | Path | None = None,
) -> DataLoaders:
    """fastai ``DataLoaders`` for one fold: ``train`` shuffled and augmented, ``valid`` = test.

    Every image of ``images`` is letterboxed once (:func:`covidlib.data.cache.letterbox_cache`):
    into a cache file named after ``dataset`` that later calls for other folds reuse, or in
    memory when ``dataset`` is ``None``.

    Args:
        images: an index's ``images`` DataFrame (columns ``path`` and ``label``, 1 = COVID).
        train_rows: positional row numbers of the training images.
        test_rows: positional row numbers of the test fold (``dls.valid`` keeps this order).
        canvas: (width, height) of the network input.
        batch_size: images per batch.
        dataset: the dataset's registry name (``DatasetIndex.name``): the letterboxed images
            are stored in ``cache_dir`` under that name; ``None`` keeps them in memory.
        augment: training augmentation; ``None`` turns it off.
        seed: seeds the shuffling and the augmentation.
        device: ``None``/``"auto"`` = CUDA when available, else CPU.
        num_workers: threads that decode images while the cache is built (epochs decode
            nothing, so the loaders themselves need no workers).
        mean: per-channel mean of the model's pretrained weights (default ImageNet's).
        std: per-channel std of the model's pretrained weights (default ImageNet's).
        cache_dir: where a stored cache lives (default ``data_dir()/"cache"``).

    Returns:
        ``fastai.data.core.DataLoaders``; batches ``(x, y)`` with x float32 Bx3xHxW
        normalized with ``mean``/``std`` and y float32 B (1.0 = COVID), both on ``device``.

    Example:
        >>> import tempfile, pathlib
        >>> from PIL import Image
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> for i in range(4):
        ...     Image.new("L", (20 + i, 16), 60 * i).save(folder / f"{i}.png")
        >>> images = pd.DataFrame({"path": [str(folder / f"{i}.png") for i in range(4)],
        ...                        "label": [0, 1, 0, 1]})
        >>> dls = fold_dataloaders(images, [0, 1, 2], [3], (24, 16), 2, dataset="toy",
        ...                        cache_dir=folder / "cache", device="cpu")
        >>> dls.valid.one_batch()[0].shape, sorted(p.name[:4] for p in (folder / "cache").iterdir())
        (torch.Size([1, 3, 16, 24]), ['lock', 'toy-'])
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if "label" not in images.columns:
        raise ValueError(f"images needs a 'label' column; columns: {list(images.columns)}")
    train = _rows(train_rows, len(images), "train_rows")
    test = _rows(test_rows, len(images), "test_rows")
    target = resolve_device(device)
    cache = letterbox_cache(
        images,
        canvas,
        dataset=dataset,
        persist=dataset is not None,
        cache_dir=cache_dir,
        num_workers=num_workers,
    )
    labels = images["label"].to_numpy(dtype=np.float32)
    pin = target.type == "cuda"

    def loader(rows: np.ndarray, tfm: AugmentConfig | None, shuffle: bool, drop: bool) -> Any:
        return CachedDataLoader(
            CachedImages(cache.pixels, labels, rows), augment=tfm, seed=seed, mean=mean,
            std=std, bs=batch_size, shuffle=shuffle, drop_last=drop, pin_memory=pin,
            device=target,
        )

    # BatchNorm cannot train on a batch of one image: drop only such a trailing batch.
    drop_last = len(train) % batch_size == 1 and len(train) > 1
    train_dl = loader(train, augment, shuffle=True, drop=drop_last)
    valid_dl = loader(test, None, shuffle=False, drop=False)
    return DataLoaders(train_dl, valid_dl, device=target)
