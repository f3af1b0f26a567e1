"""The paper's 12 CNN architectures: registry, model factory and Table 1 computed.

The registry is data (``covidlib/tables/models.csv``, one row per architecture, like
timm's model registry): paper name, family, library and constructor, ImageNet weight tag,
default and custom input size (width x height, Table 1), the smallest input the network
accepts, nominal depth, Grad-CAM target layer, the single linear head and the penultimate
feature size. Code reads the table; chapters print it.

Every model ends in ONE linear layer with ONE output (a logit for binary cross-entropy).
SqueezeNet's "linear layer" is its final 1x1 convolution (a linear map applied at each
position and then averaged, which equals a linear layer after the average pool); the ReLU
torchvision puts after it is removed because it would clamp the logit at 0.

Weights (``create_model(..., pretrained=...)``):

* ``False``: random initialisation, never touches the network (tests, quick profile).
* ``True``: ImageNet weights from the libraries' own caches: timm weights on the Hugging
  Face hub go to the hub cache (``HF_HUB_CACHE``), torchvision weights and timm weights
  hosted elsewhere go to torch.hub's ``checkpoints`` folder (``TORCH_HOME``). Offline and
  without the cached file the call fails at once with :class:`WeightsNotCachedError`, whose
  message names the file to fetch and the folder to put it in.
* a path: a local state dict file; the backbone loads and the head stays new.

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
    >>> from covidlib.models.registry import create_model, get_spec
    >>> spec = get_spec("resnet18")
    >>> spec.custom_input, spec.canvas(0.4)
    ((349, 253), (140, 101))
    >>> model = create_model("resnet18")
    >>> model(torch.zeros(2, 3, 101, 140)).shape
    torch.Size([2, 1])
"""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pandas as pd
import torch
from torch import nn

MODEL_TABLE_FILE = Path(__file__).resolve().parents[1] / "tables" / "models.csv"
PAPER_TABLE1_FILE = Path(__file__).resolve().parents[1] / "tables" / "paper_table1.csv"

