"""The phantom: a deterministic, synthetic chest-CT-like dataset with lesion masks.

Every chapter runs offline on the phantom in the quick profile. Each image is an axial
slice drawn in Hounsfield-like units (air, fat, soft tissue, bone, lung) and then shown
through a random lung window with scanner blur and noise:

* anatomy: body outline with subcutaneous fat, chest-wall muscle, ribs, sternum, spine,
  scapulae, mediastinum, heart and aorta, two lung fields with branching vessels, and the
  scanner table under the body in wide views;
* ``COVID`` images: bilateral, peripheral, posterior-predominant ground-glass opacities
  (GGO) with soft edges and reticular ("crazy paving") texture, sometimes consolidation;
  the lesion mask marks them;
* ``non-COVID`` images: normal lungs, nodules, lobar consolidation, emphysema or pleural
  effusion (the ``finding`` column of ``labels.csv``), so the task is not trivial.

``difficulty`` in ``[0, 1]`` lowers lesion contrast, size and number, raises scanner noise
and makes the confounders (dependent posterior haze, nodule halos, soft consolidation)
more GGO-like. Image ``k`` depends only on ``(seed, k)``, so a bigger ``n`` extends a
smaller phantom without changing its first images.

Example:
    >>> import tempfile, pathlib
    >>> root = generate_phantom(pathlib.Path(tempfile.mkdtemp()) / "phantom", n=4)
    >>> sorted(p.name for p in root.iterdir())
    ['COVID', 'labels.csv', 'manifest.json', 'masks', 'non-COVID']
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from covidlib.utils.fileio import atomic_dir, exclusive_lock

if TYPE_CHECKING:
    from covidlib.config import Profile

GENERATOR = "covidlib.phantom"
GENERATOR_VERSION = 1
MANIFEST_NAME = "manifest.json"
LABELS_NAME = "labels.csv"
LABELS_COLUMNS: tuple[str, ...] = (
    "file",
    "label",
    "class_name",
    "finding",
    "width",
    "height",
    "mask",
)
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

# Parameters compared to decide whether a cached phantom can be reused.
_PARAMETER_KEYS: tuple[str, ...] = ("generator", "version", "n", "seed", "difficulty")


class PhantomExistsError(FileExistsError):
    """The output folder exists and holds something other than the requested phantom."""


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


# ---------------------------------------------------------------------------------------
# Random fields
# ---------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------
# Geometry
# ---------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------


class _SliceBuilder:
    """Paints one slice in Hounsfield-like units, layer by layer."""

    def __init__(self, rng: np.random.Generator, size: tuple[int, int], difficulty: float) -> None:
        self.rng = rng
        self.difficulty = difficulty
        self.canvas = _Canvas(rng, size)
        self.hu = np.full(self.canvas.shape, _HU_AIR, dtype=np.float32)
        self.level = float(rng.uniform(0.0, 1.0))  # 0: upper chest, 1: lower chest
        self.lesion = np.zeros(self.canvas.shape, dtype=np.float32)
        self._pleura_distance: np.ndarray | None = None

    # -- anatomy -------------------------------------------------------------------------

    def draw_anatomy(self) -> None:
        c, rng = self.canvas, self.rng
        a = c.aspect
        # Body: a superellipse, flatter on the back (y > 0).
        power = rng.uniform(2.2, 2.8)
        back = rng.uniform(0.86, 0.95)
        y_scaled = np.where(c.y > 0, c.y / back, c.y)
        self.rho = (np.abs(c.x / a) ** power + np.abs(y_scaled) ** power) ** (1.0 / power)
        self.body = self.rho < 1.0
        if c.wide:
            self._draw_table(back)
        fat = rng.uniform(0.04, 0.12)
        wall = rng.uniform(0.07, 0.1)
        self.inner = 1.0 - fat - wall
        texture = _smooth_noise(rng, c.shape, 6.0)
        self.hu[self.body] = _HU_FAT + 12.0 * texture[self.body]
        muscle = self.rho < 1.0 - fat
        self.hu[muscle] = 45.0 + 8.0 * texture[muscle]
        self.hu[(self.rho > 0.985) & self.body] = _HU_SOFT  # skin
        self._draw_mediastinum()
        self._draw_lungs()
        self._draw_bones(fat)

    def _draw_table(self, back: float) -> None:
        c, rng = self.canvas, self.rng
        # The table's cradle curves up at the sides.
        top = back + rng.uniform(0.03, 0.1) + 0.1 * (1.0 - np.square(c.x / c.aspect))
        thickness = rng.uniform(0.06, 0.12)
        inside = np.abs(c.x) < c.aspect * rng.uniform(1.0, 1.3)
        table = inside & (c.y > top) & (c.y < top + thickness)
        self.hu[table] = rng.uniform(-450.0, -150.0)
        edge = 0.012
        shell = inside & ((np.abs(c.y - top) < edge) | (np.abs(c.y - top - thickness) < edge))
        self.hu[shell] = rng.uniform(100.0, 400.0)

    def _draw_mediastinum(self) -> None:
        c, rng = self.canvas, self.rng
        self.spine_y = rng.uniform(0.55, 0.66)
        hx, hy = rng.uniform(0.08, 0.2), rng.uniform(-0.18, -0.02)
        heart_size = _lerp(0.55, 1.1, self.level) * rng.uniform(0.9, 1.1)
        angle = math.radians(rng.uniform(-35.0, -15.0))
        self.heart = c.ellipse((hx, hy), (0.4 * heart_size, 0.32 * heart_size), angle)
        self.mediastinum = c.ellipse((0.0, rng.uniform(-0.5, -0.35)), (0.15, 0.55)) < 1.0
        self.aorta = c.ellipse((rng.uniform(0.12, 0.2), self.spine_y - 0.12), (0.09, 0.09)) < 1
        self.paraspinal = c.ellipse((0.0, self.spine_y + 0.14), (0.3, 0.3)) < 1.0
        soft = (self.mediastinum | (self.heart < 1.08) | self.aorta) & (self.rho < self.inner)
        self.hu[soft] = -70.0  # mediastinal and pericardial fat
        self.hu[(self.heart < 1.0) | self.aorta] = _HU_SOFT
        if self.level < 0.35:  # trachea above the carina
            trachea = c.ellipse((0.0, rng.uniform(-0.2, -0.05)), (0.07, 0.06))
            self.hu[trachea < 1.25] = _HU_SOFT
            self.hu[trachea < 1.0] = _HU_AIR

    def _draw_lungs(self) -> None:
        c, rng = self.canvas, self.rng
        self.lungs: list[_Lung] = []
        exclude = (
            (self.heart < 1.1)
            | self.mediastinum
            | self.aorta
            | self.paraspinal
            | (self.rho >= self.inner)
        )
        power = rng.uniform(2.0, 2.6)
        for side in (-1, 1):
            axes = (rng.uniform(0.4, 0.48) * c.aspect, rng.uniform(0.78, 0.9))
            center = (side * rng.uniform(0.44, 0.5) * c.aspect, rng.uniform(-0.02, 0.08))
            u = side * (c.x - center[0]) / axes[0]
            v = (c.y - center[1]) / axes[1]
            radius = (np.abs(u) ** power + np.abs(v) ** power) ** (1.0 / power)
            mask = (radius < 1.0) & ~exclude
            self.lungs.append(_Lung(side, center, axes, u, v, radius, mask))
        self.lung = self.lungs[0].mask | self.lungs[1].mask
        texture = _smooth_noise(rng, c.shape, max(3.0, c.scale * 0.06))
        posterior = np.clip(c.y, -1.0, 1.0)  # lungs are a little denser towards the back
        self.parenchyma = _HU_LUNG + 15.0 * texture + 25.0 * posterior
        self.hu[self.lung] = self.parenchyma[self.lung]

    def _draw_bones(self, fat: float) -> None:
        c, rng = self.canvas, self.rng
        # Ribs: arcs of a ring just outside the lungs, cut into segments.
        theta = np.arctan2(c.y, c.x / c.aspect)
        rib_in = self.inner + rng.uniform(0.0, 0.02)
        rib_out = rib_in + rng.uniform(0.025, 0.04)
        ring = (self.rho > rib_in) & (self.rho < rib_out)
        segments = np.cos(rng.integers(6, 10) * theta + rng.uniform(0, 2 * np.pi)) > 0.15
        front_gap = np.abs(theta + np.pi / 2) > 0.3
        self.hu[ring & segments & front_gap] = _HU_BONE
        # Sternum in front, vertebra, canal and spinous process behind.
        sternum = c.ellipse((0.0, -(1.0 - fat - 0.04)), (0.1, 0.035))
        self.hu[sternum < 1.0] = _HU_BONE
        sy = self.spine_y
        body_r = rng.uniform(0.12, 0.15)
        vertebra = c.ellipse((0.0, sy), (body_r * 1.05, body_r))
        self.hu[vertebra < 1.0] = 900.0
        self.hu[vertebra < 0.82] = 260.0 + 40.0 * _smooth_noise(rng, c.shape, 3.0)[vertebra < 0.82]
        arch = c.ellipse((0.0, sy + body_r + 0.07), (0.11, 0.08))
        self.hu[(arch < 1.0) & (arch > 0.6)] = 800.0
        self.hu[arch <= 0.6] = 30.0  # spinal canal
        spinous = (np.abs(c.x) < 0.025) & (c.y > sy + body_r + 0.13) & (c.y < sy + 0.38)
        self.hu[spinous & self.body] = 800.0
        for side in (-1, 1):
            transverse = c.ellipse((side * 0.13, sy + body_r + 0.04), (0.09, 0.025), side * 0.4)
            self.hu[transverse < 1.0] = 800.0
        if rng.random() < 0.7:  # scapulae behind the ribs
            for side in (-1, 1):
                scapula = c.ellipse(
                    (side * 0.7 * c.aspect, rng.uniform(0.62, 0.72)),
                    (0.26, 0.025),
                    side * rng.uniform(0.3, 0.6),
                )
                outside_ribs = (self.rho > rib_out + 0.01) & (self.rho < 1.0 - fat)
                self.hu[(scapula < 1.0) & outside_ribs] = 650.0

    def _tree_layer(self, density: float, width_scale: float) -> np.ndarray:
        """Vessels (or bronchi) fanning out of each hilum, thinning towards the pleura (0..1)."""
        c, rng = self.canvas, self.rng
        layer = Image.new("F", (c.width, c.height), 0.0)
        draw = ImageDraw.Draw(layer)

        def stroke(
            start: tuple[float, float], end: tuple[float, float], width: float, shade: float
        ) -> None:
            pixels = max(1, int(round(width * width_scale * c.scale)))
            draw.line([c.to_pixel(*start), c.to_pixel(*end)], fill=shade, width=pixels)

        for lung in self.lungs:
            hilum = lung.to_xy(-0.75, rng.uniform(-0.15, 0.05))
            lateral = 0.0 if lung.side > 0 else math.pi
            for _ in range(int(rng.integers(3, 6))):  # central trunks and first branches
                angle = lateral + lung.side * rng.uniform(-1.5, 1.5)
                length = rng.uniform(0.1, 0.18)
                end = (hilum[0] + length * math.cos(angle), hilum[1] + length * math.sin(angle))
                stroke(hilum, end, rng.uniform(0.02, 0.03), 1.0)
                for turn in (-1, 1):
                    bend = angle + turn * rng.uniform(0.2, 0.6)
                    far = length * rng.uniform(0.6, 1.0)
                    stroke(
                        end,
                        (end[0] + far * math.cos(bend), end[1] + far * math.sin(bend)),
                        0.015,
                        0.9,
                    )
            # Peripheral vessels: short segments pointing away from the hilum, and dots
            # where a vessel crosses the slice; thinner and fainter towards the pleura.
            for _ in range(int(rng.integers(35, 70) * density)):
                u, v = rng.uniform(-0.6, 1.0), rng.uniform(-1.0, 1.0)
                x, y = lung.to_xy(u, v)
                reach = min(1.0, math.hypot(x - hilum[0], y - hilum[1]) / 0.8)
                width = 0.016 * (1.0 - 0.65 * reach)
                shade = 1.0 - 0.5 * reach
                if rng.random() < 0.55:
                    angle = math.atan2(y - hilum[1], x - hilum[0]) + rng.uniform(-0.5, 0.5)
                    length = rng.uniform(0.03, 0.1)
                    stroke(
                        (x, y),
                        (x + length * math.cos(angle), y + length * math.sin(angle)),
                        width,
                        shade,
                    )
                else:
                    px, py = c.to_pixel(x, y)
                    r = max(0.6, 0.6 * width * width_scale * c.scale)
                    draw.ellipse([px - r, py - r, px + r, py + r], fill=shade)
        return np.asarray(layer)

    def draw_vessels(self, density: float = 1.0) -> None:
        """Pulmonary vessels: bright branches near the hilum, fine dots at the periphery."""
        alpha = self._tree_layer(density, 1.0) * self.lung
        self.hu += alpha * (_HU_SOFT - self.hu) * 0.85

    # -- pathology ----------------------------------------------------------------------

    def _lung_point(self, lung: _Lung, peripheral: bool, posterior: float) -> tuple[int, int]:
        """A random (row, column) inside ``lung``, near the pleura when ``peripheral``.

        ``posterior`` > 0 favours the back and the lateral side of the lung.
        """
        candidates = lung.mask
        if peripheral:
            if self._pleura_distance is None:
                self._pleura_distance = ndimage.distance_transform_edt(self.lung)
            band = lung.mask & (self._pleura_distance < 0.06 * self.canvas.scale + 1.5)
            candidates = band if band.any() else lung.mask
        rows, cols = np.nonzero(candidates)
        if rows.size == 0:
            raise RuntimeError("internal error: a lung field came out empty")
        weights = np.exp(posterior * (lung.v[rows, cols] + 0.4 * lung.u[rows, cols]))
        pick = int(self.rng.choice(rows.size, p=weights / weights.sum()))
        return int(rows[pick]), int(cols[pick])

    def _lesion_patch(self, lung: _Lung, size: float) -> np.ndarray:
        """A soft, irregular patch along the pleura, more often at the back (0..1)."""
        c, rng = self.canvas, self.rng
        posterior = 2.5 if rng.random() < 0.8 else 0.0
        row, col = self._lung_point(lung, peripheral=True, posterior=posterior)
        # The inward normal of the pleura is the gradient of the distance to it.
        distance = self._pleura_distance
        assert distance is not None
        r0, r1 = max(row - 1, 0), min(row + 1, c.height - 1)
        c0, c1 = max(col - 1, 0), min(col + 1, c.width - 1)
        d_col = float(distance[row, c1] - distance[row, c0])
        d_row = float(distance[r1, col] - distance[r0, col])
        nx, ny = c.cos * d_col + c.sin * d_row, -c.sin * d_col + c.cos * d_row
        phi = math.atan2(ny, nx) if (nx or ny) else rng.uniform(-math.pi, math.pi)
        along, across = size * rng.uniform(0.12, 0.26), size * rng.uniform(0.07, 0.14)
        x0 = float(c.x[row, col]) + 0.3 * across * math.cos(phi)
        y0 = float(c.y[row, col]) + 0.3 * across * math.sin(phi)
        dx, dy = c.x - x0, c.y - y0
        radial = math.cos(phi) * dx + math.sin(phi) * dy
        tangent = -math.sin(phi) * dx + math.cos(phi) * dy
        shape = np.sqrt(np.square(tangent / along) + np.square(radial / across))
        wobble = _smooth_noise(rng, c.shape, max(3.0, c.scale * 0.05))
        return _soft_step(1.0 - shape + 0.25 * wobble, 0.45) * lung.mask

    def draw_covid(self, consolidation: bool) -> None:
        c, rng, d = self.canvas, self.rng, self.difficulty
        # Lesion burden falls with difficulty: more, larger, denser patches when easy.
        n_patches = int(rng.integers(2, 4) + round(rng.integers(1, 7) * (1.0 - d)))
        size = _lerp(1.9, 0.8, d)
        alpha = np.zeros(c.shape, dtype=np.float32)
        patches = []
        for k in range(n_patches):
            lung = self.lungs[k % 2] if k < 2 else self.lungs[int(rng.integers(2))]
            patch = self._lesion_patch(lung, size * rng.uniform(0.7, 1.3))
            patches.append(patch)
            alpha = np.maximum(alpha, patch)
        contrast = _lerp(550.0, 200.0, d) * rng.uniform(0.8, 1.2)
        mottle = 0.75 + 0.25 * _smooth_noise(rng, c.shape, max(2.5, c.scale * 0.03))
        self.hu += alpha * contrast * mottle
        if rng.random() < 0.6:  # reticulation: "crazy paving"
            net = _ridges(_smooth_noise(rng, c.shape, max(3.0, c.scale * 0.045)))
            self.hu += net * alpha * contrast * rng.uniform(0.35, 0.7)
        self.lesion = np.maximum(self.lesion, alpha)
        if consolidation:
            core = np.clip((patches[0] - 0.55) / 0.3, 0.0, 1.0)
            self._consolidate(core, rng.uniform(-60.0, 30.0))
            self.lesion = np.maximum(self.lesion, core)

    def _consolidate(self, alpha: np.ndarray, density: float) -> None:
        """Fill ``alpha`` towards ``density`` HU, leaving dark air bronchograms."""
        bronchi = self._tree_layer(0.5, 0.6)
        target = density + bronchi * (_HU_LUNG + 100.0 - density) * 0.8
        self.hu += alpha * (target - self.hu)

    def draw_nodules(self) -> None:
        c, rng, d = self.canvas, self.rng, self.difficulty
        for _ in range(int(rng.integers(1, 5))):
            lung = self.lungs[int(rng.integers(2))]
            row, col = self._lung_point(lung, peripheral=False, posterior=0.0)
            x, y = float(c.x[row, col]), float(c.y[row, col])
            radius = rng.uniform(0.03, 0.08)
            distance = c.ellipse((x, y), (radius, radius * rng.uniform(0.85, 1.15)))
            if rng.random() < d:  # a ground-glass halo around the nodule
                halo = _soft_step(2.2 - distance, 1.0) * lung.mask
                self.hu += halo * _lerp(120.0, 260.0, d)
            solid = _soft_step(1.0 - distance, 0.2) * lung.mask
            self.hu += solid * (30.0 - self.hu)

    def draw_lobar_consolidation(self) -> None:
        rng, d = self.rng, self.difficulty
        lung = self.lungs[int(rng.integers(2))]
        psi = rng.uniform(0.3, 2.0)  # mostly lower, posterior lobes
        distance = math.cos(psi) * lung.u + math.sin(psi) * lung.v - rng.uniform(0.0, 0.45)
        softness = _lerp(0.03, 0.25, d)
        alpha = _soft_step(distance, softness) * lung.mask
        density = _lerp(30.0, -350.0, d * rng.uniform(0.4, 1.0))
        self._consolidate(alpha, density)

    def draw_emphysema(self) -> None:
        c, rng = self.canvas, self.rng
        self.hu[self.lung] -= rng.uniform(30.0, 60.0)
        holes = _smooth_noise(rng, c.shape, max(2.5, c.scale * 0.03))
        threshold = rng.uniform(1.0, 1.5)
        lucent = _soft_step(holes - threshold, 0.4) * self.lung
        self.hu += lucent * (-995.0 - self.hu)
        for _ in range(int(rng.integers(0, 3))):  # bullae under the pleura
            lung = self.lungs[int(rng.integers(2))]
            row, col = self._lung_point(lung, peripheral=True, posterior=-1.0)
            x, y = float(c.x[row, col]), float(c.y[row, col])
            r = rng.uniform(0.06, 0.14)
            bulla = (c.ellipse((x, y), (r, r * 0.8)) < 1.0) & lung.mask
            self.hu[bulla] = -990.0

    def draw_effusion(self) -> None:
        c, rng = self.canvas, self.rng
        sides = [0, 1] if rng.random() < 0.4 else [int(rng.integers(2))]
        for side in sides:
            lung = self.lungs[side].mask
            depth = max(2, int(round(rng.uniform(0.08, 0.22) * c.scale)))
            shifted = np.zeros_like(lung)
            shifted[:-depth] = lung[depth:]
            fluid = lung & ~shifted  # the lowest `depth` pixels of each column: it layers
            rim = max(1, depth // 3)
            above = np.zeros_like(lung)
            above[: -(depth + rim)] = lung[depth + rim :]
            atelectasis = lung & ~above & ~fluid
            self.hu[atelectasis] += rng.uniform(150.0, 350.0)
            self.hu[fluid] = rng.uniform(5.0, 25.0)
            self.lung = self.lung & ~fluid

    def draw_dependent_haze(self) -> None:
        """Gravity-dependent density at the back of both lungs (a confounder)."""
        strength = _lerp(40.0, 200.0, self.difficulty) * self.rng.uniform(0.5, 1.0)
        start = self.rng.uniform(0.35, 0.6)
        for lung in self.lungs:
            ramp = np.clip((lung.v - start) / (1.0 - start), 0.0, 1.0)
            self.hu += strength * np.square(ramp) * lung.mask

    # -- imaging -------------------------------------------------------------------------

    def finish(self) -> np.ndarray:
        """Blur, add scanner noise, apply a random lung window; return uint8."""
        rng, d, c = self.rng, self.difficulty, self.canvas
        hu = ndimage.gaussian_filter(self.hu, rng.uniform(0.5, 1.1) * max(1.0, c.scale / 180))
        noise_sd = rng.uniform(6.0, 15.0) + _lerp(3.0, 30.0, d) * rng.uniform(0.5, 1.0)
        noise = ndimage.gaussian_filter(rng.standard_normal(c.shape).astype(np.float32), 0.7)
        hu += noise * (noise_sd / 0.4)  # a 0.7-px blur leaves about 0.4 of the sd
        # Air just below the window (black), lung dark grey, soft tissue near white.
        lowest, width = rng.uniform(-1020.0, -960.0), rng.uniform(1100.0, 1500.0)
        value = np.clip((hu - lowest) / width, 0.0, 1.0)
        value = value ** rng.uniform(0.6, 0.85)
        low, high = rng.uniform(0.0, 0.06), rng.uniform(0.9, 1.0)
        return np.round((low + (high - low) * value) * 255.0).astype(np.uint8)


def render_phantom(
    rng: np.random.Generator,
    covid: bool,
    difficulty: float,
    size: tuple[int, int],
    *,
    finding: str | None = None,
) -> PhantomSlice:
    """Render one slice with its lesion, lung and body masks.

    Args:
        rng: the source of randomness (the slice depends only on its state).
        covid: draw COVID lesions (True) or a non-COVID finding (False).
        difficulty: 0 (obvious lesions) to 1 (subtle lesions, strong confounders).
        size: (width, height) in pixels.
        finding: force a finding (see :data:`NON_COVID_FINDINGS` / :data:`COVID_FINDINGS`)
            instead of drawing one at random.

    Example:
        >>> s = render_phantom(np.random.default_rng(1), True, 0.5, (240, 160))
        >>> s.image.shape, bool(s.lesion_mask.any()), bool((s.lesion_mask <= s.lung_mask).all())
        ((160, 240), True, True)
    """
    _check_difficulty(difficulty)
    width, height = size
    if width < 32 or height < 32:
        raise ValueError(f"size must be at least 32x32 pixels, got {width}x{height}")
    allowed = COVID_FINDINGS if covid else tuple(NON_COVID_FINDINGS)
    if finding is None:
        if covid:
            finding = "ggo_consolidation" if rng.random() < _lerp(0.5, 0.2, difficulty) else "ggo"
        else:
            probabilities = np.array(list(NON_COVID_FINDINGS.values()))
            finding = str(rng.choice(allowed, p=probabilities / probabilities.sum()))
    elif finding not in allowed:
        kind = "COVID" if covid else "non-COVID"
        raise ValueError(f"unknown {kind} finding {finding!r}; choose one of {list(allowed)}")

    builder = _SliceBuilder(rng, (width, height), difficulty)
    builder.draw_anatomy()
    if rng.random() < _lerp(0.15, 0.6, difficulty):
        builder.draw_dependent_haze()
    if finding == "emphysema":
        builder.draw_emphysema()
    if covid:
        builder.draw_covid(consolidation=finding == "ggo_consolidation")
    builder.draw_vessels(density=0.6 if finding == "emphysema" else 1.0)
    if finding == "nodules":
        builder.draw_nodules()
    elif finding == "lobar_consolidation":
        builder.draw_lobar_consolidation()
    elif finding == "effusion":
        builder.draw_effusion()
    lesion_mask = (builder.lesion > 0.3) & builder.lung
    return PhantomSlice(
        image=builder.finish(),
        lesion_mask=lesion_mask,
        lung_mask=builder.lung.copy(),
        body_mask=builder.body.copy(),
        finding=finding,
    )


def render_slice(
    rng: np.random.Generator, covid: bool, difficulty: float, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, str]:
    """Render one slice; return ``(image uint8 HxW, lesion mask bool HxW, finding)``.

    Args:
        rng: the source of randomness.
        covid: draw COVID lesions or a non-COVID finding.
        difficulty: 0 (easy) to 1 (hard).
        size: (width, height) in pixels.

    Example:
        >>> image, mask, finding = render_slice(np.random.default_rng(0), False, 0.5, (200, 150))
        >>> image.dtype, image.shape, bool(mask.any()), finding in NON_COVID_FINDINGS
        (dtype('uint8'), (150, 200), False, True)
    """
    rendered = render_phantom(rng, covid, difficulty, size)
    return rendered.image, rendered.lesion_mask, rendered.finding


# ---------------------------------------------------------------------------------------
# The dataset on disk
# ---------------------------------------------------------------------------------------


def is_covid_index(seed: int, index: int) -> bool:
    """Whether image ``index`` (1-based) of the phantom with ``seed`` is a COVID image.

    Each consecutive pair (1, 2), (3, 4), ... holds one image of each class in a random
    order, so classes stay balanced for any ``n`` and image ``k`` does not depend on ``n``.

    Example:
        >>> is_covid_index(0, 1) != is_covid_index(0, 2)
        True
    """
    pair = (index - 1) // 2
    covid_first = bool(np.random.default_rng([seed, pair, 1]).integers(2))
    return ((index - 1) % 2 == 0) == covid_first


def phantom_manifest(n: int, seed: int, difficulty: float) -> dict[str, Any]:
    """The parameters that identify a phantom (compared to reuse a cached copy)."""
    return {
        "generator": GENERATOR,
        "version": GENERATOR_VERSION,
        "n": int(n),
        "seed": int(seed),
        "difficulty": float(difficulty),
    }


def read_manifest(out_dir: str | Path) -> dict[str, Any] | None:
    """Return the manifest of a generated phantom folder, or None when there is none."""
    path = Path(out_dir) / MANIFEST_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def is_current(out_dir: str | Path, n: int, seed: int, difficulty: float) -> bool:
    """Whether ``out_dir`` already holds the phantom with these parameters.

    Example:
        >>> is_current("/nonexistent/phantom", 200, 0, 0.5)
        False
    """
    manifest = read_manifest(out_dir)
    if manifest is None or not (Path(out_dir) / LABELS_NAME).is_file():
        return False
    wanted = phantom_manifest(n, seed, difficulty)
    return all(manifest.get(key) == wanted[key] for key in _PARAMETER_KEYS)


def generate_phantom(
    out_dir: str | Path,
    n: int = 200,
    seed: int = 0,
    difficulty: float = 0.5,
    overwrite: bool = False,
) -> Path:
    """Write the phantom dataset into ``out_dir`` (or reuse it when already there).

    Layout: ``COVID/phantom_00001.png``, ``non-COVID/phantom_00002.png`` ... (8-bit
    grayscale, global numbering), ``masks/<class>/<same name>`` (0/255 lesion masks, all
    zero for non-COVID), ``labels.csv`` (columns :data:`LABELS_COLUMNS`) and
    ``manifest.json``. Everything is written into a temporary sibling folder that is
    renamed into place only when complete. The same arguments give byte-identical files.

    Args:
        out_dir: the dataset folder to create.
        n: number of images (at least 2); classes alternate in random order per pair.
        seed: non-negative integer seed.
        difficulty: 0 (obvious lesions) to 1 (subtle lesions, strong confounders).
        overwrite: replace an existing phantom made with other parameters.

    Returns:
        ``out_dir`` as a Path.

    Raises:
        ValueError: for a bad ``n``, ``seed`` or ``difficulty``.
        PhantomExistsError: ``out_dir`` holds something else and ``overwrite`` is False,
            or it is not a phantom folder (never deleted, even with ``overwrite``).

    Example:
        >>> import tempfile, pathlib
        >>> out = generate_phantom(pathlib.Path(tempfile.mkdtemp()) / "ph", n=2, seed=3)
        >>> read_manifest(out)["counts"]
        {'COVID': 1, 'non-COVID': 1}
    """
    _check_count(n)
    _check_seed(seed)
    _check_difficulty(difficulty)
    out = Path(out_dir)
    if is_current(out, n, seed, difficulty):
        return out
    # Runners started together build it once: the others wait here, then find it current.
    out.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(out.parent):
        if out.exists() or out.is_symlink():
            if is_current(out, n, seed, difficulty):
                return out
            _refuse_to_replace(out, overwrite)
        try:
            # An old phantom is replaced only once the new one is complete.
            with atomic_dir(out, replace=True) as tmp:
                _write_phantom(tmp, n, seed, difficulty)
        except FileExistsError:
            # Another process may have finished the same phantom first: that is fine.
            if not is_current(out, n, seed, difficulty):
                raise
    return out


def ensure_phantom(root: str | Path | None = None, profile: Profile | None = None) -> Path:
    """Return the phantom a profile asks for, generating it when missing or stale.

    The size and difficulty come from ``profile`` (default: the one ``COVIDLIB_PROFILE``
    selects). The default folder, ``data_dir()/"phantom"``, is a cache: a phantom of
    another profile there is replaced. A phantom of other parameters in an explicit
    ``root`` is not (:class:`PhantomExistsError`).

    Example:
        >>> import tempfile, pathlib
        >>> from covidlib.config import get_profile
        >>> small = get_profile("quick").with_overrides(phantom_size=4)
        >>> root = ensure_phantom(pathlib.Path(tempfile.mkdtemp()) / "phantom", small)
        >>> read_manifest(root)["n"]
        4
    """
    from covidlib.config import get_profile
    from covidlib.data.registry import default_root

    chosen = profile or get_profile()
    return generate_phantom(
        default_root("phantom") if root is None else root,
        n=chosen.phantom_size,
        difficulty=chosen.phantom_difficulty,
        overwrite=root is None,
    )


def _refuse_to_replace(out: Path, overwrite: bool) -> None:
    """Raise unless ``out`` may be replaced by a freshly generated phantom."""
    if not out.is_dir():
        what = "is a broken symbolic link or a link loop" if not out.exists() else "is not a folder"
        raise PhantomExistsError(f"{out} exists and {what}; choose another --out.")
    manifest = read_manifest(out)
    is_empty = not any(out.iterdir())
    if not is_empty and (manifest is None or manifest.get("generator") != GENERATOR):
        raise PhantomExistsError(
            f"{out} exists and is not a phantom folder (no {MANIFEST_NAME} from {GENERATOR}); "
            "refusing to replace it. Choose an empty or new folder."
        )
    if not overwrite and not is_empty:
        found = {key: manifest.get(key) for key in _PARAMETER_KEYS} if manifest else {}
        raise PhantomExistsError(
            f"{out} holds a phantom made with other parameters ({found}); pass "
            "overwrite=True (--overwrite) to replace it, or choose another folder."
        )


def _write_phantom(root: Path, n: int, seed: int, difficulty: float) -> None:
    """Render all images into ``root`` and write labels.csv and manifest.json."""
    for class_name in CLASS_NAMES.values():
        (root / class_name).mkdir()
        (root / "masks" / class_name).mkdir(parents=True)
    rows = []
    counts = {name: 0 for name in sorted(CLASS_NAMES.values())}
    findings: dict[str, int] = {}
    for index in range(1, n + 1):
        covid = is_covid_index(seed, index)
        rng = np.random.default_rng([seed, index])
        size = sample_size(rng)
        rendered = render_phantom(rng, covid, difficulty, size)
        class_name = CLASS_NAMES[int(covid)]
        file = f"{class_name}/phantom_{index:05d}.png"
        mask = f"masks/{file}"
        _save_png(rendered.image, root / file)
        _save_png(rendered.lesion_mask.astype(np.uint8) * 255, root / mask)
        rows.append((file, int(covid), class_name, rendered.finding, *size, mask))
        counts[class_name] += 1
        findings[rendered.finding] = findings.get(rendered.finding, 0) + 1
    with open(root / LABELS_NAME, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(LABELS_COLUMNS)
        writer.writerows(rows)
    manifest = phantom_manifest(n, seed, difficulty)
    manifest["counts"] = counts
    manifest["findings"] = dict(sorted(findings.items()))
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    (root / MANIFEST_NAME).write_text(text, encoding="utf-8")


def _save_png(array: np.ndarray, path: Path) -> None:
    # Fixed options and no metadata: the same array always gives the same bytes.
    # Level 1 is three times faster than the default 6 and only ~15% bigger here.
    Image.fromarray(array).save(path, format="PNG", optimize=False, compress_level=1)


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


# ---------------------------------------------------------------------------------------
# Leakage audit: the multi-slice phantom (several slices per synthetic patient)
# ---------------------------------------------------------------------------------------

PATIENT_PHANTOM = "phantom-patients"  # its registry name: caches never collide with "phantom"
PATIENT_GENERATOR = "covidlib.phantom-patients"
PATIENT_DEFAULTS: dict[str, Any] = {"patients": 40, "slices": 5, "seed": 0, "difficulty": 0.2}


def _patient_slice(base: PhantomSlice, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A neighbouring slice of one patient: the same anatomy and lesions, slightly scaled
    and shifted, through another window and another scanner noise."""
    height, width = base.image.shape
    scale = rng.uniform(0.95, 1.05)
    shift = rng.uniform(-0.03, 0.03, size=2) * (height, width)
    centre = np.array([height, width]) / 2.0
    matrix = np.eye(2) / scale
    offset = centre - matrix @ (centre + shift)
    image = ndimage.affine_transform(base.image.astype(np.float32), matrix, offset, order=1)
    mask = ndimage.affine_transform(base.lesion_mask.astype(np.float32), matrix, offset,
                                    order=0) > 0.5
    gamma, gain = rng.uniform(0.85, 1.15), rng.uniform(0.9, 1.1)
    image = 255.0 * np.clip(gain * (image / 255.0) ** gamma, 0.0, 1.0)
    image = image + rng.normal(0.0, 4.0, size=image.shape)
    return np.clip(np.round(image), 0, 255).astype(np.uint8), mask


