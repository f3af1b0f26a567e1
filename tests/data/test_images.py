"""Tests for covidlib.data.images: every on-disk mode becomes 8-bit grayscale; bad files fail."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from covidlib.data.images import ImageLoadError, load_grayscale, probe_image


def _save(image: Image.Image, path: Path, **kwargs: object) -> Path:
    image.save(path, **kwargs)
    return path


@pytest.mark.parametrize(
    ("mode", "color", "expected"),
    [
        ("L", 77, 77),
        ("1", 1, 255),
        ("RGB", (255, 0, 0), 76),  # ITU-R 601 luma of pure red
        ("RGB", (10, 10, 10), 10),
        ("RGBA", (200, 200, 200, 255), 200),
        ("RGBA", (200, 200, 200, 0), 0),  # fully transparent -> black, not white
        ("RGBA", (200, 200, 200, 128), 100),  # half transparent over black
        ("LA", (200, 128), 100),
        ("LA", (255, 0), 0),
    ],
)
def test_modes_become_l(tmp_path: Path, mode: str, color: object, expected: int) -> None:
    path = _save(Image.new(mode, (5, 3), color), tmp_path / "x.png")
    image = load_grayscale(path)
    assert image.mode == "L" and image.size == (5, 3)
    assert abs(image.getpixel((2, 1)) - expected) <= 1


def test_palette_with_and_without_transparency(tmp_path: Path) -> None:
    palette = Image.new("P", (4, 2))
    palette.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    palette.putpixel((0, 0), 1)
    opaque = load_grayscale(_save(palette, tmp_path / "p.png"))
    assert Image.open(tmp_path / "p.png").mode == "P"
    assert opaque.getpixel((0, 0)) == 255 and opaque.getpixel((1, 0)) == 0
    transparent = load_grayscale(_save(palette, tmp_path / "pt.png", transparency=1))
    assert transparent.getpixel((0, 0)) == 0  # the transparent white index turns black


@pytest.mark.parametrize("offset", [0, 5000, 60000])
def test_sixteen_bit_is_scaled_by_its_range_not_clipped(tmp_path: Path, offset: int) -> None:
    values = (np.arange(12, dtype=np.uint16).reshape(3, 4) * 400 + offset).astype(np.uint16)
    path = _save(Image.fromarray(values), tmp_path / "i16.png")
    assert Image.open(path).mode.startswith("I")
    pixels = np.asarray(load_grayscale(path))
    assert pixels.dtype == np.uint8
    assert pixels.min() == 0 and pixels.max() == 255
    assert np.all(np.diff(pixels.ravel().astype(int)) > 0)  # order kept, nothing saturated


def test_constant_sixteen_bit_image_is_black(tmp_path: Path) -> None:
    path = _save(Image.fromarray(np.full((2, 2), 1000, np.uint16)), tmp_path / "c.png")
    assert np.asarray(load_grayscale(path)).max() == 0


def test_cmyk_jpeg(tmp_path: Path) -> None:
    path = _save(Image.new("CMYK", (8, 8), (0, 0, 0, 0)), tmp_path / "c.jpg")
    assert Image.open(path).mode == "CMYK"
    image = load_grayscale(path)
    assert image.mode == "L" and image.getextrema()[0] >= 250  # no ink = white


@pytest.mark.parametrize(("orientation", "size"), [(1, (40, 20)), (6, (20, 40)), (8, (20, 40))])
def test_exif_rotation_is_applied(tmp_path: Path, orientation: int, size: tuple[int, int]) -> None:
    image = Image.new("RGB", (40, 20), (0, 0, 0))
    image.paste((255, 255, 255), (0, 0, 10, 20))  # white band on the left
    exif = image.getexif()
    exif[0x0112] = orientation
    path = _save(image, tmp_path / "e.jpg", exif=exif.tobytes(), quality=95)
    loaded = load_grayscale(path)
    assert loaded.size == size
    assert (probe_image(path).width, probe_image(path).height) == size
    if orientation == 6:  # rotated 90 degrees clockwise: the band ends up at the top
        assert loaded.getpixel((10, 2)) > 200 and loaded.getpixel((10, 37)) < 50


def _truncated(source: Path, target: Path) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    return target


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda d: _write_empty(d / "empty.png"), "empty file"),
        (lambda d: _write_text(d / "notes.png"), "not an image"),
        (lambda d: _write_text(d / "readme.txt"), "not an image"),
        (lambda d: _truncated(_noise(d / "n.png"), d / "t.png"), "truncated"),
        (lambda d: _truncated(_noise(d / "n.jpg"), d / "t.jpg"), "truncated"),
        (lambda d: d / "missing.png", "does not exist"),
    ],
)
def test_bad_files_raise_image_load_error(tmp_path: Path, make: object, reason: str) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    for function in (load_grayscale, probe_image):
        with pytest.raises(ImageLoadError, match=reason) as caught:
            function(path)
        assert str(path) in str(caught.value) and caught.value.path == path
    assert isinstance(caught.value, ValueError)


def _write_empty(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def _write_text(path: Path) -> Path:
    path.write_text("this is not an image\n")
    return path


def _noise(path: Path) -> Path:
    Image.effect_noise((64, 64), 60).convert("RGB").save(path)
    return path


def test_result_is_detached_from_file(tmp_path: Path) -> None:
    path = _save(Image.new("L", (3, 3), 9), tmp_path / "a.png")
    image = load_grayscale(path)
    path.unlink()
    assert image.getpixel((0, 0)) == 9


def test_probe_and_load_agree_on_an_exif_rotated_png(tmp_path: Path) -> None:
    image = Image.new("L", (40, 10))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise
    image.save(tmp_path / "rotated.png", exif=exif)
    info = probe_image(tmp_path / "rotated.png")
    assert (info.width, info.height) == load_grayscale(tmp_path / "rotated.png").size == (10, 40)
