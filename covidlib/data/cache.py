"""The letterbox cache: every image of an index decoded and letterboxed once per canvas.

Decoding PNGs is the slow part of a naive pipeline. Here every image is decoded
(:func:`covidlib.data.images.load_grayscale`) and letterboxed **once per canvas** into a uint8
array of shape N x H x W (:func:`letterbox_cache`). A persisted cache is a memory-mapped
``.npy`` file under ``data_dir()/"cache"``, named after the dataset and keyed by the canvas,
the resize options and a hash of the paths, file sizes and modification times; later calls
(other folds, other epochs, another process) only map it. Without a dataset name the cache
lives in memory only.

Example:
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> paths = [folder / "wide.png", folder / "tall.png"]
    >>> Image.new("L", (40, 20), 200).save(paths[0])
    >>> Image.new("L", (10, 30), 100).save(paths[1])
    >>> cache = letterbox_cache(paths, (16, 12), dataset="toy", cache_dir=folder / "cache")
    >>> cache.pixels.shape, cache.built, cache.file.name.startswith("toy-path-letterbox-16x12-")
    ((2, 12, 16), True, True)
    >>> letterbox_cache(paths, (16, 12), dataset="toy", cache_dir=folder / "cache").built
    False
    >>> letterbox_cache(paths, (16, 12), persist=False).file is None
    True
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from covidlib.transforms.geometry import (
    RESIZE_MODES,
    Placement,
    check_canvas,
    cover_placement,
    fit_placement,
    resize_to_canvas,
    stretch_placement,
)
from covidlib.utils.fileio import atomic_path, exclusive_lock

__all__ = ["CACHE_VERSION", "LetterboxCache", "letterbox_cache"]

CACHE_VERSION = 1
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


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


def _decode_one(
    path: str | None, canvas: tuple[int, int], mode: str, fill: int, resample: str
) -> tuple[np.ndarray, Placement | None]:
    from covidlib.data.images import load_grayscale  # looked up per call (tests replace it)

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
    dataset: str | None = None,
    persist: bool = True,
    column: str = "path",
    mode: str = "letterbox",
    fill: int = 0,
    resample: str = "bilinear",
    cache_dir: str | Path | None = None,
    num_workers: int = 0,
) -> LetterboxCache:
    """Letterbox every image once into a uint8 N x H x W array, reusing a stored copy.

    Args:
        images: an index's ``images`` DataFrame (uses ``column``) or a list of paths.
        canvas: (width, height).
        dataset: the dataset's registry name (``DatasetIndex.name``); it names the cache
            file, so a persisted cache needs it.
        persist: ``False`` keeps the cache in memory only (no ``dataset`` needed).
        column: the DataFrame column with the files (``"mask_path"`` for lesion masks;
            missing masks become all-zero).
        mode: ``"letterbox"``, ``"stretch"`` or ``"crop"``.
        fill: padding value.
        resample: ``"bilinear"`` for images, ``"nearest"`` for masks.
        cache_dir: where the ``.npy`` files live (default ``data_dir()/"cache"``).
        num_workers: threads that decode images while building (0 = in this thread).

    Returns:
        A :class:`LetterboxCache`; ``built`` says whether images were decoded.

    Raises:
        ValueError: ``persist`` without ``dataset``, a bad ``dataset``, ``mode`` or canvas,
            or no images.
        FileNotFoundError: a listed file is missing.
        covidlib.data.images.ImageLoadError: a file cannot be decoded.

    Example:
        >>> letterbox_cache(["a.png"], (16, 12))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: a persisted letterbox cache is named after its dataset: pass dataset=...
    """
    from covidlib.config import data_dir

    if persist and dataset is None:
        raise ValueError(
            "a persisted letterbox cache is named after its dataset: pass dataset=... "
            "(the dataset's registry name) or persist=False"
        )
    if dataset is not None and not _NAME.fullmatch(dataset):
        raise ValueError(
            f"dataset={dataset!r} cannot name a cache file; use the dataset's registry name "
            "(letters, digits, '.', '_', '-')"
        )
    canvas = check_canvas(canvas)
    if mode not in RESIZE_MODES:
        raise ValueError(f"mode must be one of {sorted(RESIZE_MODES)}, got {mode!r}")
    paths = _paths_of(images, column)
    if not paths:
        raise ValueError("cannot build a letterbox cache from zero images")
    width, height = canvas
    placements = _placements(images, paths, canvas, mode) if column == "path" else None
    stored_paths = tuple(path or "" for path in paths)
    file = None
    if persist:
        key = _cache_key(paths, canvas, mode, fill, resample)
        folder = Path(cache_dir) if cache_dir is not None else data_dir() / "cache"
        file = folder / f"{dataset}-{column}-{mode}-{width}x{height}-{key}.npy"

    if file is not None:
        stored = _load_stored(file, (len(paths), height, width))
        if stored is not None:
            return LetterboxCache(stored, stored_paths, canvas, placements or (), file, built=False)
        # Runners started together build it once: the others wait, then load that file.
        with exclusive_lock(file.parent / "locks" / f"{file.name}.lock"):
            stored = _load_stored(file, (len(paths), height, width))
            if stored is not None:
                return LetterboxCache(stored, stored_paths, canvas, placements or (), file,
                                      built=False)
            return _build(paths, stored_paths, canvas, placements, file, column, mode, fill,
                          resample, num_workers)
    return _build(paths, stored_paths, canvas, placements, file, column, mode, fill, resample,
                  num_workers)


def _load_stored(file: Path, shape: tuple[int, int, int]) -> np.ndarray | None:
    if not file.is_file():
        return None
    pixels = np.load(file, mmap_mode="r")
    return pixels if pixels.shape == shape and pixels.dtype == np.uint8 else None


def _build(
    paths: list[str | None],
    stored_paths: tuple[str, ...],
    canvas: tuple[int, int],
    placements: tuple[Placement, ...] | None,
    file: Path | None,
    column: str,
    mode: str,
    fill: int,
    resample: str,
    num_workers: int,
) -> LetterboxCache:
    from covidlib.config import progress_enabled

    width, height = canvas

    def decode(path: str | None) -> tuple[np.ndarray, Placement | None]:
        return _decode_one(path, canvas, mode, fill, resample)

    results: Iterator[tuple[np.ndarray, Placement | None]]
    pool = ThreadPoolExecutor(num_workers) if num_workers > 0 else None
    results = pool.map(decode, paths) if pool is not None else map(decode, paths)
    if progress_enabled():
        from tqdm import tqdm

        # disable=False: progress_enabled() has decided (a TQDM_DISABLE default must not undo it)
        results = tqdm(
            results, total=len(paths), desc=f"letterbox {width}x{height}", file=sys.stderr,
            disable=False,
        )
    try:
        if file is not None:
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
    return LetterboxCache(pixels, stored_paths, canvas, placements or (), file, True)


def _fill(
    out: np.ndarray, results: Iterator[tuple[np.ndarray, Placement | None]]
) -> list[Placement | None]:
    placements = []
    for row, (pixels, placement) in enumerate(results):
        out[row] = pixels
        placements.append(placement)
    return placements


