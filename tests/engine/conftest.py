"""Fixtures of the engine tests: a tiny model on synthetic tensors, an interrupting callback,
a CPU-sized experiment and a cross-validation run on the module's 30-image phantom."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
from fastai.callback.core import Callback
from fastai.data.core import DataLoaders
from fastai.data.load import DataLoader

from covidlib.config import ExperimentConfig, RuntimeSettings, get_profile
from covidlib.engine.cv import CVResult, run_cv

TinySetup = tuple[torch.nn.Module, DataLoaders, pd.DataFrame]


class Shuffled:
    """A tiny dataset whose items carry a random augmentation (noise from torch's RNG)."""

    def __init__(self, n: int = 12, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.labels = torch.tensor([float(i % 2) for i in range(n)])
        noise = torch.randn(n, 3, 6, 6, generator=generator)
        self.images = noise + self.labels[:, None, None, None]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[i] + 0.1 * torch.randn(3, 6, 6), self.labels[i]


def _tiny_setup(seed: int = 0) -> TinySetup:
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 1),
    )
    train, test = Shuffled(12, seed=1), Shuffled(6, seed=2)
    dls = DataLoaders(DataLoader(train, bs=4, shuffle=True), DataLoader(test, bs=4))
    table = pd.DataFrame({"path": [f"img{i}.png" for i in range(6)],
                          "label": test.labels.int().numpy()})
    return model, dls, table


class Interrupt(Callback):
    """Raise KeyboardInterrupt once epoch ``after`` (relative to this fit) has finished."""

    order = 90

    def __init__(self, after: int) -> None:
        self.after = after

    def after_epoch(self) -> None:
        if self.learn.epoch == self.after:
            raise KeyboardInterrupt


@pytest.fixture
def tiny() -> Callable[..., TinySetup]:
    """``tiny(seed=0) -> (model, dls, test_table)``: a 6x6-pixel problem on the CPU."""
    return _tiny_setup


@pytest.fixture
def interrupt() -> type[Interrupt]:
    """The :class:`Interrupt` callback class."""
    return Interrupt


def _small_config(**changes: Any) -> ExperimentConfig:
    base = get_profile("quick").experiment(
        "phantom", "squeezenet", epochs=1, batch_size=8, canvas_scale=0.12
    )
    return base.with_overrides(**changes)


@pytest.fixture
def small_config() -> Callable[..., ExperimentConfig]:
    """``small_config(**changes)``: the quick profile's experiment at 1 epoch, tiny canvas."""
    return _small_config


CPU = RuntimeSettings(device="cpu")


@pytest.fixture
def cv(phantom_root: Path) -> Callable[..., CVResult]:
    """``cv(out, model=None, config=None, runtime=CPU, **run_cv_kwargs)``: run_cv of
    ``config`` (default ``small_config()``; ``model`` replaces its model) on the module's
    phantom into ``out/phantom/<model>/quick``, silently."""

    def run(
        out: Path,
        model: str | None = None,
        config: ExperimentConfig | None = None,
        runtime: RuntimeSettings = CPU,
        **kwargs: Any,
    ) -> CVResult:
        experiment = config or _small_config()
        if model is not None:
            experiment = experiment.with_overrides(model=model)
        kwargs.setdefault("log", None)
        kwargs.setdefault("run_name", "quick")
        return run_cv(experiment, runtime, root=phantom_root, out=out, **kwargs)

    return run
