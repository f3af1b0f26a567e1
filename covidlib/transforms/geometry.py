"""Letterbox preprocessing: fit a CT slice onto a model's canvas, keeping its aspect ratio.

The paper embeds every CT slice into a fixed canvas per architecture (Table 1 "custom input
size", e.g. 349x253 for ResNet) instead of stretching it: the image is scaled to fit, its
aspect ratio is kept and the rest is padded. :func:`letterbox` does that for PIL images,
numpy arrays and torch tensors and returns a :class:`Placement` that maps points between
the original pixels and the canvas (for masks, boxes and Grad-CAM maps). :func:`stretch`
and :func:`center_crop` are the two usual alternatives with the same interface.

Example:
    >>> from PIL import Image
    >>> canvas, placement = letterbox(Image.new("L", (100, 50), 200), size=(64, 64))
    >>> canvas.size, placement.box
    ((64, 64), (0, 16, 64, 48))
    >>> placement.to_original(32, 32)
    (50.0, 25.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

Resample = Literal["bilinear", "nearest", "bicubic"]
ImageT = TypeVar("ImageT", Image.Image, np.ndarray, torch.Tensor)

_PIL_RESAMPLE = {
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
    "bicubic": Image.Resampling.BICUBIC,
}
_TORCH_RESAMPLE = {
    "bilinear": InterpolationMode.BILINEAR,
    "nearest": InterpolationMode.NEAREST_EXACT,
    "bicubic": InterpolationMode.BICUBIC,
}


# --------------------------------------------------------------------------------------
# Placement
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Placement:
    """Where an original image landed on the canvas.

    The original image of ``original_size`` (w, h) was resized to ``content_size`` and its
    top-left corner put at ``offset`` (may be negative for a centre crop). Coordinates are
    continuous pixel coordinates (0 = the left edge of the first pixel).

    Attributes:
        original_size: (width, height) of the input image.
        canvas_size: (width, height) of the output canvas.
        offset: (left, top) of the resized image on the canvas.
        content_size: (width, height) of the resized image on the canvas.

    Example:
        >>> p = Placement((200, 100), (100, 100), (0, 25), (100, 50))
        >>> p.to_canvas(200, 100), p.to_original(50, 50)
        ((100.0, 75.0), (100.0, 50.0))
    """

    original_size: tuple[int, int]
    canvas_size: tuple[int, int]
    offset: tuple[int, int]
    content_size: tuple[int, int]

    @property
    def scale(self) -> tuple[float, float]:
        """(x, y) scale factors from original to canvas pixels (equal up to rounding)."""
        return (
            self.content_size[0] / self.original_size[0],
            self.content_size[1] / self.original_size[1],
        )

    @property
    def box(self) -> tuple[int, int, int, int]:
        """The resized image on the canvas as (left, top, right, bottom), unclipped."""
        left, top = self.offset
        return (left, top, left + self.content_size[0], top + self.content_size[1])

    @property
    def visible_box(self) -> tuple[int, int, int, int]:
        """:attr:`box` clipped to the canvas: the canvas pixels that show image content."""
        left, top, right, bottom = self.box
        width, height = self.canvas_size
        return (max(left, 0), max(top, 0), min(right, width), min(bottom, height))

    def to_canvas(self, x: Any, y: Any) -> tuple[Any, Any]:
        """Map original-image coordinates (scalars or arrays) to canvas coordinates."""
        scale_x, scale_y = self.scale
        return (self.offset[0] + _as_float(x) * scale_x, self.offset[1] + _as_float(y) * scale_y)

    def to_original(self, x: Any, y: Any) -> tuple[Any, Any]:
        """Map canvas coordinates (scalars or arrays) back to original-image coordinates."""
        scale_x, scale_y = self.scale
        return (
            (_as_float(x) - self.offset[0]) / scale_x,
            (_as_float(y) - self.offset[1]) / scale_y,
        )

    def box_to_original(self, box: Sequence[float]) -> tuple[float, float, float, float]:
        """Map a canvas box (left, top, right, bottom) to original-image coordinates."""
        left, top = self.to_original(box[0], box[1])
        right, bottom = self.to_original(box[2], box[3])
        return (float(left), float(top), float(right), float(bottom))

    def box_to_canvas(self, box: Sequence[float]) -> tuple[float, float, float, float]:
        """Map an original-image box (left, top, right, bottom) to canvas coordinates."""
        left, top = self.to_canvas(box[0], box[1])
        right, bottom = self.to_canvas(box[2], box[3])
        return (float(left), float(top), float(right), float(bottom))

    def restore(self, canvas_map: np.ndarray, resample: Resample = "bilinear") -> np.ndarray:
        """Map a 2-D canvas-sized array (e.g. a Grad-CAM heat map) back onto the original.

        Pixels of the original that fell outside the canvas (centre crop) become 0.

        Example:
            >>> p = Placement((20, 10), (10, 10), (0, 2), (10, 5))
            >>> p.restore(np.ones((10, 10), np.float32)).shape
            (10, 20)
        """
        array = np.asarray(canvas_map)
        if array.shape[:2] != (self.canvas_size[1], self.canvas_size[0]):
            raise ValueError(
                f"map of shape {array.shape} does not match the canvas "
                f"{self.canvas_size[0]}x{self.canvas_size[1]} (width x height)"
            )
        width, height = self.content_size
        full = np.zeros((height, width) + array.shape[2:], dtype=array.dtype)
        left, top, right, bottom = self.visible_box
        full[
            top - self.offset[1] : bottom - self.offset[1],
            left - self.offset[0] : right - self.offset[0],
        ] = array[top:bottom, left:right]
        restored, _ = stretch(full, self.original_size, resample=resample)
        return restored


def _as_float(value: Any) -> Any:
    if isinstance(value, (int, float, np.number)):
        return float(value)
    return np.asarray(value, dtype=np.float64)


# --------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------


def check_canvas(size: Any) -> tuple[int, int]:
    try:
        width, height = size
    except (TypeError, ValueError):
        raise ValueError(
            f"canvas size must be a (width, height) pair of positive integers, got {size!r}"
        ) from None
    for value in (width, height):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
            raise ValueError(
                f"canvas size must be a (width, height) pair of positive integers, got {size!r}"
            )
    return int(width), int(height)


def image_size(image: Any) -> tuple[int, int]:
    """Return (width, height) of a PIL image, numpy HxW(xC) array or torch (...)xHxW tensor.

    Raises:
        TypeError: for anything else.
        ValueError: for an image with zero width or height.

    Example:
        >>> image_size(np.zeros((3, 5)))
        (5, 3)
    """
    if isinstance(image, Image.Image):
        width, height = image.size
    elif isinstance(image, np.ndarray):
        if image.ndim not in (2, 3):
            raise ValueError(f"numpy image must be HxW or HxWxC, got shape {image.shape}")
        height, width = image.shape[:2]
    elif isinstance(image, torch.Tensor):
        if image.ndim < 2:
            raise ValueError(f"tensor image must be (...)xHxW, got shape {tuple(image.shape)}")
        height, width = image.shape[-2:]
    else:
        raise TypeError(
            f"expected a PIL image, a numpy array or a torch tensor, got {type(image).__name__}"
        )
    if width <= 0 or height <= 0:
        raise ValueError(f"image has zero size: width={width}, height={height}")
    return int(width), int(height)


def fit_placement(original_size: tuple[int, int], size: tuple[int, int]) -> Placement:
    """Placement of a letterbox: fit inside the canvas, aspect ratio kept, centred.

    One side fills the canvas exactly; the other is rounded to the nearest pixel (at least 1).

    Example:
        >>> fit_placement((1, 400), (349, 253)).box
        (174, 0, 175, 253)
    """
    width, height = check_canvas(size)
    orig_w, orig_h = original_size
    if width * orig_h <= height * orig_w:  # width is the limiting side
        new_w, new_h = width, min(height, max(1, round(orig_h * width / orig_w)))
    else:
        new_w, new_h = min(width, max(1, round(orig_w * height / orig_h))), height
    return Placement(
        (orig_w, orig_h),
        (width, height),
        ((width - new_w) // 2, (height - new_h) // 2),
        (new_w, new_h),
    )


def cover_placement(original_size: tuple[int, int], size: tuple[int, int]) -> Placement:
    """Placement of resize-then-centre-crop: cover the canvas, aspect ratio kept, centred."""
    width, height = check_canvas(size)
    orig_w, orig_h = original_size
    if width * orig_h >= height * orig_w:  # width is the limiting side: height overflows
        new_w, new_h = width, max(height, round(orig_h * width / orig_w))
    else:
        new_w, new_h = max(width, round(orig_w * height / orig_h)), height
    return Placement(
        (orig_w, orig_h),
        (width, height),
        ((width - new_w) // 2, (height - new_h) // 2),
        (new_w, new_h),
    )


def stretch_placement(original_size: tuple[int, int], size: tuple[int, int]) -> Placement:
    """Placement of a plain resize to the canvas (aspect ratio not kept)."""
    width, height = check_canvas(size)
    return Placement(tuple(original_size), (width, height), (0, 0), (width, height))  # type: ignore[arg-type]


def _resize(image: ImageT, new_size: tuple[int, int], resample: Resample) -> ImageT:
    if isinstance(image, Image.Image):
        return image.resize(new_size, resample=_PIL_RESAMPLE[resample])
    if isinstance(image, np.ndarray):
        tensor = torch.from_numpy(np.ascontiguousarray(image))
        is_bool = tensor.dtype == torch.bool
        tensor = tensor.to(torch.uint8) if is_bool else tensor
        tensor = tensor[None] if tensor.ndim == 2 else tensor.permute(2, 0, 1)
        out = _resize(tensor, new_size, "nearest" if is_bool else resample)
        out = out[0] if image.ndim == 2 else out.permute(1, 2, 0)
        array = out.numpy()
        return array.astype(bool) if is_bool else array.astype(image.dtype, copy=False)
    tensor = image
    is_bool = tensor.dtype == torch.bool
    if is_bool:
        tensor, resample = tensor.to(torch.uint8), "nearest"
    if tensor.shape[-1] == new_size[0] and tensor.shape[-2] == new_size[1]:
        out = tensor.clone()
    else:
        float_input = tensor.dtype.is_floating_point
        out = TF.resize(
            tensor,
            [new_size[1], new_size[0]],
            interpolation=_TORCH_RESAMPLE[resample],
            antialias=resample != "nearest",
        )
        if not float_input and out.dtype != tensor.dtype:
            out = out.round().clamp(0, 255).to(tensor.dtype)
    return out.bool() if is_bool else out


def _place(image: ImageT, placement: Placement, fill: Any, resample: Resample) -> ImageT:
    """Resize ``image`` to the placement's content size and paste it onto a filled canvas."""
    resized = _resize(image, placement.content_size, resample)
    width, height = placement.canvas_size
    left, top, right, bottom = placement.visible_box
    src_left, src_top = left - placement.offset[0], top - placement.offset[1]
    src_right, src_bottom = right - placement.offset[0], bottom - placement.offset[1]
    if isinstance(resized, Image.Image):
        canvas = Image.new(resized.mode, (width, height), _pil_fill(resized, fill))
        canvas.paste(resized.crop((src_left, src_top, src_right, src_bottom)), (left, top))
        return canvas
    if isinstance(resized, np.ndarray):
        canvas_np = np.empty((height, width) + resized.shape[2:], dtype=resized.dtype)
        canvas_np[...] = (
            np.asarray(fill, dtype=resized.dtype) if resized.dtype != bool else bool(fill)
        )
        canvas_np[top:bottom, left:right] = resized[src_top:src_bottom, src_left:src_right]
        return canvas_np
    canvas_t = torch.empty(resized.shape[:-2] + (height, width), dtype=resized.dtype)
    fill_t = torch.as_tensor(fill, dtype=resized.dtype)
    if fill_t.ndim == 1 and resized.ndim >= 3:  # one value per channel
        fill_t = fill_t[:, None, None]
    canvas_t[...] = fill_t
    canvas_t[..., top:bottom, left:right] = resized[..., src_top:src_bottom, src_left:src_right]
    return canvas_t


