"""The exact binary optimum ``min_{w ∈ {±1}^m} f(w)`` of a convex loss, by best-first branch-and-bound.

A node fixes some coordinates to ±1 and leaves the others free in ``[−1, 1]``; its bound ``L`` is the
certified box relaxation of :mod:`qnnlab.certify.box` at a point ``u`` with gradient ``g``.

1. **Incumbent** ``U``: the root relaxation's signs and each sign vector the caller supplies (e.g. the
   trained methods' ``Q(w)``), each improved by greedy single flips (the best flip while one lowers
   ``f``); then each node's rounded relaxation, improved the same way whenever it beats ``U``.
2. **Best first**: the open node of lowest ``L`` is expanded, until that ``L`` is within ``tol·max(1, |U|)``
   of ``U`` (optimal) or a time or node limit is hit (the lowest bound left is then the certified one).
3. **Reduced-cost fixing**: moving free ``w_j`` to the side that ``g_j`` opposes raises the linear bound
   by ``2|g_j|``; if ``L + 2|g_j| ≥ U`` (within ``tol``) no better point has that sign, and ``w_j`` is fixed
   to the other one, ``−sign g_j``. The node's bound is unchanged (it is valid for any ``u``).
4. **Branching** on the free coordinate with the highest ``(1 − u_j²) / [(H_FF)^{-1}]_jj``, ``H = ∇²f(u)``
   on the free set ``F``: under the quadratic model of ``f``, re-optimizing the other free coordinates,
   pushing ``u_j`` to ``±1`` raises ``f`` by ``(1 ∓ u_j)² / (2 [(H_FF)^{-1}]_jj)``; the score is the square
   root of the product of the two children's increases. Both children are relaxed at once, warm-started at ``u``.

The lower bound returned is the least bound of every open or discarded node (and ``U``), so it is
certified even when the search is cut short; the gap ``(U − L)/|L|`` then bounds how far ``U`` can be
from the optimum.

References:
    Land & Doig, "An automatic method of solving discrete programming problems", Econometrica 28,
    1960 (branch-and-bound). Nemhauser & Wolsey, *Integer and Combinatorial Optimization*, Wiley 1988,
    §II.5 (reduced-cost fixing).
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from qnnlab.certify.box import Relaxation, _ridged, certified_gap, relax
from qnnlab.certify.objectives import LinearObjective

__all__ = ["Certificate", "certify"]

Status = Literal["optimal", "time_limit", "node_limit"]


@dataclass(frozen=True)
class Certificate:
    """What :func:`certify` proved: the best sign vector found, its loss, and a certified lower bound."""

    status: Status  # "optimal": value is the binary optimum (within tol); else the limit that stopped it
    weights: Tensor  # the best point of {±1}^m found (float64), flat in the model's parameter order
    value: float  # f(weights)
    lower: float  # certified lower bound on min over {±1}^m of f
    box_lower: float  # the root's bound: the certified box relaxation f_box
    nodes: int  # relaxations solved
    seconds: float

    @property
    def gap(self) -> float:
        """``(value − lower)/|lower|``: at most ``tol`` (relative) when optimal."""
        return certified_gap(self.value, self.lower)


def _signs(u: np.ndarray) -> np.ndarray:
    return np.where(u >= 0, 1.0, -1.0)  # sign(0) = +1


class _Search:
    """The incumbent, improved by greedy single flips, and the least bound of the discarded nodes."""

    def __init__(self, objective: LinearObjective, tol: float) -> None:
        self.objective = objective
        self.tol = tol
        self.flips = 1.0 - 2.0 * np.eye(objective.dim)
        self.best = np.ones(objective.dim)
        self.value = math.inf
        self.floor = math.inf

    def threshold(self) -> float:
        """Bounds at or above this cannot hold a point better than the incumbent (beyond ``tol``)."""
        return self.value - self.tol * max(1.0, abs(self.value))

    def offer(self, q: np.ndarray) -> None:
        value = self.objective.value(q)
        if value >= self.value:
            return
        while True:
            candidates = q * self.flips  # row j: q with w_j flipped
            values = self.objective.values(candidates)
            j = int(np.argmin(values))
            if values[j] >= value:
                break
            q, value = candidates[j], float(values[j])
        self.best, self.value = q, self.objective.value(q)  # as a single point rounds it, as callers will

    def discard(self, bound: float) -> None:
        self.floor = min(self.floor, bound)


def _fix(rel: Relaxation, lo: np.ndarray, hi: np.ndarray, search: _Search) -> tuple[np.ndarray, np.ndarray]:
    """Reduced-cost fixing: free coordinates whose other sign bounds at or above the threshold are fixed."""
    cost = rel.lower + 2.0 * np.abs(rel.grad)  # the bound of the half with w_j = sign g_j
    fix = (lo < hi) & (cost >= search.threshold())
    if fix.any():
        search.discard(float(cost[fix].min()))
        side = np.where(rel.grad > 0, lo, hi)
        lo, hi = np.where(fix, side, lo), np.where(fix, side, hi)
    return lo, hi


def _branch(
    objective: LinearObjective, rel: Relaxation, lo: np.ndarray, hi: np.ndarray
) -> tuple[int, list[np.ndarray]]:
    """The free ``j`` maximizing ``(1 − u_j²)/[(H_FF)^{-1}]_jj`` over the coordinates ``F`` strictly inside
    the box (the first free one if there are none: every free coordinate on a bound scores 0), and the
    children's starts for ``w_j = −1, +1``: ``u + (±1 − u_j)·(H_FF)^{-1}e_j/[(H_FF)^{-1}]_jj`` on ``F``, the
    minimizer of the quadratic model of ``f`` with ``u_j`` moved to that side."""
    u = rel.point
    inside = np.flatnonzero((u > lo) & (u < hi))
    if inside.size == 0:
        return int(np.flatnonzero(lo < hi)[0]), [u, u]
    inverse = np.linalg.inv(_ridged(objective.hessian(u, inside)))
    k = int(np.argmax((1.0 - u[inside] ** 2) / np.diag(inverse)))
    j = int(inside[k])
    starts = []
    for side in (-1.0, 1.0):
        start = u.copy()
        start[inside] += (side - u[j]) * inverse[:, k] / inverse[k, k]
        starts.append(start)
    return j, starts


def _incumbents(points: Iterable[Tensor | np.ndarray], dim: int) -> list[np.ndarray]:
    out = []
    for i, p in enumerate(points):
        q = np.asarray(p.detach().cpu() if isinstance(p, Tensor) else p, dtype=np.float64).reshape(-1)
        if q.size != dim or not np.isin(q, (-1.0, 1.0)).all():
            raise ValueError(f"incumbents[{i}]: expected {dim} entries, each -1 or +1")
        out.append(q)
    return out


def certify(
    objective: LinearObjective,
    *,
    incumbents: Iterable[Tensor | np.ndarray] = (),
    time_limit: float = 60.0,
    max_nodes: int | None = None,
    tol: float = 1e-9,
) -> Certificate:
    """The binary optimum of ``objective`` over ``{±1}^m``, or the best point and a certified bound at a limit.

    Args:
        objective: a convex loss of a bias-free linear model (:func:`qnnlab.certify.linear_objective`).
        incumbents: sign vectors to start from (each flattens to ``m`` entries of ±1), e.g. trained ``Q(w)``.
        time_limit: seconds (wall clock) after which the search stops with ``status = "time_limit"``.
        max_nodes: relaxations after which it stops with ``status = "node_limit"`` (default: no limit).
        tol: optimal means within ``tol·max(1, |f*|)`` of the optimum ``f*``.

    Example:
        >>> cert = certify(linear_objective("logistic", x, y), incumbents=[q], time_limit=10)  # doctest: +SKIP
        >>> cert.status, cert.value, cert.lower, cert.gap  # doctest: +SKIP
    """
    if not time_limit > 0:
        raise ValueError(f"Invalid time_limit: {time_limit}; expected seconds > 0")
    if max_nodes is not None and max_nodes < 1:
        raise ValueError(f"Invalid max_nodes: {max_nodes}; expected >= 1 or None")
    if not tol >= 0:
        raise ValueError(f"Invalid tol: {tol}; expected >= 0")
    starts = _incumbents(incumbents, objective.dim)
    t0 = time.perf_counter()
    ones = np.ones(objective.dim)
    root = relax(objective, -ones, ones)
    search = _Search(objective, tol)
    for q in (_signs(root.point), *starts):
        search.offer(q)
    heap = [(root.lower, 0, -ones, ones, root)]
    nodes, status = 1, "optimal"
    while heap and heap[0][0] < search.threshold():
        if time.perf_counter() - t0 > time_limit:
            status = "time_limit"
            break
        if max_nodes is not None and nodes >= max_nodes:
            status = "node_limit"
            break
        _, _, lo, hi, rel = heapq.heappop(heap)
        lo, hi = _fix(rel, lo, hi, search)
        free = lo < hi
        if not free.any():
            search.offer(lo)
            continue
        j, warm = _branch(objective, rel, lo, hi)
        for side, start in zip((-1.0, 1.0), warm, strict=True):
            c_lo, c_hi = lo.copy(), hi.copy()
            c_lo[j] = c_hi[j] = side
            child = relax(objective, c_lo, c_hi, start)
            nodes += 1
            search.offer(_signs(child.point))
            if child.lower < search.threshold():
                heapq.heappush(heap, (child.lower, nodes, c_lo, c_hi, child))
            else:
                search.discard(child.lower)
    lower = min(search.value, search.floor, *(h[0] for h in heap))
    return Certificate(
        status,
        torch.from_numpy(search.best.copy()),
        search.value,
        lower,
        root.lower,
        nodes,
        time.perf_counter() - t0,
    )
