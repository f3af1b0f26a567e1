"""Body and lung masks, the cascading-randomization check, and stored explanation results
(`covidlib sanity`, `covidlib localize --also-predicted --out-json`) on the tiny run."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from covidlib.cli import main
from covidlib.explain.body import body_mask, lung_mask
from covidlib.explain.sanity import (
    cascading_randomization,
    map_similarity,
    randomization_layers,
    randomize_layer,
)

PROVENANCE_KEYS = {"trained_on", "profile", "weights", "data", "hardware", "date", "commit"}


def _disc_slice(size: int, centre: tuple[int, int], radius: int, hole: int,
                background: int = 0) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    distance = (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2
    image = np.full((size, size), background, np.uint8)
    image[distance < radius ** 2] = 190
    image[distance < hole ** 2] = 5  # the dark lung inside the body
    return image


@pytest.mark.parametrize(("size", "centre", "radius", "hole"),
                         [(64, (32, 32), 26, 9), (80, (40, 30), 24, 12), (48, (20, 26), 16, 6)])
def test_body_mask_covers_the_disc_not_the_background(
    size: int, centre: tuple[int, int], radius: int, hole: int
) -> None:
    image = _disc_slice(size, centre, radius, hole)
    yy, xx = np.mgrid[:size, :size]
    distance = (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2
    body, lungs = body_mask(image), lung_mask(image)
    disc, outside = distance < (radius - 1) ** 2, distance > (radius + 1) ** 2
    assert body[disc].all() and not body[outside].any()
    assert lungs[distance < (hole - 1) ** 2].all() and not lungs[distance > (hole + 1) ** 2].any()


def test_body_mask_ignores_specks_and_a_grey_background() -> None:
    image = _disc_slice(64, (32, 32), 24, 8, background=30)
    image[2, 2] = 255  # a burned-in mark outside the body
    assert not body_mask(image)[:6, :6].any()
    assert body_mask(np.zeros((5, 5), np.uint8)).all()  # a constant slice is all body


def test_randomization_layers_run_from_head_to_input() -> None:
    from covidlib.models.factory import create_model

    layers = randomization_layers(create_model("resnet18"))
    assert layers[0] == "fc" and layers[-1] == "conv1" and "layer4.1" in layers


@pytest.fixture(scope="module")
def tiny_model() -> tuple[object, np.ndarray]:
    import torch

    from covidlib.models.factory import create_model

    torch.manual_seed(0)
    pixels = np.random.default_rng(1).integers(0, 255, (3, 48, 48), dtype=np.uint8)
    return create_model("squeezenet").eval(), pixels


def test_identical_copy_keeps_the_maps(tiny_model: tuple[object, np.ndarray]) -> None:
    from covidlib.explain.cam import compute_cams

    model, pixels = tiny_model
    # an untrained SqueezeNet has no positive evidence for COVID: explain what it predicts
    first = compute_cams(model, "squeezenet", pixels, target="predicted")  # type: ignore[arg-type]
    again = compute_cams(copy.deepcopy(model), "squeezenet",  # type: ignore[arg-type]
                         pixels, target="predicted")
    assert not first.zero.any()
    assert map_similarity(first.maps, again.maps) == {"rank_correlation": 1.0, "ssim": 1.0}


def test_randomized_model_changes_the_maps(tiny_model: tuple[object, np.ndarray]) -> None:
    model, pixels = tiny_model
    before = {k: v.clone() for k, v in model.state_dict().items()}  # type: ignore[attr-defined]
    table = cascading_randomization(model, "squeezenet", pixels,  # type: ignore[arg-type]
                                    target="predicted", max_steps=4)
    assert table["layer"].tolist()[:2] == ["none", "classifier.1"]
    assert table.loc[0, "rank_correlation"] == 1.0 and table.loc[0, "ssim"] == 1.0
    last = table.iloc[-1]
    assert last["rank_correlation"] < 0.9 or last["ssim"] < 0.9
    after = model.state_dict()  # type: ignore[attr-defined]
    assert all(torch_equal(before[k], after[k]) for k in before)  # the trained one untouched


def torch_equal(a: object, b: object) -> bool:
    import torch

    return bool(torch.equal(a, b))  # type: ignore[arg-type]


def test_randomize_unknown_layer_is_an_error() -> None:
    from torch import nn

    with pytest.raises(ValueError, match="no module"):
        randomize_layer(nn.Sequential(nn.Linear(2, 1)), "nope")


@pytest.fixture(scope="module")
def mask_folder(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four of the run's own images with a square lesion mask each."""
    base = tmp_path_factory.mktemp("masks")
    (base / "images").mkdir()
    (base / "masks").mkdir()
    for index, path in enumerate(pd.read_csv(tiny_run / "folds.csv")["path"][:4]):
        image = Image.open(path).convert("L")
        image.save(base / "images" / f"s{index}.png")
        mask = np.zeros((image.height, image.width), np.uint8)
        mask[image.height // 4: image.height // 2, image.width // 4: image.width // 2] = 255
        Image.fromarray(mask).save(base / "masks" / f"s{index}.png")
    return base


def test_localize_also_predicted_writes_a_stored_result(
    tiny_run: Path, mask_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "explain" / "localization.json"
    assert main(["localize", "--run", str(tiny_run), "--masks", str(mask_folder),
                 "--also-predicted", "--out-json", str(out), "--json"]) == 0
    printed = capsys.readouterr().out
    stored = json.loads(out.read_text())
    assert {"n_images", "model", "zero_maps", "scores"} <= set(stored)
    assert PROVENANCE_KEYS <= set(stored) and stored["trained_on"] == "phantom"
    assert {"gradcam", "gradcam:predicted", "random", "center", "body", "lungs"} \
        == set(stored["scores"])
    entry = stored["scores"]["gradcam:predicted"]["energy"]
    assert set(entry) == {"value", "ci_low", "ci_high"}
    assert set(stored["zero_maps_by_map"]) == {"gradcam", "gradcam:predicted"}
    first = stored["per_image"][0]
    assert len(stored["per_image"]) == 4 and first["image"] == "s0.png"
    assert {"gradcam_energy", "gradcam:predicted_energy", "lungs_pointing_game",
            "gradcam:predicted:zero_map"} <= set(first)
    assert str(tiny_run.parent.parent) not in out.read_text()  # no machine path
    assert stored["n_images"] == 4 and "wrote" in printed
    assert main(["localize", "--run", str(tiny_run), "--masks", str(mask_folder), "--fold", "0",
                 "--also-method", "gradcam++"]) == 0
    text = capsys.readouterr().out
    assert "gradcam++" in text and "zero map(s)" in text
    assert main(["localize", "--run", str(tiny_run), "--also-predicted"]) == 2  # needs --masks


def test_sanity_command_writes_curves_with_provenance(
    tiny_run: Path, mask_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, plot = tmp_path / "sanity.json", tmp_path / "sanity.png"
    assert main(["sanity", "--run", str(tiny_run), "--masks", str(mask_folder), "--limit", "2",
                 "--max-steps", "2", "--out-json", str(out), "--plot", str(plot)]) == 0
    stored = json.loads(out.read_text())
    curve = stored["randomization"]["squeezenet"]
    assert curve["layers"] == ["none", "classifier.1", "features.12"]
    assert len(curve["rank_correlation"]) == len(curve["ssim"]) == 3
    assert curve["trained_on"] == "phantom" and "commit" in curve["provenance"]
    assert plot.stat().st_size > 0 and stored["n_images"] == 2
    assert main(["sanity", "--run", str(tiny_run), "--method", "nope", str(plot)]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_tsne_stores_trained_and_untrained_scores(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "tsne.json"
    assert main(["tsne", "--run", str(tiny_run), "--method", "pca", "--out",
                 str(tmp_path / "map.png"), "--out-json", str(out), "--with-points"]) == 0
    stored = json.loads(out.read_text())
    assert PROVENANCE_KEYS <= set(stored) and stored["model"] == "squeezenet"
    for model in ("trained", "untrained"):
        for space in ("embedding", "features"):
            assert set(stored[model][space]) == {"silhouette", "knn_accuracy"}
    points = stored["trained"]["points"]
    assert len(points["x"]) == len(points["label"]) == stored["n_images"] == 24
    assert stored["n_train"] + stored["n_test"] == 24
