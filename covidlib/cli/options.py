"""The experiment options shared by every command that starts training.

``covidlib cv`` uses them today (``pretrain`` and ``grid plan`` will): one group of flags,
so that a flag means the same everywhere. Unset flags take the profile's defaults.

Example:
    >>> import argparse
    >>> parser = argparse.ArgumentParser()
    >>> add_experiment_options(parser)
    >>> args = parser.parse_args(["--model", "squeezenet", "--profile", "quick", "--epochs", "2"])
    >>> config, runtime = experiment_from_args(args)
    >>> config.dataset, config.train.epochs, config.n_folds, runtime.device
    ('phantom', 2, 5, 'auto')
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from covidlib.config import (
    PROFILES,
    SPLIT_STRATEGIES,
    ExperimentConfig,
    RuntimeSettings,
    get_profile,
)


def add_experiment_options(parser: argparse.ArgumentParser) -> None:
    """Add --dataset --root --model --profile --split --groups --folds --seed --epochs --batch-size
    --lr --weights --skip-problems (the experiment) and --device --workers (the runtime)."""
    group = parser.add_argument_group("experiment (defaults: the profile's)")
    group.add_argument("--profile", choices=sorted(PROFILES),
                       help="run profile (default: COVIDLIB_PROFILE, else quick)")
    group.add_argument("--dataset", help="dataset name (covidlib datasets list)")
    group.add_argument("--root", type=Path, help="dataset folder (default: the registry's)")
    group.add_argument("--model", required=True, help="model name (covidlib models list)")
    group.add_argument("--split", choices=SPLIT_STRATEGIES, default="stratified",
                       help="fold strategy (default stratified)")
    group.add_argument("--groups", type=Path,
                       help="with --split grouped: a groups file (CSV path,group, e.g. from "
                       "covidlib audit --groups-out); default: the dataset's patient groups")
    group.add_argument("--folds", type=int, help="number of folds")
    group.add_argument("--seed", type=int, default=0, help="seed of folds and training")
    group.add_argument("--epochs", type=int, help="epochs per fold")
    group.add_argument("--batch-size", type=int, help="images per batch")
    group.add_argument("--lr", type=float, help="initial learning rate")
    group.add_argument("--weights",
                       help="initial weights: random, imagenet or a weights file")
    group.add_argument("--skip-problems", action="store_true",
                       help="leave unreadable images out (they are listed in the run folder)")
    runtime = parser.add_argument_group("runtime (not part of the experiment)")
    runtime.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    runtime.add_argument("--workers", type=int, default=0,
                         help="threads decoding images into the letterbox cache")


def experiment_from_args(args: argparse.Namespace) -> tuple[ExperimentConfig, RuntimeSettings]:
    """Return the experiment and the runtime settings the options ask for.

    Raises:
        ValueError: a value the config refuses (e.g. ``--epochs 0``), naming it.
    """
    profile = get_profile(args.profile)
    overrides: dict[str, Any] = {
        "split": args.split,
        "seed": args.seed,
        "skip_problems": bool(args.skip_problems),
    }
    for option, key in (("folds", "n_folds"), ("epochs", "epochs"),
                        ("batch_size", "batch_size"), ("lr", "lr"), ("weights", "weights")):
        value = getattr(args, option)
        if value is not None:
            overrides[key] = value
    groups = getattr(args, "groups", None)
    if groups is not None:
        if args.split != "grouped":
            raise ValueError(f"--groups {groups} needs --split grouped (not {args.split}).")
        overrides["groups"] = str(groups)
    config = profile.experiment(args.dataset, args.model, **overrides)
    runtime = RuntimeSettings(device=args.device, num_workers=args.workers)
    return config, runtime
