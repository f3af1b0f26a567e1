"""Tests for covidlib.models: registry, one-logit models, weights loading, Table 1, CLI."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn

from covidlib.cli import main
from covidlib.models.registry import (
    BackboneMismatchError,
    WeightsNotCachedError,
    create_model,
    get_module,
    get_spec,
    list_models,
)
from covidlib.models import registry as models

ALL = list_models()
SMALL = ["squeezenet", "shufflenet", "resnet18"]
QUICK_SCALE = 0.4
PAPER = pd.read_csv(models.PAPER_TABLE1_FILE).set_index("model")

_BUILT: dict[str, nn.Module] = {}


def built(name: str) -> nn.Module:
    """Each architecture is built once per session (random init), in eval mode."""
    if name not in _BUILT:
        torch.manual_seed(0)
        _BUILT[name] = create_model(name).eval()
    return _BUILT[name]


def test_registry_has_the_papers_twelve_models() -> None:
    assert ALL == [
        "squeezenet",
        "shufflenet",
        "resnet18",
        "resnet50",
        "resnet101",
        "resnext50",
        "resnext101",
        "inceptionv3",
        "xception",
        "densenet121",
        "densenet169",
        "densenet201",
    ]
    assert [get_spec(n).paper_name for n in ALL] == list(PAPER.index)


@pytest.mark.parametrize("name", ALL)
def test_spec_sizes_match_paper_table1(name: str) -> None:
    spec = get_spec(name)
    row = PAPER.loc[spec.paper_name]
    assert f"{spec.default_input[0]}x{spec.default_input[1]}" == row["default_input_wxh"]
    assert f"{spec.custom_input[0]}x{spec.custom_input[1]}" == row["custom_input_wxh"]
    assert spec.layers == row["layers"]


@pytest.mark.parametrize("name", ALL)
def test_one_finite_logit_at_quick_canvas(name: str) -> None:
    spec = get_spec(name)
    model = built(name)
    width, height = spec.canvas(QUICK_SCALE)
    seen: dict[str, torch.Size] = {}
    head = get_module(model, spec.head_layer)
    target = get_module(model, spec.gradcam_layer)

    def remember(key: str, use_input: bool):  # forward hooks must return None
        def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: object) -> None:
            seen[key] = inputs[0].shape if use_input else output.shape  # type: ignore[union-attr]

        return hook

    hooks = [
        head.register_forward_hook(remember("head_in", True)),
        target.register_forward_hook(remember("cam", False)),
    ]
    try:
        with torch.no_grad():
            logits = model(torch.randn(2, 3, height, width))
    finally:
        for hook in hooks:
            hook.remove()
    assert logits.shape == (2, 1)
    assert torch.isfinite(logits).all()
    # The head is the one and only output layer: one output, fed by feature_dim channels.
    out_size = head.out_features if isinstance(head, nn.Linear) else head.out_channels
    assert out_size == 1
    assert seen["head_in"][1] == spec.feature_dim
    # The Grad-CAM target yields a spatial map (B, C, h, w).
    assert len(seen["cam"]) == 4 and seen["cam"][0] == 2


@pytest.mark.parametrize("name", SMALL)
def test_full_custom_size_and_min_input(name: str) -> None:
    spec = get_spec(name)
    model = built(name)
    with torch.no_grad():
        for width, height in (spec.custom_input, spec.min_input):
            logits = model(torch.randn(1, 3, height, width))
            assert logits.shape == (1, 1) and torch.isfinite(logits).all()


def test_inception_min_input_is_the_real_limit() -> None:
    spec = get_spec("inceptionv3")
    model = built("inceptionv3")
    with torch.no_grad():
        assert model(torch.zeros(1, 3, *spec.min_input)).shape == (1, 1)
        with pytest.raises(RuntimeError):
            model(torch.zeros(1, 3, spec.min_input[1] - 1, spec.min_input[0] - 1))


def test_squeezenet_logit_can_be_negative() -> None:
    # The final ReLU of torchvision's SqueezeNet is removed: it would clamp logits at 0.
    model = built("squeezenet")
    assert not any(isinstance(m, nn.ReLU) for m in model.classifier)
    with torch.no_grad():
        head = get_module(model, "classifier.1")
        head.bias.fill_(-5.0)
        try:
            assert model(torch.zeros(1, 3, 64, 64)).item() < 0
        finally:
            head.bias.zero_()


@pytest.mark.parametrize(
    ("scale", "expected"), [(1.0, (349, 253)), (0.4, (140, 101)), (0.05, (32, 32))]
)
def test_canvas_scales_and_clamps(scale: float, expected: tuple[int, int]) -> None:
    assert get_spec("resnet18").canvas(scale) == expected


def test_canvas_rejects_bad_scale_and_clamps_inception() -> None:
    assert get_spec("inceptionv3").canvas(0.1) == (75, 75)
    with pytest.raises(ValueError, match="scale"):
        get_spec("resnet18").canvas(0)


def test_unknown_name_lists_valid_ones() -> None:
    with pytest.raises(KeyError) as info:
        create_model("vgg16")
    message = str(info.value)
    assert "vgg16" in message and all(name in message for name in ALL)
    assert get_spec("ResNeXt101").name == "resnext101"


@pytest.mark.parametrize("name", ALL)
def test_table1_params_within_001_million_of_paper(name: str) -> None:
    row = models.model_table([name]).iloc[0]
    paper = PAPER.loc[get_spec(name).paper_name]
    assert abs(row["params"] / 1e6 - paper["params_millions"]) < 0.01
    assert abs(row["params_millions"] - paper["params_millions"]) <= 0.0100001
    assert row["size_mb"] == pytest.approx(row["params"] * 4 / 1e6, abs=0.05)


def test_table_counts_equal_a_real_random_model() -> None:
    assert models.model_table(["resnet18"]).loc[0, "params"] == models.count_parameters(
        built("resnet18")
    )


def test_pretrained_path_loads_backbone_and_keeps_new_head(tmp_path: Path) -> None:
    import timm

    torch.manual_seed(1)
    imagenet_like = timm.create_model("resnet18", num_classes=1000)
    path = tmp_path / "resnet18_backbone.pth"
    torch.save(imagenet_like.state_dict(), path)
    model = create_model("resnet18", pretrained=path)
    assert torch.equal(model.conv1.weight, imagenet_like.conv1.weight)
    assert torch.equal(model.layer4[1].bn2.running_var, imagenet_like.layer4[1].bn2.running_var)
    assert model.fc.out_features == 1


def test_pretrained_path_backbone_only_torchvision(tmp_path: Path) -> None:
    source = create_model("squeezenet")
    state = {k: v for k, v in source.state_dict().items() if not k.startswith("classifier.")}
    path = tmp_path / "squeeze.pt"
    torch.save(state, path)
    model = create_model("squeezenet", pretrained=str(path))
    assert torch.equal(model.features[0].weight, source.features[0].weight)
    assert model.classifier[1].out_channels == 1


def test_pretrained_path_mismatch_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "r18.pth"
    torch.save(built("resnet18").state_dict(), path)
    with pytest.raises(BackboneMismatchError, match=r"r18\.pth.*resnet50.*(missing|shape)"):
        create_model("resnet50", pretrained=path)
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        create_model("resnet18", pretrained=tmp_path / "nope.pth")


@pytest.fixture
def empty_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Point torch.hub and the Hugging Face cache at empty folders; forbid the network."""
    from huggingface_hub import constants

    torch_home, hf_cache = tmp_path / "torch", tmp_path / "hf"
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    monkeypatch.setenv("HF_HUB_CACHE", str(hf_cache))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hf_cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the network was touched")

    monkeypatch.setattr(socket, "create_connection", no_network)
    return {"torch": torch_home / "hub" / "checkpoints", "hf": hf_cache}


