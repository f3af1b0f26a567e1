"""Fixtures of the grid tests: a tiny phantom, tiny experiments and a plan of them."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from covidlib.config import ExperimentConfig, get_profile
from covidlib.grid.plan import GridPlan, plan_grid

REPO = Path(__file__).resolve().parents[2]
TINY = {"epochs": 1, "canvas_scale": 0.1, "batch_size": 8}


def tiny(model: str, **overrides: object) -> ExperimentConfig:
    """A CPU-second experiment on the phantom."""
    return get_profile("quick").experiment("phantom", model, **{**TINY, **overrides})


@pytest.fixture(autouse=True)
def _workers_import_this_covidlib(monkeypatch: pytest.MonkeyPatch) -> None:
    """Worker processes import the covidlib under test."""
    paths = [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))


@pytest.fixture(scope="module")
def tiny_phantom(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 20-image phantom: 10 per class, enough for 5 stratified folds."""
    from covidlib.data.phantom import generate_phantom

    return Path(generate_phantom(tmp_path_factory.mktemp("phantom") / "phantom", n=20))


@pytest.fixture
def tiny_config() -> Callable[..., ExperimentConfig]:
    """:func:`tiny` for the tests."""
    return tiny


@pytest.fixture
def make_plan(tmp_path: Path, tiny_phantom: Path) -> Callable[..., GridPlan]:
    """Plan tiny experiments of ``models`` into a fresh grid folder."""

    def make(models: tuple[str, ...] = ("squeezenet",), **overrides: object) -> GridPlan:
        configs = [tiny(model, **overrides) for model in models]
        return plan_grid(configs, tmp_path / "grid", roots={"phantom": tiny_phantom})

    return make
