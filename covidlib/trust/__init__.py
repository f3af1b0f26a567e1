"""Can a single prediction be trusted? Calibration, conformal triage, prevalence, model cards.

* :mod:`~covidlib.trust.calibration`: ECE (equal-width and equal-mass bins, bootstrap
  interval), the Brier score and its decomposition, reliability diagrams, temperature
  scaling fitted without the test fold.
* :mod:`~covidlib.trust.conformal`: class-conditional split conformal triage (COVID,
  non-COVID, or refer), cross-conformal over folds and across datasets.
* :mod:`~covidlib.trust.prevalence`: PPV and NPV against prevalence, operating points, an
  explorer.
* :mod:`~covidlib.trust.card`: model cards from run folders and stored results;
  :mod:`~covidlib.trust.datasheet`: dataset datasheets.

Public names load on first use (:func:`covidlib.utils.lazy.lazy_exports`).
"""

from covidlib.utils.lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "ConformalTriage": "covidlib.trust.conformal",
    "calibrate_run": "covidlib.trust.study",
    "brier_decomposition": "covidlib.trust.calibration",
    "calibration_summary": "covidlib.trust.calibration",
    "conformal_table": "covidlib.trust.conformal",
    "cross_conformal": "covidlib.trust.conformal",
    "cross_fitted_temperature": "covidlib.trust.calibration",
    "ece_interval": "covidlib.trust.calibration",
    "expected_calibration_error": "covidlib.trust.calibration",
    "fit_temperature": "covidlib.trust.calibration",
    "load_run": "covidlib.trust._sources",
    "model_card": "covidlib.trust.card",
    "operating_point": "covidlib.trust.prevalence",
    "plot_predictive_values": "covidlib.trust.prevalence",
    "plot_reliability": "covidlib.trust.calibration",
    "predictive_value_curves": "covidlib.trust.prevalence",
    "predictive_values": "covidlib.trust.prevalence",
    "reliability_table": "covidlib.trust.calibration",
    "show_prevalence_explorer": "covidlib.trust.prevalence",
    "store_audit": "covidlib.trust.card",
    "stored_results": "covidlib.trust._sources",
    "transfer_conformal": "covidlib.trust.conformal",
    "triage_summary": "covidlib.trust.conformal",
    "write_card": "covidlib.trust.card",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
