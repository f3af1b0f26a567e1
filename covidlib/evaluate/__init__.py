"""Evaluation: fold metrics (a leaf module the engine imports).

Public names are importable from the package and loaded on first use
(:func:`covidlib.utils.lazy.lazy_exports`), so importing it stays cheap.
"""

from covidlib.utils.lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "METRIC_NAMES": "covidlib.evaluate.metrics",
    "binary_metrics": "covidlib.evaluate.metrics",
    "format_summary": "covidlib.evaluate.metrics",
    "summarize_folds": "covidlib.evaluate.metrics",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
