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

- ternary (``bits = 2``), ProxQuant's ``ternarize``: ``δ = 0.7·mean|w|``; entries with
  ``|w| < δ`` go to 0, those with ``w ≥ δ`` to the mean of those entries, those with ``w ≤ −δ``
  to the mean of those entries (Li & Liu's ternary weight networks, arXiv:1605.04711);
- k-bit (``bits ≥ 3``): the nearest level of the symmetric :class:`~qnnlab.quant.grids.KBitGrid`
  with the per-tensor scale ``s = max|w|/m``, ``m = 2^(k−1) − 1`` (the max-abs calibration), i.e.
  ``q = s·clamp(round(w/s), −m, m)``; the largest entry is a level, so ``q`` of a tensor already
  on its grid is itself. ProxQuant's own multi-bit mode (for LSTMs) averages toward a non-uniform
  alternating multi-bit quantization instead; this module keeps the uniform grid of the rest of
  qnnlab.

Per-tensor statistics come from :func:`torch.segment_reduce` over the concatenated tensors, so
the kernel count does not grow with the number of tensors and nothing syncs with the device.

Reference: Bai, Wang & Liberty, "ProxQuant: quantized neural networks via proximal
operators", ICLR 2019, arXiv:1810.00861 (binary and ternary maps as in the authors' ``reg.py``).
"""

from __future__ import annotations

from functools import lru_cache

import torch
from torch import Tensor

from qnnlab.quant.grids import KBitGrid, sign

__all__ = ["TERNARY_DELTA", "kbit_targets", "prox_binary", "prox_toward", "quantize_targets", "ternary_targets"]

TERNARY_DELTA = 0.7  # threshold factor of ternarize: δ = 0.7·mean|w|


def prox_binary(w: Tensor, tau: float | Tensor) -> Tensor:
    """``prox_{τR}(w)`` of the W-shaped binary regularizer (see the module docstring).

    Evaluated as ``sign(w)`` where ``||w| − 1| ≤ τ`` and ``w ± τ·sign(w)`` elsewhere, so that a
    landing is exactly on the grid and ``τ = 0`` is exactly the identity.
    """
    s = sign(w)
    gap = 1 - w.abs()
    return torch.where(gap.abs() <= tau, s, w + s * torch.sign(gap) * tau)


def prox_toward(w: Tensor, q: Tensor, tau: float | Tensor) -> Tensor:
    """``(w + τq)/(1 + τ)``: the prox of ``½‖w − q‖²`` with ``q`` held fixed."""
    return torch.lerp(w, q, tau / (1 + tau))


@lru_cache(maxsize=64)
def _lengths(sizes: tuple[int, ...], device: torch.device) -> Tensor:
    # built once per layout, so the step never copies from the host
    return torch.tensor(sizes, device=device)


def _per_tensor(fn, tensors: list[Tensor]) -> list[Tensor]:
    """Apply ``fn(flat, per_tensor_stat)`` to the concatenation and split back to shapes.

    ``per_tensor_stat(values, reduce)`` reduces each tensor's slice of ``values`` and broadcasts
    the result back to its entries.
    """
    sizes = tuple(t.numel() for t in tensors)
    flat = torch.cat([t.reshape(-1) for t in tensors])
    lengths = _lengths(sizes, flat.device)

    def stat(values: Tensor, reduce: str) -> Tensor:
        per = torch.segment_reduce(values, reduce, lengths=lengths)
        return per.repeat_interleave(lengths, output_size=flat.numel())

    out = fn(flat, stat)
    return [o.view_as(t) for o, t in zip(out.split(sizes), tensors, strict=True)]


def ternary_targets(tensors: list[Tensor]) -> list[Tensor]:
    """ProxQuant's ``T(w)`` of each tensor (see the module docstring)."""

    def ternarize(w: Tensor, stat) -> Tensor:
        delta = TERNARY_DELTA * stat(w.abs(), "mean")
        pos, neg = w >= delta, w <= -delta
        # 0/0 where a tensor has no entry above δ: never selected below
        pos_mean = stat(w * pos, "sum") / stat(pos.to(w.dtype), "sum")
        neg_mean = stat(w * neg, "sum") / stat(neg.to(w.dtype), "sum")
        return torch.where(pos, pos_mean, torch.where(neg, neg_mean, torch.zeros_like(w)))

    return _per_tensor(ternarize, tensors)


def kbit_targets(tensors: list[Tensor], bits: int) -> list[Tensor]:
    """Nearest level of the k-bit grid scaled to ``s = max|w|/m`` per tensor."""
    grid = KBitGrid(bits)

    def nearest(w: Tensor, stat) -> Tensor:
        # an all-zero tensor gets the smallest positive scale and stays at 0
        s = (stat(w.abs(), "max") / grid.max_level).clamp_min(torch.finfo(w.dtype).tiny)
        return s * grid.project(w / s)

    return _per_tensor(nearest, tensors)


def quantize_targets(tensors: list[Tensor], bits: int) -> list[Tensor]:
    """The hard-quantized value of each tensor: ``sign`` (1 bit), ``T(w)`` (2), k-bit grid (≥ 3)."""
    if bits < 1:
        raise ValueError(f"Invalid bits: {bits}; must be >= 1")
    if bits == 1:
        return _per_tensor(lambda w, stat: sign(w), tensors)
    return ternary_targets(tensors) if bits == 2 else kbit_targets(tensors, bits)