@pytest.mark.parametrize(
    ("name", "filename", "folder_key"),
    [
        ("resnet18", "model.safetensors", "hf"),
        ("squeezenet", "squeezenet1_0-b66bff10.pth", "torch"),
        ("xception", "xception-43020ad28.pth", "torch"),
    ],
)
def test_pretrained_true_offline_fails_fast_with_instructions(
    empty_caches: dict[str, Path], name: str, filename: str, folder_key: str
) -> None:
    with pytest.raises(WeightsNotCachedError) as info:
        create_model(name, pretrained=True)
    message = str(info.value)
    assert filename in message and "http" in message
    assert str(empty_caches[folder_key]) in message


def test_pretrained_true_uses_hf_cache_file(empty_caches: dict[str, Path]) -> None:
    import timm
    from safetensors.torch import save_file

    imagenet_like = timm.create_model("resnet18", num_classes=1000)
    folder = empty_caches["hf"] / "models--timm--resnet18.tv_in1k" / "snapshots" / "main"
    folder.mkdir(parents=True)
    save_file(imagenet_like.state_dict(), str(folder / "model.safetensors"))
    model = create_model("resnet18", pretrained=True)
    assert torch.equal(model.conv1.weight, imagenet_like.conv1.weight)
    assert model.fc.out_features == 1


def test_pretrained_true_uses_torch_hub_checkpoint(empty_caches: dict[str, Path]) -> None:
    import torchvision

    imagenet_like = torchvision.models.squeezenet1_0()
    folder = empty_caches["torch"]
    folder.mkdir(parents=True)
    torch.save(imagenet_like.state_dict(), folder / "squeezenet1_0-b66bff10.pth")
    model = create_model("squeezenet", pretrained=True)
    assert torch.equal(model.features[0].weight, imagenet_like.features[0].weight)
    assert model.classifier[1].out_channels == 1


def test_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in records] == ALL
    first = records[0]
    for key in (
        "name",
        "family",
        "default_input",
        "custom_input",
        "params_millions",
        "size_mb",
        "layers",
    ):
        assert key in first
    assert first["custom_input"] == [335, 255] and first["family"] == "SqueezeNet"


def test_cli_text_and_unknown_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--names", "resnet18", "--compare"]) == 0
    out = capsys.readouterr().out
    assert "349x253" in out and "11.17" in out
    assert main(["models", "--names", "vgg16"]) == 2
    assert "densenet201" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "mean"),
    [("inceptionv3", (0.5, 0.5, 0.5)), ("xception", (0.5, 0.5, 0.5)),
     ("resnet18", (0.485, 0.456, 0.406)), ("squeezenet", (0.485, 0.456, 0.406))],
)
def test_normalization_follows_the_weights(name: str, mean: tuple[float, ...]) -> None:
    got_mean, got_std = models.get_spec(name).normalization
    assert got_mean == pytest.approx(mean) and len(got_std) == 3
