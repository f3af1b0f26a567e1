"""The training engine: the paper's protocol (section 5.2) as a fastai ``Learner``.

* loss: binary cross-entropy on the single logit (fastai ``BCEWithLogitsLossFlat``);
* optimizer: LAMB from ``torch_optimizer`` inside fastai's ``OptimWrapper``, weight decay 1
  (``torch_optimizer.Lamb`` adds it to the Adam step *before* the layer-wise trust ratio);
* batch size 32, 100 epochs, learning rate 3e-4 stepped down to 1e-4 at epoch 50, 3e-5 at
  70, 1e-5 at 80 and 3e-6 at 90; with fewer epochs epoch ``e`` of ``E`` uses the rate of the
  paper's epoch ``e * 100 / E``;
* no validation set inside the training folds: the last epoch's model is the fold's model;
* mixed precision and channels-last on a GPU, float32 on the CPU;
* resumable: data order and augmentation are seeded per (fold, epoch), and a checkpoint
  (model, optimizer, epoch, RNG states, epoch log) is written atomically after every epoch.

The settings come from :class:`covidlib.config.TrainConfig` inside an
:class:`covidlib.config.ExperimentConfig`; the device is resolved once by the caller and
passed down as a ``torch.device``.

Example:
    >>> config = TrainConfig(epochs=10)
    >>> config.lr_schedule()[:6], config.lr_at(9)
    ([0.0003, 0.0003, 0.0003, 0.0003, 0.0003, 0.0001], 3e-06)
"""


from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from covidlib.config import (
    ExperimentConfig,
    TrainConfig,
    progress_enabled,
)
from covidlib.engine.callbacks import (
    EpochCheckpoint,
    EpochSeeding,
    RecordLr,
    RestoreScaler,
    SkipValidation,
    StepSchedule,
    derive_seed,
)
from covidlib.engine.checkpoint import load_checkpoint, restore_rng_states
from covidlib.engine.optim import OPTIMIZERS
from covidlib.engine.runs import FoldFiles
from covidlib.evaluate.metrics import binary_metrics
from covidlib.utils.compat import quiet_fastai_import

with quiet_fastai_import():
    from fastai.callback.core import Callback
    from fastai.learner import Learner
    from fastai.losses import BCEWithLogitsLossFlat
    from fastai.optimizer import OptimWrapper
    from fastai.torch_core import set_seed

if TYPE_CHECKING:
    from fastai.data.core import DataLoaders


def make_learner(
    model: torch.nn.Module,
    dls: DataLoaders,
    config: TrainConfig | None = None,
    *,
    device: torch.device | None = None,
    show_progress: bool | None = None,
) -> Learner:
    """Return a fastai ``Learner`` set up as the paper trains (see the module docstring).

    The optimizer is ``OPTIMIZERS[config.optimizer]`` wrapped in fastai's ``OptimWrapper``;
    weight decay and learning rate are set on its parameter groups. On CUDA it switches on
    cuDNN's benchmark mode (the canvas is fixed, so cuDNN times its kernels once and keeps
    the fastest): GPU runs then repeat up to float rounding, not bit for bit.

    Args:
        model: the network (moved to ``device``).
        dls: fastai ``DataLoaders``.
        config: training settings (paper defaults).
        device: where to train; ``None`` is the loaders' device, else the CPU.
        show_progress: fastai's progress bars and per-epoch table; ``None`` asks
            :func:`covidlib.config.progress_enabled`.

    Example:
        >>> from fastai.data.core import DataLoaders
        >>> from fastai.data.load import DataLoader
        >>> data = [(torch.zeros(3, 8, 8), torch.tensor(1.0))] * 4
        >>> dls = DataLoaders(DataLoader(data, bs=2), DataLoader(data, bs=2))
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(192, 1))
        >>> learner = make_learner(model, dls, TrainConfig(), device=torch.device("cpu"))
        >>> learner.create_opt(); learner.opt.opt.param_groups[0]["weight_decay"]
        1.0
    """
    show = progress_enabled() if show_progress is None else show_progress
    if show:  # importing it adds fastai's ProgressCallback to every new Learner
        with quiet_fastai_import():
            import fastai.callback.progress  # noqa: F401
    config = config or TrainConfig()
    device = _device_of(dls) if device is None else device
    model = model.to(device)
    build = OPTIMIZERS[config.optimizer]
    opt_func = partial(OptimWrapper, opt=partial(build, config=config))
    learner = Learner(
        dls, model, loss_func=BCEWithLogitsLossFlat(), opt_func=opt_func, lr=config.lr,
        # wd_bn_bias: the paper decays every parameter, norms and biases included.
        wd=config.weight_decay, wd_bn_bias=True,
    )
    learner.recorder.valid_metrics = False
    if device.type == "cuda":
        # One canvas for the whole run: let cuDNN time its kernels once and keep the fastest.
        torch.backends.cudnn.benchmark = True
        if config.channels_last:
            from fastai.callback.channelslast import ChannelsLast

            learner.add_cb(ChannelsLast())
        if config.mixed_precision:
            learner.to_fp16()
    if not show:
        _silence(learner)
    return learner


