"""`covidlib calibrate` and `covidlib card`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from covidlib.cli import main


def test_calibrate_json_has_the_headline_keys(synthetic_result, tmp_path: Path,
                                              capsys) -> None:
    folder = synthetic_result(tmp_path, logit=False)
    assert main(["calibrate", str(folder), "--coverage", "0.9", "0.95", "--json",
                 "--resamples", "200"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert {"ece", "ece_scaled", "brier", "temperature", "conformal"} <= set(result)
    assert 0 <= result["ece_scaled"] < result["ece"] <= 1
    assert result["temperature"] > 1.5
    assert [row["coverage"] for row in result["conformal"]] == [0.9, 0.95]
    assert all(0 <= row["referral_rate"] <= 1 for row in result["conformal"])


def test_card_writes_a_file(synthetic_result, tmp_path: Path) -> None:
    out = tmp_path / "card.md"
    assert main(["card", str(synthetic_result(tmp_path)), "--out", str(out), "--audit", "none",
                 "--resamples", "200"]) == 0
    assert out.read_text().startswith("# Model card: ResNet18 on COVID19-CT")


def _no_probability(tmp_path: Path, make) -> str:
    folder = make(tmp_path, logit=False)
    table = pd.read_csv(folder / "fold-1" / "predictions.csv")
    table["probability"] = np.nan
    table.to_csv(folder / "fold-1" / "predictions.csv", index=False)
    return str(folder)


@pytest.mark.parametrize(("argv", "message"), [
    (lambda tmp, make: ["calibrate", str(make(tmp)), "--coverage", "1.5"], "--coverage"),
    (lambda tmp, make: ["calibrate", str(make(tmp)), "--coverage", "0"], "--coverage"),
    (lambda tmp, make: ["calibrate", str(tmp / "nowhere")], "is not a folder"),
    (lambda tmp, make: ["calibrate", _no_probability(tmp, make)], "have no probability"),
    (lambda tmp, make: ["card", str(tmp)], "neither a run folder"),
])
def test_bad_input_is_one_line_with_exit_2(synthetic_result, tmp_path: Path, capsys, argv,
                                           message: str) -> None:
    assert main(argv(tmp_path, synthetic_result)) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and message in error and "Traceback" not in error

