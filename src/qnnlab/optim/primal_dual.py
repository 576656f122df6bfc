"""Primal–dual (Lagrangian) training on the binary constraints ``φ_ε(w_i) ≥ 0``.

With one multiplier ``λ_i ≥ 0`` per constrained weight and
``L(w, λ) = f(w) − Σ_i λ_i φ_ε(w_i)``, each step is a gradient step on ``w`` and a projected
gradient ascent step on the dual, both at the current point:

.. math::
    w \\leftarrow \\operatorname{clip}\\big(w - \\gamma\\,(g - \\lambda \\odot \\varphi_\\varepsilon'(w)),
        -1, 1\\big), \\qquad
    \\lambda \\leftarrow [\\lambda - \\eta\\, \\varphi_\\varepsilon(w)]_+ .

A violated constraint (``φ < 0``) grows its multiplier, which pulls ``w`` back towards
``C_ε``; a satisfied one shrinks it to zero. ``ε`` is annealed between epochs as for
ASkewSGD (``group["eps"]``). The base step (momentum, Adam) acts on ``∇_w L``.
:meth:`PrimalDual.multipliers` returns the ``λ`` tensors and :meth:`PrimalDual.diagnostics`
the mean and largest multiplier and the Lagrangian stationarity ``‖∇_w L‖`` at the current point.

References: Arrow, Hurwicz & Uzawa, "Studies in linear and non-linear programming", 1958
(gradient descent–ascent on the Lagrangian); the constraint is ASkewSGD's (Leconte,
Schechtman & Moulines, AISTATS 2023, arXiv:2211.03741).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from qnnlab.optim._base import EntryRule, QuantOptimizer, check_nonnegative, check_positive, clip_unit
from qnnlab.quant.constraints import binary_dphi, binary_phi

__all__ = ["PrimalDual", "lagrangian_step"]


def lagrangian_step(w: Tensor, g: Tensor, lam: Tensor, eps: float, dual_lr: float) -> tuple[Tensor, Tensor]:
    """``(∇_w L(w, λ), [λ − ηφ_ε(w)]_+)`` entry-wise."""
    return g - lam * binary_dphi(w), (lam - dual_lr * binary_phi(w, eps)).clamp_min(0)


def primal_dual_direction(w: Tensor, g: Tensor, lam: Tensor, *, eps: float, dual_lr: float) -> tuple[Tensor, Tensor]:
    """:func:`lagrangian_step` with its hyperparameters by keyword (:class:`~qnnlab.optim._base.EntryRule`)."""
    return lagrangian_step(w, g, lam, eps, dual_lr)


class PrimalDual(QuantOptimizer):
    """Gradient descent–ascent on ``L(w, λ) = f(w) − Σ λ_i φ_ε(w_i)`` with ``λ ≥ 0``.

    Args:
        params: parameters or param groups (``constrained=False`` for plain steps).
        lr: primal step size ``γ`` (> 0).
        dual_lr: dual step size ``η`` (> 0).
        eps: constraint level ``ε`` (> 0); set ``group["eps"]`` each epoch to anneal it.
        init_multiplier: initial ``λ`` (≥ 0).
        momentum, weight_decay, base, betas, adam_eps, fused: the base step on ``∇_w L``.
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 0.1,
        *,
        dual_lr: float = 1.0,
        eps: float = 1.0,
        init_multiplier: float = 0.0,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        base: str = "sgd",
        betas: tuple[float, float] = (0.9, 0.999),
        adam_eps: float = 1e-8,
        fused: bool | None = None,
    ) -> None:
        check_positive("dual_lr", dual_lr)
        check_positive("eps", eps)
        check_nonnegative("init_multiplier", init_multiplier)
        super().__init__(
            params,
            {"dual_lr": dual_lr, "eps": eps, "init_multiplier": init_multiplier},
            lr=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            base=base,
            betas=betas,
            adam_eps=adam_eps,
            fused=fused,
        )

    def _multiplier(self, p: Tensor, init: float) -> Tensor:
        state = self.state[p]
        if "multiplier" not in state:
            state["multiplier"] = torch.full_like(p, init, memory_format=torch.preserve_format)
        return state["multiplier"]

    def _rule(self, group: dict[str, Any], params: list[Tensor], targets: list[Tensor]) -> EntryRule:
        for p in targets:
            self._multiplier(p, group["init_multiplier"])
        scalars = {"eps": group["eps"], "dual_lr": group["dual_lr"]}
        return EntryRule(direction=primal_dual_direction, project=clip_unit, scalars=scalars, state=("multiplier",))

    def multipliers(self) -> list[Tensor]:
        """The multiplier tensor of every constrained parameter stepped so far."""
        return [s["multiplier"] for s in self.state.values() if "multiplier" in s]

    @torch.no_grad()
    def diagnostics(self) -> dict[str, Tensor]:
        """0-d tensors at the current point: mean and largest ``λ``, and ``‖∇_w L(w, λ)‖`` with ``g = p.grad``.

        Computed when called (the training loop calls it once per epoch with the full-batch gradient), over
        the constrained parameters that have a multiplier and a gradient; ``{}`` if there are none.
        """
        lams, grads = [], []
        for group in self.param_groups:
            for p in group["params"]:
                if group["constrained"] and p.grad is not None and "multiplier" in self.state[p]:
                    lam = self.state[p]["multiplier"]
                    lams.append(lam.reshape(-1))
                    grads.append(lagrangian_step(p, p.grad, lam, group["eps"], group["dual_lr"])[0].reshape(-1))
        if not lams:
            return {}
        lam, grad_l = torch.cat(lams), torch.cat(grads)
        return {"multiplier_mean": lam.mean(), "multiplier_max": lam.max(), "lagrangian_grad_norm": grad_l.norm()}
