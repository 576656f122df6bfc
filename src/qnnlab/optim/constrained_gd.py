"""Velocity-constrained first-order method (Muehlebach & Jordan) for ``φ(w) ≥ 0``.

At each step only the violated constraints ``I = {i : φ_i(w) < 0}`` are considered, and the
velocity is the projection of the negative gradient onto the set where they recover at
rate ``α``:

.. math::
    v = \\operatorname*{argmin}_{v} \\tfrac12 \\|v + g\\|^2
        \\quad \\text{s.t.} \\quad \\nabla\\varphi_i(w)^\\top v + \\alpha\\,\\varphi_i(w) \\ge 0
        \\ \\ \\forall i \\in I,
    \\qquad w \\leftarrow w + \\gamma v .

The step direction handed to the base optimizer is ``s = −v``. No projection onto the
feasible set is made; iterates may be infeasible. Two solvers:

- *closed form* for separable constraints (``φ_i`` depends on ``w_i``): the QP splits into
  scalar problems, ``s_i = g_i`` when ``φ_i ≥ 0``, when ``φ'_i = 0`` or when ``−g_i`` already
  satisfies the constraint (``(−g_i)K_i > K_i²``), else ``s_i = −K_i`` with
  ``K_i = −αφ_i/φ'_i``. This is ASkewSGD's skewed direction.
- *QP* for any differentiable constraint: with ``J`` the Jacobian rows of ``I`` (autograd),
  the dual ``min_{λ ≥ 0} ½λᵀJJᵀλ − λᵀ(Jg − αφ_I)`` is solved exactly by
  Cholesky + NNLS (SciPy) and
  ``s = g − Jᵀλ``; violated constraints with a zero gradient are left out, as the closed
  form does at its singular points. It costs a dense ``m × n`` Jacobian: meant for small or coupled problems.

Convention: a constraint at exactly ``φ_i = 0`` counts as satisfied, as in the ASkewSGD
code (Muehlebach & Jordan would impose ``∇φ_iᵀv ≥ 0`` there).

References:
    Muehlebach & Jordan, "On constraints in first-order optimization: a view from
    non-smooth dynamical systems", JMLR 23(256), 2022, arXiv:2107.08225.
    Leconte, Schechtman & Moulines, "ASkewSGD", AISTATS 2023, arXiv:2211.03741.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from scipy.linalg import LinAlgError, cholesky, solve_triangular
from scipy.optimize import nnls
from torch import Tensor
from torch.func import jacrev

from qnnlab.optim._base import EntryRule, QuantOptimizer, check_positive, flat_map
from qnnlab.quant.constraints import BinaryConstraint, Constraint

__all__ = ["SOLVERS", "ConstrainedGD", "qp_direction", "velocity_direction"]

SOLVERS = ("auto", "closed_form", "qp")
# recovery speeds α|φ|/‖∇φ‖ above this are treated as singular: no step that stays in a bounded
# box can take them, and they would swamp the precision of the other multipliers
_MAX_SPEED = 1e8


def velocity_direction(phi: Tensor, dphi: Tensor, g: Tensor, alpha: float, cap: Tensor | None = None) -> Tensor:
    """Closed-form ``s = −v`` for separable constraints, entry-wise (see the module docstring).

    With ``cap``, a corrective step ``−K`` is clamped to ``[−cap, cap]`` (the test ``(−g)K > K²``
    keeps the unclamped ``K``).
    """
    # c = −K = αφ/φ', bit for bit (negation is exact): (−g)K = gc and K² = c², and the step is c
    c = alpha * phi / dphi
    # K is ±inf/nan where φ' = 0 and can overflow where φ' is subnormal: both count as singular
    plain = (phi >= 0) | ~torch.isfinite(c) | (g * c > c * c)
    if cap is not None:
        c = c.clamp(-cap, cap)
    return torch.where(plain, g, c)


def qp_direction(w: Tensor, g: Tensor, constraint: Constraint, eps: float, alpha: float) -> Tensor:
    """``s = −v`` from the QP over the violated constraints, for a flat ``w`` (syncs with the host)."""
    phi = constraint.values(w, eps)
    if not bool((phi < 0).any()):
        return g
    jac = jacrev(lambda x: constraint.values(x, eps))(w)
    # a violated constraint whose gradient is zero, or so small that the recovery speed
    # α|φ|/‖∇φ‖ exceeds _MAX_SPEED, cannot be steered: singular, as φ' = 0 in the closed form
    norms = jac.double().norm(dim=1)
    active = (phi < 0) & (norms * _MAX_SPEED > alpha * phi.double().abs())
    if not bool(active.any()):
        return g
    # unit-norm rows: the same constraints, a well-conditioned dual whatever the scale of ∇φ
    scale = norms[active, None]
    jac = jac[active].double() / scale
    g64 = g.double()
    q = (jac @ jac.T).cpu().numpy()
    c = (jac @ g64 - alpha * phi[active].double() / scale.squeeze(1)).cpu().numpy()
    # ½λᵀQλ − cᵀλ = ½‖Lᵀλ − L⁻¹c‖² + const with Q = LLᵀ: an exact active-set NNLS, whatever the
    # spread of magnitudes in λ
    try:
        chol = cholesky(q, lower=True)
    except LinAlgError:  # dependent rows: a tiny ridge makes Q positive definite
        chol = cholesky(q + 1e-12 * np.eye(len(c)), lower=True)
    lam_np, _ = nnls(chol.T, solve_triangular(chol, c, lower=True), maxiter=50 * len(c))
    lam = torch.as_tensor(lam_np, dtype=torch.float64, device=w.device)
    return (g64 - jac.T @ lam).to(g.dtype)


def separable_direction(w: Tensor, g: Tensor, *, eps: float, alpha: float, constraint: Constraint) -> Tensor:
    """The closed form for a separable ``constraint`` (static), entry-wise."""
    return velocity_direction(constraint.values(w, eps), constraint.derivative(w, eps), g, alpha)


def box_clamp(w: Tensor, *, box: float) -> Tensor:
    """``clamp(w, −box, box)``."""
    return w.clamp(-box, box)


class ConstrainedGD(QuantOptimizer):
    """Muehlebach–Jordan steps on ``φ(w) ≥ 0`` for each constrained group.

    Args:
        params: parameters or param groups (``constrained=False`` for plain steps).
        lr: step size ``γ`` (> 0).
        constraint: a :class:`~qnnlab.quant.constraints.Constraint` over the flat vector of a
            group's weights (default: the binary constraint ``φ_ε``).
        eps: level ``ε`` passed to the constraint (> 0); set ``group["eps"]`` to anneal it.
        alpha: violation decay rate ``α`` (> 0).
        solver: ``"closed_form"`` (separable constraints only), ``"qp"``, or ``"auto"``.
        box: clamp constrained weights to ``[−box, box]`` after each step (``None``: no clamp).
        momentum, weight_decay, base, betas, adam_eps, fused: the base step.
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 0.1,
        *,
        constraint: Constraint | None = None,
        eps: float = 1.0,
        alpha: float = 1.0,
        solver: str = "auto",
        box: float | None = 1.0,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        base: str = "sgd",
        betas: tuple[float, float] = (0.9, 0.999),
        adam_eps: float = 1e-8,
        fused: bool | None = None,
    ) -> None:
        check_positive("eps", eps)
        check_positive("alpha", alpha)
        if box is not None:
            check_positive("box", box)
        self.constraint = constraint if constraint is not None else BinaryConstraint()
        if solver not in SOLVERS:
            raise ValueError(f"Invalid solver: {solver!r}; choose from: {', '.join(SOLVERS)}")
        if solver == "closed_form" and not self.constraint.separable:
            raise ValueError("Invalid solver: 'closed_form' needs a separable constraint; use 'qp' or 'auto'")
        super().__init__(
            params,
            {"eps": eps, "alpha": alpha, "solver": solver, "box": box},
            lr=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            base=base,
            betas=betas,
            adam_eps=adam_eps,
            fused=fused,
        )

    def _rule(self, group: dict[str, Any], params: list[Tensor], targets: list[Tensor]) -> EntryRule:
        eps, alpha, con, box = group["eps"], group["alpha"], self.constraint, group["box"]
        scalars = {"eps": eps, "alpha": alpha, **({"box": box} if box is not None else {})}
        project = box_clamp if box is not None else None
        if group["solver"] == "qp" or not con.separable:

            def qp(ts: list[Tensor], gs: list[Tensor]) -> list[Tensor]:
                return flat_map(lambda w, g: qp_direction(w, g, con, eps, alpha), ts, gs)

            return EntryRule(project=project, scalars=scalars, direction_lists=qp)
        return EntryRule(direction=separable_direction, project=project, scalars=scalars, static={"constraint": con})
