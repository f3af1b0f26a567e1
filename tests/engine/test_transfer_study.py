"""The transfer study on a target dataset: one fixed test set, nested budgets, the table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from covidlib.cli import main
from covidlib.engine.transfer_study import budget_rows, fixed_test_split


def test_official_test_split_is_the_test_set() -> None:
    table = pd.DataFrame({"label": [0, 1] * 6, "split": ["train"] * 4 + ["val"] * 4 +
                          ["test"] * 4, "group": [str(i) for i in range(12)]})
    test, pool, how = fixed_test_split(table)
    assert test.tolist() == [8, 9, 10, 11] and "official" in how
    assert not set(test) & set(pool)


def test_random_test_split_keeps_groups_on_one_side() -> None:
    table = pd.DataFrame({"label": [0, 1] * 20, "group": [str(i // 4) for i in range(40)]})
    test, pool, _ = fixed_test_split(table, test_per_class=4, seed=2)
    groups = table["group"].to_numpy()
    assert not set(groups[test]) & set(groups[pool])
    assert (table["label"].to_numpy()[test] == 1).sum() >= 4


@pytest.mark.parametrize("budgets", [(1, 3), (2, None), (3,)])
def test_budgets_are_nested_and_balanced(budgets: tuple[int | None, ...]) -> None:
    labels = np.array([0, 1] * 10)
    rows = budget_rows(labels, np.arange(20), budgets, seed=1)
    sizes = [b for b in budgets if b is not None]
    for budget in sizes:
        assert (labels[rows[budget]] == 1).sum() == budget == (labels[rows[budget]] == 0).sum()
    if len(sizes) == 2:
        assert set(rows[sizes[0]]) <= set(rows[sizes[1]])
    with pytest.raises(ValueError, match="budget 11"):
        budget_rows(labels, np.arange(20), (11,))


def test_transfer_command_table_shape(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    from covidlib.data.phantom import generate_phantom
    from covidlib.engine.transfer import backbone_state
    from covidlib.models.factory import create_model

    root = generate_phantom(tmp_path / "phantom", n=20, seed=0, difficulty=0.2)
    weights = tmp_path / "source.pt"
    torch.save(backbone_state(create_model("squeezenet"), "squeezenet"), weights)
    out = tmp_path / "transfer.json"
    assert main(["transfer", "--model", "squeezenet", "--target", "phantom", "--root",
                 str(root), "--source", f"tiny={weights}", "--budgets", "2,all",
                 "--test-per-class", "3", "--profile", "quick", "--epochs", "1",
                 "--device", "cpu", "--out-json", str(out)]) == 0
    stored = json.loads(out.read_text())
    table = pd.DataFrame(stored["table"])
    assert len(table) == 6 and set(table["strategy"]) == {"scratch", "features", "finetune"}
    assert table["per_class"].tolist() == [2, "all"] * 3
    assert {"source", "target", "strategy", "per_class", "accuracy", "ci_low",
            "ci_high"} <= set(table)
    assert table.loc[table["strategy"] == "scratch", "vs_scratch"].isna().all()
    assert table.loc[table["strategy"] != "scratch", "vs_scratch"].notna().all()
    assert stored["test"]["images"] >= 6 and "commit" in stored
    assert main(["transfer", "--model", "squeezenet", "--budgets", "x"]) == 2
