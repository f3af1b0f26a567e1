"""Tests of the run-folder layout: checksums, one-line read errors and fold locks (no training)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from covidlib.engine import runs as runs_module
from covidlib.engine.checkpoint import load_checkpoint
from covidlib.engine.locks import FoldLock, LockInfo
from covidlib.engine.readers import RunFolderError, read_csv, read_json
from covidlib.engine.runs import FoldFiles, RunFolder

CONFIG = {"model": "squeezenet", "canvas": [64, 48], "seed": 0}


def finished_fold(run: RunFolder, fold: int = 0, model_bytes: int = 2000) -> FoldFiles:
    """Write a finished fold by hand (a fake state dict of ``model_bytes`` floats)."""
    import torch

    files = run.fold(fold)
    files.begin(CONFIG)
    predictions = pd.DataFrame({"path": ["a.png", "b.png"], "label": [0, 1],
                                "probability": [0.2, 0.9], "fold": fold})
    history = [{"epoch": 0, "train_loss": 0.7, "lr": 3e-4, "seconds": 1.0, "worker": "h:1"}]
    files.write_results({"w": torch.zeros(model_bytes)}, predictions,
                        {"fold": fold, "accuracy": 1.0}, history)
    return files


@pytest.fixture
def run(tmp_path: Path) -> RunFolder:
    folder = RunFolder(tmp_path / "run")
    folder.write_config(CONFIG)
    return folder


# The layout that readers' scripts and stored results rely on: these names never change.
KEPT_NAMES = {
    "config_file": "config.json", "folds_file": "folds.csv", "summary_file": "summary.json",
    "predictions_file": "predictions.csv", "provenance_file": "provenance.json",
}
KEPT_FOLD_NAMES = {
    "model": "model.pt", "checkpoint": "checkpoint.pt", "epochs": "epochs.csv",
    "predictions": "predictions.csv", "metrics": "metrics.json", "manifest": "files.json",
}


def test_file_names_are_todays(run: RunFolder) -> None:
    files = run.fold(3)
    assert files.dir == run.path / "fold-3"
    assert {key: getattr(run, key).name for key in KEPT_NAMES} == KEPT_NAMES
    assert {key: getattr(files, key).name for key in KEPT_FOLD_NAMES} == KEPT_FOLD_NAMES


def _literals(path: Path) -> list[tuple[int, str]]:
    """String constants of a module, its docstrings left out."""
    import ast

    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value) for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in docstrings]


def test_no_module_but_the_owner_spells_a_run_folder_file_name(tmp_path: Path) -> None:
    run, stored = RunFolder(tmp_path), RunFolder(tmp_path)
    files = run.fold(0)
    names = {path.name for path in (
        run.config_file, run.folds_file, run.summary_file, run.predictions_file,
        run.skipped_file, run.lock_file, stored.provenance_file, stored.report_file,
        files.model, files.checkpoint, files.best, files.epochs, files.predictions,
        files.metrics, files.manifest, files.lock)}
    package = Path(runs_module.__file__).resolve().parents[1]
    owner = Path(runs_module.__file__).resolve()
    spelled = [
        f"{path.relative_to(package.parent)}:{line}: {text!r}"
        for path in sorted(package.rglob("*.py")) if path.resolve() != owner
        for line, text in _literals(path) if text.rsplit("/", 1)[-1] in names
    ]
    assert not spelled, "ask RunFolder / FoldFiles for these names:\n" + "\n".join(spelled)


def test_a_stored_result_reads_its_report_under_the_old_name_too(tmp_path: Path) -> None:
    stored = RunFolder(tmp_path / "covid19-ct" / "resnet18" / "seed0")
    stored.write_json(stored.summary_file, {"metrics": {"accuracy": {"mean": 0.5}}})
    assert stored.read_report()["metrics"]["accuracy"]["mean"] == 0.5
    stored.write_json(stored.report_file, {"metrics": {"accuracy": {"mean": 0.75}}})
    assert stored.read_report()["metrics"]["accuracy"]["mean"] == 0.75
    assert not stored.is_stored and RunFolder.stored_under(tmp_path) == []
    stored.write_json(stored.provenance_file, {"dataset": "covid19-ct", "auc": float("nan")})
    assert stored.is_stored and stored.read_provenance() == {"dataset": "covid19-ct", "auc": None}
    assert [found.path for found in RunFolder.stored_under(tmp_path)] == [stored.path]


def test_a_finished_fold_is_recorded_with_relative_names(run: RunFolder) -> None:
    files = finished_fold(run)
    manifest = json.loads(files.manifest.read_text())
    assert sorted(manifest["files"]) == ["epochs.csv", "metrics.json", "model.pt",
                                         "predictions.csv"]
    assert manifest["files"]["model.pt"]["size"] == files.model.stat().st_size
    assert manifest["run"]["model"] == "squeezenet" and manifest["run"]["canvas"] == [64, 48]
    assert run.finished_folds() == run.finished_folds(full=True) == [0]
    assert list(pd.read_csv(files.epochs).columns) == ["epoch", "train_loss", "lr", "seconds",
                                                       "worker"]


def test_truncated_model_is_never_finished(run: RunFolder) -> None:
    files = finished_fold(run)
    files.model.write_bytes(files.model.read_bytes()[:100])
    assert run.finished_folds() == []
    assert files.problems() == [
        f"fold-0/model.pt fails its checksum (100 bytes, "
        f"{json.loads(files.manifest.read_text())['files']['model.pt']['size']} recorded)"]
    with pytest.raises(RunFolderError, match=r"fold-0/model\.pt fails its checksum"):
        files.verify(files.model)


def test_same_size_damage_is_caught_by_the_full_check(run: RunFolder) -> None:
    files = finished_fold(run, model_bytes=400_000)  # above the size-only limit of listings
    data = bytearray(files.model.read_bytes())
    data[-10] ^= 0xFF
    files.model.write_bytes(bytes(data))
    assert run.finished_folds() == [0]  # listings check the size of large files only
    assert run.finished_folds(full=True) == []
    with pytest.raises(RunFolderError, match="sha256 differs"):
        files.verify(files.model)


def test_small_files_are_hashed_even_in_listings(run: RunFolder) -> None:
    files = finished_fold(run)
    text = files.metrics.read_text()
    files.metrics.write_text(text.replace("1.0", "0.0"))  # same size, other value
    assert run.finished_folds() == []
    assert files.discard_broken() == [
        "fold-0/metrics.json fails its checksum (its sha256 differs from the recorded one)"]
    assert not files.model.exists() and not files.metrics.exists()


def test_a_copied_run_folder_still_verifies(run: RunFolder, tmp_path: Path) -> None:
    finished_fold(run, 0)
    finished_fold(run, 2)
    copy = RunFolder(shutil.copytree(run.path, tmp_path / "elsewhere" / "copy"))
    shutil.rmtree(run.path)
    assert copy.finished_folds(full=True) == [0, 2]
    assert copy.fold(2).read_metrics() == {"accuracy": 1.0}


def test_interrupted_rewrite_still_verifies(
    run: RunFolder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash after the manifest update but before the rename keeps a valid old file."""
    files = run.fold(0)
    with files.recording(files.checkpoint) as (tmp,):
        tmp.write_bytes(b"epoch 1")
    real_replace, calls = os.replace, []

    def crash_on_second(src: str, dst: str) -> None:
        calls.append(dst)
        if len(calls) == 2:  # the manifest went through, the checkpoint rename dies
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash_on_second)
    with pytest.raises(KeyboardInterrupt), files.recording(files.checkpoint) as (tmp,):
        tmp.write_bytes(b"epoch 2!")
    monkeypatch.undo()
    assert files.checkpoint.read_bytes() == b"epoch 1"
    assert json.loads(files.manifest.read_text())["files"]["checkpoint.pt"]["size"] == 8
    files.verify(files.checkpoint)  # matches the previous digest kept in the entry
    assert files.problems() == []


