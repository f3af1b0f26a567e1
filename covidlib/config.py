"""Experiment configuration, run profiles, runtime settings and project paths.

Everything that decides a result lives in one frozen :class:`ExperimentConfig`: dataset,
model, folds, seed, initial weights, canvas, the training hyperparameters
(:class:`TrainConfig`) and every augmentation strength (:class:`AugmentConfig`). It is
stored whole in a run folder's ``config.json`` and its :meth:`~ExperimentConfig.digest`
names cached runs. What only decides *where* and *how fast* it runs (device, workers,
progress bars) is a separate :class:`RuntimeSettings`, free to change on resume.

The course runs one code path under two profiles, each a set of experiment defaults:

* ``quick`` (the default): CPU-sized, offline, the synthetic phantom dataset, small
  canvases, a few epochs, random initialisation. The whole book builds this way.
* ``full``: a GPU, the real datasets, ImageNet weights and the paper's exact settings
  (100 epochs, batch 32, LAMB with learning rate 3e-4 and weight decay 1).

Pick one with the ``COVIDLIB_PROFILE`` environment variable or pass a name to
:func:`get_profile`. This module imports neither torch nor any covidlib module above
:mod:`covidlib.utils`.

Example:
    >>> config = get_profile("quick").experiment("phantom", "squeezenet", epochs=2)
    >>> config.train.epochs, config.n_folds, config.weights
    (2, 5, 'random')
    >>> ExperimentConfig.from_dict(config.to_dict()) == config
    True
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from covidlib.utils.env import env_flag
from covidlib.utils.names import UnknownNameError

if TYPE_CHECKING:
    import torch

PROFILE_ENV = "COVIDLIB_PROFILE"
DATA_ENV = "COVIDLIB_DATA"
PROGRESS_ENV = "COVIDLIB_PROGRESS"

PHANTOM_DATASET = "phantom"  # the registry name of the generated dataset
# The one list of optimizer names; covidlib.engine.learner.OPTIMIZERS holds their builders.
OPTIMIZER_NAMES: tuple[str, ...] = ("lamb", "lamb-torch-optimizer", "adam", "adamw", "sgd")
FOLD_MODEL_CHOICES: tuple[str, ...] = ("last", "lowest_train_loss")
SPLIT_STRATEGIES: tuple[str, ...] = ("stratified", "grouped", "official")
# The group source of grouped folds: the index's groups (patient ids, else source prefix).
PATIENT_GROUPS = "patient"
# Initial weights: these two names, or the path of a weights file.
WEIGHTS_CHOICES: tuple[str, ...] = ("random", "imagenet")
# Transfer strategies (covidlib.engine.transfer): random init; frozen backbone, new head
# only; every weight trained (the paper's choice).
TRANSFER_STRATEGIES: tuple[str, ...] = ("scratch", "features", "finetune")

_Config = TypeVar("_Config")


# --------------------------------------------------------------------------------------
# Strict (de)serialisation helpers
# --------------------------------------------------------------------------------------


def _check_keys(cls: type, values: Any, where: str) -> dict[str, Any]:
    """Return ``values`` as a dict after refusing unknown or missing keys of ``cls``."""
    label = where or cls.__name__
    if not isinstance(values, Mapping):
        raise ValueError(f"config key {label!r} must be a mapping, got {values!r}.")
    names = [f.name for f in fields(cls)]
    prefix = f"{where}." if where else ""
    unknown = sorted(str(k) for k in set(values) - set(names))
    if unknown:
        raise ValueError(
            f"unknown config key '{prefix}{unknown[0]}'"
            + (f" (and {unknown[1:]})" if len(unknown) > 1 else "")
            + f"; the keys of {label} are {names}."
        )
    missing = [name for name in names if name not in values]
    if missing:
        raise ValueError(
            f"missing config key '{prefix}{missing[0]}'"
            + (f" (and {missing[1:]})" if len(missing) > 1 else "")
            + f"; a saved {label} lists all of {names}."
        )
    return dict(values)


def _number(value: Any, name: str, kind: type) -> Any:
    """Return ``value`` as an int or float, refusing booleans, strings and None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}.")
    if kind is int:
        if float(value) != int(value):
            raise ValueError(f"{name} must be an integer, got {value!r}.")
        return int(value)
    return float(value)


