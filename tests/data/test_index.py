"""Tests for covidlib.data.index: layouts, archives, groups, splits, problems, the index."""

from __future__ import annotations

import dataclasses
import json
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from covidlib.data import index as ix
from covidlib.data.index import (
    DatasetLayoutError,
    DatasetProblemsError,
    find_layout,
    index_dataset,
    source_prefix,
    walk_visible_files,
)
from covidlib.data.registry import DATASETS, CountVariant

MakePng = Callable[..., Path]  # the make_png fixture of conftest.py
MakeTree = Callable[..., Path]  # the make_tree fixture


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_each_registry_layout_indexes(tmp_path: Path, name: str, make_tree: MakeTree) -> None:
    root = make_tree(tmp_path / name, name)
    index = index_dataset(name, root)
    assert index.counts() == {"covid": 2, "non_covid": 3}
    assert index.problems.empty
    images = index.images
    assert list(images.columns) == list(ix.IMAGE_COLUMNS)
    assert set(images["mode"]) == {"L", "RGB"}
    assert images["group"].nunique() == 5  # every file its own group or source
    assert images["split"].isna().all()
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in images["path"])
    summary = index.summary()
    assert summary["size_min"] == [8, 8] and summary["size_max"] == [11, 14]
    assert summary["counts_match"] is None
    json.dumps(summary)


def test_wrapper_folder_and_case_insensitive_names(tmp_path: Path, make_png: MakePng) -> None:
    root = tmp_path / "sars"
    make_png(root / "download" / "covid" / "a.png")
    make_png(root / "download" / "Non-Covid" / "b.png")
    assert index_dataset("sars-cov-2-ct", root).counts() == {"covid": 1, "non_covid": 1}


def test_counts_variant_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_png: MakePng, make_tree: MakeTree
) -> None:
    spec = dataclasses.replace(
        DATASETS["sars-cov-2-ct"],
        expected_counts=(CountVariant("paper", 2, 3), CountVariant("public copy", 2, 2)),
    )
    monkeypatch.setitem(DATASETS, "sars-cov-2-ct", spec)
    root = make_tree(tmp_path / "s", "sars-cov-2-ct", 2, 2)
    assert index_dataset("sars-cov-2-ct", root).summary()["counts_match"] == "public copy"
    make_png(root / "non-COVID" / "extra.png")
    assert index_dataset("sars-cov-2-ct", root).matched_counts() == "paper"


def _covid_ct_with_metadata(root: Path, make_png: MakePng) -> Path:
    names = ["2020.01.24.919183-p27-132.png", "a b%0.png", "a b%1.png", "x.y.z.png"]
    for i, name in enumerate(names):
        make_png(root / "CT_COVID" / name, mode="RGBA", seed=i)
    for i, name in enumerate(["14.png", "14%0.jpg", "14%1.jpg", "15.png"]):
        path = root / "CT_NonCOVID" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (9, 9), (i * 40, 0, 0)).save(path)
    meta = pd.DataFrame(
        {
            "File name": ["2020.01.24.919183-p27-132.png", "a b%0", "a b%1.png", None],
            "Patient ID": ["Patient 1", "Patient 2", "Patient 2", None],
            "DOI": ["d1", "d2", "d2", None],
        }
    )
    meta.to_excel(root / "COVID-CT-MetaInfo.xlsx", sheet_name="positive_captions", index=False)
    lists = {
        "COVID": {"train": names[:3], "test": names[3:]},
        "NonCOVID": {"train": ["14.png", "15.png"], "val": ["14%0.jpg", "14%1.jpg"]},
    }
    for folder, splits in lists.items():
        for split, members in splits.items():
            path = root / "Data-split" / folder / f"{split}CT_{folder}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join(members) + "\n")
    return root


def test_covid19_ct_groups_and_splits(tmp_path: Path, make_png: MakePng) -> None:
    index = index_dataset("covid19-ct", _covid_ct_with_metadata(tmp_path / "ct", make_png))
    images = index.images.set_index(index.images["relpath"].str.split("/").str[-1])
    assert images.loc["2020.01.24.919183-p27-132.png", "group"] == "Patient 1"
    assert images.loc["a b%0.png", "group"] == "Patient 2"  # name lacking .png matched
    assert images.loc["a b%1.png", "group"] == "Patient 2"
    assert images.loc["x.y.z.png", "group_kind"] == "source"  # no metadata row
    assert images.loc["14%0.jpg", "group"] == images.loc["14%1.jpg", "group"]
    assert images.loc["14.png", "group"] != images.loc["14%0.jpg", "group"]
    assert images.loc["14%0.jpg", "split"] == "val" and images.loc["x.y.z.png", "split"] == "test"
    assert index.summary()["splits"]["train"] == {"covid": 3, "non_covid": 2}
    assert index.problems.empty


