"""Tests of `--root DIR` without a dataset name: a folder of your own images scored by a run
(`evaluate`), audited (`audit`), trained on (`cv`) and mapped (`tsne`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from covidlib.cli import main

TINY = ["--profile", "quick", "--folds", "2", "--epochs", "1", "--canvas-scale", "0.12",
        "--device", "cpu"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, phantom_root: Path) -> Path:
    out = tmp_path_factory.mktemp("folder-runs")
    assert main(["cv", "--dataset", "phantom", "--root", str(phantom_root), "--model",
                 "squeezenet", "--out", str(out), "--run-name", "tiny", *TINY]) == 0
    return out / "phantom" / "squeezenet" / "tiny"


def plain_folder(phantom_root: Path, target: Path, folders: dict[str, str]) -> Path:
    """Copy 4 phantom images per class into ``target/<folder>/``: one as JPEG, one as 16-bit
    TIFF (in a subfolder), two as PNG."""
    for source, folder in folders.items():
        for i, path in enumerate(sorted((phantom_root / source).glob("*.png"))[:4]):
            destination = target / folder
            destination.mkdir(parents=True, exist_ok=True)
            grey = Image.open(path).convert("L")
            if i == 0:
                grey.convert("RGB").save(destination / f"{path.stem}.jpg")
            elif i == 1:
                (destination / "deeper").mkdir(exist_ok=True)
                wide = np.asarray(grey).astype(np.uint16) * 257
                Image.fromarray(wide).save(destination / "deeper" / f"{path.stem}.tif")
            else:
                shutil.copy(path, destination / path.name)
    return target


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    return err


def test_evaluate_scores_a_plain_two_folder_dataset(
    tiny_run: Path, phantom_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = plain_folder(phantom_root, tmp_path / "my scans",
                        {"COVID": "covid", "non-COVID": "Non_COVID"})
    capsys.readouterr()
    assert main(["evaluate", "--run", str(tiny_run), "--root", str(root), "--out",
                 str(tmp_path / "results"), "--json", "--resamples", "100"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n_images"] == 8 and report["dataset"] == "my-scans"
    assert report["not_computed"] == {} and "roc_auc" in report["metrics"]
    stored = tmp_path / "results" / "my-scans" / "squeezenet" / "external-tiny"
    text = (stored / "provenance.json").read_text() + (stored / "report.json").read_text()
    assert str(tmp_path) not in text  # no machine path in a stored result
    assert json.loads((stored / "provenance.json").read_text())["external"]["run"] == \
        "phantom/squeezenet/tiny"
    assert main(["audit", "--root", str(root), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["identical"]) == 0
    assert main(["tsne", "--run", str(tiny_run), "--root", str(root), "--method", "pca",
                 "--out", str(tmp_path / "map.png"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_images"] == 8


def test_evaluate_a_one_class_folder_and_a_labels_file(
    tiny_run: Path, phantom_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = plain_folder(phantom_root, tmp_path / "positives", {"COVID": "CT_COVID"})
    assert main(["evaluate", "--run", str(tiny_run), "--root", str(root), "--out",
                 str(tmp_path / "results"), "--resamples", "100"]) == 0
    out = capsys.readouterr().out
    assert "specificity  not computed: no non-COVID image" in out
    assert "roc_auc      not computed: needs both classes" in out
    flat = tmp_path / "flat"
    flat.mkdir()
    lines = ["path,label"]
    for i, path in enumerate(sorted(phantom_root.glob("*/*.png"))[:6]):
        shutil.copy(path, flat / f"img{i}.png")
        lines.append(f"img{i}.png,{'COVID' if path.parent.name == 'COVID' else 0}")
    (flat / "labels.csv").write_text("\n".join(lines) + "\n")
    assert main(["evaluate", "--run", str(tiny_run), "--root", str(flat), "--labels",
                 str(flat / "labels.csv"), "--out", str(tmp_path / "results"), "--json",
                 "--resamples", "100"]) == 0
    assert json.loads(capsys.readouterr().out)["n_images"] == 6


def test_cv_trains_on_a_plain_folder_and_refuses_one_class(
    phantom_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = plain_folder(phantom_root, tmp_path / "scans",
                        {"COVID": "CT_COVID", "non-COVID": "CT_NonCOVID"})
    assert main(["cv", "--root", str(root), "--model", "squeezenet", "--out",
                 str(tmp_path / "runs"), *TINY]) == 0
    summary = tmp_path / "runs" / "scans" / "squeezenet" / "quick" / "summary.json"
    assert json.loads(summary.read_text())["dataset"] == "scans"
    assert list((tmp_path / "runs" / "scans").glob("folds-*.csv"))
    shutil.rmtree(root / "CT_NonCOVID")
    capsys.readouterr()
    assert main(["cv", "--root", str(root), "--model", "squeezenet", "--out",
                 str(tmp_path / "other"), *TINY]) == 2
    assert "one class only (COVID)" in _error_line(capsys)
    assert not (tmp_path / "other").exists()


@pytest.mark.parametrize("case, expected", [
    ("empty", "holds no readable file"),
    ("no-classes", "has no class folder"),
    ("unknown-label", "unknown label 'maybe'"),
    ("missing-file", "'gone.png' is not a file"),
    ("labels-with-name", "leave out the dataset name phantom"),
    ("nothing", "give a dataset name or --root DIR"),
])
def test_bad_folders_are_one_line_errors_and_write_nothing(
    tiny_run: Path, phantom_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    case: str, expected: str
) -> None:
    root = tmp_path / "scans"
    (root / "COVID").mkdir(parents=True)
    labels = tmp_path / "labels.csv"
    if case == "no-classes":
        (root / "COVID").rename(root / "xrays")
    if case in ("unknown-label", "missing-file", "labels-with-name"):
        shutil.copy(next(phantom_root.glob("COVID/*.png")), root / "a.png")
        labels.write_text({"unknown-label": "path,label\na.png,maybe\n",
                           "missing-file": "path,label\na.png,1\ngone.png,0\n"}
                          .get(case, "path,label\na.png,1\n"))
    args = ["evaluate", "--run", str(tiny_run), "--out", str(tmp_path / "results")]
    if case != "nothing":
        args += ["--root", str(root)]
    if case == "labels-with-name":
        args += ["--dataset", "phantom"]
    if labels.exists():
        args += ["--labels", str(labels)]
    assert main(args) == 2
    assert expected in _error_line(capsys)
    assert not (tmp_path / "results").exists()
