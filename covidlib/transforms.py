"""Letterbox preprocessing and the paper's training augmentation.

The paper embeds every CT slice into a fixed canvas per architecture (Table 1 "custom input
size", e.g. 349x253 for ResNet) instead of stretching it: the image is scaled to fit, its
aspect ratio is kept and the rest is padded. :func:`letterbox` does that for PIL images,
numpy arrays and torch tensors and returns a :class:`Placement` that maps points between
the original pixels and the canvas (for masks, boxes and Grad-CAM maps). :func:`stretch`
and :func:`center_crop` are the two usual alternatives with the same interface.

Training augmentation (section 5.2 of the paper: cropping, Gaussian blur with probability
0.25, a random amount of Gaussian noise, brightness and contrast changes, horizontal flips;
no rotation or shear) runs on whole batches on the training device, see
:func:`augment_batch`. Every parameter lives in :class:`AugmentConfig`.

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
from dataclasses import dataclass, fields, replace
from typing import Any, Literal, TypeVar

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

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


def _check_canvas(size: Any) -> tuple[int, int]:
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
    width, height = _check_canvas(size)
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
    width, height = _check_canvas(size)
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
    width, height = _check_canvas(size)
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


# --------------------------------------------------------------------------------------
# Channels and normalization
# --------------------------------------------------------------------------------------


def to_rgb(image: ImageT) -> ImageT:
    """Repeat a grayscale image into 3 identical channels (pretrained networks want RGB).

    PIL images become mode ``"RGB"``; numpy HxW becomes HxWx3; torch 1xHxW / Bx1xHxW
    becomes 3 channels (a cheap ``expand`` view). Images that already have 3 channels are
    returned unchanged.

    Example:
        >>> to_rgb(torch.zeros(2, 1, 4, 4)).shape
        torch.Size([2, 3, 4, 4])
    """
    if isinstance(image, Image.Image):
        return image if image.mode == "RGB" else image.convert("L").convert("RGB")
    if isinstance(image, np.ndarray):
        if image.ndim == 3 and image.shape[2] == 3:
            return image
        gray = image if image.ndim == 2 else image[..., 0]
        return np.repeat(gray[..., None], 3, axis=2)
    if isinstance(image, torch.Tensor):
        if image.ndim == 2:
            return image.expand(3, *image.shape)
        if image.shape[-3] == 3:
            return image
        if image.shape[-3] != 1:
            raise ValueError(f"expected 1 or 3 channels, got shape {tuple(image.shape)}")
        return image.expand(*image.shape[:-3], 3, *image.shape[-2:])
    raise TypeError(
        f"expected a PIL image, numpy array or torch tensor, got {type(image).__name__}"
    )


def to_float(batch: torch.Tensor) -> torch.Tensor:
    """Return a float32 tensor in [0, 1] (uint8 is divided by 255, floats are kept)."""
    if batch.dtype == torch.uint8:
        return batch.to(torch.float32).div_(255.0)
    if not batch.dtype.is_floating_point:
        raise TypeError(f"expected a uint8 or floating point tensor, got {batch.dtype}")
    return batch.to(torch.float32)


def normalize_batch(
    batch: torch.Tensor,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> torch.Tensor:
    """Grayscale/RGB uint8 or [0, 1] float (...)xCxHxW -> float32 3-channel normalized.

    ``mean``/``std`` default to ImageNet's; each pretrained model has its own (see
    :attr:`covidlib.models.ModelSpec.normalization`: 0.5 for InceptionV3 and Xception).

    This is the whole evaluation transform after the letterbox: deterministic.

    Example:
        >>> x = normalize_batch(torch.zeros(2, 1, 4, 4, dtype=torch.uint8))
        >>> x.shape, round(float(x[0, 0, 0, 0]), 3)
        (torch.Size([2, 3, 4, 4]), -2.118)
    """
    x = to_float(batch)
    if x.ndim < 3 or x.shape[-3] not in (1, 3):
        raise ValueError(f"expected (...)x1xHxW or (...)x3xHxW, got {tuple(x.shape)}")
    # One fused pass: (x - mean) / std == x * (1 / std) - mean / std, and broadcasting a
    # grayscale channel against the three statistics makes the RGB copy for free.
    std_t = torch.tensor(tuple(std), dtype=torch.float32, device=x.device)[:, None, None]
    mean_t = torch.tensor(tuple(mean), dtype=torch.float32, device=x.device)[:, None, None]
    return torch.addcmul(-mean_t / std_t, x, 1.0 / std_t)


def denormalize_batch(batch: torch.Tensor) -> torch.Tensor:
    """Invert :func:`normalize_batch` back to [0, 1] floats (for showing images)."""
    mean = torch.tensor(IMAGENET_MEAN, device=batch.device)[:, None, None]
    std = torch.tensor(IMAGENET_STD, device=batch.device)[:, None, None]
    return (batch * std + mean).clamp(0, 1)


# --------------------------------------------------------------------------------------
# Augmentation
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AugmentConfig:
    """Training augmentation of the paper (section 5.2); every parameter in one place.

    The paper names the operations but not their strengths; the numbers below are ours,
    chosen mild enough to keep lesions visible. Rotation and shear are deliberately
    absent: the authors found that affine transforms worsened performance.

    Attributes:
        crop_fraction: range of the fraction of the canvas width *and* height kept by the
            random crop (the same fraction for both, so the crop has the canvas's aspect
            ratio and resizing it back does not distort the letterboxed content).
            ``(1.0, 1.0)`` disables cropping.
        flip_p: probability of a horizontal flip.
        blur_p: probability of a Gaussian blur (the paper: 25%).
        blur_sigma: range of the blur's standard deviation in pixels.
        blur_kernel_size: odd side of the blur kernel.
        noise_std: the Gaussian noise's standard deviation is drawn per image uniformly
            from [0, noise_std] (intensities in [0, 1]).
        brightness: brightness factor drawn from [1 - brightness, 1 + brightness].
        contrast: contrast factor drawn from [1 - contrast, 1 + contrast].

    Example:
        >>> AugmentConfig().blur_p
        0.25
        >>> AugmentConfig.only("flip").brightness
        0.0
    """

    crop_fraction: tuple[float, float] = (0.85, 1.0)
    flip_p: float = 0.5
    blur_p: float = 0.25
    blur_sigma: tuple[float, float] = (0.1, 1.5)
    blur_kernel_size: int = 5
    noise_std: float = 0.03
    brightness: float = 0.2
    contrast: float = 0.2

    def __post_init__(self) -> None:
        low, high = self.crop_fraction
        if not 0 < low <= high <= 1:
            raise ValueError(
                f"crop_fraction must satisfy 0 < low <= high <= 1, got {self.crop_fraction}"
            )
        for name in ("flip_p", "blur_p"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(
                    f"{name} must be a probability in [0, 1], got {getattr(self, name)}"
                )
        if not 0 < self.blur_sigma[0] <= self.blur_sigma[1]:
            raise ValueError(f"blur_sigma must satisfy 0 < low <= high, got {self.blur_sigma}")
        if self.blur_kernel_size < 1 or self.blur_kernel_size % 2 == 0:
            raise ValueError(
                f"blur_kernel_size must be a positive odd integer, got {self.blur_kernel_size}"
            )
        for name in ("noise_std", "brightness", "contrast"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")

    @classmethod
    def disabled(cls) -> AugmentConfig:
        """A config that changes nothing (every operation off)."""
        return cls(
            crop_fraction=(1.0, 1.0),
            flip_p=0.0,
            blur_p=0.0,
            noise_std=0.0,
            brightness=0.0,
            contrast=0.0,
        )

    @classmethod
    def only(cls, operation: str, **overrides: Any) -> AugmentConfig:
        """The default strength of one operation (crop, flip, blur, noise, brightness,
        contrast), all others off; ``overrides`` change its parameters (e.g. ``blur_p=1``)."""
        if operation not in OPERATIONS:
            raise ValueError(f"unknown operation {operation!r}; choose one of {list(OPERATIONS)}")
        defaults = cls()
        kept = {name: getattr(defaults, name) for name in OPERATIONS[operation]}
        return replace(cls.disabled(), **{**kept, **overrides})

    def to_dict(self) -> dict[str, Any]:
        """The parameters as a plain dictionary (for tables)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


