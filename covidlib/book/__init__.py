"""Helpers the chapters share (the idea of d2l's ``d2l`` package).

The seven architecture chapters run the same steps around what is specific to each family:
create the profile's model, show the computed Table 1, letterbox a COVID slice onto the
model's canvas and tabulate the feature maps, fine-tune on one fold and plot the loss. Each
step is one call here, so a chapter keeps only its family's own code. :func:`glue` and
:func:`dataset_facts` put computed numbers into the prose (MyST-NB ``{glue:text}`` roles).

One module per chapter group: :mod:`~covidlib.book.architectures`, :mod:`~covidlib.book.glue`,
:mod:`~covidlib.book.results`, :mod:`~covidlib.book.transfer`, :mod:`~covidlib.book.explain`
and :mod:`~covidlib.book.honest`; chapters use the names below as ``book.<name>``. Everything
heavy is imported inside the functions, so ``import covidlib.book`` is cheap.

Example:
    >>> from covidlib import book
    >>> setup = book.architecture_setup("squeezenet", verbose=False)
    >>> setup.spec.paper_name, setup.profile.name
    ('SqueezeNet', 'quick')
"""

from __future__ import annotations

import warnings

from covidlib.book.architectures import (
    TABLE1_COLUMNS,
    ArchitectureSetup,
    architecture_setup,
    chapter_images,
    feature_maps,
    fine_tune_demo,
    glue_params,
    letterboxed_covid_slice,
    metrics_table,
    model_input,
    plot_training_loss,
    show_letterboxed_slice,
    table1,
)
from covidlib.book.explain import (
    REAL_LESION_SCORES_FILE,
    localization_verdict,
    real_lesion_experiment,
    real_lesion_scores,
    scores_table,
    shared_datasets_dir,
    stored_lesion_scores,
)
from covidlib.book.glue import (
    DATASET_FACTS_FILE,
    dataset_facts,
    glue,
    glue_dataset_facts,
)
from covidlib.book.honest import (
    HONEST_PREFIX,
    PHANTOM_LEAKAGE_MODEL,
    PHANTOM_LEAKAGE_SETTINGS,
    accuracy_gap,
    honest_results,
    phantom_leakage,
    show_pairs,
)
from covidlib.book.results import (
    RESULTS_MODELS,
    results_dir,
    stored_results,
)
from covidlib.book.transfer import plot_learning_curve, plot_transfer_histories
from covidlib.engine.budget_study import (
    TRANSFER_BUDGETS,
    TRANSFER_EPOCHS,
    TRANSFER_MODEL,
    TRANSFER_STRATEGY_ORDER,
    TRANSFER_TEST_PER_CLASS,
    TransferStudy,
    linear_probe,
    transfer_split,
    transfer_study,
)
from covidlib.utils.lazy import lazy_exports

# Re-exports for the chapters, served lazily like the packages' tables.
_EXPORTS: dict[str, str] = {
    "cached_run": "covidlib.engine.cv",
}
__getattr__, _ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "ArchitectureSetup",
    "DATASET_FACTS_FILE",
    "HONEST_PREFIX",
    "PHANTOM_LEAKAGE_MODEL",
    "PHANTOM_LEAKAGE_SETTINGS",
    "REAL_LESION_SCORES_FILE",
    "RESULTS_MODELS",
    "TABLE1_COLUMNS",
    "TRANSFER_BUDGETS",
    "TRANSFER_EPOCHS",
    "TRANSFER_MODEL",
    "TRANSFER_STRATEGY_ORDER",
    "TRANSFER_TEST_PER_CLASS",
    "TransferStudy",
    "accuracy_gap",
    "architecture_setup",
    "cached_run",
    "chapter_images",
    "dataset_facts",
    "feature_maps",
    "fine_tune_demo",
    "glue",
    "glue_dataset_facts",
    "glue_params",
    "honest_results",
    "letterboxed_covid_slice",
    "linear_probe",
    "localization_verdict",
    "metrics_table",
    "model_input",
    "phantom_leakage",
    "plot_learning_curve",
    "plot_training_loss",
    "plot_transfer_histories",
    "real_lesion_experiment",
    "real_lesion_scores",
    "results_dir",
    "scores_table",
    "shared_datasets_dir",
    "show_letterboxed_slice",
    "show_pairs",
    "stored_lesion_scores",
    "stored_results",
    "table1",
    "transfer_split",
    "transfer_study",
]

# A page shows an undefined precision or specificity as 0.0 in its tables (the chapters say
# so); the warning's text names this machine's files and is not for the reader.
warnings.filterwarnings("ignore", message=r".* is undefined \(zero denominator")
