"""Reading CT slices from disk as 8-bit grayscale, whatever their file format.

The public COVID-19 CT collections were cut out of papers and web pages, so one folder
mixes RGBA, RGB, palette and grayscale PNGs with JPEGs. :func:`load_grayscale` turns each
into one 8-bit ``"L"`` image:

* ``L`` as is; ``1`` and ``P`` through their palette; ``RGB``/``CMYK``/``YCbCr`` by luma;
* anything with an alpha channel (``LA``, ``RGBA``, ``PA``, ``P`` with transparency) is
  composited onto **black** (transparent margins become air, not a white frame);
* 16-bit and 32-bit images (``I;16``, ``I``, ``F``) are scaled linearly from their own
  minimum..maximum to 0..255, never clipped;
* the EXIF orientation of JPEGs is applied.

A file that cannot be decoded completely (empty, truncated, not an image) raises
:class:`ImageLoadError` naming the path and the reason. Truncated files are never
accepted (``ImageFile.LOAD_TRUNCATED_IMAGES`` stays off).

Example:
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "rgba.png"
    >>> Image.new("RGBA", (4, 3), (255, 255, 255, 0)).save(path)
    >>> image = load_grayscale(path)
    >>> image.mode, image.size, image.getextrema()
    ('L', (4, 3), (0, 0))
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

__all__ = ["ImageInfo", "ImageLoadError", "load_grayscale", "probe_image"]

_ALPHA_MODES = {"LA", "La", "RGBA", "RGBa", "PA"}
_WIDE_MODES = {"I", "F"}  # I;16 variants are matched by prefix


class ImageLoadError(ValueError):
    """An image file that cannot be read completely.

    Attributes:
        path: the file.
        reason: a short explanation (empty file, truncated data, not an image, ...).
    """

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"cannot load image {self.path}: {reason}")


@dataclass(frozen=True)
class ImageInfo:
    """What :func:`probe_image` learns about a file.

    Attributes:
        width: pixels, after EXIF rotation.
        height: pixels, after EXIF rotation.
        mode: PIL mode on disk (``"RGBA"``, ``"L"``, ``"I;16"``, ...).
        format: PIL format name (``"PNG"``, ``"JPEG"``, ...).
    """

    width: int
    height: int
    mode: str
    format: str


def _open_decoded(path: Path) -> Image.Image:
    """Open ``path`` and decode all of its pixels, or raise :class:`ImageLoadError`."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ImageLoadError(path, "file does not exist") from None
    except OSError as error:
        raise ImageLoadError(path, f"cannot read file ({error.strerror or error})") from None
    if path.is_dir():
        raise ImageLoadError(path, "is a folder, not an image file")
    if size == 0:
        raise ImageLoadError(path, "empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            # A huge image (decompression bomb) must fail loudly, not warn.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
            try:
                image.load()
            except BaseException:
                image.close()  # a bad file must not leak its descriptor
                raise
    except UnidentifiedImageError:
        raise ImageLoadError(path, "not an image (format not recognised)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        reason = str(error) or type(error).__name__
        raise ImageLoadError(path, f"truncated or corrupt image data ({reason})") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageLoadError(path, f"image too large ({error})") from None
    if image.width == 0 or image.height == 0:
        raise ImageLoadError(path, f"zero-size image ({image.width}x{image.height})")
    return image


def _exif_orientation(image: Image.Image) -> int:
    """Return the EXIF orientation tag (1 = upright) of any format that carries one."""
    return int(image.getexif().get(ExifTags.Base.Orientation, 1))


def _exif_transposed(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation tag, if any (JPEGs from phones and some scanners)."""
    if _exif_orientation(image) == 1:
        return image
    return ImageOps.exif_transpose(image)


def _scale_to_uint8(image: Image.Image) -> Image.Image:
    """Map a 16/32-bit image linearly from its own min..max onto 0..255."""
    values = np.asarray(image, dtype=np.float64)
    low, high = float(values.min()), float(values.max())
    if high > low:
        scaled = (values - low) * (255.0 / (high - low))
    else:
        scaled = np.zeros_like(values)
    return Image.fromarray(np.rint(scaled).astype(np.uint8), mode="L")


def _to_grayscale(image: Image.Image) -> Image.Image:
    """Convert a decoded image of any mode to 8-bit ``"L"``."""
    mode = image.mode
    if mode == "L":
        return image.copy()
    if mode.startswith("I;16") or mode in _WIDE_MODES:
        return _scale_to_uint8(image)
    has_alpha = mode in _ALPHA_MODES or (mode == "P" and "transparency" in image.info)
    if has_alpha:
        rgba = image.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(black, rgba).convert("L")
    if mode in {"1", "P", "RGB"}:
        return image.convert("L")
    # CMYK, YCbCr, LAB, HSV, ...: go through RGB, which PIL supports for all of them.
    return image.convert("RGB").convert("L")


def load_grayscale(path: str | Path) -> Image.Image:
    """Load an image file as an 8-bit grayscale PIL image (mode ``"L"``).

    Args:
        path: image file (PNG, JPEG, TIFF, BMP, ...).

    Returns:
        A new ``"L"`` image, detached from the file.

    Raises:
        ImageLoadError: the file is missing, empty, truncated, corrupt or not an image.

    Example:
        >>> import tempfile, pathlib
        >>> from PIL import Image
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "rgb.png"
        >>> Image.new("RGB", (5, 2), (255, 0, 0)).save(path)
        >>> load_grayscale(path).getpixel((0, 0))
        76
    """
    source = Path(path)
    image = _open_decoded(source)
    try:
        return _to_grayscale(_exif_transposed(image))
    except (OSError, ValueError) as error:
        raise ImageLoadError(source, f"cannot convert mode {image.mode} ({error})") from None
    finally:
        image.close()


def probe_image(path: str | Path) -> ImageInfo:
    """Decode an image once to check it and return its size, mode and format.

    The pixels are decoded completely (a header alone does not reveal a truncated file),
    but nothing is converted. Width and height are those after EXIF rotation.

    Raises:
        ImageLoadError: as :func:`load_grayscale`.

    Example:
        >>> import tempfile, pathlib
        >>> from PIL import Image
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "x.png"
        >>> Image.new("LA", (7, 3)).save(path)
        >>> probe_image(path)
        ImageInfo(width=7, height=3, mode='LA', format='PNG')
    """
    source = Path(path)
    image = _open_decoded(source)
    try:
        width, height = image.size
        if _exif_orientation(image) in {5, 6, 7, 8}:  # rotated by 90 degrees
            width, height = height, width
        return ImageInfo(width, height, image.mode, str(image.format))
    finally:
        image.close()
