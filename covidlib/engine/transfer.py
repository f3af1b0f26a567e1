"""Transfer strategies: what of a network trains (scratch, feature extraction, fine-tuning).

The paper (Alshazly et al. 2021, section 4) names two ways to reuse a network trained on
another task: *feature extraction* (keep the backbone fixed, train only a new head) and
*fine-tuning* (train every weight, their choice). With ``scratch`` nothing is reused.

* ``"scratch"`` and ``"finetune"``: every parameter trains (they differ in the initial
  weights, which :func:`covidlib.models.factory.create_model` loads).
* ``"features"``: the backbone is frozen *entirely*, as fastai's ``freeze`` with
  ``train_bn=False`` plus its :class:`~fastai.callback.training.BnFreeze` callback do: no
  backbone parameter gets a gradient (batch-norm weights and biases included) and the
  backbone's batch-norm layers stay in eval mode while training, so their running mean and
  variance do not move. Only the head (``ModelSpec.head_layer``) trains.

:func:`apply_strategy` sets this up on a model and returns the callbacks the fastai
``Learner`` needs (``fit_fold`` calls it). :func:`replace_head` gives a network another
number of outputs (the source task of :mod:`covidlib.engine.pretrain`).

Example:
    >>> from covidlib.models.factory import create_model
    >>> model = create_model("resnet18")
    >>> callbacks = apply_strategy(model, "resnet18", "features")
    >>> sorted(name for name, p in model.named_parameters() if p.requires_grad)
    ['fc.bias', 'fc.weight']
    >>> [type(cb).__name__ for cb in callbacks]
    ['BnFreeze']
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from covidlib.config import TRANSFER_STRATEGIES
from covidlib.models.factory import get_module
from covidlib.models.registry import get_spec
from covidlib.utils.compat import quiet_fastai_import
from covidlib.utils.names import UnknownNameError

__all__ = [
    "TRANSFER_STRATEGIES",
    "apply_strategy",
    "backbone_state",
    "freeze_backbone",
    "head_prefix",
    "penultimate_features",
    "replace_head",
    "trainable_summary",
]


def head_prefix(model_name: str) -> str:
    """Return the state-dict prefix of a model's head (``ModelSpec.head_layer`` + ``.``).

    Example:
        >>> head_prefix("squeezenet"), head_prefix("densenet121")
        ('classifier.1.', 'classifier.')
    """
    return get_spec(model_name).head_layer + "."


def freeze_backbone(model: nn.Module, model_name: str) -> list[str]:
    """Stop gradients for every parameter outside the head; return the frozen names.

    Batch-norm weights and biases are frozen too; their running statistics need the
    ``BnFreeze`` callback :func:`apply_strategy` returns (or ``module.eval()``).

    Example:
        >>> from covidlib.models.factory import create_model
        >>> frozen = freeze_backbone(create_model("squeezenet"), "squeezenet")
        >>> len(frozen), "classifier.1.weight" in frozen
        (50, False)
    """
    prefix = head_prefix(model_name)
    get_module(model, prefix[:-1])  # a clear error when the registry names no such module
    frozen = []
    for name, parameter in model.named_parameters():
        train = name.startswith(prefix)
        parameter.requires_grad_(train)
        if not train:
            frozen.append(name)
    return frozen


def apply_strategy(model: nn.Module, model_name: str, strategy: str) -> list[Any]:
    """Set which parameters of ``model`` train under ``strategy``; return fastai callbacks.

    Args:
        model: a network built by :func:`covidlib.models.factory.create_model`.
        model_name: its registry name (which module is the head).
        strategy: one of :data:`covidlib.config.TRANSFER_STRATEGIES`.

    Returns:
        The callbacks to add to the fit: ``[BnFreeze()]`` for ``"features"`` (backbone
        batch-norm layers in eval mode at the start of every training epoch), else ``[]``.

    Raises:
        ValueError: an unknown strategy.

    Example:
        >>> from covidlib.models.factory import create_model
        >>> model = create_model("squeezenet")
        >>> apply_strategy(model, "squeezenet", "finetune")
        []
        >>> all(p.requires_grad for p in model.parameters())
        True
    """
    if strategy not in TRANSFER_STRATEGIES:
        raise UnknownNameError("transfer strategy", strategy, TRANSFER_STRATEGIES)
    if strategy != "features":
        for parameter in model.parameters():
            parameter.requires_grad_(True)
        return []
    freeze_backbone(model, model_name)
    with quiet_fastai_import():
        from fastai.callback.training import BnFreeze
    return [BnFreeze()]


def backbone_state(model: nn.Module, model_name: str) -> dict[str, torch.Tensor]:
    """Return copies of every backbone tensor (parameters and buffers, head left out).

    Example:
        >>> from covidlib.models.factory import create_model
        >>> state = backbone_state(create_model("resnet18"), "resnet18")
        >>> "bn1.running_mean" in state, "fc.weight" in state
        (True, False)
    """
    prefix = head_prefix(model_name)
    return {
        name: tensor.detach().clone()
        for name, tensor in model.state_dict().items()
        if not name.startswith(prefix)
    }


def trainable_summary(model: nn.Module) -> dict[str, int]:
    """Return the number of trainable and frozen parameters (elements).

    Example:
        >>> trainable_summary(nn.Linear(3, 1))
        {'trainable': 4, 'frozen': 0}
    """
    counts = {"trainable": 0, "frozen": 0}
    for parameter in model.parameters():
        counts["trainable" if parameter.requires_grad else "frozen"] += parameter.numel()
    return counts


def replace_head(model: nn.Module, model_name: str, n_outputs: int) -> nn.Module:
    """Replace the head of ``model`` by a new one with ``n_outputs`` outputs (in place).

    The new layer has the old one's type and input size (a 1x1 convolution for SqueezeNet,
    a linear layer for the others).

    Example:
        >>> from covidlib.models.factory import create_model
        >>> model = replace_head(create_model("squeezenet"), "squeezenet", 5)
        >>> model(torch.zeros(2, 3, 64, 64)).shape
        torch.Size([2, 5])
    """
    if n_outputs < 1:
        raise ValueError(f"n_outputs must be at least 1, got {n_outputs}")
    path = get_spec(model_name).head_layer
    old = get_module(model, path)
    new: nn.Module
    if isinstance(old, nn.Linear):
        new = nn.Linear(old.in_features, n_outputs, bias=old.bias is not None)
    elif isinstance(old, nn.Conv2d) and old.kernel_size == (1, 1):
        new = nn.Conv2d(old.in_channels, n_outputs, kernel_size=1, bias=old.bias is not None)
    else:
        raise ValueError(f"{model_name}: cannot replace a head of type {type(old).__name__}")
    parent_path, _, child = path.rpartition(".")
    parent = get_module(model, parent_path) if parent_path else model
    setattr(parent, child, new)
    return model


def penultimate_features(
    model: nn.Module, model_name: str, batches: Any
) -> tuple[Any, Any]:
    """Return the head's inputs (pooled features) and the labels of every batch.

    The head is swapped for an identity on a copy of ``model``, which runs in eval mode
    without gradients; ``batches`` yields ``(x, y)`` (e.g. a fastai ``DataLoader``).

    Returns:
        ``(features [N, feature_dim], labels [N])`` as numpy arrays.

    Example:
        >>> from covidlib.models.factory import create_model
        >>> batches = [(torch.zeros(2, 3, 40, 40), torch.tensor([0.0, 1.0]))]
        >>> features, labels = penultimate_features(create_model("resnet18"), "resnet18", batches)
        >>> features.shape, labels.tolist()
        ((2, 512), [0.0, 1.0])
    """
    import copy

    import numpy as np

    probe = copy.deepcopy(model).eval()
    path = get_spec(model_name).head_layer
    parent_path, _, child = path.rpartition(".")
    setattr(get_module(probe, parent_path) if parent_path else probe, child, nn.Identity())
    features, labels = [], []
    with torch.no_grad():
        for x, y in batches:
            out = probe(x)
            features.append(out.reshape(len(out), -1).float().cpu().numpy())
            labels.append(torch.as_tensor(y).cpu().numpy())
    return np.concatenate(features), np.concatenate(labels)