def _pair(value: Any, name: str, kind: type) -> tuple[Any, Any]:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise ValueError(f"{name} must be a pair of numbers, got {value!r}.")
    return (_number(value[0], name, kind), _number(value[1], name, kind))


def _set(obj: object, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)


def _jsonable(obj: Any) -> dict[str, Any]:
    """A frozen config as JSON-ready data: nested configs become dicts, tuples lists."""
    out: dict[str, Any] = {}
    for item in fields(obj):
        value = getattr(obj, item.name)
        if hasattr(value, "to_dict"):
            value = value.to_dict()
        elif isinstance(value, tuple):
            value = json.loads(json.dumps(value))
        out[item.name] = value
    return out


def config_differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Return the dotted keys whose values differ between two nested config dicts.

    Example:
        >>> config_differences({"a": 1, "b": {"c": 2}}, {"a": 1, "b": {"c": 3}, "d": 0})
        ['b.c', 'd']
    """
    differences: list[str] = []
    for key in sorted(set(saved) | set(current)):
        left, right = saved.get(key, _MISSING), current.get(key, _MISSING)
        if isinstance(left, Mapping) and isinstance(right, Mapping):
            differences += [f"{key}.{sub}" for sub in config_differences(left, right)]
        elif left != right:
            differences.append(key)
    return differences


def describe_differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> str:
    """Return ``key: saved X, requested Y`` for every differing dotted key ('' if none).

    Example:
        >>> describe_differences({"augment": {"blur_sigma": [0.1, 1.5]}},
        ...                      {"augment": {"blur_sigma": [0.1, 2.0]}})
        'augment.blur_sigma: saved [0.1, 1.5], requested [0.1, 2.0]'
    """
    return "; ".join(
        f"{key}: saved {_dig(saved, key)!r}, requested {_dig(current, key)!r}"
        for key in config_differences(saved, current)
    )


def _dig(data: Any, dotted: str) -> Any:
    value: Any = data
    for part in dotted.split("."):
        value = value.get(part, "<missing>") if isinstance(value, Mapping) else "<missing>"
    return value


_MISSING = object()


# --------------------------------------------------------------------------------------
# Augmentation
# --------------------------------------------------------------------------------------


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
        return _jsonable(self)

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


# --------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------


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
        return _jsonable(self)

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


# --------------------------------------------------------------------------------------
# The experiment
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhantomConfig:
    """How the phantom dataset is generated (only for ``dataset="phantom"``).

    Attributes:
        size: number of images.
        difficulty: the generator's difficulty knob in [0, 1].
    """

    size: int = 200
    difficulty: float = 0.5

    def __post_init__(self) -> None:
        _set(self, "size", _number(self.size, "phantom.size", int))
        _set(self, "difficulty", _number(self.difficulty, "phantom.difficulty", float))
        if self.size < 2:
            raise ValueError(f"phantom.size must be at least 2 images (got {self.size}).")
        if not 0 <= self.difficulty <= 1:
            raise ValueError(f"phantom.difficulty must be in [0, 1] (got {self.difficulty}).")

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as JSON-ready data."""
        return _jsonable(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], *, where: str = "phantom") -> PhantomConfig:
        """Rebuild from :meth:`to_dict` output; unknown or missing keys are an error."""
        return cls(**_check_keys(cls, values, where))


# Keys a config.json written before the transfer strategies lacks; from_dict reads them as
# None, i.e. the strategy those runs used (scratch for random weights, else finetune).
TRANSFER_KEYS: tuple[str, ...] = ("strategy", "weights_sha256")
# Keys added by grouped folds; None in an older config.json means what such runs used.
GROUPS_KEYS: tuple[str, ...] = ("groups", "groups_sha256")