def test_damaged_checkpoint_refuses_to_load(run: RunFolder) -> None:
    files = run.fold(0)
    with files.recording(files.checkpoint) as (tmp,):
        tmp.write_bytes(b"x" * 50)
    files.checkpoint.write_bytes(b"y" * 50)
    with pytest.raises(RunFolderError, match=r"fold-0/checkpoint\.pt fails its checksum.*"
                                             r"delete it to restart this fold"):
        load_checkpoint(files.checkpoint)
    assert files.discard_broken() and not files.checkpoint.exists()
    assert not files.manifest.exists()  # a broken checkpoint restarts the fold


@pytest.mark.parametrize(
    ("content", "message"),
    [("[1, 2]", "holds a JSON list, not a JSON object"), ("garbage{", "is not valid JSON"),
     ("", "is empty"), ("  \n", "is empty")],
)
def test_bad_config_json_names_the_file(run: RunFolder, content: str, message: str) -> None:
    run.config_file.write_text(content)
    with pytest.raises(RunFolderError) as caught:
        run.read_config()
    text = str(caught.value)
    assert message in text and str(run.config_file) in text and "\n" not in text
    assert "delete the run folder" in text


def test_binary_config_json(run: RunFolder) -> None:
    run.config_file.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(RunFolderError, match="config.json is not a text file"):
        run.read_config()