def _pil_fill(image: Image.Image, fill: Any) -> Any:
    bands = len(image.getbands())
    if isinstance(fill, (tuple, list)):
        return tuple(fill) if bands > 1 else fill[0]
    return tuple([fill] * bands) if bands > 1 else fill


def _check_resample(resample: str) -> Resample:
    if resample not in _PIL_RESAMPLE:
        raise ValueError(f"resample must be one of {sorted(_PIL_RESAMPLE)}, got {resample!r}")
    return resample  # type: ignore[return-value]


def letterbox(
    image: ImageT, size: tuple[int, int], fill: Any = 0, resample: Resample = "bilinear"
) -> tuple[ImageT, Placement]:
    """Scale ``image`` to fit the canvas with its aspect ratio kept, centre it, pad the rest.

    Args:
        image: PIL image (any mode), numpy HxW or HxWxC array, or torch (...)xHxW tensor.
        size: canvas (width, height), e.g. (349, 253) for ResNet in Table 1.
        fill: padding value (a number, or one value per channel).
        resample: ``"bilinear"`` (images), ``"nearest"`` (masks, labels) or ``"bicubic"``.

    Returns:
        The canvas (same type, dtype and mode as the input) and its :class:`Placement`.

    Raises:
        TypeError: when ``image`` is not an image.
        ValueError: for a zero-size image or a canvas that is not two positive integers.

    Example:
        >>> out, p = letterbox(np.ones((10, 40), np.uint8), size=(20, 20))
        >>> out.shape, p.box, int(out[0, 0]), int(out[10, 10])
        ((20, 20), (0, 7, 20, 12), 0, 1)
    """
    placement = fit_placement(image_size(image), size)
    return _place(image, placement, fill, _check_resample(resample)), placement


