"""Tests for covidlib.data.datasets: registry, layouts, index, problems, duplicates, CLI."""

from __future__ import annotations

import dataclasses
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from covidlib.cli import main
from covidlib.data import datasets as ds
from covidlib.data.datasets import (
    DATASETS,
    CountVariant,
    DatasetLayoutError,
    DatasetProblemsError,
    ensure_dataset,
    find_duplicates,
    index_dataset,
    list_datasets,
    source_prefix,
)


def _png(path: Path, size: tuple[int, int] = (12, 8), mode: str = "L", seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    channels = {"L": None, "RGB": 3, "RGBA": 4}[mode]
    shape = (size[1], size[0]) if channels is None else (size[1], size[0], channels)
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(path)
    return path


def _tree(root: Path, name: str, n_covid: int = 2, n_non: int = 3) -> Path:
    """Build a tiny fake copy of a registry dataset (class folders only)."""
    covid, non = DATASETS[name].classes
    for i in range(n_covid):
        _png(root / covid.folder / f"c{i}.png", size=(10 + i, 8), seed=i)
    for i in range(n_non):
        _png(root / non.folder / f"n{i}.png", size=(8, 12 + i), mode="RGB", seed=100 + i)
    return root


def test_registry_entries_are_consistent() -> None:
    assert set(DATASETS) == {"sars-cov-2-ct", "covid19-ct", "phantom"}
    for spec in DATASETS.values():
        assert [c.label for c in spec.classes] == [1, 0]
        assert [c.name for c in spec.classes] == ["COVID", "non-COVID"]
    sars = {v.name: (v.covid, v.non_covid) for v in DATASETS["sars-cov-2-ct"].expected_counts}
    assert sars == {"paper": (1252, 1230), "public copy": (1252, 1229)}
    table = list_datasets()
    assert list(table.index) == list(DATASETS)
    assert table.loc["covid19-ct", "counts"] == "official: 349/397"
    assert table["citation"].str.len().min() > 10


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_each_registry_layout_indexes(tmp_path: Path, name: str) -> None:
    root = _tree(tmp_path / name, name)
    index = index_dataset(name, root)
    assert index.counts() == {"covid": 2, "non_covid": 3}
    assert index.problems.empty
    images = index.images
    assert list(images.columns) == list(ds.IMAGE_COLUMNS)
    assert set(images["mode"]) == {"L", "RGB"}
    assert images["group"].nunique() == 5  # every file its own group or source
    assert images["split"].isna().all()
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in images["path"])
    summary = index.summary()
    assert summary["size_min"] == [8, 8] and summary["size_max"] == [11, 14]
    assert summary["counts_match"] is None
    json.dumps(summary)


def test_wrapper_folder_and_case_insensitive_names(tmp_path: Path) -> None:
    root = tmp_path / "sars"
    _png(root / "download" / "covid" / "a.png")
    _png(root / "download" / "Non-Covid" / "b.png")
    assert index_dataset("sars-cov-2-ct", root).counts() == {"covid": 1, "non_covid": 1}


def test_counts_variant_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = dataclasses.replace(
        DATASETS["sars-cov-2-ct"],
        expected_counts=(CountVariant("paper", 2, 3), CountVariant("public copy", 2, 2)),
    )
    monkeypatch.setitem(DATASETS, "sars-cov-2-ct", spec)
    root = _tree(tmp_path / "s", "sars-cov-2-ct", 2, 2)
    assert index_dataset("sars-cov-2-ct", root).summary()["counts_match"] == "public copy"
    _png(root / "non-COVID" / "extra.png")
    assert index_dataset("sars-cov-2-ct", root).matched_counts() == "paper"


def _covid_ct_with_metadata(root: Path) -> Path:
    names = ["2020.01.24.919183-p27-132.png", "a b%0.png", "a b%1.png", "x.y.z.png"]
    for i, name in enumerate(names):
        _png(root / "CT_COVID" / name, mode="RGBA", seed=i)
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


def test_covid19_ct_groups_and_splits(tmp_path: Path) -> None:
    index = index_dataset("covid19-ct", _covid_ct_with_metadata(tmp_path / "ct"))
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


