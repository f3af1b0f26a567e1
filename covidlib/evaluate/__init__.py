"""Evaluation: the paper's metrics (``metrics``, a leaf module the engine imports), confidence
intervals, paired comparisons, ROC and calibration curves, Table 2 reports and their figures.

Public names are importable from the package and loaded on first use
(:func:`covidlib.utils.lazy.lazy_exports`), so importing it stays cheap.
"""

from covidlib.utils.lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "BOOTSTRAP_METHODS": "covidlib.evaluate.intervals",
    "COUNT_NAMES": "covidlib.evaluate.metrics",
    "METRIC_NAMES": "covidlib.evaluate.metrics",
    "PAPER_METRICS": "covidlib.evaluate.report",
    "PREDICTION_COLUMNS": "covidlib.evaluate.report",
    "PROVENANCE_KEYS": "covidlib.evaluate.report",
    "RANKING_NAMES": "covidlib.evaluate.metrics",
    "REPORT_METRICS": "covidlib.evaluate.report",
    "ROC_GRID": "covidlib.evaluate.curves",
    "ReportError": "covidlib.evaluate.report",
    "ScoredRun": "covidlib.evaluate.report",
    "binary_metrics": "covidlib.evaluate.metrics",
    "bootstrap_interval": "covidlib.evaluate.intervals",
    "calibration": "covidlib.evaluate.curves",
    "check_one_dataset": "covidlib.evaluate.report",
    "compare_correct": "covidlib.evaluate.compare",
    "compare_scored": "covidlib.evaluate.report",
    "confusion_counts": "covidlib.evaluate.metrics",
    "format_report": "covidlib.evaluate.report",
    "format_summary": "covidlib.evaluate.metrics",
    "load_scored": "covidlib.evaluate.report",
    "mcnemar_exact": "covidlib.evaluate.compare",
    "mcnemar_table": "covidlib.evaluate.compare",
    "mean_roc": "covidlib.evaluate.curves",
    "paired_bootstrap_difference": "covidlib.evaluate.intervals",
    "paper_row": "covidlib.evaluate.report",
    "paper_table2": "covidlib.evaluate.report",
    "plot_calibration": "covidlib.evaluate.figures",
    "plot_confusion_grid": "covidlib.evaluate.figures",
    "plot_metrics": "covidlib.evaluate.figures",
    "plot_roc": "covidlib.evaluate.figures",
    "pooled_bootstrap": "covidlib.evaluate.intervals",
    "profile_of": "covidlib.evaluate.report",
    "report_table": "covidlib.evaluate.report",
    "sensitivity_at_specificity": "covidlib.evaluate.metrics",
    "store_result": "covidlib.evaluate.report",
    "summarize_folds": "covidlib.evaluate.metrics",
    "summarize_scored": "covidlib.evaluate.report",
    "t_interval": "covidlib.evaluate.intervals",
    "write_example_result": "covidlib.evaluate.report",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
