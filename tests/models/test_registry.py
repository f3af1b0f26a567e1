"""Tests for covidlib.models.registry: the specs, random-init architectures, Table 1."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest
import torch
from torch import nn

from covidlib.models import registry as models
from covidlib.models.factory import get_module
from covidlib.models.registry import build_architecture, get_spec, list_models
from covidlib.utils.names import UnknownNameError

ALL = list_models()
SMALL = ["squeezenet", "shufflenet", "resnet18"]
QUICK_SCALE = 0.4
PAPER = pd.read_csv(models.PAPER_TABLE1_FILE).set_index("model")
Built = Callable[[str], nn.Module]  # the built fixture of conftest.py


def test_registry_has_the_papers_twelve_models() -> None:
    assert ALL == [
        "squeezenet",
        "shufflenet",
        "resnet18",
        "resnet50",
        "resnet101",
        "resnext50",
        "resnext101",
        "inceptionv3",
        "xception",
        "densenet121",
        "densenet169",
        "densenet201",
    ]
    assert [get_spec(n).paper_name for n in ALL] == list(PAPER.index)


@pytest.mark.parametrize("name", ALL)
def test_spec_sizes_match_paper_table1(name: str) -> None:
    spec = get_spec(name)
    row = PAPER.loc[spec.paper_name]
    assert f"{spec.default_input[0]}x{spec.default_input[1]}" == row["default_input_wxh"]
    assert f"{spec.custom_input[0]}x{spec.custom_input[1]}" == row["custom_input_wxh"]
    assert spec.layers == row["layers"]


@pytest.mark.parametrize("name", ALL)
def test_one_finite_logit_at_quick_canvas(name: str, built: Built) -> None:
    spec = get_spec(name)
    model = built(name)
    width, height = spec.canvas(QUICK_SCALE)
    seen: dict[str, torch.Size] = {}
    head = get_module(model, spec.head_layer)
    target = get_module(model, spec.gradcam_layer)

    def remember(key: str, use_input: bool):  # forward hooks must return None
        def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: object) -> None:
            seen[key] = inputs[0].shape if use_input else output.shape  # type: ignore[union-attr]

        return hook

    hooks = [
        head.register_forward_hook(remember("head_in", True)),
        target.register_forward_hook(remember("cam", False)),
    ]
    try:
        with torch.no_grad():
            logits = model(torch.randn(2, 3, height, width))
    finally:
        for hook in hooks:
            hook.remove()
    assert logits.shape == (2, 1)
    assert torch.isfinite(logits).all()
    # The head is the one and only output layer: one output, fed by feature_dim channels.
    out_size = head.out_features if isinstance(head, nn.Linear) else head.out_channels
    assert out_size == 1
    assert seen["head_in"][1] == spec.feature_dim
    # The Grad-CAM target yields a spatial map (B, C, h, w).
    assert len(seen["cam"]) == 4 and seen["cam"][0] == 2


@pytest.mark.parametrize("name", SMALL)
def test_full_custom_size_and_min_input(name: str, built: Built) -> None:
    spec = get_spec(name)
    model = built(name)
    with torch.no_grad():
        for width, height in (spec.custom_input, spec.min_input):
            logits = model(torch.randn(1, 3, height, width))
            assert logits.shape == (1, 1) and torch.isfinite(logits).all()


def test_inception_min_input_is_the_real_limit(built: Built) -> None:
    spec = get_spec("inceptionv3")
    model = built("inceptionv3")
    with torch.no_grad():
        assert model(torch.zeros(1, 3, *spec.min_input)).shape == (1, 1)
        with pytest.raises(RuntimeError):
            model(torch.zeros(1, 3, spec.min_input[1] - 1, spec.min_input[0] - 1))


def test_squeezenet_logit_can_be_negative(built: Built) -> None:
    # The final ReLU of torchvision's SqueezeNet is removed: it would clamp logits at 0.
    model = built("squeezenet")
    assert not any(isinstance(m, nn.ReLU) for m in model.classifier)
    with torch.no_grad():
        head = get_module(model, "classifier.1")
        head.bias.fill_(-5.0)
        try:
            assert model(torch.zeros(1, 3, 64, 64)).item() < 0
        finally:
            head.bias.zero_()


@pytest.mark.parametrize(
    ("scale", "expected"), [(1.0, (349, 253)), (0.4, (140, 101)), (0.05, (32, 32))]
)
def test_canvas_scales_and_clamps(scale: float, expected: tuple[int, int]) -> None:
    assert get_spec("resnet18").canvas(scale) == expected


def test_canvas_rejects_bad_scale_and_clamps_inception() -> None:
    assert get_spec("inceptionv3").canvas(0.1) == (75, 75)
    with pytest.raises(ValueError, match="scale"):
        get_spec("resnet18").canvas(0)


@pytest.mark.parametrize(("name", "message"), [
    ("resnet19", "unknown model 'resnet19': did you mean resnet18, resnet101 or resnext101?"),
    ("vgg16", "unknown model 'vgg16'; `covidlib models` lists them."),
])
def test_unknown_name_offers_close_matches(name: str, message: str) -> None:
    with pytest.raises(UnknownNameError) as info:
        build_architecture(name)
    assert str(info.value) == message and isinstance(info.value, ValueError)
    assert get_spec("ResNeXt101").name == "resnext101"


@pytest.mark.parametrize("name", ALL)
def test_table1_params_within_001_million_of_paper(name: str) -> None:
    row = models.model_table([name]).iloc[0]
    paper = PAPER.loc[get_spec(name).paper_name]
    assert abs(row["params"] / 1e6 - paper["params_millions"]) < 0.01
    assert abs(row["params_millions"] - paper["params_millions"]) <= 0.0100001
    assert row["size_mb"] == pytest.approx(row["params"] * 4 / 1e6, abs=0.05)


def test_table_counts_equal_a_real_random_model(built: Built) -> None:
    assert models.model_table(["resnet18"]).loc[0, "params"] == models.count_parameters(
        built("resnet18")
    )


@pytest.mark.parametrize(
    ("name", "mean"),
    [
        ("inceptionv3", (0.5, 0.5, 0.5)),
        ("xception", (0.5, 0.5, 0.5)),
        ("resnet18", (0.485, 0.456, 0.406)),
        ("squeezenet", (0.485, 0.456, 0.406)),
    ],
)
def test_normalization_follows_the_weights(name: str, mean: tuple[float, ...]) -> None:
    got_mean, got_std = models.get_spec(name).normalization
    assert got_mean == pytest.approx(mean) and len(got_std) == 3


def test_build_architecture_takes_a_spec_or_a_name() -> None:
    torch.manual_seed(0)
    by_name = build_architecture("resnet18")
    torch.manual_seed(0)
    by_spec = build_architecture(get_spec("resnet18"))
    assert torch.equal(by_name.conv1.weight, by_spec.conv1.weight)
    assert by_name.training  # a fresh model is in training mode


def test_compare_with_paper_puts_both_tables_side_by_side() -> None:
    table = models.compare_with_paper(["squeezenet", "xception"])
    assert table["paper_name"].tolist() == ["SqueezeNet", "Xception"]
    assert table["paper_params_millions"].notna().all()
    assert (table["params_diff"].abs() < 0.01).all()