def _device_of(dls: Any) -> torch.device:
    """The device a fastai ``DataLoaders`` delivers batches on (CPU when it names none)."""
    device = getattr(dls, "device", None)
    return torch.device(device) if device is not None else torch.device("cpu")


def _silence(learner: Learner) -> None:
    """Remove fastai's progress bars and per-epoch table from ``learner``."""
    progress = sys.modules.get("fastai.callback.progress")  # absent: no bars were added
    if progress is not None:
        learner.remove_cb(progress.ProgressCallback)
    learner.logger = _quiet


def _quiet(*_: Any) -> None:
    """A logger that drops fastai's per-epoch table (book build, CI, tests)."""


@contextlib.contextmanager
def _progress_on_stderr(show: bool) -> Iterator[None]:
    """Send fastprogress's console bars (printed to stdout) to stderr, the terminal's."""
    if not show:
        yield
        return
    with contextlib.redirect_stdout(sys.stderr):
        yield


@dataclass
class FoldResult:
    """What training one fold produced.

    Attributes:
        fold: fold number.
        learner: the fastai ``Learner`` holding the fold's model.
        history: epoch log (epoch, train_loss, lr, seconds).
        predictions: test-fold predictions (path, label, probability, fold).
        metrics: :func:`covidlib.evaluate.metrics.binary_metrics` of the predictions.
        resumed_from: epochs already done when this call started (0 = fresh).
        fold_dir: the fold's folder in the run folder, if any.
    """

    fold: int
    learner: Learner
    history: pd.DataFrame
    predictions: pd.DataFrame
    metrics: dict[str, float]
    resumed_from: int = 0
    fold_dir: Path | None = None


def predict_logits(learner: Learner, loader: Any) -> tuple[np.ndarray, np.ndarray]:
    """Return (COVID logit, target) of every sample of ``loader``, in its order.

    fastai's ``get_preds`` runs the learner's callbacks (mixed precision, channels-last);
    ``act=noop`` keeps the raw logit, whose sigmoid is the COVID probability (the logit is
    stored too: calibration needs it, and a probability rounded to 1.0 has lost it).
    """
    from fastai.torch_core import noop

    logits, targets = learner.get_preds(dl=loader, act=noop)
    return logits.float().reshape(-1).numpy(), targets.float().reshape(-1).numpy()


