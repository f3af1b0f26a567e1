"""Tests for covidlib.audit.duplicates: average hashes and duplicate pairs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from covidlib.audit.duplicates import average_hash, find_duplicates


def test_find_duplicates(tmp_path: Path) -> None:
    base = np.zeros((64, 64), np.uint8)
    base[:, :32] = 200
    base[10:20, 40:50] = 120
    folder = tmp_path / "img"
    folder.mkdir()
    Image.fromarray(base).save(folder / "a.png")
    (folder / "copy.png").write_bytes((folder / "a.png").read_bytes())
    Image.fromarray(base).resize((128, 128)).save(folder / "bigger.png")
    Image.fromarray(255 - base).save(folder / "inverted.png")
    paths = [str(folder / n) for n in ("a.png", "copy.png", "bigger.png", "inverted.png")]
    pairs = find_duplicates(pd.DataFrame({"path": paths, "class_name": ["COVID"] * 4}))
    found = {
        (Path(a).name, Path(b).name): k for a, b, k in pairs[["path_a", "path_b", "kind"]].values
    }
    assert found == {
        ("a.png", "copy.png"): "identical",
        ("a.png", "bigger.png"): "near",
        ("copy.png", "bigger.png"): "near",
    }
    assert set(pairs["class_name_a"]) == {"COVID"}


def test_average_hash_sees_through_resizing_but_not_inversion(tmp_path: Path) -> None:
    gradient = Image.linear_gradient("L")
    gradient.save(tmp_path / "a.png")
    gradient.resize((40, 40)).save(tmp_path / "small.png")
    Image.eval(gradient, lambda v: 255 - v).save(tmp_path / "inverted.png")
    hashes = {name: average_hash(tmp_path / f"{name}.png") for name in ("a", "small", "inverted")}
    assert hashes["a"] == hashes["small"] == 0x00000000FFFFFFFF
    assert bin(hashes["a"] ^ hashes["inverted"]).count("1") == 64
    assert average_hash(tmp_path / "a.png", hash_size=4) == 0x00FF


def test_find_duplicates_of_no_images_is_an_empty_table() -> None:
    pairs = find_duplicates(pd.DataFrame({"path": [], "split": []}))
    assert pairs.empty and list(pairs.columns)[-2:] == ["split_a", "split_b"]
