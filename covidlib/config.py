"""Run profiles and project paths.

The course runs one code path under two profiles:

* ``quick`` (the default): CPU, offline, the synthetic phantom dataset, small canvases,
  a few epochs, random initialisation. The whole book builds this way.
* ``full``: a GPU, the real datasets, ImageNet weights and the paper's exact settings
  (100 epochs, batch 32, LAMB with learning rate 3e-4 and weight decay 1).

Pick one with the ``COVIDLIB_PROFILE`` environment variable or pass a name to
:func:`get_profile`.

Example:
    >>> from covidlib.config import get_profile
    >>> get_profile("quick").pretrained
    False
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

PROFILE_ENV = "COVIDLIB_PROFILE"
DATA_ENV = "COVIDLIB_DATA"
PROGRESS_ENV = "COVIDLIB_PROGRESS"


@dataclass(frozen=True)
class Profile:
    """Settings that differ between the quick and the full profile.

    Attributes:
        name: ``"quick"`` or ``"full"``.
        dataset: dataset registry name the chapters use by default.
        phantom_size: number of phantom images generated when ``dataset`` is the phantom.
        phantom_difficulty: the phantom generator's difficulty knob in [0, 1].
        demo_images_per_class: size of the class-balanced sample the architecture chapters
            fine-tune on; ``None`` uses every image.
        canvas_scale: factor applied to each model's custom canvas (Table 1); 1.0 is the paper.
        epochs: training epochs per fold.
        lr: initial learning rate of the step schedule (the paper's 3e-4 suits ImageNet
            weights; random initialisation in the quick profile needs a larger step).
        batch_size: images per training batch.
        pretrained: start from ImageNet weights (``True``) or random init (``False``).
        folds: number of cross-validation folds.
        device: ``"auto"`` picks CUDA when available, else CPU.
    """

    name: str
    dataset: str
    phantom_size: int
    canvas_scale: float
    epochs: int
    lr: float
    batch_size: int
    pretrained: bool
    phantom_difficulty: float = 0.5
    demo_images_per_class: int | None = None
    folds: int = 5
    device: str = "auto"

    def to_dict(self) -> dict[str, Any]:
        """Return the profile as a plain dictionary (for tables and JSON)."""
        return asdict(self)

    def with_overrides(self, **changes: Any) -> Profile:
        """Return a copy with some fields changed.

        Example:
            >>> get_profile("quick").with_overrides(epochs=1).epochs
            1
        """
        return replace(self, **changes)


PROFILES: dict[str, Profile] = {
    "quick": Profile(
        name="quick",
        dataset="phantom",
        phantom_size=200,
        canvas_scale=0.4,
        epochs=6,
        lr=1e-2,
        batch_size=16,
        pretrained=False,
        phantom_difficulty=0.2,
        demo_images_per_class=16,
    ),
    "full": Profile(
        name="full",
        dataset="covid19-ct",
        phantom_size=2000,
        canvas_scale=1.0,
        epochs=100,
        lr=3e-4,
        batch_size=32,
        pretrained=True,
    ),
}


def get_profile(name: str | None = None) -> Profile:
    """Return the named profile, or the one chosen by ``COVIDLIB_PROFILE`` (default quick).

    Args:
        name: ``"quick"`` or ``"full"``; ``None`` reads the environment.

    Raises:
        ValueError: for an unknown profile name.

    Example:
        >>> get_profile("full").epochs
        100
    """
    chosen = name if name is not None else os.environ.get(PROFILE_ENV, "quick")
    chosen = chosen.strip().lower()
    if chosen not in PROFILES:
        raise ValueError(
            f"Unknown profile {chosen!r} (from {'argument' if name else PROFILE_ENV}); "
            f"choose one of {sorted(PROFILES)}."
        )
    return PROFILES[chosen]


def project_root() -> Path | None:
    """Return the course repository root when covidlib runs from a checkout, else ``None``."""
    candidate = Path(__file__).resolve().parents[1]
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

    Off when ``COVIDLIB_PROGRESS`` is ``0``/``false`` (the book build and CI set it) or when
    ``CI`` is set; on otherwise.
    """
    value = os.environ.get(PROGRESS_ENV)
    if value is not None:
        return value.strip().lower() not in {"0", "false", "no", "off", ""}
    return not os.environ.get("CI")


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """Return the torch device for ``"auto"``/``None`` (CUDA when available, else CPU),
    ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or a ``torch.device``.

    Raises:
        ValueError: CUDA was asked for on a machine without it.

    Example:
        >>> resolve_device("cpu").type
        'cpu'
    """
    import torch

    if name is None or name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was requested but CUDA is not available; use 'cpu'.")
    return device
