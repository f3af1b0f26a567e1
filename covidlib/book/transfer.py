"""The transfer chapter (``chapters/transfer.ipynb``): its figures; the study itself is
:mod:`covidlib.engine.budget_study`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes


def plot_learning_curve(results: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Test accuracy (with its interval) against labelled images per class, per strategy."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(6, 4))[1]
    for offset, (strategy, rows) in zip((-0.6, 0.0, 0.6), results.groupby(
            "strategy", sort=False), strict=False):
        x = rows["per_class"] + offset
        ax.errorbar(x, rows["accuracy"], yerr=[rows["accuracy"] - rows["low"],
                    rows["high"] - rows["accuracy"]], marker="o", capsize=3, label=strategy)
    ax.set_xlabel("labelled training images per class")
    ax.set_ylabel("test accuracy (95% bootstrap interval)")
    ax.set_xticks(sorted(results["per_class"].unique()))
    ax.legend(title="strategy")
    return ax


def plot_transfer_histories(histories: pd.DataFrame, per_class: int,
                            ax: Axes | None = None) -> Axes:
    """Mean training loss per epoch of each strategy at one label budget."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(6, 4))[1]
    chosen = histories[histories["per_class"] == per_class]
    for strategy, rows in chosen.groupby("strategy", sort=False):
        ax.plot(rows["epoch"] + 1, rows["train_loss"], marker="o", label=strategy)
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean training loss")
    ax.set_title(f"{per_class} labelled images per class")
    ax.legend(title="strategy")
    return ax
