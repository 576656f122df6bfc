"""Counter-based uniform draws: ``u = hash(key, i)``, the same in torch (int64 ops) and in C.

A draw is a pure function of a per-tensor *key* and the entry's index ``i`` (row-major), so it
needs no generator state: the fused and the eager paths draw the same numbers, a run resumed from
a ``state_dict`` draws what the uninterrupted run would have, and every rank of a distributed run
with the same seed draws the same variables.

- key of tensor ``j`` of a param group at draw number ``c`` (:func:`stream_key`):
  ``splitmix64(splitmix64(splitmix64(seed) ⊕ c) ⊕ j) mod 2³²`` (Steele, Lea & Flood,
  "Fast splittable pseudorandom number generators", OOPSLA 2014);
- entry ``i``: ``h = fmix32((key + i·0x9E3779B9) mod 2³²)``, MurmurHash3's 32-bit finalizer of a
  Weyl sequence (Appleby, MurmurHash3, 2011), and ``u = ⌊h/2⁸⌋·2⁻²⁴ ∈ [0, 1)``, exact in float32
  and float64. The index enters modulo 2³², so a tensor's draws repeat after 2³² entries.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["C_UNIFORM", "stream_key", "uniform"]

_M32 = 0xFFFFFFFF
_M64 = 0xFFFFFFFFFFFFFFFF
_WEYL = 0x9E3779B9
_FMIX = (0x85EBCA6B, 0xC2B2AE35)

C_UNIFORM = """\
static inline T uniform_T(uint32_t key, int64_t i) {
  uint32_t h = key + (uint32_t)i * 0x9E3779B9u;
  h ^= h >> 16;
  h *= 0x85EBCA6Bu;
  h ^= h >> 13;
  h *= 0xC2B2AE35u;
  h ^= h >> 16;
  return (T)(h >> 8) * (T)0x1p-24;
}
"""


def _splitmix64(x: int) -> int:
    z = (x + 0x9E3779B97F4A7C15) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def stream_key(seed: int, counter: int, index: int) -> int:
    """The 32-bit key of the ``index``-th tensor's draws at draw number ``counter`` under ``seed``."""
    return _splitmix64(_splitmix64(_splitmix64(seed & _M64) ^ (counter & _M64)) ^ (index & _M64)) & _M32


def _mul32(x: Tensor, c: int) -> Tensor:
    """``x·c mod 2³²`` for int64 ``x`` in ``[0, 2³²)``, in 16-bit halves of ``c`` (no int64 overflow)."""
    return (x * (c & 0xFFFF) + (((x * (c >> 16)) & 0xFFFF) << 16)) & _M32


def uniform(key: float | Tensor, like: Tensor) -> Tensor:
    """``u`` of every entry of a tensor shaped as ``like`` (its dtype and device) under ``key`` (``< 2³²``)."""
    i = torch.arange(like.numel(), dtype=torch.int64, device=like.device)
    k = key.to(torch.int64) if isinstance(key, Tensor) else int(key)
    h = (_mul32(i & _M32, _WEYL) + k) & _M32
    for c, shift in zip(_FMIX, (16, 13), strict=True):
        h = _mul32(h ^ (h >> shift), c)
    h = h ^ (h >> 16)
    return ((h >> 8).to(like.dtype) * 2.0**-24).view(like.shape)
