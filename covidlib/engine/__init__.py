"""The training engine: optimizer, fastai learner, folds, run folders and cross-validation.

Public names are importable from the package and loaded on first use
(:func:`covidlib.utils.lazy.lazy_exports`), so importing it stays cheap.
"""

from covidlib.utils.lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "CVResult": "covidlib.engine.cv",
    "RunConfigError": "covidlib.engine.cv",
    "cached_run": "covidlib.engine.cv",
    "load_finished_run": "covidlib.engine.cv",
    "read_experiment": "covidlib.engine.cv",
    "run_cv": "covidlib.engine.cv",
    "assign_folds": "covidlib.engine.folds",
    "fold_rows": "covidlib.engine.folds",
    "Lamb": "covidlib.engine.lamb",
    "fit_fold": "covidlib.engine.learner",
    "lr_trace": "covidlib.engine.learner",
    "make_learner": "covidlib.engine.learner",
    "train_fold": "covidlib.engine.learner",
    "lamb_trust_ratios": "covidlib.engine.optim",
    "load_fold_model": "covidlib.engine.predict",
    "predict_images": "covidlib.engine.predict",
    "source_model": "covidlib.engine.pretrain",
    "RunFolderError": "covidlib.engine.readers",
    "RunFolder": "covidlib.engine.runs",
    "apply_strategy": "covidlib.engine.transfer",
    "trainable_summary": "covidlib.engine.transfer",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
