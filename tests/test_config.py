"""Tests for covidlib.config: profiles and paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from covidlib.config import PROFILES, data_dir, get_profile, progress_enabled


def test_quick_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COVIDLIB_PROFILE", raising=False)
    assert get_profile().name == "quick"


def test_environment_selects_the_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COVIDLIB_PROFILE", " Full ")
    assert get_profile().name == "full"


def test_full_profile_has_the_papers_settings() -> None:
    full = get_profile("full")
    assert (full.epochs, full.batch_size, full.pretrained, full.folds) == (100, 32, True, 5)
    assert full.canvas_scale == 1.0


def test_quick_profile_is_cpu_sized() -> None:
    quick = get_profile("quick")
    assert quick.dataset == "phantom" and not quick.pretrained
    assert quick.epochs < 10 and quick.canvas_scale < 1.0


def test_unknown_profile_names_the_choices() -> None:
    with pytest.raises(ValueError, match=r"'fast'.*\['full', 'quick'\]"):
        get_profile("fast")


def test_overrides_return_a_copy() -> None:
    quick = get_profile("quick")
    changed = quick.with_overrides(epochs=7)
    assert changed.epochs == 7 and quick.epochs == PROFILES["quick"].epochs


def test_data_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("COVIDLIB_DATA", str(tmp_path / "elsewhere"))
    assert data_dir() == tmp_path / "elsewhere"


def test_data_dir_defaults_to_the_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COVIDLIB_DATA", raising=False)
    assert data_dir() == Path(__file__).resolve().parents[1] / "data"


@pytest.mark.parametrize(
    ("value", "ci", "expected"),
    [("0", None, False), ("false", None, False), ("1", "true", True), (None, "true", False),
     (None, None, True)],
)
def test_progress_switch(
    monkeypatch: pytest.MonkeyPatch, value: str | None, ci: str | None, expected: bool
) -> None:
    for name, setting in (("COVIDLIB_PROGRESS", value), ("CI", ci)):
        if setting is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, setting)
    assert progress_enabled() is expected
