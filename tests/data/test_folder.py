"""Tests of a folder of your own images: loose class folders, a labels CSV, every format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from covidlib.data.folder import LabelsFileError, folder_dataset_name
from covidlib.data.images import load_grayscale
from covidlib.data.index import DatasetLayoutError, index_dataset
from covidlib.data.sources import DownloadError, download_dataset, ensure_dataset


def _image(path: Path, mode: str, size: tuple[int, int] = (12, 9)) -> Path:
    """Save a gradient image of ``mode`` (``I;16`` spans 0..65535) in the format of the
    file's suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ramp = np.linspace(0, 1, size[0] * size[1]).reshape(size[1], size[0])
    if mode == "I;16":
        Image.fromarray((ramp * 65535).astype(np.uint16)).save(path)
    else:
        Image.fromarray((ramp * 255).astype(np.uint8)).convert(mode).save(path)
    return path


@pytest.mark.parametrize("covid, non_covid", [
    ("covid", "Non_COVID"), ("CT_COVID", "ct-noncovid"), ("Covid 19", "NON COVID-19"),
    ("COVID", "non covid"),
])
def test_class_folders_match_loosely(tmp_path: Path, covid: str, non_covid: str) -> None:
    _image(tmp_path / "scans" / covid / "a.png", "L")
    _image(tmp_path / "scans" / non_covid / "deeper" / "b.png", "L")
    index = index_dataset("folder", tmp_path / "scans")
    assert index.name == "scans" and index.counts() == {"covid": 1, "non_covid": 1}
    assert sorted(index.images["relpath"]) == sorted([f"{covid}/a.png",
                                                      f"{non_covid}/deeper/b.png"])


@pytest.mark.parametrize("name, mode", [
    ("a.png", "RGBA"), ("b.jpg", "RGB"), ("c.bmp", "RGB"), ("d.tif", "I;16"),
    ("e.tiff", "L"), ("f.png", "I;16"),
])
def test_every_format_pillow_reads_decodes_to_full_range_grey(tmp_path: Path, name: str,
                                                              mode: str) -> None:
    path = _image(tmp_path / "COVID" / name, mode)
    _image(tmp_path / "non-COVID" / "g.png", "L")
    index = index_dataset("folder", tmp_path)
    assert index.problems.empty and len(index.images) == 2
    grey = load_grayscale(path)
    assert grey.mode == "L" and grey.size == (12, 9)
    low, high = grey.getextrema()
    assert high - low > 200  # 16-bit scaled from its own range, not clipped to black


def test_one_class_folder_indexes(tmp_path: Path) -> None:
    _image(tmp_path / "covid" / "a.png", "L")
    assert index_dataset("folder", tmp_path).counts() == {"covid": 1, "non_covid": 0}


@pytest.mark.parametrize("make, match", [
    (lambda root: (root / "COVID").mkdir(parents=True), "holds no readable file"),
    (lambda root: _image(root / "xrays" / "a.png", "L"), "has no class folder"),
    (lambda root: (root / "COVID").mkdir(parents=True)
     or (root / "COVID" / "a.png").write_bytes(b"not an image"), "no readable image"),
])
def test_unusable_folders_are_one_line_errors(tmp_path: Path, make, match: str) -> None:
    make(tmp_path / "scans")
    with pytest.raises(DatasetLayoutError, match=match) as caught:
        index_dataset("folder", tmp_path / "scans")
    assert "\n" not in str(caught.value) and "scans" in str(caught.value)


def test_a_folder_needs_its_root_and_has_nothing_to_download(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="--root DIR"):
        ensure_dataset("folder")
    with pytest.raises(FileNotFoundError, match="--root DIR"):
        index_dataset("folder")
    with pytest.raises(DownloadError, match="nothing to download"):
        download_dataset("folder", tmp_path)


def test_labels_file(tmp_path: Path) -> None:
    for name in ("x/a.png", "b.jpg", "c.bmp", "d.tif"):
        _image(tmp_path / name, "RGB" if name.endswith((".jpg", ".bmp")) else "L")
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\nx/a.png,1\nb.jpg,COVID\nc.bmp, non_covid \nd.tif,0\n")
    index = index_dataset("folder", tmp_path, labels=labels)
    assert index.images["label"].tolist() == [1, 1, 0, 0]
    assert index.images["relpath"].tolist() == ["x/a.png", "b.jpg", "c.bmp", "d.tif"]
    with pytest.raises(ValueError, match="leave out the dataset name"):
        index_dataset("covid19-ct", tmp_path, labels=labels)


@pytest.mark.parametrize("text, match", [
    ("path,label\na.png,maybe\n", "line 2: unknown label 'maybe'"),
    ("path,label\na.png,1\nmissing.png,0\n", "line 3: 'missing.png' is not a file"),
    ("file,label\na.png,1\n", "needs the columns path,label"),
    ("path,label\n", "lists no image"),
    ("path,label\na.png,1\n./a.png,0\n", "listed twice"),
    ("path,label\n../outside.png,1\n", "outside"),
])
def test_labels_file_errors_name_the_row(tmp_path: Path, text: str, match: str) -> None:
    root = tmp_path / "scans"
    _image(root / "a.png", "L")
    _image(tmp_path / "outside.png", "L")
    (tmp_path / "labels.csv").write_text(text)
    with pytest.raises(LabelsFileError, match=match) as caught:
        index_dataset("folder", root, labels=tmp_path / "labels.csv")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("folder, name", [
    ("My scans (2021)", "My-scans-2021"), ("covid19-ct", "covid19-ct-folder"),
    ("folder", "folder"), ("ünï", "n"),
])
def test_folder_dataset_name(tmp_path: Path, folder: str, name: str) -> None:
    assert folder_dataset_name(tmp_path / folder) == name
