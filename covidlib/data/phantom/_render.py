"""Rendering one slice: anatomy in Hounsfield-like units, lesions, window, blur, noise."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from covidlib.data.phantom._anatomy import (
    _HU_AIR,
    _HU_BONE,
    _HU_FAT,
    _HU_LUNG,
    _HU_SOFT,
    COVID_FINDINGS,
    NON_COVID_FINDINGS,
    PhantomSlice,
    _Canvas,
    _check_difficulty,
    _lerp,
    _Lung,
    _ridges,
    _smooth_noise,
    _soft_step,
)

if TYPE_CHECKING:
    pass


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
