"""An interactive CAM explorer (ipywidgets) with a static fallback for the built book.

Choose a model run, a fold, an image and a CAM method; see the image, the map over it,
the model's COVID probability and, where the image has a lesion mask, the lesion outline.
A book build executes the chapter without anyone to click, and a widget there would be a
dead control in the HTML, so :func:`show_explorer` draws a static figure unless a live
front end is detected (Colab, a Jupyter server's kernel: ``JPY_SESSION_NAME``) or
``COVIDLIB_WIDGETS=1`` asks for the widget (``COVIDLIB_WIDGETS=0`` forces the figure).

Example:
    >>> import os
    >>> os.environ["COVIDLIB_WIDGETS"] = "0"
    >>> live_frontend()
    False
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ExplorerItem", "live_frontend", "mask_for", "show_explorer", "explorer_figure"]

ExplorerItem = tuple[str, str | None]  # (image path, lesion mask path or None)


def live_frontend() -> bool:
    """Whether a person can click widgets here (``COVIDLIB_WIDGETS`` overrides the guess)."""
    from covidlib.utils.env import env_flag

    guess = "google.colab" in sys.modules or bool(os.environ.get("JPY_SESSION_NAME"))
    return env_flag("COVIDLIB_WIDGETS", guess)


def mask_for(image: str | Path) -> str | None:
    """The lesion mask of an image, where one exists: the phantom's
    ``masks/<class>/<name>`` or a ``masks/<name>`` beside an ``images/`` folder.

    Example:
        >>> mask_for("/nonexistent/images/a.png") is None
        True
    """
    path = Path(image)
    for candidate in (path.parent.parent / "masks" / path.parent.name / path.name,
                      path.parent.parent / "masks" / path.name):
        if candidate.is_file() and candidate != path:
            return str(candidate)
    return None


def explorer_figure(
    run_dir: str | Path, image: str | Path, *, fold: int = 0, method: str = "gradcam",
    mask: str | Path | None = None, model: Any = None,
) -> Any:
    """One explorer view as a matplotlib figure: the image and its map, the lesion outlined."""
    from covidlib.data.images import load_grayscale
    from covidlib.explain.cam import explain_images, plot_cams

    cam = explain_images(run_dir, [image], fold, method=method, model=model)[0]
    outline = None if mask is None else np.asarray(load_grayscale(mask)) > 0
    return plot_cams([cam], titles=[f"{Path(image).name} ({method}, fold {fold})"],
                     masks=[outline])


def show_explorer(
    runs: Mapping[str, str | Path],
    images: Sequence[str | Path],
    *,
    methods: Sequence[str] = ("gradcam", "gradcam++", "hirescam", "eigencam"),
    folds: Sequence[int] = (0,),
) -> Any:
    """Display the explorer: a widget with a live front end, else the first view as a figure.

    Args:
        runs: label -> run folder.
        images: the image files to choose from (their masks are found by :func:`mask_for`).
        methods: CAM methods offered (the costly ones, such as Score-CAM, are best left out).
        folds: fold models offered.

    Returns:
        The ``ipywidgets`` widget, or the static matplotlib figure.
    """
    import matplotlib.pyplot as plt

    labels = list(runs)
    if not labels or not images:
        raise ValueError("show_explorer needs at least one run and one image")
    if not live_frontend():
        figure = explorer_figure(runs[labels[0]], images[0], fold=folds[0], method=methods[0],
                                 mask=mask_for(images[0]))
        plt.show()
        return figure
    import ipywidgets as widgets
    from IPython.display import display

    choose_run = widgets.Dropdown(options=labels, description="run")
    choose_fold = widgets.Dropdown(options=list(folds), description="fold")
    choose_image = widgets.Dropdown(options=[(Path(p).name, str(p)) for p in images],
                                    description="image")
    choose_method = widgets.Dropdown(options=list(methods), description="method")
    output = widgets.Output()

    def redraw(_change: Any = None) -> None:
        with output:
            output.clear_output(wait=True)
            explorer_figure(runs[choose_run.value], choose_image.value, fold=choose_fold.value,
                            method=choose_method.value, mask=mask_for(choose_image.value))
            plt.show()

    for control in (choose_run, choose_fold, choose_image, choose_method):
        control.observe(redraw, names="value")
    box = widgets.VBox([widgets.HBox([choose_run, choose_fold]),
                        widgets.HBox([choose_image, choose_method]), output])
    display(box)
    redraw()
    return box