def _check_transfer(config: Any) -> None:
    """Fill in and validate ``strategy`` and ``weights_sha256`` of an ExperimentConfig."""
    weights = config.weights
    named = weights in WEIGHTS_CHOICES
    strategy = config.strategy
    if strategy is None:
        strategy = "scratch" if weights == "random" else "finetune"
    if strategy not in TRANSFER_STRATEGIES:
        raise UnknownNameError("transfer strategy (--strategy)", strategy, TRANSFER_STRATEGIES)
    if strategy == "scratch" and weights != "random":
        raise ValueError(
            f"--strategy scratch trains from random weights but --weights is {weights!r}; "
            "pass --weights random, or --strategy features/finetune to start from these."
        )
    if strategy != "scratch" and weights == "random":
        raise ValueError(
            f"--strategy {strategy} needs initial weights but --weights is 'random'; pass "
            "--weights imagenet or a weights file, or --strategy scratch."
        )
    _set(config, "strategy", strategy)
    sha = config.weights_sha256
    if named:
        if sha is not None:
            raise ValueError(
                f"weights_sha256 applies to a weights file, not to weights={weights!r}; "
                "pass weights_sha256=None."
            )
        return
    if sha is None:
        if Path(weights).expanduser().is_file():
            from covidlib.utils.fileio import sha256_file  # only when there is a file

            _set(config, "weights_sha256", sha256_file(Path(weights).expanduser()))
    elif not (isinstance(sha, str) and len(sha) == 64
              and all(c in "0123456789abcdef" for c in sha)):
        raise ValueError(f"weights_sha256 must be 64 lowercase hex digits, got {sha!r}.")


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything that decides a cross-validation result, in one frozen object.

    Attributes:
        dataset: dataset registry name (``"phantom"``, ``"covid19-ct"``...).
        model: model registry name (``"squeezenet"``...).
        weights: initial weights: ``"random"``, ``"imagenet"`` or a weights file's path.
        strategy: one of :data:`TRANSFER_STRATEGIES`: ``"scratch"`` needs random weights,
            ``"features"`` (frozen backbone, batch-norm statistics included; only the head
            trains) and ``"finetune"`` (all weights) need initial weights; ``None`` picks
            ``"scratch"`` for random weights and ``"finetune"`` otherwise.
        weights_sha256: sha256 of the weights file (``None`` for random/imagenet); computed
            when ``None`` and the file exists, so a changed file is another experiment.
        split: fold strategy, one of :data:`SPLIT_STRATEGIES`.
        groups: what grouped folds keep together (``split="grouped"`` only): ``"patient"``
            (the dataset index's groups: patient ids where known, else the source prefix;
            the default there) or the path of a groups file (CSV with ``path`` and
            ``group``, e.g. the pseudo-patients of ``covidlib audit --groups-out``).
        groups_sha256: the groups file's sha256, recorded when the config is made (``None``
            for ``"patient"``); a run refuses a file that changed since.
        n_folds: number of folds (``split="official"`` has one test fold: stored as 1).
        seed: seeds the fold assignment, the initialisation, data order and augmentation.
        canvas: letterbox canvas ``(width, height)``; ``None`` is the model's custom input
            scaled by ``canvas_scale`` (the engine fills it in before a run).
        canvas_scale: factor on the model's custom input (1.0 = the paper's Table 1).
        skip_problems: drop unreadable files instead of refusing the dataset.
        phantom: generator settings; set exactly when ``dataset`` is the phantom
            (``None`` there means the default :class:`PhantomConfig`).
        train: optimizer, schedule and fold-model settings.
        augment: training augmentation; ``None`` trains without any.

    Example:
        >>> config = ExperimentConfig("covid19-ct", "resnet18", train=TrainConfig(epochs=2))
        >>> config.to_dict()["train"]["epochs"], len(config.digest())
        (2, 64)
        >>> config.with_overrides(seed=1).digest() != config.digest()
        True
    """

    dataset: str
    model: str
    weights: str = "random"
    strategy: str | None = None
    weights_sha256: str | None = None
    split: str = "stratified"
    # Leakage audit: the group source of grouped folds (None unless split is "grouped").
    groups: str | None = None
    groups_sha256: str | None = None
    n_folds: int = 5
    seed: int = 0
    canvas: tuple[int, int] | None = None
    canvas_scale: float = 1.0
    skip_problems: bool = False
    phantom: PhantomConfig | None = None
    train: TrainConfig = field(default_factory=TrainConfig)
    augment: AugmentConfig | None = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        for name in ("dataset", "model", "weights"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{name} must be a non-empty name, got {value!r}.")
        _check_transfer(self)
        if self.split not in SPLIT_STRATEGIES:
            raise ValueError(f"Unknown split {self.split!r}; choose one of {SPLIT_STRATEGIES}.")
        self._check_groups()
        _set(self, "n_folds", _number(self.n_folds, "n_folds", int))
        _set(self, "seed", _number(self.seed, "seed", int))
        if self.split == "official":
            _set(self, "n_folds", 1)  # one test fold, whatever was asked
        elif self.n_folds < 2:
            raise ValueError(
                f"n_folds must be at least 2 for {self.split!r} folds (got {self.n_folds})."
            )
        if self.canvas is not None:
            canvas = _pair(self.canvas, "canvas", int)
            if min(canvas) < 1:
                raise ValueError(f"canvas must be a positive (width, height), got {canvas}.")
            _set(self, "canvas", canvas)
        _set(self, "canvas_scale", _number(self.canvas_scale, "canvas_scale", float))
        if self.canvas_scale <= 0:
            raise ValueError(f"canvas_scale must be > 0 (got {self.canvas_scale}).")
        if not isinstance(self.skip_problems, bool):
            raise ValueError(f"skip_problems must be true or false, got {self.skip_problems!r}.")
        if self.dataset == PHANTOM_DATASET and self.phantom is None:
            _set(self, "phantom", PhantomConfig())
        elif self.dataset != PHANTOM_DATASET and self.phantom is not None:
            raise ValueError(
                f"phantom settings apply to the {PHANTOM_DATASET!r} dataset only, not to "
                f"{self.dataset!r}; pass phantom=None."
            )
        for name, kind in (("phantom", PhantomConfig), ("train", TrainConfig),
                           ("augment", AugmentConfig)):
            value = getattr(self, name)
            if value is not None and not isinstance(value, kind):
                raise ValueError(f"{name} must be a {kind.__name__}, got {value!r}.")
        if self.train is None:
            raise ValueError("train must be a TrainConfig, got None.")

    def _check_groups(self) -> None:
        """Default and validate :attr:`groups`; record a groups file's sha256."""
        if self.split != "grouped":
            if self.groups is not None or self.groups_sha256 is not None:
                raise ValueError(
                    f"groups={self.groups!r} applies to split='grouped' only, not to "
                    f"{self.split!r}; pass groups=None."
                )
            return
        if self.groups is None:
            _set(self, "groups", PATIENT_GROUPS)
        if not isinstance(self.groups, str) or not self.groups.strip():
            raise ValueError(f"groups must be 'patient' or a groups file, got {self.groups!r}.")
        if self.groups == PATIENT_GROUPS:
            if self.groups_sha256 is not None:
                raise ValueError("groups_sha256 belongs to a groups file, not to 'patient'.")
            return
        if self.groups_sha256 is None:
            path = Path(self.groups)
            if not path.is_file():
                raise ValueError(
                    f"groups file {self.groups} not found; pass 'patient' or a CSV with "
                    "path and group columns (covidlib audit --groups-out writes one)."
                )
            _set(self, "groups_sha256", hashlib.sha256(path.read_bytes()).hexdigest())

    @property
    def groups_tag(self) -> str | None:
        """The group source as it appears in a fold file's name: ``None`` (not grouped),
        ``"patient"`` or ``"file-"`` and the groups file's sha256 prefix.

        Example:
            >>> ExperimentConfig("covid19-ct", "resnet18", split="grouped").groups_tag
            'patient'
        """
        if self.groups is None:
            return None
        if self.groups == PATIENT_GROUPS:
            return PATIENT_GROUPS
        return f"file-{(self.groups_sha256 or '')[:12]}"

    @property
    def pretrained(self) -> bool | str:
        """``weights`` as :func:`covidlib.models.factory.create_model` takes it."""
        if self.weights in WEIGHTS_CHOICES:
            return self.weights == "imagenet"
        return self.weights

    def to_dict(self) -> dict[str, Any]:
        """Return the whole experiment as JSON-ready nested data (``config.json``)."""
        return _jsonable(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ExperimentConfig:
        """Rebuild from :meth:`to_dict` output; unknown or missing keys, at any depth, are
        an error naming the dotted key.

        Example:
            >>> data = ExperimentConfig("phantom", "squeezenet").to_dict()
            >>> data["augment"]["blur_sgima"] = data["augment"].pop("blur_sigma")
            >>> ExperimentConfig.from_dict(data)
            Traceback (most recent call last):
            ...
            ValueError: unknown config key 'augment.blur_sgima'; the keys of augment are ...
        """
        if isinstance(values, Mapping):  # config.json written before these keys existed
            values = {**dict.fromkeys(TRANSFER_KEYS + GROUPS_KEYS), **values}
        data = _check_keys(cls, values, "")
        data["train"] = TrainConfig.from_dict(data["train"])
        if data["augment"] is not None:
            data["augment"] = AugmentConfig.from_dict(data["augment"])
        if data["phantom"] is not None:
            data["phantom"] = PhantomConfig.from_dict(data["phantom"])
        return cls(**data)

    def digest(self) -> str:
        """Return the sha256 hex digest of the canonical JSON (sorted keys): a cache key.

        Example:
            >>> a = ExperimentConfig("phantom", "squeezenet", canvas_scale=1)
            >>> b = ExperimentConfig("phantom", "squeezenet", canvas_scale=1.0)
            >>> a.digest() == b.digest() != a.with_overrides(canvas_scale=0.5).digest()
            True
        """
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def with_overrides(self, **changes: Any) -> ExperimentConfig:
        """Return a copy with some fields changed; TrainConfig field names go to ``train``.

        Example:
            >>> ExperimentConfig("phantom", "squeezenet").with_overrides(epochs=3).train.epochs
            3
        """
        train = {k: changes.pop(k) for k in list(changes) if k in TRAIN_FIELDS}
        unknown = sorted(set(changes) - {f.name for f in fields(self)})
        if unknown:
            raise ValueError(
                f"unknown experiment setting {unknown[0]!r}; settings are "
                f"{[f.name for f in fields(self)]} and the TrainConfig fields "
                f"{sorted(TRAIN_FIELDS)}."
            )
        if train:
            changes["train"] = replace(changes.get("train", self.train), **train)
        if changes.get("dataset", self.dataset) != PHANTOM_DATASET:
            changes.setdefault("phantom", None)
        if "weights" in changes:  # new weights: their file's hash, and the default strategy
            changes.setdefault("weights_sha256", None)
            if changes["weights"] != self.weights:
                changes.setdefault("strategy", None)
        if changes.get("split", self.split) != "grouped":
            changes.setdefault("groups", None)
        if "groups" in changes or changes.get("split", self.split) != "grouped":
            changes.setdefault("groups_sha256", None)  # recorded again for a new file
        return replace(self, **changes)


@dataclass(frozen=True)
class RuntimeSettings:
    """Where and how fast a run executes; never part of the experiment, free to change.

    Attributes:
        device: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``,
            ``"cuda:1"``...; resolved once, by :meth:`torch_device`, at the entry point.
        num_workers: threads that decode images while the letterbox cache is built.
        progress: show progress bars; ``None`` asks :func:`progress_enabled`.

    Example:
        >>> RuntimeSettings(device="cpu").torch_device().type
        'cpu'
    """

    device: str = "auto"
    num_workers: int = 0
    progress: bool | None = None

    def __post_init__(self) -> None:
        _set(self, "num_workers", _number(self.num_workers, "num_workers", int))
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be >= 0 (got {self.num_workers}).")

    def torch_device(self) -> torch.device:
        """Return the ``torch.device`` of :attr:`device` (see :func:`resolve_device`)."""
        return resolve_device(self.device)

    def show_progress(self) -> bool:
        """Return :attr:`progress`, or :func:`progress_enabled` when it is ``None``."""
        return progress_enabled() if self.progress is None else bool(self.progress)


# --------------------------------------------------------------------------------------
# Profiles
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    """The experiment defaults of the quick or the full profile, each held once.

    Attributes:
        name: ``"quick"``, ``"cpu"`` or ``"full"``.
        dataset: dataset registry name the chapters use by default.
        weights: initial weights, ``"random"`` or ``"imagenet"``.
        canvas_scale: factor applied to each model's custom canvas (Table 1); 1.0 is the paper.
        train: training settings (epochs, batch size, learning rate: the paper's 3e-4 suits
            ImageNet weights; random initialisation in the quick profile needs a larger step).
        phantom: phantom generator settings (used when the dataset is the phantom).
        demo_images_per_class: size of the class-balanced sample the architecture chapters
            fine-tune on; ``None`` uses every image.
        folds: number of cross-validation folds.
        augment: training augmentation.
        per_model: settings that differ by model (``canvas_scale``, ``epochs``, ``lr``,
            ``batch_size``...), e.g. the ``cpu`` profile's table
            ``covidlib/tables/cpu_profile.csv``; explicit overrides still win.

    ``epochs``, ``lr``, ``batch_size``, ``pretrained``, ``phantom_size`` and
    ``phantom_difficulty`` read the fields above.

    Example:
        >>> quick = get_profile("quick")
        >>> quick.epochs, quick.with_overrides(epochs=1).train.epochs
        (6, 1)
    """

    name: str
    dataset: str
    weights: str
    canvas_scale: float
    train: TrainConfig
    phantom: PhantomConfig = field(default_factory=PhantomConfig)
    demo_images_per_class: int | None = None
    folds: int = 5
    augment: AugmentConfig | None = DEFAULT_AUGMENT
    per_model: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def epochs(self) -> int:
        """Training epochs per fold."""
        return self.train.epochs

    @property
    def lr(self) -> float:
        """Initial learning rate."""
        return self.train.lr

    @property
    def batch_size(self) -> int:
        """Images per training batch."""
        return self.train.batch_size

    @property
    def pretrained(self) -> bool:
        """Whether the profile starts from ImageNet weights."""
        return self.weights == "imagenet"

    @property
    def phantom_size(self) -> int:
        """Number of phantom images generated when the dataset is the phantom."""
        return self.phantom.size

    @property
    def phantom_difficulty(self) -> float:
        """The phantom generator's difficulty knob in [0, 1]."""
        return self.phantom.difficulty

    def to_dict(self) -> dict[str, Any]:
        """Return the profile as one flat row (for tables): its own fields, the phantom's
        and the training settings a profile changes (epochs, batch size, learning rate)."""
        return {
            "name": self.name,
            "dataset": self.dataset,
            "weights": self.weights,
            "canvas_scale": self.canvas_scale,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "folds": self.folds,
            "phantom_size": self.phantom_size,
            "phantom_difficulty": self.phantom_difficulty,
            "demo_images_per_class": self.demo_images_per_class,
        }

    def with_overrides(self, **changes: Any) -> Profile:
        """Return a copy with some fields changed; TrainConfig field names go to ``train``,
        ``phantom_size``/``phantom_difficulty`` to ``phantom``, ``pretrained`` to ``weights``.

        Example:
            >>> get_profile("quick").with_overrides(epochs=1, pretrained=True).weights
            'imagenet'
        """
        train = {k: changes.pop(k) for k in list(changes) if k in TRAIN_FIELDS}
        if train:
            changes["train"] = replace(changes.get("train", self.train), **train)
        phantom = {
            key: changes.pop(f"phantom_{key}")
            for key in ("size", "difficulty") if f"phantom_{key}" in changes
        }
        if phantom:
            changes["phantom"] = replace(changes.get("phantom", self.phantom), **phantom)
        if "pretrained" in changes:
            changes["weights"] = "imagenet" if changes.pop("pretrained") else "random"
        unknown = sorted(set(changes) - {f.name for f in fields(self)})
        if unknown:
            raise ValueError(
                f"unknown profile setting {unknown[0]!r}; settings are "
                f"{[f.name for f in fields(self)]}, the TrainConfig fields, phantom_size, "
                "phantom_difficulty and pretrained (device and workers are RuntimeSettings)."
            )
        return replace(self, **changes)

    def experiment(self, dataset: str | None, model: str, **overrides: Any) -> ExperimentConfig:
        """Return the experiment config of ``model`` on ``dataset`` with this profile's
        defaults; ``overrides`` set any :class:`ExperimentConfig` field or TrainConfig
        field (``epochs=1``, ``seed=3``, ``augment=None``...).

        Args:
            dataset: registry name; ``None`` is the profile's dataset.
            model: registry name.
            **overrides: settings that differ from the profile's.

        Example:
            >>> config = get_profile("full").experiment("covid19-ct", "resnet50", n_folds=3)
            >>> config.weights, config.n_folds, config.train.epochs, config.phantom
            ('imagenet', 3, 100, None)
        """
        name = dataset or self.dataset
        config = ExperimentConfig(
            dataset=name,
            model=model,
            weights=self.weights,
            n_folds=self.folds,
            canvas_scale=self.canvas_scale,
            phantom=self.phantom if name == PHANTOM_DATASET else None,
            train=self.train,
            augment=self.augment,
        )
        overrides = {**self.per_model.get(model, {}), **overrides}
        return config.with_overrides(**overrides) if overrides else config


def _per_model_table(name: str) -> dict[str, dict[str, Any]]:
    """Read a per-model settings table shipped in ``covidlib/tables/`` (one row a model)."""
    import csv

    casts = {"canvas_scale": float, "epochs": int, "lr": float, "batch_size": int}
    path = Path(__file__).resolve().parent / "tables" / name
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(row for row in handle if not row.startswith("#")))
    return {
        row["model"]: {key: casts[key](value) for key, value in row.items() if key in casts}
        for row in rows
    }


