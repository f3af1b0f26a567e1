"""Byte-identical and near-identical images: SHA-256 digests and perceptual average hashes.

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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from covidlib.data.images import load_grayscale
from covidlib.utils.fileio import sha256_file

__all__ = ["average_hash", "find_duplicates"]

def average_hash(path: str | Path, hash_size: int = 8) -> int:
    """Return a perceptual average hash of an image (``hash_size**2`` bits).

    The grayscale image is shrunk to ``hash_size x hash_size``; each bit says whether a
    pixel is brighter than the mean. Resized, recompressed or slightly changed copies get
    hashes a few bits apart.

    Example:
        >>> import tempfile, pathlib
        >>> from PIL import Image
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "g.png"
        >>> Image.linear_gradient("L").save(path)
        >>> f"{average_hash(path):016x}"
        '00000000ffffffff'
    """
    return int("".join("1" if bit else "0" for bit in _average_hash_bits(path, hash_size)), 2)


def _average_hash_bits(path: str | Path, hash_size: int) -> np.ndarray:
    """The bits of :func:`average_hash`, first bit first, as a boolean array."""
    image = load_grayscale(path).resize((hash_size, hash_size), resample=3)
    pixels = np.asarray(image, dtype=np.float64).ravel()
    return pixels > pixels.mean()


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
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        digests = list(pool.map(sha256_file, paths))
        hashes = list(pool.map(lambda p: _average_hash_bits(p, hash_size), paths))
    as_bits = np.array(hashes, dtype=bool).reshape(len(paths), hash_size * hash_size)
    extra = [c for c in ("class_name", "split") if c in images.columns]
    rows = []
    for i in range(len(paths)):
        distances = (as_bits[i + 1 :] != as_bits[i]).sum(axis=1)
        for offset in np.flatnonzero(distances <= max_distance):
            j = i + 1 + int(offset)
            identical = digests[i] == digests[j]
            row: dict[str, Any] = {
                "path_a": paths[i],
                "path_b": paths[j],
                "kind": "identical" if identical else "near",
                "distance": int(distances[offset]),
            }
            for column in extra:
                row[f"{column}_a"] = images[column].iloc[i]
                row[f"{column}_b"] = images[column].iloc[j]
            rows.append(row)
        # identical files always have identical hashes, so they are found above
    columns = ["path_a", "path_b", "kind", "distance"] + [
        f"{c}_{s}" for c in extra for s in ("a", "b")
    ]
    return pd.DataFrame(rows, columns=columns)