def test_split_list_naming_a_missing_file_is_a_problem(tmp_path: Path, make_png: MakePng) -> None:
    root = _covid_ct_with_metadata(tmp_path / "ct", make_png)
    (root / "CT_NonCOVID" / "15.png").unlink()
    problems = index_dataset("covid19-ct", root).problems
    assert len(problems) == 1 and "15.png" in problems["path"].iloc[0]
    assert "train split" in problems["error"].iloc[0]


@pytest.mark.parametrize("nested", [True, False])
def test_covid19_ct_zip_layout_is_extracted(
    tmp_path: Path, nested: bool, make_tree: MakeTree
) -> None:
    source = make_tree(tmp_path / "src", "covid19-ct")
    root = tmp_path / "repo"
    (root / "Images-processed").mkdir(parents=True)
    for folder in ("CT_COVID", "CT_NonCOVID"):
        with zipfile.ZipFile(root / "Images-processed" / f"{folder}.zip", "w") as bundle:
            for file in sorted((source / folder).iterdir()):
                bundle.write(file, f"{folder}/{file.name}" if nested else file.name)
            bundle.writestr("__MACOSX/._junk", b"x")
    index = index_dataset("covid19-ct", root)
    assert index.counts() == {"covid": 2, "non_covid": 3}
    assert index.problems.empty
    assert sorted(p.name for p in root.iterdir()) == ["CT_COVID", "CT_NonCOVID", "Images-processed"]


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist.*covidlib datasets download"):
        index_dataset("covid19-ct", tmp_path / "nowhere")


def test_wrong_layout_lists_expected_and_found(tmp_path: Path, make_png: MakePng) -> None:
    make_png(tmp_path / "images" / "a.png")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DatasetLayoutError) as caught:
        index_dataset("covid19-ct", tmp_path)
    message = str(caught.value)
    assert "CT_COVID/" in message and "CT_NonCOVID/" in message and "CT_COVID.zip" in message
    assert "images/" in message and "notes.txt" in message


