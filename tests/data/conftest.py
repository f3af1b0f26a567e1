"""Fixtures of the data tests: tiny images and fake copies of the registry datasets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from covidlib.data.registry import DATASETS

MakePng = Callable[..., Path]
MakeTree = Callable[..., Path]


def _png(path: Path, size: tuple[int, int] = (12, 8), mode: str = "L", seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    channels = {"L": None, "RGB": 3, "RGBA": 4}[mode]
    shape = (size[1], size[0]) if channels is None else (size[1], size[0], channels)
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(path)
    return path


def _tree(root: Path, name: str, n_covid: int = 2, n_non: int = 3) -> Path:
    covid, non = DATASETS[name].classes
    for i in range(n_covid):
        _png(root / covid.folder / f"c{i}.png", size=(10 + i, 8), seed=i)
    for i in range(n_non):
        _png(root / non.folder / f"n{i}.png", size=(8, 12 + i), mode="RGB", seed=100 + i)
    return root


@pytest.fixture()
def make_png() -> MakePng:
    """``make_png(path, size=(12, 8), mode="L", seed=0)``: a random-noise PNG at ``path``."""
    return _png


@pytest.fixture()
def make_tree() -> MakeTree:
    """``make_tree(root, name, n_covid=2, n_non=3)``: a fake copy of a registry dataset.

    COVID images are grayscale, 10+i x 8; non-COVID images are RGB, 8 x 12+i.
    """
    return _tree


@pytest.fixture()
def images(tmp_path: Path) -> pd.DataFrame:
    """An index table of ten small grayscale PNGs of different sizes (image i is filled with
    gray value 20*i+10), with labels, sizes and lesion masks (none for images 8 and 9)."""
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
