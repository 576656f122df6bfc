"""The box relaxation: a certified lower bound on ``min_{w ∈ {±1}^m} f(w)`` for convex ``f``.

Since ``{±1}^m ⊂ [−1, 1]^m``, ``f_box = min_{u ∈ [−1,1]^m} f(u)`` is at most the binary optimum.
A numerical minimizer only approximates ``f_box``; the bound is made valid by convexity
(the Frank–Wolfe duality gap): for a box ``B = [lo, hi]`` and any point ``u``,

.. math::

    \\min_B f \\;\\ge\\; f(u) + \\min_{v \\in B} \\nabla f(u)^\\top (v - u)
    = f(u) + \\sum_j \\min\\{g_j (lo_j - u_j),\\; g_j (hi_j - u_j)\\}, \\qquad g = \\nabla f(u),

however inexact ``u`` is as a minimizer (the bound is tight at the minimizer). ``u`` comes from
projected Newton steps (:func:`relax`); a fixed coordinate is a box side with ``lo_j = hi_j``. The
certified gap of a binary point ``q`` (e.g. a trained ``Q(w)``) is then ``(f(q) − L)/|L|`` for any
such lower bound ``L``.

References:
    Frank & Wolfe, "An algorithm for quadratic programming", Naval Research Logistics
    Quarterly 3, 1956 (the linear-minimization bound). Bertsekas, "Projected Newton methods for
    optimization problems with simple constraints", SIAM J. Control Optim. 20, 1982.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qnnlab.certify.objectives import LinearObjective

__all__ = ["Relaxation", "box_bound", "certified_gap", "duality_gap", "frank_wolfe_bound", "relax"]

# float64 rounding in f and ∇f: the bound is lowered by this much (relative to max(1, |f|))
ROUNDING = 1e-12
RIDGE = 1e-12  # relative to the mean curvature: keeps a flat Hessian block invertible
ARMIJO = 1e-4


@dataclass(frozen=True)
class Relaxation:
    """The relaxation of ``f`` over one box: its (approximate) minimizer, ``f`` and ``∇f`` there, and the
    certified lower bound on ``min_box f``."""

    point: np.ndarray
    value: float
    grad: np.ndarray
    lower: float


def frank_wolfe_bound(value: float, grad: np.ndarray, point: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    """``f(u) + Σ_j min(g_j(lo_j − u_j), g_j(hi_j − u_j))``, less the rounding slack: ``≤ min_{[lo,hi]} f``."""
    linear = np.minimum(grad * (lo - point), grad * (hi - point)).sum()
    return float(value + linear - ROUNDING * max(1.0, abs(value)))


def _ridged(h: np.ndarray) -> np.ndarray:
    """``H + RIDGE·max(1, tr H / k)·I``, in place: invertible even where ``f`` is flat."""
    h.flat[:: len(h) + 1] += RIDGE * max(1.0, float(np.trace(h)) / len(h))
    return h


def duality_gap(grad: np.ndarray, point: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    """``max_{v ∈ [lo,hi]} ∇f(u)·(u − v) ≥ f(u) − min f``: zero exactly at the box's minimizers."""
    return float(-np.minimum(grad * (lo - point), grad * (hi - point)).sum())


def relax(
    objective: LinearObjective,
    lo: np.ndarray,
    hi: np.ndarray,
    start: np.ndarray | None = None,
    *,
    tol: float = 1e-10,
    max_iter: int = 50,
) -> Relaxation:
    """Minimize ``f`` over ``[lo, hi]`` from ``start`` (clipped into the box; default its centre) by projected
    Newton steps, until the duality gap is below ``tol·max(1, |f|)``.

    Each step (after Bertsekas 1982) moves the ε-active coordinates ``A`` (within
    ``ε = min(10⁻³, ‖u − P(u − g)‖_∞)`` of a bound that ``g`` pushes them against) onto that bound, takes
    the Newton step ``−H_FF⁻¹ g_F`` on the other free coordinates ``F``, projects ``u + α p`` on the box,
    and halves ``α`` until ``f(u_α) ≤ f(u) + 10⁻⁴ g·(u_α − u)`` and ``f(u_α) < f(u)``; once the predicted
    decrease is below what float64 ``f`` resolves, a last full step is kept if it raises the bound.
    Newton's quadratic convergence keeps a warm-started node to two or three steps on the
    ill-conditioned problems that correlated features give; on the node boxes of
    ``benchmarks/bench_certify.py`` it needs about a third of SciPy's L-BFGS-B's evaluations of ``f``.
    """
    u = np.clip((lo + hi) / 2 if start is None else start, lo, hi)
    value, grad = objective.value_grad(u)
    fixed = lo == hi
    for _ in range(max_iter):
        if duality_gap(grad, u, lo, hi) <= tol * max(1.0, abs(value)):
            break
        eps = min(1e-3, float(np.abs(np.clip(u - grad, lo, hi) - u).max()))
        held = fixed | ((u <= lo + eps) & (grad > 0)) | ((u >= hi - eps) & (grad < 0))
        free = np.flatnonzero(~held)
        step = np.where(grad > 0, lo, hi) - u  # the held coordinates go onto their bound
        step[fixed] = 0.0
        if free.size:
            step[free] = -np.linalg.solve(_ridged(objective.hessian(u, free)), grad[free])
        if -float(grad @ step) <= 1e-15 * max(1.0, abs(value)):
            # f cannot resolve a decrease this small: keep the full step if it tightens the bound
            cand = np.clip(u + step, lo, hi)
            c_value, c_grad = objective.value_grad(cand)
            if frank_wolfe_bound(c_value, c_grad, cand, lo, hi) > frank_wolfe_bound(value, grad, u, lo, hi):
                u, value, grad = cand, c_value, c_grad
            break
        alpha = 1.0
        while alpha > 1e-10:
            cand = np.clip(u + alpha * step, lo, hi)
            c_value, c_grad = objective.value_grad(cand)
            if c_value <= value + ARMIJO * float(grad @ (cand - u)) and c_value < value:
                break
            alpha /= 2
        else:
            break  # no decrease found: rounding again
        u, value, grad = cand, c_value, c_grad
    return Relaxation(u, value, grad, frank_wolfe_bound(value, grad, u, lo, hi))


def box_bound(objective: LinearObjective) -> Relaxation:
    """The relaxation over ``[−1, 1]^m``: ``.lower`` is the certified ``f_box ≤ min_{{±1}^m} f``."""
    ones = np.ones(objective.dim)
    return relax(objective, -ones, ones)


def certified_gap(value: float, lower: float) -> float:
    """``(f(q) − L)/|L|``: an upper bound on ``q``'s relative gap to the binary optimum when ``L`` is a lower
    bound on it (0 when both are 0, ``inf`` when only ``L`` is)."""
    if lower == 0:
        return 0.0 if value == 0 else float("inf")
    return (value - lower) / abs(lower)
