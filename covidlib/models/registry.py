"""The paper's 12 CNN architectures as data, and Table 1 computed from them.

The registry is data (``covidlib/tables/models.csv``, one row per architecture, like
timm's model registry): paper name, family, library and constructor, ImageNet weight tag,
default and custom input size (width x height, Table 1), the smallest input the network
accepts, nominal depth, Grad-CAM target layer, the single linear head and the penultimate
feature size. Code reads the table; chapters print it. :func:`build_architecture` turns a
row into a randomly initialised network; weights are :mod:`covidlib.models.factory`'s job.

Every model ends in ONE linear layer with ONE output (a logit for binary cross-entropy).
SqueezeNet's "linear layer" is its final 1x1 convolution (a linear map applied at each
position and then averaged, which equals a linear layer after the average pool); the ReLU
torchvision puts after it is removed because it would clamp the logit at 0.

Smallest inputs (found by trying square and near-square sizes on the built models):
InceptionV3 needs 75 px, DenseNet 29 px, SqueezeNet 21 px, Xception 7 px; ShuffleNet,
ResNet and ResNeXt run even at 1 px thanks to padding. ``min_input`` records 75 x 75 for
InceptionV3 and 32 x 32 (the networks' output stride, below which the last feature map is
padding only) for all others.

Parameter counts (Table 1): with the one-output head the exact counts are within 0.0070 M
of the paper for all 12 (largest gap ResNet18, 11.177 M vs 11.17); a two-output head adds
only ``feature_dim + 1`` parameters and is within 0.0078 M. The paper's digits look
truncated rather than rounded: truncating the two-output counts reproduces 11 of 12 printed
values (all but InceptionV3, 21.78 vs 21.79), truncating the one-output counts 10 of 12, so
the paper most likely counted a two-class head; the difference is below the table's
resolution. ``size_mb`` is float32 parameters in 10^6 bytes; the paper's sizes are 0.06 to
1.2 MB larger (they look like saved-file sizes: BatchNorm buffers and file overhead too).

Example:
    >>> spec = get_spec("resnet18")
    >>> spec.custom_input, spec.canvas(0.4), spec.feature_dim
    ((349, 253), (140, 101), 512)
    >>> row = model_table(["resnet18"]).iloc[0]
    >>> row["paper_name"], float(row["params_millions"])
    ('ResNet18', 11.18)
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from covidlib.utils.names import UnknownNameError

__all__ = [
    "MODEL_TABLE_FILE",
    "PAPER_TABLE1_FILE",
    "ModelSpec",
    "build_architecture",
    "compare_with_paper",
    "count_parameters",
    "get_spec",
    "list_models",
    "model_table",
    "paper_table1",
]

MODEL_TABLE_FILE = Path(__file__).resolve().parents[1] / "tables" / "models.csv"
PAPER_TABLE1_FILE = Path(__file__).resolve().parents[1] / "tables" / "paper_table1.csv"

Size = tuple[int, int]


def _parse_size(text: str) -> Size:
    width, height = (int(part) for part in text.lower().split("x"))
    return width, height


@dataclass(frozen=True)
class ModelSpec:
    """One architecture of the paper (a row of ``covidlib/tables/models.csv``).

    Attributes:
        name: registry key, e.g. ``"resnet18"``.
        paper_name: the name as the paper writes it, e.g. ``"ResNet18"``.
        family: ``"SqueezeNet"``, ``"ShuffleNet"``, ``"ResNet"``, ``"ResNeXt"``,
            ``"Inception"``, ``"Xception"`` or ``"DenseNet"``.
        library: ``"timm"`` or ``"torchvision"``.
        constructor: the library's model name (``timm.create_model(constructor)`` or
            ``torchvision.models.<constructor>``).
        weights_tag: ImageNet weight tag (timm pretrained tag or torchvision enum member).
        default_input: the network's original square input (width, height).
        custom_input: the paper's custom input (width, height), Table 1.
        min_input: the smallest (width, height) the network accepts (found by trying).
        layers: nominal depth, Table 1.
        gradcam_layer: dotted module path of the Grad-CAM target (last conv block).
        head_layer: dotted module path of the single one-output linear layer.
        feature_dim: channels of the pooled penultimate features (the head's input).
    """

    name: str
    paper_name: str
    family: str
    library: str
    constructor: str
    weights_tag: str
    default_input: Size
    custom_input: Size
    min_input: Size
    layers: int
    gradcam_layer: str
    head_layer: str
    feature_dim: int

    def canvas(self, scale: float = 1.0) -> Size:
        """Return the custom input scaled by ``scale`` (rounded), clamped to ``min_input``.

        Example:
            >>> get_spec("inceptionv3").canvas(0.2)
            (75, 75)
        """
        if not scale > 0:
            raise ValueError(f"canvas scale must be a positive number, got {scale!r}")
        width = max(round(self.custom_input[0] * scale), self.min_input[0])
        height = max(round(self.custom_input[1] * scale), self.min_input[1])
        return width, height

    @property
    def weights_name(self) -> str:
        """The library's full name of the ImageNet weights, e.g. ``"resnet18.tv_in1k"``."""
        return f"{self.constructor}.{self.weights_tag}"

    @property
    def normalization(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel (mean, std) the ImageNet weights expect, from the library's config.

        timm's configs give 0.5/0.5 for InceptionV3 (``tv_in1k``) and Xception
        (``tf_in1k``); the torchvision models use ImageNet's statistics.

        Example:
            >>> get_spec("xception").normalization
            ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
        """
        if self.library == "timm":
            import timm

            config = timm.models.get_pretrained_cfg(self.weights_name)
            if config is not None:
                return tuple(config.mean), tuple(config.std)
        from covidlib.transforms.augment import IMAGENET_MEAN, IMAGENET_STD

        return tuple(IMAGENET_MEAN), tuple(IMAGENET_STD)

    def to_dict(self) -> dict[str, Any]:
        """Return the spec as a plain dictionary (sizes as ``[width, height]`` lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@functools.cache
def _registry() -> dict[str, ModelSpec]:
    table = pd.read_csv(MODEL_TABLE_FILE, dtype=str)
    specs: dict[str, ModelSpec] = {}
    for row in table.to_dict("records"):
        specs[row["name"]] = ModelSpec(
            name=row["name"],
            paper_name=row["paper_name"],
            family=row["family"],
            library=row["library"],
            constructor=row["constructor"],
            weights_tag=row["weights_tag"],
            default_input=_parse_size(row["default_input"]),
            custom_input=_parse_size(row["custom_input"]),
            min_input=_parse_size(row["min_input"]),
            layers=int(row["layers"]),
            gradcam_layer=row["gradcam_layer"],
            head_layer=row["head_layer"],
            feature_dim=int(row["feature_dim"]),
        )
    return specs


def list_models() -> list[str]:
    """Return the registry keys in the paper's Table 1 order.

    Example:
        >>> list_models()[:3]
        ['squeezenet', 'shufflenet', 'resnet18']
    """
    return list(_registry())


def get_spec(name: str) -> ModelSpec:
    """Return the :class:`ModelSpec` of one architecture.

    Args:
        name: a registry key (case-insensitive) or the paper's name, e.g. ``"ResNet18"``.

    Raises:
        UnknownNameError: for an unknown name (a ``ValueError``); the message offers close
            matches.

    Example:
        >>> get_spec("DenseNet121").feature_dim
        1024
    """
    registry = _registry()
    key = str(name).strip().lower()
    if key in registry:
        return registry[key]
    for spec in registry.values():
        if spec.paper_name.lower() == key:
            return spec
    raise UnknownNameError("model", name, registry, "`covidlib models` lists them")



def build_architecture(spec: ModelSpec | str) -> nn.Module:
    """Build a registry architecture with random weights and its single-logit head.

    :func:`covidlib.models.factory.create_model` adds ImageNet or local weights to it.

    Args:
        spec: a :class:`ModelSpec` or a name :func:`get_spec` knows.

    Example:
        >>> build_architecture("squeezenet")(torch.zeros(1, 3, 64, 64)).shape
        torch.Size([1, 1])
    """
    spec = get_spec(spec) if isinstance(spec, str) else spec
    if spec.library == "torchvision":
        import torchvision

        builder = getattr(torchvision.models, spec.constructor)
        model: nn.Module = builder(weights=None, num_classes=1)
        if spec.family == "SqueezeNet":
            # classifier = Dropout, Conv2d(512, 1, 1), ReLU, AdaptiveAvgPool2d; the ReLU
            # would clamp every negative logit to 0, so it goes.
            classifier = model.get_submodule("classifier")
            classifier[2] = nn.Identity()  # type: ignore[operator]
        return model
    if spec.library == "timm":
        import timm

        return timm.create_model(spec.constructor, pretrained=False, num_classes=1)
    raise ValueError(f"{MODEL_TABLE_FILE}: unknown library {spec.library!r} for {spec.name}")



# --------------------------------------------------------------------------- Table 1


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Return the number of (trainable) parameters of ``model``.

    Example:
        >>> count_parameters(nn.Linear(3, 1))
        4
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def model_table(names: Sequence[str] | None = None) -> pd.DataFrame:
    """Table 1 computed from instantiated models (one-logit head, built on the meta device).

    Columns: ``name``, ``paper_name``, ``family``, ``default_input`` and ``custom_input``
    ((width, height) tuples), ``layers`` (nominal depth), ``params`` (trainable count),
    ``params_millions`` (2 decimals), ``size_mb`` (float32 parameters, 10^6 bytes, 1 decimal).

    Args:
        names: a subset of :func:`list_models` (default: all 12, in Table 1 order).

    Example:
        >>> float(model_table(["squeezenet"]).loc[0, "params_millions"])
        0.74
    """
    chosen = list_models() if names is None else [get_spec(n).name for n in names]
    rows = []
    for name in chosen:
        spec = get_spec(name)
        params = _parameter_count(name)
        rows.append(
            {
                "name": spec.name,
                "paper_name": spec.paper_name,
                "family": spec.family,
                "default_input": spec.default_input,
                "custom_input": spec.custom_input,
                "layers": spec.layers,
                "params": params,
                "params_millions": round(params / 1e6, 2),
                "size_mb": round(params * 4 / 1e6, 1),
            }
        )
    return pd.DataFrame(rows)


@functools.cache
def _parameter_count(name: str) -> int:
    # Built on the meta device: the real modules and shapes, but no memory and no init cost.
    with torch.device("meta"):
        model = build_architecture(name)
    return count_parameters(model)


def paper_table1() -> pd.DataFrame:
    """Return the paper's Table 1 as printed (``covidlib/tables/paper_table1.csv``).

    Example:
        >>> paper_table1().loc[0, "model"]
        'SqueezeNet'
    """
    return pd.read_csv(PAPER_TABLE1_FILE)


def compare_with_paper(names: Sequence[str] | None = None) -> pd.DataFrame:
    """Computed Table 1 next to the paper's, with the parameter difference in millions.

    ``params_diff`` uses the exact count (not the rounded one) minus the paper's value.

    Example:
        >>> bool(abs(compare_with_paper(["resnet50"]).loc[0, "params_diff"]) < 0.01)
        True
    """
    table = model_table(names)
    paper = paper_table1().rename(
        columns={
            "model": "paper_name",
            "params_millions": "paper_params_millions",
            "model_size_mb": "paper_size_mb",
            "layers": "paper_layers",
        }
    )
    merged = table.merge(
        paper[["paper_name", "paper_layers", "paper_params_millions", "paper_size_mb"]],
        on="paper_name",
        how="left",
    )
    merged["params_diff"] = (merged["params"] / 1e6 - merged["paper_params_millions"]).round(4)
    return merged