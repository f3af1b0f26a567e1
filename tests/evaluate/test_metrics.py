"""Tests of the paper's metrics against scikit-learn and hand counts."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, f1_score, precision_score

from covidlib.evaluate.metrics import METRIC_NAMES, binary_metrics, format_summary, summarize_folds


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_metrics_match_confusion_matrix(seed: int, threshold: float) -> None:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, 50)
    scores = rng.random(50)
    m = binary_metrics(truth, scores, threshold)
    tn, fp, fn, tp = confusion_matrix(truth, scores >= threshold, labels=[0, 1]).ravel()
    assert m["accuracy"] == pytest.approx((tp + tn) / 50)
    assert m["recall"] == pytest.approx(tp / (tp + fn))
    assert m["specificity"] == pytest.approx(tn / (tn + fp))
    assert m["precision"] == pytest.approx(precision_score(truth, scores >= threshold))
    assert m["f1"] == pytest.approx(f1_score(truth, scores >= threshold))
    assert tuple(m) == METRIC_NAMES


def test_threshold_is_inclusive_and_no_positive_prediction_gives_zero_precision() -> None:
    assert binary_metrics([1, 0], [0.5, 0.1])["recall"] == 1.0
    m = binary_metrics([1, 0], [0.1, 0.1])
    assert (m["precision"], m["recall"], m["specificity"]) == (0.0, 0.0, 1.0)


@pytest.mark.parametrize(
    ("truth", "scores", "message"),
    [([1, 0], [0.5], "one score per label"), ([], [], "at least one"),
     ([2, 0], [0.1, 0.2], "only 0 and 1"), ([1, 0], [1.5, 0.2], "probabilities"),
     ([1, 0], [float("nan"), 0.2], "probabilities")],
)
def test_bad_input_is_explained(truth: list[float], scores: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        binary_metrics(truth, scores)


def test_summary_mean_and_population_std() -> None:
    per_fold = {k: binary_metrics([1, 0, 1, 0], [0.9, 0.1, 0.9 if k else 0.1, 0.1])
                for k in range(3)}
    summary = summarize_folds(per_fold)
    accuracies = [per_fold[k]["accuracy"] for k in range(3)]
    assert summary["mean"]["accuracy"] == pytest.approx(np.mean(accuracies))
    assert summary["std"]["accuracy"] == pytest.approx(np.std(accuracies))
    assert list(summary["folds"]) == ["0", "1", "2"]
    assert "±" in format_summary(summary).splitlines()[-1]
    with pytest.raises(ValueError):
        summarize_folds({})
