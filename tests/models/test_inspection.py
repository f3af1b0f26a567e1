"""Tests of covidlib.models.inspection (tiny inputs, random init)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402
from PIL import Image  # noqa: E402
from torch import nn  # noqa: E402

from covidlib.models import inspection as arch  # noqa: E402


@pytest.fixture(scope="module")
def squeezenet() -> nn.Module:
    return torchvision.models.squeezenet1_0()


def test_find_blocks_by_name_and_class(squeezenet: nn.Module) -> None:
    by_name = arch.find_blocks(squeezenet, "Fire")
    by_class = arch.find_blocks(squeezenet, torchvision.models.squeezenet.Fire)
    assert len(by_name) == 8
    assert [n for n, _ in by_name] == [n for n, _ in by_class]


def test_find_blocks_unknown_type_lists_existing(squeezenet: nn.Module) -> None:
    with pytest.raises(ValueError, match="Fire"):
        arch.find_blocks(squeezenet, "Bottleneck")


@pytest.mark.parametrize(
    ("conv", "kind"),
    [
        (nn.Conv2d(8, 8, 3, groups=8), "depthwise"),
        (nn.Conv2d(8, 16, 3, groups=4), "grouped"),
        (nn.Conv2d(8, 16, 1), "pointwise"),
        (nn.Conv2d(8, 16, 3), "standard"),
    ],
)
def test_conv_kind(conv: nn.Conv2d, kind: str) -> None:
    assert arch.conv_kind(conv) == kind


def test_conv_table_lists_each_conv(squeezenet: nn.Module) -> None:
    _, fire = arch.find_blocks(squeezenet, "Fire")[0]
    table = arch.conv_table(fire)
    assert table["layer"].tolist() == ["squeeze", "expand1x1", "expand3x3"]
    assert table["kernel"].tolist() == ["1x1", "1x1", "3x3"]
    assert table["params"].sum() == sum(p.numel() for p in fire.parameters())


def test_stage_modules_looks_through_features(squeezenet: nn.Module) -> None:
    names = [name for name, _ in arch.stage_modules(squeezenet)]
    assert names[0] == "features.0"
    assert names[-1] == "classifier"


@pytest.mark.parametrize(("height", "width"), [(64, 96), (101, 140)])
def test_feature_map_sizes_follow_the_input(squeezenet: nn.Module, height: int, width: int) -> None:
    squeezenet.train()
    table = arch.feature_map_sizes(squeezenet, torch.zeros(1, 3, height, width))
    first = table.iloc[0]
    assert (first["stage"], first["channels"]) == ("features.0", 96)
    assert (first["height"], first["width"]) == ((height - 7) // 2 + 1, (width - 7) // 2 + 1)
    assert "features.1" not in set(table["stage"])  # the ReLU is dropped by default
    assert squeezenet.training  # the mode is restored


def test_feature_map_sizes_named_stages_and_errors() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 1))
    table = arch.feature_map_sizes(
        net, torch.zeros(2, 3, 16, 16), ["1", "2"], keep_parameter_free=True
    )
    assert table["stage"].tolist() == ["1", "2"]
    assert table["channels"].tolist() == [4, 6]
    with pytest.raises(ValueError, match="nope"):
        arch.feature_map_sizes(net, torch.zeros(1, 3, 8, 8), ["nope"])
    with pytest.raises(ValueError, match="B, C, H, W"):
        arch.feature_map_sizes(net, torch.zeros(3, 8, 8))


@pytest.mark.parametrize(("channels", "groups"), [(6, 2), (12, 3), (24, 4), (5, 1)])
def test_shuffle_permutation_is_a_permutation(channels: int, groups: int) -> None:
    perm = arch.shuffle_permutation(channels, groups)
    assert sorted(perm) == list(range(channels))
    if groups > 1:
        assert perm != list(range(channels))
        # consecutive output channels come from different input groups
        group_size = channels // groups
        assert perm[1] // group_size != perm[0] // group_size


def test_shuffle_permutation_rejects_bad_groups() -> None:
    with pytest.raises(ValueError, match="multiple"):
        arch.shuffle_permutation(10, 3)


def test_block_output_channels() -> None:
    block = nn.Conv2d(3, 7, 1)
    assert arch.block_output_channels(block, torch.zeros(1, 3, 5, 5)) == 7


@pytest.mark.parametrize(
    ("conv", "expected"),
    [
        (nn.Conv2d(16, 16, 3, groups=16), "3x3 depthwise, 16"),
        (nn.Conv2d(16, 32, 3, stride=2, groups=4), "3x3 conv g=4, 16→32, /2"),
        (nn.Conv2d(16, 64, 1), "1x1 conv, 16→64"),
    ],
)
def test_conv_label(conv: nn.Conv2d, expected: str) -> None:
    assert arch.conv_label(conv) == expected


@pytest.mark.parametrize(
    "branches", [[["a"], ["b", "c"]], [["a", "b"], []], [["a"], ["...", "..."], ["c"]], [["x"]]]
)
def test_draw_block_diagram_draws_every_box(branches: list[list[str]]) -> None:
    ax = arch.draw_block_diagram(branches, head=["h"], tail=["t"], merge="+", title="block")
    texts = {t.get_text() for t in ax.texts}
    boxes = {label for branch in branches for label in branch if label != "..."}
    assert boxes | {"h", "t", "+", "input"} <= texts
    assert ax.get_title() == "block"
    plt.close(ax.figure)


def test_draw_block_diagram_needs_a_branch() -> None:
    with pytest.raises(ValueError, match="branch"):
        arch.draw_block_diagram([])


def test_to_model_input_is_normalized_rgb() -> None:
    batch = arch.to_model_input(Image.new("L", (40, 30), color=255), "resnet18")
    assert batch.shape == (1, 3, 30, 40)
    assert torch.allclose(
        batch[0, :, 0, 0],
        (1 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225]),
        atol=1e-4,
    )
    assert isinstance(arch.feature_map_sizes(nn.Identity(), batch), pd.DataFrame)


@pytest.mark.parametrize("name", ["inceptionv3", "xception"])
def test_to_model_input_follows_the_models_weights(name: str) -> None:
    from covidlib.models.registry import get_spec

    gray = Image.new("L", (8, 6), color=51)  # 0.2 after scaling to [0, 1]
    by_name = arch.to_model_input(gray, name)
    assert torch.allclose(by_name, torch.full((1, 3, 6, 8), (0.2 - 0.5) / 0.5), atol=1e-6)
    assert torch.equal(arch.to_model_input(gray, get_spec(name)), by_name)
    assert not torch.allclose(arch.to_model_input(gray, "resnet18"), by_name)


def test_to_model_input_needs_the_model() -> None:
    with pytest.raises(TypeError):
        arch.to_model_input(Image.new("L", (8, 6)))  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="vgg16"):
        arch.to_model_input(Image.new("L", (8, 6)), "vgg16")


def test_group_branches_strips_positions() -> None:
    block = nn.Module()
    block.branch1x1 = nn.Conv2d(4, 2, 1)
    block.branch3x3_1 = nn.Conv2d(4, 2, 1)
    block.branch3x3_2a = nn.Conv2d(2, 2, (1, 3))
    block.branch3x3_2b = nn.Conv2d(2, 2, (3, 1))
    block.branch_pool = nn.Conv2d(4, 2, 1)
    grouped = arch.group_branches(block)
    assert list(grouped) == ["branch1x1", "branch3x3", "branch_pool"]
    assert [name for name, _ in grouped["branch3x3"]] == [
        "branch3x3_1",
        "branch3x3_2a",
        "branch3x3_2b",
    ]


@pytest.mark.parametrize(("channels", "groups"), [(6, 2), (12, 3)])
def test_draw_channel_shuffle_draws_one_line_per_channel(channels: int, groups: int) -> None:
    ax = arch.draw_channel_shuffle(channels, groups)
    assert len(ax.lines) == channels
    ends = sorted(int(line.get_xdata()[1]) for line in ax.lines)
    assert ends == list(range(channels))
    plt.close(ax.figure)
