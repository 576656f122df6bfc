"""A weight tensor on its grid as integer codes and scales, and back.

A tensor ``w`` quantized at ``k`` bits with scale ``s`` is ``Q(w) = s·q``, where
``q = Q₁(w/s)`` is the nearest level of the unit grid (:func:`qnnlab.quant.get_grid` with
scale 1: ``{−1, +1}`` at ``k = 1``, ``{−m, …, m}`` with ``m = 2^(k−1) − 1`` otherwise). The
code of ``q`` is its index in the sorted unit levels: a binary code is one sign bit
(1 ↔ +1, ``sign(0) = +1``), a k-bit code is ``q + m ∈ [0, 2^k − 2]``. With a fixed ``s`` this is
exactly ``get_grid(k, s).project(w)``, the quantizer every qnnlab run is judged with.

The scale is a fixed number (``1.0``: the grid every qnnlab run trains for) or is estimated
from the weights, per tensor or per output channel (one ``s`` per index of dim 0):

* binary: ``s = mean|w|``, the scale that minimizes ``‖w − s·sign(w)‖²`` (Rastegari, Ordonez,
  Redmon & Farhadi, "XNOR-Net: ImageNet classification using binary convolutional neural
  networks", ECCV 2016, arXiv:1603.05279);
* k bits: ``s = max|w|/m``, max calibration: the largest weight lands on the top level,
  none is clipped.

A statistic of 0 (an all-zero tensor or channel) gives ``s = 1``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from qnnlab.packed.bits import MAX_BITS, pack_rows, row_bytes, unpack_rows
from qnnlab.quant.grids import get_grid

__all__ = [
    "SCALE_MODES",
    "QuantArg",
    "QuantSpec",
    "QuantizedTensor",
    "as_specs",
    "packed_nbytes",
    "quantize",
    "quantize_state",
]

ScaleMode = Literal["tensor", "channel"]
SCALE_MODES: tuple[str, ...] = ("tensor", "channel")


@dataclass(frozen=True)
class QuantSpec:
    """How one tensor is quantized: ``bits`` (1..16) and ``scale`` (a number > 0, ``"tensor"`` or ``"channel"``)."""

    bits: int
    scale: float | ScaleMode = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.bits, int) or not 1 <= self.bits <= MAX_BITS:
            raise ValueError(f"Invalid bits: {self.bits}; must be an integer in 1..{MAX_BITS}")
        if isinstance(self.scale, str):
            if self.scale not in SCALE_MODES:
                raise ValueError(f"unknown scale {self.scale!r}; choose from: a number > 0, {', '.join(SCALE_MODES)}")
        elif not self.scale > 0:
            raise ValueError(f"Invalid scale: {self.scale}; must be > 0")

    @property
    def mode(self) -> str:
        """``"fixed"``, ``"tensor"`` or ``"channel"``."""
        return self.scale if isinstance(self.scale, str) else "fixed"


QuantArg = Mapping[str, "int | QuantSpec"]


def as_specs(quant: QuantArg, names: Iterable[str]) -> dict[str, QuantSpec]:
    """``quant`` with each bare bit count read as ``QuantSpec(bits)``; every key must be one of ``names``."""
    names = list(names)
    unknown = sorted(set(quant) - set(names))
    if unknown:
        raise KeyError(f"unknown tensor {unknown[0]!r} in quant; choose from: {', '.join(names)}")
    return {n: spec if isinstance(spec, QuantSpec) else QuantSpec(spec) for n, spec in quant.items()}


def _matrix(shape: tuple[int, ...]) -> tuple[int, int]:
    """``(rows, cols)`` of the packed matrix: one row per output channel (dim 0) of a weight of 2+ dims, else 1 row."""
    if len(shape) >= 2:
        return shape[0], math.prod(shape[1:])
    return 1, math.prod(shape)


def packed_nbytes(shape: tuple[int, ...], spec: QuantSpec) -> tuple[int, int]:
    """``(code bytes, scale bytes)`` of a tensor of ``shape`` packed as ``spec``: ``rows·⌈k·cols/8⌉``, 4 per scale."""
    rows, cols = _matrix(shape)
    return rows * row_bytes(cols, spec.bits), 4 * (rows if spec.mode == "channel" else 1)


def _per_row(scale: Tensor, like: Tensor) -> Tensor:
    """``scale`` in ``like``'s dtype, shaped to broadcast one value per output channel when it has one."""
    s = scale.to(like.dtype)
    return s.reshape(-1, *[1] * (like.dim() - 1)) if s.dim() else s


