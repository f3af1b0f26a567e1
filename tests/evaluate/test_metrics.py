"""The paper's metrics against scikit-learn, the paper's equations and hand counts."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from covidlib.evaluate.metrics import (
    COUNT_NAMES,
    METRIC_NAMES,
    binary_metrics,
    confusion_counts,
    format_summary,
    sensitivity_at_specificity,
    summarize_folds,
)


def paper_equations(tp: int, tn: int, fp: int, fn: int) -> dict[str, float]:
    """Equations 1-5 of the paper, written out."""
    precision = tp / (tp + fp)
    recall = tp / (tp + fn)
    return {
        "accuracy": (tp + tn) / (tp + tn + fp + fn),
        "precision": precision,
        "recall": recall,
        "specificity": tn / (tn + fp),
        "f1": 2 * precision * recall / (precision + recall),
    }


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_metrics_match_scikit_learn_and_the_paper(seed: int, threshold: float) -> None:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, 50)
    scores = rng.random(50)
    predicted = scores >= threshold
    m = binary_metrics(truth, scores, threshold)
    tn, fp, fn, tp = confusion_matrix(truth, predicted, labels=[0, 1]).ravel()
    assert (m["tp"], m["tn"], m["fp"], m["fn"]) == (tp, tn, fp, fn)
    for name, value in paper_equations(tp, tn, fp, fn).items():
        assert m[name] == pytest.approx(value), name
    assert m["accuracy"] == pytest.approx(accuracy_score(truth, predicted))
    assert m["precision"] == pytest.approx(precision_score(truth, predicted))
    assert m["recall"] == pytest.approx(recall_score(truth, predicted))
    assert m["specificity"] == pytest.approx(recall_score(truth, predicted, pos_label=0))
    assert m["f1"] == pytest.approx(f1_score(truth, predicted))
    assert m["roc_auc"] == pytest.approx(roc_auc_score(truth, scores))
    assert m["average_precision"] == pytest.approx(average_precision_score(truth, scores))
    assert tuple(m)[:5] == METRIC_NAMES


def test_threshold_is_inclusive_and_validated() -> None:
    assert binary_metrics([1, 0], [0.5, 0.1])["recall"] == 1.0
    with pytest.raises(ValueError, match="threshold"):
        binary_metrics([1, 0], [0.5, 0.1], threshold=2)


def test_all_predicted_positive() -> None:
    """Hand-made matrix: every image called COVID (TP 3, FP 2): specificity 0, recall 1."""
    m = binary_metrics([1, 1, 1, 0, 0], [0.9] * 5)
    assert (m["tp"], m["tn"], m["fp"], m["fn"]) == (3, 0, 2, 0)
    assert (m["accuracy"], m["precision"], m["recall"], m["specificity"]) == (0.6, 0.6, 1.0, 0.0)
    assert m["f1"] == pytest.approx(0.75)


def test_all_predicted_negative_warns_and_gives_zero_precision() -> None:
    with pytest.warns(UndefinedMetricWarning, match="precision"):
        m = binary_metrics([1, 0, 0], [0.1, 0.1, 0.2])
    assert (m["precision"], m["recall"], m["specificity"], m["f1"]) == (0.0, 0.0, 1.0, 0.0)


def test_one_class_absent_gives_defined_values_and_warnings() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = binary_metrics([0, 0, 0, 0], [0.1, 0.2, 0.7, 0.3])
    messages = " ".join(str(w.message) for w in caught)
    assert "recall" in messages and "ROC-AUC" in messages
    assert m["accuracy"] == 0.75 and m["specificity"] == 0.75
    assert m["recall"] == 0.0 and np.isnan(m["roc_auc"])
    assert m["sensitivity_at_95_specificity"] == 0.0


def test_sensitivity_at_fixed_specificity_by_hand() -> None:
    truth = [0] * 20 + [1] * 10
    # non-COVID scores 0.00..0.19 (0.19 is the top one), COVID 0.15..0.60
    scores = [i / 100 for i in range(20)] + [0.15, 0.18, 0.2, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6]
    # 95% specificity allows 1 false positive of 20: threshold just above 0.18 -> 8 of 10 found
    assert sensitivity_at_specificity(truth, scores, 0.95) == pytest.approx(0.8)
    assert sensitivity_at_specificity(truth, scores, 1.0) == pytest.approx(0.8)
    assert sensitivity_at_specificity(truth, scores, 0.5) == pytest.approx(1.0)


def test_confusion_counts() -> None:
    assert confusion_counts([1, 1, 0], [1, 1, 1]) == {"tp": 2, "tn": 0, "fp": 1, "fn": 0}


@pytest.mark.parametrize(
    ("truth", "scores", "message"),
    [([1, 0], [0.5], "one score per label"), ([], [], "at least one"),
     ([2, 0], [0.1, 0.2], "only 0 and 1"), ([1, 0], [1.5, 0.2], "probabilities"),
     ([1, 0], [float("nan"), 0.2], "probabilities")],
)
def test_bad_input_is_explained(truth: list[float], scores: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        binary_metrics(truth, scores)


def test_summary_mean_sample_std_interval_and_mean_confusion() -> None:
    per_fold = {k: binary_metrics([1, 0, 1, 0], [0.9, 0.1, 0.9 if k else 0.1, 0.1])
                for k in range(3)}
    summary = summarize_folds(per_fold)
    accuracies = [per_fold[k]["accuracy"] for k in range(3)]
    assert summary["mean"]["accuracy"] == pytest.approx(np.mean(accuracies))
    assert summary["std"]["accuracy"] == pytest.approx(np.std(accuracies, ddof=1))
    assert summary["std_ddof"] == 1 and summary["n_folds"] == 3
    assert summary["ci_low"]["accuracy"] <= summary["mean"]["accuracy"]
    assert summary["ci_high"]["accuracy"] == 1.0  # clipped to a fraction
    # average confusion counts (the paper's Figures 9 and 10): TP 1, 2, 2 -> 5/3
    assert summary["mean"]["tp"] == pytest.approx(5 / 3)
    assert summary["ci_high"]["tp"] > 2 and set(COUNT_NAMES) <= set(summary["mean"])
    assert list(summary["folds"]) == ["0", "1", "2"]
    table = format_summary(summary)
    assert "±" in table.splitlines()[-1] and "tp" not in table
    with pytest.raises(ValueError):
        summarize_folds({})


def test_summary_of_one_fold_has_zero_std_and_no_nan() -> None:
    summary = summarize_folds({0: binary_metrics([1, 0], [0.9, 0.1])})
    assert summary["std"]["accuracy"] == 0.0
    assert (summary["ci_low"]["accuracy"], summary["ci_high"]["accuracy"]) == (1.0, 1.0)
