"""Transforms: letterbox/stretch/crop with their placements, and the batch-wise training
augmentation and normalization.

Public names are importable from the package and loaded on first use
(:func:`covidlib.utils.lazy.lazy_exports`), so importing it stays cheap.
"""

from covidlib.utils.lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "AugmentConfig": "covidlib.transforms.augment",
    "BatchTransform": "covidlib.transforms.augment",
    "DEFAULT_AUGMENT": "covidlib.transforms.augment",
    "IMAGENET_MEAN": "covidlib.transforms.augment",
    "IMAGENET_STD": "covidlib.transforms.augment",
    "OPERATIONS": "covidlib.transforms.augment",
    "Placement": "covidlib.transforms.geometry",
    "RESIZE_MODES": "covidlib.transforms.geometry",
    "augment_batch": "covidlib.transforms.augment",
    "augment_float": "covidlib.transforms.augment",
    "center_crop": "covidlib.transforms.geometry",
    "check_canvas": "covidlib.transforms.geometry",
    "cover_placement": "covidlib.transforms.geometry",
    "fit_placement": "covidlib.transforms.geometry",
    "image_size": "covidlib.transforms.geometry",
    "letterbox": "covidlib.transforms.geometry",
    "letterbox_mask": "covidlib.transforms.geometry",
    "normalize_batch": "covidlib.transforms.augment",
    "resize_to_canvas": "covidlib.transforms.geometry",
    "stretch": "covidlib.transforms.geometry",
    "stretch_placement": "covidlib.transforms.geometry",
    "to_float": "covidlib.transforms.augment",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
