"""Fold locks: one trainer per fold across processes and machines, with a heartbeat.

A lock is a file created with ``O_CREAT | O_EXCL`` that names its holder; the trainer
refreshes its heartbeat after every epoch, and a lock whose holder died or stopped beating
is taken over. ``filelock``'s kernel locks cannot serve here: they are not reliable across
the machines that share a run folder's file system, and a live but stalled trainer could
never be replaced.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from covidlib.engine.readers import RunFolderError
from covidlib.utils.fileio import atomic_write_text

# A lock whose heartbeat is older than this is stale (the trainer refreshes it every epoch).
LOCK_STALE_SECONDS = 600.0
LOCK_STALE_ENV = "COVIDLIB_LOCK_STALE_SECONDS"


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
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "fold.lock"
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
        >>> lock = FoldLock(pathlib.Path(tempfile.mkdtemp()) / "fold.lock")
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
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "fold.lock"
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


def refresh_held(path: str | Path) -> None:
    """Refresh the lock at ``path`` if this process holds it (after every epoch).

    Raises:
        RunFolderError: another process took the lock over.
    """
    lock = _HELD.get(str(Path(path).resolve()))
    if lock is not None:
        lock.heartbeat()
