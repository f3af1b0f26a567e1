"""Run folders of :func:`covidlib.engine.cv.run_cv`: one layout object, checksums, fold locks.

A run folder ``<out>/<dataset>/<model>/<run-name>/`` holds::

    config.json          the run's configuration
    folds.csv            path, label and test fold of every image
    summary.json         metrics per fold, their mean and std
    predictions.csv      test predictions of every finished fold
    fold-<k>/
        checkpoint.pt    model, optimizer, RNG states and epoch log after the last epoch
        best.pt          weights of the best epoch (fold_model="lowest_train_loss" only)
        epochs.csv       epoch, train_loss, lr, seconds, worker (host:pid of the trainer)
        model.pt         the fold's final weights
        predictions.csv  path, label, probability, fold (and relpath) of the test images
        metrics.json     the fold's test metrics
        files.json       sha256 and size of every file above, and the run that made them
        train.lock       exists while a process trains the fold
    run.lock             locked while summary.json and predictions.csv are rewritten

Nothing in a run folder is trusted blindly. Every file of a fold is recorded in
``files.json`` when it is written, by its name relative to the fold folder (a moved or
copied run folder stays valid). Listings check sizes (and the digests of small files);
loading a file verifies its digest. A fold is finished only when its results verify. A read
that fails raises :class:`RunFolderError` (a ``ValueError``, so the command line prints it
as one line) naming the file and what to do.

Example:
    >>> import tempfile
    >>> run = RunFolder(tempfile.mkdtemp())
    >>> files = run.fold(0)
    >>> table = pd.DataFrame({"path": ["a.png"], "label": [1], "probability": [0.9], "fold": 0})
    >>> epochs = [{"epoch": 0, "train_loss": 0.5, "lr": 3e-4, "seconds": 1.0}]
    >>> files.write_results({"w": [0.0]}, table, {"fold": 0, "accuracy": 1.0}, epochs)
    >>> run.finished_folds()
    [0]
    >>> _ = files.model.write_bytes(b"truncated")
    >>> run.finished_folds(), files.problems()  # doctest: +ELLIPSIS
    ([], ['fold-0/model.pt fails its checksum (9 bytes, ... recorded)'])
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import socket
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from covidlib.utils.fileio import atomic_path, atomic_write_text, sha256_file

MANIFEST_VERSION = 1
# Listings hash files up to this size (the CSV and JSON results); larger ones by size only.
SMALL_FILE_BYTES = 1 << 20
# A lock whose heartbeat is older than this is stale (the trainer refreshes it every epoch).
LOCK_STALE_SECONDS = 600.0
LOCK_STALE_ENV = "COVIDLIB_LOCK_STALE_SECONDS"
EPOCH_COLUMNS: tuple[str, ...] = ("epoch", "train_loss", "lr", "seconds", "worker")
PREDICTION_COLUMNS: tuple[str, ...] = ("path", "label", "probability", "fold")
FOLD_PATTERN = re.compile(r"fold-(\d+)")


class RunFolderError(ValueError):
    """A run-folder file is missing, unreadable, fails its checksum or belongs to another run."""


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def read_json(path: str | Path, expect: type = dict, *, hint: str = "") -> Any:
    """Return the JSON value stored in ``path``, which must be an instance of ``expect``.

    Args:
        path: a JSON file.
        expect: the type the top-level value must have (``dict``, ``list``...).
        hint: what the user should do, appended to the error.

    Raises:
        RunFolderError: the file is missing, empty, not JSON or holds another type.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "config.json"
        >>> _ = path.write_text("[1, 2]")
        >>> read_json(path, hint="delete it")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        covidlib.engine.runs.RunFolderError: .../config.json holds a JSON list, not a JSON ...
    """
    path = Path(path)
    tail = f"; {hint}" if hint else ""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RunFolderError(f"{path} is missing{tail}") from None
    except UnicodeDecodeError:
        raise RunFolderError(f"{path} is not a text file (not JSON){tail}") from None
    except OSError as error:
        raise RunFolderError(f"cannot read {path}: {error.strerror or error}{tail}") from None
    if not text.strip():
        raise RunFolderError(f"{path} is empty{tail}")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise RunFolderError(f"{path} is not valid JSON ({error}){tail}") from None
    if not isinstance(value, expect):
        raise RunFolderError(
            f"{path} holds a JSON {_json_type(value)}, not a JSON {_json_type(expect())}{tail}"
        )
    return value


def _json_type(value: Any) -> str:
    names = {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number" if isinstance(value, (int, float)) else "value")


def read_csv(
    path: str | Path,
    columns: Sequence[str] = (),
    *,
    hint: str = "",
    allow_empty: bool = False,
    **read_options: Any,
) -> pd.DataFrame:
    """Return the table stored in ``path``, which must have ``columns`` (and rows).

    Args:
        path: a CSV file.
        columns: columns the table must have.
        hint: what the user should do, appended to the error.
        allow_empty: accept a table with a header but no rows.
        read_options: passed to :func:`pandas.read_csv` (e.g. ``dtype``).

    Raises:
        RunFolderError: the file is missing, empty, not CSV or lacks a column.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "predictions.csv"
        >>> _ = path.write_text("path,label\\na.png,1\\n")
        >>> read_csv(path, ["path", "label"])["label"].tolist()
        [1]
        >>> read_csv(path, ["path", "fold"])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        covidlib.engine.runs.RunFolderError: .../predictions.csv lacks the column(s) ['fold'] ...
    """
    path = Path(path)
    tail = f"; {hint}" if hint else ""
    try:
        table = pd.read_csv(path, **read_options)
    except FileNotFoundError:
        raise RunFolderError(f"{path} is missing{tail}") from None
    except pd.errors.EmptyDataError:
        raise RunFolderError(f"{path} is empty{tail}") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
        reason = _one_line(error)
        raise RunFolderError(f"{path} is not a readable CSV file ({reason}){tail}") from None
    except OSError as error:
        raise RunFolderError(f"cannot read {path}: {error.strerror or error}{tail}") from None
    missing = [column for column in columns if column not in table.columns]
    if missing:
        raise RunFolderError(
            f"{path} lacks the column(s) {missing} (it has {list(table.columns)[:8]}){tail}"
        )
    if table.empty and not allow_empty:
        raise RunFolderError(f"{path} has no rows{tail}")
    return table


def config_digest(config: Mapping[str, Any]) -> str:
    """Return the sha256 of a run config's canonical JSON (sorted keys, no spaces).

    Example:
        >>> config_digest({"b": 1, "a": [2]}) == config_digest({"a": [2], "b": 1})
        True
    """
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def run_identity(config: Mapping[str, Any]) -> dict[str, Any]:
    """Return what a fold's model must agree with in its run's config: model and canvas.

    Example:
        >>> run_identity({"model": "squeezenet", "canvas": [64, 48], "seed": 0})
        {'model': 'squeezenet', 'canvas': [64, 48]}
    """
    canvas = config.get("canvas")
    return {
        "model": config.get("model"),
        "canvas": list(canvas) if isinstance(canvas, (list, tuple)) else canvas,
    }


def worker_id() -> str:
    """Return ``host:pid`` of this process (who trains a fold, who holds a lock).

    Example:
        >>> worker_id().endswith(f":{os.getpid()}")
        True
    """
    return f"{socket.gethostname()}:{os.getpid()}"


def _entry(path: Path) -> dict[str, Any]:
    return {"sha256": sha256_file(path), "size": path.stat().st_size}


def _accepted(entry: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [entry, *entry.get("previous", [])]


@dataclass(frozen=True)
class FoldFiles:
    """The files of one fold folder, their manifest ``files.json`` and its lock.

    Attributes:
        dir: the fold folder (``<run>/fold-<k>``).
    """

    dir: Path

    @property
    def model(self) -> Path:
        return self.dir / "model.pt"

    @property
    def checkpoint(self) -> Path:
        return self.dir / "checkpoint.pt"

    @property
    def best(self) -> Path:
        return self.dir / "best.pt"

    @property
    def epochs(self) -> Path:
        return self.dir / "epochs.csv"

    @property
    def predictions(self) -> Path:
        return self.dir / "predictions.csv"

    @property
    def metrics(self) -> Path:
        return self.dir / "metrics.json"

    @property
    def manifest(self) -> Path:
        return self.dir / "files.json"

    @property
    def lock(self) -> Path:
        return self.dir / "train.lock"

    @property
    def results(self) -> tuple[Path, ...]:
        """The files a finished fold must hold (written once, at the end of training)."""
        return (self.model, self.predictions, self.metrics, self.epochs)

    @property
    def fold(self) -> int | None:
        """The fold number from the folder name, or ``None``."""
        match = FOLD_PATTERN.fullmatch(self.dir.name)
        return int(match.group(1)) if match else None

    def label(self, path: Path) -> str:
        """Return ``fold-<k>/<name>``: how messages name a file of the fold."""
        return f"{self.dir.name}/{self._key(path)}"

    def _key(self, path: Path) -> str:
        return Path(path).relative_to(self.dir).as_posix()

    def _retrain_hint(self) -> str:
        return f"delete {self.dir} to retrain this fold (run `covidlib cv` again)"

    # -- manifest ---------------------------------------------------------------------------

    def read_manifest(self) -> dict[str, Any]:
        """Return ``files.json`` (an empty one when it does not exist).

        Raises:
            RunFolderError: it exists but is not a covidlib manifest.
        """
        if not self.manifest.exists():
            return {"version": MANIFEST_VERSION, "files": {}}
        manifest = read_json(self.manifest, hint=self._retrain_hint())
        if not isinstance(manifest.get("files"), dict):
            raise RunFolderError(f"{self.manifest} lists no files; {self._retrain_hint()}")
        return manifest

    def _write_manifest(self, manifest: dict[str, Any]) -> None:
        manifest["version"] = MANIFEST_VERSION
        atomic_write_text(self.manifest, json.dumps(manifest, indent=2, sort_keys=True) + "\n")

    def record(self, *paths: Path) -> None:
        """Record the sha256 and size of files of this fold in ``files.json``."""
        manifest = self.read_manifest()
        for path in paths:
            manifest["files"][self._key(path)] = _entry(Path(path))
        self._write_manifest(manifest)

    @contextlib.contextmanager
    def recording(self, *paths: Path) -> Iterator[list[Path]]:
        """Yield temporary paths for files that are rewritten in place (checkpoint, log).

        On success each temporary file is hashed and recorded, then renamed onto its path.
        The entry keeps the digests of the two versions before, so a crash between the
        manifest update and the rename leaves a file that still verifies.
        """
        with contextlib.ExitStack() as stack:
            temporaries = [stack.enter_context(atomic_path(path)) for path in paths]
            yield temporaries
            manifest = self.read_manifest()
            for path, temporary in zip(paths, temporaries, strict=True):
                key = self._key(path)
                entry = _entry(temporary)
                old = manifest["files"].get(key)
                if old is not None:
                    entry["previous"] = [
                        {"sha256": e["sha256"], "size": e["size"]} for e in _accepted(old)
                    ][:2]
                manifest["files"][key] = entry
            self._write_manifest(manifest)

    def begin(self, config: Mapping[str, Any]) -> None:
        """Record which run this fold belongs to (model, canvas, config digest)."""
        manifest = self.read_manifest()
        manifest["run"] = {**run_identity(config), "config_sha256": config_digest(config)}
        if self.fold is not None:
            manifest["fold"] = self.fold
        self._write_manifest(manifest)

    # -- verification -----------------------------------------------------------------------

    def _problem(self, key: str, entry: Mapping[str, Any], full: bool) -> str | None:
        path = self.dir / key
        label = self.label(path)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return f"{label} is missing"
        accepted = _accepted(entry)
        if all(size != e.get("size") for e in accepted):
            return f"{label} fails its checksum ({size} bytes, {entry.get('size')} recorded)"
        if full or size <= SMALL_FILE_BYTES:
            digest = sha256_file(path)
            if all(digest != e.get("sha256") for e in accepted):
                return f"{label} fails its checksum (its sha256 differs from the recorded one)"
        return None

    def problems(self, full: bool = False) -> list[str]:
        """Return one line per recorded file that is missing or fails its checksum.

        Args:
            full: hash every file; by default large files are checked by size only.
        """
        if not self.manifest.exists():
            present = [p for p in (*self.results, self.checkpoint) if p.exists()]
            if present:
                return [f"{self.label(self.manifest)} is missing, so "
                        f"{self.label(present[0])} cannot be verified"]
            return []
        try:
            manifest = self.read_manifest()
        except RunFolderError as error:
            return [f"{self.label(self.manifest)} is unreadable ({error})"]
        found = (self._problem(k, e, full) for k, e in sorted(manifest["files"].items()))
        return [problem for problem in found if problem]

    def has_results(self) -> bool:
        """Whether ``files.json`` records every result file (verified or not)."""
        try:
            recorded = self.read_manifest()["files"]
        except RunFolderError:
            return False
        return all(self._key(path) in recorded for path in self.results)

    def is_finished(self, full: bool = False) -> bool:
        """Whether every result file is recorded and verifies (by size, or fully)."""
        if not self.has_results():
            return False
        recorded = self.read_manifest()["files"]
        return not any(
            self._problem(self._key(path), recorded[self._key(path)], full)
            for path in self.results
        )

    def verify(self, path: Path, hint: str | None = None) -> None:
        """Check one file against its recorded sha256 (no-op for an unrecorded file).

        Raises:
            RunFolderError: the file is missing or differs from what was recorded.
        """
        path = Path(path)
        if not self.manifest.exists():
            return
        entry = self.read_manifest()["files"].get(self._key(path))
        if entry is None:
            return
        problem = self._problem(self._key(path), entry, full=True)
        if problem is not None:
            raise RunFolderError(
                f"{problem.replace(self.label(path), str(path), 1)}; {hint or self._retrain_hint()}"
            )

    def discard_broken(self) -> list[str]:
        """Delete what fails verification so that training redoes it; return the problems.

        A broken result (model, predictions, metrics, epoch log) removes the results only
        (training resumes from the verified checkpoint); a broken checkpoint, best-epoch
        file or manifest restarts the fold from scratch.
        """
        problems = self.problems()
        if not problems:
            return []
        broken_names = {p.split(" ", 1)[0] for p in problems}
        result_labels = {self.label(path) for path in self.results}
        doomed: list[Path]
        if broken_names <= result_labels:
            doomed = list(self.results)
        else:
            doomed = [*self.results, self.checkpoint, self.best, self.manifest]
        manifest = self.read_manifest() if self.manifest not in doomed else None
        for path in doomed:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            if manifest is not None:
                manifest["files"].pop(self._key(path), None)
        if manifest is not None:
            self._write_manifest(manifest)
        return problems

    def check_run(self, config: Mapping[str, Any]) -> None:
        """Check that this fold was trained for ``config`` (the run's ``config.json``).

        Raises:
            RunFolderError: naming the key (``model``, ``canvas``) that differs, or saying
                that ``config.json`` changed since the fold was trained.
        """
        run = self.read_manifest().get("run")
        if not isinstance(run, dict):
            raise RunFolderError(
                f"{self.manifest} does not say which run trained {self.label(self.model)}; "
                f"{self._retrain_hint()}"
            )
        config_file = self.dir.parent / "config.json"
        for key, value in run_identity(config).items():
            if run.get(key) != value:
                raise RunFolderError(
                    f"{self.label(self.model)} was trained with {key} {run.get(key)!r} but "
                    f"{config_file} says {key} {value!r}: config.json was changed after "
                    "training; restore it, or delete the run folder to train again"
                )
        if run.get("config_sha256") != config_digest(config):
            raise RunFolderError(
                f"{config_file} changed after {self.label(self.model)} was trained (its digest "
                f"differs from the one in {self.label(self.manifest)}); restore it, or delete "
                "the run folder to train again"
            )

    # -- reading and writing results --------------------------------------------------------

    def write_results(
        self,
        state_dict: Mapping[str, Any],
        predictions: pd.DataFrame,
        metrics: Mapping[str, Any],
        history: Sequence[Mapping[str, Any]],
    ) -> None:
        """Write and record the results: model, predictions, metrics and epoch log.

        The manifest is written last: a crash before it leaves the fold unfinished.
        """
        import torch

        atomic_write_text(self.predictions, predictions.to_csv(index=False))
        with atomic_path(self.model) as temporary:  # keeps the .pt suffix torch looks at
            torch.save({"model": dict(state_dict)}, temporary)
        atomic_write_text(self.metrics, json.dumps(dict(metrics), indent=2) + "\n")
        self.write_epochs(history)
        self.record(*self.results)

    def write_epochs(self, history: Sequence[Mapping[str, Any]], path: Path | None = None) -> None:
        """Write the epoch log (``epoch`` first, ``worker`` last) to ``path`` or ``epochs.csv``."""
        table = pd.DataFrame(list(history))
        columns = [c for c in EPOCH_COLUMNS if c in table.columns or table.empty]
        columns += [c for c in table.columns if c not in columns]
        atomic_write_text(path or self.epochs, table.reindex(columns=columns).to_csv(index=False))

    def read_metrics(self) -> dict[str, float]:
        """Return the verified ``metrics.json`` as ``{name: value}`` (without ``fold``)."""
        self.verify(self.metrics)
        values = read_json(self.metrics, hint=self._retrain_hint())
        numbers = {k: v for k, v in values.items() if k != "fold"}
        bad = [k for k, v in numbers.items()
               if isinstance(v, bool) or not isinstance(v, (int, float))]
        if bad or not numbers:
            raise RunFolderError(
                f"{self.metrics} holds no metric values{f' (bad: {bad})' if bad else ''}; "
                f"{self._retrain_hint()}"
            )
        return {k: float(v) for k, v in numbers.items()}

    def read_predictions(self) -> pd.DataFrame:
        """Return the verified ``predictions.csv`` (path, label, probability, fold...)."""
        self.verify(self.predictions)
        return read_csv(self.predictions, PREDICTION_COLUMNS, hint=self._retrain_hint())

    def read_epochs(self) -> pd.DataFrame:
        """Return the verified ``epochs.csv`` (first column ``epoch``)."""
        self.verify(self.epochs)
        table = read_csv(self.epochs, ("epoch",), hint=self._retrain_hint())
        if table.columns[0] != "epoch":
            raise RunFolderError(f"{self.epochs} does not start with an epoch column; "
                                 f"{self._retrain_hint()}")
        return table

    def heartbeat(self) -> None:
        """Refresh this fold's lock if this process holds it (called after every epoch).

        Raises:
            RunFolderError: another process took the lock over.
        """
        lock = _HELD.get(str(self.lock.resolve()))
        if lock is not None:
            lock.heartbeat()


class RunFolder:
    """The layout of one run folder; it owns every file name in it.

    Example:
        >>> run = RunFolder("runs/phantom/squeezenet/quick")
        >>> run.config_file.name, run.fold(2).model.as_posix()
        ('config.json', 'runs/phantom/squeezenet/quick/fold-2/model.pt')
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def __str__(self) -> str:
        return str(self.path)

    @property
    def config_file(self) -> Path:
        return self.path / "config.json"

    @property
    def folds_file(self) -> Path:
        return self.path / "folds.csv"

    @property
    def summary_file(self) -> Path:
        return self.path / "summary.json"

    @property
    def predictions_file(self) -> Path:
        return self.path / "predictions.csv"

    @property
    def lock_file(self) -> Path:
        """Held (``flock``) while a process rewrites the run-level files (summary, predictions)."""
        return self.path / "run.lock"

    def fold(self, fold: int) -> FoldFiles:
        """Return the files of fold ``fold``."""
        return FoldFiles(self.path / f"fold-{int(fold)}")

    def fold_numbers(self) -> list[int]:
        """Return the folds that have a folder, in order (``fold-<k>`` names only)."""
        numbers = [FOLD_PATTERN.fullmatch(p.name) for p in self.path.glob("fold-*") if p.is_dir()]
        return sorted(int(m.group(1)) for m in numbers if m)

    def finished_folds(self, full: bool = False) -> list[int]:
        """Return the folds whose results are recorded and verify (sizes, or fully)."""
        return [k for k in self.fold_numbers() if self.fold(k).is_finished(full)]

    def read_config(self) -> dict[str, Any]:
        """Return ``config.json``.

        Raises:
            RunFolderError: the folder is not a run folder, or config.json is unreadable.
        """
        if not self.config_file.exists():
            raise RunFolderError(
                f"{self.path} is not a run folder of `covidlib cv` (no config.json)."
            )
        return read_json(
            self.config_file,
            hint=f"restore it, or delete the run folder {self.path} to start over",
        )

    def write_config(self, config: Mapping[str, Any]) -> Path:
        """Write ``config.json`` atomically and return its path."""
        return atomic_write_text(self.config_file, json.dumps(dict(config), indent=2) + "\n")

    def read_folds(self) -> pd.DataFrame:
        """Return ``folds.csv`` (path, label, fold of every image)."""
        return read_csv(self.folds_file, ("path", "label", "fold"),
                        hint="delete it: `covidlib cv` writes it again")

    def read_summary(self) -> dict[str, Any]:
        """Return ``summary.json``."""
        return read_json(self.summary_file, hint="run `covidlib cv` again to rewrite it")


# -- fold locks -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LockInfo:
    """What a lock file says about its holder."""

    host: str
    pid: int
    started: float
    heartbeat: float
    token: str

    def describe(self) -> str:
        """Return ``host:pid since <local time>``."""
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started))
        return f"{self.host}:{self.pid} since {since}"

    @classmethod
    def parse(cls, raw: bytes) -> LockInfo | None:
        """Return the holder described by a lock file's bytes, or ``None`` if unreadable."""
        try:
            data = json.loads(raw.decode())
            return cls(str(data["host"]), int(data["pid"]), float(data["started"]),
                       float(data["heartbeat"]), str(data["token"]))
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            return None


