"""Look inside the CNN families: find building blocks, trace feature-map sizes, draw blocks.

The architecture chapters use these helpers on the real model objects that
:func:`covidlib.models.factory.create_model` builds, so what the reader sees is what gets trained.

Example:
    >>> import torchvision
    >>> model = torchvision.models.squeezenet1_0()
    >>> [name for name, _ in find_blocks(model, "Fire")][:2]
    ['features.3', 'features.4']
    >>> sizes = feature_map_sizes(model, torch.zeros(1, 3, 96, 128))
    >>> sizes.loc[sizes["stage"] == "features.0", ["channels", "height", "width"]].values.tolist()
    [[96, 45, 61]]
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd
import torch
from torch import nn

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from PIL import Image

    from covidlib.models.registry import ModelSpec

# Child modules that only wrap the real stages (torchvision/timm "features", a wrapper's
# "backbone"): the stage table looks through them.
CONTAINER_NAMES = frozenset({"features", "backbone", "body", "model", "encoder", "net"})


def find_blocks(
    model: nn.Module, block_type: str | type[nn.Module] | tuple[type[nn.Module], ...]
) -> list[tuple[str, nn.Module]]:
    """Return ``(dotted name, module)`` for every submodule of the given type, in order.

    Args:
        model: any network.
        block_type: a class (or tuple of classes), or a class *name* such as ``"Fire"`` or
            ``"Bottleneck"`` (handy when the class lives in a private timm module).

    Raises:
        ValueError: when nothing matches (the message lists the class names that exist).

    Example:
        >>> import torchvision
        >>> len(find_blocks(torchvision.models.squeezenet1_0(), "Fire"))
        8
    """
    if isinstance(block_type, str):
        found = [(n, m) for n, m in model.named_modules() if type(m).__name__ == block_type]
    else:
        found = [(n, m) for n, m in model.named_modules() if isinstance(m, block_type)]
    if not found:
        names = sorted({type(m).__name__ for m in model.modules()})
        raise ValueError(
            f"No module of type {block_type!r} in {type(model).__name__}; "
            f"the model contains: {', '.join(names)}."
        )
    return found


def conv_kind(conv: nn.Conv2d) -> str:
    """Name the kind of a convolution: depthwise, grouped, pointwise or standard.

    Example:
        >>> conv_kind(nn.Conv2d(8, 8, 3, groups=8)), conv_kind(nn.Conv2d(8, 16, 1))
        ('depthwise', 'pointwise')
    """
    if conv.groups > 1 and conv.groups == conv.in_channels:
        return "depthwise"
    if conv.groups > 1:
        return "grouped"
    if tuple(conv.kernel_size) == (1, 1):
        return "pointwise"
    return "standard"


def conv_table(module: nn.Module) -> pd.DataFrame:
    """List the convolutions inside ``module``, one row each, in the order they are defined.

    Columns: ``layer`` (dotted name inside the module), ``kind`` (see :func:`conv_kind`),
    ``kernel`` (``"3x3"``), ``stride``, ``in_channels``, ``out_channels``, ``groups``,
    ``params`` (weights and bias).

    Example:
        >>> block = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.Conv2d(16, 32, 1))
        >>> conv_table(block)["kind"].tolist()
        ['depthwise', 'pointwise']
    """
    rows = []
    for name, conv in module.named_modules():
        if isinstance(conv, nn.Conv2d):
            rows.append(
                {
                    "layer": name or type(module).__name__,
                    "kind": conv_kind(conv),
                    "kernel": "x".join(str(k) for k in conv.kernel_size),
                    "stride": conv.stride[0],
                    "in_channels": conv.in_channels,
                    "out_channels": conv.out_channels,
                    "groups": conv.groups,
                    "params": sum(p.numel() for p in conv.parameters()),
                }
            )
    columns = ["layer", "kind", "kernel", "stride", "in_channels", "out_channels", "groups"]
    return pd.DataFrame(rows, columns=[*columns, "params"])


def stage_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Return the model's stages: its direct children, looking through wrapper containers.

    A child named like a wrapper (``features``, ``backbone``, ...) is replaced by its own
    children, so torchvision's ``squeezenet.features`` or timm's ``densenet.features`` show
    their stem, blocks and transitions.

    Example:
        >>> import torchvision
        >>> [n for n, _ in stage_modules(torchvision.models.squeezenet1_0())][:2]
        ['features.0', 'features.1']
    """
    stages: list[tuple[str, nn.Module]] = []
    for name, child in model.named_children():
        if name in CONTAINER_NAMES and len(list(child.children())) > 1:
            stages.extend((f"{name}.{sub}", m) for sub, m in stage_modules(child))
        else:
            stages.append((name, child))
    return stages