def train_fold(
    model: torch.nn.Module,
    dls: DataLoaders,
    test_table: pd.DataFrame,
    config: TrainConfig | None = None,
    *,
    seed: int = 0,
    fold: int = 0,
    fold_dir: str | Path | None = None,
    device: torch.device | None = None,
    show_progress: bool | None = None,
    callbacks: Sequence[Callback] = (),
) -> FoldResult:
    """Train ``model`` on ``dls.train``, predict ``dls.valid`` (the test fold), score it.

    With ``fold_dir`` the fold resumes from ``fold_dir/checkpoint.pt`` when one exists and
    writes the epoch log, checkpoints, ``predictions.csv``, ``model.pt`` and (last)
    ``metrics.json`` there. Seed the model's initialisation before calling this.

    Args:
        model: a network with one logit per image ([B, 1]).
        dls: fastai ``DataLoaders``; ``valid`` is the test fold, unshuffled.
        test_table: one row per test image in ``dls.valid`` order with ``path`` and ``label``.
        config: training settings (paper defaults).
        seed: with ``fold`` and the epoch, seeds every epoch's data order and augmentation.
        fold: fold number (seeds data order per epoch; written into the predictions).
        fold_dir: folder for checkpoints and results, or ``None`` for nothing on disk.
        device: where to train (resolved by the caller); ``None`` is the loaders' device.
        show_progress: progress bars (on stderr); ``None`` asks
            :func:`covidlib.config.progress_enabled`.
        callbacks: extra fastai callbacks for this fit (tests use one to interrupt).

    Example:
        >>> from fastai.data.core import DataLoaders
        >>> from fastai.data.load import DataLoader
        >>> data = [(torch.randn(3, 8, 8), torch.tensor(float(i % 2))) for i in range(8)]
        >>> dls = DataLoaders(DataLoader(data, bs=4, shuffle=True), DataLoader(data, bs=4))
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(192, 1))
        >>> table = pd.DataFrame({"path": [f"{i}.png" for i in range(8)], "label": [0, 1] * 4})
        >>> result = train_fold(model, dls, table, TrainConfig(epochs=2))
        >>> list(result.history["lr"]), len(result.predictions)
        ([0.0003, 0.0001], 8)
    """
    config = config or TrainConfig()
    folder = Path(fold_dir) if fold_dir is not None else None
    if config.fold_model != "last" and folder is None:
        raise ValueError(
            f"fold_model={config.fold_model!r} keeps the best epoch's weights in the fold "
            "folder: pass fold_dir (run_cv does), or use fold_model='last'."
        )
    show = progress_enabled() if show_progress is None else show_progress
    learner = make_learner(model, dls, config, device=device, show_progress=show)
    learner.create_opt()
    history: list[dict[str, Any]] = []
    start_epoch = 0
    checkpoint = FoldFiles(folder).checkpoint if folder is not None else None
    if checkpoint is not None and checkpoint.exists():
        # On the CPU: RNG states must stay CPU tensors; load_state_dict moves the rest.
        state = load_checkpoint(checkpoint, map_location="cpu")
        learner.model.load_state_dict(state["model"])
        learner.opt.load_state_dict(state["optimizer"])
        restore_rng_states(state["rng"])
        history = [dict(row) for row in state["history"]]
        start_epoch = int(state["epochs_done"])
        if start_epoch > config.epochs:
            raise ValueError(
                f"{checkpoint} already holds {start_epoch} epochs but the config asks for "
                f"{config.epochs}; use another run folder."
            )
        if "scaler" in state:
            learner.add_cb(RestoreScaler(state["scaler"]))
    remaining = config.epochs - start_epoch
    if remaining > 0:
        cbs = [
            StepSchedule(config, start_epoch),
            EpochSeeding(seed, fold, start_epoch),
            SkipValidation(),
            EpochCheckpoint(config, folder, history, start_epoch),
            *callbacks,
        ]
        with _progress_on_stderr(show):
            learner.fit(remaining, lr=config.lr, wd=config.weight_decay, cbs=cbs)
    if config.fold_model == "lowest_train_loss" and folder is not None:
        best_file = FoldFiles(folder).best
        FoldFiles(folder).verify(best_file, hint="delete the fold folder to retrain it")
        best = torch.load(best_file, map_location="cpu", weights_only=True)
        learner.model.load_state_dict(best["model"])
    with _progress_on_stderr(show):
        logits, targets = predict_logits(learner, dls.valid)
    probabilities = torch.sigmoid(torch.from_numpy(logits).double()).numpy()
    expected = test_table["label"].to_numpy(dtype=np.float32)
    if len(targets) != len(expected) or not np.array_equal(targets, expected):
        raise ValueError(
            f"dls.valid yielded {len(targets)} images whose labels do not match the "
            f"{len(expected)} rows of the test table; the test loader must keep every test "
            "image, in order."
        )
    broken = int((~np.isfinite(probabilities)).sum())
    if broken:
        raise ValueError(
            f"fold {fold}: {broken} of {len(probabilities)} test predictions are NaN or "
            "infinite: training diverged or a float16 activation overflowed. Train again with "
            "a lower learning rate or with mixed_precision=False"
            + (f" (in another run folder than {folder})." if folder is not None else ".")
        )
    predictions = pd.DataFrame(
        {
            "path": test_table["path"].astype(str).to_numpy(),
            "label": test_table["label"].astype(int).to_numpy(),
            "probability": probabilities.astype(float),
            "fold": fold,
            "logit": logits.astype(float),
        }
    )
    if "relpath" in test_table.columns:  # the image relative to the dataset root
        predictions["relpath"] = test_table["relpath"].astype(str).to_numpy()
    metrics = binary_metrics(predictions["label"], predictions["probability"])
    if folder is not None:
        FoldFiles(folder).write_results(
            learner.model.state_dict(), predictions, {"fold": fold, **metrics}, history
        )
    return FoldResult(
        fold=fold,
        learner=learner,
        history=pd.DataFrame(history, columns=["epoch", "train_loss", "lr", "seconds"]),
        predictions=predictions,
        metrics=metrics,
        resumed_from=start_epoch,
        fold_dir=folder,
    )


