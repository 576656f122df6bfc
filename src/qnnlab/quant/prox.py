"""Proximal maps toward a quantization grid (ProxQuant), entry-wise or per tensor.

**Binary.** The W-shaped regularizer ``R(w) = Σᵢ min(|wᵢ − 1|, |wᵢ + 1|)`` has the prox

.. math::
    \\operatorname{prox}_{\\tau R}(w) = \\operatorname{sign}(w)\\,
    \\bigl(1 + \\operatorname{sign}(|w| - 1)\\max(||w| - 1| - \\tau, 0)\\bigr),

a soft threshold of ``|w|`` toward 1: an entry moves by ``min(τ, d(w))`` toward ``sign(w)``,
``d`` being its distance to ``{±1}`` (``sign(0) = +1``). After the clip to ``[−1, 1]`` that
follows it in ProxQuant, ``τ ≥ 1`` sends every entry to ``sign(w)``.

**Ternary and k-bit.** The squared distance ``R(w) = ½‖w − q‖²`` to a quantized point
``q = T(w)`` held fixed during the step has the prox ``(w + τq)/(1 + τ)``, a convex combination
of ``w`` and ``q``. The targets are computed per tensor:

- ternary (``bits = 2``): ``δ = 0.7·mean|w|`` as in ProxQuant's ``ternarize``; entries with
  ``|w| < δ`` go to 0, the others to ``s·sign(w)`` with ``s`` the mean of their ``|w|``: the
  symmetric rule of Li & Liu's ternary weight networks (arXiv:1605.04711). ProxQuant's code
  sends the positive and the negative entries to their own means, an asymmetric level set
  ``{−b, 0, a}``; we keep one scale so that ``T(w)`` lies on ``KBitGrid(2, s)``, the grid the run
  is judged on and that :mod:`qnnlab.packed` stores in 2 bits with one scale;
- k-bit (``bits ≥ 3``): the nearest level of the symmetric :class:`~qnnlab.quant.grids.KBitGrid`
  with the per-tensor scale ``s = max|w|/m``, ``m = 2^(k−1) − 1`` (the max-abs calibration), i.e.
  ``q = s·clamp(round(w/s), −m, m)``; the largest entry is a level, so ``q`` of a tensor already
  on its grid is itself. ProxQuant's own multi-bit mode (for LSTMs) averages toward a non-uniform
  alternating multi-bit quantization instead; this module keeps the uniform grid of the rest of
  qnnlab.

Per-tensor statistics come from :class:`~qnnlab.quant.segments.Segments`, so the kernel count
does not grow with the number of tensors and nothing syncs with the device. Each ``*_grid``
function also returns the per-tensor scales ``s``: the targets are ``s·`` a level of the unit
grid ``get_grid(bits)``.

Reference: Bai, Wang & Liberty, "ProxQuant: quantized neural networks via proximal
operators", ICLR 2019, arXiv:1810.00861 (the binary map, the threshold ``δ`` and the prox toward
``T(w)`` as in the authors' ``reg.py``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from qnnlab.quant.grids import KBitGrid, sign
from qnnlab.quant.segments import Segments
from qnnlab.quant.tensor_grids import default_grid, on_grid

__all__ = [
    "TERNARY_DELTA",
    "kbit_grid",
    "kbit_scales",
    "prox_binary",
    "prox_grid",
    "prox_toward",
    "quantize_targets",
    "ternary_grid",
    "ternary_point",
    "ternary_stats",
]

TERNARY_DELTA = 0.7  # threshold factor of ternarize: δ = 0.7·mean|w|


def prox_binary(w: Tensor, tau: float | Tensor) -> Tensor:
    """``prox_{τR}(w)`` of the W-shaped binary regularizer (see the module docstring).

    Evaluated as ``sign(w)`` where ``||w| − 1| ≤ τ`` and ``w ± τ·sign(w)`` elsewhere, so that a
    landing is exactly on the grid and ``τ = 0`` is exactly the identity.
    """
    s = sign(w)
    gap = 1 - w.abs()
    return torch.where(gap.abs() <= tau, s, w + s * torch.sign(gap) * tau)


def prox_toward(w: Tensor, q: Tensor, tau: float) -> Tensor:
    """``(w + τq)/(1 + τ)``: the prox of ``½‖w − q‖²`` with ``q`` held fixed.

    Evaluated as ``w + c·(q − w)``, ``c = τ/(1 + τ)``, with one fused multiply-add (``torch.add``'s
    ``alpha``), so that the fused optimizer kernels compute it to the bit.
    """
    return torch.add(w, q - w, alpha=tau / (1 + tau))


def ternary_stats(tensors: list[Tensor]) -> tuple[Tensor, Tensor]:
    """``(δ, s)`` per tensor: the threshold ``δ = 0.7·mean|w|`` and the scale ``s`` = mean of the kept ``|w|``."""
    seg = Segments(tensors)
    w = seg.flat
    a = w.abs()
    threshold = TERNARY_DELTA * seg.reduce(a, "mean")
    # a 0/1 float mask (the comparison written into a float tensor): CPU kernels over a bool mask that
    # changes at random run a scalar loop, ≈ 10× a plain product over 2.8 M entries
    kept = torch.ge(a, seg.expand(threshold), out=torch.empty_like(a))
    # an all-zero tensor keeps every entry with mean 0: its scale falls back to the smallest positive one
    scale = (seg.reduce(a * kept, "sum") / seg.reduce(kept, "sum")).clamp_min(torch.finfo(w.dtype).tiny)
    return threshold, scale


def ternary_point(w: Tensor, threshold: Tensor, scale: Tensor) -> Tensor:
    """``T(w) = s·sign(w)·1{|w| ≥ δ}`` entry-wise (``torch.sign``: an all-zero tensor, all kept, stays 0)."""
    return torch.where(w.abs() >= threshold, scale * torch.sign(w), 0.0)


def ternary_grid(tensors: list[Tensor]) -> tuple[list[Tensor], Tensor]:
    """``(T(w), s)``: each tensor's ternarization ``T(w) = s·sign(w)·1{|w| ≥ δ}`` and its scale ``s > 0``."""
    seg = Segments(tensors)
    threshold, scale = ternary_stats(tensors)
    return seg.split(ternary_point(seg.flat, seg.expand(threshold), seg.expand(scale))), scale


