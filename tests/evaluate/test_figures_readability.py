"""Figures read at the book's page width: no text under 9 pt, every count visible on its cell."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402

from covidlib.evaluate.figures import MIN_FONT, plot_confusion_grid  # noqa: E402


def luminance(rgba: tuple[float, ...]) -> float:
    channels = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgba[:3]]
    return 0.2126 * channels[0] + 0.7152 * channels[1] + 0.0722 * channels[2]


@pytest.mark.parametrize("counts", [
    {"tn": 70.0, "fp": 5.0, "fn": 3.0, "tp": 72.0},   # a good model: two dark, two pale cells
    {"tn": 60.0, "fp": 65.0, "fn": 70.0, "tp": 72.0},  # close counts: pale cells above max / 2
    {"tn": 0.0, "fp": 0.0, "fn": 0.0, "tp": 0.0},      # all equal
])
def test_confusion_counts_contrast_with_their_cells(counts: dict[str, float]) -> None:
    figure = plot_confusion_grid([{"model": "demo", "confusion": counts}])
    ax = next(a for a in figure.axes if a.images)
    image = ax.images[0]
    matrix = np.asarray(image.get_array())
    texts = [t for t in ax.texts if t.get_text()]
    assert len(texts) == 4
    for text in texts:
        j, i = (int(round(v)) for v in text.get_position())
        cell = luminance(image.cmap(image.norm(matrix[i, j])))
        ink = luminance(to_rgba(text.get_color()))
        light, dark = max(cell, ink), min(cell, ink)
        assert (light + 0.05) / (dark + 0.05) >= 4.5, f"count {text.get_text()} is hard to read"
    sizes = [t.get_fontsize() for t in figure.findobj(matplotlib.text.Text) if t.get_text()]
    assert min(sizes) >= MIN_FONT
    plt.close(figure)
