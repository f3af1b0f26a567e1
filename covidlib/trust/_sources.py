"""Where the trust package reads what other packages own: scored runs, reports, the registry.

Every import of another covidlib package by :mod:`covidlib.trust` goes through this module,
so a move of those readers is followed here, in one place. A scored run is a run folder of
``covidlib cv`` (its files verified against ``files.json``) or a stored result
(``provenance.json``); :func:`load_run` reads either and checks that it holds usable
probabilities.

Example:
    >>> import tempfile, pathlib
    >>> from covidlib.evaluate.report import write_example_result
    >>> run = load_run(write_example_result(pathlib.Path(tempfile.mkdtemp())))
    >>> run.dataset, len(run.predictions), logits_of(run.predictions)[:2].round(2).tolist()
    ('covid19-ct', 8, [2.2, -0.41])
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from covidlib.engine.runs import RunFolder
from covidlib.evaluate.report import (
    ReportError,
    ScoredRun,
    format_report,
    load_scored,
    summarize_scored,
)

__all__ = [
    "ReportError",
    "RunFolder",
    "ScoredRun",
    "audit_dataset",
    "dataset_root",
    "dataset_spec",
    "format_report",
    "image_keys",
    "live_frontend",
    "load_run",
    "logits_of",
    "model_paper_name",
    "profiles",
    "read_config",
    "stored_results",
    "summarize_scored",
]

# Probabilities are clipped this far from 0 and 1 before log(p / (1 - p)) (float32 softmax
# outputs reach exactly 0 or 1; a clipped logit of about +-16.1 keeps the NLL finite).
PROBABILITY_CLIP = 1e-7


def load_run(path: str | Path, *, allow_partial: bool = False) -> ScoredRun:
    """Read a run folder or stored result, refusing one without usable probabilities.

    Raises:
        ReportError: not a scored folder, unreadable files, or probabilities that are
            missing, not numbers or outside [0, 1] (naming the folder).
    """
    run = load_scored(path, allow_partial=allow_partial)
    values = pd.to_numeric(run.predictions["probability"], errors="coerce").to_numpy(float)
    bad = ~np.isfinite(values) | (values < 0) | (values > 1)
    if bad.any() and "logit" in run.predictions.columns:
        logits = pd.to_numeric(run.predictions["logit"], errors="coerce").to_numpy(float)
        if np.isfinite(logits).all():
            values, bad = 1 / (1 + np.exp(-logits)), np.zeros_like(bad)
    if bad.any():
        raise ReportError(f"{path}: {int(bad.sum())} of {len(values)} predictions have no "
                          "probability in [0, 1] (and no logit); score the run again.")
    run.predictions = run.predictions.assign(probability=values,
                                             label=run.predictions["label"].astype(int))
    return run


def logits_of(predictions: pd.DataFrame) -> np.ndarray:
    """Return the COVID logit of every row: the ``logit`` column, else log(p / (1 - p)).

    Example:
        >>> logits_of(pd.DataFrame({"probability": [0.5, 1.0]})).round(1).tolist()
        [0.0, 16.1]
    """
    if "logit" in predictions.columns:
        logits = pd.to_numeric(predictions["logit"], errors="coerce").to_numpy(float)
        if np.isfinite(logits).all():
            return logits
    p = np.clip(predictions["probability"].to_numpy(float), PROBABILITY_CLIP,
                1 - PROBABILITY_CLIP)
    return np.log(p / (1 - p))


def image_keys(predictions: pd.DataFrame) -> pd.Series:
    """Name every image the same way on every machine: ``relpath`` if known, else ``path``."""
    column = "relpath" if "relpath" in predictions.columns else "path"
    return predictions[column].astype(str)


def read_config(run: ScoredRun) -> dict[str, Any]:
    """Return how a run was made: a run folder's ``config.json``, else the provenance's
    ``experiment`` record (empty when neither says)."""
    folder = RunFolder(run.path)
    if run.kind == "run" and folder.config_file.is_file():
        return folder.read_config()
    experiment = run.provenance.get("experiment")
    return dict(experiment) if isinstance(experiment, dict) else {}


def stored_results(folder: str | Path, *, profile: str | None = None,
                   dataset: str | None = None) -> pd.DataFrame:
    """List stored results under ``folder/<dataset>/<model>/<id>/`` (one row each).

    Columns ``dataset``, ``model``, ``id``, ``profile``, ``external`` (the dataset the
    models were trained on, for an external validation; else empty) and ``path``; filtered
    by ``profile`` and ``dataset`` when given; empty when nothing is stored.

    Example:
        >>> import tempfile
        >>> stored_results(tempfile.mkdtemp(), profile="cpu").empty
        True
    """
    columns = ["dataset", "model", "id", "profile", "external", "path"]
    rows = []
    base = Path(folder)
    for stored in RunFolder.stored_under(base) if base.is_dir() else []:
        try:
            record = stored.read_provenance()
        except ValueError:
            continue  # load_run names an unreadable provenance when the result is used
        external = record.get("external")
        rows.append({"dataset": record.get("dataset"), "model": record.get("model"),
                     "id": stored.path.name, "profile": record.get("profile"),
                     "external": external.get("trained_on", "") if isinstance(external, dict)
                     else "", "path": str(stored.path)})
    table = pd.DataFrame(rows, columns=columns)
    if profile is not None:
        table = table[table["profile"] == profile]
    if dataset is not None:
        table = table[table["dataset"] == dataset]
    return table.reset_index(drop=True)


def profiles() -> dict[str, Any]:
    """Return the run profiles by name (:data:`covidlib.config.PROFILES`)."""
    from covidlib.config import PROFILES

    return dict(PROFILES)


def dataset_spec(name: str) -> Any:
    """Return the registry's :class:`~covidlib.data.registry.DatasetSpec`, or ``None``."""
    from covidlib.data.registry import get_dataset

    try:
        return get_dataset(name)
    except (KeyError, ValueError):
        return None


def model_paper_name(name: str) -> str:
    """Return the model's name in the paper (the registry key when unknown)."""
    from covidlib.models.registry import get_spec

    try:
        return get_spec(name).paper_name
    except (KeyError, ValueError):
        return name


def live_frontend() -> bool:
    """Whether a person can click widgets here (see :mod:`covidlib.explain.explorer`)."""
    from covidlib.explain.explorer import live_frontend as guess

    return guess()


def dataset_root(dataset: str, config: dict[str, Any] | None = None) -> Path | None:
    """Return the dataset's folder if it is on this machine: the run's ``root``, else the
    registry's default; ``None`` when neither exists."""
    from covidlib.data.registry import default_root

    candidates = [(config or {}).get("root")]
    try:
        candidates.append(default_root(dataset))
    except KeyError:
        pass
    for candidate in candidates:
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


def audit_dataset(dataset: str, root: str | Path) -> tuple[Any, int]:
    """Run the leakage audit (``covidlib audit``'s perceptual hashes) on a dataset folder;
    return the :class:`~covidlib.audit.leaks.AuditResult` and the number of images."""
    from covidlib.audit.leaks import audit_images
    from covidlib.data.index import index_dataset

    images = index_dataset(dataset, Path(root)).require_clean(True).reset_index(drop=True)
    result = audit_images(images["path"].astype(str).tolist(),
                          images["label"].astype(int).tolist())
    return result, len(images)
