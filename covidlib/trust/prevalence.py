"""Prevalence: what a positive call means where 5% of the scanned patients have COVID-19.

Sensitivity and specificity belong to the model; the positive and negative predictive
values (PPV, NPV) also depend on the prevalence in the population it is used on (Bayes):

    PPV = se p / (se p + (1 - sp)(1 - p)),   NPV = sp (1 - p) / (sp (1 - p) + (1 - se) p).

PPV and NPV both rise with sensitivity and specificity, so the Clopper-Pearson intervals of
se and sp give an interval for each (conservative: both ends taken together).
:func:`show_prevalence_explorer` is an ipywidgets explorer (prevalence and threshold
sliders, the expected confusion matrix) that draws a static figure in the built book.

Example:
    >>> ppv, npv = predictive_values(0.9, 0.9, 0.05)
    >>> round(float(ppv), 3), round(float(npv), 4)
    (0.321, 0.9942)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import proportion_confint

from covidlib.trust._sources import live_frontend

PREVALENCE_GRID = np.round(np.linspace(0.01, 0.99, 99), 2)
CLINIC_PREVALENCE = 0.05  # the example clinic: 5% of scanned patients have COVID-19


def check_prevalence(prevalence: Any) -> np.ndarray:
    """Return the prevalence(s) as an array, refusing values outside (0, 1)."""
    values = np.asarray(prevalence, dtype=float)
    bad = values[~((values > 0) & (values < 1))]
    if bad.size:
        raise ValueError(f"prevalence {bad.ravel()[0]} is outside (0, 1); use e.g. 0.05 for "
                         "5% of patients.")
    return values


def predictive_values(sensitivity: Any, specificity: Any, prevalence: Any
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Return (PPV, NPV) at the prevalence(s), from Bayes' rule (arrays broadcast)."""
    p = check_prevalence(prevalence)
    se, sp = np.asarray(sensitivity, dtype=float), np.asarray(specificity, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        ppv = se * p / (se * p + (1 - sp) * (1 - p))
        npv = sp * (1 - p) / (sp * (1 - p) + (1 - se) * p)
    return ppv, npv


def rates(labels: Any, probability: Any, threshold: float = 0.5, confidence: float = 0.95
          ) -> dict[str, float]:
    """Return sensitivity and specificity at ``threshold`` with Clopper-Pearson intervals
    and the counts behind them.

    Example:
        >>> r = rates([1, 1, 0, 0], [0.9, 0.4, 0.2, 0.6])
        >>> r["sensitivity"], r["specificity"], r["tp"], r["fp"]
        (0.5, 0.5, 1, 1)
    """
    y = np.asarray(labels, dtype=int).ravel()
    called = np.asarray(probability, dtype=float).ravel() >= threshold
    tp, fn = int((called & (y == 1)).sum()), int((~called & (y == 1)).sum())
    tn, fp = int((~called & (y == 0)).sum()), int((called & (y == 0)).sum())
    if tp + fn == 0 or tn + fp == 0:
        raise ValueError("sensitivity and specificity need images of both classes.")
    out: dict[str, float] = {"threshold": float(threshold), "tp": tp, "fn": fn, "tn": tn,
                             "fp": fp}
    for name, hits, total in (("sensitivity", tp, tp + fn), ("specificity", tn, tn + fp)):
        low, high = proportion_confint(hits, total, 1 - confidence, method="beta")
        out[name], out[f"{name}_low"], out[f"{name}_high"] = hits / total, float(low), float(high)
    return out


def operating_point(labels: Any, probability: Any, sensitivity: float,
                    confidence: float = 0.95) -> dict[str, float]:
    """Return the highest threshold whose sensitivity reaches ``sensitivity`` (the most
    specific such operating point), with its :func:`rates`.

    Example:
        >>> operating_point([1, 1, 0, 0], [0.9, 0.4, 0.2, 0.6], 1.0)["threshold"]
        0.4
    """
    if not 0 < sensitivity <= 1:
        raise ValueError(f"sensitivity {sensitivity} is outside (0, 1].")
    y = np.asarray(labels, dtype=int).ravel()
    p = np.asarray(probability, dtype=float).ravel()
    positives = np.sort(p[y == 1])[::-1]
    if positives.size == 0:
        raise ValueError("an operating point needs COVID images.")
    needed = math.ceil(sensitivity * positives.size - 1e-9)
    return rates(y, p, float(positives[needed - 1]), confidence)


def predictive_value_curves(labels: Any, probability: Any, *, threshold: float = 0.5,
                            prevalences: Any = PREVALENCE_GRID, confidence: float = 0.95
                            ) -> pd.DataFrame:
    """Return PPV and NPV with intervals over ``prevalences`` at a threshold.

    Columns ``prevalence``, ``ppv``, ``ppv_low``, ``ppv_high``, ``npv``, ``npv_low``,
    ``npv_high``; ``attrs`` hold the :func:`rates`.
    """
    r = rates(labels, probability, threshold, confidence)
    p = check_prevalence(prevalences)
    ppv, npv = predictive_values(r["sensitivity"], r["specificity"], p)
    ppv_low, npv_low = predictive_values(r["sensitivity_low"], r["specificity_low"], p)
    ppv_high, npv_high = predictive_values(r["sensitivity_high"], r["specificity_high"], p)
    table = pd.DataFrame({"prevalence": p, "ppv": ppv, "ppv_low": ppv_low,
                          "ppv_high": ppv_high, "npv": npv, "npv_low": npv_low,
                          "npv_high": npv_high})
    table.attrs.update(r)
    return table


def plot_predictive_values(curves: dict[str, pd.DataFrame], *, mark: float = CLINIC_PREVALENCE,
                           ax: Any = None) -> Any:
    """Draw PPV and NPV against prevalence (bands: the intervals), one colour per model."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.2))
    for index, (name, table) in enumerate(curves.items()):
        colour = f"C{index}"
        for column, style in (("ppv", "-"), ("npv", "--")):
            ax.plot(table["prevalence"], table[column], style, color=colour,
                    label=f"{name}: {column.upper()}")
            ax.fill_between(table["prevalence"], table[f"{column}_low"], table[f"{column}_high"],
                            color=colour, alpha=0.12, linewidth=0)
    ax.axvline(mark, color="grey", linestyle=":", label=f"prevalence {100 * mark:.0f}%")
    ax.set_xlabel("prevalence of COVID-19 among scanned patients")
    ax.set_ylabel("predictive value")
    ax.set_xscale("log")
    ax.set_ylim(0, 1.02)
    if len(curves) > 1:
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0))
    else:
        ax.legend(fontsize="small", loc="lower right")
    return ax


def expected_confusion(labels: Any, probability: Any, threshold: float, prevalence: float,
                       patients: int = 1000) -> pd.DataFrame:
    """Return the confusion matrix expected among ``patients`` at a prevalence (rounded).

    Example:
        >>> expected_confusion([1, 1, 0, 0], [0.9, 0.4, 0.2, 0.6], 0.5, 0.1).to_dict("list")
        {'called COVID': [50, 450], 'called non-COVID': [50, 450]}
    """
    r = rates(labels, probability, threshold)
    p = float(check_prevalence(prevalence))
    sick, healthy = patients * p, patients * (1 - p)
    return pd.DataFrame(
        {"called COVID": [round(sick * r["sensitivity"]), round(healthy * (1 - r["specificity"]))],
         "called non-COVID": [round(sick * (1 - r["sensitivity"])),
                              round(healthy * r["specificity"])]},
        index=["has COVID-19", "does not"])


def explorer_view(labels: Any, probability: Any, threshold: float, prevalence: float,
                  name: str = "model") -> Any:
    """Draw one view of the explorer: PPV/NPV curves and the expected confusion matrix."""
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4),
                                         gridspec_kw={"width_ratios": [1.6, 1]})
    curves = predictive_value_curves(labels, probability, threshold=threshold)
    plot_predictive_values({name: curves}, mark=prevalence, ax=left)
    matrix = expected_confusion(labels, probability, threshold, prevalence)
    right.imshow(matrix.to_numpy(), cmap="Blues")
    for (i, j), value in np.ndenumerate(matrix.to_numpy()):
        right.text(j, i, str(value), ha="center", va="center", fontsize=13,
                   color="white" if value > matrix.to_numpy().max() / 2 else "black")
    right.set_xticks([0, 1], matrix.columns)
    right.set_yticks([0, 1], matrix.index)
    ppv, npv = predictive_values(curves.attrs["sensitivity"], curves.attrs["specificity"],
                                 prevalence)
    right.set_title(f"per 1000 patients at {100 * prevalence:.0f}% prevalence\n"
                    f"threshold {threshold:.2f}: PPV {100 * float(ppv):.0f}%, "
                    f"NPV {100 * float(npv):.0f}%", fontsize="medium")
    figure.tight_layout()
    return figure


def show_prevalence_explorer(labels: Any, probability: Any, *, name: str = "model",
                             threshold: float = 0.5,
                             prevalence: float = CLINIC_PREVALENCE) -> Any:
    """Display the explorer: sliders with a live front end, else one static view.

    Returns:
        The ``ipywidgets`` widget, or the static matplotlib figure.
    """
    import matplotlib.pyplot as plt

    if not live_frontend():
        figure = explorer_view(labels, probability, threshold, prevalence, name)
        plt.show()
        return figure
    import ipywidgets as widgets
    from IPython.display import display

    prevalence_slider = widgets.FloatLogSlider(value=prevalence, base=10, min=-2, max=-0.01,
                                               step=0.01, description="prevalence")
    threshold_slider = widgets.FloatSlider(value=threshold, min=0.01, max=0.99, step=0.01,
                                           description="threshold")
    output = widgets.Output()

    def redraw(_change: Any = None) -> None:
        with output:
            output.clear_output(wait=True)
            explorer_view(labels, probability, threshold_slider.value,
                          prevalence_slider.value, name)
            plt.show()

    for control in (prevalence_slider, threshold_slider):
        control.observe(redraw, names="value")
    box = widgets.VBox([widgets.HBox([prevalence_slider, threshold_slider]), output])
    display(box)
    redraw()
    return box
