"""Tests of the training engine on a tiny model and synthetic tensors (fast, CPU)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch_optimizer
from fastai.callback.core import Callback
from fastai.data.core import DataLoaders
from fastai.data.load import DataLoader

from covidlib.config import TrainConfig, config_differences
from covidlib.engine.callbacks import derive_seed
from covidlib.engine.checkpoint import load_checkpoint
from covidlib.engine.lamb import Lamb
from covidlib.engine.learner import make_learner, train_fold
from covidlib.engine.runs import FoldFiles
from covidlib.evaluate.metrics import METRIC_NAMES

TinyFactory = Callable[..., tuple[torch.nn.Module, DataLoaders, pd.DataFrame]]

PAPER_STEPS = {0: 3e-4, 49: 3e-4, 50: 1e-4, 69: 1e-4, 70: 3e-5, 79: 3e-5, 80: 1e-5, 89: 1e-5,
               90: 3e-6, 99: 3e-6}


def cpu_config(**changes: object) -> TrainConfig:
    return TrainConfig(**changes)  # type: ignore[arg-type]


class RecordHypers(Callback):
    """Record the optimizer's lr and weight decay as the torch optimizer sees them."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, float, float, type]] = []

    def before_batch(self) -> None:
        if self.learn.training:
            group = self.learn.opt.opt.param_groups[0]
            self.rows.append((self.learn.epoch, group["lr"], group["weight_decay"],
                              type(self.learn.opt.opt)))


def test_defaults_are_the_papers() -> None:
    config = TrainConfig()
    assert (config.epochs, config.batch_size, config.lr, config.weight_decay) == (
        100, 32, 3e-4, 1.0)
    assert config.optimizer == "lamb" and config.fold_model == "last"


@pytest.mark.parametrize(("epoch", "lr"), sorted(PAPER_STEPS.items()))
def test_paper_schedule_at_100_epochs(epoch: int, lr: float) -> None:
    assert TrainConfig().lr_at(epoch) == lr


