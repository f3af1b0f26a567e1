"""LAMB without host synchronisation: ``torch_optimizer.Lamb``'s mathematics, multi-tensor.

``torch_optimizer.Lamb`` updates one tensor at a time and, per tensor, compares two norms
with 0 in Python and hands the trust ratio over as a Python ``alpha``: each reads a value
back from the device (eight host reads per tensor, 496 per ResNet18 step). :class:`Lamb`
keeps the same constructor, defaults, per-parameter state keys (``step``, ``exp_avg``,
``exp_avg_sq``, ``weight_norm``, ``adam_norm``, ``trust_ratio``) and arithmetic, weight
decay included (added to the Adam step before the trust ratio), but updates all tensors of
a parameter group with ``torch._foreach_*`` ops, picks the zero-norm cases with
``torch.where`` and keeps the trust ratio a tensor: a step reads nothing back. On the CPU
it updates the tensors in runs of about 1 MiB (``Lamb.cpu_chunk_bytes``) so that they stay
in the cache between ops; that made it as fast as foreach Adam there
(``benchmarks/optim.py``).

Example:
    >>> layer = torch.nn.Linear(3, 1)
    >>> optimizer = Lamb(layer.parameters(), lr=0.01, weight_decay=1.0)
    >>> layer(torch.ones(2, 3)).sum().backward(); optimizer.step()
    >>> sorted(optimizer.state[layer.weight])
    ['adam_norm', 'exp_avg', 'exp_avg_sq', 'step', 'trust_ratio', 'weight_norm']
    >>> optimizer.state[layer.weight]["step"], optimizer.state[layer.weight]["trust_ratio"].dim()
    (1, 0)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch

SPARSE_MESSAGE = "Lamb does not support sparse gradients, please consider SparseAdam instead"


class Lamb(torch.optim.Optimizer):
    """LAMB (You et al. 2019, "Large Batch Optimization for Deep Learning") as
    ``torch_optimizer.Lamb`` computes it, without reading values back from the device.

    Per tensor ``w`` with gradient ``g`` (step ``t``, moments ``m``, ``v``):
    ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g^2``,
    ``u = m / (sqrt(v) + eps) + weight_decay * w``,
    ``r = min(||w||, clamp_value) / ||u||`` (1 when either norm is 0; 1 always with
    ``adam=True``), ``w -= lr * c * r * u`` with ``c = sqrt(1 - b2^t) / (1 - b1^t)`` when
    ``debias`` else 1. The state keeps ``||w||`` (clamped), ``||u||`` and ``r`` of the last
    step as 0-dim tensors (``r`` as computed, before ``adam`` overrides it).

    Args:
        params: parameters or parameter-group dicts.
        lr: learning rate.
        betas: moment coefficients ``(b1, b2)``.
        eps: added to ``sqrt(v)``.
        weight_decay: L2 factor added to the Adam step before the trust ratio.
        clamp_value: upper clamp of the weight norm.
        adam: use trust ratio 1 (plain Adam with LAMB's weight decay; for comparisons).
        debias: Adam's bias correction (LAMB paper v3 does not debias).

    Raises:
        ValueError: a hyper-parameter out of range (the message names it).
        RuntimeError: from :meth:`step`, a sparse gradient.

    Example:
        >>> weight = torch.nn.Parameter(torch.ones(4))
        >>> optimizer = Lamb([weight], lr=0.1)
        >>> weight.grad = torch.ones(4); optimizer.step()
        >>> ratio = optimizer.state[weight]["trust_ratio"]  # ||w|| / ||m / (sqrt(v) + eps)||
        >>> round(float(ratio), 4), round(weight[0].item(), 4)  # 1 - 0.1 * ratio * sqrt(10)
        (0.3162, 0.9)
    """

    #: On the CPU, tensors are updated in runs of about this many bytes (see ``_chunks``).
    cpu_chunk_bytes: int = 1 << 20

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0,
        clamp_value: float = 10,
        adam: bool = False,
        debias: bool = False,
    ) -> None:
        if lr <= 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if eps < 0.0:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
        if weight_decay < 0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if clamp_value < 0.0:
            raise ValueError(f"Invalid clamp value: {clamp_value}")
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
        # Attributes, not group options, as in torch_optimizer (same state_dict layout).
        self.clamp_value = clamp_value
        self.adam = adam
        self.debias = debias
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Make one optimisation step; return ``closure()``'s loss when a closure is given.

        Args:
            closure: re-evaluates the model and returns the loss (run with gradients on).
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            buckets: dict[tuple[torch.device, torch.dtype], list[list[Any]]] = {}
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError(SPARSE_MESSAGE)
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(
                        p, memory_format=torch.preserve_format
                    )
                state["step"] += 1
                bucket = buckets.setdefault((p.device, p.dtype), [[], [], [], [], []])
                for items, value in zip(
                    bucket, (p, p.grad, state["exp_avg"], state["exp_avg_sq"], state),
                    strict=True,
                ):
                    items.append(value)
            for (device, _), lists in buckets.items():
                for chunk in self._chunks(lists, device):
                    self._update(group, *chunk)
        return loss

    def _chunks(self, lists: list[list[Any]], device: torch.device) -> Iterable[list[list[Any]]]:
        """Split a bucket's lists into runs of tensors of about ``cpu_chunk_bytes`` on the CPU.

        On the CPU every foreach op is a loop over its tensors: running all ops on a few
        tensors at a time keeps them in the cache between ops (and reuses the temporaries'
        memory) instead of streaming the whole model through memory once per op.
        """
        if device.type != "cpu":
            yield lists
            return
        start, size = 0, 0
        for index, p in enumerate(lists[0]):
            size += p.numel() * p.element_size()
            if size >= self.cpu_chunk_bytes or index == len(lists[0]) - 1:
                yield [items[start:index + 1] for items in lists]
                start, size = index + 1, 0

    def _update(
        self,
        group: dict[str, Any],
        params: list[torch.Tensor],
        grads: list[torch.Tensor],
        exp_avgs: list[torch.Tensor],
        exp_avg_sqs: list[torch.Tensor],
        states: list[dict[str, Any]],
    ) -> None:
        """Update tensors of one device and dtype (the same ops as torch_optimizer, batched)."""
        beta1, beta2 = group["betas"]
        torch._foreach_mul_(exp_avgs, beta1)
        torch._foreach_add_(exp_avgs, grads, alpha=1 - beta1)
        torch._foreach_mul_(exp_avg_sqs, beta2)
        torch._foreach_addcmul_(exp_avg_sqs, grads, grads, value=1 - beta2)

        weight_norm = torch.stack(torch._foreach_norm(params)).clamp(0, self.clamp_value)
        denominators = torch._foreach_sqrt(exp_avg_sqs)
        torch._foreach_add_(denominators, group["eps"])
        updates = torch._foreach_div(exp_avgs, denominators)
        del denominators
        if group["weight_decay"] != 0:
            torch._foreach_add_(updates, params, alpha=group["weight_decay"])
        adam_norm = torch.stack(torch._foreach_norm(updates))
        trust_ratio = torch.where(
            (weight_norm == 0) | (adam_norm == 0), torch.ones_like(weight_norm),
            weight_norm / adam_norm,
        )
        for state, w_norm, u_norm, ratio in zip(
            states, weight_norm.unbind(), adam_norm.unbind(), trust_ratio.unbind(),
            strict=True,
        ):
            state["weight_norm"], state["adam_norm"], state["trust_ratio"] = w_norm, u_norm, ratio

        negative_steps = [
            -group["lr"] * self._bias_correction(state["step"], beta1, beta2) for state in states
        ]
        uniform = len(set(negative_steps)) == 1
        if self.adam:
            if uniform:
                torch._foreach_add_(params, updates, alpha=negative_steps[0])
            else:
                torch._foreach_mul_(updates, negative_steps)
                torch._foreach_add_(params, updates)
            return
        if uniform:
            scales: list[torch.Tensor] | tuple[torch.Tensor, ...] = (
                trust_ratio * negative_steps[0]
            ).unbind()
        else:  # debias with steps that differ between tensors
            scales = torch._foreach_mul(list(trust_ratio.unbind()), negative_steps)
        torch._foreach_addcmul_(params, updates, list(scales))

    def _bias_correction(self, step: int, beta1: float, beta2: float) -> float:
        if not self.debias:
            return 1.0
        return math.sqrt(1 - beta2**step) / (1 - beta1**step)


__all__ = ["Lamb"]
