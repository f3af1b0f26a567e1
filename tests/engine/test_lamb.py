"""covidlib.engine.lamb.Lamb against torch_optimizer.Lamb: same numbers, no host reads."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch_optimizer
from fastai.optimizer import OptimWrapper

from covidlib.engine.lamb import Lamb
from covidlib.models.factory import create_model

HOST_READS = ("aten::item", "aten::is_nonzero", "aten::_local_scalar_dense")
STATE_KEYS = {"step", "exp_avg", "exp_avg_sq", "weight_norm", "adam_norm", "trust_ratio"}
# float32 throughout: both optimizers run the same float32 operations in the same order
# (on this CPU the results are even bit for bit equal), so float64 is not needed.
RTOL, ATOL = 1e-6, 1e-9
GRADIENT_SETS = 4  # distinct random gradient sets, cycled with a step-dependent scale


def parameter_copies(model_name: str) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Two identical lists of the model's parameters (random init), as leaf tensors."""
    torch.manual_seed(0)
    model = create_model(model_name)
    first = [p.detach().clone().requires_grad_() for p in model.parameters()]
    second = [p.detach().clone().requires_grad_() for p in first]
    return first, second


def gradient_feed(params: list[torch.Tensor], seed: int = 1) -> Callable[[int], list[torch.Tensor]]:
    """Return ``step -> gradients``: seeded random sets, each scaled per step."""
    generator = torch.Generator().manual_seed(seed)
    sets = [[torch.randn(p.shape, generator=generator) * 1e-2 for p in params]
            for _ in range(GRADIENT_SETS)]
    return lambda step: [g * (1.0 + 0.5 * (step % 7)) for g in sets[step % GRADIENT_SETS]]


def run_both(
    model_name: str, steps: int, **hyper: Any
) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.optim.Optimizer, torch.optim.Optimizer]:
    ours_params, theirs_params = parameter_copies(model_name)
    ours, theirs = Lamb(ours_params, **hyper), torch_optimizer.Lamb(theirs_params, **hyper)
    feed = gradient_feed(ours_params)
    for step in range(steps):
        for gradient, mine, other in zip(feed(step), ours_params, theirs_params, strict=True):
            mine.grad = other.grad = gradient  # neither optimizer writes to its gradients
        ours.step()
        theirs.step()
    return ours_params, theirs_params, ours, theirs


def assert_same(
    ours_params: list[torch.Tensor], theirs_params: list[torch.Tensor],
    ours: torch.optim.Optimizer, theirs: torch.optim.Optimizer,
) -> None:
    for index, (mine, other) in enumerate(zip(ours_params, theirs_params, strict=True)):
        torch.testing.assert_close(mine, other, rtol=RTOL, atol=ATOL, msg=f"parameter {index}")
        mine_state, other_state = ours.state[mine], theirs.state[other]
        assert set(mine_state) == set(other_state) == STATE_KEYS
        assert mine_state["step"] == other_state["step"]
        for key in ("exp_avg", "exp_avg_sq"):
            torch.testing.assert_close(mine_state[key], other_state[key], rtol=RTOL, atol=ATOL)
        for key in ("weight_norm", "adam_norm", "trust_ratio"):
            assert float(mine_state[key]) == pytest.approx(float(other_state[key]), rel=RTOL), (
                f"parameter {index} {key}"
            )


# Every (weight_decay, adam, debias) on ResNet18 (about 10 s each on an idle CPU); the
# paper's setting and its opposite on DenseNet121 (364 tensors).
COMBINATIONS = [
    {"weight_decay": wd, "adam": adam, "debias": debias}
    for wd in (1.0, 0.0) for adam in (False, True) for debias in (False, True)
]
PAPER, OPPOSITE = COMBINATIONS[0], COMBINATIONS[-1]


def combination_id(hyper: dict[str, Any]) -> str:
    return "-".join(f"{key}={value}" for key, value in hyper.items())


