"""Straight-through estimators (STE): a piecewise-constant quantizer forward, a proxy derivative backward.

.. math::
    y = q(x), \\qquad \\frac{\\partial L}{\\partial x} := \\frac{\\partial L}{\\partial y}\\, \\mu'(x)

``q`` is 0 almost everywhere, so the backward pass uses the derivative ``μ'`` of a proxy
``μ`` instead (Yin et al.'s "coarse gradient"). The proxies, with threshold ``c`` (``clip``):

==================  =====================  =============================================
name                ``μ'(x)``              proxy ``μ``
==================  =====================  =============================================
``identity``        ``1``                  ``x`` (plain STE; BinaryConnect, LUQ)
``clipped``         ``1{|x| ≤ c}``         hardtanh (BNN activations)
``relu``            ``1{x > 0}``           ReLU
``clipped_relu``    ``1{0 < x < c}``       ReLU clipped at ``c = (2^k − 1)α`` (k-bit, step α)
==================  =====================  =============================================

For these four the backward product ``grad · μ'(x)`` is one ATen kernel (torch's hardtanh and
threshold backward; ``tests/quant/test_ste.py`` checks it against ``grad * μ'(x)``); a proxy
registered in :data:`ESTIMATORS` under another name is multiplied. PACT's quantizer has a learned
clip ``α`` with its own STE gradients (:class:`PACTFunction`).

References:
    Yin, Lyu, Zhang, Osher, Qi & Xin, "Understanding straight-through estimator in training
    activation quantized neural nets", ICLR 2019, arXiv:1903.05662.
    Choi, Wang, Venkataramani, Chuang, Srinivasan & Gopalakrishnan, "PACT: parameterized
    clipping activation for quantized neural networks", 2018, arXiv:1805.06085 (also in
    arXiv:1807.06964).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache, partial

import torch
from torch import Tensor
from torch.autograd import Function

from qnnlab.quant.grids import uniform_round
from qnnlab.registry import Registry

__all__ = [
    "ESTIMATORS",
    "PACTFunction",
    "StraightThrough",
    "clipped_grad",
    "clipped_relu_grad",
    "identity_grad",
    "pact",
    "relu_grad",
    "straight_through",
]

ProxyGrad = Callable[..., Tensor]


def identity_grad(x: Tensor, clip: float = 1.0) -> Tensor:
    """``μ'(x) = 1``."""
    return torch.ones_like(x)


def clipped_grad(x: Tensor, clip: float = 1.0) -> Tensor:
    """``μ'(x) = 1{|x| ≤ c}`` (hardtanh; the kinks ``±c`` pass the gradient)."""
    return (x.abs() <= clip).to(x.dtype)


def relu_grad(x: Tensor, clip: float = 1.0) -> Tensor:
    """``μ'(x) = 1{x > 0}``."""
    return (x > 0).to(x.dtype)


def clipped_relu_grad(x: Tensor, clip: float = 1.0) -> Tensor:
    """``μ'(x) = 1{0 < x < c}``."""
    return ((x > 0) & (x < clip)).to(x.dtype)


ESTIMATORS: Registry[ProxyGrad] = Registry("estimator")
for _name, _fn in (
    ("identity", identity_grad),
    ("clipped", clipped_grad),
    ("relu", relu_grad),
    ("clipped_relu", clipped_relu_grad),
):
    ESTIMATORS.register(_name, _fn)


@lru_cache(maxsize=64)
def _above(clip: float, dtype: torch.dtype) -> float:
    """The next value of ``dtype`` above ``clip``: ``x < _above(c)`` is ``x ≤ c`` for every ``x`` of that dtype."""
    c = torch.tensor(clip, dtype=dtype)
    return torch.nextafter(c, torch.tensor(math.inf, dtype=dtype)).item()


def _clipped_vjp(grad: Tensor, x: Tensor, clip: float) -> Tensor:
    # torch's hardtanh backward passes min < x < max: with the bounds ±(next value above c), |x| ≤ c
    bound = _above(clip, x.dtype)
    return torch.ops.aten.hardtanh_backward(grad, x, -bound, bound)


