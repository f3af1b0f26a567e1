"""Byte-identical and near-identical images: SHA-256 digests and perceptual hashes.

One implementation serves the datasets chapter (:func:`find_duplicates`, a table of pairs)
and the leakage audit (:mod:`covidlib.audit.leaks`): images are hashed in batches
(:func:`image_hashes`: pHash, dHash or the 16x16 average hash, all from ``imagehash``),
and every pair of images gets a distance on one scale, the fraction of hash bits that differ
(0 = same hash, about 0.5 = unrelated) (:func:`pair_distances`).

Example:
    >>> import tempfile, pathlib
    >>> import pandas as pd
    >>> from PIL import Image
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> Image.linear_gradient("L").save(folder / "a.png")
    >>> Image.linear_gradient("L").resize((64, 64)).save(folder / "small.png")
    >>> pairs = find_duplicates(pd.DataFrame({"path": [folder / "a.png", folder / "small.png"]}))
    >>> pairs[["kind", "distance"]].values.tolist()
    [['near', 0]]
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from covidlib.config import progress_enabled
from covidlib.data.images import load_grayscale
from covidlib.utils.fileio import sha256_file
from covidlib.utils.names import check_name

__all__ = [
    "HASH_METHODS",
    "average_hash",
    "content_box",
    "file_digests",
    "find_duplicates",
    "identical_sets",
    "image_hashes",
    "pair_distances",
]

# Perceptual hashes: name -> bits per image at hash_size 8 (the audit concatenates them).
HASH_METHODS: tuple[str, ...] = ("phash", "dhash", "average")
HASH_BATCH = 256  # images decoded per batch of the progress bar
SPECKLE_FRACTION = 0.03
# Crops hashed besides the whole image (fractions of the content box: left, top, right,
# bottom): a copy cropped or shifted by a few percent matches one of them.
CROP_BOXES: tuple[tuple[float, float, float, float], ...] = (
    (0.04, 0.04, 0.96, 0.96),
    (0.0, 0.0, 0.94, 0.94),
    (0.06, 0.06, 1.0, 1.0),
    (0.06, 0.0, 1.0, 0.94),
    (0.0, 0.06, 0.94, 1.0),
)


def average_hash(path: str | Path, hash_size: int = 8) -> int:
    """Return the perceptual average hash of an image (``hash_size**2`` bits) as an integer.

    ``imagehash.average_hash`` of the grayscale image: shrunk to ``hash_size x hash_size``,
    each bit says whether a pixel is brighter than the mean. Resized, recompressed or
    slightly changed copies get hashes a few bits apart.

    Example:
        >>> import tempfile, pathlib
        >>> from PIL import Image
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "g.png"
        >>> Image.linear_gradient("L").save(path)
        >>> f"{average_hash(path):016x}"
        '00000000ffffffff'
    """
    bits = _bits_of(load_grayscale(path), ("average",), hash_size)
    return int("".join("1" if bit else "0" for bit in bits), 2)


def _hash_bits(path: str, methods: Sequence[str], hash_size: int, crops: bool = False
               ) -> np.ndarray:
    """The concatenated bits of ``methods`` for one image; with ``crops``, one row for the
    image and one for each of :data:`CROP_BOXES` of it."""
    image = load_grayscale(path)
    if methods == ("average",):  # the datasets chapter's average hash sees the whole image
        return _bits_of(image, methods, hash_size)
    image = content_box(image)
    if not crops:
        return _bits_of(image, methods, hash_size)
    width, height = image.size
    variants = [image] + [
        image.crop((int(left * width), int(top * height), int(right * width),
                    int(bottom * height)))
        for left, top, right, bottom in CROP_BOXES
    ]
    return np.stack([_bits_of(variant, methods, hash_size) for variant in variants])


def _bits_of(image: Image.Image, methods: Sequence[str], hash_size: int) -> np.ndarray:
    import imagehash

    parts = []
    for method in methods:
        hashers: dict[str, Callable[..., Any]] = {
            "average": imagehash.average_hash, "phash": imagehash.phash, "dhash": imagehash.dhash,
        }
        hasher = hashers[method]
        parts.append(np.asarray(hasher(image, hash_size=hash_size).hash).ravel())
    return np.concatenate(parts).astype(bool)


def content_box(image: Image.Image, level: float = 0.2, min_fraction: float = 0.1
                ) -> Image.Image:
    """Crop ``image`` to the box of its pixels brighter than ``level`` times its maximum.

    A shifted copy on a black canvas, or one cropped inside the background, then hashes
    like the original. A box under ``min_fraction`` of the image keeps the whole image.

    Example:
        >>> canvas = Image.new("L", (100, 80))
        >>> canvas.paste(200, (20, 10, 60, 50))
        >>> content_box(canvas).size
        (40, 40)
    """
    pixels = np.asarray(image)
    if pixels.size == 0 or int(pixels.max()) == 0:
        return image
    bright = pixels > level * float(pixels.max())
    # a row or column belongs to the content when a few percent of it is bright: isolated
    # noise speckles in the background do not move the box
    rows = np.flatnonzero(bright.mean(axis=1) > SPECKLE_FRACTION)
    cols = np.flatnonzero(bright.mean(axis=0) > SPECKLE_FRACTION)
    if rows.size == 0 or cols.size == 0:
        return image
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    if (bottom - top) * (right - left) < min_fraction * pixels.size:
        return image
    return image.crop((int(left), int(top), int(right), int(bottom)))


def _progress(items: Iterable[Any], total: int, desc: str) -> Iterable[Any]:
    """Wrap ``items`` in a tqdm bar when covidlib's progress rules allow one."""
    if not progress_enabled():
        return items
    from tqdm import tqdm

    # disable=False: progress_enabled() has decided (a TQDM_DISABLE default must not undo it)
    return tqdm(items, total=total, desc=desc, file=sys.stderr, disable=False)


