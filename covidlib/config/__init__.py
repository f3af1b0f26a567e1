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
:func:`get_profile`. This package imports neither torch nor any covidlib module above
:mod:`covidlib.utils`. Its modules, by concern: ``_choices`` (the names a setting may take),
``_strict`` (strict (de)serialisation), ``_train`` (augmentation, optimizer and schedule),
``_experiment``, ``_runtime`` (device, progress, data folder) and ``_profiles``; import the
names below from ``covidlib.config`` itself.

Example:
    >>> config = get_profile("quick").experiment("phantom", "squeezenet", epochs=2)
    >>> config.train.epochs, config.n_folds, config.weights
    (2, 5, 'random')
    >>> ExperimentConfig.from_dict(config.to_dict()) == config
    True
"""

from __future__ import annotations

from covidlib.config._choices import (
    FOLD_MODEL_CHOICES,
    OPTIMIZER_NAMES,
    PHANTOM_DATASET,
    SPLIT_STRATEGIES,
    TRANSFER_STRATEGIES,
    WEIGHTS_CHOICES,
)
from covidlib.config._experiment import ExperimentConfig, PhantomConfig
from covidlib.config._profiles import PROFILES, Profile, get_profile
from covidlib.config._runtime import (
    RuntimeSettings,
    data_dir,
    progress_enabled,
    project_root,
    resolve_device,
)
from covidlib.config._strict import config_differences, describe_differences
from covidlib.config._train import DEFAULT_AUGMENT, OPERATIONS, AugmentConfig, TrainConfig

__all__ = [
    "DEFAULT_AUGMENT",
    "FOLD_MODEL_CHOICES",
    "OPERATIONS",
    "OPTIMIZER_NAMES",
    "PHANTOM_DATASET",
    "PROFILES",
    "SPLIT_STRATEGIES",
    "TRANSFER_STRATEGIES",
    "WEIGHTS_CHOICES",
    "AugmentConfig",
    "ExperimentConfig",
    "PhantomConfig",
    "Profile",
    "RuntimeSettings",
    "TrainConfig",
    "config_differences",
    "data_dir",
    "describe_differences",
    "get_profile",
    "progress_enabled",
    "project_root",
    "resolve_device",
]
