"""Tests of `covidlib audit`: the JSON shape, fold leaks and the groups file for cv."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from covidlib.cli import main
from covidlib.cli.options import add_experiment_options, experiment_from_args
from covidlib.engine.folds import assign_folds


@pytest.fixture()
def audited_root(phantom_root: Path, tmp_path: Path) -> Path:
    """The 30-image phantom plus two byte-identical copies and one resized copy."""
    root = tmp_path / "phantom"
    shutil.copytree(phantom_root, root)
    first = sorted((root / "COVID").glob("*.png"))[0]
    for name in ("twin_a.png", "twin_b.png"):
        shutil.copy(first, root / "COVID" / name)
    from PIL import Image

    image = Image.open(first)
    image.resize((image.width // 2, image.height // 2)).save(root / "COVID" / "small.png")
    return root


def test_audit_json_shape(audited_root: Path, capsys: pytest.CaptureFixture[str],
                          tmp_path: Path) -> None:
    from covidlib.data.index import index_dataset

    images = index_dataset("phantom", audited_root).images
    folds = assign_folds(images, n_folds=3, seed=0)
    fold_file = tmp_path / "folds.csv"
    pd.DataFrame({"key": images["relpath"], "label": images["label"],
                  "fold": folds}).to_csv(fold_file, index=False)
    groups = tmp_path / "groups.csv"
    assert main(["audit", "phantom", "--root", str(audited_root), "--json", "--folds",
                 str(fold_file), "--groups-out", str(groups)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"identical", "near", "groups", "leaks"}
    assert len(result["identical"]) == 1 and len(result["identical"][0]) == 3
    assert all(isinstance(p, str) for p in result["identical"][0])
    n = len(images)
    assert len(result["near"]) >= min(100, n * (n - 1) // 2 - 3)
    assert all(set(pair) == {"a", "b", "distance"} for pair in result["near"])
    distances = [pair["distance"] for pair in result["near"]]
    assert distances == sorted(distances) and 0 <= distances[0] <= distances[-1] <= 1
    twins = set(result["identical"][0])
    assert not any({p["a"], p["b"]} <= twins for p in result["near"])  # under identical only
    assert any(Path(p["a"]).name == "small.png" or Path(p["b"]).name == "small.png"
               for p in result["near"][:5])
    assert isinstance(result["groups"], int) and 1 <= result["groups"] < n
    assert set(result["leaks"]) == {"0", "1", "2"}
    assert all(isinstance(v, int) and v >= 0 for v in result["leaks"].values())
    table = pd.read_csv(groups)
    assert list(table.columns) == ["path", "group"] and len(table) == n
    assert table["group"].nunique() == result["groups"]
    # the groups file drives `covidlib cv --split grouped --groups FILE`
    parser = argparse.ArgumentParser()
    add_experiment_options(parser)
    config, _ = experiment_from_args(parser.parse_args(
        ["--model", "squeezenet", "--split", "grouped", "--groups", str(groups)]))
    assert config.groups == str(groups) and config.groups_sha256 is not None
    with pytest.raises(ValueError, match="needs --split grouped"):
        experiment_from_args(parser.parse_args(["--model", "squeezenet", "--groups", "x"]))


def test_audit_text_and_errors(audited_root: Path, capsys: pytest.CaptureFixture[str],
                               tmp_path: Path) -> None:
    assert main(["audit", "phantom", "--root", str(audited_root)]) == 0
    out = capsys.readouterr().out
    assert "1 set(s) of byte-identical files (3 files)" in out and "pseudo-patient" in out
    bad = tmp_path / "folds.csv"
    bad.write_text("key,fold\nnot-there.png,0\n")
    assert main(["audit", "phantom", "--root", str(audited_root), "--folds", str(bad)]) == 2
    assert "has no fold for" in capsys.readouterr().err


def test_audit_of_real_covid19_ct(covid19_ct_root: Path, capsys: pytest.CaptureFixture[str]
                                  ) -> None:
    assert main(["audit", "covid19-ct", "--root", str(covid19_ct_root), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result["near"]) >= 100 and result["groups"] > 100