def generate_patient_phantom(
    out_dir: str | Path,
    patients: int = 40,
    slices: int = 5,
    seed: int = 0,
    difficulty: float = 0.5,
) -> Path:
    """Write a phantom with ``slices`` slices of each of ``patients`` synthetic patients.

    The slices of one patient share anatomy and lesions (one rendered slice, moved a little,
    windowed and noised anew each time), as the neighbouring slices of one scan do: a model
    tested on one slice of a patient it was trained on has seen the answer. Files are
    ``<class>/p<patient>%<slice>.png``, so the index groups them by patient (the registry's
    ``source`` grouping: the name before ``%``). Reused when already there with the same
    parameters; written to a temporary folder and renamed.

    Example:
        >>> import tempfile, pathlib
        >>> root = generate_patient_phantom(pathlib.Path(tempfile.mkdtemp()) / "pp", 2, 3)
        >>> sorted(p.name for p in (root / "COVID").iterdir())
        ['p0001%01.png', 'p0001%02.png', 'p0001%03.png']
    """
    _check_count(patients)
    _check_seed(seed)
    _check_difficulty(difficulty)
    if isinstance(slices, bool) or not isinstance(slices, int) or slices < 1:
        raise ValueError(f"slices must be a positive integer, got {slices!r}")
    out = Path(out_dir)
    wanted = {"generator": PATIENT_GENERATOR, "version": GENERATOR_VERSION,
              "patients": patients, "slices": slices, "seed": seed,
              "difficulty": float(difficulty)}
    manifest = read_manifest(out)
    if manifest is not None and all(manifest.get(k) == v for k, v in wanted.items()):
        return out
    if out.exists() and any(out.iterdir()) and (manifest or {}).get("generator") != (
            PATIENT_GENERATOR):
        raise PhantomExistsError(f"{out} exists and is not a multi-slice phantom; choose an "
                                 "empty or new folder.")
    try:
        with atomic_dir(out, replace=True) as tmp:
            _write_patient_phantom(tmp, wanted)
    except FileExistsError:
        manifest = read_manifest(out)
        if manifest is None or any(manifest.get(k) != v for k, v in wanted.items()):
            raise
    return out