def feature_map_sizes(
    model: nn.Module,
    inputs: torch.Tensor,
    stages: Sequence[str] | None = None,
    *,
    keep_parameter_free: bool = False,
) -> pd.DataFrame:
    """Run ``inputs`` through ``model`` once and tabulate each stage's output size.

    Forward hooks record the output of every stage (see :func:`stage_modules`, or give the
    dotted names yourself). The model runs in eval mode without gradients and is put back
    in its previous mode afterwards.

    Args:
        model: the network.
        inputs: a batch ``[B, C, H, W]``.
        stages: dotted module names to record; ``None`` = :func:`stage_modules`.
        keep_parameter_free: keep stages without parameters that do not change the shape
            (activations, dropout); they are dropped by default to keep the table short.

    Returns:
        One row per stage that ran, in execution order: ``stage``, ``type``, ``channels``,
        ``height``, ``width`` and ``params_millions`` of the stage. Flat outputs (pooled
        vectors, logits) have ``height = width = 1``.

    Raises:
        ValueError: for an input that is not 4-D or a stage name that does not exist.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU())
        >>> table = feature_map_sizes(net, torch.zeros(1, 3, 32, 48))
        >>> table[["channels", "height", "width"]].values.tolist()
        [[8, 16, 24]]
    """
    if inputs.ndim != 4:
        raise ValueError(f"inputs must be a batch [B, C, H, W]; got shape {tuple(inputs.shape)}.")
    modules = dict(model.named_modules())
    if stages is None:
        chosen = stage_modules(model)
    else:
        unknown = [name for name in stages if name not in modules]
        if unknown:
            raise ValueError(f"No module named {unknown} in {type(model).__name__}.")
        chosen = [(name, modules[name]) for name in stages]

    records: list[dict[str, Any]] = []

    def make_hook(name: str, module: nn.Module) -> Any:
        def hook(_module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
            tensor = output[0] if isinstance(output, (tuple, list)) else output
            if not isinstance(tensor, torch.Tensor):
                return
            in_shape = args[0].shape if args and isinstance(args[0], torch.Tensor) else None
            shape = tuple(tensor.shape)
            params = sum(p.numel() for p in module.parameters())
            if not keep_parameter_free and params == 0 and in_shape == tensor.shape:
                return
            height, width = (shape[2], shape[3]) if len(shape) == 4 else (1, 1)
            records.append(
                {
                    "stage": name,
                    "type": type(module).__name__,
                    "channels": shape[1] if len(shape) > 1 else 1,
                    "height": height,
                    "width": width,
                    "params_millions": round(params / 1e6, 3),
                }
            )

        return hook

    handles = [module.register_forward_hook(make_hook(n, module)) for n, module in chosen]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(inputs)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return pd.DataFrame(records)


def block_output_channels(block: nn.Module, inputs: torch.Tensor) -> int:
    """Return how many channels ``block`` outputs for ``inputs`` (one no-grad forward pass).

    Example:
        >>> block_output_channels(nn.Conv2d(3, 5, 1), torch.zeros(1, 3, 4, 4))
        5
    """
    was_training = block.training
    try:
        block.eval()
        with torch.no_grad():
            return int(block(inputs).shape[1])
    finally:
        block.train(was_training)


def shuffle_permutation(channels: int, groups: int) -> list[int]:
    """Return where ShuffleNet's channel shuffle sends each channel: ``out[i] = in[perm[i]]``.

    Uses torchvision's own ``channel_shuffle`` on a tensor whose channel ``c`` holds the
    value ``c``, so the result is exactly what the model does.

    Raises:
        ValueError: when ``channels`` is not a multiple of ``groups``.

    Example:
        >>> shuffle_permutation(6, 2)
        [0, 3, 1, 4, 2, 5]
    """
    from torchvision.models.shufflenetv2 import channel_shuffle

    if groups < 1 or channels % groups:
        raise ValueError(
            f"channels ({channels}) must be a multiple of groups ({groups}) for a channel shuffle."
        )
    labelled = torch.arange(channels, dtype=torch.float32).view(1, channels, 1, 1)
    return [int(v) for v in channel_shuffle(labelled, groups).flatten().tolist()]


def group_branches(block: nn.Module) -> dict[str, list[tuple[str, nn.Module]]]:
    """Group a multi-branch block's children into branches by name (Inception style).

    Children named ``branch3x3dbl_1``, ``branch3x3dbl_2``, ``branch3x3dbl_3a`` form the branch
    ``branch3x3dbl``: a trailing ``_<number>[letter]`` is the position inside the branch.

    Example:
        >>> block = nn.Module()
        >>> block.branch1x1 = nn.Conv2d(4, 2, 1)
        >>> block.branch3x3_1, block.branch3x3_2 = nn.Conv2d(4, 2, 1), nn.Conv2d(2, 2, 3)
        >>> {k: [n for n, _ in v] for k, v in group_branches(block).items()}
        {'branch1x1': ['branch1x1'], 'branch3x3': ['branch3x3_1', 'branch3x3_2']}
    """
    branches: dict[str, list[tuple[str, nn.Module]]] = {}
    for name, child in block.named_children():
        branches.setdefault(re.sub(r"_\d+[a-z]?$", "", name), []).append((name, child))
    return branches


def draw_channel_shuffle(channels: int, groups: int, ax: Axes | None = None) -> Axes:
    """Draw where a channel shuffle sends each channel, coloured by input group.

    Example:
        >>> draw_channel_shuffle(6, 2).get_title()
        'channel shuffle: 6 channels, 2 groups'
    """
    import matplotlib.pyplot as plt

    perm = shuffle_permutation(channels, groups)
    if ax is None:
        _, ax = plt.subplots(figsize=(max(4.0, 0.35 * channels), 2.4))
    colors = plt.get_cmap("tab10")
    group_size = channels // groups
    for out_pos, in_pos in enumerate(perm):
        color = colors((in_pos // group_size) % 10)
        ax.plot([in_pos, out_pos], [1, 0], color=color, linewidth=1.5)
        ax.scatter([in_pos, out_pos], [1, 0], color=color, s=25, zorder=3)
    ax.set_yticks([0, 1], ["after", "before"])
    ax.set_xticks(range(channels))
    ax.set_xlabel("channel")
    ax.set_ylim(-0.2, 1.2)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.set_title(f"channel shuffle: {channels} channels, {groups} groups", fontsize=10)
    return ax


def conv_label(conv: nn.Conv2d) -> str:
    """A short box label for a convolution, e.g. ``"3x3 depthwise, 24"``.

    Example:
        >>> conv_label(nn.Conv2d(16, 64, 3, padding=1))
        '3x3 conv, 16→64'
    """
    kernel = "x".join(str(k) for k in conv.kernel_size)
    kind = conv_kind(conv)
    stride = f", /{conv.stride[0]}" if conv.stride[0] > 1 else ""
    if kind == "depthwise":
        return f"{kernel} depthwise, {conv.out_channels}{stride}"
    if kind == "grouped":
        return f"{kernel} conv g={conv.groups}, {conv.in_channels}→{conv.out_channels}{stride}"
    return f"{kernel} conv, {conv.in_channels}→{conv.out_channels}{stride}"


def draw_block_diagram(
    branches: Sequence[Sequence[str]],
    *,
    head: Sequence[str] = (),
    merge: str = "concat",
    tail: Sequence[str] = (),
    title: str = "",
    input_label: str = "input",
    ax: Axes | None = None,
) -> Axes:
    """Draw a building block as boxes: input, shared head, parallel branches, merge, tail.

    An empty branch is drawn as a plain line (an identity / skip connection). A branch entry
    ``"..."`` draws a dotted gap (e.g. ResNeXt's 32 paths).

    Args:
        branches: one list of box labels per parallel path, top to bottom.
        head: boxes applied before the split (SqueezeNet's squeeze layer).
        merge: the node that joins the branches (``"concat"``, ``"+"``, ...).
        tail: boxes after the merge (ShuffleNet V2's channel shuffle).
        title: axes title.
        input_label: the label of the top box.
        ax: axes to draw on; a new figure when ``None``.

    Example:
        >>> ax = draw_block_diagram([["1x1"], ["3x3"]], head=["squeeze 1x1"], title="fire")
        >>> ax.get_title()
        'fire'
    """
    import matplotlib.pyplot as plt

    if not branches:
        raise ValueError("draw_block_diagram needs at least one branch.")
    depth = max(len(branch) for branch in branches)
    n_rows = 1 + len(head) + max(depth, 1) + 1 + len(tail)
    width = max(len(branches), 1)
    if ax is None:
        _, ax = plt.subplots(figsize=(max(3.0, 2.4 * width), 0.75 * n_rows + 0.6))
    box = {"boxstyle": "round,pad=0.35", "facecolor": "#e8f0fb", "edgecolor": "#3465a4"}
    node = {"boxstyle": "round,pad=0.35", "facecolor": "#fdf0d5", "edgecolor": "#c17d11"}
    arrow = {"arrowstyle": "-|>", "color": "#555555", "shrinkA": 11, "shrinkB": 11}
    center = (width - 1) / 2

    def put(x: float, y: float, text: str, style: dict[str, Any]) -> None:
        ax.text(x, y, text, ha="center", va="center", fontsize=9, bbox=style, zorder=3)

    def link(x0: float, y0: float, x1: float, y1: float) -> None:
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0), arrowprops=arrow, zorder=1)

    y = 0.0
    put(center, y, input_label, {**box, "facecolor": "#eeeeee", "edgecolor": "#777777"})
    for label in head:
        link(center, y, center, y - 1)
        y -= 1
        put(center, y, label, box)
    split_y = y
    merge_y = split_y - max(depth, 1) - 1
    for column, branch in enumerate(branches):
        x = float(column)
        previous = split_y
        for row, label in enumerate(branch):
            row_y = split_y - 1 - row
            if label == "...":
                ax.text(x, row_y, "⋯", ha="center", va="center", fontsize=16)
                continue
            link(center if row == 0 else x, previous, x, row_y)
            put(x, row_y, label, box)
            previous = row_y
        if any(label != "..." for label in branch):
            link(x, previous, center, merge_y)
        elif not branch:  # identity path: one straight line from the split to the merge
            skip_x = x if width > 1 else center + 0.6
            ax.plot([center, skip_x, skip_x], [split_y, split_y, merge_y + 0.2], color="#555555")
            link(skip_x, merge_y + 0.2, center, merge_y)
    put(center, merge_y, merge, node)
    y = merge_y
    for label in tail:
        link(center, y, center, y - 1)
        y -= 1
        put(center, y, label, box)
    ax.set_xlim(-0.8, width - 0.2 + (0.6 if width == 1 else 0))
    ax.set_ylim(y - 0.7, 0.7)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def to_model_input(image: Image.Image, spec: ModelSpec | str) -> torch.Tensor:
    """Turn a (letterboxed) grayscale PIL image into a normalized batch ``[1, 3, H, W]``.

    The same evaluation transform as training (:func:`covidlib.transforms.normalize_batch`):
    gray repeated into 3 channels, normalized with the mean and standard deviation the
    model's pretrained weights expect (:attr:`~covidlib.models.registry.ModelSpec.normalization`:
    ImageNet's for most, 0.5/0.5 for InceptionV3 and Xception).

    Args:
        image: the image, any PIL mode (converted to 8-bit grayscale).
        spec: the model's :class:`~covidlib.models.registry.ModelSpec` or registry name.

    Example:
        >>> from PIL import Image
        >>> white = Image.new("L", (40, 30), 255)
        >>> to_model_input(white, "resnet18").shape
        torch.Size([1, 3, 30, 40])
        >>> to_model_input(white, "xception")[0, :, 0, 0].tolist()
        [1.0, 1.0, 1.0]
    """
    from torchvision.transforms.v2.functional import pil_to_tensor

    from covidlib.models.registry import get_spec
    from covidlib.transforms.augment import normalize_batch

    mean, std = (get_spec(spec) if isinstance(spec, str) else spec).normalization
    return normalize_batch(pil_to_tensor(image.convert("L")).unsqueeze(0), mean, std)
