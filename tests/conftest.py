"""Shared fixtures.

The real COVID19-CT copy is looked up in ``COVIDLIB_COVID19_CT`` and then in
``../shared/datasets/covid19-ct`` next to the repository; tests that need it skip when
neither exists.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_COVID19_CT = REPO_ROOT.parent / "shared" / "datasets" / "covid19-ct"


def real_covid19_ct_root() -> Path | None:
    """Return the real COVID19-CT folder when one is available, else ``None``."""
    env = os.environ.get("COVIDLIB_COVID19_CT")
    candidate = Path(env) if env else SHARED_COVID19_CT
    return candidate if (candidate / "CT_COVID").is_dir() else None


@pytest.fixture(scope="session")
def covid19_ct_root() -> Path:
    """The real COVID19-CT copy (read-only); skips the test when it is absent."""
    root = real_covid19_ct_root()
    if root is None:
        pytest.skip("real COVID19-CT copy not found (set COVIDLIB_COVID19_CT)")
    return root


@pytest.fixture(scope="module")
def phantom_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 30-image phantom dataset (read-only), one per test module."""
    from covidlib.data.phantom import generate_phantom

    return Path(generate_phantom(tmp_path_factory.mktemp("phantom"), n=30, seed=0))


@pytest.fixture(autouse=True)
def _isolated_data_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Point COVIDLIB_DATA at one temporary folder per session so tests never touch data/."""
    monkeypatch.setenv("COVIDLIB_DATA", str(tmp_path_factory.getbasetemp() / "covidlib-data"))
    monkeypatch.setenv("COVIDLIB_PROGRESS", "0")
    # keep glibc's default malloc in the test process (test_allocator checks the tuning
    # in subprocesses)
    monkeypatch.setenv("COVIDLIB_KEEP_FREED_MEMORY", "0")


def write_synthetic_result(folder: Path, n_folds: int = 3, per_fold: int = 80, seed: int = 0,
                           dataset: str = "covid19-ct", logit: bool = True) -> Path:
    """Write a stored result of an overconfident model under ``folder/<dataset>/resnet18/``:
    labels alternate, scores ~ N(+-1.2, 1), logits 6x the score (2.5x the true log-odds)."""
    import json

    import numpy as np
    import pandas as pd
    from scipy.special import expit

    rng = np.random.default_rng(seed)
    target = folder / dataset / "resnet18" / f"synthetic-{seed}"
    provenance = {"dataset": dataset, "model": "resnet18", "profile": "synthetic",
                  "n_folds": n_folds, "weights": "random", "data": "synthetic",
                  "hardware": "none", "date": "2026-12-07", "commit": "none"}
    target.mkdir(parents=True)
    (target / "provenance.json").write_text(json.dumps(provenance))
    for fold in range(n_folds):
        label = np.arange(per_fold) % 2
        score = rng.normal(1.2 * (2 * label - 1), 1.0)
        names = [f"f{fold}-{i}.png" for i in range(per_fold)]
        rows = pd.DataFrame({"path": names, "relpath": names, "label": label,
                             "probability": expit(6 * score), "fold": fold})
        if logit:
            rows["logit"] = 6 * score
        (target / f"fold-{fold}").mkdir()
        rows.to_csv(target / f"fold-{fold}" / "predictions.csv", index=False)
    return target


@pytest.fixture
def synthetic_result() -> object:
    """:func:`write_synthetic_result`, for tests of calibration, triage and model cards."""
    return write_synthetic_result
