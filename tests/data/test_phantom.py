"""Tests for the synthetic phantom dataset (covidlib.data.phantom)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from covidlib.data import phantom
from covidlib.data.phantom import (
    COVID_FINDINGS,
    LABELS_COLUMNS,
    NON_COVID_FINDINGS,
    SIZE_MAX,
    SIZE_MIN,
    PhantomExistsError,
    _disk,
    generate_phantom,
    is_covid_index,
    render_phantom,
    render_slice,
    sample_size,
)

N = 24


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One phantom of N images shared by the read-only tests."""
    return generate_phantom(tmp_path_factory.mktemp("phantom") / "ph", n=N, seed=3)


def read_labels(root: Path) -> list[dict[str, str]]:
    with open(root / "labels.csv", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def folder_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


# -- rendering --------------------------------------------------------------------------


@pytest.mark.parametrize("covid", [True, False])
@pytest.mark.parametrize("difficulty", [0.0, 0.5, 1.0])
def test_render_masks_nest_inside_lungs_and_body(covid: bool, difficulty: float) -> None:
    for seed in range(3):
        size = sample_size(np.random.default_rng(seed))
        rendered = render_phantom(np.random.default_rng(seed), covid, difficulty, size)
        assert rendered.image.dtype == np.uint8
        assert rendered.image.shape == (size[1], size[0])
        for mask in (rendered.lesion_mask, rendered.lung_mask, rendered.body_mask):
            assert mask.dtype == bool and mask.shape == rendered.image.shape
        assert rendered.lung_mask.any()
        assert not (rendered.lung_mask & ~rendered.body_mask).any()
        assert not (rendered.lesion_mask & ~rendered.lung_mask).any()
        assert rendered.lesion_mask.any() == covid
        assert rendered.finding in (COVID_FINDINGS if covid else NON_COVID_FINDINGS)


def test_render_looks_like_ct() -> None:
    """Lungs are darker than the body around them, air outside is darkest."""
    rendered = render_phantom(np.random.default_rng(5), False, 0.5, (300, 220), finding="normal")
    image = rendered.image.astype(float)
    soft_tissue = rendered.body_mask & ~rendered.lung_mask
    outside = ~rendered.body_mask
    assert image[rendered.lung_mask].mean() + 60 < image[soft_tissue].mean()
    assert image[outside].mean() < image[rendered.lung_mask].mean()


def test_lesions_are_brighter_than_lung() -> None:
    rendered = render_phantom(np.random.default_rng(2), True, 0.3, (320, 240))
    image = rendered.image.astype(float)
    healthy = rendered.lung_mask & ~rendered.lesion_mask
    assert image[rendered.lesion_mask].mean() > image[healthy].mean() + 10


def test_render_slice_is_reproducible_and_seed_dependent() -> None:
    first = render_slice(np.random.default_rng(9), True, 0.5, (240, 180))
    again = render_slice(np.random.default_rng(9), True, 0.5, (240, 180))
    other = render_slice(np.random.default_rng(10), True, 0.5, (240, 180))
    assert np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    assert not np.array_equal(first[0], other[0])


@pytest.mark.parametrize("finding", list(NON_COVID_FINDINGS))
def test_every_non_covid_finding_renders_without_lesion_mask(finding: str) -> None:
    rendered = render_phantom(np.random.default_rng(4), False, 0.7, (260, 200), finding=finding)
    assert rendered.finding == finding
    assert not rendered.lesion_mask.any()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"difficulty": 1.5}, "difficulty"),
        ({"difficulty": -0.1}, "difficulty"),
        ({"size": (20, 20)}, "size"),
        ({"finding": "ggo", "covid": False}, "finding"),
        ({"finding": "tumour"}, "finding"),
    ],
)
def test_render_rejects_bad_arguments(kwargs: dict, message: str) -> None:
    arguments = {"covid": True, "difficulty": 0.5, "size": (200, 150), **kwargs}
    with pytest.raises(ValueError, match=message):
        render_phantom(np.random.default_rng(0), **arguments)


def test_sizes_cover_the_real_range() -> None:
    rng = np.random.default_rng(0)
    sizes = np.array([sample_size(rng) for _ in range(400)])
    assert (sizes >= SIZE_MIN).all() and (sizes <= SIZE_MAX).all()
    aspect = sizes[:, 0] / sizes[:, 1]
    assert aspect.min() < 1.15 and aspect.max() > 1.6  # near-square and clearly landscape
    assert sizes[:, 0].min() < 230 and sizes[:, 0].max() > 470


