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
    TRANSFER_STRATEGIES,
    ExperimentConfig,
    RuntimeSettings,
    get_profile,
)


def add_experiment_options(
    parser: argparse.ArgumentParser, *, several: bool = False, runtime: bool = True
) -> None:
    """Add --dataset --root --model --profile --split --groups --folds --seed --epochs
    --batch-size --lr --canvas-scale --weights --strategy --skip-problems (the experiment) and
    --device --workers (the runtime).

    Args:
        parser: the command's parser.
        several: a grid: ``--dataset(s)``, ``--model(s)`` and ``--seed(s)`` take several
            values (default: the profile's dataset, every model, seed 0); read them with
            :func:`experiments_from_args`.
        runtime: add the runtime group (a grid command has its own).
    """
    group = parser.add_argument_group("experiment (defaults: the profile's)")
    group.add_argument("--profile", choices=sorted(PROFILES),
                       help="run profile (default: COVIDLIB_PROFILE, else quick)")
    if several:
        group.add_argument("--dataset", "--datasets", dest="dataset", nargs="+",
                           help="dataset names (default: the profile's study)")
    else:
        group.add_argument("--dataset", help="dataset name (covidlib datasets list)")
    group.add_argument("--root", type=Path, help="dataset folder (default: the registry's)")
    if several:
        group.add_argument("--model", "--models", dest="model", nargs="+",
                           help="model names (default: the profile's study; quick and full: "
                           "all 12 of the paper)")
    else:
        group.add_argument("--model", required=True, help="model name (covidlib models list)")
    group.add_argument("--split", choices=SPLIT_STRATEGIES, default="stratified",
                       help="fold strategy (default stratified)")
    group.add_argument("--groups", type=Path,
                       help="with --split grouped: a groups file (CSV path,group, e.g. from "
                       "covidlib audit --groups-out); default: the dataset's patient groups")
    group.add_argument("--folds", type=int, help="number of folds")
    if several:
        group.add_argument("--seed", "--seeds", dest="seed", type=int, nargs="+", default=[0],
                           help="seeds of folds and training (default 0)")
    else:
        group.add_argument("--seed", type=int, default=0, help="seed of folds and training")
    group.add_argument("--epochs", type=int, help="epochs per fold")
    group.add_argument("--batch-size", type=int, help="images per batch")
    group.add_argument("--lr", type=float, help="initial learning rate")
    group.add_argument("--canvas-scale", type=float,
                       help="factor on each model's canvas (1.0 = the paper's Table 1)")
    group.add_argument("--weights", metavar="FILE",
                       help="initial weights: random, imagenet or a weights file "
                       "(covidlib pretrain writes one)")
    group.add_argument("--strategy", choices=TRANSFER_STRATEGIES,
                       help="what trains: scratch (random weights), features (frozen "
                       "backbone, new head only) or finetune (all weights); default scratch "
                       "for random weights, else finetune")
    group.add_argument("--skip-problems", action="store_true",
                       help="leave unreadable images out (they are listed in the run folder)")
    if not runtime:
        return
    settings = parser.add_argument_group("runtime (not part of the experiment)")
    settings.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    settings.add_argument("--workers", type=int, default=0,
                          help="threads decoding images into the letterbox cache")


# option name -> experiment setting, for the options that default to the profile's value
_PROFILE_DEFAULTED = (("folds", "n_folds"), ("epochs", "epochs"), ("batch_size", "batch_size"),
                      ("lr", "lr"), ("weights", "weights"), ("canvas_scale", "canvas_scale"),
                      ("strategy", "strategy"))


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The experiment settings the options give (all but model, dataset and seed)."""
    overrides: dict[str, Any] = {"split": args.split, "skip_problems": bool(args.skip_problems)}
    for option, key in _PROFILE_DEFAULTED:
        value = getattr(args, option)
        if value is not None:
            overrides[key] = value
    groups = getattr(args, "groups", None)
    if groups is not None:
        if args.split != "grouped":
            raise ValueError(f"--groups {groups} needs --split grouped (not {args.split}).")
        overrides["groups"] = str(groups)
    return overrides


def experiment_from_args(args: argparse.Namespace) -> tuple[ExperimentConfig, RuntimeSettings]:
    """Return the experiment and the runtime settings the options ask for.

    Raises:
        ValueError: a value the config refuses (e.g. ``--epochs 0``), naming it.
    """
    profile = get_profile(args.profile)
    config = profile.experiment(args.dataset, args.model, seed=args.seed, **_overrides(args))
    runtime = RuntimeSettings(device=args.device, num_workers=args.workers)
    return config, runtime


def experiments_from_args(
    args: argparse.Namespace, **extra: Any
) -> list[ExperimentConfig]:
    """Return one experiment per dataset, model and seed the grid options ask for
    (:func:`add_experiment_options` with ``several=True``); ``extra`` overrides more.

    Raises:
        ValueError: a value the config refuses, naming it.

    Example:
        >>> parser = argparse.ArgumentParser()
        >>> add_experiment_options(parser, several=True, runtime=False)
        >>> args = parser.parse_args(["--models", "squeezenet", "resnet18", "--seeds", "0", "1"])
        >>> [(c.model, c.seed) for c in experiments_from_args(args)][:3]
        [('squeezenet', 0), ('squeezenet', 1), ('resnet18', 0)]
    """
    from covidlib.models.registry import list_models

    profile = get_profile(args.profile)
    overrides = {**_overrides(args), **extra}
    datasets = args.dataset or list(profile.study_datasets or [profile.dataset])
    models = args.model or list(profile.study_models or list_models())
    # model by model, each on every dataset: a long study has whole models early
    return [profile.experiment(dataset, model, seed=seed, **overrides)
            for model in models for dataset in datasets for seed in args.seed]
