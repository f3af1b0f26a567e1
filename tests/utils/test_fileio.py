"""Tests for covidlib.utils.fileio: atomic writes and checksums."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from covidlib.utils.fileio import (
    atomic_dir,
    atomic_path,
    atomic_write_bytes,
    atomic_write_text,
    sha256_file,
)


@pytest.mark.parametrize("data", [b"", b"abc", bytes(range(256)) * 5000])
def test_atomic_write_bytes_round_trip_and_checksum(tmp_path: Path, data: bytes) -> None:
    target = atomic_write_bytes(tmp_path / "sub" / "file.bin", data)
    assert target.read_bytes() == data
    assert sha256_file(target) == hashlib.sha256(data).hexdigest()
    assert [p.name for p in target.parent.iterdir()] == ["file.bin"]  # no temporary left


def test_atomic_write_text_replaces_existing(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_text("old")
    atomic_write_text(target, "new ü")
    assert target.read_text(encoding="utf-8") == "new ü"


def test_atomic_path_keeps_old_file_on_error(tmp_path: Path) -> None:
    target = tmp_path / "model.pt"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".pt" and tmp != target
        tmp.write_bytes(b"half")
        raise RuntimeError("crash while writing")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


def test_atomic_path_uses_umask_permissions(tmp_path: Path) -> None:
    with atomic_path(tmp_path / "x.txt") as tmp:
        tmp.write_text("x")
    umask = os.umask(0)
    os.umask(umask)
    # mkstemp would give 0600; a written file should get the usual 0666 & ~umask.
    assert (tmp_path / "x.txt").stat().st_mode & 0o777 == 0o666 & ~umask


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_atomic_dir_appears_only_when_complete(tmp_path: Path) -> None:
    target = tmp_path / "parent" / "built"
    with atomic_dir(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith(".") and not target.exists()
        (tmp / "a.txt").write_text("a")
    assert _names(target) == ["a.txt"] and _names(target.parent) == ["built"]


def test_atomic_dir_error_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "built") as tmp:
        (tmp / "half.txt").write_text("x")
        raise RuntimeError("crash while building")
    assert _names(tmp_path) == []


def test_atomic_dir_replaces_an_empty_folder_but_not_a_full_one(tmp_path: Path) -> None:
    target = tmp_path / "built"
    target.mkdir()
    with atomic_dir(target) as tmp:
        (tmp / "new.txt").write_text("new")
    assert _names(target) == ["new.txt"]
    with pytest.raises(FileExistsError, match="built already exists"):
        with atomic_dir(target) as tmp:
            (tmp / "other.txt").write_text("other")
    assert _names(target) == ["new.txt"] and _names(tmp_path) == ["built"]


def test_atomic_dir_replace_swaps_and_keeps_the_old_folder_on_error(tmp_path: Path) -> None:
    target = tmp_path / "built"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_dir(target, replace=True) as tmp:
        (tmp / "new.txt").write_text("new")
        raise RuntimeError("crash while building")
    assert _names(target) == ["old.txt"]
    with atomic_dir(target, replace=True) as tmp:
        (tmp / "new.txt").write_text("new")
    assert _names(target) == ["new.txt"] and _names(tmp_path) == ["built"]


def test_atomic_dir_replace_puts_the_old_folder_back_when_the_rename_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "built"
    target.mkdir()
    (target / "old.txt").write_text("old")
    real_replace = os.replace

    def failing_replace(src: object, dst: object) -> None:
        if Path(str(src)).name.endswith(".tmp"):
            raise PermissionError(13, "Permission denied", str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(PermissionError), atomic_dir(target, replace=True) as tmp:
        (tmp / "new.txt").write_text("new")
    assert _names(target) == ["old.txt"] and _names(tmp_path) == ["built"]


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_exclusive_lock_excludes_a_second_holder(tmp_path: Path, kind: str) -> None:
    import subprocess
    import sys

    from covidlib.utils.fileio import exclusive_lock

    target = tmp_path / "build.lock" if kind == "file" else tmp_path
    probe = (  # another process must not get the lock while this one holds it
        "import fcntl, os, sys; p = sys.argv[1]\n"
        "fd = os.open(p, os.O_RDONLY if os.path.isdir(p) else os.O_RDWR)\n"
        "try: fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB); print('free')\n"
        "except BlockingIOError: print('held')\n"
    )
    with exclusive_lock(target):
        held = subprocess.run([sys.executable, "-c", probe, str(target)], capture_output=True,
                              text=True, check=True).stdout.strip()
    free = subprocess.run([sys.executable, "-c", probe, str(target)], capture_output=True,
                          text=True, check=True).stdout.strip()
    assert (held, free) == ("held", "free")
    assert sorted(p.name for p in tmp_path.iterdir()) == (["build.lock"] if kind == "file" else [])
