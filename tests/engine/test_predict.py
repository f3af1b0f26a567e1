"""Tests of predicting with verified fold models (hand-made run folders, random weights)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from covidlib.engine.predict import check_threshold, load_fold_model, predict_images
from covidlib.engine.readers import RunFolderError
from covidlib.engine.runs import RunFolder
from covidlib.models.factory import create_model

CONFIG = {"model": "squeezenet", "canvas": [64, 48], "train": {"seed": 0}}


def add_fold(run: RunFolder, fold: int, seed: int) -> None:
    torch.manual_seed(seed)
    files = run.fold(fold)
    files.begin(json.loads(run.config_file.read_text()))
    table = pd.DataFrame({"path": ["a.png"], "label": [1], "probability": [0.5], "fold": fold})
    files.write_results(create_model("squeezenet").state_dict(), table,
                        {"fold": fold, "accuracy": 0.5},
                        [{"epoch": 0, "train_loss": 0.7, "lr": 3e-4, "seconds": 1.0}])


@pytest.fixture
def run(tmp_path: Path) -> RunFolder:
    folder = RunFolder(tmp_path / "run")
    folder.write_config(CONFIG)
    add_fold(folder, 0, seed=0)
    add_fold(folder, 1, seed=1)
    return folder


@pytest.fixture
def images(phantom_root: Path) -> list[Path]:
    return sorted(phantom_root.glob("*/phantom_*.png"))[:3]


def test_predict_averages_the_verified_folds(run: RunFolder, images: list[Path]) -> None:
    both = predict_images(run.path, images)
    assert both.attrs["folds"] == [0, 1]
    single = [predict_images(run.path, images, fold=k)["probability"] for k in (0, 1)]
    np.testing.assert_allclose(both["probability"], (single[0] + single[1]) / 2, rtol=1e-5)
    assert both["path"].tolist() == [str(p) for p in images]
    assert set(predict_images(run.path, images, threshold=0.0)["label_name"]) == {"COVID"}
    assert set(predict_images(run.path, images, threshold=1.0)["label_name"]) == {"non-COVID"}


def test_predict_matches_the_models_own_forward_pass(run: RunFolder, images: list[Path]) -> None:
    from covidlib.data.cache import letterbox_cache
    from covidlib.transforms.augment import BatchTransform

    model = load_fold_model(run.path, 0)
    cache = letterbox_cache([str(p.resolve()) for p in images], (64, 48), persist=False)
    with torch.inference_mode():
        pixels = BatchTransform(None)(torch.from_numpy(np.asarray(cache.pixels))[:, None])
        expected = torch.sigmoid(model(pixels)).reshape(-1).numpy()
    got = predict_images(run.path, images, fold=0)["probability"].to_numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5)


@pytest.mark.parametrize("threshold", [2, -0.1, float("nan")])
def test_threshold_outside_0_1_is_refused(threshold: float) -> None:
    with pytest.raises(ValueError, match="threshold must be a probability between 0 and 1"):
        check_threshold(threshold)


def test_truncated_model_is_refused_naming_it(run: RunFolder, images: list[Path]) -> None:
    model = run.fold(1).model
    model.write_bytes(model.read_bytes()[:1000])
    for fold in (1, None):  # without --fold every recorded fold is verified, none dropped
        with pytest.raises(RunFolderError, match=r"fold-1/model\.pt fails its checksum"):
            predict_images(run.path, images, fold=fold)


def test_same_size_damage_is_refused(run: RunFolder, images: list[Path]) -> None:
    model = run.fold(0).model
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    with pytest.raises(RunFolderError, match=r"fold-0/model\.pt fails its checksum"):
        load_fold_model(run.path, 0)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [("canvas", [96, 96], r"trained with canvas \[64, 48\] but .*config\.json says canvas"),
     ("model", "resnet18", r"trained with model 'squeezenet' but .*says model 'resnet18'"),
     ("train", {"seed": 1}, r"config\.json changed after fold-0/model\.pt was trained")],
)
def test_edited_config_is_refused_naming_the_key(
    run: RunFolder, images: list[Path], key: str, value: object, message: str
) -> None:
    config = {**CONFIG, key: value}
    run.config_file.write_text(json.dumps(config))
    with pytest.raises(RunFolderError, match=message):
        predict_images(run.path, images, fold=0)


def test_unfinished_fold_and_empty_run(run: RunFolder, images: list[Path],
                                       tmp_path: Path) -> None:
    with pytest.raises(RunFolderError, match="fold 4 of .* has no trained model.*"
                                             r"finished folds: \[0, 1\]"):
        predict_images(run.path, images, fold=4)
    empty = RunFolder(tmp_path / "empty")
    empty.write_config(CONFIG)
    with pytest.raises(RunFolderError, match="has no finished fold yet"):
        predict_images(empty.path, images)


def test_fold_without_run_record_is_refused(run: RunFolder, images: list[Path]) -> None:
    files = run.fold(0)
    manifest = json.loads(files.manifest.read_text())
    del manifest["run"]
    files.manifest.write_text(json.dumps(manifest))
    with pytest.raises(RunFolderError, match="does not say which run trained"):
        load_fold_model(run.path, 0)


def test_weights_of_another_architecture_are_one_line(run: RunFolder) -> None:
    files = run.fold(0)
    files.write_results({"conv.weight": torch.zeros(3)}, files.read_predictions(),
                        {"fold": 0, "accuracy": 0.5}, [])
    with pytest.raises(RunFolderError, match="cannot load .*model.pt into a squeezenet") as caught:
        load_fold_model(run.path, 0)
    assert "\n" not in str(caught.value)