@pytest.mark.slow
@pytest.mark.parametrize("hyper", COMBINATIONS, ids=combination_id)
def test_equals_torch_optimizer_on_resnet18(hyper: dict[str, Any]) -> None:
    assert_same(*run_both("resnet18", 100, lr=1e-2, **hyper))


@pytest.mark.slow
@pytest.mark.parametrize("hyper", [PAPER, OPPOSITE], ids=combination_id)
def test_equals_torch_optimizer_on_densenet121(hyper: dict[str, Any]) -> None:
    assert_same(*run_both("densenet121", 100, lr=1e-2, **hyper))


def small_pair() -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    generator = torch.Generator().manual_seed(3)
    shapes = [(4, 3), (3,), (2, 2, 3)]
    ours = [torch.randn(s, generator=generator).requires_grad_() for s in shapes]
    return ours, [p.detach().clone().requires_grad_() for p in ours]


@pytest.mark.parametrize("weight_decay", [0.0, 1.0])
def test_zero_weight_and_zero_gradient(weight_decay: float) -> None:
    ours_params, theirs_params = small_pair()
    with torch.no_grad():
        for params in (ours_params, theirs_params):
            params[0].zero_()  # a zero weight tensor: ||w|| = 0
    ours = Lamb(ours_params, lr=0.1, weight_decay=weight_decay)
    theirs = torch_optimizer.Lamb(theirs_params, lr=0.1, weight_decay=weight_decay)
    for step in range(3):
        for mine, other in zip(ours_params, theirs_params, strict=True):
            gradient = torch.full_like(mine, 0.5 + step)
            mine.grad, other.grad = gradient, gradient.clone()
        # a zero gradient: ||update|| = 0 without weight decay
        ours_params[1].grad = theirs_params[1].grad = torch.zeros_like(ours_params[1])
        ours.step()
        theirs.step()
        assert_same(ours_params, theirs_params, ours, theirs)
        if step == 0:  # the zero weight moves with trust ratio 1 and is no longer zero
            assert float(ours.state[ours_params[0]]["weight_norm"]) == 0.0
            assert float(ours.state[ours_params[0]]["trust_ratio"]) == 1.0
            assert ours_params[0].abs().min() > 0
        if weight_decay == 0:  # m stays 0, so the update is 0
            assert float(ours.state[ours_params[1]]["adam_norm"]) == 0.0
            assert float(ours.state[ours_params[1]]["trust_ratio"]) == 1.0


def count_host_reads(optimizer: torch.optim.Optimizer) -> int:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        optimizer.step()
    return sum(1 for event in prof.events() if event.name in HOST_READS)


@pytest.mark.parametrize("hyper", [{"weight_decay": 1.0}, {"adam": True, "debias": True}])
def test_a_step_reads_nothing_back(hyper: dict[str, Any]) -> None:
    ours_params, theirs_params = parameter_copies("resnet18")
    ours, theirs = Lamb(ours_params, **hyper), torch_optimizer.Lamb(theirs_params, **hyper)
    for mine, other in zip(ours_params, theirs_params, strict=True):
        mine.grad = torch.randn_like(mine)
        other.grad = mine.grad.clone()
    ours.step()  # the first step creates the state
    theirs.step()
    assert count_host_reads(ours) == 0
    assert count_host_reads(theirs) > 0  # the profile does see host reads


def test_steps_that_differ_between_tensors_with_debias() -> None:
    ours_params, theirs_params = small_pair()
    ours = Lamb(ours_params, lr=0.1, debias=True, weight_decay=0.5)
    theirs = torch_optimizer.Lamb(theirs_params, lr=0.1, debias=True, weight_decay=0.5)
    for step in range(4):
        for index, (mine, other) in enumerate(zip(ours_params, theirs_params, strict=True)):
            if index == 2 and step < 2:  # no gradient: skipped, its step count lags behind
                mine.grad = other.grad = None
                continue
            gradient = torch.linspace(-1, 1 + step, mine.numel()).reshape(mine.shape)
            mine.grad, other.grad = gradient, gradient.clone()
        ours.step()
        theirs.step()
    assert [ours.state[p]["step"] for p in ours_params] == [4, 4, 2]
    assert_same(ours_params, theirs_params, ours, theirs)


