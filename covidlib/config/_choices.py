"""The names a configuration may take: optimizers, splits, weights, strategies, env vars."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass


PROFILE_ENV = "COVIDLIB_PROFILE"
DATA_ENV = "COVIDLIB_DATA"
PROGRESS_ENV = "COVIDLIB_PROGRESS"

PHANTOM_DATASET = "phantom"  # the registry name of the generated dataset
# The one list of optimizer names; covidlib.engine.optim.OPTIMIZERS holds their builders.
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
