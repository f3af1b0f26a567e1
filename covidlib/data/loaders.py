"""The data path for training: a letterbox cache and fastai ``DataLoaders`` per fold.

Decoding PNGs is the slow part of a naive pipeline. Here every image of an index is decoded
(:func:`covidlib.data.images.load_grayscale`) and letterboxed **once per canvas** into a uint8
array of shape N x H x W, kept as a memory-mapped ``.npy`` file under
``data_dir()/"cache"`` and keyed by the dataset, the canvas and a hash of the paths, file
sizes and modification times (:func:`letterbox_cache`). Epochs then only slice that array.

:func:`fold_dataloaders` wraps the cache into fastai ``DataLoaders`` for one cross-validation
fold. Batches are gathered with one fancy index, copied to the training device (pinned
memory and ``non_blocking`` copies with CUDA), augmented there batch-wise, expanded to three
channels and ImageNet-normalized (:class:`covidlib.transforms.BatchTransform`).

Example:
    from covidlib.data.datasets import ensure_dataset, index_dataset

    images = index_dataset("phantom", ensure_dataset("phantom")).images
    dls = fold_dataloaders(images, range(150), range(150, 200), (140, 101), 16)
    x, y = dls.train.one_batch()  # x: float32 16x3x101x140, y: float32 16
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from covidlib.config import resolve_device
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
from covidlib.transforms.geometry import RESIZE_MODES, Placement, resize_to_canvas

CACHE_VERSION = 1


@dataclass(frozen=True)
class LetterboxCache:
    """Letterboxed uint8 pixels of every image of an index, for one canvas.

    Attributes:
        pixels: array N x H x W (uint8; a read-only memory map when stored on disk).
        paths: the source files, in row order.
        canvas: (width, height).
        placements: where each original image landed on the canvas.
        file: the ``.npy`` file, or ``None`` for an in-memory cache.
        built: ``True`` when this call decoded the images, ``False`` when it reused a file.
    """

    pixels: np.ndarray
    paths: tuple[str, ...]
    canvas: tuple[int, int]
    placements: tuple[Placement, ...]
    file: Path | None
    built: bool

    def __len__(self) -> int:
        return len(self.paths)


def _paths_of(images: pd.DataFrame | Sequence[str | Path], column: str) -> list[str | None]:
    if isinstance(images, pd.DataFrame):
        if column not in images.columns:
            raise ValueError(f"images has no column {column!r}; columns: {list(images.columns)}")
        return [None if pd.isna(value) else str(value) for value in images[column]]
    return [str(path) for path in images]


def _cache_key(
    paths: Sequence[str | None], canvas: tuple[int, int], mode: str, fill: int, resample: str
) -> str:
    digest = hashlib.sha256()
    header = {
        "version": CACHE_VERSION, "canvas": list(canvas), "mode": mode, "fill": fill,
        "resample": resample,
    }
    digest.update(json.dumps(header, sort_keys=True).encode())
    for path in paths:
        if path is None:
            digest.update(b"\0<none>\n")
            continue
        try:
            stat = os.stat(path)
        except OSError as error:
            raise FileNotFoundError(
                f"cannot read {path} for the letterbox cache: {error}"
            ) from None
        digest.update(f"\0{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:20]


def _dataset_name(paths: Sequence[str | None]) -> str:
    existing = [path for path in paths if path is not None]
    if not existing:
        return "images"
    common = Path(os.path.commonpath([os.path.dirname(path) for path in existing]))
    # A class folder ("COVID", "CT_COVID") is not the dataset: go up to the dataset root.
    while common.name and any(word in common.name.lower() for word in ("covid", "mask")):
        common = common.parent
    name = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in common.name)
    return name or "images"


def _decode_one(
    path: str | None, canvas: tuple[int, int], mode: str, fill: int, resample: str
) -> tuple[np.ndarray, Placement | None]:
    from covidlib.data.images import load_grayscale

    width, height = canvas
    if path is None:  # e.g. no mask for this image: an empty mask
        return np.full((height, width), 0, dtype=np.uint8), None
    image = load_grayscale(path)
    out, placement = resize_to_canvas(image, canvas, mode=mode, fill=fill, resample=resample)  # type: ignore[arg-type]
    return np.asarray(out, dtype=np.uint8), placement


def _placements(
    images: pd.DataFrame | Sequence[str | Path],
    paths: Sequence[str | None],
    canvas: tuple[int, int],
    mode: str,
) -> tuple[Placement, ...] | None:
    """Placements from the index's width/height columns (no decoding), if it has them."""
    from covidlib.transforms.geometry import cover_placement, fit_placement, stretch_placement

    if not isinstance(images, pd.DataFrame) or not {"width", "height"} <= set(images.columns):
        return None
    place = {"letterbox": fit_placement, "stretch": stretch_placement, "crop": cover_placement}[
        mode
    ]
    return tuple(
        place((int(w), int(h)), canvas)
        for w, h in zip(images["width"], images["height"], strict=True)
    )