# ``grad · μ'(x)`` as one ATen kernel (a mask and a product are three to four passes, and torch's
# comparisons into bool tensors are slow on the CPU); equal to the product but for the sign of a zero
# gradient (+0 where the product gave −0) and at NaN inputs (the gradient passes)
_VJPS: dict[str, Callable[[Tensor, Tensor, float], Tensor]] = {
    "identity": lambda grad, x, clip: grad,
    "clipped": _clipped_vjp,
    "relu": lambda grad, x, clip: torch.ops.aten.threshold_backward(grad, x, 0.0),  # passes x > 0
    "clipped_relu": lambda grad, x, clip: torch.ops.aten.hardtanh_backward(grad, x, 0.0, clip),  # 0 < x < c
}


class StraightThrough(Function):
    """``q(x)`` forward, ``grad · μ'(x)`` backward; ``q`` is a callable on tensors, ``vjp(grad, x)`` the product."""

    @staticmethod
    def forward(ctx, x: Tensor, quantize: Callable[[Tensor], Tensor], vjp: Callable[[Tensor, Tensor], Tensor]):
        ctx.save_for_backward(x)
        ctx.vjp = vjp
        return quantize(x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (x,) = ctx.saved_tensors
        return ctx.vjp(grad, x), None, None


def straight_through(
    x: Tensor, quantize: Callable[[Tensor], Tensor], estimator: str = "identity", *, clip: float = 1.0
) -> Tensor:
    """``quantize(x)`` whose gradient is the proxy ``estimator`` (a name in :data:`ESTIMATORS`).

    Example:
        >>> from qnnlab.quant.grids import sign
        >>> x = torch.tensor([-2.0, -0.5, 0.5, 2.0], requires_grad=True)
        >>> straight_through(x, sign, "clipped").sum().backward()
        >>> x.grad
        tensor([0., 1., 1., 0.])
    """
    if not clip > 0:
        raise ValueError(f"Invalid clip: {clip}; must be > 0")
    proxy = ESTIMATORS.get(estimator)
    if estimator in _VJPS:  # the built-in proxies: one kernel
        return StraightThrough.apply(x, quantize, partial(_VJPS[estimator], clip=clip))
    return StraightThrough.apply(x, quantize, lambda grad, t: grad * proxy(t, clip=clip))


class PACTFunction(Function):
    """PACT: ``y = clip(x, 0, α)``, ``y_q = round(y·n/α)·α/n`` with ``n = 2^k − 1``.

    .. math::
        \\frac{\\partial y_q}{\\partial x} = 1\\{0 \\le x < \\alpha\\}, \\qquad
        \\frac{\\partial y_q}{\\partial \\alpha} = 1\\{x \\ge \\alpha\\}

    (the rounding is passed straight through). Rounding sends ties up (:func:`uniform_round`).
    """

    @staticmethod
    def forward(ctx, x: Tensor, alpha: Tensor, bits: int):
        ctx.save_for_backward(x, alpha)
        n = 2**bits - 1
        # clip(x, 0, α) then rounding on the step α/n equals rounding clamped to 0..n
        return uniform_round(x, alpha / n, 0, n)

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, alpha = ctx.saved_tensors
        grad_x = grad * ((x >= 0) & (x < alpha)).to(grad.dtype) if ctx.needs_input_grad[0] else None
        grad_alpha = None
        if ctx.needs_input_grad[1]:
            grad_alpha = (grad * (x >= alpha).to(grad.dtype)).sum().reshape(alpha.shape)
        return grad_x, grad_alpha, None


def pact(x: Tensor, alpha: Tensor, bits: int) -> Tensor:
    """:class:`PACTFunction` applied to ``x`` with clip level ``alpha`` (a 0-d tensor)."""
    return PACTFunction.apply(x, alpha, bits)
