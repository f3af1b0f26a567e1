"""Tests for covidlib.utils.allocator: freed memory is reused, so batches page-fault far less."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from covidlib.utils.allocator import keep_freed_memory

# Augment eight 32 x 253 x 349 batches (the benchmark's shape) after a warm-up and print
# the process's minor page faults meanwhile. Without reuse every batch maps its large
# tensors in afresh: about 15,000 faults a batch on the machine this was written on.
PROBE = """
import resource, torch
from covidlib.utils.allocator import keep_freed_memory
from covidlib.transforms import BatchTransform
from covidlib.config import AugmentConfig
applied = keep_freed_memory()
x = torch.randint(0, 255, (32, 1, 253, 349), dtype=torch.uint8)
tfm = BatchTransform(AugmentConfig(), seed=0)
tfm(x); tfm(x)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(8):
    tfm(x)
print(int(applied), resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""

glibc_only = pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="the malloc tuning applies to glibc only",
)


def _probe(env_value: str) -> tuple[int, int]:
    # A machine may already tune malloc (GLIBC_TUNABLES, MALLOC_*, a preloaded jemalloc):
    # the child starts from glibc's defaults so the comparison means something.
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("GLIBC_TUNABLES", "LD_PRELOAD") and not name.startswith("MALLOC_")
    }
    env["COVIDLIB_KEEP_FREED_MEMORY"] = env_value
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    return int(out[0]), int(out[1])


@glibc_only
def test_batches_reuse_freed_memory() -> None:
    applied, faults = _probe("1")
    opted_out, default_faults = _probe("0")
    assert (applied, opted_out) == (1, 0)
    assert faults * 5 < default_faults, (faults, default_faults)


@pytest.mark.parametrize("value", ["0", "false", "OFF", " no "])
def test_opt_out_changes_nothing(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    import covidlib.utils.allocator as allocator

    monkeypatch.setattr(allocator, "_decision", None)
    monkeypatch.setenv("COVIDLIB_KEEP_FREED_MEMORY", value)
    assert keep_freed_memory() is False
    monkeypatch.setenv("COVIDLIB_KEEP_FREED_MEMORY", "1")
    assert keep_freed_memory() is False  # decided once per process


def test_a_value_that_is_neither_on_nor_off_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import covidlib.utils.allocator as allocator

    monkeypatch.setattr(allocator, "_decision", None)
    monkeypatch.setenv("COVIDLIB_KEEP_FREED_MEMORY", "maybe")
    with pytest.raises(ValueError, match="COVIDLIB_KEEP_FREED_MEMORY='maybe'"):
        keep_freed_memory()
    assert allocator._decision is None  # nothing decided: the next call asks again