def letterbox_cache(
    images: pd.DataFrame | Sequence[str | Path],
    canvas: tuple[int, int],
    *,
    column: str = "path",
    mode: str = "letterbox",
    fill: int = 0,
    resample: str = "bilinear",
    dataset: str | None = None,
    cache_dir: str | Path | None = None,
    persist: bool = True,
    num_workers: int = 0,
) -> LetterboxCache:
    """Letterbox every image once into a uint8 N x H x W array, reusing a stored copy.

    Args:
        images: an index's ``images`` DataFrame (uses ``column``) or a list of paths.
        canvas: (width, height).
        column: the DataFrame column with the files (``"mask_path"`` for lesion masks;
            missing masks become all-zero).
        mode: ``"letterbox"``, ``"stretch"`` or ``"crop"``.
        fill: padding value.
        resample: ``"bilinear"`` for images, ``"nearest"`` for masks.
        dataset: name used in the cache file name (default: the images' common folder).
        cache_dir: where the ``.npy`` files live (default ``data_dir()/"cache"``).
        persist: ``False`` keeps the cache in memory only.
        num_workers: threads that decode images while building (0 = in this thread).

    Returns:
        A :class:`LetterboxCache`; ``built`` says whether images were decoded.

    Raises:
        FileNotFoundError: a listed file is missing.
        covidlib.data.images.ImageLoadError: a file cannot be decoded.

    Example:
        cache = letterbox_cache(index.images, (349, 253))
        cache.pixels.shape  # (746, 253, 349) for COVID19-CT
    """
    from covidlib.config import data_dir, progress_enabled
    from covidlib.transforms.geometry import check_canvas

    canvas = check_canvas(canvas)
    if mode not in RESIZE_MODES:
        raise ValueError(f"mode must be one of {sorted(RESIZE_MODES)}, got {mode!r}")
    paths = _paths_of(images, column)
    if not paths:
        raise ValueError("cannot build a letterbox cache from zero images")
    width, height = canvas
    key = _cache_key(paths, canvas, mode, fill, resample)
    name = dataset or _dataset_name(paths)
    folder = Path(cache_dir) if cache_dir is not None else data_dir() / "cache"
    file = folder / f"{name}-{column}-{mode}-{width}x{height}-{key}.npy"
    placements = _placements(images, paths, canvas, mode) if column == "path" else None
    stored_paths = tuple(path or "" for path in paths)

    if persist and file.is_file():
        pixels = np.load(file, mmap_mode="r")
        if pixels.shape == (len(paths), height, width) and pixels.dtype == np.uint8:
            return LetterboxCache(pixels, stored_paths, canvas, placements or (), file, built=False)

    def decode(path: str | None) -> tuple[np.ndarray, Placement | None]:
        return _decode_one(path, canvas, mode, fill, resample)

    results: Iterator[tuple[np.ndarray, Placement | None]]
    pool = ThreadPoolExecutor(num_workers) if num_workers > 0 else None
    results = pool.map(decode, paths) if pool is not None else map(decode, paths)
    if progress_enabled():
        from tqdm.auto import tqdm

        results = tqdm(results, total=len(paths), desc=f"letterbox {width}x{height}")
    try:
        if persist:
            from covidlib.utils.fileio import atomic_path

            with atomic_path(file) as tmp:
                out = np.lib.format.open_memmap(
                    tmp, mode="w+", dtype=np.uint8, shape=(len(paths), height, width)
                )
                decoded = _fill(out, results)
                out.flush()
                del out
            pixels = np.load(file, mmap_mode="r")
        else:
            pixels = np.empty((len(paths), height, width), dtype=np.uint8)
            decoded = _fill(pixels, results)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    if placements is None and column == "path":
        placements = tuple(p for p in decoded if p is not None)
    return LetterboxCache(
        pixels, stored_paths, canvas, placements or (), file if persist else None, True
    )


def _fill(
    out: np.ndarray, results: Iterator[tuple[np.ndarray, Placement | None]]
) -> list[Placement | None]:
    placements = []
    for row, (pixels, placement) in enumerate(results):
        out[row] = pixels
        placements.append(placement)
    return placements


class CachedImages(torch.utils.data.Dataset):
    """Rows of a :class:`LetterboxCache` with their labels; items are (uint8 1xHxW, float).

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
        :class:`covidlib.engine.learner.EpochSeeding`), so a resumed run draws what an
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
    augment: AugmentConfig | None = DEFAULT_AUGMENT,
    seed: int = 0,
    device: str | torch.device | None = None,
    num_workers: int = 0,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> DataLoaders:
    """fastai ``DataLoaders`` for one fold: ``train`` shuffled and augmented, ``valid`` = test.

    Every image of ``images`` is letterboxed once into the cache (:func:`letterbox_cache`);
    later calls for other folds reuse it.

    Args:
        images: an index's ``images`` DataFrame (columns ``path`` and ``label``, 1 = COVID).
        train_rows: positional row numbers of the training images.
        test_rows: positional row numbers of the test fold (``dls.valid`` keeps this order).
        canvas: (width, height) of the network input.
        batch_size: images per batch.
        augment: training augmentation; ``None`` turns it off.
        seed: seeds the shuffling and the augmentation.
        device: ``None``/``"auto"`` = CUDA when available, else CPU.
        num_workers: threads that decode images while the cache is built (epochs decode
            nothing, so the loaders themselves need no workers).
        mean: per-channel mean of the model's pretrained weights (default ImageNet's).
        std: per-channel std of the model's pretrained weights (default ImageNet's).

    Returns:
        ``fastai.data.core.DataLoaders``; batches ``(x, y)`` with x float32 Bx3xHxW
        normalized with ``mean``/``std`` and y float32 B (1.0 = COVID), both on ``device``.

    Example:
        dls = fold_dataloaders(images, range(160), range(160, 200), (140, 101), 16)
        dls.train.one_batch()[0].shape  # torch.Size([16, 3, 101, 140])
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if "label" not in images.columns:
        raise ValueError(f"images needs a 'label' column; columns: {list(images.columns)}")
    train = _rows(train_rows, len(images), "train_rows")
    test = _rows(test_rows, len(images), "test_rows")
    target = resolve_device(device)
    cache = letterbox_cache(images, canvas, num_workers=num_workers)
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
