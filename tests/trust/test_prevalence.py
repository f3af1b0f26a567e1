"""PPV and NPV against prevalence, operating points."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

from covidlib.trust import prevalence


@pytest.mark.parametrize("prev", [0.02, 0.05, 0.3, 0.5, 0.9])
def test_predictive_values_match_the_textbook(prev: float) -> None:
    # 1000 patients: sensitivity 0.85, specificity 0.95 -> counts, then PPV = TP / (TP + FP)
    se, sp, n = 0.85, 0.95, 1000
    tp, fn = se * prev * n, (1 - se) * prev * n
    tn, fp = sp * (1 - prev) * n, (1 - sp) * (1 - prev) * n
    ppv, npv = prevalence.predictive_values(se, sp, prev)
    assert float(ppv) == pytest.approx(tp / (tp + fp))
    assert float(npv) == pytest.approx(tn / (tn + fn))


def test_predictive_value_intervals_contain_the_estimate() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 400)
    p = expit(rng.normal(2 * labels - 1, 1))
    curves = prevalence.predictive_value_curves(labels, p)
    assert (curves["ppv_low"] <= curves["ppv"]).all()
    assert (curves["ppv"] <= curves["ppv_high"]).all()
    assert curves["ppv"].is_monotonic_increasing and curves["npv"].is_monotonic_decreasing
    point = prevalence.operating_point(labels, p, 0.9)
    assert point["sensitivity"] >= 0.9
    assert prevalence.rates(labels, p, point["threshold"] + 1e-9)["sensitivity"] < 0.9


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1, 1.5])
def test_prevalence_outside_the_unit_interval_is_refused(bad: float) -> None:
    with pytest.raises(ValueError, match=f"prevalence {bad} is outside"):
        prevalence.predictive_values(0.9, 0.9, bad)


@pytest.mark.parametrize(("live", "kind"), [("0", "Figure"), ("1", "VBox")])
def test_explorer_is_a_widget_only_with_a_live_front_end(live: str, kind: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.setenv("COVIDLIB_WIDGETS", live)
    shown = prevalence.show_prevalence_explorer([1, 1, 0, 0], [0.9, 0.4, 0.2, 0.6])
    assert type(shown).__name__ == kind
