"""What the phantom draws: tissues, findings, the slice record, random fields and geometry."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    pass


CLASS_NAMES: dict[int, str] = {0: "non-COVID", 1: "COVID"}

#: Smallest and largest (width, height) an image may have (like the real COVID19-CT).
SIZE_MIN: tuple[int, int] = (180, 120)
SIZE_MAX: tuple[int, int] = (520, 420)

#: Findings of the non-COVID images and how often each is drawn.
NON_COVID_FINDINGS: dict[str, float] = {
    "normal": 0.30,
    "nodules": 0.20,
    "lobar_consolidation": 0.20,
    "emphysema": 0.15,
    "effusion": 0.15,
}
#: Findings of the COVID images: GGO alone, or GGO with a consolidated core.
COVID_FINDINGS: tuple[str, ...] = ("ggo", "ggo_consolidation")

# Hounsfield-like values of the tissues.
_HU_AIR = -1000.0
_HU_LUNG = -840.0
_HU_FAT = -100.0
_HU_SOFT = 40.0
_HU_BONE = 700.0


@dataclass(frozen=True)
class PhantomSlice:
    """One rendered slice and the masks it was drawn with.

    Attributes:
        image: uint8 array (height, width), the windowed slice.
        lesion_mask: bool array, the COVID lesions (all False for non-COVID slices).
        lung_mask: bool array, both lung fields.
        body_mask: bool array, the patient's body (without the table).
        finding: one of :data:`COVID_FINDINGS` or the keys of :data:`NON_COVID_FINDINGS`.
    """

    image: np.ndarray
    lesion_mask: np.ndarray
    lung_mask: np.ndarray
    body_mask: np.ndarray
    finding: str


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    """Return zero-mean, unit-variance noise whose blobs are about ``scale`` pixels wide."""
    height, width = shape
    low = rng.standard_normal(
        (max(2, math.ceil(height / scale) + 1), max(2, math.ceil(width / scale) + 1))
    ).astype(np.float32)
    # PIL's bicubic resize of a float image is fast, vectorised and deterministic.
    field = np.asarray(Image.fromarray(low).resize((width, height), Image.Resampling.BICUBIC))
    return (field - field.mean()) / (field.std() + 1e-6)


def _ridges(noise: np.ndarray, sharpness: float = 0.22) -> np.ndarray:
    """Return a net of thin lines (1 on the zero crossings of ``noise``, 0 elsewhere)."""
    return np.exp(-np.square(noise / sharpness))


def _soft_step(value: np.ndarray, width: float) -> np.ndarray:
    """Map ``value`` to 0 below 0, 1 above ``width``, smoothly in between."""
    t = np.clip(value / width, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _lerp(start: float, end: float, amount: float) -> float:
    return start + (end - start) * amount


@dataclass
class _Lung:
    """One lung field: its local coordinates (u lateral, v posterior) and mask."""

    side: int  # -1 on the image's left (patient's right), +1 on the image's right
    center: tuple[float, float]
    axes: tuple[float, float]
    u: np.ndarray
    v: np.ndarray
    radius: np.ndarray  # superellipse radius: 0 at the centre, 1 on the lung's outline
    mask: np.ndarray

    def to_xy(self, u: float, v: float) -> tuple[float, float]:
        """Body coordinates of the lung-local point (u, v)."""
        return (
            self.center[0] + self.side * u * self.axes[0],
            self.center[1] + v * self.axes[1],
        )


class _Canvas:
    """Coordinates of one slice: body units (1 = half the body's height), rotated."""

    def __init__(self, rng: np.random.Generator, size: tuple[int, int]) -> None:
        self.width, self.height = size
        self.shape = (self.height, self.width)
        self.aspect = float(rng.uniform(1.22, 1.6))  # body width / body height
        self.wide = bool(rng.random() < 0.45)  # whole body and table visible
        fill = rng.uniform(0.72, 0.88) if self.wide else rng.uniform(0.96, 1.1)
        half_h = self.height / 2 * (0.9 if self.wide else 1.0)
        self.scale = float(fill * min(half_h, self.width / 2 / self.aspect))  # px per unit
        self.cx = self.width / 2 + rng.uniform(-0.04, 0.04) * self.width
        self.cy = half_h + rng.uniform(-0.03, 0.03) * self.height
        angle = math.radians(rng.uniform(-5.0, 5.0))
        self.cos, self.sin = math.cos(angle), math.sin(angle)
        rows, cols = np.mgrid[0 : self.height, 0 : self.width].astype(np.float32)
        dc, dr = (cols - self.cx) / self.scale, (rows - self.cy) / self.scale
        self.x = self.cos * dc + self.sin * dr
        self.y = -self.sin * dc + self.cos * dr

    def to_pixel(self, x: float, y: float) -> tuple[float, float]:
        """Pixel (column, row) of the body point (x, y)."""
        return (
            self.cx + self.scale * (self.cos * x - self.sin * y),
            self.cy + self.scale * (self.sin * x + self.cos * y),
        )

    def ellipse(
        self, center: tuple[float, float], axes: tuple[float, float], angle: float = 0.0
    ) -> np.ndarray:
        """Normalised elliptic distance to ``center`` (1 on the ellipse).

        Only pixels within 2.5 semi-axes are computed (the rest is ``inf``): most shapes
        are small, and this keeps a slice at a few milliseconds.
        """
        reach = 2.5 * max(axes)
        col, row = self.to_pixel(*center)
        half = reach * self.scale + 2.0
        rows = slice(max(0, int(row - half)), max(0, min(self.height, int(row + half) + 1)))
        cols = slice(max(0, int(col - half)), max(0, min(self.width, int(col + half) + 1)))
        distance = np.full(self.shape, np.inf, dtype=np.float32)
        dx, dy = self.x[rows, cols] - center[0], self.y[rows, cols] - center[1]
        if angle:
            c, s = math.cos(angle), math.sin(angle)
            dx, dy = c * dx + s * dy, -s * dx + c * dy
        distance[rows, cols] = np.sqrt(np.square(dx / axes[0]) + np.square(dy / axes[1]))
        return distance


def sample_size(rng: np.random.Generator) -> tuple[int, int]:
    """Draw an image size (width, height) spread like the real COVID19-CT images.

    Most images are landscape (width/height 1.2 to 1.8), a quarter near-square.

    Example:
        >>> w, h = sample_size(np.random.default_rng(0))
        >>> SIZE_MIN[0] <= w <= SIZE_MAX[0] and SIZE_MIN[1] <= h <= SIZE_MAX[1]
        True
    """
    aspect = rng.uniform(1.0, 1.2) if rng.random() < 0.25 else rng.uniform(1.2, 1.8)
    height = math.exp(rng.uniform(math.log(SIZE_MIN[1]), math.log(SIZE_MAX[1])))
    width = min(max(height * aspect, SIZE_MIN[0]), SIZE_MAX[0])
    height = min(max(width / aspect, SIZE_MIN[1]), SIZE_MAX[1])
    return int(round(width)), int(round(height))


def _check_count(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"n must be an integer of at least 2 (one image per class), got {n!r}")


def _check_seed(seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")


def _check_difficulty(difficulty: float) -> None:
    if isinstance(difficulty, bool) or not isinstance(difficulty, (int, float, np.floating)):
        raise ValueError(f"difficulty must be a number in [0, 1], got {difficulty!r}")
    if not 0.0 <= float(difficulty) <= 1.0:
        raise ValueError(f"difficulty must be in [0, 1], got {difficulty!r}")
