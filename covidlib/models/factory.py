"""The model factory: the paper's architectures with a one-logit head, and their weights.

Weights (``create_model(..., pretrained=...)``):

* ``False``: random initialisation, never touches the network (tests, quick profile).
* ``True``: ImageNet weights from the libraries' own caches: timm weights on the Hugging
  Face hub go to the hub cache (``HF_HUB_CACHE``), torchvision weights and timm weights
  hosted elsewhere go to torch.hub's ``checkpoints`` folder (``TORCH_HOME``). Offline and
  without the cached file the call fails at once with :class:`WeightsNotCachedError`, whose
  message names the file to fetch and the folder to put it in.
* a path: a local weights file (read by timm's ``load_state_dict``: ``.safetensors`` or a
  torch file, optionally wrapped in ``state_dict``/``model`` and with ``module.`` prefixes);
  the backbone loads and the head stays new.

Example:
    >>> import torch
    >>> model = create_model("resnet18")
    >>> model(torch.zeros(2, 3, 101, 140)).shape
    torch.Size([2, 1])
    >>> get_module(model, get_spec("resnet18").head_layer).out_features
    1
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

from covidlib.models.registry import ModelSpec, build_architecture, get_spec
from covidlib.utils.env import env_flag

__all__ = [
    "BackboneMismatchError",
    "WeightsLocation",
    "WeightsNotCachedError",
    "require_imagenet_weights",
    "create_model",
    "get_module",
    "load_backbone",
    "network_available",
    "weights_location",
]

# Environment switches that mean "do not try the network" (ours and the libraries').
OFFLINE_ENV_VARS: tuple[str, ...] = ("COVIDLIB_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
# Seconds to wait for a TCP connection before declaring the machine offline.
NETWORK_PROBE_TIMEOUT_S = 3.0
# Weight file names timm publishes on the Hugging Face hub, in the order timm tries them.
HF_WEIGHT_FILES: tuple[str, ...] = ("model.safetensors", "pytorch_model.bin")
# Keys of published checkpoints that belong to parts we do not build (InceptionV3's
# auxiliary classifier); they are ignored when a backbone state dict is loaded.
IGNORED_KEY_PREFIXES: tuple[str, ...] = ("AuxLogits.",)


class WeightsNotCachedError(FileNotFoundError):
    """ImageNet weights are not in the local cache and the network cannot be reached."""


class BackboneMismatchError(ValueError):
    """A weights file does not fit the architecture (missing keys or wrong shapes)."""


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
        return build_architecture(spec)
    if pretrained is True:
        return _build_imagenet(spec)
    if isinstance(pretrained, (str, os.PathLike)):
        model = build_architecture(spec)
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



def network_available(url: str, timeout: float = NETWORK_PROBE_TIMEOUT_S) -> bool:
    """Return whether ``url``'s host answers a TCP connection within ``timeout`` seconds.

    Always ``False`` when an offline switch (``COVIDLIB_OFFLINE``, ``HF_HUB_OFFLINE``,
    ``TRANSFORMERS_OFFLINE``) is on (:func:`covidlib.utils.env.env_flag`).

    Raises:
        ValueError: an offline switch is neither on nor off.

    Example:
        >>> import os
        >>> os.environ["COVIDLIB_OFFLINE"] = "1"
        >>> network_available("https://huggingface.co/")
        False
        >>> del os.environ["COVIDLIB_OFFLINE"]
    """
    if any(env_flag(var, default=False) for var in OFFLINE_ENV_VARS):
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


def require_imagenet_weights(name: str) -> WeightsLocation:
    """Return where a model's ImageNet weights are, refusing at once when they cannot be had.

    Callers that write files before building the model (``run_cv``) ask first.

    Raises:
        WeightsNotCachedError: not cached and the network is unreachable (or switched off).

    Example:
        >>> import os
        >>> os.environ["COVIDLIB_OFFLINE"] = "1"
        >>> import torch
        >>> os.environ["TORCH_HOME"], old = "/nonexistent", os.environ.get("TORCH_HOME")
        >>> require_imagenet_weights("squeezenet")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        covidlib.models.factory.WeightsNotCachedError: ImageNet weights for squeezenet ...
        >>> del os.environ["COVIDLIB_OFFLINE"]
        >>> _ = os.environ.pop("TORCH_HOME") if old is None else os.environ.update(TORCH_HOME=old)
    """
    spec = get_spec(name)
    location = weights_location(spec.name)
    if location.cached is None and not network_available(location.url):
        raise WeightsNotCachedError(
            f"ImageNet weights for {spec.name} ({spec.weights_name}) are not cached and the "
            f"network is unreachable. Download {location.url} and put it in "
            f"{location.folder}/ as {location.filename!r} (the {location.source} cache), "
            f"or pass the file as create_model({spec.name!r}, pretrained='<path>')."
        )
    return location


def _build_imagenet(spec: ModelSpec) -> nn.Module:
    location = require_imagenet_weights(spec.name)
    if spec.library == "torchvision":
        import torchvision

        weights = torchvision.models.get_model_weights(spec.constructor)[spec.weights_tag]
        # torchvision looks in (and downloads to) torch.hub's checkpoints folder.
        state = weights.get_state_dict(progress=False, check_hash=False)
        model = build_architecture(spec)
        load_backbone(model, state, spec, source=location.url)
        return model
    import timm

    overlay = {"file": str(location.cached)} if location.cached is not None else None
    model = timm.create_model(
        spec.weights_name, pretrained=True, num_classes=1, pretrained_cfg_overlay=overlay
    )
    return model


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read a weights file with timm (safetensors or torch; wrappers and prefixes removed)."""
    from timm.models import load_state_dict

    if not path.is_file():
        raise FileNotFoundError(
            f"weights file {path} does not exist; pass the path of a saved state dict"
        )
    try:
        loaded = load_state_dict(str(path), use_ema=False)
    except Exception as error:  # noqa: BLE001 - any reader failure means "not a state dict"
        raise BackboneMismatchError(
            f"{path}: cannot read a PyTorch state dict ({type(error).__name__}: {error}); "
            "pass a .pth/.pt/.bin/.safetensors file saved with torch.save(model.state_dict())"
        ) from None
    if not isinstance(loaded, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in loaded.values()
    ):
        raise BackboneMismatchError(
            f"{path}: expected a state dict (name -> tensor); pass a file saved with "
            "torch.save(model.state_dict())"
        )
    return dict(loaded)


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
