"""Bop: the binary optimizer, which flips binary weights and keeps no latent ones.

Each binary weight ``w ∈ {−1, +1}`` carries an exponential moving average ``m`` of its
gradient, with adaptivity rate ``γ``; a weight flips where ``m`` is larger than the threshold
``τ`` in magnitude and agrees with ``w`` in sign (a gradient pushing ``w`` toward the other sign):

.. math::
    m_t = m_{t-1} + \\gamma\\,(g_t - m_{t-1}) = (1-\\gamma)\\,m_{t-1} + \\gamma\\,g_t, \\qquad
    w_t = \\begin{cases} -w_{t-1} & \\text{if } |m_t| > \\tau \\text{ and } \\operatorname{sign}(m_t)
    = \\operatorname{sign}(w_{t-1}), \\\\ w_{t-1} & \\text{otherwise.} \\end{cases}

For ``w = ±1`` and ``τ ≥ 0`` the condition is ``m_t·w_{t−1} > τ`` (the product is exact), which is
how the rule is written. ``m`` starts at 0; at construction the weights become ``sign(w)`` with
``sign(0) = +1`` (so a run starts from the signs of its initialization). The update is the paper's
Algorithm 1, with ``m`` updated in Larq's form ``m + γ(g − m)``. At the equality ``|m_t| = τ`` no
weight flips, as in the paper; Larq's ``sign(−sign(w·m − τ)·w)`` with ``sign(0) = +1`` sets ``w = +1``
there instead (a ``−1`` flips at ``m = −τ``, a ``+1`` stays at ``m = τ``).

The constrained groups take no base step: their ``lr``, momentum and weight decay are unused
(set to 0 and SGD), and ``γ``, ``τ`` are theirs. Groups with ``constrained = False`` (biases,
norms) train in full precision with the base step (SGD, momentum or Adam), as in every method.

Reference: Helwegen, Widdicombe, Geiger, Liu, Cheng & Nusselder, "Latent weights do not exist:
rethinking binarized neural network optimization", NeurIPS 2019, arXiv:1906.02107; Larq's ``Bop``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from qnnlab.optim._base import EntryRule, QuantOptimizer, check_nonnegative
from qnnlab.quant.grids import sign

__all__ = ["Bop", "bop_flip", "bop_momentum"]


def bop_momentum(w: Tensor, g: Tensor, grad_avg: Tensor, *, gamma: float) -> tuple[Tensor, Tensor]:
    """``(0, m + γ(g − m))``: no gradient step (``0·w`` is an exact zero for ``w = ±1``) and the new average."""
    return 0 * w, grad_avg + gamma * (g - grad_avg)


def bop_flip(w: Tensor, *, grad_avg: Tensor, threshold: float) -> Tensor:
    """``−w`` where ``m·w > τ`` (``|m| > τ`` and ``sign m = sign w``), else ``w``."""
    return torch.where(grad_avg * w > threshold, -w, w)


class Bop(QuantOptimizer):
    """Bop on the constrained groups (weights in ``{−1, +1}``); unconstrained groups take the base step.

    Args:
        params: parameters or param groups (``constrained=False`` for full precision).
        lr: step size of the unconstrained groups' base step (> 0).
        gamma: adaptivity rate ``γ`` of the gradient average, in ``(0, 1]``.
        threshold: flip threshold ``τ`` (>= 0).
        momentum, weight_decay, base, betas, adam_eps, fused: the unconstrained groups' base step.
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 0.01,
        *,
        gamma: float = 1e-4,
        threshold: float = 1e-8,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        base: str = "sgd",
        betas: tuple[float, float] = (0.9, 0.999),
        adam_eps: float = 1e-8,
        fused: bool | None = None,
    ) -> None:
        if not 0 < gamma <= 1:
            raise ValueError(f"Invalid gamma: {gamma}; must be in (0, 1]")
        check_nonnegative("threshold", threshold)
        super().__init__(
            params,
            {"gamma": gamma, "threshold": threshold},
            lr=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            base=base,
            betas=betas,
            adam_eps=adam_eps,
            fused=fused,
        )

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """As torch's; a constrained group's weights become ``sign(w)`` and it takes no base step."""
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        if group["constrained"]:
            group.update(base="sgd", momentum=0.0, weight_decay=0.0)
            with torch.no_grad():
                for p in group["params"]:
                    p.copy_(sign(p))

    def _rule(self, group: dict[str, Any], params: list[Tensor], targets: list[Tensor]) -> EntryRule:
        for p in params:
            if "grad_avg" not in self.state[p]:
                self.state[p]["grad_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return EntryRule(
            direction=bop_momentum,
            project=bop_flip,
            scalars={"gamma": group["gamma"], "threshold": group["threshold"]},
            state=("grad_avg",),
        )