def test_missing_config_is_not_a_run_folder(tmp_path: Path) -> None:
    with pytest.raises(RunFolderError, match="is not a run folder"):
        RunFolder(tmp_path).read_config()


def test_garbage_metrics_json_names_the_file(run: RunFolder) -> None:
    files = finished_fold(run)
    files.metrics.write_text("nonsense")
    files.record(files.metrics)  # even when recorded, the content must parse
    with pytest.raises(RunFolderError, match=r"fold-0/metrics\.json is not valid JSON.*delete"):
        files.read_metrics()
    files.metrics.write_text('{"fold": 0, "accuracy": "high"}')
    files.record(files.metrics)
    with pytest.raises(RunFolderError, match=r"metrics\.json holds no metric values"):
        files.read_metrics()


@pytest.mark.parametrize(
    ("content", "message"),
    [("", "is empty"), ("path,label,probability,fold\n", "has no rows"),
     ("garbage\n1\n", r"lacks the column\(s\) \['path', 'label', 'probability', 'fold'\]"),
     (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "is not a readable CSV file")],
)
def test_bad_predictions_csv_names_the_file(run: RunFolder, content: str | bytes,
                                            message: str) -> None:
    files = finished_fold(run)
    if isinstance(content, bytes):
        files.predictions.write_bytes(content)
    else:
        files.predictions.write_text(content)
    files.record(files.predictions)
    with pytest.raises(RunFolderError, match=message) as caught:
        files.read_predictions()
    assert "fold-0/predictions.csv" in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("content", ["", "garbage", "key;label\n\x00\x01"])
def test_garbage_folds_file_names_the_file(run: RunFolder, content: str) -> None:
    run.folds_file.write_text(content)
    with pytest.raises(RunFolderError, match=r"folds\.csv .*delete it"):
        run.read_folds()


