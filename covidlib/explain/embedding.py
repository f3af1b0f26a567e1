"""Two-dimensional maps of the learned features (t-SNE, PCA) and how well they separate.

The paper (Alshazly et al. 2021, section 5.5) shows t-SNE maps of two models' features:
COVID and non-COVID images of the training and the test part of one fold, four colours.
A picture of two blobs is not a measurement, and t-SNE distances mislead (it keeps
neighbourhoods, not distances or cluster sizes: van der Maaten and Hinton, JMLR 2008;
Wattenberg et al., Distill 2016), so :func:`separation_scores` gives numbers, computed
both in the 2-D map and in the original feature space: the silhouette score of the two
classes (scikit-learn's ``silhouette_score``, -1 to 1) and the cross-validated accuracy of a
k-nearest-neighbour classifier.

Example:
    >>> rng = np.random.default_rng(0)
    >>> features = np.vstack([rng.normal(0, 1, (20, 8)), rng.normal(4, 1, (20, 8))])
    >>> labels = np.repeat([0, 1], 20)
    >>> embed(features, "pca").shape
    (40, 2)
    >>> scores = separation_scores(features, labels)
    >>> scores["knn_accuracy"], scores["silhouette"] > 0.5
    (1.0, True)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from covidlib.utils.names import UnknownNameError

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "EMBEDDING_METHODS",
    "GROUP_COLORS",
    "embed",
    "plot_embedding",
    "separation_report",
    "separation_scores",
]

EMBEDDING_METHODS: tuple[str, ...] = ("tsne", "pca")
KNN_NEIGHBORS = 5
# (class, split) -> colour of the paper-style plot.
GROUP_COLORS: dict[tuple[str, str], str] = {
    ("COVID", "train"): "#d62728",
    ("COVID", "test"): "#ff9896",
    ("non-COVID", "train"): "#1f77b4",
    ("non-COVID", "test"): "#aec7e8",
}


def embed(
    features: np.ndarray, method: str = "tsne", *, seed: int = 0, perplexity: float = 30.0
) -> np.ndarray:
    """Map N x D features to N x 2 points with t-SNE or PCA (scikit-learn).

    The features are standardized first. t-SNE's perplexity is capped at ``(N - 1) / 3`` so
    that small sets work.

    Raises:
        ValueError: an unknown method or fewer than 3 images.
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from sklearn.preprocessing import StandardScaler

    if method not in EMBEDDING_METHODS:
        raise UnknownNameError("embedding method", method, EMBEDDING_METHODS)
    data = np.asarray(features, dtype=np.float64)
    if data.ndim != 2 or len(data) < 3:
        raise ValueError(f"need an N x D feature array with N >= 3, got shape {data.shape}")
    data = StandardScaler().fit_transform(data)
    if method == "pca":
        points = PCA(n_components=2, random_state=seed).fit_transform(data)
    else:
        tsne = TSNE(n_components=2, perplexity=min(perplexity, (len(data) - 1) / 3),
                    init="pca", random_state=seed)
        points = tsne.fit_transform(data)
    return np.asarray(points, dtype=np.float32)


def separation_scores(
    points: np.ndarray, labels: Sequence[int] | np.ndarray, *, k: int = KNN_NEIGHBORS,
    seed: int = 0,
) -> dict[str, float]:
    """Silhouette score and k-NN accuracy (5-fold cross-validated) of two labelled classes.

    Works for the 2-D map and for the original features alike. A single class gives NaN.

    Example:
        >>> separation_scores(np.array([[0.0], [0.1], [5.0], [5.1]] * 3), [0, 0, 1, 1] * 3, k=1)
        {'silhouette': 0.988, 'knn_accuracy': 1.0}
    """
    from sklearn.metrics import silhouette_score
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    x = np.asarray(points, dtype=np.float64)
    y = np.asarray(labels).astype(int)
    counts = np.bincount(y, minlength=2)
    if len(np.unique(y)) < 2:
        return {"silhouette": float("nan"), "knn_accuracy": float("nan")}
    splits = int(min(5, counts[counts > 0].min()))
    if splits < 2:
        accuracy = float("nan")
    else:
        knn = KNeighborsClassifier(n_neighbors=max(1, min(k, len(y) - len(y) // splits - 1)))
        folds = StratifiedKFold(splits, shuffle=True, random_state=seed)
        accuracy = float(np.mean(cross_val_score(knn, x, y, cv=folds)))
    return {"silhouette": round(float(silhouette_score(x, y)), 4),
            "knn_accuracy": round(accuracy, 4)}


def separation_report(
    features: np.ndarray, points: np.ndarray, labels: Sequence[int] | np.ndarray
) -> dict[str, dict[str, float]]:
    """The :func:`separation_scores` of the 2-D map and of the original features.

    Example:
        >>> x = np.array([[0.0, 0], [0, 1], [9, 9], [9, 8]] * 3)
        >>> sorted(separation_report(x, x, [0, 0, 1, 1] * 3))
        ['embedding', 'features']
    """
    return {"embedding": separation_scores(points, labels),
            "features": separation_scores(features, labels)}


def plot_embedding(
    points: np.ndarray,
    labels: Sequence[int] | np.ndarray,
    splits: Sequence[str] | np.ndarray,
    *,
    ax: Axes | None = None,
    title: str | None = None,
    **scatter: Any,
) -> Axes:
    """Scatter the 2-D points in the paper's style: COVID / non-COVID x train / test.

    Example:
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> ax = plot_embedding(np.zeros((4, 2)), [0, 1, 0, 1], ["train", "train", "test", "test"])
        >>> len(ax.collections)
        4
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4.5))
    xy = np.asarray(points)
    label_array = np.asarray(labels).astype(int)
    split_array = np.asarray(splits).astype(str)
    for (class_name, split), color in GROUP_COLORS.items():
        chosen = (label_array == (1 if class_name == "COVID" else 0)) & (split_array == split)
        ax.scatter(xy[chosen, 0], xy[chosen, 1], s=scatter.pop("s", 14), c=color,
                   label=f"{class_name} ({split}, {int(chosen.sum())})",
                   edgecolors="none", **scatter)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(loc="best", fontsize=9, frameon=False)
    if title:
        ax.set_title(title)
    return ax
