"""Constraints ``φ(w) ≥ 0`` that keep weights near a quantization grid (ASkewSGD, §1.1).

Binary case, one constraint per weight:

.. math::
    \\varphi_\\varepsilon(w) = \\varepsilon - (w^2 - 1)^2 \\ge 0, \\qquad
    \\varphi_\\varepsilon'(w) = -4w(w^2 - 1).

For ``ε < 1`` the feasible set ``C_ε`` is ``√(1-√ε) ≤ |w| ≤ √(1+√ε)``, two intervals
that shrink to ``{±1}`` as ``ε → 0``; for ``ε ≥ 1`` it is ``|w| ≤ √(1+√ε)``, so with the
``[-1, 1]`` box the constraint is inactive.

k-bit case, in grid units ``u = w/Δ`` (the levels are the integers ``−m..m``): with ``a`` the
nearest level of ``u`` and ``b`` the second nearest (``a ± 1``, the neighbour on ``u``'s side,
or the one inside the grid when ``a = ±m``),

.. math::
    \\varphi_\\varepsilon(u) = \\varepsilon - (u - a)^2 (u - b)^2, \\qquad
    \\varphi_\\varepsilon'(u) = -2(u - a)(u - b)(2u - a - b).

On a cell ``[a, b]`` the product peaks at ``1/16`` (the midpoint), so ``ε ≥ 1/16`` makes the
constraint inactive; for ``ε < 1/16``, ``C_ε`` is ``{u : dist(u, ℤ) ≤ r_ε}`` with
``r_ε = (1 − √(1 − 4√ε))/2`` (solve ``t(1 − t) = √ε`` for the distance ``t`` to the nearest level).
The derivative vanishes on the levels and at the midpoints. Beyond the outer levels
(``|u| > m``) the product grows without bound, so the constraint also pulls ``u`` back to ``[−m, m]``.

A :class:`Constraint` maps the flat vector ``w`` of a parameter group and the level ``ε``
to the vector of constraint values. A *separable* one (``φ_i`` depends on ``w_i`` only)
also gives the entry-wise derivative, which lets the velocity projection be solved in
closed form (:func:`qnnlab.optim.constrained_gd.velocity_direction`).

Reference: Leconte, Schechtman & Moulines, "ASkewSGD: an annealed interval-constrained
optimisation method to train quantized neural networks", AISTATS 2023, arXiv:2211.03741.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Protocol

import torch
from torch import Tensor

__all__ = [
    "BinaryConstraint",
    "Constraint",
    "FunctionConstraint",
    "binary_dphi",
    "binary_feasible",
    "binary_phi",
    "grid_phi",
    "kbit_constraint",
    "kbit_dphi",
    "kbit_feasible_radius",
    "kbit_phi",
]


def binary_phi(w: Tensor, eps: float | Tensor) -> Tensor:
    """``φ_ε(w) = ε − (w² − 1)²``."""
    return eps - (w * w - 1).square()


def binary_dphi(w: Tensor) -> Tensor:
    """``φ'_ε(w) = −4w(w² − 1)`` (independent of ε)."""
    return -4 * w * (w * w - 1)


def binary_feasible(w: Tensor, eps: float | Tensor) -> Tensor:
    """Boolean mask of the entries in ``C_ε`` (``φ_ε(w) ≥ 0``)."""
    return binary_phi(w, eps) >= 0


def _cell(u: Tensor, top: int) -> tuple[Tensor, Tensor]:
    """``(u − a, u − b)``: offsets to the nearest and the second-nearest of the levels ``−top..top``."""
    a = torch.round(u).clamp_(-top, top)
    side = torch.sign(u - a)
    b = a + side
    b = torch.where(b.abs() > top, a - side, b)
    return u - a, u - b


def kbit_constraint(u: Tensor, eps: float | Tensor, top: int) -> tuple[Tensor, Tensor]:
    """``(φ_ε(u), φ'_ε(u))`` of the k-bit constraint in grid units, levels ``−top..top``, from one cell lookup."""
    da, db = _cell(u, top)
    prod = da * db
    return eps - prod.square(), -2 * prod * (da + db)


def kbit_phi(u: Tensor, eps: float | Tensor, top: int) -> Tensor:
    """``φ_ε(u) = ε − (u − a)²(u − b)²`` in grid units, levels ``−top..top`` (``a``, ``b``: the two nearest)."""
    return kbit_constraint(u, eps, top)[0]


def kbit_dphi(u: Tensor, top: int) -> Tensor:
    """``φ'_ε(u) = −2(u − a)(u − b)(2u − a − b)`` (independent of ε)."""
    return kbit_constraint(u, 0.0, top)[1]


def kbit_feasible_radius(eps: float) -> float:
    """``r_ε``: ``C_ε`` holds the points within ``r_ε`` of a level (``1/2``, everything, for ``ε ≥ 1/16``)."""
    if eps >= 1 / 16:
        return 0.5
    return (1 - math.sqrt(1 - 4 * math.sqrt(eps))) / 2


def grid_phi(u: Tensor, eps: float | Tensor, bits: int) -> Tensor:
    """The constraint of the ``bits``-bit grid in grid units: :func:`binary_phi` or :func:`kbit_phi`."""
    return binary_phi(u, eps) if bits == 1 else kbit_phi(u, eps, 2 ** (bits - 1) - 1)


class Constraint(Protocol):
    separable: bool

    def values(self, w: Tensor, eps: float) -> Tensor:
        """Constraint values ``φ(w)`` (feasible where ``≥ 0``) for a flat ``w``."""
        ...


@dataclass(frozen=True)
class BinaryConstraint:
    """``φ_ε(w_i) = ε − (w_i² − 1)²`` for every coordinate: separable."""

    separable: ClassVar[bool] = True

    def values(self, w: Tensor, eps: float) -> Tensor:
        return binary_phi(w, eps)

    def derivative(self, w: Tensor, eps: float) -> Tensor:
        return binary_dphi(w)


@dataclass(frozen=True)
class FunctionConstraint:
    """Any differentiable ``fn(w, ε) -> (m,)`` values; its Jacobian comes from autograd."""

    fn: Callable[[Tensor, float], Tensor]
    separable: ClassVar[bool] = False

    def values(self, w: Tensor, eps: float) -> Tensor:
        return self.fn(w, eps)
