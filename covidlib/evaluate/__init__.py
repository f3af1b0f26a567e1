"""Evaluation: the paper's metrics (``metrics``, a leaf module the engine imports), confidence
intervals, paired comparisons, ROC and calibration curves, Table 2 reports and their figures.

Public names are importable from the package and loaded on first use
(:func:`covidlib.utils.lazy.lazy_exports`), so importing it stays cheap.
"""

from covidlib.utils.lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "compare_correct": "covidlib.evaluate.compare",
    "plot_calibration": "covidlib.evaluate.figures",
    "plot_confusion_grid": "covidlib.evaluate.figures",
    "plot_metrics": "covidlib.evaluate.figures",
    "plot_roc": "covidlib.evaluate.figures",
    "bootstrap_interval": "covidlib.evaluate.intervals",
    "METRIC_NAMES": "covidlib.evaluate.metrics",
    "binary_metrics": "covidlib.evaluate.metrics",
    "ReportError": "covidlib.evaluate.report",
    "compare_scored": "covidlib.evaluate.report",
    "format_report": "covidlib.evaluate.report",
    "load_scored": "covidlib.evaluate.report",
    "paper_table2": "covidlib.evaluate.report",
    "report_table": "covidlib.evaluate.report",
    "store_result": "covidlib.evaluate.report",
    "summarize_scored": "covidlib.evaluate.report",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
