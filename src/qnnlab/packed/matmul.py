"""Matrix products with packed binary weights, equal to the float products.

A binary weight matrix ``W ∈ {−1, +1}^{M×K}`` is held as its sign bits ``b = [W = +1]``,
packed 8 per byte along each row (:func:`~qnnlab.packed.bits.pack_rows`, the layout of the
``.qnn`` file): ``⌈K/8⌉`` bytes per output instead of ``4K``.

* Binary activations ``x ∈ {−1, +1}^{N×K}``: ``x·w = K − 2·popcount(b_x ⊕ b_w)``, since equal
  bits contribute +1 and different bits −1 (the zero padding bits are equal in both and count
  nothing). Integer arithmetic only, 64 weights per XOR and popcount (``numpy.bitwise_count``),
  so the result is always exact.
* Real activations: the bits are expanded to ±1 (a 256-entry table lookup per byte) for
  ``block`` output rows at a time and multiplied, so the float weight matrix never exists in
  full (working memory: one block).
  The result is the float product ``x·Wᵀ`` and equals it bit for bit whenever that product is
  exact (e.g. integer-valued ``x`` with partial sums below 2^24 in float32).

References: Courbariaux, Hubara, Soudry, El-Yaniv & Bengio, "Binarized neural networks: training
deep neural networks with weights and activations constrained to +1 or −1", arXiv:1602.02830
(2016); Rastegari, Ordonez, Redmon & Farhadi, "XNOR-Net", ECCV 2016, arXiv:1603.05279.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from qnnlab.packed.bits import pack_rows, row_bytes
from qnnlab.packed.quantize import QuantSpec, ScaleMode, quantize

__all__ = ["PackedBinaryLinear", "pack_signs", "unpack_matmul", "xnor_matmul"]

# row b: the 8 bits of the byte b as ±1, most significant first
_BYTE_SIGNS = (((torch.arange(256)[:, None] >> torch.arange(7, -1, -1)) & 1) * 2 - 1).float()


def pack_signs(x: Tensor) -> Tensor:
    """The sign bits ``[x ≥ 0]`` of each row of a matrix, packed 8 per byte: ``(N, ⌈K/8⌉)`` uint8."""
    return pack_rows((x >= 0).to(torch.uint8), 1)


def _words(packed: Tensor) -> np.ndarray:
    """Packed rows zero-padded to whole 64-bit words, as ``(rows, words)`` uint64."""
    b = packed.cpu().numpy()
    return np.ascontiguousarray(np.pad(b, ((0, 0), (0, -b.shape[1] % 8)))).view(np.uint64)


def xnor_matmul(x_bits: Tensor, w_bits: Tensor, k: int) -> Tensor:
    """``x·Wᵀ`` of ``±1`` matrices given as packed sign bits ``(N, ⌈K/8⌉)`` and ``(M, ⌈K/8⌉)``: int32 ``(N, M)``."""
    if x_bits.shape[1] != row_bytes(k, 1) or w_bits.shape[1] != row_bytes(k, 1):
        raise ValueError(
            f"packed rows of K = {k} signs have {row_bytes(k, 1)} bytes; got {x_bits.shape[1]} and {w_bits.shape[1]}"
        )
    xw, wt = _words(x_bits), np.ascontiguousarray(_words(w_bits).T)
    acc = np.zeros((xw.shape[0], wt.shape[1]), dtype=np.int32)
    xor = np.empty(acc.shape, dtype=np.uint64)
    # one 64-bit word of every (input, output) pair at a time: memory stays O(N·M)
    for j in range(xw.shape[1]):
        np.bitwise_xor(xw[:, j, None], wt[j], out=xor)
        acc += np.bitwise_count(xor)
    return torch.from_numpy(k - 2 * acc)


def unpack_matmul(x: Tensor, w_bits: Tensor, k: int, *, block: int = 256) -> Tensor:
    """``x·Wᵀ`` for real ``x`` ``(…, K)`` and ``±1`` ``W`` given as packed sign bits ``(M, ⌈K/8⌉)``."""
    if x.shape[-1] != k or w_bits.shape[1] != row_bytes(k, 1):
        raise ValueError(f"x must end in K = {k} and w_bits have {row_bytes(k, 1)} bytes per row")
    signs = _BYTE_SIGNS.to(x.dtype)
    out = x.new_empty(*x.shape[:-1], w_bits.shape[0])
    for r in range(0, w_bits.shape[0], block):
        rows = w_bits[r : r + block]
        # a table lookup per byte: its 8 signs at once
        w = F.embedding(rows.int(), signs).reshape(rows.shape[0], -1)[:, :k]
        out[..., r : r + block] = x @ w.T
    return out


class PackedBinaryLinear(nn.Module):
    """``y = s·(x·Wᵀ) + bias`` with ``W ∈ {−1, +1}^{M×K}`` stored as packed sign bits.

    :meth:`forward` takes real inputs (:func:`unpack_matmul`); :meth:`forward_binary` takes
    the packed sign bits of ``±1`` inputs (:func:`xnor_matmul`). Both equal ``Linear`` with
    weight ``s·W`` exactly when the float products are exact (integer inputs, ``s`` a power of 2).

    Example::

        layer = PackedBinaryLinear.from_linear(nn.Linear(784, 512))  # 50 KB of bits instead of 1.6 MB
        y = layer(x)
    """

    def __init__(self, w_bits: Tensor, in_features: int, scale: Tensor, bias: Tensor | None, *, block: int = 256):
        super().__init__()
        if w_bits.dim() != 2 or w_bits.shape[1] != row_bytes(in_features, 1) or w_bits.dtype != torch.uint8:
            raise ValueError(
                f"w_bits must be uint8 (out_features, {row_bytes(in_features, 1)}) for in_features = {in_features};"
                f" got {w_bits.dtype} {tuple(w_bits.shape)}"
            )
        self.in_features, self.out_features, self.block = in_features, w_bits.shape[0], block
        self.register_buffer("w_bits", w_bits)
        self.register_buffer("scale", scale)
        self.register_buffer("bias", bias)

    @classmethod
    def from_linear(cls, linear: nn.Linear, scale: float | ScaleMode = 1.0, *, block: int = 256) -> PackedBinaryLinear:
        """``linear`` with its weight on the binary grid ``s·{−1, +1}`` (see :class:`~qnnlab.packed.QuantSpec`)."""
        q = quantize(linear.weight, QuantSpec(1, scale))
        bias = None if linear.bias is None else linear.bias.detach().clone()
        return cls(q.packed(), linear.in_features, q.scale, bias, block=block)

    def _affine(self, y: Tensor) -> Tensor:
        y = y * self.scale.to(y.dtype)
        return y if self.bias is None else y + self.bias

    def forward(self, x: Tensor) -> Tensor:
        return self._affine(unpack_matmul(x, self.w_bits, self.in_features, block=self.block))

    def forward_binary(self, x_bits: Tensor) -> Tensor:
        """The output for ``±1`` inputs given as :func:`pack_signs` bits ``(N, ⌈K/8⌉)``."""
        return self._affine(xnor_matmul(x_bits, self.w_bits, self.in_features).to(self.scale.dtype))

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