def test_mixed_dtypes_in_one_group() -> None:
    ours_params, theirs_params = small_pair()
    ours_params[1] = ours_params[1].detach().double().requires_grad_()
    theirs_params[1] = theirs_params[1].detach().double().requires_grad_()
    ours = Lamb(ours_params, lr=0.1, weight_decay=1.0)
    theirs = torch_optimizer.Lamb(theirs_params, lr=0.1, weight_decay=1.0)
    for mine, other in zip(ours_params, theirs_params, strict=True):
        mine.grad = torch.ones_like(mine)
        other.grad = mine.grad.clone()
    ours.step()
    theirs.step()
    assert ours.state[ours_params[1]]["trust_ratio"].dtype == torch.float64
    assert_same(ours_params, theirs_params, ours, theirs)


def test_closure_state_dict_round_trip_and_sparse_gradients() -> None:
    layer = torch.nn.Linear(3, 2)
    optimizer = Lamb(layer.parameters(), lr=0.05, weight_decay=1.0)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = layer(torch.ones(4, 3)).pow(2).sum()
        loss.backward()
        return loss

    first = optimizer.step(closure)
    assert isinstance(first, torch.Tensor)
    buffer = io.BytesIO()
    torch.save({"model": layer.state_dict(), "optimizer": optimizer.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    twin = torch.nn.Linear(3, 2)
    twin.load_state_dict(saved["model"])
    twin_optimizer = Lamb(twin.parameters(), lr=0.05, weight_decay=1.0)
    twin_optimizer.load_state_dict(saved["optimizer"])
    assert twin_optimizer.state[twin.weight]["step"] == 1
    for model, opt in ((layer, optimizer), (twin, twin_optimizer)):
        opt.zero_grad()
        model(torch.ones(4, 3)).pow(2).sum().backward()
        opt.step()
    torch.testing.assert_close(layer.weight, twin.weight, rtol=0, atol=0)
    torch.testing.assert_close(optimizer.state[layer.weight]["exp_avg_sq"],
                               twin_optimizer.state[twin.weight]["exp_avg_sq"], rtol=0, atol=0)

    embedding = torch.nn.Embedding(5, 2, sparse=True)
    sparse_optimizer = Lamb(embedding.parameters())
    embedding(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(RuntimeError, match="sparse gradients"):
        sparse_optimizer.step()


@pytest.mark.parametrize("bad", [{"lr": 0.0}, {"eps": -1.0}, {"betas": (1.0, 0.9)},
                                 {"betas": (0.9, -0.1)}, {"weight_decay": -1.0},
                                 {"clamp_value": -1.0}])
def test_bad_hyper_parameters(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="Invalid"):
        Lamb([torch.zeros(1, requires_grad=True)], **bad)  # type: ignore[arg-type]


def test_fastai_optim_wrapper_trains_and_sets_hyper_parameters() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    x = torch.randn(32, 4)
    y = x.sum(dim=1, keepdim=True)
    optimizer = OptimWrapper(model.parameters(), opt=Lamb, lr=0.05)
    losses = []
    for _ in range(30):
        loss = torch.nn.functional.mse_loss(model(x), y)
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert losses[-1] < 0.5 * losses[0]
    optimizer.set_hyper("lr", 0.003)
    optimizer.set_hyper("wd", 0.25)
    group = optimizer.opt.param_groups[0]
    assert isinstance(optimizer.opt, Lamb)
    assert (group["lr"], group["weight_decay"]) == (0.003, 0.25)
