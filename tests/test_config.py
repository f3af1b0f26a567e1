"""Tests for covidlib.config: the experiment config, profiles, runtime settings and paths."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from covidlib.config import (
    PROFILES,
    AugmentConfig,
    ExperimentConfig,
    PhantomConfig,
    RuntimeSettings,
    TrainConfig,
    data_dir,
    describe_differences,
    get_profile,
    progress_enabled,
)

REPO_ROOT = Path(__file__).resolve().parents[1]


def experiment(**changes: object) -> ExperimentConfig:
    return get_profile("quick").experiment("phantom", "squeezenet", **changes)


# ------------------------------------------------------------------------------ profiles


def test_quick_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COVIDLIB_PROFILE", raising=False)
    assert get_profile().name == "quick"


def test_environment_selects_the_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COVIDLIB_PROFILE", " Full ")
    assert get_profile().name == "full"


def test_full_profile_has_the_papers_settings() -> None:
    full = get_profile("full")
    assert (full.epochs, full.batch_size, full.lr, full.pretrained, full.folds) == (
        100, 32, 3e-4, True, 5)
    assert full.canvas_scale == 1.0 and full.train == TrainConfig()


def test_quick_profile_keeps_its_numbers() -> None:
    quick = get_profile("quick")
    assert quick.dataset == "phantom" and not quick.pretrained and quick.weights == "random"
    assert (quick.epochs, quick.batch_size, quick.lr, quick.canvas_scale) == (6, 16, 1e-2, 0.4)
    assert (quick.phantom_size, quick.phantom_difficulty) == (200, 0.2)
    assert quick.demo_images_per_class == 16 and quick.folds == 5


def test_unknown_profile_names_the_choices() -> None:
    with pytest.raises(ValueError, match="unknown profile 'fast'; choose one of quick, cpu, full"):
        get_profile("fast")


def test_overrides_return_a_copy() -> None:
    quick = get_profile("quick")
    changed = quick.with_overrides(epochs=7, phantom_size=30, folds=3)
    assert (changed.epochs, changed.phantom_size, changed.folds) == (7, 30, 3)
    assert quick.epochs == PROFILES["quick"].epochs == 6
    with pytest.raises(ValueError, match="unknown profile setting 'device'"):
        quick.with_overrides(device="cpu")


def test_profile_builds_the_experiment() -> None:
    config = get_profile("quick").with_overrides(folds=3).experiment(
        None, "resnet18", epochs=2, seed=4, augment=None
    )
    assert (config.dataset, config.model, config.n_folds, config.seed) == (
        "phantom", "resnet18", 3, 4)
    assert (config.train.epochs, config.train.lr, config.train.batch_size) == (2, 1e-2, 16)
    assert config.canvas_scale == 0.4 and config.augment is None
    assert config.phantom == PhantomConfig(size=200, difficulty=0.2)
    real = get_profile("quick").experiment("covid19-ct", "resnet18")
    assert real.phantom is None and real.weights == "random"
    with pytest.raises(ValueError, match="unknown experiment setting 'device'"):
        get_profile("quick").experiment(None, "resnet18", device="cpu")


# --------------------------------------------------------------------------- experiment


def test_experiment_round_trips_through_json() -> None:
    config = experiment(canvas=(64, 48), augment=AugmentConfig(blur_sigma=(0.2, 1.0)))
    data = json.loads(json.dumps(config.to_dict()))
    again = ExperimentConfig.from_dict(data)
    assert again == config and again.digest() == config.digest()
    assert again.canvas == (64, 48) and again.augment is not None
    assert again.augment.blur_sigma == (0.2, 1.0)
    assert ExperimentConfig.from_dict(experiment(augment=None).to_dict()).augment is None


def test_digest_is_the_sha256_of_the_canonical_json() -> None:
    config = experiment()
    canonical = json.dumps(config.to_dict(), sort_keys=True, separators=(",", ":"))
    assert config.digest() == hashlib.sha256(canonical.encode()).hexdigest()
    # the same experiment spelled with ints or lists digests the same
    integers = experiment(lr=1, canvas_scale=1)
    assert integers.digest() == experiment(lr=1.0, canvas_scale=1.0).digest()
    assert ExperimentConfig("phantom", "squeezenet", canvas=[10, 20]).digest() == (
        ExperimentConfig("phantom", "squeezenet", canvas=(10, 20)).digest())


@pytest.mark.parametrize(
    "changes",
    [{"seed": 1}, {"n_folds": 3}, {"epochs": 2}, {"skip_problems": True},
     {"augment": AugmentConfig(blur_sigma=(0.1, 2.0))}, {"augment": None},
     {"phantom": PhantomConfig(size=30)}, {"weights": "imagenet"},
     {"fold_model": "lowest_train_loss"},
     {"mixed_precision": False}, {"canvas_scale": 0.2}],
)
def test_every_setting_changes_the_digest(changes: dict[str, object]) -> None:
    assert experiment(**changes).digest() != experiment().digest()


def test_unknown_and_missing_keys_are_named() -> None:
    data = experiment().to_dict()
    data["train"]["epoch"] = data["train"].pop("epochs")
    with pytest.raises(ValueError, match=r"unknown config key 'train\.epoch'"):
        ExperimentConfig.from_dict(data)
    data = experiment().to_dict()
    del data["augment"]["blur_sigma"]
    with pytest.raises(ValueError, match=r"missing config key 'augment\.blur_sigma'"):
        ExperimentConfig.from_dict(data)
    data = experiment().to_dict()
    data["device"] = "cpu"
    with pytest.raises(ValueError, match=r"unknown config key 'device'"):
        ExperimentConfig.from_dict(data)


@pytest.mark.parametrize(
    ("changes", "word"),
    [({"split": "random"}, "split"), ({"n_folds": 1}, "n_folds"), ({"canvas_scale": 0}, "canvas"),
     ({"optimizer": "rmsprop"}, "rmsprop"), ({"canvas": (0, 10)}, "canvas"),
     ({"weights": ""}, "weights")],
)
def test_invalid_experiments_are_refused(changes: dict[str, object], word: str) -> None:
    with pytest.raises(ValueError, match=word):
        experiment(**changes)


def test_official_split_has_one_fold_and_phantom_settings_need_the_phantom() -> None:
    assert experiment(split="official").n_folds == 1
    with pytest.raises(ValueError, match="phantom settings apply"):
        ExperimentConfig("covid19-ct", "resnet18", phantom=PhantomConfig())
    assert ExperimentConfig("phantom", "resnet18").phantom == PhantomConfig()


def test_differences_name_the_dotted_key_with_both_values() -> None:
    saved = experiment().to_dict()
    wanted = experiment(augment=AugmentConfig(blur_sigma=(0.1, 2.0))).to_dict()
    assert describe_differences(saved, wanted) == (
        "augment.blur_sigma: saved [0.1, 1.5], requested [0.1, 2.0]")


def test_weights_map_to_create_model() -> None:
    assert experiment().pretrained is False
    assert experiment(weights="imagenet").pretrained is True
    assert experiment(weights="backbone.pt").pretrained == "backbone.pt"


def test_runtime_settings_are_separate() -> None:
    runtime = RuntimeSettings(device="cpu", num_workers=2, progress=False)
    assert runtime.torch_device().type == "cpu" and runtime.show_progress() is False
    assert "device" not in experiment().to_dict() and "device" not in experiment().train.to_dict()
    with pytest.raises(ValueError, match="num_workers"):
        RuntimeSettings(num_workers=-1)


# ------------------------------------------------------------------------- paths, progress


def test_data_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("COVIDLIB_DATA", str(tmp_path / "elsewhere"))
    assert data_dir() == tmp_path / "elsewhere"


def test_data_dir_defaults_to_the_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COVIDLIB_DATA", raising=False)
    assert data_dir() == REPO_ROOT / "data"


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("value", "tty", "expected"),
    [(None, True, True), (None, False, False), ("1", False, False), ("0", True, False),
     ("off", True, False), ("yes", True, True)],
)
def test_progress_only_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, value: str | None, tty: bool, expected: bool
) -> None:
    if value is None:
        monkeypatch.delenv("COVIDLIB_PROGRESS", raising=False)
    else:
        monkeypatch.setenv("COVIDLIB_PROGRESS", value)
    monkeypatch.setattr(sys, "stderr", FakeTerminal() if tty else io.StringIO())
    assert progress_enabled() is expected


def test_bad_progress_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COVIDLIB_PROGRESS", "maybe")
    with pytest.raises(ValueError, match="COVIDLIB_PROGRESS='maybe'"):
        progress_enabled()


def test_import_covidlib_imports_no_torch() -> None:
    code = (
        "import sys, covidlib, covidlib.config; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'fastai', "
        "'numpy', 'pandas'} or (m.startswith('covidlib.') and not m.startswith('covidlib.config')"
        " and m not in {'covidlib.utils', 'covidlib.utils.env', 'covidlib.utils.names'})))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO_ROOT, check=True)
    assert done.stdout.strip() == "[]"


def test_cpu_profile_reads_its_per_model_table() -> None:
    from covidlib.config import get_profile

    cpu = get_profile("cpu")
    assert cpu.weights == "random" and cpu.per_model, "the cpu profile trains from scratch"
    for model, settings in cpu.per_model.items():
        config = cpu.experiment("sars-cov-2-ct", model)
        assert config.canvas_scale == settings["canvas_scale"]
        assert config.train.epochs == settings["epochs"] and config.train.lr == settings["lr"]
        assert cpu.experiment("covid19-ct", model, epochs=2).train.epochs == 2  # override wins
    assert cpu.experiment("covid19-ct", "resnet50").canvas_scale == cpu.canvas_scale
