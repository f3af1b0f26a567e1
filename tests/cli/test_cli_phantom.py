"""Tests for ``covidlib phantom`` (covidlib/cli/phantom.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from covidlib.cli import main


def folder_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_twice_gives_identical_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    assert main(["phantom", "--n", "8", "--out", str(first), "--seed", "2"]) == 0
    assert "written" in capsys.readouterr().out
    assert main(["phantom", "--n", "8", "--out", str(second), "--seed", "2"]) == 0
    assert folder_bytes(first) == folder_bytes(second)
    assert main(["phantom", "--n", "8", "--out", str(first), "--seed", "2"]) == 0
    output = capsys.readouterr().out
    assert "reused" in output and "COVID: 4" in output and "non-COVID: 4" in output


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--n", "1"], "--n must be at least 2"),
        (["--difficulty", "1.5"], "--difficulty must be between 0 and 1"),
        (["--difficulty", "-0.5"], "--difficulty must be between 0 and 1"),
        (["--seed", "-3"], "--seed"),
    ],
)
def test_bad_arguments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], message: str
) -> None:
    assert main(["phantom", "--out", str(tmp_path / "x"), *arguments]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1
    assert not (tmp_path / "x").exists()


def test_stale_folder_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["phantom", "--n", "2", "--out", str(tmp_path / "p")]) == 0
    assert main(["phantom", "--n", "4", "--out", str(tmp_path / "p")]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["phantom", "--n", "4", "--out", str(tmp_path / "p"), "--overwrite"]) == 0
