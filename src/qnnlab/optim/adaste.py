"""AdaSTE: binary weights from a bilevel relaxation, trained with an adaptive straight-through estimator.

Each binary weight is the solution of an inner problem on a latent ``θ``: a quadratic tie to
``θ`` plus a double-well penalty with wells at ``±(1 + α)``, restricted to ``[−1, 1]``,

.. math::
    w^*(\\theta) = \\operatorname*{arg\\,min}_{|w| \\le 1}\\;
    \\tfrac12 (w - \\theta)^2 + \\tfrac\\beta2 \\bigl(|w| - (1 + \\alpha)\\bigr)^2
    = \\operatorname{clip}\\Bigl(\\frac{\\theta + \\beta(1 + \\alpha)\\operatorname{sign}\\theta}
      {1 + \\beta}, -1, 1\\Bigr),

which is exactly ``sign θ`` once ``αβ ≥ 1`` (otherwise for ``|θ| ≥ 1 − αβ``). The forward and
backward passes use ``w*(θ)``; the gradient ``g = ∂ℓ/∂w`` at ``w*(θ)`` reaches ``θ`` through the
finite difference ``(w*(θ) − w*(θ − τg))/τ`` whose step ``τ`` is chosen per weight, which
amounts to ``θ``'s direction ``d = c(θ, g)·g``. With ``g`` *toward* zero when ``sign g = sign θ``
(a descent step shrinks ``|θ|``) and *away* otherwise, ``κ = 1 − αβ`` and ``|θ|, |g| > tol``:

====================  =====================================  ===============================
case                  ``αβ ≥ 1``                              ``αβ < 1``
====================  =====================================  ===============================
toward, ``|θ| > κ``   ``min(1/|θ|, ½)``                       ``min((1+2β+αβ)/((1+β)|θ|), ½)``
toward, ``|θ| ≤ κ``   —                                       ``min((|θ|+2β(1+α))/((1+β)|θ|), ½)``
away, ``|θ| > κ``     0                                       0
away, ``|θ| ≤ κ``     —                                       ``1/(1+β)``
``|θ|`` or ``|g|``
``≤ tol``             1                                       ``1/(1+β)``
====================  =====================================  ===============================

For ``αβ < 1`` the toward values are ``(w*(θ) − w*(0⁻·sign θ))/(|θ|/|g|)/g``: the smallest
step that flips the sign of ``θ``; ``1/(1+β)`` is the slope of ``w*`` between the wells. The
direction then goes through the base step (the authors: a bias-corrected exponential moving
average, i.e. heavy-ball momentum up to the factor ``(1 − μ)/(1 − μᵗ)``; here SGD, momentum or
Adam), with ``weight_decay`` for their ``reweight·θ`` prior term. ``θ`` is never clipped.
The latent starts at ``θ₀ = θ_init·sign(w₀)``; the authors draw the signs uniformly, which
is the same law for a symmetric random initialization ``w₀``. The parameters hold ``w*(θ)``;
``Q(w*(θ)) = sign θ`` is the binary network the authors evaluate.

Sources and what could not be checked: the paper's text was not available; the update follows
the authors' code (``intellhave/AdaSTE``, ``BayesNN/optimizers/FenBPOpt.py``, identical to the
``FenBPOpt`` copied into the ASkewSGD notebooks), whose ``β`` grows ×1.05 every few hundred
steps up to ``1/α + 100`` (here: per epoch, see ``AdaSTEConfig``). Two departures: (i) in
the ``αβ < 1`` toward case between the wells the code uses ``(2β(1+α) − θ)`` with the *signed*
``θ``, which is not odd in ``θ``; this module uses ``|θ| + 2β(1+α)``, the code's value for
``θ < 0`` and the finite difference above (for ``|θ| < 1`` it exceeds ``(1+2β)/(1+β) ≥ 1``, so
the cap makes it ½, whereas the code gives ``θ > 0`` less, down to 0 when ``2β(1+α) < θ``);
(ii) the code's dead zone for ``|θ|`` is ``1e-6`` in the ``αβ < 1`` branch and ``1e-3`` in the
other; here both are ``tol``. Kept as in the code
although unverified: ``1/|θ|`` in the ``αβ ≥ 1`` toward case (a literal finite difference would
give ``2/|θ|``, the ``αβ → 1⁻`` limit of the other branch), the cap ``½`` and ``tol``, which acts
on the raw gradient and so depends on how the loss is normalized.

Reference: Le, Høier, Lin & Zach, "AdaSTE: an adaptive straight-through estimator to train
binary neural networks", CVPR 2022, arXiv:2112.02880.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from qnnlab.optim._base import EntryRule, QuantOptimizer, check_nonnegative, check_positive
from qnnlab.quant.grids import sign

__all__ = ["AdaSTE", "adaste_scale", "adaste_weights"]

SCALE_CAP = 0.5


def adaste_weights(theta: Tensor, alpha: float, beta: float) -> Tensor:
    """``w*(θ) = clip((θ + β(1 + α)·sign θ)/(1 + β), −1, 1)`` (``sign 0 = +1``)."""
    return ((theta + beta * (1 + alpha) * sign(theta)) / (1 + beta)).clamp(-1.0, 1.0)


def adaste_scale(theta: Tensor, g: Tensor, alpha: float, beta: float, tol: float) -> Tensor:
    """The factor ``c(θ, g)`` of the module docstring's table, entry-wise."""
    return _scale(theta, g, alpha, beta, tol, saturated=alpha * beta >= 1)


