"""The training engine: optimizer, fastai learner, folds, run folders and cross-validation.

Public names are importable from the package and loaded on first use
(:func:`covidlib.utils.lazy.lazy_exports`), so importing it stays cheap.
"""

from covidlib.utils.lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "Lamb": "covidlib.engine.lamb",
    "CVResult": "covidlib.engine.cv",
    "EpochCheckpoint": "covidlib.engine.callbacks",
    "EpochLog": "covidlib.engine.callbacks",
    "EpochSeeding": "covidlib.engine.callbacks",
    "FoldFiles": "covidlib.engine.runs",
    "FoldLock": "covidlib.engine.locks",
    "FoldResult": "covidlib.engine.learner",
    "LockInfo": "covidlib.engine.locks",
    "OPTIMIZERS": "covidlib.engine.optim",
    "PREDICT_BATCH": "covidlib.engine.predict",
    "RunConfigError": "covidlib.engine.cv",
    "RunFolder": "covidlib.engine.runs",
    "RunFolderError": "covidlib.engine.readers",
    "SkipValidation": "covidlib.engine.callbacks",
    "StepSchedule": "covidlib.engine.callbacks",
    "TRAIN_ONLY": "covidlib.engine.folds",
    "TrainConfig": "covidlib.engine.learner",
    "assign_folds": "covidlib.engine.folds",
    "cached_run": "covidlib.engine.cv",
    "check_run_config": "covidlib.engine.cv",
    "check_threshold": "covidlib.engine.predict",
    "collect_run": "covidlib.engine.cv",
    "default_canvas": "covidlib.engine.learner",
    "config_digest": "covidlib.engine.runs",
    "derive_seed": "covidlib.engine.callbacks",
    "fit_first_fold": "covidlib.engine.cv",
    "fit_fold": "covidlib.engine.learner",
    "fold_numbers": "covidlib.engine.folds",
    "fold_rows": "covidlib.engine.folds",
    "folds_file": "covidlib.engine.folds",
    "lamb_trust_ratios": "covidlib.engine.optim",
    "load_checkpoint": "covidlib.engine.checkpoint",
    "load_finished_run": "covidlib.engine.cv",
    "load_fold_model": "covidlib.engine.predict",
    "load_or_assign_folds": "covidlib.engine.folds",
    "lr_trace": "covidlib.engine.learner",
    "make_learner": "covidlib.engine.learner",
    "predict_images": "covidlib.engine.predict",
    "predict_logits": "covidlib.engine.learner",
    "read_experiment": "covidlib.engine.cv",
    "read_csv": "covidlib.engine.readers",
    "read_json": "covidlib.engine.readers",
    "resolve_canvas": "covidlib.engine.learner",
    "run_cv": "covidlib.engine.cv",
    "save_checkpoint": "covidlib.engine.checkpoint",
    "train_fold": "covidlib.engine.learner",
    "usable_folds": "covidlib.engine.predict",
    "worker_id": "covidlib.engine.runs",
    # transfer learning
    "PretrainResult": "covidlib.engine.pretrain",
    "SOURCE_TASKS": "covidlib.engine.pretrain",
    "TRANSFER_STRATEGIES": "covidlib.engine.transfer",
    "apply_strategy": "covidlib.engine.transfer",
    "backbone_state": "covidlib.engine.transfer",
    "freeze_backbone": "covidlib.engine.transfer",
    "penultimate_features": "covidlib.engine.transfer",
    "replace_head": "covidlib.engine.transfer",
    "source_model": "covidlib.engine.pretrain",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