def default_canvas(model_name: str, canvas_scale: float = 1.0) -> tuple[int, int]:
    """Return the model's custom input (w, h) scaled by ``canvas_scale``.

    Example:
        >>> default_canvas("inceptionv3", 0.2)
        (75, 75)
    """
    from covidlib.models.registry import get_spec

    return tuple(get_spec(model_name).canvas(canvas_scale))  # type: ignore[return-value]


def resolve_canvas(config: ExperimentConfig) -> ExperimentConfig:
    """Return ``config`` with its canvas filled in (the model's, scaled), as runs store it.

    Raises:
        KeyError: an unknown model name.

    Example:
        >>> from covidlib.config import ExperimentConfig
        >>> resolve_canvas(ExperimentConfig("phantom", "inceptionv3", canvas_scale=0.2)).canvas
        (75, 75)
    """
    if config.canvas is not None:
        return config
    return replace(config, canvas=default_canvas(config.model, config.canvas_scale))


def fit_fold(
    config: ExperimentConfig,
    images: pd.DataFrame,
    train_rows: Sequence[int] | np.ndarray,
    test_rows: Sequence[int] | np.ndarray,
    *,
    dataset: str | None = None,
    device: torch.device | None = None,
    num_workers: int = 0,
    show_progress: bool | None = None,
    fold: int = 0,
    fold_dir: str | Path | None = None,
    callbacks: Sequence[Callback] = (),
) -> FoldResult:
    """Train ``config.model`` on ``train_rows`` of ``images`` and evaluate on ``test_rows``.

    Everything that decides the result comes from ``config``: weights, transfer strategy
    (:func:`covidlib.engine.transfer.apply_strategy`), canvas, seed, training settings and
    augmentation (``config.augment``; ``None`` trains without).

    Args:
        config: the experiment.
        images: a dataset table (``DatasetIndex.images``).
        train_rows: positional rows of the training folds.
        test_rows: positional rows of the test fold.
        dataset: the index's dataset name (``DatasetIndex.name``) for the letterbox cache
            file; ``None`` keeps the cache in memory.
        device: where to train (resolve it once with :func:`covidlib.config.resolve_device`);
            ``None`` is the CPU.
        num_workers: threads that decode images while the letterbox cache is built.
        show_progress: progress bars; ``None`` asks :func:`covidlib.config.progress_enabled`.
        fold: fold number.
        fold_dir: folder for checkpoints and results (resumes from it), or ``None``.
        callbacks: extra fastai callbacks.

    Example:
        >>> import os, tempfile
        >>> from unittest import mock
        >>> from covidlib.config import get_profile
        >>> from covidlib.data.index import index_dataset
        >>> from covidlib.data.phantom import generate_phantom
        >>> folder = tempfile.mkdtemp()  # dataset and caches go there, not to data/
        >>> index = index_dataset("phantom", generate_phantom(Path(folder) / "phantom", n=12))
        >>> config = get_profile("quick").experiment(
        ...     "phantom", "squeezenet", epochs=1, canvas_scale=0.12, augment=None)
        >>> with mock.patch.dict(os.environ, {"COVIDLIB_DATA": folder}):
        ...     result = fit_fold(config, index.images, range(8), range(8, 12),
        ...                       dataset=index.name, show_progress=False)
        >>> len(result.history), len(result.predictions)
        (1, 4)
    """
    from covidlib.data.loaders import fold_dataloaders
    from covidlib.engine.transfer import apply_strategy
    from covidlib.models.factory import create_model
    from covidlib.models.registry import get_spec

    train_rows = np.asarray(train_rows, dtype=int)
    test_rows = np.asarray(test_rows, dtype=int)
    overlap = np.intersect1d(train_rows, test_rows)
    if overlap.size:
        raise ValueError(f"{overlap.size} rows are in both the training and the test fold.")
    config = resolve_canvas(config)
    assert config.canvas is not None
    device = torch.device("cpu") if device is None else device
    fold_seed = derive_seed(config.seed, fold)
    set_seed(fold_seed)
    model = create_model(config.model, pretrained=config.pretrained)
    # What trains (covidlib.engine.transfer): everything, or the head alone for "features".
    callbacks = (*apply_strategy(model, config.model, config.strategy or "scratch"), *callbacks)
    mean, std = get_spec(config.model).normalization
    dls = fold_dataloaders(
        images, train_rows, test_rows, config.canvas, config.train.batch_size,
        augment=config.augment, seed=fold_seed, device=device, num_workers=num_workers,
        mean=mean, std=std, dataset=dataset,
    )
    test_table = images.iloc[test_rows]
    return train_fold(
        model, dls, test_table, config.train, seed=config.seed, fold=fold, fold_dir=fold_dir,
        device=device, show_progress=show_progress, callbacks=callbacks,
    )


def lr_trace(config: TrainConfig | None = None) -> pd.DataFrame:
    """Return the learning rate and weight decay the torch optimizer holds in each epoch.

    Runs the engine's schedule on a one-parameter model (one batch per epoch) and reads the
    values from the optimizer's parameter group, not from the config.

    Example:
        >>> lr_trace(TrainConfig(epochs=4))["lr"].tolist()
        [0.0003, 0.0003, 0.0001, 3e-05]
    """
    from fastai.data.core import DataLoaders
    from fastai.data.load import DataLoader

    config = config or TrainConfig()
    data = [(torch.zeros(1), torch.tensor(1.0))]
    dls = DataLoaders(DataLoader(data, bs=1), DataLoader(data, bs=1))
    learner = make_learner(
        torch.nn.Linear(1, 1), dls, config, device=torch.device("cpu"), show_progress=False
    )
    recorder = RecordLr()
    learner.fit(
        config.epochs, lr=config.lr, wd=config.weight_decay,
        cbs=[StepSchedule(config), SkipValidation(), recorder],
    )
    return pd.DataFrame(recorder.rows)