# Which fields switch each operation on (the others are its parameters).
OPERATIONS: dict[str, tuple[str, ...]] = {
    "crop": ("crop_fraction",),
    "flip": ("flip_p",),
    "brightness": ("brightness",),
    "contrast": ("contrast",),
    "blur": ("blur_p", "blur_sigma", "blur_kernel_size"),
    "noise": ("noise_std",),
}

DEFAULT_AUGMENT = AugmentConfig()


def _uniform(generator: torch.Generator, n: int, low: float, high: float) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def augment_batch(
    batch: torch.Tensor,
    config: AugmentConfig = DEFAULT_AUGMENT,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Augment a batch Bx{1,3}xHxW on its own device, with parameters drawn per image.

    ``torchvision.transforms.v2`` random transforms draw ONE parameter set per call, so a
    batch would get a single crop, flip and blur for all its images; the paper augments
    each image on its own. So the parameters are drawn per image, on the CPU from
    ``generator`` (reproducible, and identical on CPU and GPU), and applied to the whole
    batch: v2's functional kernels where they take a batch (``horizontal_flip`` on the chosen
    images) or per image where the output depends on the image's own box (the crop: one
    small ``resized_crop`` per image, measured faster than one ``grid_sample`` for the whole
    batch on CPU, with the flip applied as each crop is written), and plain vectorised tensor
    ops where v2 has no per-image batched form: the blur is a separable Gaussian with one
    kernel per image; brightness, contrast and the noise's strength are per-image scalars,
    and the noise comes from one bank of normal numbers per batch (see
    ``_add_gaussian_noise``).

    Order: crop, flip, brightness and contrast (one affine map per image, clamped once),
    blur, noise. Output has the input's shape, dtype (uint8 stays uint8, floats stay in
    [0, 1]) and device.

    Example:
        >>> x = torch.full((4, 1, 32, 48), 128, dtype=torch.uint8)
        >>> y = augment_batch(x, generator=torch.Generator().manual_seed(0))
        >>> y.shape == x.shape and y.dtype == x.dtype and not torch.equal(x, y)
        True
    """
    out = augment_float(to_float(batch), config, generator)
    if batch.dtype == torch.uint8:
        return out.mul_(255).round_().to(torch.uint8)
    return out.to(batch.dtype)


def augment_float(
    x: torch.Tensor,
    config: AugmentConfig = DEFAULT_AUGMENT,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """:func:`augment_batch` for a float batch in [0, 1]; returns a new float32 tensor."""
    if x.ndim != 4:
        raise ValueError(f"expected a batch of shape BxCxHxW, got {tuple(x.shape)}")
    if generator is None:
        generator = torch.Generator().manual_seed(int(torch.randint(0, 2**31 - 1, ()).item()))
    count = x.shape[0]
    device = x.device
    x = x.to(torch.float32)
    if count == 0:
        return x.clone()

    flips = torch.rand(count, generator=generator) < config.flip_p
    low, high = config.crop_fraction
    if low < 1.0:  # each crop is flipped as it is written: no second pass over the batch
        x = _random_crops(x, _uniform(generator, count, low, high), generator, flips)
    else:
        x = x.clone()
        chosen = torch.nonzero(flips).flatten().to(device)
        if chosen.numel():
            x[chosen] = TF.horizontal_flip(x[chosen])

    if config.brightness > 0 or config.contrast > 0:
        # brightness b then contrast c around the image mean m: y = b*c*x + b*m*(1 - c)
        bright = _uniform(generator, count, 1 - config.brightness, 1 + config.brightness)
        contrast = _uniform(generator, count, 1 - config.contrast, 1 + config.contrast)
        bright, contrast = bright.to(device), contrast.to(device)
        mean = x.mean(dim=(1, 2, 3))
        gain = (bright * contrast)[:, None, None, None]
        offset = (bright * mean * (1 - contrast))[:, None, None, None]
        x = x.mul_(gain).add_(offset).clamp_(0, 1)

    if config.blur_p > 0:
        chosen = torch.nonzero(torch.rand(count, generator=generator) < config.blur_p).flatten()
        sigmas = _uniform(generator, count, *config.blur_sigma)
        if chosen.numel():
            chosen_dev = chosen.to(device)
            x[chosen_dev] = _gaussian_blur(
                x[chosen_dev], sigmas[chosen].to(device), config.blur_kernel_size
            )

    if config.noise_std > 0:
        stds = _uniform(generator, count, 0.0, config.noise_std)
        _add_gaussian_noise(x, stds, generator)
        x = x.clamp_(0, 1)
    return x


def _add_gaussian_noise(x: torch.Tensor, stds: torch.Tensor, generator: torch.Generator) -> None:
    """Add N(0, stds[i]^2) noise to image i of x (N x C x H x W), in place.

    Drawing N x C x H x W normal numbers is the dearest step of the augmentation on a CPU
    (about 10 ms of 20 for a 32 x 349 x 253 batch). So each batch draws one bank twice the
    size of an image, and image i takes the window of one image's length that starts at a
    random offset: within an image every pixel still gets its own independent N(0, 1)
    sample; across the images of one batch the windows overlap, shifted, which an
    augmentation does not care about.
    """
    count = x.shape[0]
    per_image = x[0].numel()
    bank_seed = int(torch.randint(0, 2**62, (), generator=generator))
    offsets = torch.randint(0, per_image + 1, (count,), generator=generator).tolist()
    bank_generator = torch.Generator(device=x.device).manual_seed(bank_seed)
    bank = torch.randn(2 * per_image, generator=bank_generator, device=x.device)
    for image, offset, std in zip(x, offsets, stds.tolist(), strict=True):
        image.add_(bank[offset : offset + per_image].view(image.shape), alpha=std)


def _random_crops(
    x: torch.Tensor, fractions: torch.Tensor, generator: torch.Generator, flips: torch.Tensor
) -> torch.Tensor:
    """Crop ``fraction`` x the canvas (the same fraction for width and height, so the
    aspect ratio is kept) at a random position of each image, resize it back and flip it
    horizontally where ``flips`` says so."""
    count, _, height, width = x.shape
    corners = torch.rand(count, 2, generator=generator)
    out = torch.empty_like(x)
    for i, (fraction, (corner_x, corner_y), flip) in enumerate(
        zip(fractions.tolist(), corners.tolist(), flips.tolist(), strict=True)
    ):  # one small v2 kernel per image: cheap on CPU and GPU
        crop_w = max(1, round(width * fraction))
        crop_h = max(1, round(height * fraction))
        left = int(corner_x * (width - crop_w + 1))
        top = int(corner_y * (height - crop_h + 1))
        # the crop is never larger than the canvas: upsampling, where antialias changes nothing
        crop = TF.resized_crop(x[i], top, left, crop_h, crop_w, [height, width], antialias=False)
        out[i] = TF.horizontal_flip(crop) if flip else crop
    return out


def _gaussian_blur(x: torch.Tensor, sigmas: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Blur image i of x (N x C x H x W) with a Gaussian of std ``sigmas[i]`` (separable,
    reflect padding, like v2's ``gaussian_blur`` but one sigma per image).

    Each 1-D pass is ``kernel_size`` shifted multiply-adds with a per-image weight: on a CPU
    that is about 2.5x faster than the equivalent grouped ``conv2d`` (one group per image),
    whose depthwise kernels are poorly optimised there.
    """
    _, _, height, width = x.shape
    half = kernel_size // 2
    if half == 0:
        return x
    positions = torch.arange(-half, half + 1, device=x.device, dtype=x.dtype)
    kernel = torch.exp(-0.5 * (positions[None, :] / sigmas[:, None]) ** 2)
    kernel = kernel / kernel.sum(dim=1, keepdim=True)
    pad_w, pad_h = min(half, width - 1), min(half, height - 1)
    padded = torch.nn.functional.pad(x, [pad_w, pad_w, pad_h, pad_h], mode="reflect")
    if pad_w < half or pad_h < half:  # tiny images: replicate what reflect cannot cover
        padded = torch.nn.functional.pad(
            padded, [half - pad_w, half - pad_w, half - pad_h, half - pad_h], mode="replicate"
        )
    weights = kernel[:, :, None, None, None]  # N x K x 1 x 1 x 1: broadcasts over C, H, W
    rows = padded[..., 0:width] * weights[:, 0]
    for k in range(1, kernel_size):
        rows.addcmul_(padded[..., k : k + width], weights[:, k])
    out = rows[..., 0:height, :] * weights[:, 0]
    for k in range(1, kernel_size):
        out.addcmul_(rows[..., k : k + height, :], weights[:, k])
    return out