def lock_stale_seconds() -> float:
    """Return the heartbeat age after which a lock is stale (``COVIDLIB_LOCK_STALE_SECONDS``).

    Example:
        >>> lock_stale_seconds() > 0
        True
    """
    value = os.environ.get(LOCK_STALE_ENV)
    if value is None:
        return LOCK_STALE_SECONDS
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise ValueError(f"{LOCK_STALE_ENV}={value!r} must be a number of seconds above 0.")
    return seconds


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return False
    return True


# Locks held by this process, by resolved path: the epoch callback refreshes them.
_HELD: dict[str, FoldLock] = {}


class FoldLock:
    """An exclusive lock on a fold: a file created with ``O_CREAT | O_EXCL``, then written.

    The file holds the holder's host, pid, start time and a heartbeat that the trainer
    refreshes after every epoch. A lock is stale when its pid is dead on this host or its
    heartbeat is older than ``stale_after`` seconds; a stale lock is taken over.

    Args:
        path: the lock file (``FoldFiles.lock``).
        wait: block until the lock is free instead of giving up at once.
        stale_after: seconds without heartbeat after which the lock is stale (default
            :func:`lock_stale_seconds`).
        poll: seconds between attempts while waiting.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "train.lock"
        >>> with FoldLock(path) as first, FoldLock(path) as second:
        ...     first.acquired, second.acquired, second.holder.pid == os.getpid()
        (True, False, True)
        >>> path.exists()
        False
    """

    def __init__(
        self, path: str | Path, *, wait: bool = False, stale_after: float | None = None,
        poll: float = 1.0,
    ) -> None:
        self.path = Path(path)
        self.wait, self.poll = wait, poll
        self.stale_after = lock_stale_seconds() if stale_after is None else float(stale_after)
        self.acquired = False
        self.holder: LockInfo | None = None
        self.took_over: LockInfo | None = None
        self.stale_reason = ""
        self._info: LockInfo | None = None

    def __enter__(self) -> FoldLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _payload(self, info: LockInfo) -> str:
        return json.dumps({"host": info.host, "pid": info.pid, "started": info.started,
                           "heartbeat": info.heartbeat, "token": info.token}) + "\n"

    def _try_create(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        now = time.time()
        self._info = LockInfo(socket.gethostname(), os.getpid(), now, now, secrets.token_hex(8))
        with os.fdopen(fd, "w") as handle:
            handle.write(self._payload(self._info))
            handle.flush()
            os.fsync(handle.fileno())
        return True

    def _stale(self, info: LockInfo | None, mtime: float) -> str:
        age = time.time() - (info.heartbeat if info is not None else mtime)
        if info is None:  # being written right now, or garbage
            return f"unreadable for {age:.0f} s" if age > self.stale_after else ""
        if info.host == socket.gethostname() and not _pid_alive(info.pid):
            return f"pid {info.pid} is not running"
        if age > self.stale_after:
            return f"no heartbeat for {age:.0f} s"
        return ""

    def _take_over(self, raw: bytes) -> bool:
        """Move the stale lock aside; ``False`` when another process replaced it first."""
        aside = self.path.with_name(f"{self.path.name}.stale-{secrets.token_hex(4)}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return True  # someone else removed it: try to create ours
        try:
            if aside.read_bytes() == raw:
                return True
            # We moved a fresh lock of another process: put it back.
            with contextlib.suppress(FileExistsError):
                os.link(aside, self.path)
            return False
        finally:
            aside.unlink()

    def acquire(self) -> bool:
        """Take the lock; return whether this process holds it (see :attr:`holder`)."""
        while True:
            if self._try_create():
                self.acquired = True
                self.holder = None
                _HELD[str(self.path.resolve())] = self
                return True
            try:
                raw = self.path.read_bytes()
                mtime = self.path.stat().st_mtime
            except FileNotFoundError:
                continue  # released meanwhile
            info = LockInfo.parse(raw)
            reason = self._stale(info, mtime)
            if reason:
                if self._take_over(raw):
                    self.took_over, self.stale_reason = info, reason
                continue
            self.holder = info
            if not self.wait:
                return False
            time.sleep(self.poll)

    def heartbeat(self) -> None:
        """Rewrite the lock with a fresh heartbeat.

        Raises:
            RunFolderError: the lock now belongs to another process (it was taken over).
        """
        if not self.acquired or self._info is None:
            return
        try:
            current = LockInfo.parse(self.path.read_bytes())
        except FileNotFoundError:
            current = None
        if current is None or current.token != self._info.token:
            self.acquired = False
            _HELD.pop(str(self.path.resolve()), None)
            who = current.describe() if current is not None else "nobody (it was deleted)"
            raise RunFolderError(
                f"{self.path} is now held by {who}: another process took this fold over; "
                "this process stops training it"
            )
        self._info = LockInfo(self._info.host, self._info.pid, self._info.started,
                              time.time(), self._info.token)
        atomic_write_text(self.path, self._payload(self._info))

    def release(self) -> None:
        """Delete the lock file if this process still holds it."""
        if not self.acquired or self._info is None:
            return
        self.acquired = False
        _HELD.pop(str(self.path.resolve()), None)
        with contextlib.suppress(FileNotFoundError):
            current = LockInfo.parse(self.path.read_bytes())
            if current is not None and current.token == self._info.token:
                self.path.unlink()

    def took_over_message(self) -> str:
        """Return what to say after taking over a stale lock."""
        who = self.took_over.describe() if self.took_over is not None else "an unknown process"
        return f"took over the stale lock of {who} ({self.stale_reason})"


def release_held_locks() -> int:
    """Release every fold lock this process holds; return how many (a job being requeued).

    Example:
        >>> import tempfile, pathlib
        >>> lock = FoldLock(pathlib.Path(tempfile.mkdtemp()) / "train.lock")
        >>> lock.acquire(), release_held_locks(), lock.path.exists()
        (True, 1, False)
    """
    held = list(_HELD.values())
    for lock in held:
        lock.release()
    return len(held)


def lock_state(path: str | Path) -> tuple[LockInfo | None, str] | None:
    """Return ``(holder, stale reason)`` of a fold lock ('' when live), ``None`` without one.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "train.lock"
        >>> lock_state(path) is None
        True
        >>> with FoldLock(path):
        ...     holder, stale = lock_state(path)
        >>> holder.pid == os.getpid(), stale
        (True, '')
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return None
    info = LockInfo.parse(raw)
    return info, FoldLock(path)._stale(info, mtime)

