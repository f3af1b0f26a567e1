"""Training settings: augmentation strengths and the optimizer and schedule."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass

from covidlib.config._choices import FOLD_MODEL_CHOICES, OPTIMIZER_NAMES
from covidlib.config._strict import _check_keys, _fields_dict, _number, _pair, _set


@dataclass(frozen=True)
class AugmentConfig:
    """Training augmentation of the paper (section 5.2); every parameter in one place.

    The paper names the operations but not their strengths; the numbers below are ours,
    chosen mild enough to keep lesions visible. Rotation and shear are deliberately
    absent: the authors found that affine transforms worsened performance. The operations
    themselves are in :mod:`covidlib.transforms.augment`.

    Attributes:
        crop_fraction: range of the fraction of the canvas width *and* height kept by the
            random crop (the same fraction for both, so the crop has the canvas's aspect
            ratio and resizing it back does not distort the letterboxed content).
            ``(1.0, 1.0)`` disables cropping.
        flip_p: probability of a horizontal flip.
        blur_p: probability of a Gaussian blur (the paper: 25%).
        blur_sigma: range of the blur's standard deviation in pixels.
        blur_kernel_size: odd side of the blur kernel.
        noise_std: the Gaussian noise's standard deviation is drawn per image uniformly
            from [0, noise_std] (intensities in [0, 1]).
        brightness: brightness factor drawn from [1 - brightness, 1 + brightness].
        contrast: contrast factor drawn from [1 - contrast, 1 + contrast].

    Example:
        >>> AugmentConfig().blur_p
        0.25
        >>> AugmentConfig.only("flip").brightness
        0.0
    """

    crop_fraction: tuple[float, float] = (0.85, 1.0)
    flip_p: float = 0.5
    blur_p: float = 0.25
    blur_sigma: tuple[float, float] = (0.1, 1.5)
    blur_kernel_size: int = 5
    noise_std: float = 0.03
    brightness: float = 0.2
    contrast: float = 0.2

    def __post_init__(self) -> None:
        # JSON turns tuples into lists and 1.0 into 1: store one form so configs compare,
        # hash and digest equal.
        _set(self, "crop_fraction", _pair(self.crop_fraction, "crop_fraction", float))
        _set(self, "blur_sigma", _pair(self.blur_sigma, "blur_sigma", float))
        _set(self, "blur_kernel_size", _number(self.blur_kernel_size, "blur_kernel_size", int))
        for name in ("flip_p", "blur_p", "noise_std", "brightness", "contrast"):
            _set(self, name, _number(getattr(self, name), name, float))
        low, high = self.crop_fraction
        if not 0 < low <= high <= 1:
            raise ValueError(
                f"crop_fraction must satisfy 0 < low <= high <= 1, got {self.crop_fraction}"
            )
        for name in ("flip_p", "blur_p"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(
                    f"{name} must be a probability in [0, 1], got {getattr(self, name)}"
                )
        if not 0 < self.blur_sigma[0] <= self.blur_sigma[1]:
            raise ValueError(f"blur_sigma must satisfy 0 < low <= high, got {self.blur_sigma}")
        if self.blur_kernel_size < 1 or self.blur_kernel_size % 2 == 0:
            raise ValueError(
                f"blur_kernel_size must be a positive odd integer, got {self.blur_kernel_size}"
            )
        for name in ("noise_std", "brightness", "contrast"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")

    @classmethod
    def disabled(cls) -> AugmentConfig:
        """A config that changes nothing (every operation off)."""
        return cls(
            crop_fraction=(1.0, 1.0),
            flip_p=0.0,
            blur_p=0.0,
            noise_std=0.0,
            brightness=0.0,
            contrast=0.0,
        )

    @classmethod
    def only(cls, operation: str, **overrides: Any) -> AugmentConfig:
        """The default strength of one operation (crop, flip, blur, noise, brightness,
        contrast), all others off; ``overrides`` change its parameters (e.g. ``blur_p=1``)."""
        if operation not in OPERATIONS:
            raise ValueError(f"unknown operation {operation!r}; choose one of {list(OPERATIONS)}")
        defaults = cls()
        kept = {name: getattr(defaults, name) for name in OPERATIONS[operation]}
        return replace(cls.disabled(), **{**kept, **overrides})

    def to_dict(self) -> dict[str, Any]:
        """The parameters as JSON-ready data (ranges become lists)."""
        return _fields_dict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], *, where: str = "augment") -> AugmentConfig:
        """Rebuild from :meth:`to_dict` output; unknown or missing keys are an error."""
        return cls(**_check_keys(cls, values, where))


# Which fields switch each operation on (the others are its parameters).
OPERATIONS: dict[str, tuple[str, ...]] = {
    "crop": ("crop_fraction",),
    "flip": ("flip_p",),
    "brightness": ("brightness",),
    "contrast": ("contrast",),
    "blur": ("blur_p", "blur_sigma", "blur_kernel_size"),
    "noise": ("noise_std",),
}

DEFAULT_AUGMENT = AugmentConfig()


@dataclass(frozen=True)
class TrainConfig:
    """How one fold is trained; the defaults are the paper's.

    Attributes:
        epochs: training epochs per fold (paper: 100).
        batch_size: images per batch (paper: 32).
        lr: initial learning rate (paper: 3e-4).
        lr_steps: ``(epoch, lr)`` pairs of the step schedule, given for ``schedule_epochs``
            and ``schedule_lr``.
        schedule_epochs: the epoch count ``lr_steps`` refers to; other epoch counts scale.
        schedule_lr: the initial rate ``lr_steps`` refers to; another ``lr`` scales every
            step by ``lr / schedule_lr`` (the schedule keeps its shape).
        optimizer: one of :data:`OPTIMIZER_NAMES` (paper: ``"lamb"``).
        weight_decay: weight decay handed to the optimizer (paper: 1).
        betas: Adam/LAMB moment coefficients.
        eps: Adam/LAMB epsilon (``torch_optimizer.Lamb``'s default 1e-6).
        momentum: SGD momentum (only for ``optimizer="sgd"``).
        fold_model: ``"last"`` (paper: no validation set inside the training folds) or
            ``"lowest_train_loss"`` (the epoch with the lowest mean training loss).
        mixed_precision: float16 autocast on CUDA (ignored on the CPU).
        channels_last: channels-last memory format on CUDA (ignored on the CPU).

    Example:
        >>> TrainConfig().weight_decay, TrainConfig(epochs=4).lr_schedule()
        (1.0, [0.0003, 0.0003, 0.0001, 3e-05])
    """

    epochs: int = 100
    batch_size: int = 32
    lr: float = 3e-4
    lr_steps: tuple[tuple[int, float], ...] = ((50, 1e-4), (70, 3e-5), (80, 1e-5), (90, 3e-6))
    schedule_epochs: int = 100
    schedule_lr: float = 3e-4
    optimizer: str = "lamb"
    weight_decay: float = 1.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-6
    momentum: float = 0.9
    fold_model: str = "last"
    mixed_precision: bool = True
    channels_last: bool = True

    def __post_init__(self) -> None:
        steps = self.lr_steps
        if isinstance(steps, (str, bytes)) or not hasattr(steps, "__iter__"):
            raise ValueError(f"lr_steps must be (epoch, lr) pairs, got {steps!r}.")
        _set(self, "lr_steps", tuple(
            (_number(e, "lr_steps epoch", int), _number(v, "lr_steps lr", float))
            for e, v in (_pair(step, "lr_steps", float) for step in steps)
        ))
        _set(self, "betas", _pair(self.betas, "betas", float))
        for name in ("epochs", "batch_size", "schedule_epochs"):
            _set(self, name, _number(getattr(self, name), name, int))
        for name in ("lr", "schedule_lr", "weight_decay", "eps", "momentum"):
            _set(self, name, _number(getattr(self, name), name, float))
        problems = []
        if self.epochs < 1:
            problems.append(f"epochs must be >= 1 (got {self.epochs})")
        if self.batch_size < 1:
            problems.append(f"batch_size must be >= 1 (got {self.batch_size})")
        if self.lr <= 0:
            problems.append(f"lr must be > 0 (got {self.lr})")
        if self.weight_decay < 0:
            problems.append(f"weight_decay must be >= 0 (got {self.weight_decay})")
        if self.optimizer not in OPTIMIZER_NAMES:
            problems.append(f"optimizer {self.optimizer!r} is not one of {OPTIMIZER_NAMES}")
        if self.fold_model not in FOLD_MODEL_CHOICES:
            problems.append(f"fold_model {self.fold_model!r} is not one of {FOLD_MODEL_CHOICES}")
        if self.schedule_epochs < 1:
            problems.append(f"schedule_epochs must be >= 1 (got {self.schedule_epochs})")
        if self.schedule_lr <= 0:
            problems.append(f"schedule_lr must be > 0 (got {self.schedule_lr})")
        for name in ("mixed_precision", "channels_last"):
            if not isinstance(getattr(self, name), bool):
                problems.append(f"{name} must be true or false (got {getattr(self, name)!r})")
        if problems:
            raise ValueError("Invalid TrainConfig: " + "; ".join(problems) + ".")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], *, where: str = "train") -> TrainConfig:
        """Rebuild a config from :meth:`to_dict` output; unknown or missing keys are an error.

        Example:
            >>> TrainConfig.from_dict({"epochs": 3})
            Traceback (most recent call last):
            ...
            ValueError: missing config key 'train.batch_size' ...
        """
        return cls(**_check_keys(cls, values, where))

    def to_dict(self) -> dict[str, Any]:
        """Return the config as JSON-ready data (tuples become lists)."""
        return _fields_dict(self)

    def with_overrides(self, **changes: Any) -> TrainConfig:
        """Return a copy with some fields changed (validated again)."""
        return replace(self, **changes)

    def lr_at(self, epoch: int) -> float:
        """Return the learning rate of epoch ``epoch`` (0-based) of :attr:`epochs`.

        Epoch ``e`` of ``E`` uses the paper's rate at epoch ``e * schedule_epochs / E``;
        integer arithmetic keeps the comparison exact. Step rates scale with
        ``lr / schedule_lr`` (exactly the paper's values at the paper's ``lr``).

        Example:
            >>> TrainConfig(epochs=2, lr=3e-3).lr_schedule()
            [0.003, 0.001]
        """
        if not 0 <= epoch < self.epochs:
            raise ValueError(f"epoch {epoch} is outside 0..{self.epochs - 1}.")
        scale = 1.0 if self.lr == self.schedule_lr else self.lr / self.schedule_lr
        rate = self.lr
        for milestone, value in sorted(self.lr_steps):
            if epoch * self.schedule_epochs >= milestone * self.epochs:
                rate = float(f"{value * scale:.12g}")  # no 0.0010000000000000002
        return rate

    def lr_schedule(self) -> list[float]:
        """Return the learning rate of every epoch."""
        return [self.lr_at(epoch) for epoch in range(self.epochs)]


TRAIN_FIELDS: frozenset[str] = frozenset(f.name for f in fields(TrainConfig))
