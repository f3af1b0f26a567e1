"""Cross-validation: resumable run folders and the 5-fold loop.

Folds come from :mod:`covidlib.engine.folds`. A run folder
``<out>/<dataset>/<model>/<run-name>/`` (laid out by :class:`covidlib.engine.runs.RunFolder`)
holds the whole :class:`covidlib.config.ExperimentConfig`, the fold of every image, the
summary and predictions of the finished folds, the files ``skip_problems`` left out, and one
folder per fold (epoch log, checkpoint, final weights, predictions, metrics). Re-running
skips finished folds and resumes an interrupted one; a different experiment is refused,
naming every differing key. The runtime settings (device, workers, progress bars) are not
stored and may change between runs.

Example:
    >>> from covidlib.config import ExperimentConfig
    >>> import tempfile
    >>> check_run_config(tempfile.mkdtemp(), ExperimentConfig("phantom", "squeezenet"))
    False
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from covidlib.config import (
    PROFILES,
    ExperimentConfig,
    Profile,
    RuntimeSettings,
    config_differences,
    describe_differences,
)
from covidlib.engine.folds import (
    apply_groups_file,
    assign_folds,
    fold_numbers,
    fold_rows,
    folds_file,
    load_or_assign_folds,
)
from covidlib.evaluate.metrics import METRIC_NAMES, format_summary, summarize_folds
from covidlib.utils.fileio import atomic_write_text, exclusive_lock

if TYPE_CHECKING:
    from fastai.callback.core import Callback

    from covidlib.data.index import DatasetIndex
    from covidlib.engine.learner import FoldResult


SKIPPED_SHOWN = 5  # skipped files named in the log line


class RunConfigError(ValueError):
    """A run folder holds another configuration than the one requested."""


@dataclass
class CVResult:
    """The outcome of :func:`run_cv`.

    Attributes:
        run_dir: the run folder.
        summary: per-fold metrics with mean and std (also in ``summary.json``).
        predictions: test predictions of every finished fold (path, label, probability, fold).
        history: epoch logs of every finished fold (with a ``fold`` column).
        folds: the fold of every image.
        config: the experiment (as stored in ``config.json``).
    """

    run_dir: Path
    summary: dict[str, Any]
    predictions: pd.DataFrame
    history: pd.DataFrame
    folds: pd.Series
    config: ExperimentConfig | None = None


def check_run_config(run_dir: str | Path, config: ExperimentConfig) -> bool:
    """Refuse a run folder whose ``config.json`` holds another experiment.

    Reads only; returns whether the folder already has a ``config.json``.

    Raises:
        RunConfigError: naming every differing dotted key with its saved and requested
            value, e.g. ``augment.blur_sigma: saved [0.1, 1.5], requested [0.1, 2.0]``.

    Example:
        >>> import tempfile
        >>> check_run_config(tempfile.mkdtemp(), ExperimentConfig("phantom", "squeezenet"))
        False
    """
    from covidlib.engine.runs import RunFolder

    run = RunFolder(run_dir)
    if not run.config_file.exists():
        return False
    saved = run.read_config()  # names the file when it is not a JSON object
    wanted = config.to_dict()
    if config_differences(saved, wanted):
        raise RunConfigError(
            f"{run_dir} was made with another configuration "
            f"({describe_differences(saved, wanted)}). Use another run name (--run-name) or "
            "--out folder, or delete that folder to start over."
        )
    return True


def read_experiment(run_dir: str | Path) -> ExperimentConfig:
    """Return the experiment stored in a run folder's ``config.json``.

    Raises:
        FileNotFoundError: no ``config.json``. ValueError: it is not a complete experiment.
    """
    from covidlib.engine.runs import RunFolder

    run = RunFolder(run_dir)
    path = run.config_file
    if not path.is_file():
        raise FileNotFoundError(
            f"{run_dir} is not a run folder of `covidlib cv` (no {path.name})."
        )
    saved = run.read_config()  # names the file when it is not a JSON object
    try:
        return ExperimentConfig.from_dict(saved)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{path}: {error}") from None


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
    model_name: str,
    images: pd.DataFrame | DatasetIndex,
    profile: Profile | None = None,
    *,
    seed: int = 0,
    dataset: str | None = None,
    runtime: RuntimeSettings | None = None,
) -> FoldResult:
    """Fine-tune a model on fold 0 of the profile's stratified folds (for the chapters).

    The profile decides everything: its experiment defaults (training settings, initial
    weights, augmentation, folds) and, through ``demo_images_per_class``, whether a
    class-balanced sample or every image is used.

    Args:
        model_name: a key of :func:`covidlib.models.registry.list_models`.
        images: a dataset index, or its table (``DatasetIndex.images``).
        profile: run profile; ``None`` reads ``COVIDLIB_PROFILE``.
        seed: seed of the sample, the folds and the training.
        dataset: the dataset's name for a table (an index knows it); it names the experiment
            and the letterbox cache file (``None``: the profile's dataset, cache in memory).
        runtime: device, workers and progress bars (default: CUDA when available).

    Example:
        >>> result = fit_first_fold("resnet18", images)  # doctest: +SKIP
        >>> sorted(result.metrics)  # doctest: +SKIP
        ['accuracy', 'f1', 'precision', 'recall', 'specificity']
    """
    from covidlib.config import get_profile
    from covidlib.data.index import DatasetIndex
    from covidlib.engine.learner import fit_fold

    profile = profile or get_profile()
    runtime = runtime or RuntimeSettings()
    if isinstance(images, DatasetIndex):
        dataset = dataset or images.name
        images = images.images
    config = profile.experiment(dataset or profile.dataset, model_name, seed=seed)
    sample = images
    per_class = profile.demo_images_per_class
    if per_class is not None:
        per_class = min(per_class, int(images["label"].value_counts().min()))
        sample = images.groupby("label").sample(n=per_class, random_state=seed)
    sample = sample.reset_index(drop=True)
    folds = assign_folds(sample, n_folds=config.n_folds, seed=seed, strategy=config.split)
    train_rows, test_rows = fold_rows(folds, 0)
    return fit_fold(
        config, sample, train_rows, test_rows, dataset=dataset,
        device=runtime.torch_device(), num_workers=runtime.num_workers,
        show_progress=runtime.show_progress(),
    )


def phantom_profile(config: ExperimentConfig) -> Profile | None:
    """A profile carrying the experiment's phantom settings (``ensure_dataset`` reads a
    profile's); ``None`` for a real dataset.

    Example:
        >>> from covidlib.config import get_profile
        >>> phantom_profile(get_profile("full").experiment("covid19-ct", "resnet18")) is None
        True
    """
    if config.phantom is None:
        return None
    return PROFILES["quick"].with_overrides(phantom=config.phantom)


def _planned_folds(config: ExperimentConfig) -> list[int]:
    return [0] if config.split == "official" else list(range(config.n_folds))


def run_cv(
    config: ExperimentConfig,
    runtime: RuntimeSettings | None = None,
    *,
    root: str | Path | None = None,
    out: str | Path | None = None,
    run_name: str | None = None,
    run_dir: str | Path | None = None,
    only_fold: int | None = None,
    callbacks: Sequence[Callback] = (),
    log: Callable[[str], None] | None = print,
    labels: str | Path | None = None,
) -> CVResult:
    """Cross-validate ``config.model`` on ``config.dataset`` into a resumable run folder.

    The arguments are validated (dataset, model, fold, a saved config of the run folder)
    before anything is written. The device is resolved here, once.

    Args:
        config: the experiment (e.g. ``get_profile().experiment("phantom", "squeezenet")``).
        runtime: device, workers and progress bars (default: CUDA when available).
        root: dataset folder (default: the registry's; the phantom is generated there).
            For ``config.dataset == "folder"`` (your own images) the folder's name takes the
            dataset's place in the run and fold-file paths.
        out: runs root (default ``runs`` in the current folder); the fold assignment is
            stored in ``<out>/<dataset>/``.
        run_name: run folder name under ``<out>/<dataset>/<model>/`` (default: the first 12
            characters of the config's digest).
        run_dir: the run folder itself (overrides ``run_name``).
        only_fold: train just this fold (several machines can share one run folder).
        callbacks: extra fastai callbacks for every fold.
        log: where progress lines go (``None`` = silent); without progress bars one line
            per epoch goes there too.
        labels: a labels CSV of a folder of your own (``path,label``), instead of class
            folders.

    Returns:
        A :class:`CVResult`; ``summary.json`` in the run folder holds the same summary.

    Example:
        >>> import os, tempfile
        >>> from unittest import mock
        >>> from covidlib.config import RuntimeSettings, get_profile
        >>> from covidlib.data.phantom import generate_phantom
        >>> folder = Path(tempfile.mkdtemp())  # datasets and caches go there, not to data/
        >>> root = generate_phantom(folder / "phantom", n=12)
        >>> config = get_profile("quick").experiment(
        ...     "phantom", "squeezenet", n_folds=2, epochs=1, canvas_scale=0.12)
        >>> with mock.patch.dict(os.environ, {"COVIDLIB_DATA": str(folder)}):
        ...     result = run_cv(config, RuntimeSettings(device="cpu", progress=False),
        ...                     root=root, out=folder / "runs", log=None)
        >>> result.summary["complete"], sorted(result.summary["folds"])
        (True, ['0', '1'])
    """
    from covidlib.data.folder import folder_dataset_name
    from covidlib.data.index import index_dataset
    from covidlib.data.registry import get_dataset
    from covidlib.data.sources import ensure_dataset
    from covidlib.engine.callbacks import EpochLog
    from covidlib.engine.learner import fit_fold, resolve_canvas
    from covidlib.engine.locks import FoldLock
    from covidlib.engine.runs import RunFolder

    say = log or (lambda _: None)
    runtime = runtime or RuntimeSettings()
    # Everything that can be refused is checked before the first file is written.
    dataset = config.dataset
    if get_dataset(config.dataset).loose_folders:  # a folder of your own: named after it
        dataset = folder_dataset_name(ensure_dataset(config.dataset, root))
    config = resolve_canvas(config)
    planned = _planned_folds(config)
    if only_fold is not None and only_fold not in planned:
        raise ValueError(f"--fold {only_fold} does not exist; the folds are {planned}.")
    if config.weights not in ("random", "imagenet") and not Path(config.weights).is_file():
        raise FileNotFoundError(
            f"weights file {config.weights} not found; pass 'random', 'imagenet' or a file."
        )
    if config.weights == "imagenet":  # offline without the weights: refuse before writing
        from covidlib.models.factory import require_imagenet_weights

        require_imagenet_weights(config.model)
    device = runtime.torch_device()
    show_progress = runtime.show_progress()
    runs_root = Path(out) if out is not None else Path("runs")
    if run_dir is not None:
        run_dir = Path(run_dir)
    else:
        run_dir = runs_root / dataset / config.model / (run_name or config.digest()[:12])
    has_config = check_run_config(run_dir, config)
    dataset_root = ensure_dataset(config.dataset, root, phantom_profile(config))
    index = index_dataset(config.dataset, dataset_root, labels=labels)
    images = index.require_clean(config.skip_problems).reset_index(drop=True)
    if images["label"].nunique() < 2:
        found = ", ".join(sorted(set(images["class_name"]))) or "no readable image"
        raise ValueError(f"{dataset_root} holds one class only ({found}); training needs "
                         "COVID and non-COVID images.")
    if config.groups_sha256 is not None and config.groups is not None:
        images = apply_groups_file(images, config.groups, config.groups_sha256)
    skipped = index.problems if config.skip_problems else index.problems.iloc[:0]
    fold_file = folds_file(runs_root, index.name, config.split, config.seed, config.n_folds,
                           config.groups_tag)
    folds = load_or_assign_folds(images, fold_file, config.n_folds, config.seed, config.split)
    available = fold_numbers(folds)
    run = RunFolder(run_dir)
    if not has_config:
        run.write_config(config.to_dict())
    folds_table = pd.DataFrame(
        {"path": images["path"], "label": images["label"], "fold": folds.to_numpy()}
    )
    atomic_write_text(run.folds_file, folds_table.to_csv(index=False))
    if len(skipped):
        atomic_write_text(run.skipped_file, skipped.to_csv(index=False))
        shown = ", ".join(str(p) for p in skipped["path"].head(SKIPPED_SHOWN))
        more = f" and {len(skipped) - SKIPPED_SHOWN} more" if len(skipped) > SKIPPED_SHOWN else ""
        say(f"skipped {len(skipped)} unreadable file(s) ({shown}{more}); listed in "
            f"{run.skipped_file}")
    canvas = config.canvas or (0, 0)
    say(f"{config.model} on {index.name} ({len(images)} images, {config.split} folds, "
        f"canvas {canvas[0]}x{canvas[1]}, {config.train.epochs} epochs, {device.type}) "
        f"-> {run_dir}")
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
            epoch_log = [] if show_progress or log is None else [
                EpochLog(say, fold, config.train.epochs)
            ]
            result = fit_fold(
                config, images, train_rows, test_rows, dataset=index.name, device=device,
                num_workers=runtime.num_workers, show_progress=show_progress, fold=fold,
                fold_dir=files.dir, callbacks=[*callbacks, *epoch_log],
            )
        resumed = f", resumed after epoch {result.resumed_from}" if result.resumed_from else ""
        metrics = "  ".join(f"{k} {result.metrics[k]:.3f}" for k in METRIC_NAMES)
        say(f"fold {fold}: {metrics}  ({time.perf_counter() - started:.1f} s{resumed})")
    if not run.finished_folds():  # every fold was skipped: its trainer writes the summary
        say("no fold of this run has finished yet: nothing to summarize")
        return CVResult(run_dir, {}, pd.DataFrame(), pd.DataFrame(), folds, config)
    # Several processes may finish folds of this run at once (a grid): the run-level files
    # are read and rewritten under the run's lock, so the last writer sees every fold.
    with exclusive_lock(run.lock_file):
        per_fold, predictions, history = collect_run(run_dir)
        summary = {
            "dataset": index.name,  # a folder of your own: its name
            "model": config.model,
            "split": config.split,
            "complete": sorted(per_fold) == available,
            **summarize_folds(per_fold),
        }
        atomic_write_text(run.summary_file, json.dumps(summary, indent=2) + "\n")
        atomic_write_text(run.predictions_file, predictions.to_csv(index=False))
    if log is not None:
        say(format_summary(summary))
    return CVResult(run_dir, summary, predictions, history, folds, config)


def load_finished_run(run_dir: str | Path, config: ExperimentConfig) -> CVResult | None:
    """Return the :class:`CVResult` of a complete run folder of ``config``, else ``None``.

    Reads only the run folder (no dataset, no training).

    Raises:
        RunConfigError: the folder holds another experiment.

    Example:
        >>> import tempfile
        >>> load_finished_run(tempfile.mkdtemp(), ExperimentConfig("phantom", "squeezenet"))
    """
    from covidlib.engine.runs import RunFolder

    run_dir = Path(run_dir)
    run = RunFolder(run_dir)
    if not check_run_config(run_dir, config) or not run.summary_file.is_file():
        return None
    summary = run.read_summary()
    if not summary.get("complete"):
        return None
    _, predictions, history = collect_run(run_dir)
    folds = run.read_folds()["fold"].rename("fold")
    return CVResult(run_dir, summary, predictions, history, folds, config)


def cached_run(
    config: ExperimentConfig,
    runtime: RuntimeSettings | None = None,
    *,
    root: str | Path | None = None,
    log: Callable[[str], None] | None = None,
    data_root: str | Path | None = None,
) -> CVResult:
    """Train ``config`` once into ``<root>/<digest[:16]>/`` and reuse it on later calls.

    A finished run is returned from disk without training (nor indexing the dataset); an
    interrupted one resumes. The folder is named by the experiment's digest (canvas filled
    in), so every chapter that asks for the same experiment shares one trained run.

    Args:
        config: the experiment.
        runtime: device, workers and progress bars (not part of the cache key).
        root: runs root (default ``data_dir()/"runs"``).
        log: where progress lines go (default: silent).
        data_root: the dataset's folder (default: the registry's, see
            :func:`covidlib.data.sources.ensure_dataset`).

    Example:
        >>> import os, tempfile
        >>> from unittest import mock
        >>> from covidlib.config import PhantomConfig, RuntimeSettings, get_profile
        >>> from covidlib.engine.learner import resolve_canvas
        >>> config = get_profile("quick").experiment(
        ...     "phantom", "squeezenet", n_folds=2, epochs=1, canvas_scale=0.12,
        ...     phantom=PhantomConfig(size=12))
        >>> cpu = RuntimeSettings(device="cpu", progress=False)
        >>> with mock.patch.dict(os.environ, {"COVIDLIB_DATA": tempfile.mkdtemp()}):
        ...     first = cached_run(config, cpu)  # trains into data_dir()/runs/<digest[:16]>
        ...     again = cached_run(config, cpu)  # read back: no training
        >>> first.run_dir.name == resolve_canvas(config).digest()[:16] == again.run_dir.name
        True
        >>> again.predictions.equals(first.predictions)
        True
    """
    from covidlib.config import data_dir
    from covidlib.engine.learner import resolve_canvas

    runs_root = Path(root) if root is not None else data_dir() / "runs"
    config = resolve_canvas(config)
    run_dir = runs_root / config.digest()[:16]
    finished = load_finished_run(run_dir, config)
    if finished is not None:
        return finished
    return run_cv(config, runtime, root=data_root, out=runs_root, run_dir=run_dir, log=log)
