"""Straight-through-estimator training: SGD on the latent weights of quantized layers.

The model's weight layers quantize in their forward pass (``QuantLinear`` / ``QuantConv2d``
with a sign weight quantizer and a chosen STE, :mod:`qnnlab.quant.ste`), so the gradient that
reaches the latent ``w`` is already the STE's coarse gradient ``∂L/∂q(w) · μ'(w)``; the step is
the base step, optionally followed by clipping the latent weights to ``[−1, 1]``:

.. math::
    w \\leftarrow w - \\gamma\\, \\frac{\\partial L}{\\partial q(w)}\\, \\mu'(w)
    \\quad\\text{then, if } \\texttt{clip}: \\ w \\leftarrow \\operatorname{clip}(w, -1, 1)

Unlike :class:`~qnnlab.optim.BinaryConnect`, nothing is clipped unless asked, the proxy ``μ'``
is a choice (identity, hardtanh, ReLU, clipped ReLU), and the parameter is the latent weight.

With the identity proxy ``μ' = 1`` the step *is* deterministic BinaryConnect's,
``w ← w − γ ∇f(sign w)``, less BinaryConnect's clip to ``[−1, 1]``: both take the gradient at
the sign weights and apply it unchanged to the latent ones, so their iterates coincide for as
long as no latent weight leaves the box (and they then differ only in how far past ±1 a weight
must travel back to flip). On the linear presets that is every run: identical ``Q(w)``. With the
clipped proxy ``μ' = 1{|w| ≤ 1}`` (Yin et al.'s, the linear presets' ``ste`` row) a latent
weight that steps past ±1 gets no gradient and stays there, where BinaryConnect clips it to ±1
and keeps moving it.

Reference: Yin, Lyu, Zhang, Osher, Qi & Xin, "Understanding straight-through estimator in
training activation quantized neural nets", ICLR 2019, arXiv:1903.05662.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from torch import Tensor

from qnnlab.optim._base import EntryRule, QuantOptimizer, clip_unit

__all__ = ["STE"]


class STE(QuantOptimizer):
    """The base step on every group; constrained groups are clipped to ``[−1, 1]`` when ``clip``.

    Args:
        params: parameters or param groups (``constrained=False`` are never clipped).
        lr: step size ``γ`` (> 0).
        clip: clip the latent weights to ``[−1, 1]`` after each step.
        momentum, weight_decay, base, betas, adam_eps, fused: the base step.
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 0.1,
        *,
        clip: bool = False,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        base: str = "sgd",
        betas: tuple[float, float] = (0.9, 0.999),
        adam_eps: float = 1e-8,
        fused: bool | None = None,
    ) -> None:
        super().__init__(
            params,
            {"clip": clip},
            lr=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            base=base,
            betas=betas,
            adam_eps=adam_eps,
            fused=fused,
        )

    def _rule(self, group: dict[str, Any], params: list[Tensor], targets: list[Tensor]) -> EntryRule:
        return EntryRule(project=clip_unit if group["clip"] else None)
