"""Constraints ``φ(w) ≥ 0`` that keep weights near a quantization grid (ASkewSGD, §1.1).

Binary case, one constraint per weight:

.. math::
    \\varphi_\\varepsilon(w) = \\varepsilon - (w^2 - 1)^2 \\ge 0, \\qquad
    \\varphi_\\varepsilon'(w) = -4w(w^2 - 1).

For ``ε < 1`` the feasible set ``C_ε`` is ``√(1-√ε) ≤ |w| ≤ √(1+√ε)``, two intervals
that shrink to ``{±1}`` as ``ε → 0``; for ``ε ≥ 1`` it is ``|w| ≤ √(1+√ε)``, so with the
``[-1, 1]`` box the constraint is inactive.

A :class:`Constraint` maps the flat vector ``w`` of a parameter group and the level ``ε``
to the vector of constraint values. A *separable* one (``φ_i`` depends on ``w_i`` only)
also gives the entry-wise derivative, which lets the velocity projection be solved in
closed form (:func:`qnnlab.optim.constrained_gd.velocity_direction`).

Reference: Leconte, Schechtman & Moulines, "ASkewSGD: an annealed interval-constrained
optimisation method to train quantized neural networks", AISTATS 2023, arXiv:2211.03741.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Protocol

from torch import Tensor

__all__ = ["BinaryConstraint", "Constraint", "FunctionConstraint", "binary_dphi", "binary_feasible", "binary_phi"]


def binary_phi(w: Tensor, eps: float | Tensor) -> Tensor:
    """``φ_ε(w) = ε − (w² − 1)²``."""
    return eps - (w * w - 1).square()


def binary_dphi(w: Tensor) -> Tensor:
    """``φ'_ε(w) = −4w(w² − 1)`` (independent of ε)."""
    return -4 * w * (w * w - 1)


def binary_feasible(w: Tensor, eps: float | Tensor) -> Tensor:
    """Boolean mask of the entries in ``C_ε`` (``φ_ε(w) ≥ 0``)."""
    return binary_phi(w, eps) >= 0


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
