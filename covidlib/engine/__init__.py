"""The training engine: optimizer, fastai learner, folds, run folders and cross-validation.

Public names are importable from the package and loaded on first use
(:func:`covidlib.utils.lazy.lazy_exports`), so importing it stays cheap.
"""

from covidlib.utils.lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "CONFIG_FILE": "covidlib.engine.cv",
    "CVResult": "covidlib.engine.cv",
    "EXECUTION_KEYS": "covidlib.engine.cv",
    "EpochCheckpoint": "covidlib.engine.learner",
    "EpochSeeding": "covidlib.engine.learner",
    "FOLDS_FILE": "covidlib.engine.cv",
    "FOLD_MODEL_CHOICES": "covidlib.engine.learner",
    "FoldFiles": "covidlib.engine.runs",
    "FoldLock": "covidlib.engine.runs",
    "FoldResult": "covidlib.engine.learner",
    "LockInfo": "covidlib.engine.runs",
    "OPTIMIZERS": "covidlib.engine.learner",
    "PREDICT_BATCH": "covidlib.engine.predict",
    "RunConfigError": "covidlib.engine.cv",
    "RunFolder": "covidlib.engine.runs",
    "RunFolderError": "covidlib.engine.runs",
    "SPLIT_STRATEGIES": "covidlib.engine.cv",
    "SUMMARY_FILE": "covidlib.engine.cv",
    "SkipValidation": "covidlib.engine.learner",
    "StepSchedule": "covidlib.engine.learner",
    "TRAIN_ONLY": "covidlib.engine.cv",
    "TrainConfig": "covidlib.engine.learner",
    "assign_folds": "covidlib.engine.cv",
    "check_run_config": "covidlib.engine.cv",
    "check_threshold": "covidlib.engine.predict",
    "collect_run": "covidlib.engine.cv",
    "config_differences": "covidlib.engine.learner",
    "config_digest": "covidlib.engine.runs",
    "derive_seed": "covidlib.engine.learner",
    "finished_folds": "covidlib.engine.runs",
    "fit_first_fold": "covidlib.engine.cv",
    "fit_fold": "covidlib.engine.learner",
    "fold_dir": "covidlib.engine.runs",
    "fold_numbers": "covidlib.engine.cv",
    "fold_rows": "covidlib.engine.cv",
    "folds_file": "covidlib.engine.cv",
    "load_checkpoint": "covidlib.engine.learner",
    "load_fold_model": "covidlib.engine.predict",
    "load_or_assign_folds": "covidlib.engine.cv",
    "make_learner": "covidlib.engine.learner",
    "predict_images": "covidlib.engine.predict",
    "predict_probabilities": "covidlib.engine.learner",
    "read_csv": "covidlib.engine.runs",
    "read_json": "covidlib.engine.runs",
    "read_run_config": "covidlib.engine.runs",
    "resolve_device": "covidlib.engine.learner",
    "run_cv": "covidlib.engine.cv",
    "save_checkpoint": "covidlib.engine.learner",
    "seed_everything": "covidlib.engine.learner",
    "train_fold": "covidlib.engine.learner",
    "usable_folds": "covidlib.engine.predict",
    "worker_id": "covidlib.engine.runs",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
