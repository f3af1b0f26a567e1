"""`covidlib pretrain`, and `covidlib cv --weights FILE --strategy ...` with its file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import covidlib.engine.pretrain as pretrain_module
from covidlib.cli import main
from covidlib.data.phantom import generate_phantom


def test_pretrain_then_cv_with_features(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pretrain_module, "PRETRAIN_SETTINGS",
                        {"quick": {"phantom_size": 30, "epochs": 1}})
    out = tmp_path / "sq.pt"
    assert main(["pretrain", "--model", "squeezenet", "--out", str(out), "--profile", "quick",
                 "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "source accuracy" in printed and str(out) in printed
    provenance = json.loads(out.with_suffix(".json").read_text())
    assert provenance["model"] == "squeezenet" and provenance["epochs"] == 1

    phantom = generate_phantom(tmp_path / "phantom", n=20, seed=0)
    args = ["cv", "--dataset", "phantom", "--root", str(phantom), "--model", "squeezenet",
            "--epochs", "1", "--profile", "quick", "--out", str(tmp_path / "runs"),
            "--fold", "0", "--weights", str(out), "--strategy", "features", "--device", "cpu"]
    assert main(args) == 0
    config = json.loads(next((tmp_path / "runs").rglob("config.json")).read_text())
    assert config["strategy"] == "features"
    assert config["weights_sha256"] == provenance["weights_sha256"]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--strategy", "features"], "--strategy features needs initial weights but --weights"),
        (["--strategy", "scratch", "--weights", "imagenet"],
         "--strategy scratch trains from random weights but --weights is 'imagenet'"),
    ],
)
def test_cv_refuses_contradictory_flags(flags: list[str], message: str, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    args = ["cv", "--model", "squeezenet", "--profile", "quick", "--out", str(tmp_path), *flags]
    assert main(args) == 2
    error = capsys.readouterr().err
    assert error.startswith("covidlib cv: error: ") and message in error
    assert error.count("\n") == 1


def test_pretrain_refuses_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pretrain", "--model", "squeezenet", "--out", str(tmp_path / "x.txt")]) == 2
    assert "name a .pt or .pth file" in capsys.readouterr().err
    assert main(["pretrain", "--model", "nosuchnet", "--out", str(tmp_path / "x.pt")]) == 2
    assert capsys.readouterr().err.startswith("covidlib pretrain: error: ")
