"""Cross-validation: fold assignment, resumable run folders and the 5-fold loop.

The paper reports the mean and standard deviation over five stratified folds: fold ``k``'s
model is trained on the other four folds and evaluated on fold ``k``. The fold assignment
is computed once per dataset, strategy and seed, saved next to the runs
(``<out>/<dataset>/folds-<strategy>-k<n>-seed<seed>.csv``) and reused by every model, so
all models are compared on identical folds.

A run folder ``<out>/<dataset>/<model>/<run-name>/`` holds ``config.json``, ``folds.csv``,
``summary.json``, ``predictions.csv`` and one ``fold-<k>/`` folder per fold (epoch log,
checkpoint, ``model.pt``, ``predictions.csv``, ``metrics.json``). Re-running skips finished
folds and resumes an interrupted one; a different config is refused.

Example:
    >>> import pandas as pd
    >>> images = pd.DataFrame({"label": [0, 1] * 10, "group": [str(i // 2) for i in range(20)]})
    >>> folds = assign_folds(images, n_folds=5, seed=0)
    >>> folds.value_counts().sort_index().tolist()
    [4, 4, 4, 4, 4]
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from covidlib.evaluate.metrics import format_summary, summarize_folds
from covidlib.utils.fileio import atomic_write_text

if TYPE_CHECKING:
    from fastai.callback.core import Callback

    from covidlib.config import Profile
    from covidlib.engine.learner import FoldResult, TrainConfig

SPLIT_STRATEGIES: tuple[str, ...] = ("stratified", "grouped", "official")
# Never in a test fold: the training part of an official split.
TRAIN_ONLY = -1
# Config keys that describe the machine, not the experiment: they may change on resume.
EXECUTION_KEYS: frozenset[str] = frozenset({"train.device", "train.num_workers"})
CONFIG_FILE = "config.json"
SUMMARY_FILE = "summary.json"
FOLDS_FILE = "folds.csv"


class RunConfigError(ValueError):
    """A run folder holds another configuration than the one requested."""


def assign_folds(
    images: pd.DataFrame, n_folds: int = 5, seed: int = 0, strategy: str = "stratified"
) -> pd.Series:
    """Return the test fold of every row of ``images`` (a Series named ``fold``).

    Args:
        images: a dataset table with ``label`` (and ``group`` / ``split`` as needed).
        n_folds: number of folds (ignored by ``"official"``, which has one test fold).
        seed: shuffling seed.
        strategy: ``"stratified"`` (scikit-learn ``StratifiedKFold``, shuffled),
            ``"grouped"`` (``StratifiedGroupKFold`` over ``group``: no patient or source in
            two folds) or ``"official"`` (the dataset's split: ``test`` is fold 0,
            ``train``/``val`` are always trained on, marked ``-1``).

    Raises:
        ValueError: unknown strategy, too few images/groups per class, or no split column.

    Example:
        >>> split = ["train", "val", "test", "test"]
        >>> images = pd.DataFrame({"label": [0, 1, 0, 1], "split": split})
        >>> assign_folds(images, strategy="official").tolist()
        [-1, -1, 0, 0]
    """
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    if strategy not in SPLIT_STRATEGIES:
        raise ValueError(f"Unknown split strategy {strategy!r}; choose one of {SPLIT_STRATEGIES}.")
    if "label" not in images.columns:
        raise ValueError(f"images needs a 'label' column; it has {list(images.columns)}.")
    labels = images["label"].astype(int).to_numpy()
    folds = np.full(len(images), TRAIN_ONLY, dtype=int)
    if strategy == "official":
        split = images["split"] if "split" in images.columns else None
        if split is None or split.isna().any():
            raise ValueError(
                "The official split needs a 'split' value (train/val/test) for every image; "
                "this dataset has none (only COVID19-CT has one). Use --split stratified."
            )
        folds[(split == "test").to_numpy()] = 0
        if not (folds == 0).any():
            raise ValueError("The official split has no 'test' images.")
        return pd.Series(folds, index=images.index, name="fold")
    if n_folds < 2:
        raise ValueError(f"n_folds must be at least 2 for {strategy!r} folds (got {n_folds}).")
    smallest = int(np.bincount(labels, minlength=2).min())
    if smallest < n_folds:
        raise ValueError(
            f"The smaller class has {smallest} images, fewer than n_folds={n_folds}; "
            "use fewer folds or a larger dataset."
        )
    features = np.zeros((len(images), 1))
    if strategy == "stratified":
        splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        splits = splitter.split(features, labels)
    else:
        if "group" not in images.columns:
            raise ValueError("Grouped folds need a 'group' column (patient or source id).")
        groups = images["group"].astype(str).to_numpy()
        if len(set(groups)) < n_folds:
            raise ValueError(
                f"Only {len(set(groups))} groups for {n_folds} grouped folds; "
                "use fewer folds or --split stratified."
            )
        grouped = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        splits = grouped.split(features, labels, groups)
    for fold, (_, test) in enumerate(splits):
        folds[test] = fold
    return pd.Series(folds, index=images.index, name="fold")


def fold_numbers(folds: pd.Series) -> list[int]:
    """Return the test folds present in an assignment (``-1`` = train only is not one)."""
    return sorted(int(k) for k in set(folds.tolist()) if k != TRAIN_ONLY)


def fold_rows(folds: pd.Series, fold: int) -> tuple[np.ndarray, np.ndarray]:
    """Return positional (train_rows, test_rows) of test fold ``fold``.

    Example:
        >>> fold_rows(pd.Series([0, 1, 0, -1]), 0)
        (array([1, 3]), array([0, 2]))
    """
    values = folds.to_numpy()
    if fold not in fold_numbers(folds):
        raise ValueError(f"Fold {fold} does not exist; the folds are {fold_numbers(folds)}.")
    return np.flatnonzero(values != fold), np.flatnonzero(values == fold)


def _key_column(images: pd.DataFrame) -> str:
    return "relpath" if "relpath" in images.columns else "path"


def folds_file(out: str | Path, dataset: str, strategy: str, seed: int, n_folds: int) -> Path:
    """Return where the fold assignment of (dataset, strategy, seed, n_folds) is stored."""
    if strategy == "official":
        return Path(out) / dataset / "folds-official.csv"
    return Path(out) / dataset / f"folds-{strategy}-k{n_folds}-seed{seed}.csv"


def load_or_assign_folds(
    images: pd.DataFrame,
    path: str | Path,
    n_folds: int = 5,
    seed: int = 0,
    strategy: str = "stratified",
) -> pd.Series:
    """Return the fold assignment stored at ``path``, computing and saving it first if absent.

    Rows are matched by ``relpath`` (or ``path``), so the file stays valid when the
    dataset folder moves.

    Raises:
        ValueError: the stored file lists other images or labels than ``images``.
    """
    path = Path(path)
    key = _key_column(images)
    if not path.exists():
        folds = assign_folds(images, n_folds=n_folds, seed=seed, strategy=strategy)
        table = pd.DataFrame({"key": images[key].astype(str), "label": images["label"]})
        if "group" in images.columns:
            table["group"] = images["group"].astype(str)
        table["fold"] = folds.to_numpy()
        atomic_write_text(path, table.to_csv(index=False))
        return folds
    stored = pd.read_csv(path, dtype={"key": str, "group": str})
    keys = images[key].astype(str)
    lookup = stored.set_index("key")
    missing = sorted(set(keys) - set(lookup.index))
    extra = sorted(set(lookup.index) - set(keys))
    if missing or extra or len(stored) != len(images):
        raise ValueError(
            f"The fold file {path} lists other images than the dataset "
            f"({len(missing)} missing from it, {len(extra)} no longer in the dataset, e.g. "
            f"{(missing + extra)[:3]}). Delete it (and the runs made with it) or pick another "
            "--out folder."
        )
    aligned = lookup.loc[keys.to_numpy()]
    if (aligned["label"].to_numpy() != images["label"].to_numpy()).any():
        raise ValueError(f"Labels in {path} differ from the dataset; delete the fold file.")
    return pd.Series(aligned["fold"].to_numpy(dtype=int), index=images.index, name="fold")


@dataclass
class CVResult:
    """The outcome of :func:`run_cv`.

    Attributes:
        run_dir: the run folder.
        summary: per-fold metrics with mean and std (also in ``summary.json``).
        predictions: test predictions of every finished fold (path, label, probability, fold).
        history: epoch logs of every finished fold (with a ``fold`` column).
        folds: the fold of every image.
    """

    run_dir: Path
    summary: dict[str, Any]
    predictions: pd.DataFrame
    history: pd.DataFrame
    folds: pd.Series


def _run_config(
    dataset: str, model: str, split: str, n_folds: int, pretrained: bool,
    canvas: tuple[int, int], config: TrainConfig, n_images: int, fold_file: Path,
) -> dict[str, Any]:
    return {
        "dataset": dataset,
        "model": model,
        "split": split,
        "n_folds": n_folds,
        "pretrained": bool(pretrained),
        "canvas": [int(canvas[0]), int(canvas[1])],
        "n_images": int(n_images),
        "fold_file": fold_file.name,
        "fold_model": config.fold_model,
        "train": config.to_dict(),
    }


def check_run_config(run_dir: Path, wanted: dict[str, Any]) -> None:
    """Write ``config.json`` into a new run folder, or refuse a different saved config.

    Raises:
        RunConfigError: naming every differing key with its saved and requested value.
    """
    from covidlib.engine.learner import config_differences

    path = run_dir / CONFIG_FILE
    if not path.exists():
        atomic_write_text(path, json.dumps(wanted, indent=2) + "\n")
        return
    saved = json.loads(path.read_text())
    differences = [k for k in config_differences(saved, wanted) if k not in EXECUTION_KEYS]
    if differences:
        details = "; ".join(
            f"{key}: saved {_dig(saved, key)!r}, requested {_dig(wanted, key)!r}"
            for key in differences
        )
        raise RunConfigError(
            f"{run_dir} was made with another configuration ({details}). Use another run "
            "name (--run-name) or --out folder, or delete that folder to start over."
        )


def _dig(data: dict[str, Any], dotted: str) -> Any:
    value: Any = data
    for part in dotted.split("."):
        value = value.get(part, "<missing>") if isinstance(value, dict) else "<missing>"
    return value


def collect_run(
    run_dir: str | Path,
) -> tuple[dict[int, dict[str, float]], pd.DataFrame, pd.DataFrame]:
    """Return (metrics per finished fold, predictions, epoch logs) read from a run folder."""
    from covidlib.engine.runs import RunFolder

    run = RunFolder(run_dir)
    metrics: dict[int, dict[str, float]] = {}
    predictions, histories = [], []
    for fold in run.finished_folds():
        files = run.fold(fold)  # each read verifies the file's sha256 first
        metrics[fold] = files.read_metrics()
        predictions.append(files.read_predictions())
        history = files.read_epochs()
        history.insert(0, "fold", fold)
        histories.append(history)
    columns = ["path", "label", "probability", "fold"]
    return (
        metrics,
        pd.concat(predictions, ignore_index=True) if predictions else pd.DataFrame(columns=columns),
        pd.concat(histories, ignore_index=True) if histories else pd.DataFrame(),
    )


def fit_first_fold(
    model_name: str, images: pd.DataFrame, profile: Profile | None = None, *, seed: int = 0
) -> FoldResult:
    """Fine-tune a model on fold 0 of the profile's stratified folds (for the chapters).

    The profile decides everything: its training settings, its initial weights and, through
    ``demo_images_per_class``, whether a class-balanced sample or every image is used.

    Args:
        model_name: a key of :func:`covidlib.models.registry.list_models`.
        images: a dataset table (``DatasetIndex.images``).
        profile: run profile; ``None`` reads ``COVIDLIB_PROFILE``.
        seed: seed of the sample, the folds and the training.

    Example:
        >>> result = fit_first_fold("resnet18", images)  # doctest: +SKIP
        >>> sorted(result.metrics)  # doctest: +SKIP
        ['accuracy', 'f1', 'precision', 'recall', 'specificity']
    """
    from covidlib.config import get_profile
    from covidlib.engine.learner import TrainConfig, fit_fold

    profile = profile or get_profile()
    sample = images
    per_class = profile.demo_images_per_class
    if per_class is not None:
        per_class = min(per_class, int(images["label"].value_counts().min()))
        sample = images.groupby("label").sample(n=per_class, random_state=seed)
    sample = sample.reset_index(drop=True)
    train_rows, test_rows = fold_rows(assign_folds(sample, n_folds=profile.folds, seed=seed), 0)
    config = TrainConfig.from_profile(profile, seed=seed)
    return fit_fold(
        model_name, sample, train_rows, test_rows, config, pretrained=profile.pretrained
    )


def run_cv(
    dataset: str,
    model: str,
    *,
    root: str | Path | None = None,
    profile: Profile | None = None,
    config: TrainConfig | None = None,
    n_folds: int = 5,
    only_fold: int | None = None,
    out: str | Path | None = None,
    split: str = "stratified",
    run_name: str | None = None,
    skip_problems: bool = False,
    pretrained: bool | None = None,
    callbacks: Sequence[Callback] = (),
    log: Callable[[str], None] | None = print,
) -> CVResult:
    """Cross-validate ``model`` on ``dataset`` into a resumable run folder.

    Args:
        dataset: registry name (``"phantom"``, ``"covid19-ct"``, ``"sars-cov-2-ct"``).
        model: registry name (``"squeezenet"``...).
        root: dataset folder (default: the registry's).
        profile: run profile (default :func:`covidlib.config.get_profile`): epochs, batch,
            canvas scale and ImageNet weights when ``config``/``pretrained`` are not given.
        config: training settings (default ``TrainConfig.from_profile(profile)``).
        n_folds: number of folds (``split="official"`` has one).
        only_fold: train just this fold (several machines can share one run folder).
        out: runs root (default ``runs`` in the current folder).
        split: ``"stratified"``, ``"grouped"`` or ``"official"``.
        run_name: run folder name (default: the profile's name).
        skip_problems: drop unreadable files instead of refusing the dataset.
        pretrained: ImageNet weights; default the profile's choice.
        callbacks: extra fastai callbacks for every fold.
        log: where progress lines go (``None`` = silent).

    Returns:
        A :class:`CVResult`; ``summary.json`` in the run folder holds the same summary.

    Example:
        >>> result = run_cv("phantom", "squeezenet", out="runs")  # doctest: +SKIP
        >>> result.summary["mean"]["accuracy"]  # doctest: +SKIP
    """
    from covidlib.config import get_profile
    from covidlib.data.datasets import ensure_dataset, index_dataset
    from covidlib.engine.learner import TrainConfig, default_canvas, fit_fold
    from covidlib.engine.runs import FoldLock, RunFolder

    say = log or (lambda _: None)
    profile = profile or get_profile()
    config = config or TrainConfig.from_profile(profile)
    pretrained = profile.pretrained if pretrained is None else pretrained
    if split not in SPLIT_STRATEGIES:
        raise ValueError(f"Unknown split {split!r}; choose one of {SPLIT_STRATEGIES}.")
    dataset_root = ensure_dataset(dataset, root, profile)
    index = index_dataset(dataset, dataset_root)
    images = index.require_clean(skip_problems).reset_index(drop=True)
    runs_root = Path(out) if out is not None else Path("runs")
    fold_file = folds_file(runs_root, dataset, split, config.seed, n_folds)
    folds = load_or_assign_folds(images, fold_file, n_folds, config.seed, split)
    available = fold_numbers(folds)
    if only_fold is not None and only_fold not in available:
        raise ValueError(f"--fold {only_fold} does not exist; the folds are {available}.")
    canvas = default_canvas(model, config)
    run_dir = runs_root / dataset / model / (run_name or profile.name)
    wanted = _run_config(
        dataset, model, split, len(available), bool(pretrained), canvas, config, len(images),
        fold_file,
    )
    check_run_config(run_dir, wanted)
    folds_table = pd.DataFrame(
        {"path": images["path"], "label": images["label"], "fold": folds.to_numpy()}
    )
    atomic_write_text(run_dir / FOLDS_FILE, folds_table.to_csv(index=False))
    say(f"{model} on {dataset} ({len(images)} images, {split} folds, canvas "
        f"{canvas[0]}x{canvas[1]}, {config.epochs} epochs) -> {run_dir}")
    run = RunFolder(run_dir)
    for fold in [only_fold] if only_fold is not None else available:
        files = run.fold(fold)
        if files.is_finished():  # read now: other machines may share the folder
            say(f"fold {fold}: finished earlier, skipped")
            continue
        with FoldLock(files.lock) as lock:  # released in a finally, even on Ctrl-C
            if lock.stale_reason:
                say(f"fold {fold}: {lock.took_over_message()}")
            if not lock.acquired:
                who = lock.holder.describe() if lock.holder else "another process"
                say(f"fold {fold}: being trained by {who}, skipped")
                continue
            if files.is_finished():  # finished by the process that held the lock
                say(f"fold {fold}: finished earlier, skipped")
                continue
            for problem in files.discard_broken():
                say(f"fold {fold}: {problem}; retraining")
            files.begin(run.read_config())
            started = time.perf_counter()
            train_rows, test_rows = fold_rows(folds, fold)
            result = fit_fold(
                model, images, train_rows, test_rows, config, canvas=canvas,
                pretrained=pretrained, fold=fold, fold_dir=files.dir, callbacks=callbacks,
            )
        resumed = f", resumed after epoch {result.resumed_from}" if result.resumed_from else ""
        metrics = "  ".join(f"{k} {v:.3f}" for k, v in result.metrics.items())
        say(f"fold {fold}: {metrics}  ({time.perf_counter() - started:.1f} s{resumed})")
    if not run.finished_folds():  # every fold was skipped: its trainer writes the summary
        say("no fold of this run has finished yet: nothing to summarize")
        return CVResult(run_dir, {}, pd.DataFrame(), pd.DataFrame(), folds)
    per_fold, predictions, history = collect_run(run_dir)
    summary = {
        "dataset": dataset,
        "model": model,
        "split": split,
        "complete": sorted(per_fold) == available,
        **summarize_folds(per_fold),
    }
    atomic_write_text(run_dir / SUMMARY_FILE, json.dumps(summary, indent=2) + "\n")
    atomic_write_text(run_dir / "predictions.csv", predictions.to_csv(index=False))
    if log is not None:
        say(format_summary(summary))
    return CVResult(run_dir, summary, predictions, history, folds)
