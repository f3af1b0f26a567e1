"""Where and how fast a run executes: device, workers, progress, data folder."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from covidlib.utils.env import env_flag

if TYPE_CHECKING:
    import torch

from covidlib.config._choices import DATA_ENV, PROGRESS_ENV
from covidlib.config._strict import _number, _set


@dataclass(frozen=True)
class RuntimeSettings:
    """Where and how fast a run executes; never part of the experiment, free to change.

    Attributes:
        device: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``,
            ``"cuda:1"``...; resolved once, by :meth:`torch_device`, at the entry point.
        num_workers: threads that decode images while the letterbox cache is built.
        progress: show progress bars; ``None`` asks :func:`progress_enabled`.

    Example:
        >>> RuntimeSettings(device="cpu").torch_device().type
        'cpu'
    """

    device: str = "auto"
    num_workers: int = 0
    progress: bool | None = None

    def __post_init__(self) -> None:
        _set(self, "num_workers", _number(self.num_workers, "num_workers", int))
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be >= 0 (got {self.num_workers}).")

    def torch_device(self) -> torch.device:
        """Return the ``torch.device`` of :attr:`device` (see :func:`resolve_device`)."""
        return resolve_device(self.device)

    def show_progress(self) -> bool:
        """Return :attr:`progress`, or :func:`progress_enabled` when it is ``None``."""
        return progress_enabled() if self.progress is None else bool(self.progress)


def project_root() -> Path | None:
    """Return the course repository root when covidlib runs from a checkout, else ``None``."""
    candidate = Path(__file__).resolve().parents[2]
    if (candidate / "_config.yml").is_file() and (candidate / "covidlib").is_dir():
        return candidate
    return None


def data_dir() -> Path:
    """Return the folder that holds datasets and caches.

    ``COVIDLIB_DATA`` wins; otherwise ``data/`` of the repository checkout; otherwise
    ``~/covidlib-data`` (an installed package, e.g. in Colab).

    Example:
        >>> data_dir().name in {"data", "covidlib-data"} or "COVIDLIB_DATA" in os.environ
        True
    """
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    root = project_root()
    if root is not None:
        return root / "data"
    return Path.home() / "covidlib-data"


def progress_enabled() -> bool:
    """Return whether progress bars should be shown.

    Only on a terminal (stderr is a TTY) or in a Jupyter kernel, and never when
    ``COVIDLIB_PROGRESS`` is off (``0``/``false``/``no``/``off``: the book build and the
    tests set it). Piped into a log file, stderr is no TTY: no progress-bar frames there.

    Example:
        >>> import contextlib, io
        >>> with contextlib.redirect_stderr(io.StringIO()):
        ...     progress_enabled()
        False
    """
    if not env_flag(PROGRESS_ENV, default=True):
        return False
    stream = sys.stderr
    if type(stream).__module__.startswith("ipykernel"):
        return True
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except (ValueError, OSError):  # a closed stream
        return False


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """Return the torch device for ``"auto"``/``None`` (CUDA when available, else CPU),
    ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or a ``torch.device``.

    Call it once, at the entry point (``run_cv``, the CLI), and pass the device down.

    Raises:
        ValueError: CUDA was asked for on a machine without it, or an unknown name.

    Example:
        >>> resolve_device("cpu").type
        'cpu'
    """
    import torch

    if name is None or name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ValueError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N.") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was requested but CUDA is not available; use 'cpu'.")
    return device
