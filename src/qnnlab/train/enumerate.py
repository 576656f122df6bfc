"""The certified binary optimum ``min_{w ∈ {±1}^d} f(w)``, by exhaustive enumeration.

All ``2^d`` sign vectors are scored in chunks of matrix products (no loop over vectors),
in float64 so that the ranking is exact to well below any reported gap.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["MAX_ENUM_DIM", "binary_minimum", "logistic_losses"]

MAX_ENUM_DIM = 20


def binary_minimum(losses: Callable[[Tensor], Tensor], d: int, *, chunk: int = 1 << 14) -> tuple[float, Tensor]:
    """``(min f, argmin)`` over ``{±1}^d``, where ``losses`` maps ``(m, d)`` candidates to ``(m,)``.

    Candidate ``i`` has entry ``j`` equal to ``+1`` iff bit ``j`` of ``i`` is set.
    """
    if not 1 <= d <= MAX_ENUM_DIM:
        raise ValueError(f"Invalid d: {d}; enumeration needs 1 <= d <= {MAX_ENUM_DIM}")
    powers = torch.arange(d)
    best, best_w = float("inf"), torch.empty(0)
    for start in range(0, 1 << d, chunk):
        idx = torch.arange(start, min(start + chunk, 1 << d))
        cand = ((idx[:, None] >> powers) & 1).to(torch.float64) * 2 - 1
        vals = losses(cand)
        i = int(vals.argmin())
        if float(vals[i]) < best:
            best, best_w = float(vals[i]), cand[i]
    return best, best_w


def logistic_losses(x: Tensor, y: Tensor) -> Callable[[Tensor], Tensor]:
    """``W ↦ mean_i [softplus(x_i·w) − y_i·x_i·w]`` for each row ``w`` of ``W`` (no bias)."""
    x64, y64 = x.to(torch.float64), y.to(torch.float64)

    def losses(w: Tensor) -> Tensor:
        o = x64 @ w.to(torch.float64).T
        return (F.softplus(o) - y64[:, None] * o).mean(0)

    return losses
