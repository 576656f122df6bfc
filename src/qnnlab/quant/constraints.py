"""Smoothed interval constraints around a quantization grid (ASkewSGD, §1.1).

Binary case, one constraint per weight:

.. math::
    \\varphi_\\varepsilon(w) = \\varepsilon - (w^2 - 1)^2 \\ge 0, \\qquad
    \\varphi_\\varepsilon'(w) = -4w(w^2 - 1).

For ``ε < 1`` the feasible set ``C_ε`` is ``√(1-√ε) ≤ |w| ≤ √(1+√ε)``, two intervals
that shrink to ``{±1}`` as ``ε → 0``; for ``ε ≥ 1`` it is ``|w| ≤ √(1+√ε)``, so with the
``[-1, 1]`` box the constraint is inactive.

Reference: Leconte, Schechtman & Moulines, "ASkewSGD: an annealed interval-constrained
optimisation method to train quantized neural networks", AISTATS 2023, arXiv:2211.03741.
"""

from __future__ import annotations

from torch import Tensor

__all__ = ["binary_dphi", "binary_feasible", "binary_phi"]


def binary_phi(w: Tensor, eps: float | Tensor) -> Tensor:
    """``φ_ε(w) = ε − (w² − 1)²``."""
    return eps - (w * w - 1).square()


def binary_dphi(w: Tensor) -> Tensor:
    """``φ'_ε(w) = −4w(w² − 1)`` (independent of ε)."""
    return -4 * w * (w * w - 1)


def binary_feasible(w: Tensor, eps: float | Tensor) -> Tensor:
    """Boolean mask of the entries in ``C_ε`` (``φ_ε(w) ≥ 0``)."""
    return binary_phi(w, eps) >= 0
