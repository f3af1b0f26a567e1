"""Tests for covidlib.audit.leaks: planted duplicates, pseudo-patients, grouped folds, leaks."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageEnhance

from covidlib.audit.leaks import audit_images, fold_leaks, pseudo_patients
from covidlib.config import ExperimentConfig
from covidlib.data.phantom import generate_patient_phantom, render_slice, sample_size
from covidlib.engine.folds import apply_groups_file, assign_folds, folds_file

COPIES = ("resized", "jpeg", "cropped", "shifted", "intensity")


def _copy(image: Image.Image, kind: str) -> Image.Image:
    width, height = image.size
    if kind == "resized":
        return image.resize((width // 2, height // 2))
    if kind == "cropped":
        return image.crop((int(.03 * width), int(.03 * height), int(.97 * width),
                           int(.97 * height)))
    if kind == "shifted":
        return image.transform(image.size, Image.Transform.AFFINE,
                               (1, 0, int(.03 * width), 0, 1, int(.03 * height)))
    if kind == "intensity":
        return ImageEnhance.Brightness(ImageEnhance.Contrast(image).enhance(1.2)).enhance(0.85)
    return image


def planted_folder(folder: Path, n_bases: int = 8, n_planted: int = 3) -> dict[str, int]:
    """Unrelated phantom slices; the first ``n_planted`` get every kind of copy and two
    byte-identical ones. Returns file name -> base image."""
    base_of: dict[str, int] = {}
    for k in range(n_bases):
        rng = np.random.default_rng(100 + k)
        pixels, _, _ = render_slice(rng, k % 2 == 0, 0.5, sample_size(rng))
        image = Image.fromarray(pixels)
        image.save(folder / f"base{k}.png")
        base_of[f"base{k}.png"] = k
        if k >= n_planted:
            continue
        for kind in COPIES:
            name = f"base{k}-{kind}.{'jpg' if kind == 'jpeg' else 'png'}"
            _copy(image, kind).save(folder / name, **({"quality": 70} if kind == "jpeg" else {}))
            base_of[name] = k
        for twin in ("copy1", "copy2"):
            (folder / f"base{k}-{twin}.png").write_bytes((folder / f"base{k}.png").read_bytes())
            base_of[f"base{k}-{twin}.png"] = k
    return base_of


def test_audit_finds_identical_sets_and_ranks_planted_copies_first(tmp_path: Path) -> None:
    base_of = planted_folder(tmp_path)
    paths = sorted(str(p) for p in tmp_path.iterdir())
    result = audit_images(paths, min_pairs=0)
    names = [Path(p).name for p in paths]
    assert [[Path(p).name for p in s] for s in result.identical] == [
        [f"base{k}-copy1.png", f"base{k}-copy2.png", f"base{k}.png"] for k in range(3)]
    planted, unrelated = [], []
    for i, j in itertools.combinations(range(len(paths)), 2):
        if result.digests[i] == result.digests[j]:
            continue
        pair = {names[i], names[j]}
        if base_of[names[i]] != base_of[names[j]]:
            unrelated.append(result.distances[i, j])
        elif f"base{base_of[names[i]]}.png" in pair:  # an original and its planted copy
            planted.append(result.distances[i, j])
    assert len(planted) == 3 * len(COPIES)
    assert max(planted) < min(unrelated)
    # the nearest pairs, up to the farthest planted copy, all pair an image with its copies
    ranked = [p for p in audit_images(paths, min_pairs=0, threshold=float(max(planted))).near]
    assert len(ranked) >= len(planted)
    assert all(base_of[Path(p["a"]).name] == base_of[Path(p["b"]).name] for p in ranked)
    assert all(result.digests[paths.index(p["a"])] != result.digests[paths.index(p["b"])]
               for p in ranked)
    distances = [p["distance"] for p in ranked]
    assert distances == sorted(distances)
    # every planted kind of copy is under the default threshold
    near_names = {Path(p["b"]).name for p in result.near} | {Path(p["a"]).name
                                                             for p in result.near}
    assert {f"base0-{kind}.{'jpg' if kind == 'jpeg' else 'png'}" for kind in COPIES} <= near_names


def test_near_lists_at_least_min_pairs_and_every_pair_under_threshold(tmp_path: Path) -> None:
    planted_folder(tmp_path, n_bases=6, n_planted=1)
    paths = sorted(str(p) for p in tmp_path.iterdir())
    few = audit_images(paths, min_pairs=12, threshold=0.0)
    assert len(few.near) == 12  # the resized and re-encoded copies have distance 0
    assert [p["distance"] for p in few.near[:4]] == [0.0] * 4 and few.near[-1]["distance"] > 0
    loose = audit_images(paths, min_pairs=0, threshold=1.0)
    n = len(paths)
    assert len(loose.near) == n * (n - 1) // 2 - 3  # all pairs but the identical set's 3


def test_pseudo_patients_of_the_multi_slice_phantom_follow_patients(tmp_path: Path) -> None:
    root = generate_patient_phantom(tmp_path / "pp", patients=6, slices=4, difficulty=0.3)
    paths = sorted(str(p) for p in root.glob("*COVID/*.png"))
    labels = [0 if "/non-COVID/" in p else 1 for p in paths]
    result = audit_images(paths, labels)
    patients = [Path(p).name.split("%")[0] + Path(p).parent.name for p in paths]
    # a pseudo-patient never mixes two synthetic patients, and most slices find their patient
    for group in set(result.groups):
        assert len({patients[i] for i, g in enumerate(result.groups) if g == group}) == 1
    assert result.n_groups <= 12


def test_grouped_folds_never_split_a_pseudo_patient(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    distances = rng.uniform(0.3, 0.6, size=(60, 60))
    distances = np.minimum(distances, distances.T)
    for start in range(0, 60, 3):  # twenty clusters of three near-identical images
        distances[start:start + 3, start:start + 3] = 0.01
    np.fill_diagonal(distances, 0)
    labels = [(i // 3) % 2 for i in range(60)]
    groups = pseudo_patients(distances, labels)
    assert len(set(groups)) == 20
    images = pd.DataFrame({"label": labels, "group": groups})
    for seed in range(3):
        folds = assign_folds(images, n_folds=5, seed=seed, strategy="grouped")
        assert images.assign(fold=folds).groupby("group")["fold"].nunique().max() == 1
        assert fold_leaks(distances, folds.to_numpy(), 0.125) == {str(k): 0 for k in range(5)}
    stratified = assign_folds(images, n_folds=5, seed=0, strategy="stratified")
    assert sum(fold_leaks(distances, stratified.to_numpy(), 0.125).values()) > 0


def test_groups_file_is_part_of_the_experiment_and_of_the_fold_file(tmp_path: Path) -> None:
    groups = tmp_path / "groups.csv"
    groups.write_text("path,group\na.png,p1\nb.png,p1\nc.png,p2\nd.png,p2\n")
    config = ExperimentConfig("phantom", "squeezenet", split="grouped", groups=str(groups))
    assert config.groups_sha256 is not None and config.groups_tag.startswith("file-")
    assert ExperimentConfig.from_dict(config.to_dict()) == config
    patient = config.with_overrides(groups="patient")
    assert patient.groups_sha256 is None and patient.digest() != config.digest()
    names = {folds_file("runs", "phantom", "grouped", 0, 5, c.groups_tag).name
             for c in (config, patient)}
    assert len(names) == 2
    assert config.with_overrides(split="stratified").groups is None
    images = pd.DataFrame({"relpath": ["a.png", "b.png", "c.png", "d.png"], "label": [0, 1] * 2})
    assert apply_groups_file(images, groups, config.groups_sha256)["group"].tolist() == [
        "p1", "p1", "p2", "p2"]
    groups.write_text("path,group\na.png,p1\nb.png,p2\nc.png,p2\nd.png,p2\n")
    with pytest.raises(ValueError, match="changed since"):
        apply_groups_file(images, groups, config.groups_sha256)
    with pytest.raises(ValueError, match="no group for 1 image"):
        apply_groups_file(images.assign(relpath=["a.png", "b.png", "c.png", "x.png"]), groups)
    with pytest.raises(ValueError, match="split='grouped' only"):
        ExperimentConfig("phantom", "squeezenet", groups="patient")
    with pytest.raises(ValueError, match="not found"):
        ExperimentConfig("phantom", "squeezenet", split="grouped", groups=str(tmp_path / "x"))
