"""Tests for ``covidlib letterbox`` (covidlib/cli/letterbox.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from covidlib.cli import main


@pytest.fixture()
def slice_png(tmp_path: Path) -> Path:
    path = tmp_path / "slice.png"
    Image.new("RGB", (60, 30), (200, 200, 200)).save(path)
    return path


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_letterbox_to_a_model_canvas(
    slice_png: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sub" / "boxed.png"
    assert main(["letterbox", str(slice_png), str(out), "--model", "ResNet18"]) == 0
    placement = json.loads(capsys.readouterr().out)
    assert placement["canvas_size"] == [349, 253] and placement["original_size"] == [60, 30]
    with Image.open(out) as image:
        assert image.size == (349, 253) and image.mode == "L"
    assert [p.name for p in out.parent.iterdir()] == ["boxed.png"]


def test_stretch_with_size(slice_png: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "s.png"
    assert (
        main(["letterbox", str(slice_png), str(out), "--size", "20x10", "--mode", "stretch"]) == 0
    )
    assert json.loads(capsys.readouterr().out)["box"] == [0, 0, 20, 10]


@pytest.mark.parametrize("target", ["self", "parent"])
def test_symlink_loop_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], target: str
) -> None:
    if target == "self":
        loop = tmp_path / "loop.png"
        loop.symlink_to(loop)
    else:  # a link to its own folder, followed by another link that points back at it
        (tmp_path / "a").symlink_to(tmp_path / "b")
        (tmp_path / "b").symlink_to(tmp_path / "a")
        loop = tmp_path / "a" / "x.png"
    assert main(["letterbox", str(loop), str(tmp_path / "out.png"), "--size", "10x10"]) == 2
    err = _one_error_line(capsys)
    assert "symbolic link loop" in err and str(loop) in err
    assert not (tmp_path / "out.png").exists()


def test_output_link_loop_is_a_one_line_error(
    slice_png: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    loop = tmp_path / "out.png"
    loop.symlink_to(loop)
    assert main(["letterbox", str(slice_png), str(loop), "--size", "10x10"]) == 2
    assert "OUT" in _one_error_line(capsys)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["{missing}", "{out}", "--size", "10x10"], "file does not exist"),
        (["{text}", "{out}", "--size", "10x10"], "not an image"),
        (["{folder}", "{out}", "--size", "10x10"], "is a folder"),
        (["{slice}", "{out}", "--size", "10by10"], "--size must look like WIDTHxHEIGHT"),
        (["{slice}", "{out}", "--model", "vgg16"], "unknown model 'vgg16'"),
        (["{slice}", "{out}", "--size", "10x10", "--fill", "300"], "--fill"),
        (["{slice}", "{slice}", "--size", "10x10"], "OUT must differ from IN"),
        (["{slice}", "{tmp}/out.unknown", "--size", "10x10"], "cannot write"),
        (["{slice}", "{text}/out.png", "--size", "10x10"], "cannot write"),
    ],
)
def test_bad_inputs_are_one_line_errors(
    slice_png: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    arguments: list[str],
    message: str,
) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    (tmp_path / "folder").mkdir()
    names = {
        "missing": tmp_path / "missing.png",
        "text": text,
        "folder": tmp_path / "folder",
        "slice": slice_png,
        "out": tmp_path / "out.png",
        "tmp": tmp_path,
    }
    argv = ["letterbox", *(a.format(**{k: str(v) for k, v in names.items()}) for a in arguments)]
    assert main(argv) == 2
    assert message in _one_error_line(capsys)