def letterbox_mask(mask: ImageT, size: tuple[int, int]) -> tuple[ImageT, Placement]:
    """Letterbox a label mask with nearest-neighbour sampling (values stay 0/255 or 0/1).

    Example:
        >>> out, _ = letterbox_mask(np.eye(8, dtype=np.uint8) * 255, (16, 8))
        >>> sorted(np.unique(out).tolist())
        [0, 255]
    """
    return letterbox(mask, size, fill=0, resample="nearest")


def stretch(
    image: ImageT, size: tuple[int, int], fill: Any = 0, resample: Resample = "bilinear"
) -> tuple[ImageT, Placement]:
    """Resize ``image`` to exactly the canvas, distorting its aspect ratio (for comparison).

    ``fill`` is accepted for interface compatibility and unused (nothing is padded).

    Example:
        >>> out, p = stretch(np.ones((10, 40), np.uint8), size=(20, 20))
        >>> out.shape, p.scale
        ((20, 20), (0.5, 2.0))
    """
    placement = stretch_placement(image_size(image), size)
    return _place(image, placement, fill, _check_resample(resample)), placement


def center_crop(
    image: ImageT, size: tuple[int, int], fill: Any = 0, resample: Resample = "bilinear"
) -> tuple[ImageT, Placement]:
    """Resize ``image`` to cover the canvas (aspect ratio kept) and crop the centre.

    Content outside the canvas is lost; ``fill`` only matters for rounding slivers.

    Example:
        >>> out, p = center_crop(np.ones((10, 40), np.uint8), size=(20, 20))
        >>> out.shape, p.box
        ((20, 20), (-30, 0, 50, 20))
    """
    placement = cover_placement(image_size(image), size)
    return _place(image, placement, fill, _check_resample(resample)), placement


RESIZE_MODES = {"letterbox": letterbox, "stretch": stretch, "crop": center_crop}


def resize_to_canvas(
    image: ImageT,
    size: tuple[int, int],
    mode: str = "letterbox",
    fill: Any = 0,
    resample: Resample = "bilinear",
) -> tuple[ImageT, Placement]:
    """Dispatch to :func:`letterbox`, :func:`stretch` or :func:`center_crop` by name.

    Example:
        >>> resize_to_canvas(np.zeros((4, 8)), (2, 2), mode="crop")[0].shape
        (2, 2)
    """
    if mode not in RESIZE_MODES:
        raise ValueError(f"mode must be one of {sorted(RESIZE_MODES)}, got {mode!r}")
    return RESIZE_MODES[mode](image, size, fill=fill, resample=resample)