@pytest.mark.parametrize("epochs", [1, 2, 3, 7, 10, 20, 50, 200])
def test_schedule_scales_proportionally(epochs: int) -> None:
    schedule = TrainConfig(epochs=epochs).lr_schedule()
    paper = TrainConfig().lr_schedule()
    assert len(schedule) == epochs
    # Epoch e of E uses the paper's rate at epoch e * 100 / E (rounded down).
    assert schedule == [paper[e * 100 // epochs] for e in range(epochs)]


@pytest.mark.parametrize(
    ("changes", "word"),
    [({"epochs": 0}, "epochs"), ({"optimizer": "rmsprop"}, "rmsprop"),
     ({"fold_model": "best"}, "fold_model"), ({"weight_decay": -1}, "weight_decay")],
)
def test_invalid_config_is_refused(changes: dict[str, object], word: str) -> None:
    with pytest.raises(ValueError, match=word):
        TrainConfig(**changes)  # type: ignore[arg-type]


def test_weight_decay_reaches_the_lamb_optimizer(tiny: TinyFactory) -> None:
    model, dls, _ = tiny()
    learner = make_learner(model, dls, cpu_config())
    learner.create_opt()
    assert isinstance(learner.opt.opt, Lamb)
    groups = learner.opt.opt.param_groups
    assert [g["weight_decay"] for g in groups] == [1.0] * len(groups)
    n_params = sum(len(g["params"]) for g in groups)
    assert n_params == len(list(model.parameters()))  # norms and biases decay too


def test_the_original_lamb_stays_selectable(tiny: TinyFactory) -> None:
    model, dls, _ = tiny()
    learner = make_learner(model, dls, cpu_config(optimizer="lamb-torch-optimizer"))
    learner.create_opt()
    assert isinstance(learner.opt.opt, torch_optimizer.Lamb)


def test_lr_and_weight_decay_during_training_follow_the_config(tiny: TinyFactory) -> None:
    model, dls, table = tiny()
    recorder = RecordHypers()
    config = cpu_config(epochs=10)
    result = train_fold(model, dls, table, config, callbacks=[recorder])
    seen = {epoch: lr for epoch, lr, _, _ in recorder.rows}
    assert [seen[e] for e in range(10)] == config.lr_schedule()
    assert {wd for _, _, wd, _ in recorder.rows} == {1.0}
    assert {kind for *_, kind in recorder.rows} == {Lamb}
    assert list(result.history["lr"]) == config.lr_schedule()
    assert list(result.history["epoch"]) == list(range(10))


def test_predictions_and_metrics(tiny: TinyFactory) -> None:
    model, dls, table = tiny()
    result = train_fold(model, dls, table, cpu_config(epochs=2), fold=3)
    predictions = result.predictions
    assert list(predictions.columns) == ["path", "label", "probability", "fold", "logit"]
    assert list(predictions["path"]) == list(table["path"])
    assert predictions["probability"].between(0, 1).all()
    sigmoid = 1 / (1 + np.exp(-predictions["logit"]))
    assert np.allclose(sigmoid, predictions["probability"])
    assert set(predictions["fold"]) == {3}
    assert set(METRIC_NAMES) <= set(result.metrics)


def test_same_seed_same_result_other_seed_differs(tiny: TinyFactory) -> None:
    runs = []
    for seed in (0, 0, 1):
        model, dls, table = tiny()
        runs.append(train_fold(model, dls, table, cpu_config(epochs=2), seed=seed).predictions)
    assert runs[0]["probability"].tolist() == runs[1]["probability"].tolist()
    assert runs[0]["probability"].tolist() != runs[2]["probability"].tolist()


def test_fold_files_are_written(tmp_path: Path, tiny: TinyFactory) -> None:
    model, dls, table = tiny()
    train_fold(model, dls, table, cpu_config(epochs=2), fold_dir=tmp_path)
    log = pd.read_csv(FoldFiles(tmp_path).epochs)
    assert list(log.columns) == ["epoch", "train_loss", "lr", "seconds", "worker"]
    assert len(log) == 2
    state = load_checkpoint(FoldFiles(tmp_path).checkpoint)
    assert state["epochs_done"] == 2
    assert {"model", "optimizer", "rng", "history"} <= set(state)
    assert json.loads((FoldFiles(tmp_path).metrics).read_text())["fold"] == 0
    assert len(pd.read_csv(FoldFiles(tmp_path).predictions)) == len(table)
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary files left behind


def test_interrupted_fold_resumes_to_the_same_predictions(
    tmp_path: Path, tiny: TinyFactory, interrupt: type[Callback]
) -> None:
    config = cpu_config(epochs=4)
    model, dls, table = tiny()
    straight = train_fold(model, dls, table, config, fold=1, fold_dir=tmp_path / "straight")

    model, dls, table = tiny()
    with pytest.raises(KeyboardInterrupt):
        train_fold(model, dls, table, config, fold=1, fold_dir=tmp_path / "resumed",
                   callbacks=[interrupt(after=1)])
    assert load_checkpoint(FoldFiles(tmp_path / "resumed").checkpoint)["epochs_done"] == 2
    assert not (FoldFiles(tmp_path / "resumed").metrics).exists()

    model, dls, table = tiny(seed=5)  # other init: the checkpoint must replace it
    resumed = train_fold(model, dls, table, config, fold=1, fold_dir=tmp_path / "resumed")
    assert resumed.resumed_from == 2
    assert list(resumed.history["epoch"]) == [0, 1, 2, 3]
    np.testing.assert_array_equal(
        resumed.predictions["probability"].to_numpy(),
        straight.predictions["probability"].to_numpy(),
    )
    assert resumed.history["train_loss"].tolist() == straight.history["train_loss"].tolist()


def test_lowest_train_loss_option_keeps_best_weights(tmp_path: Path, tiny: TinyFactory) -> None:
    model, dls, table = tiny()
    config = cpu_config(epochs=3, fold_model="lowest_train_loss")
    result = train_fold(model, dls, table, config, fold_dir=tmp_path)
    assert (tmp_path / "best.pt").is_file()
    best_epoch = torch.load(tmp_path / "best.pt", weights_only=True)["epoch"]
    assert best_epoch == int(result.history["train_loss"].idxmin())


def test_broken_checkpoint_is_reported(tmp_path: Path, tiny: TinyFactory) -> None:
    (FoldFiles(tmp_path).checkpoint).write_bytes(b"not a checkpoint")
    model, dls, table = tiny()
    with pytest.raises(ValueError, match="Delete it"):
        train_fold(model, dls, table, cpu_config(epochs=1), fold_dir=tmp_path)


def test_derive_seed_and_config_differences() -> None:
    assert derive_seed(0, 1, 2) != derive_seed(0, 1, 3)
    assert config_differences({"train": {"epochs": 1}}, {"train": {"epochs": 2}}) == [
        "train.epochs"]


@pytest.mark.parametrize("changes", [{"schedule_lr": 0.0}, {"schedule_epochs": 0}])
def test_bad_schedule_settings_are_refused(changes: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(changes))):
        TrainConfig(**changes)  # type: ignore[arg-type]


def test_best_epoch_model_needs_a_fold_folder() -> None:
    data = [(torch.randn(3, 4, 4), torch.tensor(1.0))] * 4
    dls = DataLoaders(DataLoader(data, bs=2), DataLoader(data, bs=2))
    table = pd.DataFrame({"path": [f"{i}.png" for i in range(4)], "label": [1] * 4})
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 1))
    config = TrainConfig(epochs=1, fold_model="lowest_train_loss")
    with pytest.raises(ValueError, match="fold_dir"):
        train_fold(model, dls, table, config)


