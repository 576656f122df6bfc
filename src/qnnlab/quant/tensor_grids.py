"""The grid each quantized tensor is judged on: one scale per tensor.

A tensor quantized at ``k`` bits with scale ``s`` ends at ``Q(w) = s·q``, ``q`` a level of the
unit grid ``get_grid(k)`` (``{±1}``, or the integers ``−m..m`` with ``m = 2^(k−1) − 1``); that
is what :mod:`qnnlab.packed` stores, ``k`` bits per weight and one float per tensor. A method
that trains for a grid of its own says which ``(Q(w), s)`` through its optimizer's
``quantize`` (ProxQuant's ternarization, ASkewSGD's SAWB grid with a frozen step); the
default, :func:`default_grid`, is

- ``k = 1``: ``s = 1``, ``Q(w) = sign(w)``, the grid every binary method trains for;
- ``k ≥ 2``: the SAWB grid, ``s = Δ = α_w/m`` with ``α_w = c₁√E[w²] − c₂E|w|`` per tensor
  (:mod:`qnnlab.quant.scales`) and ``Q(w) = Δ·clamp(round(w/Δ), −m, m)``: the grid k-bit
  ASkewSGD trains on, so that a full-precision baseline is rounded the same way.

Every function takes a list of tensors and works on their concatenation
(:class:`~qnnlab.quant.segments.Segments`): a fixed number of kernels, no host sync.

Reference: Choi et al., "Bridging the accuracy gap for 2-bit quantized neural networks (QNN)",
2018, arXiv:1807.06964 (SAWB).
"""

from __future__ import annotations

import torch
from torch import Tensor

from qnnlab.quant.grids import get_grid, sign, uniform_round
from qnnlab.quant.scales import sawb_coefficients, sawb_from_moments
from qnnlab.quant.segments import Segments

__all__ = ["default_grid", "on_grid", "sawb_steps"]


def sawb_steps(seg: Segments, bits: int, coefficients: tuple[float, float] | None = None) -> Tensor:
    """``Δ = α_w/m`` of each tensor of ``seg`` (``α_w`` from SAWB's ``(c₁, c₂)`` for ``bits``), shape ``(n,)``."""
    a = seg.flat.abs()
    c = coefficients if coefficients is not None else sawb_coefficients(bits)
    alpha = sawb_from_moments(seg.reduce(a.square(), "mean").sqrt(), seg.reduce(a, "mean"), seg.reduce(a, "max"), c)
    return alpha / get_grid(bits).max_level


def on_grid(seg: Segments, steps: Tensor, bits: int) -> list[Tensor]:
    """``Δ·clamp(round(w/Δ), −m, m)`` of each tensor, ``Δ`` its entry of ``steps``."""
    m = get_grid(bits).max_level
    return seg.split(uniform_round(seg.flat, seg.expand(steps), -m, m))


def default_grid(tensors: list[Tensor], bits: int) -> tuple[list[Tensor], Tensor]:
    """``(Q(w), s)`` of each tensor on the default grid of ``bits`` (see the module docstring)."""
    seg = Segments(tensors)
    if bits == 1:
        return seg.split(sign(seg.flat)), torch.ones(len(tensors), dtype=seg.flat.dtype, device=seg.flat.device)
    steps = sawb_steps(seg, bits)
    return on_grid(seg, steps, bits), steps
