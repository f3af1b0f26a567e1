"""The transfer chapter's helpers in covidlib.book: the split and the study on a tiny phantom."""

from __future__ import annotations

import pytest

from covidlib import book
from covidlib.config import get_profile


def test_transfer_split_shares_one_test_set_and_nests_budgets() -> None:
    labels = [0, 1] * 30
    test, train = book.transfer_split(labels, (5, 10, 20), test_per_class=8, seed=3)
    assert len(test) == 16 and sum(labels[i] for i in test) == 8
    assert set(train[5]) <= set(train[10]) <= set(train[20])
    assert not set(test) & set(train[20])
    again, _ = book.transfer_split(labels, (20,), test_per_class=8, seed=3)
    assert list(again) == list(test)  # the budgets do not move the test set
    with pytest.raises(ValueError, match="class 0 has 30 images"):
        book.transfer_split(labels, (25,), test_per_class=8)


def test_transfer_study_and_probe_on_a_tiny_phantom() -> None:
    tiny = get_profile("quick").with_overrides(phantom_size=24)
    study = book.transfer_study(budgets=(2, 3), test_per_class=3, canvas_scale=0.12, epochs=1,
                                profile=tiny, device="cpu", source_epochs=1,
                                source_phantom_size=24)
    results = study.results
    assert list(results["strategy"]) == ["scratch"] * 2 + ["features"] * 2 + ["finetune"] * 2
    inside = (results["low"] <= results["accuracy"]) & (results["accuracy"] <= results["high"])
    assert inside.all()
    assert results["auc"].between(0, 1).all(), "every fit's test-set ROC AUC is a number"
    assert study.source is not None and study.weights.endswith(".pt")
    probe = book.linear_probe(study, per_class=3)
    assert list(probe["features"]) == ["source task", "random"]
    assert probe["accuracy"].between(0, 1).all()
