"""CPU memory reuse for the batch path: large tensors without fresh page faults.

glibc's ``malloc`` hands every block over 32 MiB (and, until its adaptive threshold has
grown, every block over 128 KiB) straight from the kernel with ``mmap`` and returns it with
``munmap`` when freed. A CPU batch pipeline allocates and frees tensors of tens of megabytes
every batch (a 32 x 3 x 253 x 349 float32 batch is 34 MB), so each batch page-faults all of
them in again (benchmarks/README.md has what that cost). :func:`keep_freed_memory` asks
``malloc`` to serve such blocks from its heap and to keep freed memory for reuse, the same
effect PyTorch's CPU tuning guide gets by preloading jemalloc or tcmalloc. The process keeps
its peak memory instead of returning it.

It is applied once per process by :class:`covidlib.data.CachedDataLoader` when batches are
made on the CPU; ``COVIDLIB_KEEP_FREED_MEMORY=0`` turns it off. Elsewhere than Linux with
glibc it does nothing. It changes allocation only, never results.

Example:
    >>> from covidlib.utils.allocator import keep_freed_memory
    >>> keep_freed_memory() in (True, False)
    True
"""

from __future__ import annotations

import ctypes
import platform
import sys

from covidlib.utils.env import env_flag

# mallopt(3) parameters, from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
# Free memory at the top of the heap beyond this is still given back to the kernel.
TRIM_THRESHOLD_BYTES = 1 << 30

_decision: bool | None = None  # None: not decided yet in this process
ENV_SWITCH = "COVIDLIB_KEEP_FREED_MEMORY"


def keep_freed_memory() -> bool:
    """Make glibc's malloc reuse freed memory for large blocks; return whether it applies.

    Decided once per process (later calls return the same answer at no cost). Returns
    False, changing nothing, when ``COVIDLIB_KEEP_FREED_MEMORY`` is off (``0``, ``false``,
    ``no``, ``off``; see :func:`covidlib.utils.env.env_flag`) or the C library is not glibc.

    Raises:
        ValueError: ``COVIDLIB_KEEP_FREED_MEMORY`` is neither on nor off.
    """
    global _decision
    if _decision is None:
        _decision = _apply()
    return _decision


def _apply() -> bool:
    if not env_flag(ENV_SWITCH, default=True):
        return False
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success. No mmap'ed blocks: every block comes from the heap.
    if not mallopt(_M_MMAP_MAX, 0):
        return False
    return bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
