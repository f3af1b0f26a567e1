"""The experiment: everything that decides a result, stored whole in a run folder."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from covidlib.utils.names import UnknownNameError

if TYPE_CHECKING:
    pass

from covidlib.config._choices import (
    PATIENT_GROUPS,
    PHANTOM_DATASET,
    SPLIT_STRATEGIES,
    TRANSFER_STRATEGIES,
    WEIGHTS_CHOICES,
)
from covidlib.config._strict import _check_keys, _fields_dict, _number, _pair, _set
from covidlib.config._train import TRAIN_FIELDS, AugmentConfig, TrainConfig


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
        return _fields_dict(self)

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
            raise UnknownNameError("split", self.split, SPLIT_STRATEGIES)
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
        return _fields_dict(self)

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
