"""`covidlib reproduce --subset smoke` end to end: plan, run, and the report folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from covidlib.cli import main
from covidlib.grid.status import grid_status

REPO = Path(__file__).resolve().parents[2]


def test_smoke_reproduction_writes_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))
    out = tmp_path / "study"
    results = tmp_path / "results"
    assert main(["reproduce", "--out", str(out), "--subset", "smoke", "--device", "cpu",
                 "--store", str(results)]) == 0
    assert grid_status(out).counts() == {"done": 4, "running": 0, "failed": 0, "pending": 0,
                                         "total": 4}
    report = out / "report"
    table1 = pd.read_csv(report / "table1.csv")
    assert table1["name"].tolist() == ["squeezenet", "resnet18"]
    table2 = pd.read_csv(report / "table2-phantom.csv")
    assert sorted(table2["model"]) == ["resnet18", "squeezenet"]
    assert (table2["folds"] == 2).all()
    assert (report / "confusion-phantom.png").stat().st_size > 1000
    index = (report / "README.md").read_text()
    assert "Table 2 (phantom, 2 runs)" in index
    for model in ("squeezenet", "resnet18"):  # the explanation commands' figures
        assert (report / f"tsne-phantom-{model}.png").stat().st_size > 1000
        assert sorted(p.suffix for p in (report / f"gradcam-phantom-{model}").iterdir()) == [
            ".npy", ".npy", ".png", ".png"]
    assert f"report: {report}" in capsys.readouterr().err
    for model in ("squeezenet", "resnet18"):  # each finished run stored once, no machine paths
        stored = results / "phantom" / model / "custom-stratified-seed0"
        provenance = json.loads((stored / "provenance.json").read_text())
        assert provenance["experiment"]["epochs"] == 1 and provenance["data"]["n_images"] == 40
        assert {"hardware", "wall_time_s", "date", "commit"} <= provenance.keys()
        predictions = pd.read_csv(stored / "fold-0" / "predictions.csv")
        assert "path" not in predictions and {"relpath", "logit"} <= set(predictions)
        assert str(tmp_path) not in "".join(p.read_text() for p in stored.rglob("*.*"))
