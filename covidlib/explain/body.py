"""The body and the lung field of a CT slice, segmented from the slice itself.

A heat map that stays inside the body is not yet one that finds lesions: the localization
baselines need priors that know where the body and the lungs are. A fixed gray-value
threshold cannot find them on slices that are windowed and cropped to the thorax (there
nearly every pixel is brighter than air, and the "body" becomes the whole image), so the
masks here come from the slice's own histogram (scikit-image):

* :func:`body_mask`: pixels above the slice's Otsu threshold, the connected components
  that hold at least :data:`MIN_COMPONENT_SHARE` of the largest one, and their convex hull
  (the lungs are dark holes inside the body; where a tight crop cuts the body's outline,
  a hole filling would leave them out, the hull keeps them in).
* :func:`lung_mask`: the dark pixels inside the body (at or below the Otsu threshold of
  the body's own pixels), small specks dropped and holes (vessels, dense lesions surrounded
  by lung) filled. Dense lesions on the lung's outline may fall outside it.

Example:
    >>> yy, xx = np.mgrid[:64, :64]
    >>> slice_ = np.where((yy - 32) ** 2 + (xx - 32) ** 2 < 28 ** 2, 200, 0).astype(np.uint8)
    >>> slice_[(yy - 32) ** 2 + (xx - 32) ** 2 < 10 ** 2] = 0
    >>> body, lungs = body_mask(slice_), lung_mask(slice_)
    >>> bool(body[32, 32]), bool(body[1, 1]), bool(lungs[32, 32]), bool(lungs[32, 55])
    (True, False, True, False)
"""

from __future__ import annotations

import numpy as np

__all__ = ["MIN_COMPONENT_SHARE", "body_mask", "lung_mask", "otsu_level"]

#: A bright component counts as body when it holds at least this share of the largest one.
MIN_COMPONENT_SHARE = 0.1
#: Dark components smaller than this share of the slice are specks, not lung.
MIN_LUNG_SHARE = 0.005


def otsu_level(image: np.ndarray) -> float:
    """The slice's Otsu threshold (``-inf`` for a constant slice, which is all body).

    Example:
        >>> otsu_level(np.array([[0, 0, 200, 200]], np.uint8)) < 200
        True
    """
    from skimage.filters import threshold_otsu

    pixels = np.asarray(image)
    if pixels.size == 0 or pixels.min() == pixels.max():
        return float("-inf")
    # Integer slices keep one histogram bin per gray value: on float input skimage returns
    # the centre of the bin that holds the darker class's top value, so `> level` would
    # count that value as bright.
    return float(threshold_otsu(pixels))


def _gray(image: np.ndarray) -> np.ndarray:
    pixels = np.asarray(image)
    if pixels.ndim == 3:
        pixels = pixels.mean(axis=2)
    if pixels.ndim != 2:
        raise ValueError(f"need an H x W (or H x W x C) slice, got shape {pixels.shape}")
    return pixels


def body_mask(image: np.ndarray) -> np.ndarray:
    """True on the body: the convex hull of the large bright components of the slice.

    Example:
        >>> body_mask(np.full((3, 4), 7, np.uint8)).all()
        np.True_
    """
    from skimage.measure import label
    from skimage.morphology import convex_hull_image

    pixels = _gray(image)
    bright = pixels > otsu_level(pixels)
    labels = label(bright, connectivity=2)
    if labels.max() == 0:
        return np.zeros(pixels.shape, bool)
    sizes = np.bincount(labels.ravel())[1:]
    keep = np.flatnonzero(sizes >= MIN_COMPONENT_SHARE * sizes.max()) + 1
    return np.asarray(convex_hull_image(np.isin(labels, keep)), dtype=bool)


def lung_mask(image: np.ndarray) -> np.ndarray:
    """True on the lung field: the dark inside of the body, holes filled.

    Example:
        >>> lung_mask(np.full((3, 4), 7, np.uint8)).any()
        np.False_
    """
    from scipy import ndimage
    from skimage.morphology import remove_small_objects

    pixels = _gray(image)
    body = body_mask(pixels)
    if not body.any():
        return body
    # The level inside the body: on an uncropped slice the air around the body would pull
    # the whole slice's threshold down to between air and lung.
    dark = (pixels <= otsu_level(pixels[body])) & body
    dark = remove_small_objects(dark, max_size=int(MIN_LUNG_SHARE * dark.size))
    return np.asarray(ndimage.binary_fill_holes(dark), dtype=bool)