def _scale(theta: Tensor, g: Tensor, alpha: float, beta: float, tol: float, saturated: bool) -> Tensor:
    a = theta.abs()
    live = (a > tol) & (g.abs() > tol)
    toward = live & ((theta > 0) == (g > 0))
    away = live & ~toward
    if saturated:  # αβ ≥ 1
        return torch.where(toward, a.reciprocal().clamp(max=SCALE_CAP), torch.where(away, 0.0, 1.0))
    outside = a > 1 - alpha * beta  # w* is saturated at ±1
    flip = torch.where(outside, 1 + 2 * beta + alpha * beta, a + 2 * beta * (1 + alpha)) / ((1 + beta) * a)
    rest = torch.where(away & outside, 0.0, 1 / (1 + beta))
    return torch.where(toward, flip.clamp(max=SCALE_CAP), rest)


def adaste_direction(theta: Tensor, g: Tensor, *, alpha: float, beta: float, tol: float, saturated: bool) -> Tensor:
    """``c(θ, g)·g``; ``saturated`` (``αβ ≥ 1``) is static: it selects the table's column."""
    return _scale(theta, g, alpha, beta, tol, saturated) * g


def adaste_project(theta: Tensor, *, alpha: float, beta: float) -> tuple[Tensor, Tensor]:
    """``(θ, w*(θ))``: the latent is never clipped, the parameter shows ``w*(θ)``."""
    return theta, adaste_weights(theta, alpha, beta)


class AdaSTE(QuantOptimizer):
    """AdaSTE for binary weights; unconstrained groups take plain base steps.

    Args:
        params: parameters or param groups (``constrained=False`` for full precision).
        lr: step size ``γ`` (> 0) on the latent ``θ``.
        alpha: margin ``α`` (> 0) of the double well; ``w*`` is binary once ``αβ ≥ 1``.
        beta: weight ``β`` (>= 0) of the double well; set ``group["beta"]`` to anneal it.
        theta_init: ``|θ₀|`` (> 0); ``θ₀ = theta_init·sign(w₀)``.
        tol: dead zone (>= 0) under which ``|θ|`` or ``|g|`` count as zero.
        momentum, weight_decay, base, betas, adam_eps, fused: the base step on ``θ``.
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 0.01,
        *,
        alpha: float = 0.01,
        beta: float = 100.0,
        theta_init: float = 10.0,
        tol: float = 1e-3,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        base: str = "sgd",
        betas: tuple[float, float] = (0.9, 0.999),
        adam_eps: float = 1e-8,
        fused: bool | None = None,
    ) -> None:
        check_positive("alpha", alpha)
        check_nonnegative("beta", beta)
        check_positive("theta_init", theta_init)
        check_nonnegative("tol", tol)
        super().__init__(
            params,
            {"alpha": alpha, "beta": beta, "theta_init": theta_init, "tol": tol},
            lr=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            base=base,
            betas=betas,
            adam_eps=adam_eps,
            fused=fused,
        )
        self._show_latent()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self._show_latent()  # the loaded θ, not the one set at construction

    @torch.no_grad()
    def _show_latent(self) -> None:
        """Set every constrained parameter to ``w*(θ)``, creating ``θ`` where it is missing."""
        for group in self.param_groups:
            if group["constrained"]:
                self._project_now(group, group["params"], self._targets(group, group["params"]))

    def theta(self, p: Tensor) -> Tensor:
        """The latent ``θ`` behind parameter ``p`` (``p`` itself for an unconstrained one)."""
        return self.state[p].get("theta", p)

    def _targets(self, group: dict[str, Any], params: list[Tensor]) -> list[Tensor]:
        for p in params:
            state = self.state[p]
            if "theta" not in state:
                state["theta"] = group["theta_init"] * sign(p.detach())
        return [self.state[p]["theta"] for p in params]

    def _rule(self, group: dict[str, Any], params: list[Tensor], targets: list[Tensor]) -> EntryRule:
        alpha, beta = group["alpha"], group["beta"]
        return EntryRule(
            direction=adaste_direction,
            project=adaste_project,
            scalars={"alpha": alpha, "beta": beta, "tol": group["tol"]},
            static={"saturated": alpha * beta >= 1},
            param=True,
        )