PROFILES: dict[str, Profile] = {
    "quick": Profile(
        name="quick",
        dataset="phantom",
        weights="random",
        canvas_scale=0.4,
        train=TrainConfig(epochs=6, lr=1e-2, batch_size=16),
        phantom=PhantomConfig(size=200, difficulty=0.2),
        demo_images_per_class=16,
    ),
    # Real data on a 2-core CPU from random initialisation: canvases, epochs and rates per
    # model in tables/cpu_profile.csv (chosen for a CPU budget, see the README).
    "cpu": Profile(
        name="cpu",
        dataset="sars-cov-2-ct",
        weights="random",
        canvas_scale=0.25,
        train=TrainConfig(epochs=30, lr=1e-2, batch_size=32),
        per_model=_per_model_table("cpu_profile.csv"),
    ),
    "full": Profile(
        name="full",
        dataset="covid19-ct",
        weights="imagenet",
        canvas_scale=1.0,
        train=TrainConfig(epochs=100, lr=3e-4, batch_size=32),
        phantom=PhantomConfig(size=2000, difficulty=0.5),
    ),
}


def get_profile(name: str | None = None) -> Profile:
    """Return the named profile, or the one chosen by ``COVIDLIB_PROFILE`` (default quick).

    Args:
        name: ``"quick"``, ``"cpu"`` or ``"full"``; ``None`` reads the environment.

    Raises:
        UnknownNameError: for an unknown profile name (a ``ValueError``).

    Example:
        >>> get_profile("full").epochs
        100
    """
    chosen = name if name is not None else os.environ.get(PROFILE_ENV, "quick")
    chosen = chosen.strip().lower()
    if chosen not in PROFILES:
        source = "" if name else f" (from {PROFILE_ENV})"
        raise UnknownNameError(f"profile{source}", chosen, PROFILES)
    return PROFILES[chosen]