def test_classes_balanced_per_pair_and_independent_of_n() -> None:
    labels = [is_covid_index(7, index) for index in range(1, 201)]
    assert sum(labels) == 100
    assert all(labels[k] != labels[k + 1] for k in range(0, 200, 2))
    assert labels[:10] != [True, False] * 5 and labels[:10] != [False, True] * 5


# -- the dataset on disk ----------------------------------------------------------------


def test_layout_labels_and_manifest_agree(generated: Path) -> None:
    rows = read_labels(generated)
    assert tuple(rows[0]) == LABELS_COLUMNS
    assert [row["file"].split("/")[-1] for row in rows] == [
        f"phantom_{index:05d}.png" for index in range(1, N + 1)
    ]
    for class_name in ("COVID", "non-COVID"):
        on_disk = sorted(p.name for p in (generated / class_name).iterdir())
        listed = sorted(r["file"].split("/")[-1] for r in rows if r["class_name"] == class_name)
        assert on_disk == listed
        assert sorted(p.name for p in (generated / "masks" / class_name).iterdir()) == listed
    manifest = json.loads((generated / "manifest.json").read_text())
    assert manifest["n"] == N and manifest["seed"] == 3 and manifest["difficulty"] == 0.5
    assert manifest["counts"] == {"COVID": N // 2, "non-COVID": N // 2}
    assert sum(manifest["findings"].values()) == N
    assert not list(generated.parent.glob(".*"))  # no temporary folder left behind


def test_images_and_masks_match_labels(generated: Path) -> None:
    for row in read_labels(generated):
        image = Image.open(generated / row["file"])
        mask = Image.open(generated / row["mask"])
        assert image.mode == "L" and mask.mode == "L"
        assert image.size == mask.size == (int(row["width"]), int(row["height"]))
        values = np.asarray(mask)
        assert set(np.unique(values)) <= {0, 255}
        assert row["label"] == ("1" if row["class_name"] == "COVID" else "0")
        if row["class_name"] == "COVID":
            assert row["finding"] in COVID_FINDINGS
            assert values.any()
            # Lesions lie inside the (bright) body, never on the black background.
            assert np.asarray(image)[values > 0].mean() > 20
        else:
            assert row["finding"] in NON_COVID_FINDINGS
            assert not values.any()


def test_findings_mix(tmp_path: Path) -> None:
    root = generate_phantom(tmp_path / "mix", n=40, seed=1)
    findings = {row["finding"] for row in read_labels(root)}
    assert len(findings & set(NON_COVID_FINDINGS)) >= 3
    assert findings & set(COVID_FINDINGS)


def test_same_seed_is_byte_identical_and_seeds_differ(tmp_path: Path, generated: Path) -> None:
    again = generate_phantom(tmp_path / "again", n=N, seed=3)
    assert folder_bytes(again) == folder_bytes(generated)
    other = generate_phantom(tmp_path / "other", n=N, seed=4)
    assert folder_bytes(other)["labels.csv"] != folder_bytes(generated)["labels.csv"]


def test_image_k_does_not_depend_on_n(tmp_path: Path, generated: Path) -> None:
    small = generate_phantom(tmp_path / "small", n=6, seed=3)
    for name, data in folder_bytes(small).items():
        if name.endswith(".png"):
            assert data == (generated / name).read_bytes()


def test_existing_phantom_is_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = generate_phantom(tmp_path / "cache", n=4)
    stamp = (root / "labels.csv").stat().st_mtime_ns

    def must_not_render(*args: object, **kwargs: object) -> None:
        raise AssertionError("a current phantom was generated again")

    monkeypatch.setattr(_disk, "_write_phantom", must_not_render)
    assert generate_phantom(root, n=4) == root
    assert (root / "labels.csv").stat().st_mtime_ns == stamp


def test_stale_phantom_needs_overwrite(tmp_path: Path) -> None:
    root = generate_phantom(tmp_path / "stale", n=4)
    with pytest.raises(PhantomExistsError, match="overwrite"):
        generate_phantom(root, n=6)
    assert len(read_labels(root)) == 4  # untouched
    generate_phantom(root, n=6, overwrite=True)
    assert len(read_labels(root)) == 6
    assert not list(tmp_path.glob(".*"))


def test_refuses_to_replace_a_foreign_folder(tmp_path: Path) -> None:
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(PhantomExistsError, match="not a phantom"):
        generate_phantom(foreign, n=4, overwrite=True)
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_empty_folder_is_filled(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    root = generate_phantom(tmp_path / "empty", n=2)
    assert len(read_labels(root)) == 2


def test_error_midway_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"count": 0}
    original = _disk._save_png

    def failing_save(array: np.ndarray, path: Path) -> None:
        calls["count"] += 1
        if calls["count"] == 5:
            raise OSError("disk full (injected)")
        original(array, path)

    monkeypatch.setattr(_disk, "_save_png", failing_save)
    with pytest.raises(OSError, match="injected"):
        generate_phantom(tmp_path / "broken", n=6)
    assert list(tmp_path.iterdir()) == []


def test_error_during_overwrite_keeps_the_old_phantom(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = generate_phantom(tmp_path / "keep", n=4)
    before = folder_bytes(root)

    def failing_write(*args: object, **kwargs: object) -> None:
        raise RuntimeError("crash (injected)")

    monkeypatch.setattr(_disk, "_write_phantom", failing_write)
    with pytest.raises(RuntimeError, match="injected"):
        generate_phantom(root, n=6, overwrite=True)
    assert folder_bytes(root) == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 1}, "at least 2"),
        ({"n": 2.5}, "integer"),
        ({"seed": -1}, "seed"),
        ({"difficulty": 1.01}, "difficulty"),
        ({"difficulty": "hard"}, "difficulty"),
    ],
)
def test_generate_rejects_bad_arguments(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate_phantom(tmp_path / "bad", **kwargs)
    assert not (tmp_path / "bad").exists()


def test_ensure_phantom_follows_the_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from covidlib.config import get_profile

    four = get_profile("quick").with_overrides(phantom_size=4)
    six = four.with_overrides(phantom_size=6, phantom_difficulty=0.9)
    default = phantom.ensure_phantom(profile=four)
    assert default == Path(os.environ["COVIDLIB_DATA"]) / "phantom"
    assert len(read_labels(default)) == 4
    # the default folder is a cache: another profile's phantom replaces it
    assert len(read_labels(phantom.ensure_phantom(profile=six))) == 6
    assert phantom.read_manifest(default)["difficulty"] == 0.9
    # an explicit folder is not replaced
    mine = phantom.ensure_phantom(tmp_path / "mine", four)
    with pytest.raises(PhantomExistsError, match="overwrite"):
        phantom.ensure_phantom(mine, six)
    monkeypatch.setenv("COVIDLIB_PROFILE", "quick")
    monkeypatch.setattr(_disk, "generate_phantom", lambda out, **kw: (Path(out), kw))
    assert phantom.ensure_phantom(tmp_path / "q")[1] == {
        "n": 200,
        "difficulty": 0.2,
        "overwrite": False,
    }


def test_link_loop_is_refused(tmp_path: Path) -> None:
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    with pytest.raises(PhantomExistsError, match="link loop"):
        generate_phantom(loop, n=2)
    assert loop.is_symlink()


def test_patient_phantom_has_its_own_name_slices_per_patient_and_groups(tmp_path: Path) -> None:
    from covidlib.data.index import index_dataset
    from covidlib.data.phantom import PATIENT_PHANTOM, generate_patient_phantom
    from covidlib.data.registry import default_root

    assert default_root(PATIENT_PHANTOM) != default_root("phantom")
    root = generate_patient_phantom(tmp_path / "pp", patients=4, slices=3, seed=1)
    again = generate_patient_phantom(tmp_path / "pp", patients=4, slices=3, seed=1)
    assert again == root
    images = index_dataset(PATIENT_PHANTOM, root).images
    assert len(images) == 12 and images["group"].nunique() == 4
    assert images.groupby("group")["label"].nunique().max() == 1
    first = sorted((root / "COVID").glob("*.png"))[:2]
    assert first[0].read_bytes() != first[1].read_bytes()  # slices differ, but slightly
    with pytest.raises(ValueError, match="slices must be"):
        generate_patient_phantom(tmp_path / "bad", patients=2, slices=0)
