"""`covidlib predict` and `covidlib cv` on damaged, edited or locked run folders.

One fold of SqueezeNet is trained once per module (20 phantom images, 1 epoch, CPU); each
test damages a copy of it. Errors must be one line on stderr, exit code 2, no traceback.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from covidlib.cli import main

REPO = Path(__file__).resolve().parents[2]
RUN = Path("phantom") / "squeezenet" / "quick"


def cv_args(root: Path, out: Path) -> list[str]:
    return ["cv", "--dataset", "phantom", "--root", str(root), "--model", "squeezenet",
            "--epochs", "1", "--profile", "quick", "--out", str(out), "--fold", "0"]


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def write_lock(path: Path, pid: int, age: float = 0.0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    now = time.time()
    path.write_text(json.dumps({"host": socket.gethostname(), "pid": pid, "started": now - age,
                                "heartbeat": now - age, "token": "theirs"}))


@pytest.fixture(scope="module")
def tiny_phantom(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from covidlib.data.phantom import generate_phantom

    return Path(generate_phantom(tmp_path_factory.mktemp("phantom"), n=20, seed=1))


@pytest.fixture(scope="module")
def trained(tiny_phantom: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """An out folder with fold 0 trained; a stale lock (dead pid) was in the way."""
    out = tmp_path_factory.mktemp("out")
    write_lock(out / RUN / "fold-0" / "train.lock", dead_pid())
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(cv_args(tiny_phantom, out)) == 0
    return out, printed.getvalue()


@pytest.fixture
def out(trained: tuple[Path, str], tmp_path: Path) -> Path:
    """A copy of the trained out folder (copied run folders must still verify)."""
    return Path(shutil.copytree(trained[0], tmp_path / "copy"))


def images(root: Path) -> list[str]:
    return [str(p) for p in sorted(root.glob("*/phantom_*.png"))[:2]]


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_stale_lock_was_taken_over_and_said(trained: tuple[Path, str]) -> None:
    out, printed = trained
    assert "fold 0: took over the stale lock of" in printed and "is not running" in printed
    files = out / RUN / "fold-0"
    assert not (files / "train.lock").exists()
    log = pd.read_csv(files / "epochs.csv")
    assert log.columns[0] == "epoch" and log.columns[-1] == "worker"
    assert log["worker"].tolist() == [f"{socket.gethostname()}:{os.getpid()}"]
    predictions = pd.read_csv(files / "predictions.csv")
    assert list(predictions.columns) == ["path", "label", "probability", "fold", "logit",
                                         "relpath"]
    assert all(not Path(p).is_absolute() for p in predictions["relpath"])


def test_predict_on_a_copied_run_folder(
    out: Path, tiny_phantom: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["predict", "--run", str(out / RUN), "--fold", "0", *images(tiny_phantom)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("# squeezenet, canvas ") and lines[0].endswith("folds 0")
    assert len(lines) == 3 and all(line.split("\t")[2] in {"COVID", "non-COVID"}
                                   for line in lines[1:])


def test_truncated_model_exits_2_and_cv_retrains_it(
    out: Path, tiny_phantom: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = out / RUN / "fold-0" / "model.pt"
    model.write_bytes(model.read_bytes()[:1000])
    assert main(["predict", "--run", str(out / RUN), "--fold", "0", *images(tiny_phantom)]) == 2
    assert "fold-0/model.pt fails its checksum" in one_line_error(capsys)
    assert main(["predict", "--run", str(out / RUN), *images(tiny_phantom)]) == 2
    assert "fold-0/model.pt" in one_line_error(capsys)

    assert main(cv_args(tiny_phantom, out)) == 0  # never "finished earlier, skipped"
    printed = capsys.readouterr().out
    assert "fold 0: fold-0/model.pt fails its checksum (1000 bytes" in printed
    assert "; retraining" in printed and ", skipped" not in printed
    assert len(pd.read_csv(out / RUN / "fold-0" / "epochs.csv")) == 1
    assert main(["predict", "--run", str(out / RUN), "--fold", "0", *images(tiny_phantom)]) == 0


@pytest.mark.parametrize(
    ("name", "content"),
    [("metrics.json", "garbage"), ("predictions.csv", ""), ("epochs.csv", "x\n")],
)
def test_damaged_fold_file_is_retrained_naming_it(
    out: Path, tiny_phantom: Path, capsys: pytest.CaptureFixture[str], name: str, content: str
) -> None:
    (out / RUN / "fold-0" / name).write_text(content)
    assert main(cv_args(tiny_phantom, out)) == 0
    printed = capsys.readouterr().out
    assert f"fold 0: fold-0/{name} fails its checksum" in printed and "retraining" in printed
    summary = json.loads((out / RUN / "summary.json").read_text())
    assert list(summary["folds"]) == ["0"]


@pytest.mark.parametrize(
    ("content", "message"),
    [("[1, 2]", "holds a JSON list"), ("garbage", "is not valid JSON"), ("", "is empty")],
)
def test_bad_config_json_is_one_line_naming_it(
    out: Path, tiny_phantom: Path, capsys: pytest.CaptureFixture[str], content: str,
    message: str,
) -> None:
    (out / RUN / "config.json").write_text(content)
    assert main(["predict", "--run", str(out / RUN), *images(tiny_phantom)]) == 2
    line = one_line_error(capsys)
    assert line.startswith("covidlib predict: error: ") and "config.json" in line
    assert message in line


def test_cv_with_bad_config_json_names_it(
    out: Path, tiny_phantom: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (out / RUN / "config.json").write_text("[1, 2]")
    assert main(cv_args(tiny_phantom, out)) == 2
    assert "config.json" in one_line_error(capsys)


@pytest.mark.parametrize("content", ["", "garbage\n"])
def test_cv_with_garbage_folds_file_names_it(
    out: Path, tiny_phantom: Path, capsys: pytest.CaptureFixture[str], content: str
) -> None:
    folds_file = next((out / "phantom").glob("folds-*.csv"))
    folds_file.write_text(content)
    assert main(cv_args(tiny_phantom, out)) == 2
    assert folds_file.name in one_line_error(capsys)


@pytest.mark.parametrize(
    ("key", "value"), [("canvas", [32, 32]), ("model", "shufflenet")],
)
def test_edited_config_is_refused_naming_the_key(
    out: Path, tiny_phantom: Path, capsys: pytest.CaptureFixture[str], key: str, value: object
) -> None:
    config_file = out / RUN / "config.json"
    config = json.loads(config_file.read_text())
    config[key] = value
    config_file.write_text(json.dumps(config))
    assert main(["predict", "--run", str(out / RUN), "--fold", "0", *images(tiny_phantom)]) == 2
    line = one_line_error(capsys)
    assert f"trained with {key} " in line and f"says {key} " in line


@pytest.mark.parametrize("threshold", ["2", "-1", "nan"])
def test_threshold_must_be_a_probability(
    out: Path, tiny_phantom: Path, capsys: pytest.CaptureFixture[str], threshold: str
) -> None:
    args = ["predict", "--run", str(out / RUN), "--threshold", threshold, *images(tiny_phantom)]
    assert main(args) == 2
    assert "threshold must be a probability between 0 and 1" in one_line_error(capsys)


def test_predict_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", "--run", str(tmp_path), "x.png"]) == 2
    assert "not a run folder" in one_line_error(capsys)


def test_live_lock_is_skipped_and_said(
    tiny_phantom: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = tmp_path / RUN / "fold-0" / "train.lock"
    write_lock(lock, os.getppid(), age=5.0)  # our parent process is alive
    assert main(cv_args(tiny_phantom, tmp_path)) == 0
    printed = capsys.readouterr().out
    assert f"fold 0: being trained by {socket.gethostname()}:{os.getppid()} since " in printed
    assert printed.count(", skipped") == 1
    assert not (tmp_path / RUN / "fold-0" / "epochs.csv").exists() and lock.exists()


def test_two_processes_train_a_fold_once(tiny_phantom: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    command = [sys.executable, "-m", "covidlib", *cv_args(tiny_phantom, tmp_path)]
    processes = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [process.communicate(timeout=600) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], results
    outputs = [stdout for stdout, _ in results]
    skipped = [out for out in outputs if "fold 0:" in out and ", skipped" in out]
    assert len(skipped) == 1, outputs
    assert ("being trained by" in skipped[0]) or ("finished earlier" in skipped[0])
    log = pd.read_csv(tmp_path / RUN / "fold-0" / "epochs.csv")
    assert log["epoch"].tolist() == [0]  # one row per epoch: trained once
    assert not (tmp_path / RUN / "fold-0" / "train.lock").exists()
