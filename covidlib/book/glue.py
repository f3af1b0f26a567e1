"""Numbers into the prose of every chapter (MyST-NB ``{glue:text}`` roles).

:func:`glue` is used by most chapters; :func:`dataset_facts` by ``datasets`` and ``letterbox``:
numbers measured once on the real datasets, kept in ``covidlib/tables/dataset_facts.csv``.
"""

from __future__ import annotations

import csv
from importlib.resources import files
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:

    pass


DATASET_FACTS_FILE = "dataset_facts.csv"


def glue(name: str, value: Any, display: bool = False) -> None:
    """Store ``value`` for the prose's ``{glue:text}`name``` roles (MyST-NB's ``glue``).

    NumPy scalars become Python numbers first, so that a role's format spec
    (``{glue:text}`name:.2f```) can read them back. Without MyST-NB (Colab) or outside a
    notebook it only prints the value when ``display``.

    Example:
        >>> import numpy as np
        >>> glue("aspect", np.float64(1.25), display=True)
        1.25
    """
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        value = value.item()
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        if display:
            print(value)
        return
    from IPython import get_ipython

    if get_ipython() is None:  # a plain Python session: nothing would receive the data
        if display:
            print(value)
        return
    myst_glue(name, value, display=display)


def dataset_facts(dataset: str | None = None) -> dict[str, dict[str, int | float]]:
    """Numbers measured once on the real datasets (``covidlib/tables/dataset_facts.csv``).

    The book builds on the phantom, where the real copies may be absent, so the prose cites
    these; ``tests/test_chapters_numbers.py`` recomputes them from a real copy.

    Args:
        dataset: one registry name, or ``None`` for all.

    Returns:
        dataset -> fact -> value (int where the value is whole).

    Raises:
        ValueError: for a dataset the table does not cover.

    Example:
        >>> facts = dataset_facts("covid19-ct")["covid19-ct"]
        >>> facts["width_min"], facts["height_min"], facts["width_max"], facts["height_max"]
        (53, 26, 1408, 1114)
    """
    text = (files("covidlib") / "tables" / DATASET_FACTS_FILE).read_text(encoding="utf-8")
    facts: dict[str, dict[str, int | float]] = {}
    for row in csv.DictReader(text.splitlines()):
        value = float(row["value"])
        facts.setdefault(row["dataset"], {})[row["fact"]] = (
            int(value) if value.is_integer() and "." not in row["value"] else value
        )
    if dataset is not None:
        if dataset not in facts:
            raise ValueError(
                f"{DATASET_FACTS_FILE} has no facts for {dataset!r}; it covers {sorted(facts)}."
            )
        return {dataset: facts[dataset]}
    return facts


def glue_dataset_facts(dataset: str) -> dict[str, int | float]:
    """Glue every fact of ``dataset`` as ``<dataset>_<fact>`` (``-`` becomes ``_``).

    Example:
        >>> glue_dataset_facts("covid19-ct")["covid19_ct_width_max"]
        1408
    """
    prefix = dataset.replace("-", "_")
    glued = {f"{prefix}_{fact}": value for fact, value in dataset_facts(dataset)[dataset].items()}
    for key, value in glued.items():
        glue(key, value)
    return glued