@dataclass(frozen=True)
class QuantizedTensor:
    """``codes`` (int64, the tensor's shape) and ``scale`` (float32, ``()`` or ``(shape[0],)``)."""

    codes: Tensor
    scale: Tensor
    bits: int
    dtype: torch.dtype

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.codes.shape)

    def levels(self) -> Tensor:
        """The unit-grid level ``q`` of each entry (int64: ``±1`` at 1 bit, ``−m..m`` at k bits); ``Q(w) = s·q``."""
        return get_grid(self.bits).levels(torch.float64)[self.codes].to(torch.int64)

    def dequantize(self) -> Tensor:
        """``s·levels[code]`` in the original dtype."""
        levels = get_grid(self.bits).levels(self.dtype)[self.codes]
        return _per_row(self.scale, levels) * levels

    def packed(self) -> Tensor:
        """The codes packed at ``bits`` per code, one row per output channel (:func:`~qnnlab.packed.bits.pack_rows`)."""
        return pack_rows(self.codes.reshape(_matrix(self.shape)), self.bits)

    @classmethod
    def from_packed(
        cls, packed: Tensor, scale: Tensor, bits: int, shape: tuple[int, ...], dtype: torch.dtype
    ) -> QuantizedTensor:
        """Unpack codes written by :meth:`packed`; raises ``ValueError`` naming a bad shape or code."""
        rows, cols = _matrix(shape)
        if scale.dtype != torch.float32 or scale.shape not in ((), (rows,)):
            raise ValueError(f"scale must be float32 of shape () or ({rows},); got {scale.dtype} {tuple(scale.shape)}")
        if not bool(((scale > 0) & torch.isfinite(scale)).all()):
            raise ValueError("scale must be finite and > 0")
        codes = unpack_rows(packed, bits, rows, cols).reshape(shape)
        n_levels = get_grid(bits).levels().numel()
        if codes.numel() and int(codes.max()) >= n_levels:
            raise ValueError(f"code {int(codes.max())} is out of range for the {bits}-bit grid (max {n_levels - 1})")
        return cls(codes, scale, bits, dtype)


def _estimate_scale(w: Tensor, bits: int, per_channel: bool) -> Tensor:
    a = w.detach().abs().float()
    if per_channel:
        a = a.reshape(w.shape[0], -1)
        stat = a.mean(1) if bits == 1 else a.amax(1) / get_grid(bits).max_level
    else:
        stat = a.mean() if bits == 1 else a.amax() / get_grid(bits).max_level
    return torch.where(stat > 0, stat, 1.0)


def quantize(w: Tensor, spec: QuantSpec) -> QuantizedTensor:
    """Codes and scale of ``Q(w)`` on the grid of ``spec``; ``quantize(w, s).dequantize()`` is ``Q(w)``."""
    w = w.detach()
    if not w.is_floating_point():
        raise ValueError(f"cannot quantize a {w.dtype} tensor; only floating-point tensors have a grid to go on")
    if not bool(torch.isfinite(w).all()):
        raise ValueError(f"cannot quantize a tensor of shape {tuple(w.shape)} with NaN or infinite entries")
    if spec.mode == "channel" and w.dim() < 2:
        raise ValueError(f"per-channel scales need a tensor of 2 or more dims; got shape {tuple(w.shape)}")
    if spec.mode == "fixed":
        scale = torch.tensor(spec.scale, dtype=torch.float32)
    else:
        scale = _estimate_scale(w, spec.bits, spec.mode == "channel")
    grid = get_grid(spec.bits)
    codes = torch.searchsorted(grid.levels(w.dtype), grid.project(w / _per_row(scale, w)).contiguous())
    return QuantizedTensor(codes, scale, spec.bits, w.dtype)


def quantize_state(
    state: Mapping[str, Tensor], quant: QuantArg
) -> tuple[dict[str, QuantSpec], dict[str, QuantizedTensor]]:
    """``(specs, quantized tensors)`` of the entries of ``state`` named in ``quant``; errors name the tensor."""
    specs = as_specs(quant, state)
    quantized = {}
    for name, spec in specs.items():
        try:
            quantized[name] = quantize(state[name], spec)
        except ValueError as err:
            raise ValueError(f"{name}: {err}") from None
    return specs, quantized
