"""LUQ: 4-bit weights and activations forward, FP4 radix-2 neural gradients backward.

Forward, weights and activations are INT4 on a SAWB-scaled grid, rounded to nearest, with the
identity STE: :data:`LUQ_WEIGHT` and :data:`LUQ_ACTIVATION` are the
:class:`~qnnlab.quant.quantizers.SAWBQuantizer` configs to pass to ``QuantLinear`` /
``QuantConv2d`` / ``quantize_model`` (weights on ``α/7·{−7..7}``; activations after a ReLU on
``2α/15·{0..15}`` as in the reference code, whose weight grid has 17 levels ``α/8·{−8..8}``).

Backward, the neural gradient ``g`` (the gradient w.r.t. a layer's output) is quantized to the
radix-2 FP4 format (1 sign, 3 exponent bits, no mantissa) with the levels ``±α·2^k``,
``k = 0..7``, and 0, where ``α = max|g| / 2^(2^3 − 1)``. With ``x = |g|/α``:

.. math::
    \\text{underflow } (x < 1):\\ q = 1 \\text{ w.p. } x, \\text{ else } 0; \\qquad
    \\text{log rounding } (2^n \\le x < 2^{n+1}):\\ q = 2^{n+1} \\text{ w.p. } \\tfrac{x - 2^n}{2^n},
    \\text{ else } 2^n

and the output is ``sign(g)·α·q``. Both branches are unbiased: ``E[q] = x``. SMP averages
``samples`` independent draws (variance divided by ``samples``). The reference code takes
``max(g)`` rather than ``max|g|`` and rounds with a shifted-noise trick; we follow the paper's
description (``max|g|``, the unbiased probabilities above).

Example:
    >>> gen = torch.Generator().manual_seed(0)
    >>> x = torch.ones(3, requires_grad=True)
    >>> (quantize_grad(x, generator=gen) * torch.tensor([1.0, 0.3, -0.001])).sum().backward()
    >>> x.grad  # levels 2^-7·2^k, k = 0..7, or 0
    tensor([ 1.0000,  0.2500, -0.0078])

Reference: Chmiel, Banner, Hoffer, Ben-Yaacov & Soudry, "Accurate neural training with 4-bit
matrix multiplications at standard formats", ICLR 2023, arXiv:2112.10769.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.autograd import Function

__all__ = ["FP4_MAX_EXPONENT", "LUQ_ACTIVATION", "LUQ_WEIGHT", "GradQuantizer", "fp4_quantize", "quantize_grad"]

LUQ_WEIGHT: dict[str, Any] = {"name": "sawb", "bits": 4}
LUQ_ACTIVATION: dict[str, Any] = {"name": "sawb", "bits": 4, "signed": False}

# 3 exponent bits: the largest level is α·2^(2^3 − 1) = max|g|
FP4_MAX_EXPONENT = 2**3 - 1


def _check_samples(samples: int) -> None:
    if not (isinstance(samples, int) and samples >= 1):
        raise ValueError(f"Invalid samples: {samples}; must be an integer >= 1")


def fp4_quantize(g: Tensor, *, samples: int = 1, generator: torch.Generator | None = None) -> Tensor:
    """Unbiased radix-2 FP4 quantization of ``g`` (stochastic underflow + logarithmic rounding).

    Args:
        g: the tensor to quantize (a neural gradient).
        samples: SMP, the number of independent draws averaged (>= 1).
        generator: the random source (on ``g``'s device), for reproducible draws.
    """
    _check_samples(samples)
    top = 2.0**FP4_MAX_EXPONENT
    a = g.abs()
    alpha = a.amax() / top
    # an all-zero g has α = 0: x = 0/0 is masked to 0; the clamp absorbs rounding of max|g|/α
    x = torch.where(alpha > 0, a / alpha, 0.0).clamp_(max=top)
    _, exponent = torch.frexp(x)  # x = m·2^exponent with m in [1/2, 1)
    low = torch.ldexp(torch.ones_like(x), exponent - 1)  # 2^n <= x < 2^(n+1)
    under = x < 1
    down = torch.where(under, 0.0, low)
    up = torch.where(under, 1.0, 2 * low)
    p_up = torch.where(under, x, x / low - 1)
    u = torch.rand((samples, *g.shape), generator=generator, dtype=g.dtype, device=g.device)
    q = torch.where(u < p_up, up, down).mean(0)
    return g.sign() * alpha * q


class _QuantizeGrad(Function):
    @staticmethod
    def forward(ctx, x: Tensor, samples: int, generator: torch.Generator | None):
        ctx.samples, ctx.generator = samples, generator
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return fp4_quantize(grad, samples=ctx.samples, generator=ctx.generator), None, None


def quantize_grad(x: Tensor, *, samples: int = 1, generator: torch.Generator | None = None) -> Tensor:
    """The identity forward; backward, the incoming gradient goes through :func:`fp4_quantize`.

    Insert it after a layer's output (``y = quantize_grad(layer(x))``) to quantize that layer's
    neural gradient.
    """
    _check_samples(samples)
    return _QuantizeGrad.apply(x, samples, generator)


class GradQuantizer(nn.Module):
    """:func:`quantize_grad` as a module, to put after a layer in an ``nn.Sequential``."""

    def __init__(self, samples: int = 1, generator: torch.Generator | None = None) -> None:
        super().__init__()
        _check_samples(samples)
        self.samples, self.generator = samples, generator

    def forward(self, x: Tensor) -> Tensor:
        return quantize_grad(x, samples=self.samples, generator=self.generator)

    def extra_repr(self) -> str:
        return f"samples={self.samples}"
