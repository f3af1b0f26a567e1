"""The quick, cpu and full profiles: one set of experiment defaults each."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from covidlib.utils.names import UnknownNameError

if TYPE_CHECKING:
    pass

from covidlib.config._choices import PHANTOM_DATASET, PROFILE_ENV
from covidlib.config._experiment import ExperimentConfig, PhantomConfig
from covidlib.config._train import DEFAULT_AUGMENT, TRAIN_FIELDS, AugmentConfig, TrainConfig


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
        study_models: the models of the profile's study (``covidlib reproduce``); ``None``
            is all 12 of the paper.
        study_datasets: the datasets of the profile's study; ``None`` is :attr:`dataset`.

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
    study_models: tuple[str, ...] | None = None
    study_datasets: tuple[str, ...] | None = None

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
    path = Path(__file__).resolve().parents[1] / "tables" / name
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(row for row in handle if not row.startswith("#")))
    return {
        row["model"]: {key: casts[key](value) for key, value in row.items() if key in casts}
        for row in rows
    }


_CPU_TABLE = _per_model_table("cpu_profile.csv")  # read once, at import


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
        per_model=_CPU_TABLE,
        study_models=tuple(_CPU_TABLE),
        study_datasets=("sars-cov-2-ct", "covid19-ct"),
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
