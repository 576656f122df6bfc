"""ASkewSGD: annealed interval-constrained skewed SGD (binary weights).

Each constrained coordinate carries the constraint ``φ_ε(w) = ε − (w² − 1)² ≥ 0``. The
step replaces the gradient ``g`` by the skewed direction

.. math::
    s_{\\varepsilon,\\alpha}(w, g) =
    \\begin{cases}
      g  & \\text{if } \\varphi_\\varepsilon(w) \\ge 0 \\text{ or } \\varphi_\\varepsilon'(w) = 0
           \\text{ or } (-g)K > K^2, \\\\
      -K & \\text{otherwise,}
    \\end{cases}
    \\qquad K = -\\frac{\\alpha\\,\\varphi_\\varepsilon(w)}{\\varphi_\\varepsilon'(w)},

i.e. ``v = −s`` is the Euclidean projection of ``−g`` onto the half-line
``{v : φ'_ε(w)·v + αφ_ε(w) ≥ 0}``: an infeasible coordinate must move so that
``dφ/dt ≥ −αφ`` (Muehlebach & Jordan's velocity constraint). The iterate is never
projected onto ``C_ε``; after the base step it is clamped to the box ``[−1, 1]``. ``ε``
is annealed towards 0 between epochs (``group["eps"]``), so the feasible intervals
shrink onto ``{±1}``; the final weights are ``sign(w)``.

The test ``(−g)K > K²`` is the strict form used by the authors' code; the singular points
``w ∈ {0, ±1}`` (where ``φ' = 0`` and ``K`` is undefined) take the plain gradient, and so
do points where ``K`` overflows the floating-point range (``|w|`` subnormal), so that no
infinity ever reaches a momentum or Adam buffer.

References:
    Leconte, Schechtman & Moulines, "ASkewSGD: an annealed interval-constrained
    optimisation method to train quantized neural networks", AISTATS 2023,
    arXiv:2211.03741 (algorithm reconstructed from the authors' code, repository
    aistats2023/537). Muehlebach & Jordan, "On constraints in first-order optimization:
    a view from non-smooth dynamical systems", JMLR 23(256), 2022.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from torch import Tensor

from qnnlab.optim.constrained_gd import ConstrainedGD, velocity_direction
from qnnlab.quant.constraints import BinaryConstraint, binary_dphi, binary_phi

__all__ = ["ASkewSGD", "skewed_direction"]


def skewed_direction(w: Tensor, g: Tensor, eps: float, alpha: float) -> Tensor:
    """``s_{ε,α}(w, g)`` entry-wise for the binary constraint (see the module docstring)."""
    return velocity_direction(binary_phi(w, eps), binary_dphi(w), g, alpha)


class ASkewSGD(ConstrainedGD):
    """ASkewSGD for binary weights; unconstrained groups take plain base steps.

    It is :class:`~qnnlab.optim.ConstrainedGD` with the binary constraint, the closed-form
    solver and the box ``[−1, 1]``.

    Args:
        params: parameters or param groups; a group with ``constrained=False`` is trained
            in full precision (biases, norms).
        lr: step size ``γ`` (> 0).
        eps: constraint level ``ε`` (> 0); set ``group["eps"]`` each epoch to anneal it.
        alpha: violation decay rate ``α`` (> 0).
        momentum, weight_decay, base, betas, adam_eps: the base step (see
            :class:`qnnlab.optim.SGD`); momentum, decay and Adam act on the skewed direction.
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 0.1,
        *,
        eps: float = 1.0,
        alpha: float = 1.0,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        base: str = "sgd",
        betas: tuple[float, float] = (0.9, 0.999),
        adam_eps: float = 1e-8,
    ) -> None:
        super().__init__(
            params,
            lr,
            constraint=BinaryConstraint(),
            eps=eps,
            alpha=alpha,
            solver="closed_form",
            box=1.0,
            momentum=momentum,
            weight_decay=weight_decay,
            base=base,
            betas=betas,
            adam_eps=adam_eps,
        )
