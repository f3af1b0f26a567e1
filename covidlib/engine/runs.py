"""The one owner of the run-folder and stored-result formats: every file name, checksums.

No other module spells a file name of these folders (a test checks); they ask
:class:`RunFolder` and :class:`FoldFiles`, which also read the files (through
:mod:`covidlib.engine.readers`). A run folder of :func:`covidlib.engine.cv.run_cv`,
``<out>/<dataset>/<model>/<run-name>/``, holds::

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
    skipped.csv          the files skip_problems left out (only when there are some)
    run.lock             locked while summary.json and predictions.csv are rewritten

A stored result ``results/<dataset>/<model>/<id>/`` (a real run kept in the repository,
no weights) holds ``provenance.json`` (how it was made), ``report.json`` (metrics with
intervals; ``summary.json`` in results stored before the rename, still read) and
``fold-<k>/predictions.csv``.

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
import socket
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from covidlib.engine.locks import refresh_held
from covidlib.engine.readers import RunFolderError, jsonable, read_csv, read_json
from covidlib.utils.fileio import atomic_path, atomic_write_text, sha256_file

MANIFEST_VERSION = 1
# Listings hash files up to this size (the CSV and JSON results); larger ones by size only.
SMALL_FILE_BYTES = 1 << 20
EPOCH_COLUMNS: tuple[str, ...] = ("epoch", "train_loss", "lr", "seconds", "worker")
PREDICTION_COLUMNS: tuple[str, ...] = ("path", "label", "probability", "fold")
FOLD_PATTERN = re.compile(r"fold-(\d+)")


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
        refresh_held(self.lock)


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
    def skipped_file(self) -> Path:
        """The files ``skip_problems`` left out (written only when there are some)."""
        return self.path / "skipped.csv"

    @property
    def lock_file(self) -> Path:
        """Held (``flock``) while a process rewrites the run-level files (summary, predictions)."""
        return self.path / "run.lock"

    # -- a stored result: a real run's predictions, provenance and report, no weights -------

    @property
    def provenance_file(self) -> Path:
        return self.path / "provenance.json"

    @property
    def report_file(self) -> Path:
        """A stored result's metrics with their intervals; older results call it
        ``summary.json`` (:meth:`read_report` reads both)."""
        return self.path / "report.json"

    @property
    def is_stored(self) -> bool:
        """Whether this is a stored result (it has ``provenance.json``)."""
        return self.provenance_file.is_file()

    @classmethod
    def stored_under(cls, root: str | Path) -> list[RunFolder]:
        """Return the stored results ``<root>/<dataset>/<model>/<id>/``, in path order."""
        return [cls(p.parent) for p in sorted(Path(root).glob("*/*/*/provenance.json"))]

    def read_provenance(self, error: type[ValueError] = RunFolderError) -> dict[str, Any]:
        """Return a stored result's ``provenance.json`` (raising ``error`` when unreadable)."""
        return read_json(self.provenance_file, hint="restore it from the repository",
                         error=error)

    def read_report(self, error: type[ValueError] = RunFolderError) -> dict[str, Any]:
        """Return a stored result's report (``report.json``, or the older ``summary.json``)."""
        path = self.report_file if self.report_file.exists() else self.summary_file
        return read_json(path, hint="restore it from the repository", error=error)

    def write_json(self, path: Path, data: Any) -> Path:
        """Write ``data`` (:func:`~covidlib.engine.readers.jsonable`) as indented JSON at
        ``path``, one of this folder's files, atomically; return ``path``."""
        return atomic_write_text(path, json.dumps(jsonable(data), indent=2) + "\n")

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
