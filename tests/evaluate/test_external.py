"""Tests for covidlib.evaluate.external: the drop from within-dataset to external accuracy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from covidlib.evaluate.external import accuracy_drop, per_image_correct


def test_per_image_correct_averages_the_fold_models_of_one_image() -> None:
    table = pd.DataFrame({"relpath": ["x", "x", "x", "y"], "label": [1, 1, 1, 0],
                          "probability": [0.9, 0.6, 0.1, 0.4], "fold": [0, 1, 2, 0]})
    assert per_image_correct(table).tolist() == pytest.approx([2 / 3, 1.0])


@pytest.mark.parametrize(("within", "external", "excludes_zero"),
                         [(0.95, 0.55, True), (0.80, 0.78, False)])
def test_accuracy_drop_interval(within: float, external: float, excludes_zero: bool) -> None:
    a = (np.arange(400) < within * 400).astype(float)
    b = (np.arange(300) < external * 300).astype(float)
    drop = accuracy_drop(a, b, n_resamples=400)
    assert drop["drop"] == pytest.approx(within - external)
    assert drop["within_low"] <= within <= drop["within_high"]
    assert drop["external_low"] <= external <= drop["external_high"]
    assert (drop["ci_low"] > 0) is excludes_zero
    assert drop["ci_low"] <= drop["drop"] <= drop["ci_high"]
