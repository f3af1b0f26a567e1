"""Pointing game, energy share, baselines, folder pairing and scoring a run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from covidlib.explain.localization import (
    body_map,
    center_map,
    energy_share,
    localize_folder,
    localize_run,
    mask_pairs,
    pointing_game,
    random_map,
)


def _mask(shape: tuple[int, int] = (40, 60)) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[5:15, 10:30] = True
    return mask


def test_pointing_game_peak_inside_and_outside() -> None:
    mask = _mask()
    inside = np.zeros(mask.shape, np.float32)
    inside[10, 20] = 1.0
    outside = np.zeros(mask.shape, np.float32)
    outside[30, 50] = 1.0
    assert pointing_game(inside, mask) == 1.0
    assert pointing_game(outside, mask) == 0.0
    assert pointing_game(np.zeros(mask.shape), mask) == 0.0  # a zero map points nowhere
    assert np.isnan(pointing_game(inside, np.zeros(mask.shape, bool)))


def test_flat_map_shares_the_point() -> None:
    mask = _mask()
    assert pointing_game(np.ones(mask.shape), mask) == pytest.approx(mask.mean())


def test_energy_is_the_masked_share() -> None:
    mask = _mask()
    heat = np.random.default_rng(3).random(mask.shape)
    assert energy_share(heat, mask) == pytest.approx(heat[mask].sum() / heat.sum())
    assert energy_share(np.zeros(mask.shape), mask) == 0.0
    with pytest.raises(ValueError, match="differ"):
        energy_share(heat, mask[:10])


def test_random_baseline_energy_is_the_mask_fraction() -> None:
    masks = [_mask((80, 100)), np.eye(80, 100, dtype=bool) | _mask((80, 100))[::-1]]
    energies = [energy_share(random_map(m.shape, seed=i), m) for i, m in enumerate(masks)]
    fractions = [m.mean() for m in masks]
    assert np.mean(energies) == pytest.approx(np.mean(fractions), abs=0.01)


def test_center_and_body_priors() -> None:
    heat = center_map((41, 61))
    assert np.unravel_index(heat.argmax(), heat.shape) == (20, 30)
    image = np.zeros((20, 20), np.uint8)
    image[4:16, 4:16] = 200
    image[8:12, 8:12] = 0  # a dark lung inside the body is still body
    assert body_map(image).sum() == 144


def _folder(base: Path, stems: list[str], with_masks: list[str]) -> Path:
    (base / "images").mkdir(parents=True)
    (base / "masks").mkdir()
    for stem in stems:
        Image.new("L", (30, 20), 100).save(base / "images" / f"{stem}.png")
    for stem in with_masks:
        Image.new("L", (30, 20), 255).save(base / "masks" / f"{stem}.png")
    return base


def test_mask_pairs_by_stem(tmp_path: Path) -> None:
    pairs = mask_pairs(_folder(tmp_path / "ok", ["a", "b"], ["a", "b"]))
    assert [Path(p).stem for p in pairs["mask"]] == ["a", "b"]
    with pytest.raises(ValueError, match="have no mask"):
        mask_pairs(_folder(tmp_path / "bad", ["a", "b"], ["a"]))
    with pytest.raises(FileNotFoundError, match="images/"):
        mask_pairs(tmp_path / "none")


def test_localize_run_scores_covid_test_images(tiny_run: Path) -> None:
    result = localize_run(tiny_run)
    folds = __import__("pandas").read_csv(tiny_run / "folds.csv")
    assert result.summary["n_images"] == int((folds["label"] == 1).sum())
    assert set(result.summary["scores"]) == {"gradcam", "random", "center"}
    for scores in result.summary["scores"].values():
        for score in scores.values():
            assert 0 <= score["ci_low"] <= score["value"] <= score["ci_high"] <= 1
    held_out = dict(zip(folds["path"], folds["fold"], strict=True))
    assert all(held_out[p] == f for p, f in zip(result.table["image"], result.table["fold"],
                                                  strict=True))
    random_energy = result.summary["scores"]["random"]["energy"]["value"]
    assert random_energy == pytest.approx(result.summary["mean_mask_fraction"], abs=0.01)


def test_localize_folder_counts_every_pair(tiny_run: Path, tmp_path: Path) -> None:
    base = _folder(tmp_path / "set", ["x", "y", "z"], ["x", "y", "z"])
    result = localize_folder(tiny_run, base, fold=1)
    assert result.summary["n_images"] == 3 and result.summary["folds"] == [1]
    assert "body" in result.summary["scores"]