class NanOutput(torch.nn.Module):
    """Predicts NaN: in training too (its weights then turn NaN) or in evaluation only."""

    def __init__(self, in_training: bool) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(1, 1)
        self.in_training = in_training

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.linear(x.mean(dim=(1, 2, 3))[:, None])
        return out * float("nan") if self.in_training or not self.training else out


def test_non_finite_predictions_are_reported_as_such(tiny: TinyFactory) -> None:
    _, dls, table = tiny()
    with pytest.raises(ValueError, match=r"fold 3: 6 of 6 test predictions are NaN or infinite"):
        train_fold(NanOutput(in_training=False), dls, table, cpu_config(epochs=1), fold=3)


class PoisonWeights(Callback):
    """Turn the model's weights into NaN during epoch ``epoch`` (a diverging step)."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def after_step(self) -> None:
        if self.learn.epoch == self.epoch:
            with torch.no_grad():
                next(self.learn.model.parameters()).fill_(float("nan"))


def test_diverged_training_stops_after_the_epoch_and_keeps_the_last_checkpoint(
    tmp_path: Path, tiny: TinyFactory
) -> None:
    model, dls, table = tiny()
    with pytest.raises(FloatingPointError, match="epoch 1: the model's weights hold NaN"):
        train_fold(model, dls, table, cpu_config(epochs=3), fold_dir=tmp_path,
                   callbacks=[PoisonWeights(epoch=1)])
    assert load_checkpoint(FoldFiles(tmp_path).checkpoint)["epochs_done"] == 1  # epoch 0's


def test_epoch_log_writes_one_line_per_epoch(tiny: TinyFactory) -> None:
    from covidlib.engine.callbacks import EpochLog

    lines: list[str] = []
    model, dls, table = tiny()
    train_fold(model, dls, table, cpu_config(epochs=2), fold=3, show_progress=False,
               callbacks=[EpochLog(lines.append, fold=3, epochs=2)])
    assert [line.split(":")[0] for line in lines] == ["fold 3 epoch 1/2", "fold 3 epoch 2/2"]
    assert all("train_loss" in line for line in lines)
    assert "lr 0.0003" in lines[0] and "lr 0.0001" in lines[1]  # the 2-epoch schedule


def test_progress_bars_go_to_stderr_and_are_removed_by_type(
    tiny: TinyFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    model, dls, table = tiny()
    shown = make_learner(model, dls, cpu_config(), show_progress=True)
    from fastai.callback.progress import ProgressCallback  # imported quietly by make_learner

    hidden = make_learner(model, dls, cpu_config(), show_progress=False)
    assert any(isinstance(cb, ProgressCallback) for cb in shown.cbs)
    assert not any(isinstance(cb, ProgressCallback) for cb in hidden.cbs)
    capsys.readouterr()
    train_fold(model, dls, table, cpu_config(epochs=1), show_progress=True)
    captured = capsys.readouterr()
    assert captured.out == "" and "train_loss" in captured.err


def test_optimizer_builders_match_the_config_names() -> None:
    from covidlib.config import OPTIMIZER_NAMES
    from covidlib.engine.optim import OPTIMIZERS

    assert tuple(OPTIMIZERS) == OPTIMIZER_NAMES
