"""Bit packing of quantization codes: ``k`` bits per code, each row padded to whole bytes.

A code matrix of shape ``(rows, cols)`` with entries in ``[0, 2^k)`` becomes a ``uint8``
matrix of shape ``(rows, ⌈k·cols/8⌉)``: each row's codes written end to end, ``k`` bits each,
most significant bit first (``numpy.packbits`` with ``bitorder="big"``), the last byte of a
row padded with zero bits. At ``k = 1`` this is one bit per weight, 8 per byte; padding rows
separately lets a kernel read one output channel's bits without shifting (see
:mod:`qnnlab.packed.matmul`).

Example: the 2-bit codes ``[[3, 0, 2]]`` are the bits ``11 00 10`` + two bits of padding,
the single byte ``0b11001000 = 200``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["MAX_BITS", "pack_rows", "row_bytes", "unpack_rows"]

MAX_BITS = 16


def row_bytes(cols: int, bits: int) -> int:
    """Bytes of one packed row: ``⌈bits·cols/8⌉``."""
    return -(-cols * bits // 8)


def _check_bits(bits: int) -> None:
    if not 1 <= bits <= MAX_BITS:
        raise ValueError(f"Invalid bits: {bits}; must be in 1..{MAX_BITS}")


def pack_rows(codes: Tensor, bits: int) -> Tensor:
    """Pack a ``(rows, cols)`` matrix of codes in ``[0, 2^bits)`` into ``(rows, ⌈bits·cols/8⌉)`` bytes."""
    _check_bits(bits)
    if codes.dim() != 2:
        raise ValueError(f"codes must be a matrix (rows, cols); got shape {tuple(codes.shape)}")
    rows, cols = codes.shape
    c = codes.cpu().numpy().astype(np.uint8 if bits <= 8 else np.uint16)
    shifts = np.arange(bits - 1, -1, -1, dtype=c.dtype)
    planes = ((c[..., None] >> shifts) & 1).astype(np.uint8)  # (rows, cols, bits), msb first
    return torch.from_numpy(np.packbits(planes.reshape(rows, cols * bits), axis=1))


def unpack_rows(packed: Tensor, bits: int, rows: int, cols: int) -> Tensor:
    """The inverse of :func:`pack_rows`: ``(rows, cols)`` int64 codes."""
    _check_bits(bits)
    if packed.shape != (rows, row_bytes(cols, bits)) or packed.dtype != torch.uint8:
        raise ValueError(
            f"packed codes of {cols} columns at {bits} bits must be uint8 of shape ({rows}, {row_bytes(cols, bits)});"
            f" got {packed.dtype} {tuple(packed.shape)}"
        )
    planes = np.unpackbits(packed.cpu().numpy(), axis=1, count=cols * bits).reshape(rows, cols, bits)
    weights = np.left_shift(1, np.arange(bits - 1, -1, -1, dtype=np.int64))
    return torch.from_numpy(planes @ weights)
