"""The training engine: optimizer, fastai learner, folds, run folders and cross-validation.

Public names are importable from the package and loaded on first use
(:func:`covidlib.utils.lazy.lazy_exports`), so importing it stays cheap.
"""

from covidlib.utils.lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "CONFIG_FILE": "covidlib.engine.cv",
    "CVResult": "covidlib.engine.cv",
    "EpochCheckpoint": "covidlib.engine.learner",
    "EpochLog": "covidlib.engine.learner",
    "EpochSeeding": "covidlib.engine.learner",
    "ExperimentConfig": "covidlib.config",
    "FOLDS_FILE": "covidlib.engine.cv",
    "FOLD_MODEL_CHOICES": "covidlib.engine.learner",
    "FoldResult": "covidlib.engine.learner",
    "OPTIMIZERS": "covidlib.engine.learner",
    "PREDICT_BATCH": "covidlib.engine.runs",
    "RunConfigError": "covidlib.engine.cv",
    "RuntimeSettings": "covidlib.config",
    "SKIPPED_FILE": "covidlib.engine.cv",
    "SPLIT_STRATEGIES": "covidlib.engine.cv",
    "SUMMARY_FILE": "covidlib.engine.cv",
    "SkipValidation": "covidlib.engine.learner",
    "StepSchedule": "covidlib.engine.learner",
    "TRAIN_ONLY": "covidlib.engine.cv",
    "TrainConfig": "covidlib.engine.learner",
    "assign_folds": "covidlib.engine.cv",
    "cached_run": "covidlib.engine.cv",
    "check_run_config": "covidlib.engine.cv",
    "collect_run": "covidlib.engine.cv",
    "config_differences": "covidlib.config",
    "default_canvas": "covidlib.engine.learner",
    "derive_seed": "covidlib.engine.learner",
    "finished_folds": "covidlib.engine.runs",
    "fit_first_fold": "covidlib.engine.cv",
    "fit_fold": "covidlib.engine.learner",
    "fold_dir": "covidlib.engine.runs",
    "fold_numbers": "covidlib.engine.cv",
    "fold_rows": "covidlib.engine.cv",
    "folds_file": "covidlib.engine.cv",
    "lamb_trust_ratios": "covidlib.engine.learner",
    "load_checkpoint": "covidlib.engine.learner",
    "load_finished_run": "covidlib.engine.cv",
    "load_fold_model": "covidlib.engine.runs",
    "load_or_assign_folds": "covidlib.engine.cv",
    "lr_trace": "covidlib.engine.learner",
    "make_learner": "covidlib.engine.learner",
    "predict_images": "covidlib.engine.runs",
    "predict_probabilities": "covidlib.engine.learner",
    "read_experiment": "covidlib.engine.cv",
    "read_run_config": "covidlib.engine.runs",
    "resolve_canvas": "covidlib.engine.learner",
    "resolve_device": "covidlib.config",
    "run_cv": "covidlib.engine.cv",
    "save_checkpoint": "covidlib.engine.learner",
    "train_fold": "covidlib.engine.learner",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
