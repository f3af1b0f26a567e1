"""Tests of fold assignment and resumable cross-validation runs (small phantom, CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from covidlib.config import get_profile
from covidlib.engine.cv import (
    RunConfigError,
    assign_folds,
    fold_numbers,
    fold_rows,
    folds_file,
    load_or_assign_folds,
    run_cv,
)
from covidlib.engine.learner import CHECKPOINT_FILE, METRICS_FILE, TrainConfig


def table(n: int = 60, n_groups: int = 15, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, n_groups, n) if n_groups else np.arange(n)
    labels = (groups % 2 == 0).astype(int) if n_groups else rng.integers(0, 2, n)
    return pd.DataFrame({
        "relpath": [f"img{i}.png" for i in range(n)],
        "path": [f"/data/img{i}.png" for i in range(n)],
        "label": labels,
        "group": [f"patient{g}" for g in groups],
    })


@pytest.mark.parametrize("strategy", ["stratified", "grouped"])
@pytest.mark.parametrize("n_folds", [2, 5])
def test_test_folds_partition_and_are_disjoint_from_training(strategy: str, n_folds: int) -> None:
    images = table()
    folds = assign_folds(images, n_folds=n_folds, seed=0, strategy=strategy)
    assert fold_numbers(folds) == list(range(n_folds))
    seen = []
    for k in range(n_folds):
        train, test = fold_rows(folds, k)
        assert len(np.intersect1d(train, test)) == 0
        assert len(train) + len(test) == len(images)
        seen.extend(test.tolist())
    assert sorted(seen) == list(range(len(images)))  # every image tested exactly once


def test_stratified_folds_keep_the_class_ratio() -> None:
    images = table(n=100, n_groups=0)
    folds = assign_folds(images, n_folds=5, seed=0)
    per_fold = images.groupby(folds.to_numpy())["label"].sum()
    assert per_fold.max() - per_fold.min() <= 1


def test_grouped_folds_never_split_a_group() -> None:
    images = table()
    folds = assign_folds(images, n_folds=5, seed=3, strategy="grouped")
    assert (images.groupby("group")["label"].size() > 1).any()
    assert (pd.Series(folds.to_numpy()).groupby(images["group"].to_numpy()).nunique() == 1).all()


def test_seed_decides_the_assignment() -> None:
    images = table()
    first = assign_folds(images, seed=0)
    assert first.equals(assign_folds(images, seed=0))
    assert not first.equals(assign_folds(images, seed=1))


def test_official_split() -> None:
    images = table(n=6).assign(split=["train", "val", "test", "train", "test", "val"])
    folds = assign_folds(images, strategy="official")
    assert folds.tolist() == [-1, -1, 0, -1, 0, -1]
    train, test = fold_rows(folds, 0)
    assert test.tolist() == [2, 4] and train.tolist() == [0, 1, 3, 5]
    with pytest.raises(ValueError, match="official split"):
        assign_folds(table(n=6), strategy="official")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"strategy": "random"}, "Unknown split"), ({"n_folds": 1}, "at least 2"),
     ({"n_folds": 40}, "smaller class")],
)
def test_bad_fold_requests(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        assign_folds(table(), **kwargs)  # type: ignore[arg-type]


def test_fold_file_is_saved_once_and_reused(tmp_path: Path) -> None:
    images = table()
    path = folds_file(tmp_path, "demo", "stratified", 0, 5)
    first = load_or_assign_folds(images, path)
    stamp = path.stat().st_mtime_ns
    shuffled = images.sample(frac=1.0, random_state=1).reset_index(drop=True)
    again = load_or_assign_folds(shuffled, path)  # matched by relpath, not by position
    assert path.stat().st_mtime_ns == stamp
    assert dict(zip(shuffled["relpath"], again, strict=True)) == dict(
        zip(images["relpath"], first, strict=True))
    with pytest.raises(ValueError, match="lists other images"):
        load_or_assign_folds(images.iloc[:-1], path)


def small_config(**changes: object) -> TrainConfig:
    base = TrainConfig.from_profile(get_profile("quick"), epochs=1, batch_size=8,
                                    canvas_scale=0.12, device="cpu")
    return base.with_overrides(**changes)


def cv(phantom_root: Path, out: Path, model: str = "squeezenet", **kwargs: object):  # noqa: ANN201
    kwargs.setdefault("config", small_config())
    return run_cv("phantom", model, root=phantom_root, profile=get_profile("quick"), out=out,
                  log=None, **kwargs)  # type: ignore[arg-type]


def test_run_cv_writes_a_complete_run_folder(phantom_root: Path, tmp_path: Path) -> None:
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

    result = cv(phantom_root, tmp_path)
    run_dir = tmp_path / "phantom" / "squeezenet" / "quick"
    assert result.run_dir == run_dir
    for name in ("config.json", "folds.csv", "summary.json", "predictions.csv"):
        assert (run_dir / name).is_file()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["complete"] and summary["n_folds"] == 5
    predictions = pd.read_csv(run_dir / "predictions.csv")
    assert sorted(predictions["path"]) == sorted(pd.read_csv(run_dir / "folds.csv")["path"])
    for fold, rows in predictions.groupby("fold"):
        truth, predicted = rows["label"], (rows["probability"] >= 0.5).astype(int)
        expected = {
            "accuracy": accuracy_score(truth, predicted),
            "precision": precision_score(truth, predicted, zero_division=0),
            "recall": recall_score(truth, predicted, zero_division=0),
            "specificity": recall_score(truth, predicted, pos_label=0, zero_division=0),
            "f1": f1_score(truth, predicted, zero_division=0),
        }
        scored = summary["folds"][str(fold)]
        assert {name: scored[name] for name in expected} == pytest.approx(expected)
    for name in expected:
        values = [summary["folds"][k][name] for k in summary["folds"]]
        assert summary["mean"][name] == pytest.approx(np.mean(values))
        assert summary["std"][name] == pytest.approx(np.std(values, ddof=1))


def test_every_model_gets_the_same_folds(phantom_root: Path, tmp_path: Path) -> None:
    first = cv(phantom_root, tmp_path, only_fold=0)
    second = cv(phantom_root, tmp_path, model="shufflenet", only_fold=0)
    assert first.folds.equals(second.folds)
    assert len(list((tmp_path / "phantom").glob("folds-*.csv"))) == 1
    runs = [tmp_path / "phantom" / m / "quick" / "folds.csv" for m in ("squeezenet", "shufflenet")]
    assert runs[0].read_text() == runs[1].read_text()
    assert not first.summary["complete"] and list(first.summary["folds"]) == ["0"]


def test_changed_config_is_refused(phantom_root: Path, tmp_path: Path) -> None:
    cv(phantom_root, tmp_path, only_fold=0)
    with pytest.raises(RunConfigError, match=r"train\.epochs: saved 1, requested 2"):
        cv(phantom_root, tmp_path, only_fold=0, config=small_config(epochs=2))
    # The device is not part of the experiment: changing it is allowed.
    cv(phantom_root, tmp_path, only_fold=0, config=small_config(device="auto"))


def test_interrupted_run_resumes_and_matches_an_uninterrupted_one(
    phantom_root: Path, tmp_path: Path
) -> None:
    from test_learner import Interrupt

    config = small_config(epochs=2)
    straight = cv(phantom_root, tmp_path / "a", config=config)
    with pytest.raises(KeyboardInterrupt):
        cv(phantom_root, tmp_path / "b", config=config, callbacks=[Interrupt(after=0)])
    run_dir = tmp_path / "b" / "phantom" / "squeezenet" / "quick"
    assert (run_dir / "fold-0" / CHECKPOINT_FILE).is_file()
    assert not (run_dir / "fold-0" / METRICS_FILE).exists()
    messages: list[str] = []
    resumed = run_cv("phantom", "squeezenet", root=phantom_root, profile=get_profile("quick"),
                     out=tmp_path / "b", config=config, log=messages.append)
    assert any("fold 0:" in m and "resumed after epoch 1" in m for m in messages)
    pd.testing.assert_frame_equal(resumed.predictions, straight.predictions)
    messages.clear()
    run_cv("phantom", "squeezenet", root=phantom_root, profile=get_profile("quick"),
           out=tmp_path / "b", config=config, log=messages.append)
    assert sum("skipped" in m for m in messages) == 5


@pytest.mark.parametrize(("per_class", "n_test"), [(5, 2), (None, 6)])
def test_fit_first_fold_follows_the_profile(
    phantom_root: Path, per_class: int | None, n_test: int
) -> None:
    from covidlib.data.datasets import index_dataset
    from covidlib.engine.cv import fit_first_fold

    images = index_dataset("phantom", phantom_root).require_clean()
    profile = get_profile("quick").with_overrides(
        epochs=1, canvas_scale=0.12, demo_images_per_class=per_class, device="cpu"
    )
    result = fit_first_fold("shufflenet", images, profile)
    assert len(result.history) == 1
    assert len(result.predictions) == n_test
    assert result.predictions["label"].nunique() == 2
