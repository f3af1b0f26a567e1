"""The phantom-findings source task: deterministic, loadable, disjoint from the target."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from covidlib.config import get_profile
from covidlib.data.phantom import NON_COVID_FINDINGS, generate_phantom
from covidlib.engine.pretrain import (
    SOURCE_SEED_OFFSET,
    findings_table,
    pretrain,
    read_provenance,
    source_model,
)
from covidlib.engine.transfer import head_prefix
from covidlib.models.factory import create_model
from covidlib.utils.fileio import sha256_file

TINY = {"epochs": 1, "phantom_size": 40, "canvas_scale": 0.12}
# One model of every family the registry has.
FAMILIES = ["squeezenet", "shufflenet", "resnet18", "resnext50", "inceptionv3", "xception",
            "densenet121"]


def _tiny(model: str, out: Path, seed: int = 0) -> dict:
    return pretrain(model, out, profile=get_profile("quick"), seed=seed, show_progress=False,
                    **TINY).provenance


def test_pretrain_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    first, second = tmp_path / "a.pt", tmp_path / "b.pt"
    _tiny("squeezenet", first)
    _tiny("squeezenet", second)
    a, b = (torch.load(p, weights_only=True) for p in (first, second))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    _tiny("squeezenet", tmp_path / "c.pt", seed=1)
    c = torch.load(tmp_path / "c.pt", weights_only=True)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_provenance_sits_beside_the_weights(tmp_path: Path) -> None:
    out = tmp_path / "sq.pt"
    provenance = _tiny("squeezenet", out)
    assert read_provenance(out) == json.loads((tmp_path / "sq.json").read_text()) == provenance
    assert provenance["weights_sha256"] == sha256_file(out)
    assert provenance["source"] == "phantom-findings" and provenance["epochs"] == 1
    assert provenance["phantom_seed"] == SOURCE_SEED_OFFSET
    assert provenance["classes"] == list(NON_COVID_FINDINGS)
    assert 0.0 <= provenance["source_accuracy"] <= 1.0
    data = provenance["data"]
    assert data["train_images"] + data["test_images"] == data["images"] == 20
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sq.json", "sq.pt"]  # no temp files


@pytest.mark.parametrize("name", FAMILIES)
def test_weights_load_into_the_model_they_were_trained_for(name: str, tmp_path: Path) -> None:
    out = tmp_path / f"{name}.pt"
    _tiny(name, out)
    state = torch.load(out, weights_only=True)
    prefix = head_prefix(name)
    assert set(state) == {k for k in create_model(name).state_dict() if not k.startswith(prefix)}
    model = create_model(name, pretrained=out)
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())


def test_source_phantom_never_holds_a_target_image(tmp_path: Path) -> None:
    target = generate_phantom(tmp_path / "target", n=40, seed=0)
    source = generate_phantom(tmp_path / "source", n=40, seed=SOURCE_SEED_OFFSET)

    def hashes(root: Path) -> set[str]:
        return {hashlib.sha256(np.asarray(Image.open(p)).tobytes()).hexdigest()
                for p in root.glob("*COVID/*.png")}

    assert len(hashes(target)) == len(hashes(source)) == 40
    assert not hashes(target) & hashes(source)
    table = findings_table(source)
    assert set(table["finding"]) <= set(NON_COVID_FINDINGS) and len(table) == 20


def test_source_model_is_cached(tmp_path: Path) -> None:
    first = source_model("squeezenet", profile=get_profile("quick"), folder=tmp_path, **TINY)
    stamp = first.weights_file.stat().st_mtime_ns
    again = source_model("squeezenet", profile=get_profile("quick"), folder=tmp_path, **TINY)
    assert again.weights_file == first.weights_file
    assert again.weights_file.stat().st_mtime_ns == stamp
    assert len(again.history) == 1


def test_unknown_source_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown source task 'imagenet'"):
        pretrain("squeezenet", tmp_path / "x.pt", source="imagenet")
