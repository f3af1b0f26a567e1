"""A tiny phantom run (SqueezeNet, 2 folds, 1 epoch, a 0.12 canvas) shared by the explain
tests, and the real lesion slices when ../shared/datasets/ct-lesion-masks exists."""

from __future__ import annotations

from pathlib import Path

import pytest

from covidlib.config import RuntimeSettings, get_profile
from covidlib.engine.cv import run_cv

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_LESION_MASKS = REPO_ROOT.parent / "shared" / "datasets" / "ct-lesion-masks"


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 2-fold SqueezeNet run on a 24-image phantom (CPU, about a minute)."""
    import os

    from covidlib.data.phantom import generate_phantom

    folder = tmp_path_factory.mktemp("explain-run")
    root = generate_phantom(folder / "phantom", n=24, seed=0, difficulty=0.2)
    config = get_profile("quick").experiment(
        "phantom", "squeezenet", n_folds=2, epochs=1, canvas_scale=0.12
    )
    os.environ.setdefault("COVIDLIB_DATA", str(folder / "data"))
    result = run_cv(config, RuntimeSettings(device="cpu", progress=False), root=root,
                    out=folder / "runs", log=None)
    return result.run_dir


@pytest.fixture(scope="session")
def lesion_masks() -> Path:
    """The 50 real slices with lesion masks (read-only); skips when absent."""
    if not (SHARED_LESION_MASKS / "images").is_dir():
        pytest.skip(f"{SHARED_LESION_MASKS} not found")
    return SHARED_LESION_MASKS
