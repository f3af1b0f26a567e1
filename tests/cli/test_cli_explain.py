"""`covidlib tsne`, `gradcam` and `localize` on a tiny phantom run trained by `covidlib cv`
(SqueezeNet, 24 images, 2 folds, 1 epoch), and `localize` on the 50 real lesion slices."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from covidlib.cli import main

SHARED_LESION_MASKS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / \
    "ct-lesion-masks"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from covidlib.data.phantom import generate_phantom

    folder = tmp_path_factory.mktemp("cli-explain")
    root = generate_phantom(folder / "phantom", n=24, seed=0, difficulty=0.2)
    assert main(["cv", "--dataset", "phantom", "--root", str(root), "--model", "squeezenet",
                 "--profile", "quick", "--folds", "2", "--epochs", "1", "--device", "cpu",
                 "--out", str(folder / "runs"), "--run-name", "tiny"]) == 0
    return folder / "runs" / "phantom" / "squeezenet" / "tiny"


@pytest.fixture(scope="module")
def lesion_masks() -> Path:
    if not (SHARED_LESION_MASKS / "images").is_dir():
        pytest.skip(f"{SHARED_LESION_MASKS} not found")
    return SHARED_LESION_MASKS


def test_tsne_json(tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "map.png"
    assert main(["tsne", "--run", str(tiny_run), "--method", "pca", "--out", str(out),
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert out.is_file() and report["n_images"] == 24
    assert set(report["embedding"]) == {"silhouette", "knn_accuracy"}


def test_gradcam_writes_png_and_npy_at_original_size(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images = [Path(p) for p in pd.read_csv(tiny_run / "folds.csv")["path"][:2]]
    assert main(["gradcam", "--run", str(tiny_run), "--fold", "1", *map(str, images),
                 "--out", str(tmp_path / "cams")]) == 0
    for image in images:
        size = Image.open(image).size
        heat = np.load(tmp_path / "cams" / f"{image.stem}-gradcam.npy")
        assert heat.shape == (size[1], size[0]) and heat.dtype == np.float32
        assert 0 <= heat.min() and heat.max() <= 1
        assert Image.open(tmp_path / "cams" / f"{image.stem}-gradcam.png").size == size
    assert "P(COVID)" in capsys.readouterr().out


def test_gradcam_bad_input_is_one_line(tiny_run: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gradcam", "--run", str(tiny_run), str(tmp_path / "none.png"),
                 "--out", str(tmp_path)]) == 2
    assert main(["gradcam", "--run", str(tiny_run), "--fold", "7",
                 str(pd.read_csv(tiny_run / "folds.csv")["path"][0]), "--out",
                 str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "not found" in err and "fold 7" in err and "Traceback" not in err


def test_localize_prints_scores_with_baselines(
    tiny_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["localize", "--run", str(tiny_run)]) == 0
    text = capsys.readouterr().out
    assert "gradcam" in text and "random" in text and "center" in text
    assert main(["localize", "--run", str(tiny_run), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    folds = pd.read_csv(tiny_run / "folds.csv")
    assert summary["n_images"] == int((folds["label"] == 1).sum())
    for name in ("gradcam", "random", "center"):
        for score in ("pointing_game", "energy"):
            entry = summary["scores"][name][score]
            assert entry["ci_low"] <= entry["value"] <= entry["ci_high"]


def test_localize_real_lesion_masks(
    tiny_run: Path, lesion_masks: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["localize", "--run", str(tiny_run), "--masks", str(lesion_masks),
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n_images"] == 50
    assert set(summary["scores"]) == {"gradcam", "random", "center", "body", "lungs"}
    assert summary["folds"] == [0]
