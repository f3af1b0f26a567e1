"""Transfer strategies: what trains under scratch / features / finetune, for all 12 models,
and the config rules (contradictory flags, weights hash, old config.json, resume)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from fastai.data.core import DataLoaders
from fastai.data.load import DataLoader

from covidlib.config import ExperimentConfig, TrainConfig, get_profile
from covidlib.engine.cv import CVResult, RunConfigError
from covidlib.engine.learner import make_learner
from covidlib.engine.transfer import apply_strategy, backbone_state, head_prefix, replace_head
from covidlib.models.factory import create_model
from covidlib.models.registry import get_spec, list_models
from covidlib.utils.fileio import sha256_file

MODELS = list_models()


def _weights_file(name: str, folder: Path) -> Path:
    """A synthetic weights file: another random initialisation of the same network."""
    path = folder / f"{name}-synthetic.pt"
    if not path.is_file():
        torch.manual_seed(123)
        torch.save(create_model(name).state_dict(), path)
    return path


@pytest.fixture(scope="module")
def weights_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One synthetic weights file per model, shared by the features and finetune cases."""
    return tmp_path_factory.mktemp("weights")


def _one_step(model: torch.nn.Module, name: str, callbacks: list) -> None:
    """Train one batch of two images at the model's smallest input, with LAMB."""
    width, height = get_spec(name).min_input
    generator = torch.Generator().manual_seed(0)
    data = [(torch.randn(3, height, width, generator=generator), torch.tensor(float(i % 2)))
            for i in range(2)]
    dls = DataLoaders(DataLoader(data, bs=2, shuffle=False), DataLoader(data, bs=2))
    config = TrainConfig(epochs=1, lr=1e-2, batch_size=2)
    learner = make_learner(model, dls, config, device=torch.device("cpu"), show_progress=False)
    learner.fit(1, lr=config.lr, cbs=callbacks)


def _changed(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> list[str]:
    return sorted(k for k in before if not torch.equal(before[k], after[k]))


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("strategy", ["scratch", "features", "finetune"])
def test_strategy_trains_what_it_says(name: str, strategy: str, weights_folder: Path) -> None:
    pretrained = False if strategy == "scratch" else _weights_file(name, weights_folder)
    torch.manual_seed(0)
    model = create_model(name, pretrained=pretrained)
    prefix = head_prefix(name)
    backbone_before = backbone_state(model, name)
    head_before = {k: v.clone() for k, v in model.state_dict().items() if k.startswith(prefix)}
    _one_step(model, name, apply_strategy(model, name, strategy))
    state = model.state_dict()
    changed_backbone = _changed(backbone_before, state)
    assert _changed(head_before, state), f"{name} {strategy}: the head did not train"
    if strategy == "features":
        # parameters AND batch-norm running statistics / counters stay as loaded
        assert changed_backbone == [], f"{name}: frozen tensors changed: {changed_backbone[:5]}"
    else:
        weights = [k for k in changed_backbone if "running_" not in k and "num_batches" not in k]
        assert weights, f"{name} {strategy}: no backbone weight changed"
        if any("running_mean" in k for k in backbone_before):
            assert any("running_mean" in k for k in changed_backbone)


def test_features_leaves_only_the_head_trainable() -> None:
    model = create_model("densenet121")
    apply_strategy(model, "densenet121", "features")
    trainable = sorted(n for n, p in model.named_parameters() if p.requires_grad)
    assert trainable == ["classifier.bias", "classifier.weight"]
    apply_strategy(model, "densenet121", "finetune")  # switching back unfreezes everything
    assert all(p.requires_grad for p in model.parameters())
    with pytest.raises(ValueError, match="unknown transfer strategy 'gradual'"):
        apply_strategy(model, "densenet121", "gradual")


@pytest.mark.parametrize("name", ["squeezenet", "resnet18", "densenet121"])
def test_replace_head_keeps_the_backbone_keys(name: str) -> None:
    model = replace_head(create_model(name), name, 5)
    prefix = head_prefix(name)
    own = {k for k in create_model(name).state_dict() if not k.startswith(prefix)}
    assert {k for k in model.state_dict() if not k.startswith(prefix)} == own
    width, height = get_spec(name).min_input
    assert model(torch.zeros(2, 3, height, width)).shape == (2, 5)


# ----------------------------------------------------------------------------- config


def _quick(**changes: object) -> ExperimentConfig:
    return get_profile("quick").experiment("phantom", "squeezenet", **changes)


def test_profiles_keep_their_strategy() -> None:
    assert (_quick().strategy, _quick().weights) == ("scratch", "random")
    full = get_profile("full").experiment(None, "resnet50")
    assert (full.strategy, full.weights, full.weights_sha256) == ("finetune", "imagenet", None)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"strategy": "features"}, "--strategy features needs initial weights but --weights"),
        ({"strategy": "finetune"}, "--strategy finetune needs initial weights but --weights"),
        ({"weights": "imagenet", "strategy": "scratch"},
         "--strategy scratch trains from random weights but --weights is 'imagenet'"),
        ({"strategy": "gradual"}, "unknown transfer strategy .--strategy. 'gradual'"),
    ],
)
def test_contradictory_flags_are_one_line_naming_both(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message) as error:
        _quick(**changes)
    assert "\n" not in str(error.value)


def test_weights_file_is_recorded_with_its_sha256(tmp_path: Path) -> None:
    path = tmp_path / "w.pt"
    path.write_bytes(b"not really weights")
    config = _quick(weights=str(path), strategy="features")
    assert config.weights_sha256 == sha256_file(path) and config.strategy == "features"
    assert config.to_dict()["weights_sha256"] == config.weights_sha256
    assert ExperimentConfig.from_dict(config.to_dict()) == config
    assert _quick(weights=str(path)).strategy == "finetune"  # the default with weights
    path.write_bytes(b"other bytes")
    assert _quick(weights=str(path)).digest() != config.with_overrides(strategy="finetune").digest()
    with pytest.raises(ValueError, match="64 lowercase hex"):
        config.with_overrides(weights_sha256="abc")
    with pytest.raises(ValueError, match="weights_sha256 applies to a weights file"):
        ExperimentConfig("phantom", "squeezenet", weights_sha256="0" * 64)


def test_old_config_json_without_transfer_keys_still_loads() -> None:
    for config, strategy in ((_quick(), "scratch"),
                             (get_profile("full").experiment(None, "resnet18"), "finetune")):
        old = config.to_dict()
        del old["strategy"], old["weights_sha256"]
        assert ExperimentConfig.from_dict(old).strategy == strategy
        assert ExperimentConfig.from_dict(old) == config


def test_resume_with_another_strategy_is_refused(
    cv: Callable[..., CVResult], small_config: Callable[..., ExperimentConfig], tmp_path: Path
) -> None:
    weights = _weights_file("squeezenet", tmp_path)
    features = small_config(weights=str(weights), strategy="features")
    first = cv(tmp_path / "runs", only_fold=0, config=features)
    saved = json.loads((first.run_dir / "config.json").read_text())
    assert (saved["strategy"], saved["weights_sha256"]) == ("features", sha256_file(weights))
    with pytest.raises(RunConfigError, match="strategy: saved 'features', requested 'finetune'"):
        cv(tmp_path / "runs", only_fold=0, config=features.with_overrides(strategy="finetune"))