def kbit_scales(tensors: list[Tensor], bits: int) -> Tensor:
    """``s = max|w|/m`` per tensor (the smallest positive number for an all-zero tensor, which stays at 0)."""
    seg = Segments(tensors)
    return (seg.reduce(seg.flat.abs(), "max") / KBitGrid(bits).max_level).clamp_min(torch.finfo(seg.flat.dtype).tiny)


def kbit_grid(tensors: list[Tensor], bits: int) -> tuple[list[Tensor], Tensor]:
    """``(q, s)``: each tensor's nearest level on ``KBitGrid(bits, s)``, ``s = max|w|/m``, and the scales."""
    scale = kbit_scales(tensors, bits)
    return on_grid(Segments(tensors), scale, bits), scale


def quantize_targets(tensors: list[Tensor], bits: int) -> list[Tensor]:
    """The hard-quantized value of each tensor: ``sign`` (1 bit), ``T(w)`` (2), k-bit grid (≥ 3)."""
    return prox_grid(tensors, bits)[0]


def prox_grid(tensors: list[Tensor], bits: int) -> tuple[list[Tensor], Tensor]:
    """``(targets, scales)``: :func:`quantize_targets` and each tensor's grid scale (1 for the binary grid)."""
    if bits < 1:
        raise ValueError(f"Invalid bits: {bits}; must be >= 1")
    if bits == 1:
        return default_grid(tensors, 1)
    return ternary_grid(tensors) if bits == 2 else kbit_grid(tensors, bits)