def test_bad_files_are_problems_and_hidden_files_are_ignored(
    tmp_path: Path, make_tree: MakeTree
) -> None:
    root = make_tree(tmp_path / "d", "sars-cov-2-ct")
    good = (root / "COVID" / "c0.png").read_bytes()
    (root / "COVID" / "truncated.png").write_bytes(good[: len(good) // 2])
    (root / "COVID" / "empty.png").write_bytes(b"")
    (root / "non-COVID" / "readme.txt").write_text("not an image")
    (root / "non-COVID" / "fake.png").write_text("not an image either")
    for litter in (".DS_Store", "._c0.png", "Thumbs.db"):
        (root / "COVID" / litter).write_bytes(b"\x00junk")
    index = index_dataset("sars-cov-2-ct", root)
    assert index.counts() == {"covid": 2, "non_covid": 3}
    names = index.problems["path"].map(lambda p: Path(p).name)
    reasons = dict(zip(names, index.problems["error"], strict=True))
    assert set(reasons) == {"truncated.png", "empty.png", "readme.txt", "fake.png"}
    assert "truncated" in reasons["truncated.png"] and "empty" in reasons["empty.png"]
    assert "not an image" in reasons["readme.txt"]
    with pytest.raises(DatasetProblemsError) as caught:
        index.require_clean()
    assert all(name in str(caught.value) for name in reasons)
    assert len(index.require_clean(skip_problems=True)) == 5


def test_empty_class_is_a_problem(tmp_path: Path, make_tree: MakeTree) -> None:
    root = make_tree(tmp_path / "d", "sars-cov-2-ct", n_covid=0)
    (root / "COVID").mkdir(exist_ok=True)
    index = index_dataset("sars-cov-2-ct", root)
    assert len(index.problems) == 1 and "contains no images" in index.problems["error"].iloc[0]
    assert index.summary()["counts"] == {"covid": 0, "non_covid": 3}


def test_phantom_masks_are_linked(tmp_path: Path, make_png: MakePng, make_tree: MakeTree) -> None:
    root = make_tree(tmp_path / "p", "phantom")
    make_png(root / "masks" / "COVID" / "c0.png")
    images = index_dataset("phantom", root).images.set_index("relpath")
    assert images.loc["COVID/c0.png", "mask_path"].endswith("masks/COVID/c0.png")
    assert pd.isna(images.loc["COVID/c1.png", "mask_path"])


def test_root_that_is_a_file_is_a_layout_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(DatasetLayoutError, match="is a file, not a folder"):
        index_dataset("covid19-ct", tmp_path / "file")


def test_default_root_of_a_real_dataset_is_not_generated() -> None:
    with pytest.raises(FileNotFoundError, match="covid19-ct does not exist.*datasets download"):
        index_dataset("covid19-ct")


def test_default_phantom_is_generated_for_the_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COVIDLIB_PROFILE", "quick")
    import covidlib.config

    small = covidlib.config.PROFILES["quick"].with_overrides(phantom_size=4)
    monkeypatch.setitem(covidlib.config.PROFILES, "quick", small)
    index = index_dataset("phantom")
    assert index.root == Path(os.environ["COVIDLIB_DATA"]) / "phantom"
    assert index.counts() == {"covid": 2, "non_covid": 2} and index.problems.empty


def test_walk_visible_files_skips_litter_and_does_not_follow_link_loops(tmp_path: Path) -> None:
    for name in ("b.png", "a.png", ".DS_Store", "Thumbs.db", "sub/c.png", "__MACOSX/._a.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub" / "up").symlink_to(tmp_path, target_is_directory=True)
    found = [p.relative_to(tmp_path).as_posix() for p in walk_visible_files(tmp_path)]
    assert found == ["a.png", "b.png", "sub/c.png"]


def test_find_layout_without_extract_leaves_archives_alone(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "CT_COVID.zip", "w") as bundle:
        bundle.writestr("x.png", b"x")
    with pytest.raises(DatasetLayoutError, match="CT_COVID.zip"):
        find_layout("covid19-ct", tmp_path, extract=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["CT_COVID.zip"]


def test_unreadable_archive_says_to_download_again(tmp_path: Path) -> None:
    (tmp_path / "CT_COVID.zip").write_bytes(b"not a zip")
    (tmp_path / "CT_NonCOVID").mkdir()
    with pytest.raises(
        DatasetLayoutError, match=r"cannot extract .*CT_COVID\.zip.*download it again"
    ):
        index_dataset("covid19-ct", tmp_path)


def test_source_prefix() -> None:
    assert source_prefix("2020.02.10.20021584-p6-52%13.png") == "2020.02.10.20021584-p6-52.png"
    assert source_prefix("1%0.JPG") == "1.jpg" and source_prefix("noext") == "noext"


# ---------------------------------------------------------------- real data


@pytest.mark.realdata
def test_real_covid19_ct(covid19_ct_root: Path) -> None:
    index = index_dataset("covid19-ct", covid19_ct_root)
    images = index.images
    assert index.counts() == {"covid": 349, "non_covid": 397}
    assert index.problems.empty and index.matched_counts() == "official"
    sizes = {
        label: images[images["label"] == label]["split"].value_counts().to_dict()
        for label in (1, 0)
    }
    assert sizes == {
        1: {"train": 191, "val": 60, "test": 98},
        0: {"train": 234, "val": 58, "test": 105},
    }
    covid = images[images["label"] == 1]
    assert (covid["group_kind"] == "patient").all() and covid["group"].str.startswith(
        "Patient"
    ).all()
    assert covid["group"].nunique() == 213
    assert (images.groupby("group")["split"].nunique() == 1).all()  # no patient in two splits
    assert set(images["mode"]) == {"RGBA", "RGB", "L"}


@pytest.mark.realdata
def test_real_copy_with_two_bad_files(covid19_ct_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "covid19-ct"
    root.mkdir()
    for entry in covid19_ct_root.iterdir():
        if entry.is_dir() and entry.name.startswith("CT_"):
            (root / entry.name).mkdir()
            for file in entry.iterdir():
                (root / entry.name / file.name).symlink_to(file)
        else:
            (root / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    victim = root / "CT_COVID" / sorted(os.listdir(root / "CT_COVID"))[0]
    data = victim.read_bytes()
    victim.unlink()
    victim.write_bytes(data[: len(data) // 3])
    (root / "CT_NonCOVID" / "notes.txt").write_text("a text file in a class folder\n")
    index = index_dataset("covid19-ct", root)
    assert sorted(Path(p).name for p in index.problems["path"]) == sorted(
        [victim.name, "notes.txt"]
    )
    assert index.counts() == {"covid": 348, "non_covid": 397}
