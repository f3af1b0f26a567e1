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

The settings come from :class:`covidlib.config.TrainConfig` (re-exported here) inside an
:class:`covidlib.config.ExperimentConfig`; the device is resolved once by the caller and
passed down as a ``torch.device``.

Example:
    >>> config = TrainConfig(epochs=10)
    >>> config.lr_schedule()[:6], config.lr_at(9)
    ([0.0003, 0.0003, 0.0003, 0.0003, 0.0003, 0.0001], 3e-06)
"""

from __future__ import annotations

import contextlib
import random
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from covidlib.config import (
    FOLD_MODEL_CHOICES,
    OPTIMIZER_NAMES,
    ExperimentConfig,
    TrainConfig,
    config_differences,
    progress_enabled,
)
from covidlib.evaluate.metrics import binary_metrics
from covidlib.utils.compat import quiet_fastai_import
from covidlib.utils.fileio import atomic_path

with quiet_fastai_import():
    from fastai.callback.core import Callback, CancelValidException
    from fastai.learner import Learner
    from fastai.losses import BCEWithLogitsLossFlat
    from fastai.optimizer import OptimWrapper
    from fastai.torch_core import find_bs, set_seed

if TYPE_CHECKING:
    from fastai.data.core import DataLoaders

CHECKPOINT_FILE = "checkpoint.pt"
BEST_FILE = "best.pt"
MODEL_FILE = "model.pt"
EPOCH_LOG_FILE = "epochs.csv"
PREDICTIONS_FILE = "predictions.csv"
METRICS_FILE = "metrics.json"


def _lamb(params: Any, config: TrainConfig, lr: float | None = None) -> torch.optim.Optimizer:
    from covidlib.engine.lamb import Lamb

    return Lamb(
        params, lr=lr or config.lr, betas=config.betas, eps=config.eps,
        weight_decay=config.weight_decay,
    )


def _lamb_torch_optimizer(
    params: Any, config: TrainConfig, lr: float | None = None
) -> torch.optim.Optimizer:
    import torch_optimizer

    return torch_optimizer.Lamb(
        params, lr=lr or config.lr, betas=config.betas, eps=config.eps,
        weight_decay=config.weight_decay,
    )


def _adam(params: Any, config: TrainConfig, lr: float | None = None) -> torch.optim.Optimizer:
    return torch.optim.Adam(
        params, lr=lr or config.lr, betas=config.betas, eps=config.eps,
        weight_decay=config.weight_decay,
    )


def _adamw(params: Any, config: TrainConfig, lr: float | None = None) -> torch.optim.Optimizer:
    return torch.optim.AdamW(
        params, lr=lr or config.lr, betas=config.betas, eps=config.eps,
        weight_decay=config.weight_decay,
    )


def _sgd(params: Any, config: TrainConfig, lr: float | None = None) -> torch.optim.Optimizer:
    return torch.optim.SGD(
        params, lr=lr or config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )


# name -> builder(params, config, lr), the builders in the order of config.OPTIMIZER_NAMES, the
# one list of names (config validates names with it without importing torch). LAMB is the
# paper's; "lamb" is covidlib's multi-tensor one (the same mathematics as torch_optimizer.Lamb,
# without its host reads, see covidlib.engine.lamb), "lamb-torch-optimizer" the original.
OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = dict(
    zip(OPTIMIZER_NAMES, (_lamb, _lamb_torch_optimizer, _adam, _adamw, _sgd), strict=True)
)


def derive_seed(seed: int, *keys: int) -> int:
    """Return a well-mixed 31-bit seed for ``seed`` and keys such as (fold, epoch).

    Example:
        >>> derive_seed(0, 1, 2) == derive_seed(0, 1, 2) != derive_seed(0, 2, 1)
        True
    """
    sequence = np.random.SeedSequence([seed, *[k + 1 for k in keys]])
    return int(sequence.generate_state(1)[0] & 0x7FFFFFFF)


def _reseed_loader(loader: Any, seed: int) -> None:
    """Make a loader's order (and augmentation) depend only on ``seed``.

    A loader with a ``reseed(seed)`` method (covidlib's ``CachedDataLoader``) reseeds its
    order and its augmentation; for any other fastai loader the order's ``rng`` is replaced.
    """
    # Look on the class: fastai loaders forward unknown attributes to their dataset.
    if callable(getattr(type(loader), "reseed", None)):
        loader.reseed(seed)
    elif isinstance(getattr(loader, "rng", None), random.Random):
        loader.rng = random.Random(seed)


def _rng_states() -> dict[str, Any]:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    states: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [name, torch.from_numpy(np.asarray(keys).copy()), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _restore_rng_states(states: Mapping[str, Any]) -> None:
    random.setstate(states["python"])
    name, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((name, keys.numpy(), pos, has_gauss, cached))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


class StepSchedule(Callback):
    """Set the learning rate of each epoch from :meth:`TrainConfig.lr_at`.

    ``start_epoch`` is the absolute epoch of the first epoch of this ``fit`` (resume).
    """

    order = 1

    def __init__(self, config: TrainConfig, start_epoch: int = 0) -> None:
        self.config, self.start_epoch = config, start_epoch

    def before_epoch(self) -> None:
        self.learn.opt.set_hyper("lr", self.config.lr_at(self.start_epoch + self.learn.epoch))


class EpochSeeding(Callback):
    """Seed every random generator and the training loader's order per (fold, epoch).

    This makes epoch ``e`` draw the same batches and augmentations whether the fold ran
    straight through or was resumed from a checkpoint.
    """

    order = 2

    def __init__(self, seed: int, fold: int, start_epoch: int = 0) -> None:
        self.seed, self.fold, self.start_epoch = seed, fold, start_epoch

    def before_epoch(self) -> None:
        epoch_seed = derive_seed(self.seed, self.fold, self.start_epoch + self.learn.epoch)
        set_seed(epoch_seed)
        _reseed_loader(self.learn.dls.train, epoch_seed)


class SkipValidation(Callback):
    """Skip the per-epoch pass over ``dls.valid``: it is the test fold, not a validation set."""

    def before_validate(self) -> None:
        raise CancelValidException()


class EpochCheckpoint(Callback):
    """Record the epoch log and write checkpoint, log (and best weights) after every epoch."""

    order = 60  # after fastai's Recorder (50)

    def __init__(
        self,
        config: TrainConfig,
        fold_dir: Path | None,
        history: list[dict[str, Any]],
        start_epoch: int = 0,
    ) -> None:
        self.config, self.fold_dir, self.history = config, fold_dir, history
        self.start_epoch = start_epoch
        self._loss_sum: torch.Tensor | float = 0.0
        self._count = 0
        self._started = 0.0

    def before_epoch(self) -> None:
        self._loss_sum, self._count = 0.0, 0
        self._started = time.perf_counter()

    def after_batch(self) -> None:
        if not self.learn.training:
            return
        size = find_bs(self.learn.yb)
        self._loss_sum = self._loss_sum + self.learn.loss.detach().float() * size
        self._count += size

    def after_epoch(self) -> None:
        epoch = self.start_epoch + self.learn.epoch
        _check_finite_weights(self.learn.model, epoch, self.fold_dir)
        loss = float(self._loss_sum) / max(self._count, 1)
        row = {
            "epoch": epoch,
            "train_loss": loss,
            "lr": float(self.learn.opt.hypers[-1]["lr"]),
            "seconds": time.perf_counter() - self._started,
        }
        previous_best = min((r["train_loss"] for r in self.history), default=float("inf"))
        self.history.append(row)
        if self.fold_dir is None:
            return
        from covidlib.engine.runs import FoldFiles, worker_id

        files = FoldFiles(self.fold_dir)
        row["worker"] = worker_id()  # host:pid of the trainer, in the log and the checkpoint
        if self.config.fold_model == "lowest_train_loss" and loss < previous_best:
            with files.recording(files.best) as (best,):
                _torch_save_atomic({"epoch": epoch, "model": self.learn.model.state_dict()}, best)
        with files.recording(files.checkpoint, files.epochs) as (checkpoint, log):
            save_checkpoint(self.learn, checkpoint, epoch + 1, self.history)
            files.write_epochs(self.history, log)
        files.heartbeat()


class EpochLog(Callback):
    """Write one line per epoch (fold, epoch, loss, lr, seconds) to ``log``.

    For logs and pipes, where progress bars would be hundreds of frames; reads the row
    :class:`EpochCheckpoint` has just recorded.
    """

    order = 61  # right after EpochCheckpoint

    def __init__(self, log: Callable[[str], None], fold: int, epochs: int) -> None:
        self.log, self.fold, self.epochs = log, fold, epochs

    def after_epoch(self) -> None:
        checkpoint = getattr(self.learn, "epoch_checkpoint", None)  # fastai names cbs so
        if checkpoint is None or not checkpoint.history:
            return
        row = checkpoint.history[-1]
        self.log(
            f"fold {self.fold} epoch {row['epoch'] + 1}/{self.epochs}: "
            f"train_loss {row['train_loss']:.4f}  lr {row['lr']:.3g}  {row['seconds']:.1f} s"
        )


def _check_finite_weights(model: torch.nn.Module, epoch: int, fold_dir: Path | None) -> None:
    """Stop a diverged fold at the end of the epoch, before its checkpoint is overwritten.

    Under mixed precision a batch whose loss overflows is skipped by the gradient scaler,
    so a non-finite loss alone is not fatal; non-finite weights are.
    """
    flags = [torch.isfinite(p).all() for p in model.parameters()]
    if flags and not bool(torch.stack(flags).all()):  # one synchronisation per epoch
        kept = (
            f" The checkpoint of the previous epoch in {fold_dir} is kept."
            if fold_dir is not None else ""
        )
        raise FloatingPointError(
            f"epoch {epoch}: the model's weights hold NaN or infinite values, training "
            f"diverged.{kept} Train again with a lower learning rate (in a new run folder)."
        )


def _torch_save_atomic(obj: Any, path: Path) -> Path:
    with atomic_path(path) as tmp:  # the temp name keeps the suffix torch.save looks at
        torch.save(obj, tmp)
    return path


def save_checkpoint(
    learner: Learner, path: Path, epochs_done: int, history: Sequence[Mapping[str, Any]]
) -> Path:
    """Write model, optimizer, completed epochs, RNG states and epoch log atomically."""
    state: dict[str, Any] = {
        "epochs_done": epochs_done,
        "model": learner.model.state_dict(),
        "optimizer": learner.opt.state_dict(),
        "rng": _rng_states(),
        "history": [dict(row) for row in history],
    }
    scaler = getattr(learner, "scaler", None)
    if scaler is not None:
        state["scaler"] = scaler.state_dict()
    return _torch_save_atomic(state, path)


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`.

    Raises:
        ValueError: when the file fails its checksum in the fold's ``files.json``
            (:class:`covidlib.engine.runs.RunFolderError`) or is not a readable covidlib
            checkpoint (delete it to restart the fold).
    """
    from covidlib.engine.runs import FoldFiles

    path = Path(path)
    FoldFiles(path.parent).verify(path, hint="delete it to restart this fold")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises many types for a broken file
        raise ValueError(
            f"Cannot read checkpoint {path}: {error}. Delete it to restart this fold."
        ) from error
    if not isinstance(state, dict) or "epochs_done" not in state or "model" not in state:
        raise ValueError(f"{path} is not a covidlib training checkpoint; delete it to restart.")
    return state


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
    checkpoint = folder / CHECKPOINT_FILE if folder is not None else None
    if checkpoint is not None and checkpoint.exists():
        # On the CPU: RNG states must stay CPU tensors; load_state_dict moves the rest.
        state = load_checkpoint(checkpoint, map_location="cpu")
        learner.model.load_state_dict(state["model"])
        learner.opt.load_state_dict(state["optimizer"])
        _restore_rng_states(state["rng"])
        history = [dict(row) for row in state["history"]]
        start_epoch = int(state["epochs_done"])
        if start_epoch > config.epochs:
            raise ValueError(
                f"{checkpoint} already holds {start_epoch} epochs but the config asks for "
                f"{config.epochs}; use another run folder."
            )
        if "scaler" in state:
            learner.add_cb(_RestoreScaler(state["scaler"]))
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
        from covidlib.engine.runs import FoldFiles

        FoldFiles(folder).verify(folder / BEST_FILE, hint="delete the fold folder to retrain it")
        best = torch.load(folder / BEST_FILE, map_location="cpu", weights_only=True)
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
        from covidlib.engine.runs import FoldFiles

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


class _RestoreScaler(Callback):
    """Load a saved GradScaler state once fastai's MixedPrecision has created the scaler."""

    order = 15  # MixedPrecision is 10

    def __init__(self, state: Mapping[str, Any]) -> None:
        self.state = dict(state)

    def before_fit(self) -> None:
        scaler = getattr(self.learn, "scaler", None)
        if scaler is not None and self.state:
            scaler.load_state_dict(self.state)
            self.state = {}


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


__all__ = [
    "FOLD_MODEL_CHOICES",
    "OPTIMIZERS",
    "EpochCheckpoint",
    "EpochLog",
    "EpochSeeding",
    "FoldResult",
    "SkipValidation",
    "StepSchedule",
    "TrainConfig",
    "config_differences",
    "default_canvas",
    "derive_seed",
    "fit_fold",
    "lamb_trust_ratios",
    "load_checkpoint",
    "lr_trace",
    "make_learner",
    "predict_logits",
    "resolve_canvas",
    "save_checkpoint",
    "train_fold",
]


def lamb_trust_ratios(model: torch.nn.Module, optimizer: Any) -> pd.DataFrame:
    """Return, per parameter tensor, what LAMB measured in its last step.

    Works for :class:`covidlib.engine.lamb.Lamb` (the engine's default) and
    ``torch_optimizer.Lamb``: both keep the same per-parameter state.

    Columns: ``name``, ``shape``, ``weight_norm`` (||w||, clipped at 10), ``update_norm``
    (||Adam step + weight decay * w||) and ``trust_ratio`` (their quotient: the factor LAMB
    multiplies this layer's learning rate with).

    Args:
        model: the network whose parameters the optimizer updates.
        optimizer: a LAMB optimizer or a fastai ``OptimWrapper`` around one, after
            at least one ``step()``.

    Example:
        >>> import torch_optimizer
        >>> layer = torch.nn.Linear(3, 1)
        >>> opt = torch_optimizer.Lamb(layer.parameters(), weight_decay=1.0)
        >>> layer(torch.ones(2, 3)).sum().backward(); opt.step()
        >>> lamb_trust_ratios(layer, opt)["name"].tolist()
        ['weight', 'bias']
    """
    inner = getattr(optimizer, "opt", optimizer)
    rows = []
    for name, parameter in model.named_parameters():
        state = inner.state.get(parameter, {})
        if "trust_ratio" not in state:
            continue
        rows.append({
            "name": name,
            "shape": "x".join(str(s) for s in parameter.shape),
            "weight_norm": float(state["weight_norm"]),
            "update_norm": float(state["adam_norm"]),
            "trust_ratio": float(state["trust_ratio"]),
        })
    if not rows:
        raise ValueError("The optimizer holds no LAMB statistics: call step() on a Lamb first.")
    return pd.DataFrame(rows)


class _RecordLr(Callback):
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def before_batch(self) -> None:
        if self.learn.training:
            group = self.learn.opt.opt.param_groups[0]
            self.rows.append({"epoch": self.learn.epoch, "lr": group["lr"],
                              "weight_decay": group["weight_decay"]})


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
    recorder = _RecordLr()
    learner.fit(
        config.epochs, lr=config.lr, wd=config.weight_decay,
        cbs=[StepSchedule(config), SkipValidation(), recorder],
    )
    return pd.DataFrame(recorder.rows)
