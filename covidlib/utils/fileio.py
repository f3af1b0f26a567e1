"""Atomic file and folder writes, and checksums.

Nothing in covidlib is half-written: every file goes to a temporary name in the target
folder first and is renamed onto its final name with :func:`os.replace` only once it is
complete (:func:`atomic_path`); a folder is built the same way in a temporary sibling
(:func:`atomic_dir`). A crash or an exception leaves either the old file or folder or
none, never a torso.

Example:
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> atomic_write_text(folder / "hello.txt", "hi").read_text()
    'hi'
    >>> len(sha256_file(folder / "hello.txt"))
    64
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

_CHUNK = 1 << 20


@contextlib.contextmanager
def atomic_path(path: str | Path, *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    The temporary file lives in the same folder (so the rename is atomic) and keeps the
    target's suffix by default, so writers that pick a format from the extension (PIL,
    matplotlib, torch) still work. On an exception the temporary file is removed and
    ``path`` is left untouched. Missing parent folders are created.

    Args:
        path: final destination.
        suffix: suffix of the temporary name; defaults to the suffix of ``path``.

    Example:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "out.bin"
        >>> with atomic_path(target) as tmp:
        ...     _ = tmp.write_bytes(b"data")
        >>> target.read_bytes()
        b'data'
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_temp(target, target.suffix if suffix is None else suffix)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"nothing was written to the temporary file {tmp} for {target}")
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _create_temp(target: Path, suffix: str) -> Path:
    """Create an empty, uniquely named file next to ``target`` with umask permissions.

    (:func:`tempfile.mkstemp` would create it ``0600``, which would then stick to the
    final file.)
    """
    for _ in range(100):
        candidate = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp{suffix}")
        try:
            fd = os.open(candidate, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return candidate
    raise FileExistsError(f"could not create a temporary file next to {target}")


@contextlib.contextmanager
def atomic_dir(path: str | Path, *, replace: bool = False) -> Iterator[Path]:
    """Yield a new, empty temporary folder next to ``path``; rename it onto ``path`` on success.

    The folder is built under a hidden sibling name (``.<name>.<random>.tmp``, in the same
    parent, so the rename is atomic) and becomes ``path`` only when the ``with`` block
    finishes without an exception. On an exception it is removed and ``path`` is untouched.
    Missing parent folders are created.

    Args:
        path: the final folder.
        replace: replace what is at ``path`` (moved aside first, removed only once the new
            folder is in place, put back if the rename fails). Without it, an empty folder
            at ``path`` is replaced and anything else is an error.

    Raises:
        FileExistsError: ``path`` holds something at the end of the block (a non-empty
            folder or a file, unless ``replace``; or one that another process put there
            meanwhile). The temporary folder is removed.

    Example:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "built"
        >>> with atomic_dir(target) as tmp:
        ...     _ = (tmp / "a.txt").write_text("a")
        >>> sorted(p.name for p in target.iterdir())
        ['a.txt']
        >>> with atomic_dir(target, replace=True) as tmp:
        ...     _ = (tmp / "b.txt").write_text("b")
        >>> sorted(p.name for p in target.iterdir())
        ['b.txt']
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_temp_dir(target)
    try:
        yield tmp
        old = None
        if replace and (target.exists() or target.is_symlink()):
            old = target.with_name(f".{target.name}.{secrets.token_hex(4)}.old")
            os.replace(target, old)
        try:
            os.replace(tmp, target)
        except OSError as error:
            if old is not None and not target.exists():
                os.replace(old, target)  # keep the old folder rather than nothing
                old = None
            if error.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR):
                raise FileExistsError(
                    f"{target} already exists; remove it or choose another folder"
                ) from None
            raise
        if old is not None:
            _remove(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _create_temp_dir(target: Path) -> Path:
    for _ in range(100):
        candidate = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"could not create a temporary folder next to {target}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return ``path``.

    Example:
        >>> import tempfile, pathlib
        >>> p = atomic_write_bytes(pathlib.Path(tempfile.mkdtemp()) / "a.bin", b"\\x00\\x01")
        >>> p.read_bytes()
        b'\\x00\\x01'
    """
    target = Path(path)
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    return target


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (UTF-8 by default) and return ``path``.

    Example:
        >>> import tempfile, pathlib
        >>> atomic_write_text(pathlib.Path(tempfile.mkdtemp()) / "a.txt", "x").read_text()
        'x'
    """
    return atomic_write_bytes(path, text.encode(encoding))


def sha256_file(path: str | Path) -> str:
    """Return the hexadecimal SHA-256 digest of a file, read in 1 MiB chunks.

    Example:
        >>> import tempfile, pathlib
        >>> p = atomic_write_bytes(pathlib.Path(tempfile.mkdtemp()) / "e", b"")
        >>> sha256_file(p)[:12]
        'e3b0c44298fc'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def exclusive_lock(path: str | Path) -> Iterator[Path]:
    """Hold an exclusive lock on ``path`` (``filelock``), waiting for it if needed.

    For work several processes may start at once (generating a dataset, building a cache,
    rewriting a run's summary): the first builds, the others wait and then find it built.
    ``path`` is a lock file (created if missing) or an existing folder (locked as is, which
    leaves nothing behind). The kernel releases the lock when its holder exits, even on a
    crash, so it is never stale.

    Example:
        >>> import tempfile, pathlib
        >>> lock = pathlib.Path(tempfile.mkdtemp()) / "build.lock"
        >>> with exclusive_lock(lock):
        ...     lock.exists()
        True
    """
    target = Path(path)
    if not target.is_dir():
        from filelock import FileLock

        target.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(target):
            yield target
        return
    # filelock needs a file it may create; a folder is locked through its own descriptor so
    # that nothing is left next to it (a generated dataset's parent holds the user's files).
    import fcntl

    fd = os.open(target, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield target
    finally:
        os.close(fd)  # closing releases the lock
