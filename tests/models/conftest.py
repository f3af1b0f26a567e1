"""Fixtures of the model tests."""

from __future__ import annotations

import functools
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

from covidlib.models.registry import build_architecture


@pytest.fixture(scope="session")
def built() -> Callable[[str], nn.Module]:
    """``built(name)``: the architecture with random weights (seed 0) in eval mode.

    Each architecture is built once per session; a test that changes a model puts it back.
    """

    @functools.cache
    def build(name: str) -> nn.Module:
        torch.manual_seed(0)
        return build_architecture(name).eval()

    return build


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
