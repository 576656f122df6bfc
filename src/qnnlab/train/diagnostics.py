"""Per-epoch optimization diagnostics of the quantized tensors.

With ``w`` the concatenated constrained weights and ``Q`` the grid projection:

- ``grid_dist``: mean ``|w − Q(w)|``;
- ``near_grid``: fraction of entries with ``|w − Q(w)| ≤ 0.05``;
- ``feasible``: fraction inside ``C_ε = {w : φ_ε(w) ≥ 0}`` (methods with an ``ε`` only).
"""

from __future__ import annotations

import torch
from torch import Tensor

from qnnlab.quant.constraints import binary_feasible
from qnnlab.quant.grids import Grid

__all__ = ["NEAR_GRID_TOL", "weight_diagnostics"]

NEAR_GRID_TOL = 0.05


def weight_diagnostics(w: list[Tensor], grid: Grid, eps: float | None) -> dict[str, Tensor]:
    """Diagnostics above as 0-d tensors (read them once per epoch)."""
    flat = torch.cat([t.reshape(-1) for t in w])
    dist = grid.distance(flat)
    out = {"grid_dist": dist.mean(), "near_grid": (dist <= NEAR_GRID_TOL).float().mean()}
    if eps is not None:
        out["feasible"] = binary_feasible(flat, eps).float().mean()
    return out
