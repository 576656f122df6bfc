"""BinaryConnect binarization (Courbariaux, Bengio & David, NeurIPS 2015, arXiv:1511.00363).

Deterministic: ``w_b = sign(w)`` (``sign(0) = +1``).
Stochastic: ``w_b = +1`` with probability ``σ(w)``, else ``−1``, where
``σ(x) = clip((x + 1)/2, 0, 1)`` is the hard sigmoid; ``E[w_b] = clip(w, −1, 1)``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from qnnlab.quant.grids import sign

__all__ = ["binarize_deterministic", "binarize_from", "binarize_stochastic", "hard_sigmoid"]


def hard_sigmoid(x: Tensor) -> Tensor:
    """``σ(x) = clip((x + 1)/2, 0, 1)``."""
    return ((x + 1) / 2).clamp(0, 1)


def binarize_deterministic(w: Tensor) -> Tensor:
    return sign(w)


def binarize_stochastic(w: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """One draw of ``2·Bernoulli(σ(w)) − 1``."""
    return binarize_from(w, torch.rand(w.shape, generator=generator, dtype=w.dtype, device=w.device))


def binarize_from(w: Tensor, u: Tensor) -> Tensor:
    """``+1`` where the uniform draw ``u < σ(w)``, else ``−1`` (entry-wise)."""
    return torch.where(u < hard_sigmoid(w), 1.0, -1.0).to(w.dtype)
