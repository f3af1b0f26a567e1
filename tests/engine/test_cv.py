"""Tests of fold assignment and resumable cross-validation runs (small phantom, CPU)."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastai.callback.core import Callback

from covidlib.config import (
    AugmentConfig,
    ExperimentConfig,
    PhantomConfig,
    RuntimeSettings,
    get_profile,
)
from covidlib.engine.cv import CVResult, RunConfigError, cached_run, read_experiment, run_cv
from covidlib.engine.folds import (
    assign_folds,
    fold_numbers,
    fold_rows,
    folds_file,
    load_or_assign_folds,
)
from covidlib.engine.learner import resolve_canvas
from covidlib.engine.runs import RunFolder

CPU = RuntimeSettings(device="cpu")


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
    [({"strategy": "random"}, "unknown split strategy .random.; choose one of stratified"),
     ({"n_folds": 1}, "at least 2"),
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


def test_run_cv_writes_a_complete_run_folder(
    cv: Callable[..., CVResult], small_config: Callable[..., ExperimentConfig], tmp_path: Path
) -> None:
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

    config = small_config()
    result = cv(tmp_path, config=config)
    run_dir = tmp_path / "phantom" / "squeezenet" / "quick"
    assert result.run_dir == run_dir
    for name in ("config.json", "folds.csv", "summary.json", "predictions.csv"):
        assert (run_dir / name).is_file()
    assert not RunFolder(run_dir).skipped_file.exists()
    saved = read_experiment(run_dir)  # the whole experiment, canvas filled in
    assert saved == resolve_canvas(config) == result.config and saved.canvas is not None
    assert saved.augment == config.augment and saved.train == config.train
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


def test_every_model_gets_the_same_folds(cv: Callable[..., CVResult], tmp_path: Path) -> None:
    first = cv(tmp_path, only_fold=0)
    second = cv(tmp_path, model="shufflenet", only_fold=0)
    assert first.folds.equals(second.folds)
    assert len(list((tmp_path / "phantom").glob("folds-*.csv"))) == 1
    runs = [tmp_path / "phantom" / m / "quick" / "folds.csv" for m in ("squeezenet", "shufflenet")]
    assert runs[0].read_text() == runs[1].read_text()
    assert not first.summary["complete"] and list(first.summary["folds"]) == ["0"]


def test_changed_experiment_is_refused_changed_runtime_accepted(
    cv: Callable[..., CVResult], small_config: Callable[..., ExperimentConfig], tmp_path: Path
) -> None:
    cv(tmp_path, only_fold=0)
    with pytest.raises(RunConfigError, match=r"train\.epochs: saved 1, requested 2"):
        cv(tmp_path, only_fold=0, config=small_config(epochs=2))
    blurrier = small_config(augment=AugmentConfig(blur_sigma=(0.1, 2.0)))
    with pytest.raises(
        RunConfigError, match=r"augment\.blur_sigma: saved \[0\.1, 1\.5\], requested \[0\.1, 2\.0\]"
    ):
        cv(tmp_path, only_fold=0, config=blurrier)
    with pytest.raises(RunConfigError, match=r"augment: saved \{.*\}, requested None"):
        cv(tmp_path, only_fold=0, config=small_config(augment=None))
    # Device, workers and progress bars are not part of the experiment.
    runtime = RuntimeSettings(device="cpu", num_workers=2, progress=False)
    assert cv(tmp_path, only_fold=1, runtime=runtime).summary["folds"].keys() == {"0", "1"}


def test_interrupted_run_resumes_and_matches_an_uninterrupted_one(
    cv: Callable[..., CVResult], small_config: Callable[..., ExperimentConfig],
    interrupt: type[Callback], tmp_path: Path,
) -> None:
    config = small_config(epochs=2)
    straight = cv(tmp_path / "a", config=config)
    with pytest.raises(KeyboardInterrupt):
        cv(tmp_path / "b", config=config, callbacks=[interrupt(after=0)])
    run_dir = tmp_path / "b" / "phantom" / "squeezenet" / "quick"
    assert RunFolder(run_dir).fold(0).checkpoint.is_file()
    assert not RunFolder(run_dir).fold(0).metrics.exists()
    messages: list[str] = []
    resumed = cv(tmp_path / "b", config=config, log=messages.append)
    assert any("fold 0:" in m and "resumed after epoch 1" in m for m in messages)
    # No progress bars (tests: COVIDLIB_PROGRESS=0): one line per trained epoch instead.
    assert sum(m.startswith("fold 0 epoch 2/2:") for m in messages) == 1
    assert sum(re.match(r"fold \d epoch \d/2: train_loss", m) is not None
               for m in messages) == 1 + 4 * 2
    pd.testing.assert_frame_equal(resumed.predictions, straight.predictions)
    messages.clear()
    cv(tmp_path / "b", config=config, log=messages.append)
    assert sum("skipped" in m for m in messages) == 5


def test_the_profile_decides_the_number_of_folds(
    cv: Callable[..., CVResult], tmp_path: Path
) -> None:
    config = get_profile("quick").with_overrides(folds=3).experiment(
        "phantom", "squeezenet", epochs=1, batch_size=8, canvas_scale=0.12
    )
    assert config.n_folds == 3
    result = cv(tmp_path, config=config, only_fold=2)
    assert fold_numbers(result.folds) == [0, 1, 2]
    assert (tmp_path / "phantom" / "folds-stratified-k3-seed0.csv").is_file()


@pytest.mark.parametrize(
    ("changes", "kwargs", "error", "message"),
    [({"model": "nonet"}, {}, ValueError, "nonet"),
     ({"dataset": "nodata", "phantom": None}, {}, ValueError, "nodata"),
     ({}, {"only_fold": 7}, ValueError, "--fold 7 does not exist"),
     ({"weights": "missing.pt"}, {}, FileNotFoundError, "missing.pt"),
     ({"split": "official"}, {}, ValueError, "official split")],
)
def test_rejected_runs_write_nothing(
    cv: Callable[..., CVResult], small_config: Callable[..., ExperimentConfig], tmp_path: Path,
    changes: dict[str, Any], kwargs: dict[str, Any], error: type[Exception], message: str,
) -> None:
    with pytest.raises(error, match=message):
        cv(tmp_path / "runs", config=small_config(**changes), **kwargs)
    assert not (tmp_path / "runs").exists()


def test_skipped_files_are_reported_and_recorded(
    phantom_root: Path, small_config: Callable[..., ExperimentConfig], tmp_path: Path
) -> None:
    from covidlib.data.index import DatasetProblemsError

    root = tmp_path / "phantom"
    shutil.copytree(phantom_root, root)
    (root / "COVID" / "broken.png").write_bytes(b"not a png")
    runs = tmp_path / "runs"
    with pytest.raises(DatasetProblemsError, match="broken.png"):
        run_cv(small_config(), CPU, root=root, out=runs, only_fold=0, log=None)
    assert not runs.exists()
    messages: list[str] = []
    result = run_cv(small_config(skip_problems=True), CPU, root=root, out=runs, only_fold=0,
                    log=messages.append)
    assert any(m.startswith("skipped 1 unreadable file(s)") and "broken.png" in m
               for m in messages)
    skipped = pd.read_csv(RunFolder(result.run_dir).skipped_file)
    assert skipped["path"].str.endswith("broken.png").tolist() == [True]
    assert read_experiment(result.run_dir).skip_problems


def test_fit_fold_takes_the_augmentation_from_the_config(
    phantom_root: Path, small_config: Callable[..., ExperimentConfig],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import covidlib.data.loaders as loaders
    from covidlib.data.index import index_dataset
    from covidlib.engine.learner import fit_fold

    seen: list[Any] = []
    real = loaders.fold_dataloaders

    def recording(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs["augment"])
        return real(*args, **kwargs)

    monkeypatch.setattr(loaders, "fold_dataloaders", recording)
    images = index_dataset("phantom", phantom_root).images
    augment = AugmentConfig(blur_sigma=(0.1, 2.0), flip_p=0.1)
    for config in (small_config(augment=augment), small_config(augment=None)):
        result = fit_fold(config, images, range(20), range(20, 30))
        assert len(result.predictions) == 10
    assert seen == [augment, None]


def test_cached_run_trains_once(
    small_config: Callable[..., ExperimentConfig], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import covidlib.engine.cv as cv_module

    config = small_config(n_folds=2, phantom=PhantomConfig(size=16, difficulty=0.2))
    first = cached_run(config, CPU, root=tmp_path)
    assert first.run_dir == tmp_path / resolve_canvas(config).digest()[:16]
    assert first.summary["complete"] and fold_numbers(first.folds) == [0, 1]

    def no_training(*_: Any, **__: Any) -> None:
        raise AssertionError("a finished cached run was trained again")

    monkeypatch.setattr(cv_module, "run_cv", no_training)
    again = cached_run(config, RuntimeSettings(device="cpu", num_workers=1), root=tmp_path)
    pd.testing.assert_frame_equal(again.predictions, first.predictions)
    assert again.summary == first.summary and again.folds.equals(first.folds)


@pytest.mark.parametrize(("per_class", "n_test"), [(5, 2), (None, 6)])
def test_fit_first_fold_follows_the_profile(
    phantom_root: Path, per_class: int | None, n_test: int
) -> None:
    from covidlib.data.index import index_dataset
    from covidlib.engine.cv import fit_first_fold

    index = index_dataset("phantom", phantom_root)
    profile = get_profile("quick").with_overrides(
        epochs=1, canvas_scale=0.12, demo_images_per_class=per_class
    )
    result = fit_first_fold("shufflenet", index, profile, runtime=CPU)
    assert len(result.history) == 1
    assert len(result.predictions) == n_test
    assert result.predictions["label"].nunique() == 2


def test_offline_imagenet_weights_are_refused_before_config_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from covidlib.models.factory import WeightsNotCachedError

    monkeypatch.setenv("COVIDLIB_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no-weights"))
    config = get_profile("quick").experiment("phantom", "squeezenet", weights="imagenet")
    with pytest.raises(WeightsNotCachedError, match="not cached"):
        run_cv(config, RuntimeSettings(device="cpu"), out=tmp_path / "runs", log=None)
    assert not list((tmp_path / "runs").rglob("config.json"))


def test_grouped_run_from_a_groups_file_keeps_every_group_in_one_fold(
    tmp_path: Path, phantom_root: Path, small_config: Callable[..., ExperimentConfig],
    cv: Callable[..., CVResult],
) -> None:
    from covidlib.data.index import index_dataset

    images = index_dataset("phantom", phantom_root).images
    groups = tmp_path / "groups.csv"
    # three consecutive files per group, as pseudo-patients of the audit would be
    pd.DataFrame({"path": images["relpath"],
                  "group": [f"g{i // 3}" for i in range(len(images))]}).to_csv(groups,
                                                                              index=False)
    config = small_config(split="grouped", groups=str(groups), n_folds=3)
    assert config.groups_sha256 is not None
    result = cv(tmp_path / "runs", config=config, only_fold=0)
    fold_files = list((tmp_path / "runs" / "phantom").glob("folds-grouped-file-*.csv"))
    assert len(fold_files) == 1  # the groups file's hash is in the fold file's name
    folds = pd.read_csv(fold_files[0])
    wanted = pd.read_csv(groups).set_index("path")["group"]
    assert folds["group"].tolist() == wanted.loc[folds["key"]].tolist()  # the file's groups
    assert (folds.groupby("group")["fold"].nunique() == 1).all()  # none split across folds
    assert folds["fold"].nunique() == 3
    assert len(result.predictions) > 0
