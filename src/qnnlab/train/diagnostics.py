"""Per-epoch optimization diagnostics of the quantized tensors.

With ``w`` the concatenated constrained weights, ``Q(w)`` the point each is judged at, ``s``
its tensor's grid scale (``Q(w)/s`` is a level of the unit grid; ``s = 1`` for binary runs),
``u = w/s`` the weights in grid units, ``f`` the training loss and ``X = C_ε ∩ B`` the feasible
set in grid units (``B = [min level, max level]^n`` the unit grid's box,
``C_ε = {u : φ_ε(u) ≥ 0}`` for methods with an ``ε``, ``ℝ^n`` otherwise; ``φ_ε`` is the binary
or the k-bit constraint of :mod:`qnnlab.quant.constraints`):

- ``grid_dist``: mean ``|u − Q(w)/s|``; ``near_grid``: fraction with ``|u − Q(w)/s| ≤ 0.05``
  (grid units: the same numbers as ``|w − Q(w)|`` on the binary grid);
- ``quant_error``: ``‖w − Q(w)‖₂`` (weight units); ``q_loss_gap``: ``f(Q(w)) − f(w)`` (the loop
  computes it from the train losses);
- with an ``ε``: ``feasible``, the fraction of entries in ``C_ε``, and ``violation_max`` /
  ``violation_mean`` of ``[−φ_ε(u)]₊`` (``max((w² − 1)² − ε, 0)`` for the binary constraint);
- ``stationarity``: a first-order stationarity measure of ``min_{w ∈ X} f(w)``, zero exactly
  at its KKT points. Let ``w̄ = P_X(w)`` (the nearest feasible point; infeasibility is
  measured by the violation above) and ``g = ∇f(w̄)``. The measure is the norm of the
  gradient mapping at resolution ``γ``

  .. math::
      r_\\gamma(w) = \\big\\| \\big(\\bar w - P_X(\\bar w - \\gamma g)\\big)/\\gamma \\big\\|_2 ,

  with the unconstrained parameters (biases) contributing ``‖∇_b f‖``. ``X`` is a product
  of unions of intervals, so ``P_X`` acts entry-wise (``P(w) = sign(w)·clamp(|w|, a, 1)`` with
  ``a = √max(1 − √ε, 0)`` for the binary constraint and the box ``[−1, 1]``; for the k-bit one,
  the box and then at most ``r_ε`` from the nearest level), and whenever
  ``γ|g_i|`` is below the distance from ``w̄_i`` to the nearest endpoint it is not on,
  ``r_γ`` equals ``‖P_{T_X(w̄)}(−g)‖``, the norm of the projected gradient onto the tangent
  cone of ``X`` at ``w̄`` (each coordinate's cone is ``ℝ`` inside an interval, a half-line
  at an endpoint, ``{0}`` on a degenerate interval). Unlike the tangent-cone norm itself,
  ``r_γ`` is continuous in ``w̄``, so an iterate that hovers within ``γ|g_i|`` of an active
  bound (as ASkewSGD's do) is not counted as far from stationary. We use ``γ = 1``. With
  per-tensor scales the problem is posed in the weights: ``X_w = s·X``, ``P_{X_w}(w) = s·P_X(w/s)``.
  References: Ghadimi, Lan & Zhang, "Mini-batch stochastic approximation methods for
  nonconvex stochastic composite optimization", Math. Programming 155, 2016
  (arXiv:1308.6594), for the gradient mapping; Nocedal & Wright, "Numerical Optimization",
  2nd ed., 2006, §12.2, for tangent cones and KKT points.

The gradient is taken full-batch on the first :data:`DIAG_MAX_SAMPLES` training rows (the
whole split for the toy data). An optimizer may expose more diagnostics (a primal-dual
method's multipliers and its Lagrangian stationarity) through an optional method
``diagnostics() -> dict[str, Tensor]`` of 0-d tensors: the loop calls it once per epoch
right after putting the full-batch gradient of ``f`` at the current parameters in every
``p.grad``, and stores its values with the epoch's metrics.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.optim import Optimizer

from qnnlab.quant.constraints import grid_phi, kbit_feasible_radius
from qnnlab.quant.grids import Grid, sign
from qnnlab.train.evaluate import Metric, loss_fn, loss_gradient

__all__ = [
    "DIAG_MAX_SAMPLES",
    "NEAR_GRID_TOL",
    "STATIONARITY_STEP",
    "feasible_projection",
    "gradient_mapping",
    "histogram_edges",
    "model_stationarity",
    "optimizer_diagnostics",
    "stationarity",
    "violation",
    "weight_diagnostics",
    "weight_histogram",
]

NEAR_GRID_TOL = 0.05
STATIONARITY_STEP = 1.0
DIAG_MAX_SAMPLES = 10_000
# histogram bins per grid step for the binary/ternary grid; fewer for finer grids
_BINS_PER_UNIT = 20


def violation(u: Tensor, eps: float, bits: int = 1) -> Tensor:
    """``[−φ_ε(u)]₊`` entry-wise, in grid units (the binary constraint for ``bits = 1``, else the k-bit one)."""
    return (-grid_phi(u, eps, bits)).clamp_min(0)


def feasible_projection(u: Tensor, grid: Grid, eps: float | None) -> Tensor:
    """``P_X(u)`` entry-wise in grid units, ``X = C_ε ∩ B`` (``B`` the unit grid's box; no ``C_ε`` if ``eps`` is None).

    Binary with ``ε``: ``X = {a ≤ |u| ≤ 1}`` with ``a = √max(1 − √ε, 0)``; ``u = 0`` goes to ``+a``.
    k-bit with ``ε``: the box, then at most ``r_ε`` from the nearest level.
    """
    levels = grid.levels(u.dtype)
    box = u.clamp(float(levels[0]), float(levels[-1]))
    if eps is None:
        return box
    if grid.bits == 1:
        inner = math.sqrt(max(1 - math.sqrt(eps), 0.0))
        return sign(u) * u.abs().clamp(inner, 1.0)
    r = kbit_feasible_radius(eps)
    nearest = torch.round(box)
    return nearest + (box - nearest).clamp(-r, r)


def gradient_mapping(
    w_bar: Tensor, g: Tensor, grid: Grid, eps: float | None, step: float, scale: Tensor | float = 1.0
) -> Tensor:
    """``(w̄ − P_{X_w}(w̄ − γg))/γ`` entry-wise, ``P_{X_w}(w) = s·P_X(w/s)`` with ``s = scale``."""
    return (w_bar - scale * feasible_projection((w_bar - step * g) / scale, grid, eps)) / step


def stationarity(
    w_bar: Tensor,
    g: Tensor,
    grid: Grid,
    eps: float | None,
    *,
    step: float = STATIONARITY_STEP,
    g_free: Tensor | None = None,
    scale: Tensor | float = 1.0,
) -> Tensor:
    """``r_γ = ‖gradient_mapping‖₂``, with the unconstrained gradient ``g_free`` added in norm."""
    sq = gradient_mapping(w_bar, g, grid, eps, step, scale).square().sum()
    if g_free is not None:
        sq = sq + g_free.square().sum()
    return sq.sqrt()


def weight_diagnostics(
    w: Tensor, q: Tensor, grid: Grid, eps: float | None, scale: Tensor | float = 1.0
) -> dict[str, Tensor]:
    """The weight-only diagnostics above as 0-d tensors, from flat ``w``, ``Q(w)`` and per-entry scales.

    ``grid`` is the unit grid (``get_grid(bits)``); read the values once per epoch.
    """
    diff = w - q
    dist = diff.abs() / scale
    out = {
        "grid_dist": dist.mean(),
        "near_grid": (dist <= NEAR_GRID_TOL).float().mean(),
        "quant_error": diff.square().sum().sqrt(),
    }
    if eps is not None:
        v = violation(w / scale, eps, grid.bits)
        out["feasible"] = (v == 0).float().mean()
        out["violation_max"], out["violation_mean"] = v.max(), v.mean()
    return out


def model_stationarity(
    model: nn.Module,
    weights: dict[str, Tensor],
    names: list[str],
    grid: Grid,
    eps: float | None,
    x: Tensor,
    y: Tensor,
    scales: dict[str, Tensor] | None = None,
    loss: Metric = loss_fn,
) -> Tensor:
    """``r_γ`` of the model's training problem (``loss`` on ``(x, y)``) at ``weights``.

    The constrained tensors are those in ``names``, with grid scales ``scales``.
    """
    scales = scales or {}
    s = {n: scales.get(n, 1.0) for n in names}
    projected = {n: s[n] * feasible_projection(w / s[n], grid, eps) if n in names else w for n, w in weights.items()}
    grads = loss_gradient(model, projected, x[:DIAG_MAX_SAMPLES], y[:DIAG_MAX_SAMPLES], loss)
    w_bar = torch.cat([projected[n].reshape(-1) for n in names])
    g = torch.cat([grads[n].reshape(-1) for n in names])
    scale = torch.cat(
        [torch.as_tensor(s[n], dtype=w_bar.dtype, device=w_bar.device).expand(weights[n].numel()) for n in names]
    )
    free = [grads[n].reshape(-1) for n in grads if n not in names]
    return stationarity(w_bar, g, grid, eps, g_free=torch.cat(free) if free else None, scale=scale)


def optimizer_diagnostics(
    model: nn.Module, optimizer: Optimizer, x: Tensor, y: Tensor, loss: Metric = loss_fn
) -> dict[str, Tensor]:
    """The optimizer's own ``diagnostics()``, given the full-batch gradient of ``loss`` in ``p.grad`` ({} without)."""
    hook = getattr(optimizer, "diagnostics", None)
    if hook is None:
        return {}
    optimizer.zero_grad(set_to_none=True)
    with torch.enable_grad():
        loss(model(x[:DIAG_MAX_SAMPLES]), y[:DIAG_MAX_SAMPLES]).backward()
    return dict(hook())


def histogram_edges(grid: Grid) -> Tensor:
    """Fixed bin edges over ``[−1.5L, 1.5L]`` (``L`` the largest level), one bin centred on each level.

    The bin width is ``s/k`` (``s`` the grid step, ``k = max(1, 20 // m)``, ``m`` the number
    of positive levels), so the binary grid gets 61 bins of width 0.05 centred on
    ``−1.5, −1.45, ..., 1.5``.
    """
    levels = grid.levels(torch.float64)
    positive = int((levels > 0).sum())
    top = float(levels[-1])
    width = top / positive / max(1, _BINS_PER_UNIT // positive)
    half = math.ceil(1.5 * top / width - 1e-9)
    return (torch.arange(-half, half + 2, dtype=torch.float64) - 0.5) * width


def weight_histogram(w: Tensor, edges: Tensor) -> Tensor:
    """Counts of ``w`` over ``edges`` (equal bins); values outside go to the first / last bin."""
    lo, hi = float(edges[0]), float(edges[-1])
    return torch.histc(w.detach().clamp(lo, hi), bins=len(edges) - 1, min=lo, max=hi)