def _write_patient_phantom(root: Path, wanted: dict[str, Any]) -> None:
    for class_name in CLASS_NAMES.values():
        (root / class_name).mkdir()
        (root / "masks" / class_name).mkdir(parents=True)
    rows = []
    for patient in range(1, wanted["patients"] + 1):
        covid = is_covid_index(wanted["seed"], patient)
        rng = np.random.default_rng([wanted["seed"], patient, 7])
        size = sample_size(rng)
        base = render_phantom(rng, covid, wanted["difficulty"], size)
        class_name = CLASS_NAMES[int(covid)]
        for index in range(1, wanted["slices"] + 1):
            image, mask = _patient_slice(base, np.random.default_rng(
                [wanted["seed"], patient, index, 11]))
            file = f"{class_name}/p{patient:04d}%{index:02d}.png"
            _save_png(image, root / file)
            _save_png(mask.astype(np.uint8) * 255, root / "masks" / file)
            rows.append((file, int(covid), class_name, base.finding, *size, f"masks/{file}"))
    with open(root / LABELS_NAME, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(LABELS_COLUMNS)
        writer.writerows(rows)
    text = json.dumps(wanted, indent=2, sort_keys=True) + "\n"
    (root / MANIFEST_NAME).write_text(text, encoding="utf-8")


def ensure_patient_phantom(root: str | Path | None = None) -> Path:
    """Return the multi-slice phantom (:data:`PATIENT_DEFAULTS`), generating it when missing;
    the default folder is ``data_dir()/"phantom-patients"``."""
    from covidlib.data.registry import default_root

    return generate_patient_phantom(default_root(PATIENT_PHANTOM) if root is None else root,
                                    **PATIENT_DEFAULTS)
