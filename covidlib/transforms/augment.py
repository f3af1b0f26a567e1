"""The paper's training augmentation and the normalization of network inputs.

Training augmentation (section 5.2 of the paper: cropping, Gaussian blur with probability
0.25, a random amount of Gaussian noise, brightness and contrast changes, horizontal flips;
no rotation or shear) runs on whole batches on the training device, see
:func:`augment_batch`. Every parameter lives in :class:`covidlib.config.AugmentConfig`
(re-exported here).

Example:
    >>> x = normalize_batch(torch.zeros(2, 1, 4, 4, dtype=torch.uint8))
    >>> tuple(x.shape)
    (2, 3, 4, 4)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchvision.transforms.v2 import functional as TF

# AugmentConfig (part of the experiment config) lives in covidlib.config: re-exported here.
from covidlib.config import DEFAULT_AUGMENT, OPERATIONS, AugmentConfig  # noqa: F401

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


# --------------------------------------------------------------------------------------
# Channels and normalization
# --------------------------------------------------------------------------------------


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
    :attr:`covidlib.models.registry.ModelSpec.normalization`: 0.5 for InceptionV3 and Xception).

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


# --------------------------------------------------------------------------------------
# Augmentation
# --------------------------------------------------------------------------------------


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
    small ``resized_crop`` per image, faster than one ``grid_sample`` for the whole batch on
    CPU (benchmarks/README.md), with the flip applied as each crop is written), and plain
    vectorised tensor ops where v2 has no per-image batched form: the blur is a separable
    Gaussian with one kernel per image; brightness, contrast and the noise's strength are
    per-image scalars, and the noise comes from one bank of normal numbers per batch (see
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
    that is faster than the equivalent grouped ``conv2d`` (one group per image), whose
    depthwise kernels are poorly optimised there (benchmarks/README.md).
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