def test_read_helpers_check_types_and_columns(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text('{"a": 1}')
    assert read_json(path) == {"a": 1}
    with pytest.raises(RunFolderError, match="holds a JSON object, not a JSON list"):
        read_json(path, expect=list)
    with pytest.raises(RunFolderError, match="is missing; do this"):
        read_json(tmp_path / "none.json", hint="do this")
    csv = tmp_path / "t.csv"
    csv.write_text("key,fold\n")
    assert read_csv(csv, ["key"], allow_empty=True).empty


def test_a_missing_result_is_not_finished(run: RunFolder) -> None:
    files = finished_fold(run)
    assert "fold" in files.read_predictions().columns
    files.predictions.unlink()
    assert run.finished_folds() == [] and files.has_results()


# -- locks ------------------------------------------------------------------------------------


def write_lock(path: Path, host: str, pid: int, age: float) -> None:
    now = time.time()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"host": host, "pid": pid, "started": now - age - 5,
                                "heartbeat": now - age, "token": "theirs"}))


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    path = tmp_path / "fold-0" / "train.lock"
    first = FoldLock(path)
    assert first.acquire()
    info = LockInfo.parse(path.read_bytes())
    assert info is not None and info.pid == os.getpid() and info.host == socket.gethostname()
    second = FoldLock(path)
    assert not second.acquire()
    assert second.holder is not None and second.holder.token == info.token
    assert "since" in second.holder.describe()
    first.release()
    assert not path.exists()
    assert second.acquire()
    second.release()


def test_lock_is_released_when_training_fails(tmp_path: Path) -> None:
    path = tmp_path / "train.lock"
    with pytest.raises(RuntimeError), FoldLock(path):
        raise RuntimeError("training failed")
    assert not path.exists()


def test_live_lock_of_another_process_is_respected(tmp_path: Path) -> None:
    path = tmp_path / "train.lock"
    write_lock(path, socket.gethostname(), os.getppid(), age=1.0)  # the parent lives
    lock = FoldLock(path)
    assert not lock.acquire() and lock.took_over is None
    assert lock.holder is not None and lock.holder.pid == os.getppid()
    lock.release()
    assert path.exists()  # not ours to delete


@pytest.mark.parametrize(
    ("host", "age", "reason"),
    [(None, 1.0, "is not running"), ("other-host", 3600.0, "no heartbeat for")],
)
def test_stale_lock_is_taken_over(tmp_path: Path, host: str | None, age: float,
                                  reason: str) -> None:
    path = tmp_path / "train.lock"
    write_lock(path, host or socket.gethostname(), dead_pid() if host is None else 1, age)
    with FoldLock(path, stale_after=600) as lock:
        assert lock.acquired and lock.took_over is not None
        assert reason in lock.took_over_message() and "took over the stale lock" in \
            lock.took_over_message()
        assert LockInfo.parse(path.read_bytes()).pid == os.getpid()  # type: ignore[union-attr]
    assert not path.exists()


def test_stale_limit_comes_from_the_environment(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "train.lock"
    write_lock(path, "other-host", 1, age=30.0)
    assert not FoldLock(path).acquire()  # 30 s is fresh under the 10 minute default
    monkeypatch.setenv("COVIDLIB_LOCK_STALE_SECONDS", "10")
    assert FoldLock(path).acquire()
    monkeypatch.setenv("COVIDLIB_LOCK_STALE_SECONDS", "soon")
    with pytest.raises(ValueError, match="COVIDLIB_LOCK_STALE_SECONDS='soon'"):
        FoldLock(path)


def test_waiting_lock_gets_it_after_release(tmp_path: Path) -> None:
    path = tmp_path / "train.lock"
    holder = FoldLock(path)
    holder.acquire()
    threading.Timer(0.3, holder.release).start()
    with FoldLock(path, wait=True, poll=0.05) as waiter:
        assert waiter.acquired


def test_heartbeat_refreshes_and_notices_a_takeover(run: RunFolder) -> None:
    files = run.fold(0)
    with FoldLock(files.lock) as lock:
        before = LockInfo.parse(files.lock.read_bytes())
        time.sleep(0.01)
        files.heartbeat()
        after = LockInfo.parse(files.lock.read_bytes())
        assert before is not None and after is not None
        assert after.heartbeat > before.heartbeat and after.token == before.token
        write_lock(files.lock, "other-host", 7, age=0.0)  # someone took it over
        with pytest.raises(RunFolderError, match="another process took this fold over"):
            files.heartbeat()
        assert not lock.acquired
    assert files.lock.exists()  # the new holder's lock stays
