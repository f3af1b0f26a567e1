"""Tests for covidlib.models.factory: create_model, weights files, ImageNet caches."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

from covidlib.models.factory import (
    BackboneMismatchError,
    WeightsNotCachedError,
    create_model,
    get_module,
    load_backbone,
    network_available,
)

Built = Callable[[str], nn.Module]  # the built fixture of conftest.py


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


def test_pretrained_path_mismatch_is_reported(tmp_path: Path, built: Built) -> None:
    path = tmp_path / "r18.pth"
    torch.save(built("resnet18").state_dict(), path)
    with pytest.raises(BackboneMismatchError, match=r"r18\.pth.*resnet50.*(missing|shape)"):
        create_model("resnet50", pretrained=path)
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        create_model("resnet18", pretrained=tmp_path / "nope.pth")


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


def test_weights_files_in_wrappers_with_prefixes_and_safetensors(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    source = create_model("resnet18")
    state = source.state_dict()
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "a.pth")
    torch.save({"model": state, "epoch": 3}, tmp_path / "b.pt")
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "c.safetensors"))
    for name in ("a.pth", "b.pt", "c.safetensors"):
        model = create_model("resnet18", pretrained=tmp_path / name)
        assert torch.equal(model.layer1[0].conv1.weight, source.layer1[0].conv1.weight), name


def test_unreadable_weights_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(BackboneMismatchError, match=r"junk\.pth: cannot read a PyTorch state"):
        create_model("resnet18", pretrained=tmp_path / "junk.pth")
    torch.save({"weights": [1, 2, 3]}, tmp_path / "list.pth")
    with pytest.raises(BackboneMismatchError, match=r"list\.pth: expected a state dict"):
        create_model("resnet18", pretrained=tmp_path / "list.pth")
    with pytest.raises(TypeError, match="pretrained must be"):
        create_model("resnet18", pretrained=1.5)  # type: ignore[arg-type]


def test_load_backbone_reports_what_it_ignored(built: Built) -> None:
    model = create_model("resnet18")
    assert load_backbone(model, built("resnet18").state_dict(), "resnet18") == {
        "ignored": ["fc.bias", "fc.weight"]
    }
    assert torch.equal(model.conv1.weight, built("resnet18").conv1.weight)


def test_get_module_names_the_children_it_has(built: Built) -> None:
    assert get_module(built("resnet18"), "fc").out_features == 1
    with pytest.raises(AttributeError, match="no module 'head'.*conv1"):
        get_module(built("resnet18"), "head")


@pytest.mark.parametrize("value", ["1", "true", " ON "])
def test_offline_switches_skip_the_network(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    import socket

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the network was touched")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", value)
    assert network_available("https://huggingface.co/") is False
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "perhaps")
    with pytest.raises(ValueError, match="TRANSFORMERS_OFFLINE='perhaps'"):
        network_available("https://huggingface.co/")