class BatchTransform:
    """Callable on a uint8/float batch Bx{1,3}xHxW: optional augmentation, then normalize.

    Training: ``BatchTransform(AugmentConfig(), seed=0)``; evaluation:
    ``BatchTransform(None)`` (normalize only, deterministic). Output is float32
    Bx3xHxW, ImageNet-normalized, on the input's device.

    Example:
        >>> tfm = BatchTransform(None)
        >>> x = torch.randint(0, 255, (2, 1, 8, 8), dtype=torch.uint8)
        >>> torch.equal(tfm(x), tfm(x))
        True
    """

    def __init__(
        self,
        augment: AugmentConfig | None = None,
        seed: int = 0,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        self.augment = augment
        self.seed = seed
        self.mean, self.std = tuple(mean), tuple(std)
        self.generator = torch.Generator().manual_seed(seed)

    def reseed(self, seed: int) -> None:
        """Restart the augmentation's random draws from ``seed``."""
        self.seed = seed
        self.generator.manual_seed(seed)

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        if self.augment is not None:
            batch = augment_float(to_float(batch), self.augment, self.generator)
        return normalize_batch(batch, self.mean, self.std)

    def __repr__(self) -> str:
        return (
            f"BatchTransform(augment={self.augment!r}, seed={self.seed}, mean={self.mean}, "
            f"std={self.std})"
        )