def test_split_list_naming_a_missing_file_is_a_problem(tmp_path: Path) -> None:
    root = _covid_ct_with_metadata(tmp_path / "ct")
    (root / "CT_NonCOVID" / "15.png").unlink()
    problems = index_dataset("covid19-ct", root).problems
    assert len(problems) == 1 and "15.png" in problems["path"].iloc[0]
    assert "train split" in problems["error"].iloc[0]


@pytest.mark.parametrize("nested", [True, False])
def test_covid19_ct_zip_layout_is_extracted(tmp_path: Path, nested: bool) -> None:
    source = _tree(tmp_path / "src", "covid19-ct")
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


def test_wrong_layout_lists_expected_and_found(tmp_path: Path) -> None:
    _png(tmp_path / "images" / "a.png")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DatasetLayoutError) as caught:
        index_dataset("covid19-ct", tmp_path)
    message = str(caught.value)
    assert "CT_COVID/" in message and "CT_NonCOVID/" in message and "CT_COVID.zip" in message
    assert "images/" in message and "notes.txt" in message


def test_bad_files_are_problems_and_hidden_files_are_ignored(tmp_path: Path) -> None:
    root = _tree(tmp_path / "d", "sars-cov-2-ct")
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


def test_empty_class_is_a_problem(tmp_path: Path) -> None:
    root = _tree(tmp_path / "d", "sars-cov-2-ct", n_covid=0)
    (root / "COVID").mkdir(exist_ok=True)
    index = index_dataset("sars-cov-2-ct", root)
    assert len(index.problems) == 1 and "contains no images" in index.problems["error"].iloc[0]
    assert index.summary()["counts"] == {"covid": 0, "non_covid": 3}


def test_phantom_masks_are_linked(tmp_path: Path) -> None:
    root = _tree(tmp_path / "p", "phantom")
    _png(root / "masks" / "COVID" / "c0.png")
    images = index_dataset("phantom", root).images.set_index("relpath")
    assert images.loc["COVID/c0.png", "mask_path"].endswith("masks/COVID/c0.png")
    assert pd.isna(images.loc["COVID/c1.png", "mask_path"])


def test_ensure_dataset_real_missing_says_how(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="covidlib datasets download covid19-ct"):
        ensure_dataset("covid19-ct")
    root = _tree(tmp_path / "ok", "covid19-ct")
    assert ensure_dataset("covid19-ct", root) == root


def test_ensure_dataset_phantom_uses_profile_size(monkeypatch: pytest.MonkeyPatch) -> None:
    import covidlib.data.phantom

    calls = []

    def fake_generate(out_dir: Path, n: int = 200, **kwargs: object) -> Path:
        calls.append((Path(out_dir), n))
        return Path(out_dir)

    monkeypatch.setattr(covidlib.data.phantom, "generate_phantom", fake_generate)
    monkeypatch.setenv("COVIDLIB_PROFILE", "quick")
    root = ensure_dataset("phantom")
    assert calls == [(Path(os.environ["COVIDLIB_DATA"]) / "phantom", 200)] and root == calls[0][0]


def test_source_prefix() -> None:
    assert source_prefix("2020.02.10.20021584-p6-52%13.png") == "2020.02.10.20021584-p6-52.png"
    assert source_prefix("1%0.JPG") == "1.jpg" and source_prefix("noext") == "noext"


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


# ---------------------------------------------------------------- command line


def test_cli_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["datasets", "list"]) == 0
    out = capsys.readouterr().out
    assert "sars-cov-2-ct" in out and "1252/1229" in out


def test_cli_index_json_and_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _tree(tmp_path / "ct", "covid19-ct")
    (root / "CT_COVID" / "bad.png").write_text("no")
    assert main(["datasets", "index", "covid19-ct", "--root", str(root), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["dataset"] == "covid19-ct" and summary["n_images"] == 5
    assert summary["counts"] == {"covid": 2, "non_covid": 3}
    assert summary["size_min"] == [8, 8] and summary["n_groups"] == 5
    assert [Path(p["path"]).name for p in summary["problems"]] == ["bad.png"]
    assert main(["datasets", "index", "covid19-ct", "--root", str(tmp_path / "none")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["datasets", "index", "sars-cov-2-ct", "--root", str(root)]) == 2
    assert "expected the folders COVID/, non-COVID/" in capsys.readouterr().err


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
