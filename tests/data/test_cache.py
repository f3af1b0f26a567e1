"""Tests for covidlib.data.cache: the letterbox cache."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import covidlib.data.images
from covidlib.data.cache import letterbox_cache
from covidlib.data.loaders import fold_dataloaders
from covidlib.transforms import letterbox

CANVAS = (24, 16)


def test_cache_holds_the_letterboxed_pixels(images: pd.DataFrame) -> None:
    cache = letterbox_cache(images, CANVAS, dataset="toy")
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
    first = letterbox_cache(images, CANVAS, dataset="toy")

    def refuse(path: object) -> None:
        raise AssertionError(f"decoded {path} although the cache exists")

    monkeypatch.setattr(covidlib.data.images, "load_grayscale", refuse)
    second = letterbox_cache(images, CANVAS, dataset="toy")
    assert not second.built and second.file == first.file
    assert np.array_equal(np.asarray(second.pixels), np.asarray(first.pixels))
    # fold_dataloaders on the same index, canvas and dataset decodes nothing either
    dls = fold_dataloaders(images, [0, 1, 2, 3], [4, 5], CANVAS, 2, dataset="toy", device="cpu")
    assert dls.train.one_batch()[0].shape == (2, 3, CANVAS[1], CANVAS[0])


def test_cache_key_follows_canvas_and_file_changes(images: pd.DataFrame) -> None:
    first = letterbox_cache(images, CANVAS, dataset="toy")
    other_canvas = letterbox_cache(images, (16, 24), dataset="toy")
    assert other_canvas.file != first.file and other_canvas.built
    path = Path(images["path"][3])
    Image.new("L", (30, 30), 255).save(path)
    os.utime(path, ns=(1, 1))
    changed = letterbox_cache(images, CANVAS, dataset="toy")
    assert changed.built and changed.file != first.file
    assert changed.pixels[3].max() == 255


def test_in_memory_cache_and_threads(images: pd.DataFrame) -> None:
    on_disk = letterbox_cache(images, CANVAS, dataset="toy")
    in_memory = letterbox_cache(images, CANVAS, persist=False, num_workers=2)
    assert in_memory.file is None and in_memory.built
    assert np.array_equal(in_memory.pixels, np.asarray(on_disk.pixels))


def test_mask_cache_uses_nearest_and_blank_missing_masks(images: pd.DataFrame) -> None:
    masks = letterbox_cache(images, CANVAS, dataset="toy", column="mask_path", resample="nearest")
    assert set(np.unique(masks.pixels).tolist()) == {0, 255}
    assert masks.pixels[8].max() == 0 and masks.pixels[9].max() == 0
    assert masks.pixels[0].max() == 255


def test_cache_errors_name_the_problem(images: pd.DataFrame, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no column 'nope'"):
        letterbox_cache(images, CANVAS, dataset="toy", column="nope")
    with pytest.raises(ValueError, match="canvas size"):
        letterbox_cache(images, (0, 16), dataset="toy")
    missing = images.copy()
    missing.loc[0, "path"] = str(tmp_path / "gone.png")
    with pytest.raises(FileNotFoundError, match="gone.png"):
        letterbox_cache(missing, CANVAS, dataset="toy")


def test_a_stored_cache_needs_a_dataset_name(images: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match=r"pass dataset=\.\.\. .*or persist=False"):
        letterbox_cache(images, CANVAS)
    for bad in ("../up", "a/b", "", "-x"):
        with pytest.raises(ValueError, match="cannot name a cache file"):
            letterbox_cache(images, CANVAS, dataset=bad)
    cache = letterbox_cache(images, CANVAS, dataset="covid19-ct")
    assert cache.file is not None and cache.file.name.startswith("covid19-ct-path-letterbox-24x16-")
    # the name is not taken from the folders: another name is another file
    assert letterbox_cache(images, CANVAS, dataset="other").file != cache.file


@pytest.mark.parametrize("enabled", [True, False])
def test_progress_goes_to_stderr_only_when_enabled(
    images: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    enabled: bool,
) -> None:
    import covidlib.config

    monkeypatch.setattr(covidlib.config, "progress_enabled", lambda: enabled)
    letterbox_cache(images, CANVAS, persist=False)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert ("letterbox 24x16" in captured.err) == enabled
