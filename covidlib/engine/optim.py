"""The optimizers by name (one builder each) and what LAMB measured in its last step."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import torch

from covidlib.config import (
    OPTIMIZER_NAMES,
    TrainConfig,
)
from covidlib.utils.compat import quiet_fastai_import

with quiet_fastai_import():
    pass



def _lamb(params: Any, config: TrainConfig, lr: float | None = None) -> torch.optim.Optimizer:
    from covidlib.engine.lamb import Lamb

    return Lamb(
        params, lr=lr or config.lr, betas=config.betas, eps=config.eps,
        weight_decay=config.weight_decay,
    )


def _lamb_torch_optimizer(
    params: Any, config: TrainConfig, lr: float | None = None
) -> torch.optim.Optimizer:
    import torch_optimizer

    return torch_optimizer.Lamb(
        params, lr=lr or config.lr, betas=config.betas, eps=config.eps,
        weight_decay=config.weight_decay,
    )


def _adam(params: Any, config: TrainConfig, lr: float | None = None) -> torch.optim.Optimizer:
    return torch.optim.Adam(
        params, lr=lr or config.lr, betas=config.betas, eps=config.eps,
        weight_decay=config.weight_decay,
    )


def _adamw(params: Any, config: TrainConfig, lr: float | None = None) -> torch.optim.Optimizer:
    return torch.optim.AdamW(
        params, lr=lr or config.lr, betas=config.betas, eps=config.eps,
        weight_decay=config.weight_decay,
    )


def _sgd(params: Any, config: TrainConfig, lr: float | None = None) -> torch.optim.Optimizer:
    return torch.optim.SGD(
        params, lr=lr or config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )


# name -> builder(params, config, lr), the builders in the order of config.OPTIMIZER_NAMES, the
# one list of names (config validates names with it without importing torch). LAMB is the
# paper's; "lamb" is covidlib's multi-tensor one (the same mathematics as torch_optimizer.Lamb,
# without its host reads, see covidlib.engine.lamb), "lamb-torch-optimizer" the original.
OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = dict(
    zip(OPTIMIZER_NAMES, (_lamb, _lamb_torch_optimizer, _adam, _adamw, _sgd), strict=True)
)


def lamb_trust_ratios(model: torch.nn.Module, optimizer: Any) -> pd.DataFrame:
    """Return, per parameter tensor, what LAMB measured in its last step.

    Works for :class:`covidlib.engine.lamb.Lamb` (the engine's default) and
    ``torch_optimizer.Lamb``: both keep the same per-parameter state.

    Columns: ``name``, ``shape``, ``weight_norm`` (||w||, clipped at 10), ``update_norm``
    (||Adam step + weight decay * w||) and ``trust_ratio`` (their quotient: the factor LAMB
    multiplies this layer's learning rate with).

    Args:
        model: the network whose parameters the optimizer updates.
        optimizer: a LAMB optimizer or a fastai ``OptimWrapper`` around one, after
            at least one ``step()``.

    Example:
        >>> import torch_optimizer
        >>> layer = torch.nn.Linear(3, 1)
        >>> opt = torch_optimizer.Lamb(layer.parameters(), weight_decay=1.0)
        >>> layer(torch.ones(2, 3)).sum().backward(); opt.step()
        >>> lamb_trust_ratios(layer, opt)["name"].tolist()
        ['weight', 'bias']
    """
    inner = getattr(optimizer, "opt", optimizer)
    rows = []
    for name, parameter in model.named_parameters():
        state = inner.state.get(parameter, {})
        if "trust_ratio" not in state:
            continue
        rows.append({
            "name": name,
            "shape": "x".join(str(s) for s in parameter.shape),
            "weight_norm": float(state["weight_norm"]),
            "update_norm": float(state["adam_norm"]),
            "trust_ratio": float(state["trust_ratio"]),
        })
    if not rows:
        raise ValueError("The optimizer holds no LAMB statistics: call step() on a Lamb first.")
    return pd.DataFrame(rows)