# --------------------------------------------------------------------------------------
# Paths, progress, device
# --------------------------------------------------------------------------------------


def project_root() -> Path | None:
    """Return the course repository root when covidlib runs from a checkout, else ``None``."""
    candidate = Path(__file__).resolve().parents[1]
    if (candidate / "_config.yml").is_file() and (candidate / "covidlib").is_dir():
        return candidate
    return None


def data_dir() -> Path:
    """Return the folder that holds datasets and caches.

    ``COVIDLIB_DATA`` wins; otherwise ``data/`` of the repository checkout; otherwise
    ``~/covidlib-data`` (an installed package, e.g. in Colab).

    Example:
        >>> data_dir().name in {"data", "covidlib-data"} or "COVIDLIB_DATA" in os.environ
        True
    """
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    root = project_root()
    if root is not None:
        return root / "data"
    return Path.home() / "covidlib-data"


def progress_enabled() -> bool:
    """Return whether progress bars should be shown.

    Only on a terminal (stderr is a TTY) or in a Jupyter kernel, and never when
    ``COVIDLIB_PROGRESS`` is off (``0``/``false``/``no``/``off``: the book build and the
    tests set it). Piped into a log file, stderr is no TTY: no progress-bar frames there.

    Example:
        >>> import contextlib, io
        >>> with contextlib.redirect_stderr(io.StringIO()):
        ...     progress_enabled()
        False
    """
    if not env_flag(PROGRESS_ENV, default=True):
        return False
    stream = sys.stderr
    if type(stream).__module__.startswith("ipykernel"):
        return True
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except (ValueError, OSError):  # a closed stream
        return False


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """Return the torch device for ``"auto"``/``None`` (CUDA when available, else CPU),
    ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or a ``torch.device``.

    Call it once, at the entry point (``run_cv``, the CLI), and pass the device down.

    Raises:
        ValueError: CUDA was asked for on a machine without it, or an unknown name.

    Example:
        >>> resolve_device("cpu").type
        'cpu'
    """
    import torch

    if name is None or name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ValueError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N.") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was requested but CUDA is not available; use 'cpu'.")
    return device
