"""Tests for covidlib.utils.env, the one parser of on/off environment variables."""

from __future__ import annotations

import pytest

from covidlib.utils.env import FALSE_VALUES, TRUE_VALUES, env_flag

NAME = "COVIDLIB_TEST_FLAG"


@pytest.mark.parametrize("default", [True, False])
def test_unset_gives_the_default(monkeypatch: pytest.MonkeyPatch, default: bool) -> None:
    monkeypatch.delenv(NAME, raising=False)
    assert env_flag(NAME, default) is default


@pytest.mark.parametrize("value", ["1", "true", "YES", " on ", "True"])
def test_on_values(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(NAME, value)
    assert env_flag(NAME, default=False) is True


@pytest.mark.parametrize("value", ["0", "false", "No", " OFF", "", "  "])
def test_off_values_including_empty(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(NAME, value)
    assert env_flag(NAME, default=True) is False


@pytest.mark.parametrize("value", ["2", "maybe", "enabled", "-1"])
def test_other_values_fail_with_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(NAME, value)
    with pytest.raises(ValueError) as error:
        env_flag(NAME, default=True)
    message = str(error.value)
    assert NAME in message and repr(value) in message and "\n" not in message
    assert all(word in message for word in ("1", "0", "true", "false"))


def test_value_sets_are_disjoint() -> None:
    assert not FALSE_VALUES & TRUE_VALUES
