"""Tests for ``covidlib models`` (covidlib/cli/models.py)."""

from __future__ import annotations

import json

import pytest

from covidlib.cli import main
from covidlib.models.registry import list_models

ALL = list_models()


def test_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in records] == ALL
    first = records[0]
    for key in (
        "name",
        "family",
        "default_input",
        "custom_input",
        "params_millions",
        "size_mb",
        "layers",
    ):
        assert key in first
    assert first["custom_input"] == [335, 255] and first["family"] == "SqueezeNet"


def test_text_and_unknown_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--names", "resnet18", "--compare"]) == 0
    out = capsys.readouterr().out
    assert "349x253" in out and "11.17" in out
    assert main(["models", "--names", "vgg16"]) == 2
    assert capsys.readouterr().err == (
        "covidlib models: error: unknown model 'vgg16'; `covidlib models` lists them.\n")
    assert main(["models", "--names", "densenet12"]) == 2
    assert "did you mean densenet121" in capsys.readouterr().err