def _batches(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _pool_map(function: Any, paths: Sequence[str], desc: str) -> list[Any]:
    """``function`` over ``paths`` in batches on a few threads, with a progress bar."""
    out: list[Any] = []
    batches = _batches(paths, HASH_BATCH)
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        n_batches = (len(paths) + HASH_BATCH - 1) // HASH_BATCH
        for batch in _progress(batches, n_batches, desc):
            out.extend(pool.map(function, batch))
    return out


def file_digests(paths: Sequence[str | Path]) -> list[str]:
    """Return the SHA-256 hex digest of every file (read on a few threads, in batches).

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "x.bin"
        >>> _ = path.write_bytes(b"")
        >>> file_digests([path])[0][:12]
        'e3b0c44298fc'
    """
    return _pool_map(sha256_file, [str(p) for p in paths], "sha256")


def identical_sets(paths: Sequence[str | Path], digests: Sequence[str] | None = None
                   ) -> list[list[str]]:
    """Return the sets (of two or more) of byte-identical files, each sorted, first path first.

    Example:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> for name, data in (("a", b"1"), ("b", b"2"), ("c", b"1")):
        ...     _ = (folder / name).write_bytes(data)
        >>> [[pathlib.Path(p).name for p in s] for s in identical_sets(sorted(folder.iterdir()))]
        [['a', 'c']]
    """
    names = [str(p) for p in paths]
    digests = list(digests) if digests is not None else file_digests(names)
    by_digest: dict[str, list[str]] = {}
    for name, digest in zip(names, digests, strict=True):
        by_digest.setdefault(digest, []).append(name)
    sets = [sorted(group) for group in by_digest.values() if len(group) > 1]
    return sorted(sets)


def image_hashes(
    paths: Sequence[str | Path],
    methods: Sequence[str] = ("phash", "dhash"),
    hash_size: int = 8,
    crops: bool = False,
) -> np.ndarray:
    """Return the perceptual-hash bits of every image (one boolean row per image).

    Every image but for the ``"average"`` hash is first cropped to its content box
    (:func:`content_box`).

    Args:
        paths: image files.
        methods: any of :data:`HASH_METHODS`; their bits are concatenated (pHash sees
            resizing, re-encoding and intensity changes through; dHash adds gradients).
        hash_size: side of each hash (``hash_size**2`` bits per method).
        crops: also hash the :data:`CROP_BOXES` of every image: the result is then
            ``(images, 1 + len(CROP_BOXES), bits)``, the whole image first.

    Example:
        >>> import tempfile, pathlib
        >>> from PIL import Image
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "g.png"
        >>> Image.linear_gradient("L").save(path)
        >>> image_hashes([path]).shape
        (1, 128)
    """
    if not methods:
        raise ValueError(f"no hash method given; choose from {HASH_METHODS}.")
    for method in methods:
        check_name("hash method", method, HASH_METHODS)
    if hash_size < 2:
        raise ValueError(f"hash_size must be at least 2 (got {hash_size}).")
    names = [str(p) for p in paths]
    bits = _pool_map(lambda p: _hash_bits(p, tuple(methods), hash_size, crops), names, "hash")
    width = len(methods) * hash_size * hash_size
    shape = (len(names), 1 + len(CROP_BOXES), width) if crops else (len(names), width)
    return np.array(bits, dtype=bool).reshape(shape)


def pair_distances(bits: np.ndarray, rows: slice | None = None) -> np.ndarray:
    """Return the fraction of differing bits between rows of ``bits`` and every row.

    Computed with two matrix products (fast for thousands of images); ``rows`` restricts
    the left side to a block of rows (batches bound the memory). For hashes with crops
    (``bits`` of shape images x variants x bits) the distance of two images is the smallest
    between the whole of one and any variant of the other.

    Example:
        >>> pair_distances(np.array([[1, 1, 0, 0], [1, 0, 0, 0]], dtype=bool)).tolist()
        [[0.0, 0.25], [0.25, 0.0]]
    """
    if bits.ndim == 3:
        whole = bits[:, 0]
        left = np.arange(len(bits))[rows] if rows is not None else np.arange(len(bits))
        best = _distances(whole[left], whole)
        for variant in range(1, bits.shape[1]):
            best = np.minimum(best, _distances(whole[left], bits[:, variant]))
            best = np.minimum(best, _distances(bits[left, variant], whole))
        return best
    return _distances(bits[rows] if rows is not None else bits, bits)


def _distances(left_bits: np.ndarray, right_bits: np.ndarray) -> np.ndarray:
    left = left_bits.astype(np.float32)
    ones = right_bits.astype(np.float32)
    agree = left @ ones.T + (1 - left) @ (1 - ones).T
    return (ones.shape[1] - agree) / ones.shape[1]


def find_duplicates(
    images: pd.DataFrame, *, max_distance: int = 10, hash_size: int = 16
) -> pd.DataFrame:
    """Find byte-identical and near-identical pairs of images.

    Args:
        images: an index table (needs ``path``; ``class_name`` and ``split`` are copied).
        max_distance: largest Hamming distance of two average hashes counted as
            near-identical (10 of 256 bits: on COVID19-CT this finds re-used slices, on
            the phantom nothing; an 8x8 hash calls most CT slices alike).
        hash_size: side of the average hash.

    Returns:
        One row per pair: ``path_a``, ``path_b``, ``kind`` (``"identical"`` for equal
        SHA-256, else ``"near"``), ``distance`` (hash bits that differ), and the
        ``class_name``/``split`` of both images when present.

    Example:
        >>> find_duplicates(pd.DataFrame({"path": []})).columns.tolist()[:4]
        ['path_a', 'path_b', 'kind', 'distance']
    """
    paths = images["path"].astype(str).tolist()
    extra = [c for c in ("class_name", "split") if c in images.columns]
    columns = ["path_a", "path_b", "kind", "distance"] + [
        f"{c}_{s}" for c in extra for s in ("a", "b")
    ]
    if not paths:
        return pd.DataFrame([], columns=columns)
    digests = file_digests(paths)
    bits = image_hashes(paths, ("average",), hash_size)
    rows = []
    for start in range(0, len(paths), HASH_BATCH):
        block = np.rint(pair_distances(bits, slice(start, start + HASH_BATCH)) * bits.shape[1])
        for offset, i in enumerate(range(start, min(start + HASH_BATCH, len(paths)))):
            # identical files always have identical hashes, so they are found here too
            for j in np.flatnonzero(block[offset, i + 1:] <= max_distance) + i + 1:
                row: dict[str, Any] = {
                    "path_a": paths[i],
                    "path_b": paths[j],
                    "kind": "identical" if digests[i] == digests[j] else "near",
                    "distance": int(block[offset, j]),
                }
                for column in extra:
                    row[f"{column}_a"] = images[column].iloc[i]
                    row[f"{column}_b"] = images[column].iloc[j]
                rows.append(row)
    return pd.DataFrame(rows, columns=columns)
