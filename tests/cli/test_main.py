"""Tests for the top-level ``covidlib`` command line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from covidlib.cli import COMMAND_MODULES, build_parser, main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert "covidlib 0.1.0" in capsys.readouterr().out


def test_no_command_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: covidlib" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["datasets", "phantom", "letterbox", "models", "cv", "predict",
                                     "calibrate", "card", "sanity", "transfer"])
def test_every_command_is_registered(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        build_parser().parse_args([command, "--help"])
    assert stop.value.code == 0, f"{command!r} is not registered by any of {COMMAND_MODULES}"
    assert f"covidlib {command}" in capsys.readouterr().out


def test_module_entry_point_runs() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "covidlib", "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and "COMMAND" in done.stdout


def test_library_errors_become_one_line(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "CT_COVID").mkdir()
    (tmp_path / "CT_NonCOVID").mkdir()
    (tmp_path / "COVID-CT-MetaInfo.xlsx").write_text("not a spreadsheet")
    code = main(["datasets", "index", "covid19-ct", "--root", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err and "COVID-CT-MetaInfo.xlsx" in err


def _handlers(parser) -> list[str]:
    import argparse

    func = parser.get_default("func")
    found = [func.__name__] if func is not None else []
    for action in parser._actions:  # argparse keeps sub-parsers here only
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += _handlers(sub)
    return found


def test_command_handlers_are_named_one_way() -> None:
    names = _handlers(build_parser())
    assert len(names) >= len(COMMAND_MODULES)
    assert all(name.endswith("_command") for name in names), sorted(names)


def test_unknown_name_is_one_line_with_close_matches(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--names", "resnet19"]) == 2
    assert capsys.readouterr().err == (
        "covidlib models: error: unknown model 'resnet19': did you mean resnet18, resnet101 or "
        "resnext101?\n")
