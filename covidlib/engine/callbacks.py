"""The fastai callbacks of the training loop: schedule, per-epoch seeding, checkpoints, log."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from covidlib.config import TrainConfig
from covidlib.engine.checkpoint import save_checkpoint, torch_save_atomic
from covidlib.engine.runs import FoldFiles, worker_id
from covidlib.utils.compat import quiet_fastai_import

with quiet_fastai_import():
    from fastai.callback.core import Callback, CancelValidException
    from fastai.torch_core import find_bs, set_seed



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
        files = FoldFiles(self.fold_dir)
        row["worker"] = worker_id()  # host:pid of the trainer, in the log and the checkpoint
        if self.config.fold_model == "lowest_train_loss" and loss < previous_best:
            with files.recording(files.best) as (best,):
                torch_save_atomic({"epoch": epoch, "model": self.learn.model.state_dict()}, best)
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


class RestoreScaler(Callback):
    """Load a saved GradScaler state once fastai's MixedPrecision has created the scaler."""

    order = 15  # MixedPrecision is 10

    def __init__(self, state: Mapping[str, Any]) -> None:
        self.state = dict(state)

    def before_fit(self) -> None:
        scaler = getattr(self.learn, "scaler", None)
        if scaler is not None and self.state:
            scaler.load_state_dict(self.state)
            self.state = {}


class RecordLr(Callback):
    """Record the learning rate and weight decay the optimizer holds at each training batch."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def before_batch(self) -> None:
        if self.learn.training:
            group = self.learn.opt.opt.param_groups[0]
            self.rows.append({"epoch": self.learn.epoch, "lr": group["lr"],
                              "weight_decay": group["weight_decay"]})
