"""Tests for ``covidlib datasets`` (covidlib/cli/datasets.py): output and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from covidlib.cli import main


def _covid19_ct(root: Path) -> Path:
    """Two COVID and three non-COVID images in the COVID19-CT layout."""
    for folder, count in (("CT_COVID", 2), ("CT_NonCOVID", 3)):
        (root / folder).mkdir(parents=True)
        for i in range(count):
            Image.new("L", (8 + i, 8)).save(root / folder / f"{i}.png")
    return root


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["datasets", "list"]) == 0
    out = capsys.readouterr().out
    assert "sars-cov-2-ct" in out and "1252/1229" in out
    assert main(["datasets", "list", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["dataset"] for r in records] == ["sars-cov-2-ct", "covid19-ct", "phantom",
                                               "phantom-patients", "folder"]


def test_index_json_csv_and_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _covid19_ct(tmp_path / "ct")
    (root / "CT_COVID" / "bad.png").write_text("no")
    csv = tmp_path / "out" / "images.csv"
    args = ["datasets", "index", "covid19-ct", "--root", str(root), "--json", "--csv", str(csv)]
    assert main(args) == 0  # an unreadable file is a problem, not an error
    summary = json.loads(capsys.readouterr().out)
    assert summary["dataset"] == "covid19-ct" and summary["n_images"] == 5
    assert summary["counts"] == {"covid": 2, "non_covid": 3}
    assert summary["size_min"] == [8, 8] and summary["n_groups"] == 5
    assert [Path(p["path"]).name for p in summary["problems"]] == ["bad.png"]
    assert len(pd.read_csv(csv)) == 5
    assert main(["datasets", "index", "covid19-ct", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "5 (2 COVID, 3 non-COVID)" in out and "bad.png" in out


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: tmp / "none", "does not exist"),
        (lambda tmp: _file(tmp / "file.png"), "is a file, not a folder"),
        (lambda tmp: _link_loop(tmp / "loop"), "link loop"),
        (lambda tmp: _covid19_ct(tmp / "ct"), "expected the folders COVID/, non-COVID/"),
    ],
)
def test_index_bad_roots_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make, message: str
) -> None:
    root = make(tmp_path)
    assert main(["datasets", "index", "sars-cov-2-ct", "--root", str(root)]) == 2
    err = _one_error_line(capsys)
    assert message in err and str(root) in err


def test_download_into_a_file_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = _file(tmp_path / "covid19-ct")
    assert main(["datasets", "download", "covid19-ct", "--root", str(target)]) == 2
    err = _one_error_line(capsys)
    assert "is a file" in err and str(target) in err


def _file(path: Path) -> Path:
    path.write_text("not a folder")
    return path


def _link_loop(path: Path) -> Path:
    path.symlink_to(path)
    return path
