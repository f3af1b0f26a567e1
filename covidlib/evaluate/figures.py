"""Figures of the results: metrics with intervals beside the paper's, average confusion
matrices (the paper's Figures 9 and 10), ROC and reliability curves.

Example:
    >>> import tempfile, pathlib
    >>> from covidlib.evaluate.report import load_scored, summarize_scored, write_example_result
    >>> run = load_scored(write_example_result(pathlib.Path(tempfile.mkdtemp())))
    >>> ax = plot_metrics([summarize_scored(run, n_resamples=100)], paper=True)
    >>> ax.get_ylabel()
    'percent'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from covidlib.evaluate.curves import calibration, mean_roc
from covidlib.evaluate.report import REPORT_METRICS, ScoredRun, paper_row

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def _axes(ax: Axes | None, size: tuple[float, float]) -> Axes:
    import matplotlib.pyplot as plt

    if ax is not None:
        return ax
    _, created = plt.subplots(figsize=size)
    return created


# Smallest text in any figure, in points: readable at the book's page width.
MIN_FONT = 9


def contrasting_text_colour(rgba: Sequence[float]) -> str:
    """Black or white, whichever reads better on a cell of colour ``rgba`` (WCAG luminance).

    Example:
        >>> pale, dark = (0.97, 0.98, 1.0, 1.0), (0.03, 0.19, 0.42, 1.0)
        >>> contrasting_text_colour(pale), contrasting_text_colour(dark)
        ('black', 'white')
    """
    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(float(c)) for c in rgba[:3])
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    # contrast with black (L + 0.05) / 0.05 against white 1.05 / (L + 0.05): equal at L ~ 0.18
    return "black" if luminance > 0.179 else "white"


def plot_metrics(
    reports: Sequence[Mapping[str, Any]], *, paper: bool = True, interval: str = "t",
    ax: Axes | None = None,
) -> Axes:
    """Bars of every metric per run (percent) with their interval; the paper's beside them.

    Args:
        reports: objects of :func:`covidlib.evaluate.report.summarize_scored`.
        paper: add a hatched bar with the paper's mean ± std where the paper has the model.
        interval: ``"t"`` (over folds) or ``"bootstrap"`` (pooled test images) error bars.
    """
    ax = _axes(ax, (9, 3.5))
    low_key, high_key = ("ci_low", "ci_high") if interval == "t" else ("boot_low", "boot_high")
    series: list[tuple[str, list[float], np.ndarray, bool]] = []
    for report in reports:
        values = report["metrics"]
        means = [100 * values[m]["mean"] for m in REPORT_METRICS]
        errors = np.array([[100 * (values[m]["mean"] - values[m][low_key]),
                            100 * (values[m][high_key] - values[m]["mean"])]
                           for m in REPORT_METRICS]).T
        series.append((f"{report['model']} ({report['profile'] or report['kind']})", means,
                       errors, False))
        published = paper_row(report["dataset"], report["model"]) if paper else None
        if published:
            paper_means = [published.get(m, np.nan) for m in REPORT_METRICS]
            spread = [published.get(f"{m}_std", np.nan) for m in REPORT_METRICS]
            series.append((f"{report['model']} (paper)", paper_means,
                           np.array([spread, spread]), True))
    width = 0.8 / max(len(series), 1)
    positions = np.arange(len(REPORT_METRICS))
    for i, (label, means, errors, hatched) in enumerate(series):
        ax.bar(positions + (i - (len(series) - 1) / 2) * width, means, width, yerr=errors,
               capsize=2, label=label, hatch="//" if hatched else None,
               alpha=0.6 if hatched else 0.9)
    ax.set_xticks(positions, [m.replace("_", "-") for m in REPORT_METRICS])
    ax.set_ylabel("percent")
    ax.set_ylim(0, 105)
    ax.legend(fontsize=MIN_FONT, ncol=min(len(series), 4), loc="upper center",
              bbox_to_anchor=(0.5, -0.1), frameon=False)  # below the axes, off the bars
    shown = "95% t-interval over folds" if interval == "t" else "95% bootstrap interval"
    ax.set_title(f"Test metrics, mean over folds with {shown}; paper: mean ± std", fontsize=10)
    return ax


def plot_confusion_grid(reports: Sequence[Mapping[str, Any]], columns: int = 4) -> Figure:
    """One average confusion matrix (mean counts per test fold) per run."""
    import matplotlib.pyplot as plt

    rows = int(np.ceil(len(reports) / columns))
    width = min(columns, len(reports))
    figure, axes = plt.subplots(rows, width, figsize=(3.0 * width, 2.8 * rows), squeeze=False)
    for ax in axes.ravel()[len(reports):]:
        ax.axis("off")
    for ax, report in zip(axes.ravel(), reports, strict=False):
        counts = report["confusion"]
        matrix = np.array([[counts["tn"], counts["fp"]], [counts["fn"], counts["tp"]]])
        image = ax.imshow(matrix, cmap="Blues")
        for (i, j), value in np.ndenumerate(matrix):
            # the text colour follows the cell's own colour, so every count stays visible
            ax.text(j, i, f"{value:.1f}", ha="center", va="center", fontsize=MIN_FONT + 1,
                    color=contrasting_text_colour(image.cmap(image.norm(value))))
        ax.set_xticks([0, 1], ["non-COVID", "COVID"], fontsize=MIN_FONT)
        ax.set_yticks([0, 1], ["non-COVID", "COVID"], fontsize=MIN_FONT)
        ax.set_xlabel("predicted", fontsize=MIN_FONT)
        ax.set_ylabel("true", fontsize=MIN_FONT)
        ax.set_title(report["model"], fontsize=MIN_FONT + 1)
    figure.suptitle("Average confusion matrix per test fold", fontsize=MIN_FONT + 2)
    figure.tight_layout()
    return figure


def plot_roc(runs: Sequence[ScoredRun], ax: Axes | None = None) -> Axes:
    """Mean ROC curve over folds per run, with a band of one standard deviation."""
    ax = _axes(ax, (4, 4))
    for run in runs:
        curve = mean_roc(run.predictions)
        line, = ax.plot(curve["fpr"], curve["tpr_mean"],
                        label=f"{run.model} (AUC {curve.attrs['auc_mean']:.3f} ± "
                              f"{curve.attrs['auc_std']:.3f})")
        ax.fill_between(curve["fpr"], curve["tpr_low"], curve["tpr_high"],
                        color=line.get_color(), alpha=0.15)
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("false positive rate (1 - specificity)")
    ax.set_ylabel("true positive rate (sensitivity)")
    ax.legend(fontsize=MIN_FONT, loc="lower right")
    ax.set_title("ROC, mean over test folds ± 1 std", fontsize=10)
    return ax


def plot_calibration(runs: Sequence[ScoredRun], n_bins: int = 10,
                     ax: Axes | None = None) -> Axes:
    """Reliability curve per run (pooled test images) with its Brier score."""
    ax = _axes(ax, (4, 4))
    for run in runs:
        curve = calibration(run.predictions, n_bins=n_bins)
        ax.plot(curve["predicted"], curve["observed"], marker="o",
                label=f"{run.model} (Brier {curve.attrs['brier']:.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("mean predicted COVID probability")
    ax.set_ylabel("observed COVID fraction")
    # below the axes: the curves run through the upper left
    ax.legend(fontsize=MIN_FONT, loc="upper center", bbox_to_anchor=(0.5, -0.15), frameon=False)
    ax.set_title("Reliability (calibration) curve", fontsize=10)
    return ax


__all__ = ["MIN_FONT", "contrasting_text_colour", "plot_calibration", "plot_confusion_grid",
           "plot_metrics", "plot_roc"]