# Environment switches that mean "do not try the network" (ours and the libraries').
OFFLINE_ENV_VARS: tuple[str, ...] = ("COVIDLIB_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
# Seconds to wait for a TCP connection before declaring the machine offline.
NETWORK_PROBE_TIMEOUT_S = 3.0
# Weight file names timm publishes on the Hugging Face hub, in the order timm tries them.
HF_WEIGHT_FILES: tuple[str, ...] = ("model.safetensors", "pytorch_model.bin")
# Keys of published checkpoints that belong to parts we do not build (InceptionV3's
# auxiliary classifier); they are ignored when a backbone state dict is loaded.
IGNORED_KEY_PREFIXES: tuple[str, ...] = ("AuxLogits.",)

Size = tuple[int, int]


class WeightsNotCachedError(FileNotFoundError):
    """ImageNet weights are not in the local cache and the network cannot be reached."""


class BackboneMismatchError(ValueError):
    """A weights file does not fit the architecture (missing keys or wrong shapes)."""


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
        KeyError: for an unknown name; the message lists the valid ones.

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
    raise KeyError(f"Unknown model {name!r}; choose one of: {', '.join(registry)}.")


def specs_table() -> pd.DataFrame:
    """Return the registry as a DataFrame (one row per architecture, sizes as (w, h)).

    Example:
        >>> specs_table().loc["xception", "constructor"]
        'legacy_xception'
    """
    rows = [asdict(spec) for spec in _registry().values()]
    return pd.DataFrame(rows).set_index("name", drop=False).rename_axis(None)


# --------------------------------------------------------------------------- building


def _build_random(spec: ModelSpec) -> nn.Module:
    """Build the architecture with random weights and a single-logit head."""
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


def create_model(name: str, pretrained: bool | str | os.PathLike[str] = False) -> nn.Module:
    """Build one of the paper's architectures with a one-logit head.

    Args:
        name: registry key (see :func:`list_models`) or paper name.
        pretrained: ``False`` random init (no network); ``True`` ImageNet weights from the
            timm / torchvision cache (downloaded there when online); or the path of a local
            state dict whose backbone is loaded (the head stays new).

    Returns:
        A module in training mode mapping ``[B, 3, H, W]`` to logits ``[B, 1]`` for any
        ``H, W`` at or above ``get_spec(name).min_input``.

    Raises:
        KeyError: unknown name. WeightsNotCachedError: ``pretrained=True`` offline and not
        cached. BackboneMismatchError / FileNotFoundError: a bad weights path.

    Example:
        >>> create_model("squeezenet")(torch.zeros(1, 3, 64, 64)).shape
        torch.Size([1, 1])
    """
    spec = get_spec(name)
    if pretrained is False or pretrained is None:
        return _build_random(spec)
    if pretrained is True:
        return _build_imagenet(spec)
    if isinstance(pretrained, (str, os.PathLike)):
        model = _build_random(spec)
        load_backbone(model, pretrained, spec)
        return model
    raise TypeError(f"pretrained must be True, False or a file path, got {pretrained!r}")


def get_module(model: nn.Module, dotted: str) -> nn.Module:
    """Return the submodule at a dotted path (e.g. a spec's ``gradcam_layer``).

    Raises:
        AttributeError: naming the path and the top-level children that exist.

    Example:
        >>> get_module(create_model("resnet18"), get_spec("resnet18").head_layer).out_features
        1
    """
    try:
        return model.get_submodule(dotted)
    except AttributeError as error:
        children = ", ".join(name for name, _ in model.named_children())
        raise AttributeError(
            f"{type(model).__name__} has no module {dotted!r} (top-level children: {children})"
        ) from error


# --------------------------------------------------------------------------- weights


@dataclass(frozen=True)
class WeightsLocation:
    """Where the ImageNet weights of one architecture live.

    Attributes:
        url: the file to download.
        folder: the library's cache folder the file belongs in.
        filename: the file name inside ``folder``.
        cached: the cached file when present, else ``None``.
        source: ``"hf-hub"`` (Hugging Face cache) or ``"torch-hub"`` (torch.hub checkpoints).
    """

    url: str
    folder: Path
    filename: str
    cached: Path | None
    source: str


def _torch_hub_checkpoints() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def weights_location(name: str) -> WeightsLocation:
    """Return where :func:`create_model` looks for (and would download) ImageNet weights.

    Example:
        >>> weights_location("squeezenet").filename
        'squeezenet1_0-b66bff10.pth'
    """
    spec = get_spec(name)
    if spec.library == "torchvision":
        import torchvision

        weights = torchvision.models.get_model_weights(spec.constructor)[spec.weights_tag]
        return _torch_hub_location(weights.url)
    import timm

    cfg = timm.models.get_pretrained_cfg(spec.weights_name)
    if cfg is None:
        raise KeyError(f"timm has no pretrained config {spec.weights_name!r}")
    if cfg.hf_hub_id:
        from huggingface_hub import constants, try_to_load_from_cache

        repo_id = cfg.hf_hub_id
        for filename in HF_WEIGHT_FILES:
            found = try_to_load_from_cache(repo_id, filename)
            if isinstance(found, str) and Path(found).is_file():
                cached: Path | None = Path(found)
                break
        else:
            filename, cached = HF_WEIGHT_FILES[0], None
        folder = Path(constants.HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}"
        return WeightsLocation(
            url=f"https://huggingface.co/{repo_id}/resolve/main/{filename}",
            folder=folder / "snapshots" / "main",
            filename=filename,
            cached=cached,
            source="hf-hub",
        )
    if not isinstance(cfg.url, str) or not cfg.url:
        raise KeyError(f"timm config {spec.weights_name!r} names no weights file")
    return _torch_hub_location(cfg.url)


def _torch_hub_location(url: str) -> WeightsLocation:
    folder = _torch_hub_checkpoints()
    filename = os.path.basename(urlparse(url).path)
    path = folder / filename
    return WeightsLocation(
        url=url,
        folder=folder,
        filename=filename,
        cached=path if path.is_file() else None,
        source="torch-hub",
    )


def _truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() in {"1", "true", "yes", "on"}


def network_available(url: str, timeout: float = NETWORK_PROBE_TIMEOUT_S) -> bool:
    """Return whether ``url``'s host answers a TCP connection within ``timeout`` seconds.

    Always ``False`` when an offline switch (``COVIDLIB_OFFLINE``, ``HF_HUB_OFFLINE``,
    ``TRANSFORMERS_OFFLINE``) is set.
    """
    if any(_truthy(os.environ.get(var)) for var in OFFLINE_ENV_VARS):
        return False
    parsed = urlparse(url)
    host = parsed.hostname
    if not host:
        return False
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _build_imagenet(spec: ModelSpec) -> nn.Module:
    location = weights_location(spec.name)
    if location.cached is None and not network_available(location.url):
        raise WeightsNotCachedError(
            f"ImageNet weights for {spec.name} ({spec.weights_name}) are not cached and the "
            f"network is unreachable. Download {location.url} and put it in "
            f"{location.folder}/ as {location.filename!r} (the {location.source} cache), "
            f"or pass the file as create_model({spec.name!r}, pretrained='<path>')."
        )
    if spec.library == "torchvision":
        import torchvision

        weights = torchvision.models.get_model_weights(spec.constructor)[spec.weights_tag]
        # torchvision looks in (and downloads to) torch.hub's checkpoints folder.
        state = weights.get_state_dict(progress=False, check_hash=False)
        model = _build_random(spec)
        load_backbone(model, state, spec, source=location.url)
        return model
    import timm

    overlay = {"file": str(location.cached)} if location.cached is not None else None
    model = timm.create_model(
        spec.weights_name, pretrained=True, num_classes=1, pretrained_cfg_overlay=overlay
    )
    return model


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            loaded: Any = load_file(str(path))
        else:
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any reader failure means "not a state dict"
        raise BackboneMismatchError(
            f"{path}: cannot read a PyTorch state dict ({type(error).__name__}: {error})"
        ) from error
    for wrapper in ("state_dict", "model", "model_state_dict"):
        if isinstance(loaded, Mapping) and isinstance(loaded.get(wrapper), Mapping):
            loaded = loaded[wrapper]
    if not isinstance(loaded, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in loaded.values()
    ):
        raise BackboneMismatchError(f"{path}: expected a state dict (name -> tensor)")
    return {k.removeprefix("module."): v for k, v in loaded.items()}


def load_backbone(
    model: nn.Module,
    weights: str | os.PathLike[str] | Mapping[str, torch.Tensor],
    spec: ModelSpec | str,
    *,
    source: str | None = None,
) -> dict[str, list[str]]:
    """Load every backbone weight of ``weights`` into ``model``; the head is left as it is.

    The head (``spec.head_layer``) is skipped whatever its shape, so a full ImageNet
    checkpoint (1000 classes) and a backbone-only file both work.

    Args:
        model: a model built by :func:`create_model` for ``spec``.
        weights: a state dict or the path of a ``.pth``/``.pt``/``.bin``/``.safetensors`` file.
        spec: the model's spec or registry name.
        source: how to name ``weights`` in messages (defaults to the path).

    Returns:
        ``{"ignored": [...]}``: checkpoint keys not used (head, auxiliary classifier).

    Raises:
        BackboneMismatchError: backbone keys missing from the file, keys the model does not
            have, or shape mismatches; the message lists them.

    Example:
        >>> m = create_model("resnet18")
        >>> load_backbone(m, create_model("resnet18").state_dict(), "resnet18")["ignored"]
        ['fc.bias', 'fc.weight']
    """
    spec = get_spec(spec) if isinstance(spec, str) else spec
    if isinstance(weights, Mapping):
        state = dict(weights)
        where = source or "state dict"
    else:
        path = Path(weights).expanduser()
        state = _read_state_dict(path)
        where = source or str(path)
    head_prefix = spec.head_layer + "."
    own = model.state_dict()
    backbone = {k: v for k, v in own.items() if not k.startswith(head_prefix)}
    ignored = sorted(
        k for k in state if k.startswith(head_prefix) or k.startswith(IGNORED_KEY_PREFIXES)
    )
    given = {k: v for k, v in state.items() if k not in set(ignored)}
    missing = sorted(set(backbone) - set(given))
    unexpected = sorted(set(given) - set(backbone))
    wrong_shape = sorted(
        f"{k}: file {tuple(given[k].shape)} vs model {tuple(backbone[k].shape)}"
        for k in set(given) & set(backbone)
        if given[k].shape != backbone[k].shape
    )
    if missing or unexpected or wrong_shape:
        parts = []
        for label, keys in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("shape mismatch", wrong_shape),
        ):
            if keys:
                shown = ", ".join(keys[:5]) + (
                    f", ... ({len(keys)} in all)" if len(keys) > 5 else ""
                )
                parts.append(f"{label}: {shown}")
        raise BackboneMismatchError(
            f"{where} does not fit {spec.name} ({spec.library} {spec.constructor}): "
            + "; ".join(parts)
            + ". Pass a state dict saved from the same architecture."
        )
    model.load_state_dict(given, strict=False)
    return {"ignored": ignored}


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
        model = create_model(name)
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
