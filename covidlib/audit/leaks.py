"""The leakage audit: identical sets, near-duplicate pairs, pseudo-patients, leaks per fold.

:func:`audit_images` hashes a dataset's images once (perceptual hashes by default, offline;
CNN-feature cosine distances when a weights file is given), then reports

* ``identical``: the sets of byte-identical files;
* ``near``: pairs of other images at a distance up to ``threshold`` on one scale (the
  fraction of differing hash bits, or ``1 - cosine`` of features), nearest first, and never
  fewer than the ``min_pairs`` nearest;
* ``groups``: pseudo-patients, clusters of one class linked by near-duplicates
  (``group_threshold``) and by consecutive-looking slices (file names that differ only by a
  consecutive number, at up to ``consecutive_threshold``): the files of one scan look
  alike. :meth:`AuditResult.groups_table` is a groups file for ``covidlib cv --split grouped
  --groups FILE``;
* ``leaks`` (:func:`fold_leaks`): per test fold, how many test images have a near twin
  (or a byte-identical copy) in their training folds.

Example:
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> Image.linear_gradient("L").save(folder / "a.png")
    >>> Image.linear_gradient("L").resize((64, 64)).save(folder / "b.png")
    >>> Image.radial_gradient("L").save(folder / "c.png")
    >>> result = audit_images([folder / n for n in ("a.png", "b.png", "c.png")], min_pairs=1)
    >>> [(pathlib.Path(p["a"]).name, pathlib.Path(p["b"]).name) for p in result.near]
    [('a.png', 'b.png')]
    >>> result.n_groups
    2
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from covidlib.audit.duplicates import (
    HASH_BATCH,
    file_digests,
    identical_sets,
    image_hashes,
    pair_distances,
)

__all__ = [
    "DEFAULT_THRESHOLD",
    "FEATURE_THRESHOLD",
    "AuditResult",
    "audit_images",
    "feature_distances",
    "fold_leaks",
    "near_matrix",
    "pseudo_patients",
]

# Fractions of the 128 pHash+dHash bits of the content box; the honest-evaluation chapter's
# histogram shows where copies and real pairs fall (measurements in benchmarks/README.md).
DEFAULT_THRESHOLD = 0.125
FEATURE_THRESHOLD = 0.05
# Pseudo-patients link pairs at 0.8x the threshold, consecutive-numbered files at 1.6x.
GROUP_FACTOR = 0.8
CONSECUTIVE_FACTOR = 1.6
MIN_PAIRS = 100
_NUMBER = re.compile(r"(\d+)(?!.*\d)")  # the last number of a file name


@dataclass
class AuditResult:
    """What :func:`audit_images` found.

    Attributes:
        paths: the images, in the order given.
        identical: sets of byte-identical files (lists of paths).
        near: pairs ``{"a", "b", "distance"}``, nearest first (no byte-identical pair).
        groups: the pseudo-patient of every image (``"pp<k>"``), aligned with ``paths``.
        distances: the full distance matrix (kept for :func:`fold_leaks` and histograms).
        threshold: the near-duplicate threshold used.
        method: ``"phash+dhash"`` (or the hash methods) or ``"features"``.
        digests: the SHA-256 of every file.
        leaks: per test fold, test images with a near twin in training (set by
            :meth:`with_leaks`).
    """

    paths: list[str]
    identical: list[list[str]]
    near: list[dict[str, Any]]
    groups: list[str]
    distances: np.ndarray
    threshold: float
    method: str
    digests: list[str]
    leaks: dict[str, int] | None = field(default=None)

    @property
    def n_groups(self) -> int:
        """Number of pseudo-patient groups."""
        return len(set(self.groups))

    def to_json(self) -> dict[str, Any]:
        """The ``covidlib audit --json`` object: ``identical``, ``near``, ``groups`` (the
        number of pseudo-patients) and, after :meth:`with_leaks`, ``leaks``."""
        out: dict[str, Any] = {
            "identical": self.identical,
            "near": self.near,
            "groups": self.n_groups,
        }
        if self.leaks is not None:
            out["leaks"] = self.leaks
        return out

    def groups_table(self, keys: Sequence[str] | None = None) -> pd.DataFrame:
        """A groups file (``path``, ``group``) for ``covidlib cv --split grouped --groups``;
        ``keys`` names the images (e.g. the index's ``relpath``) instead of ``paths``."""
        names = list(keys) if keys is not None else self.paths
        return pd.DataFrame({"path": names, "group": self.groups})

    def with_leaks(self, folds: Sequence[int] | np.ndarray) -> AuditResult:
        """Set :attr:`leaks` from a fold assignment aligned with :attr:`paths`."""
        self.leaks = fold_leaks(self.distances, folds, self.threshold, self.digests)
        return self

    def distance_values(self) -> np.ndarray:
        """Every pair's distance once (the upper triangle), for a histogram."""
        upper = np.triu_indices(len(self.paths), k=1)
        return self.distances[upper]


def feature_distances(paths: Sequence[str | Path], weights: str | Path,
                      model: str = "resnet18", canvas: tuple[int, int] = (224, 224),
                      batch_size: int = 32) -> np.ndarray:
    """Return ``1 - cosine`` similarity of CNN features between every pair of images.

    The features are the pooled last feature map of ``model`` loaded from ``weights`` (a
    weights file, or ``"imagenet"`` for the cached ImageNet weights); random-init features
    say little about similarity, so no default weights are assumed.

    Raises:
        ValueError: ``weights`` is neither ``"imagenet"`` nor an existing file.
    """
    import torch

    from covidlib.data.cache import letterbox_cache
    from covidlib.models.factory import create_model
    from covidlib.models.registry import get_spec
    from covidlib.transforms.augment import BatchTransform

    if str(weights) != "imagenet" and not Path(weights).is_file():
        raise ValueError(f"features weights {weights} not found; pass a weights file or "
                         "'imagenet' (cached ImageNet weights).")
    network = create_model(model, True if str(weights) == "imagenet" else weights).eval()
    mean, std = get_spec(model).normalization
    normalize = BatchTransform(None, mean=mean, std=std)
    names = [str(p) for p in paths]
    chunks = []
    with torch.inference_mode():
        for start in range(0, len(names), batch_size):
            pixels = np.asarray(letterbox_cache(names[start:start + batch_size], canvas,
                                                persist=False).pixels)
            batch = normalize(torch.from_numpy(pixels)[:, None])
            maps = network.forward_features(batch)  # type: ignore[operator]
            chunks.append(maps.float().mean(dim=(2, 3)).numpy())
    features = np.concatenate(chunks) if chunks else np.zeros((0, 1))
    features /= np.linalg.norm(features, axis=1, keepdims=True).clip(1e-12)
    return np.clip(1.0 - features @ features.T, 0.0, 1.0)


def near_matrix(bits: np.ndarray) -> np.ndarray:
    """Return the full distance matrix of hash ``bits``, computed in row batches."""
    n = len(bits)
    out = np.zeros((n, n), dtype=np.float32)
    for start in range(0, n, HASH_BATCH):
        out[start:start + HASH_BATCH] = pair_distances(bits, slice(start, start + HASH_BATCH))
    return out


def _near_pairs(paths: Sequence[str], distances: np.ndarray, digests: Sequence[str],
                threshold: float, min_pairs: int) -> list[dict[str, Any]]:
    n = len(paths)
    if n < 2:
        return []
    upper_i, upper_j = np.triu_indices(n, k=1)
    values = distances[upper_i, upper_j]
    digest_codes = pd.factorize(pd.Series(list(digests)))[0]
    keep = digest_codes[upper_i] != digest_codes[upper_j]  # identical sets go under identical
    upper_i, upper_j, values = upper_i[keep], upper_j[keep], values[keep]
    order = np.lexsort((upper_j, upper_i, values))
    count = max(int((values <= threshold).sum()), min(min_pairs, len(order)))
    return [{"a": paths[upper_i[k]], "b": paths[upper_j[k]],
             "distance": round(float(values[k]), 6)} for k in order[:count]]


def _consecutive(names: Sequence[str]) -> list[tuple[int, int]]:
    """Pairs of positions whose file names differ only by a number one apart."""
    keyed: dict[tuple[str, str, str], dict[int, int]] = {}
    for position, name in enumerate(names):
        path = Path(name)
        match = _NUMBER.search(path.name)
        if match is None:
            continue
        key = (str(path.parent), path.name[:match.start()], path.name[match.end():])
        keyed.setdefault(key, {})[int(match.group(1))] = position
    pairs = []
    for numbers in keyed.values():
        for number, position in numbers.items():
            if number + 1 in numbers:
                pairs.append((position, numbers[number + 1]))
    return pairs


def pseudo_patients(
    distances: np.ndarray,
    labels: Sequence[int] | None = None,
    names: Sequence[str] | None = None,
    group_threshold: float = GROUP_FACTOR * DEFAULT_THRESHOLD,
    consecutive_threshold: float = CONSECUTIVE_FACTOR * DEFAULT_THRESHOLD,
) -> list[str]:
    """Cluster images into pseudo-patients (``"pp<k>"``, numbered by first image).

    Two images of one class are linked when their distance is at most ``group_threshold``,
    or when their file names differ only by a consecutive number and their distance is at
    most ``consecutive_threshold``; groups are the connected components.

    Example:
        >>> d = np.array([[0, .1, .9], [.1, 0, .9], [.9, .9, 0]])
        >>> pseudo_patients(d, labels=[1, 1, 1])
        ['pp0', 'pp0', 'pp1']
        >>> pseudo_patients(d, labels=[1, 0, 1])
        ['pp0', 'pp1', 'pp2']
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(distances)
    same = (np.ones((n, n), dtype=bool) if labels is None
            else np.equal.outer(np.asarray(labels), np.asarray(labels)))
    links = (distances <= group_threshold) & same
    rows, cols = np.nonzero(links)
    extra = [(i, j) for i, j in _consecutive(names or [])
             if distances[i, j] <= consecutive_threshold and same[i, j]]
    if extra:
        rows = np.concatenate([rows, [i for i, _ in extra]])
        cols = np.concatenate([cols, [j for _, j in extra]])
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    _, components = connected_components(graph, directed=False)
    numbering: dict[int, int] = {}
    return [f"pp{numbering.setdefault(int(c), len(numbering))}" for c in components]


def fold_leaks(distances: np.ndarray, folds: Sequence[int] | np.ndarray, threshold: float,
               digests: Sequence[str] | None = None) -> dict[str, int]:
    """Return, per test fold, the test images with a near twin in their training folds.

    A twin is an image at a distance up to ``threshold`` (or byte-identical, when
    ``digests`` are given) whose fold differs (``-1``, train only, counts as training).

    Example:
        >>> d = np.array([[0, .1, .9, .9], [.1, 0, .9, .9], [.9, .9, 0, .9], [.9, .9, .9, 0]])
        >>> fold_leaks(d, [0, 1, 0, 1], threshold=0.2)
        {'0': 1, '1': 1}
    """
    fold_values = np.asarray(folds, dtype=int)
    twins = distances <= threshold
    if digests is not None:
        codes = pd.factorize(pd.Series(list(digests)))[0]
        twins |= np.equal.outer(codes, codes)
    np.fill_diagonal(twins, False)
    out: dict[str, int] = {}
    for fold in sorted(set(fold_values.tolist()) - {-1}):
        test = fold_values == fold
        out[str(fold)] = int(twins[np.ix_(test, ~test)].any(axis=1).sum())
    return out


def audit_images(
    paths: Sequence[str | Path],
    labels: Sequence[int] | None = None,
    *,
    threshold: float | None = None,
    min_pairs: int = MIN_PAIRS,
    methods: Sequence[str] = ("phash", "dhash"),
    hash_size: int = 8,
    features: str | Path | None = None,
    group_threshold: float | None = None,
    consecutive_threshold: float | None = None,
) -> AuditResult:
    """Audit images for byte-identical files, near-duplicates and pseudo-patients.

    Args:
        paths: image files.
        labels: class of every image (pseudo-patients never mix classes); ``None``: one class.
        threshold: largest distance of a near-duplicate pair (default
            :data:`DEFAULT_THRESHOLD` for hashes, :data:`FEATURE_THRESHOLD` for features).
        min_pairs: list at least this many nearest pairs, even above the threshold.
        methods: perceptual hashes (:data:`covidlib.audit.duplicates.HASH_METHODS`).
        hash_size: side of each hash.
        features: a weights file (or ``"imagenet"``): use ``1 - cosine`` of resnet18 features
            instead of hashes.
        group_threshold: link distance of pseudo-patients (default: :data:`GROUP_FACTOR`
            times the threshold).
        consecutive_threshold: link distance of consecutive-numbered files (default:
            :data:`CONSECUTIVE_FACTOR` times the threshold).
    """
    names = [str(p) for p in paths]
    if labels is not None and len(labels) != len(names):
        raise ValueError(f"{len(labels)} labels for {len(names)} images.")
    digests = file_digests(names)
    if features is not None:
        distances = feature_distances(names, features)
        method = "features"
        threshold = FEATURE_THRESHOLD if threshold is None else threshold
    else:
        distances = near_matrix(image_hashes(names, methods, hash_size, crops=True))
        method = "+".join(methods)
        threshold = DEFAULT_THRESHOLD if threshold is None else threshold
    if not 0 <= threshold <= 1:
        raise ValueError(f"threshold must be within [0, 1] (got {threshold}).")
    groups = pseudo_patients(
        distances, labels, names,
        GROUP_FACTOR * threshold if group_threshold is None else group_threshold,
        CONSECUTIVE_FACTOR * threshold if consecutive_threshold is None
        else consecutive_threshold,
    )
    return AuditResult(
        paths=names,
        identical=identical_sets(names, digests),
        near=_near_pairs(names, distances, digests, threshold, min_pairs),
        groups=groups,
        distances=distances,
        threshold=threshold,
        method=method,
        digests=digests,
    )

