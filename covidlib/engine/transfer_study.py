"""What a source task buys a small real CT dataset: the transfer study on a real target.

The target is a real dataset (COVID19-CT by default) scored on *one* fixed test set: the
official split's test images (patients not in its training or validation lists) where the
dataset has one, else a seeded class-balanced hold-out. From the rest (the training pool)
each label budget takes the first ``b`` images per class of one seeded order, so the
budgets are nested, and ``None`` takes the whole pool. At every budget three strategies
train (:func:`covidlib.engine.learner.fit_fold`): ``scratch`` (random weights),
``features`` (the source backbone frozen, only the head trains) and ``finetune`` (every
weight trains from the source backbone), for each source weights file. Every cell gets
its accuracy with a 95% bootstrap interval over the test images, and every transferred
cell the paired bootstrap interval of its accuracy minus scratch's at the same budget
(:func:`covidlib.evaluate.intervals.paired_bootstrap_difference`): a strategy *beats*
scratch only where that interval excludes zero.

Example:
    >>> budget_rows([0, 0, 0, 1, 1, 1], [0, 1, 2, 3, 4, 5], (1, None), seed=0)[None].size
    6
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from covidlib.config import Profile, get_profile

__all__ = [
    "REAL_BUDGETS",
    "RealTransferStudy",
    "budget_rows",
    "fixed_test_split",
    "real_transfer_study",
]

#: Labelled images per class of the real study (``None``: the whole training pool).
REAL_BUDGETS: tuple[int | None, ...] = (10, 25, 50, 100, None)
STRATEGIES: tuple[str, ...] = ("scratch", "features", "finetune")


def fixed_test_split(
    images: pd.DataFrame, test_per_class: int = 50, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, str]:
    """Test rows, training-pool rows and how the test set was chosen.

    The official ``test`` split where the index has one (its ``split`` column), else
    ``test_per_class`` images per class at random (groups kept on one side).

    Example:
        >>> table = pd.DataFrame({"label": [0, 1] * 4, "split": ["train"] * 6 + ["test"] * 2})
        >>> test, pool, how = fixed_test_split(table)
        >>> test.tolist(), how
        ([6, 7], 'official test split')
    """
    labels = images["label"].to_numpy().astype(int)
    split = images["split"] if "split" in images else pd.Series([None] * len(images))
    official = split.astype(object).eq("test").fillna(False).to_numpy(dtype=bool)
    if official.any():
        return np.flatnonzero(official), np.flatnonzero(~official), "official test split"
    rng = np.random.default_rng(seed)
    groups = (images["group"] if "group" in images else images.index).astype(str).to_numpy()
    test: list[int] = []
    for label in (0, 1):
        chosen: set[str] = set()
        for group in rng.permutation(sorted(set(groups[labels == label]))):
            if (np.isin(groups, list(chosen)) & (labels == label)).sum() >= test_per_class:
                break
            chosen.add(group)
        test += np.flatnonzero(np.isin(groups, list(chosen))).tolist()
    test_rows = np.unique(test)
    pool = np.setdiff1d(np.arange(len(images)), test_rows)
    return test_rows, pool, f"{test_per_class} per class held out at random (seed {seed})"


def budget_rows(
    labels: Sequence[int] | np.ndarray, pool: Sequence[int] | np.ndarray,
    budgets: Sequence[int | None], seed: int = 0,
) -> dict[int | None, np.ndarray]:
    """Nested class-balanced training rows of the pool per budget (``None``: all of it).

    Raises:
        ValueError: a budget larger than a class's share of the pool.
    """
    values = np.asarray(labels).astype(int)
    rows = np.asarray(pool, dtype=int)
    rng = np.random.default_rng(seed)
    order = {label: rng.permutation(rows[values[rows] == label]) for label in (0, 1)}
    chosen: dict[int | None, np.ndarray] = {}
    for budget in budgets:
        if budget is None:
            chosen[None] = np.sort(rows)
            continue
        short = [label for label in (0, 1) if len(order[label]) < budget]
        if budget < 1 or short:
            raise ValueError(f"budget {budget} per class: the training pool holds "
                             f"{len(order[0])} non-COVID and {len(order[1])} COVID images")
        chosen[budget] = np.sort(np.concatenate([order[0][:budget], order[1][:budget]]))
    return chosen


@dataclass
class RealTransferStudy:
    """What :func:`real_transfer_study` measured.

    Attributes:
        table: one row per source, strategy and budget: ``source``, ``target``, ``model``,
            ``strategy``, ``per_class`` (``"all"`` for the whole pool), ``images``,
            ``accuracy``, ``ci_low``, ``ci_high``, ``vs_scratch``, ``vs_scratch_low``,
            ``vs_scratch_high`` (NaN for scratch), ``seconds``.
        test: how the test set was chosen, its size and class counts.
        predictions: each cell's test predictions (``source``, ``strategy``, ``per_class``,
            ``path``, ``label``, ``probability``).
    """

    table: pd.DataFrame
    test: dict[str, Any]
    predictions: pd.DataFrame

    def records(self) -> list[dict[str, Any]]:
        """The table as JSON-ready rows (NaN as ``None``)."""
        rows = self.table.astype(object).where(self.table.notna(), None)
        return [dict(row) for row in rows.to_dict("records")]


def real_transfer_study(
    model: str,
    sources: Mapping[str, str | Path],
    *,
    target: str = "covid19-ct",
    root: str | Path | None = None,
    budgets: Sequence[int | None] = REAL_BUDGETS,
    strategies: Sequence[str] = STRATEGIES,
    profile: Profile | None = None,
    epochs: int | None = None,
    canvas_scale: float | None = None,
    test_per_class: int = 50,
    seed: int = 0,
    device: Any = None,
    log: Callable[[str], None] | None = None,
) -> RealTransferStudy:
    """Train every strategy at every budget on the real target and score one test set.

    Args:
        model: registry name.
        sources: source name -> backbone file (``covidlib pretrain``) for features/finetune.
        target: the target dataset's registry name; root: its folder.
        budgets: labelled images per class (``None``: the whole training pool).
        strategies: which of scratch/features/finetune (scratch trains once, not per source).
        profile: training settings (default: the ``COVIDLIB_PROFILE`` one).
        epochs, canvas_scale: per fit (default: the profile's).
        test_per_class: test images per class where the target has no official split.
        seed: the budgets' order and every fit.
        device: where to train (``None``: CPU).
        log: called with one line per finished cell.
    """
    import torch
    from sklearn.exceptions import UndefinedMetricWarning

    from covidlib.data.index import index_dataset
    from covidlib.data.sources import ensure_dataset
    from covidlib.engine.learner import fit_fold
    from covidlib.evaluate.intervals import bootstrap_interval, paired_bootstrap_difference

    unknown = sorted(set(strategies) - set(STRATEGIES))
    if unknown:
        raise ValueError(f"unknown strategy {unknown[0]!r}; choose from {STRATEGIES}")
    if any(s != "scratch" for s in strategies) and not sources:
        raise ValueError("features/finetune need at least one source weights file")
    missing = [str(p) for p in sources.values() if not Path(p).is_file()]
    if missing:
        raise FileNotFoundError(f"source weights not found: {', '.join(missing)}; "
                                "write them with `covidlib pretrain`")
    chosen = profile or get_profile()
    index = index_dataset(target, ensure_dataset(target, root, chosen))
    images = index.require_clean(True).reset_index(drop=True)
    labels = images["label"].to_numpy().astype(int)
    test_rows, pool, how = fixed_test_split(images, test_per_class, seed)
    train_rows = budget_rows(labels, pool, budgets, seed)
    where = torch.device("cpu") if device is None else torch.device(device)
    cells = [("none", "scratch", "random")] if "scratch" in strategies else []
    cells += [(name, strategy, str(path)) for name, path in sources.items()
              for strategy in strategies if strategy != "scratch"]
    rows, predictions, correct = [], [], {}
    for source, strategy, weights in cells:
        for budget in budgets:
            overrides: dict[str, Any] = {"weights": weights, "strategy": strategy, "seed": seed}
            if epochs is not None:
                overrides["epochs"] = epochs
            if canvas_scale is not None:
                overrides["canvas_scale"] = canvas_scale
            config = chosen.experiment(target, model, **overrides)
            started = time.perf_counter()
            with warnings.catch_warnings():
                # a fit on few labels may call every test image one class (precision
                # undefined); the study reports accuracy only
                warnings.simplefilter("ignore", UndefinedMetricWarning)
                fit = fit_fold(config, images, train_rows[budget], test_rows,
                               dataset=index.name, device=where, show_progress=False)
            hits = ((fit.predictions["probability"].to_numpy() >= 0.5).astype(int)
                    == labels[test_rows]).astype(float)
            correct[(source, strategy, budget)] = hits
            low, high = bootstrap_interval(np.mean, hits, seed=seed)
            row = {"source": source, "target": index.name, "model": model,
                   "strategy": strategy, "per_class": "all" if budget is None else int(budget),
                   "images": int(len(train_rows[budget])), "accuracy": round(float(hits.mean()), 4),
                   "ci_low": round(low, 4), "ci_high": round(high, 4),
                   "vs_scratch": float("nan"), "vs_scratch_low": float("nan"),
                   "vs_scratch_high": float("nan"),
                   "seconds": round(time.perf_counter() - started, 1)}
            baseline = correct.get(("none", "scratch", budget))
            if strategy != "scratch" and baseline is not None:
                difference, d_low, d_high = paired_bootstrap_difference(hits, baseline, seed=seed)
                row.update(vs_scratch=round(difference, 4), vs_scratch_low=round(d_low, 4),
                           vs_scratch_high=round(d_high, 4))
            rows.append(row)
            cell = fit.predictions[["path", "label", "probability"]].copy()
            cell.insert(0, "per_class", row["per_class"])
            cell.insert(0, "strategy", strategy)
            cell.insert(0, "source", source)
            predictions.append(cell)
            if log is not None:
                log(f"{source:>12} {strategy:<9} {row['per_class']!s:>4}/class: accuracy "
                    f"{row['accuracy']:.3f} [{low:.3f}, {high:.3f}]")
    test = {"how": how, "images": int(len(test_rows)),
            "covid": int(labels[test_rows].sum()),
            "non_covid": int((labels[test_rows] == 0).sum()),
            "training_pool": int(len(pool))}
    return RealTransferStudy(pd.DataFrame(rows), test, pd.concat(predictions, ignore_index=True))
