"""Transforms: letterbox/stretch/crop with their placements, and the batch-wise training
augmentation and normalization.

Public names are importable from the package and loaded on first use
(:func:`covidlib.utils.lazy.lazy_exports`), so importing it stays cheap.
"""

from covidlib.utils.lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "BatchTransform": "covidlib.transforms.augment",
    "augment_batch": "covidlib.transforms.augment",
    "normalize_batch": "covidlib.transforms.augment",
    "Placement": "covidlib.transforms.geometry",
    "center_crop": "covidlib.transforms.geometry",
    "cover_placement": "covidlib.transforms.geometry",
    "fit_placement": "covidlib.transforms.geometry",
    "letterbox": "covidlib.transforms.geometry",
    "letterbox_mask": "covidlib.transforms.geometry",
    "resize_to_canvas": "covidlib.transforms.geometry",
    "stretch": "covidlib.transforms.geometry",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
