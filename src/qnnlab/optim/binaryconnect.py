"""BinaryConnect: forward and backward with binary weights, update on latent ones.

The parameter seen by the model holds the binary weight ``w_b``; the optimizer keeps the
real-valued latent ``w`` in its state and applies the gradient taken at ``w_b`` to it
(an identity straight-through estimator, i.e. Nesterov dual averaging / lazy projection):

.. math::
    w \\leftarrow \\operatorname{clip}(w - \\gamma\\, c\\, \\nabla_{w_b} C, -1, 1), \\qquad
    w_b = \\begin{cases} \\operatorname{sign}(w) & \\text{deterministic} \\\\
    2\\,\\mathrm{Bernoulli}(\\sigma(w)) - 1 & \\text{stochastic} \\end{cases}

with the hard sigmoid ``σ(x) = clip((x+1)/2, 0, 1)`` (so ``E[w_b] = w``) and, when
``glorot_scale`` is on, the per-layer multiplier ``c = 1/√(1.5/(fan_in + fan_out))``.
At construction the latent weights are the parameters' values clipped to ``[−1, 1]``.
Deterministic BinaryConnect is the identity-STE step of :class:`~qnnlab.optim.STE` with the
latent weights clipped: the two share their iterates while no latent weight leaves ``[−1, 1]``
(see :mod:`qnnlab.optim.ste`).
The stochastic draws are counter-based (:mod:`qnnlab.optim._draws`): a function of the group's
``seed``, the tensor's position in its group and its number of draws, so a resumed run draws what
the uninterrupted one did and, under data parallelism, every rank with the same seed draws the
same binary weights (give ``seed`` explicitly when ranks seed torch differently).

Reference: Courbariaux, Bengio & David, "BinaryConnect: training deep neural networks
with binary weights during propagations", NeurIPS 2015, arXiv:1511.00363.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor
from torch.nn.init import _calculate_fan_in_and_fan_out

from qnnlab.optim._base import EntryRule, QuantOptimizer, clip_unit
from qnnlab.quant.binarize import binarize_deterministic, binarize_from

__all__ = ["BinaryConnect", "glorot_lr_scale"]


def glorot_lr_scale(p: Tensor) -> float:
    """``1/√(1.5/(fan_in + fan_out))`` for a weight of at least two dimensions, else 1."""
    if p.dim() < 2:
        return 1.0
    fan_in, fan_out = _calculate_fan_in_and_fan_out(p)
    return 1.0 / math.sqrt(1.5 / (fan_in + fan_out))


def binaryconnect_project(w: Tensor) -> tuple[Tensor, Tensor]:
    """``(clip(w, −1, 1), sign(clip(w, −1, 1)))``: the latent and the deterministic binary weight."""
    w = clip_unit(w)
    return w, binarize_deterministic(w)


def binaryconnect_stochastic_project(w: Tensor, u: Tensor) -> tuple[Tensor, Tensor]:
    """``(clip(w, −1, 1), ±1)`` with ``+1`` where the draw ``u < σ(clip(w, −1, 1))``."""
    w = clip_unit(w)
    return w, binarize_from(w, u)


class BinaryConnect(QuantOptimizer):
    """BinaryConnect (deterministic or stochastic); unconstrained groups take plain steps.

    Args:
        params: parameters or param groups (``constrained=False`` for full precision).
        lr: step size ``γ`` (> 0).
        stochastic: draw ``w_b`` from the hard-sigmoid Bernoulli instead of ``sign``.
        glorot_scale: multiply each tensor's step by ``1/√(1.5/(fan_in + fan_out))``.
        seed: seed of the stochastic draws (an integer >= 0; default ``torch.initial_seed()`` at construction).
        momentum, weight_decay, base, betas, adam_eps, fused: the base step (the paper uses Adam).
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 0.01,
        *,
        stochastic: bool = False,
        glorot_scale: bool = False,
        seed: int | None = None,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        base: str = "sgd",
        betas: tuple[float, float] = (0.9, 0.999),
        adam_eps: float = 1e-8,
        fused: bool | None = None,
    ) -> None:
        if seed is None:
            seed = torch.initial_seed()
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"Invalid seed: {seed!r}; must be an integer >= 0")
        super().__init__(
            params,
            {"stochastic": stochastic, "glorot_scale": glorot_scale, "seed": seed},
            lr=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            base=base,
            betas=betas,
            adam_eps=adam_eps,
            fused=fused,
        )
        with torch.no_grad():
            for group in self.param_groups:
                if group["constrained"]:
                    self._project_now(group, group["params"], self._targets(group, group["params"]))

    def _latent_init(self, p: Tensor) -> Tensor:
        state = self.state[p]
        if "latent" not in state:
            state["latent"] = p.detach().clone().clamp_(-1.0, 1.0)
            state["lr_scale"] = glorot_lr_scale(p)
        return state["latent"]

    def latent(self, p: Tensor) -> Tensor:
        return self.state[p].get("latent", p)

    def _targets(self, group: dict[str, Any], params: list[Tensor]) -> list[Tensor]:
        return [self._latent_init(p) for p in params]

    def _scales(self, group: dict[str, Any], params: list[Tensor]) -> list[float] | None:
        return [self.state[p]["lr_scale"] for p in params] if group["glorot_scale"] else None

    def _rule(self, group: dict[str, Any], params: list[Tensor], targets: list[Tensor]) -> EntryRule:
        if group["stochastic"]:
            return EntryRule(project=binaryconnect_stochastic_project, draws=True, param=True)
        return EntryRule(project=binaryconnect_project, param=True)
