"""Features of a run, the t-SNE/PCA map and its separation scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from covidlib.explain.embedding import embed, separation_report, separation_scores
from covidlib.explain.features import extract_features, run_features
from covidlib.models.factory import create_model
from covidlib.models.registry import get_spec


@pytest.mark.parametrize("name", ["squeezenet", "shufflenet", "resnet18"])
def test_feature_size_is_the_registry_s(name: str) -> None:
    canvas = get_spec(name).canvas(0.12)
    pixels = np.zeros((3, canvas[1], canvas[0]), np.uint8)
    features = extract_features(create_model(name), name, pixels, batch_size=2)
    assert features.shape == (3, get_spec(name).feature_dim)


def test_tsne_gives_one_2d_point_per_image(tiny_run: Path) -> None:
    features = run_features(tiny_run, fold=0)
    n = len(features.images)
    assert features.features.shape == (n, get_spec("squeezenet").feature_dim)
    assert set(features.images["split"]) == {"train", "test"}
    for method in ("tsne", "pca"):
        points = embed(features.features, method)
        assert points.shape == (n, 2) and np.isfinite(points).all()
    report = separation_report(features.features, points, features.images["label"])
    assert set(report) == {"embedding", "features"}


def test_separation_scores_tell_separated_from_mixed() -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 30)
    apart = rng.normal(0, 1, (60, 2)) + labels[:, None] * 10
    mixed = rng.normal(0, 1, (60, 2))
    assert separation_scores(apart, labels)["knn_accuracy"] == 1.0
    assert separation_scores(mixed, labels)["knn_accuracy"] < 0.8
    assert separation_scores(apart, labels)["silhouette"] > separation_scores(
        mixed, labels)["silhouette"]
    with pytest.raises(ValueError, match="method"):
        embed(apart, "umap")
