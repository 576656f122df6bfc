"""Quantizer modules for weights and activations, registered by name.

A quantizer is a small :class:`torch.nn.Module` with ``bits`` whose forward maps a tensor onto
its level set and whose backward is a straight-through estimator (:mod:`qnnlab.quant.ste`).
``get_quantizer`` builds one from a name, a config dict, or passes an instance through, and
``q.config()`` round-trips: ``get_quantizer(q.config())`` rebuilds an equivalent quantizer.

- ``sign``: ``q(x) = sign(x)`` (``sign(0) = +1``), levels ``{−1, +1}``; backward: the chosen STE
  with threshold ``clip``.
- ``uniform``: ``q(x) = s·clamp(round(x/s), 0, 2^k − 1)`` (Yin et al.'s k-bit ReLU, fixed step ``s``);
  backward: the chosen STE with threshold ``c = (2^k − 1)s`` (clipped ReLU by default).
- ``sawb``: k-bit uniform grid scaled per tensor by SAWB's ``α``; backward: identity.
- ``pact``: ``round(clip(x, 0, α)·n/α)·α/n``, ``n = 2^k − 1``, learned ``α``; backward
  ``1{0 ≤ x < α}`` for ``x`` and ``1{x ≥ α}`` for ``α``.

Example:
    >>> q = get_quantizer({"name": "pact", "bits": 2, "alpha": 3.0})
    >>> q(torch.tensor([-1.0, 0.4, 1.6, 5.0]))
    tensor([0., 0., 2., 3.], grad_fn=<PACTFunctionBackward>)

References: Yin et al., ICLR 2019, arXiv:1903.05662 (``uniform`` and its clipped-ReLU STE);
Choi et al., arXiv:1807.06964 (``pact``, ``sawb``); Chmiel et al., ICLR 2023,
arXiv:2112.10769 (``sawb`` with 4 bits and the identity STE is LUQ's weight/activation quantizer).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

import torch
from torch import Tensor, nn

from qnnlab.quant.grids import sign_tensor, uniform_round
from qnnlab.quant.scales import sawb_coefficients, sawb_scale
from qnnlab.quant.ste import ESTIMATORS, pact, straight_through
from qnnlab.registry import Registry

__all__ = [
    "PACT",
    "QUANTIZERS",
    "Quantizer",
    "QuantizerSpec",
    "SAWBQuantizer",
    "SignQuantizer",
    "UniformQuantizer",
    "get_quantizer",
]


class Quantizer(nn.Module):
    """Base class: ``name`` is the registry key, ``bits`` the bit width of the output levels."""

    name: ClassVar[str]
    bits: int

    def config(self) -> dict[str, Any]:
        """``{"name": ..., **constructor arguments}``; ``get_quantizer`` rebuilds from it."""
        return {"name": self.name, **self._arguments()}

    def _arguments(self) -> dict[str, Any]:
        raise NotImplementedError

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self._arguments().items())


QUANTIZERS: Registry[type[Quantizer]] = Registry("quantizer")
QuantizerSpec = str | Mapping[str, Any] | Quantizer | None
Q = TypeVar("Q", bound=type[Quantizer])


def _register(cls: Q) -> Q:
    QUANTIZERS.register(cls.name, cls)
    return cls


def get_quantizer(spec: QuantizerSpec) -> Quantizer | None:
    """A fresh quantizer from a name or a ``{"name": ..., **kwargs}`` config; an instance is copied; ``None`` stays.

    Copying means layers never share state (PACT's ``α`` is per layer).
    """
    if spec is None:
        return None
    if isinstance(spec, Quantizer):
        return copy.deepcopy(spec)
    if isinstance(spec, str):
        spec = {"name": spec}
    kwargs = dict(spec)
    if "name" not in kwargs:
        raise ValueError(f"quantizer config {dict(spec)} has no 'name'; choose from: {', '.join(QUANTIZERS.names())}")
    name = kwargs.pop("name")
    cls = QUANTIZERS.get(name)
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise ValueError(f"invalid arguments for quantizer {name!r}: {err}") from None


def _check_bits(bits: int, low: int = 1) -> None:
    if not (isinstance(bits, int) and bits >= low):
        raise ValueError(f"Invalid bits: {bits}; must be an integer >= {low}")


def _check_positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"Invalid {name}: {value}; must be > 0")


@_register
class SignQuantizer(Quantizer):
    """``q(x) = sign(x)`` with the straight-through estimator ``estimator`` (threshold ``clip``).

    Args:
        estimator: ``identity`` (default), ``clipped``, ``relu`` or ``clipped_relu``.
        clip: threshold ``c`` of the clipped proxies (default 1).
    """

    name = "sign"
    bits = 1

    def __init__(self, estimator: str = "identity", clip: float = 1.0) -> None:
        super().__init__()
        ESTIMATORS.get(estimator)  # fail early on an unknown name
        _check_positive("clip", clip)
        self.estimator, self.clip = estimator, clip

    def forward(self, x: Tensor) -> Tensor:
        return straight_through(x, sign_tensor, self.estimator, clip=self.clip)

    def _arguments(self) -> dict[str, Any]:
        return {"estimator": self.estimator, "clip": self.clip}


@_register
class UniformQuantizer(Quantizer):
    """k-bit activation quantizer ``q(x) = s·clamp(round(x/s), 0, 2^k − 1)`` (Yin et al.'s k-bit ReLU).

    Levels ``s·{0, 1, ..., 2^k − 1}``; ties round up. The STE threshold is ``c = (2^k − 1)s``,
    so the default ``clipped_relu`` proxy is ``μ'(x) = 1{0 < x < (2^k − 1)s}``.

    Args:
        bits: ``k`` (>= 1).
        step: the level spacing ``s`` (> 0), fixed.
        estimator: ``clipped_relu`` (default), ``relu``, ``clipped`` or ``identity``.
    """

    name = "uniform"

    def __init__(self, bits: int = 2, step: float = 1.0, estimator: str = "clipped_relu") -> None:
        super().__init__()
        _check_bits(bits)
        _check_positive("step", step)
        ESTIMATORS.get(estimator)
        self.bits, self.step, self.estimator = bits, step, estimator

    def forward(self, x: Tensor) -> Tensor:
        n = 2**self.bits - 1
        return straight_through(x, lambda t: uniform_round(t, self.step, 0, n), self.estimator, clip=n * self.step)

    def _arguments(self) -> dict[str, Any]:
        return {"bits": self.bits, "step": self.step, "estimator": self.estimator}


@_register
class SAWBQuantizer(Quantizer):
    """k-bit uniform grid scaled per tensor by SAWB's ``α`` (:mod:`qnnlab.quant.scales`), identity STE.

    With ``α = c₁√E[x²] − c₂E|x|`` computed from the input (no gradient through ``α``):

    - ``signed, zero`` (default): ``KBitGrid(k, α/m)``, levels ``α/m·{−m..m}``, ``m = 2^(k−1) − 1``;
    - ``signed, zero=False``: the ``2^k`` levels ``α/(2^k − 1)·{±1, ±3, .., ±(2^k − 1)}`` (SAWB's 2-bit grid);
    - ``signed=False`` (activations after a ReLU): levels ``Δ·{0..n}``, ``n = 2^k − 1``, ``Δ = 2α/n``,
      as LUQ's reference code (step ``2α/(Q_p − Q_n)`` with ``Q_n = 0``), with the zero-grid coefficients.

    Args:
        bits: ``k`` (2..8 with a zero level, 2 or 4 without, unless ``coefficients`` is given).
        signed: symmetric grid (weights) or ``[0, 2α]`` (non-negative activations).
        zero: whether the signed grid has a zero level.
        coefficients: ``(c₁, c₂)``; default from :data:`qnnlab.quant.scales.SAWB_COEFFICIENTS`.
    """

    name = "sawb"

    def __init__(
        self,
        bits: int = 4,
        signed: bool = True,
        zero: bool = True,
        coefficients: tuple[float, float] | None = None,
    ) -> None:
        super().__init__()
        _check_bits(bits, low=2 if signed and zero else 1)
        if not signed and not zero:
            raise ValueError("Invalid zero: False; an unsigned grid always has 0 (zero=False needs signed=True)")
        self.bits, self.signed, self.zero = bits, signed, zero
        self.coefficients = tuple(coefficients) if coefficients is not None else sawb_coefficients(bits, zero)

    def quantize(self, x: Tensor) -> Tensor:
        """The forward map, without autograd: :meth:`round_to_grid` at SAWB's ``α`` of ``x``."""
        return self.round_to_grid(x, sawb_scale(x, self.coefficients))

    def round_to_grid(self, x: Tensor, alpha: Tensor) -> Tensor:
        """Nearest level of this grid scaled by ``α`` (ties up); ``α`` may broadcast against ``x``."""
        if not self.signed:
            n = 2**self.bits - 1
            return uniform_round(x, 2 * alpha / n, 0, n)
        if self.zero:
            m = 2 ** (self.bits - 1) - 1
            return uniform_round(x, alpha / m, -m, m)
        # even level count: round on the lattice shifted by half a step
        half = 2 ** (self.bits - 1)
        step = alpha / (half - 0.5)
        return uniform_round(x - step / 2, step, -half, half - 1) + step / 2

    def forward(self, x: Tensor) -> Tensor:
        return straight_through(x, self.quantize, "identity")

    def _arguments(self) -> dict[str, Any]:
        return {"bits": self.bits, "signed": self.signed, "zero": self.zero, "coefficients": self.coefficients}


@_register
class PACT(Quantizer):
    """PACT activations: learned clip ``α`` (an ``nn.Parameter``), ``y_q = round(clip(x,0,α)·n/α)·α/n``.

    .. math::
        \\frac{\\partial y_q}{\\partial x} = 1\\{0 \\le x < \\alpha\\}, \\qquad
        \\frac{\\partial y_q}{\\partial \\alpha} = 1\\{x \\ge \\alpha\\}

    Args:
        bits: ``k`` (>= 1); ``n = 2^k − 1`` steps.
        alpha: initial clip level (> 0; the paper starts from 10).
        alpha_decay: ``λ`` of the L2 penalty ``λα²/2`` returned by :meth:`penalty` (add it to the loss).
    """

    name = "pact"

    def __init__(self, bits: int = 2, alpha: float = 10.0, alpha_decay: float = 0.0) -> None:
        super().__init__()
        _check_bits(bits)
        _check_positive("alpha", alpha)
        if not alpha_decay >= 0:
            raise ValueError(f"Invalid alpha_decay: {alpha_decay}; must be >= 0")
        self.bits, self.alpha_decay = bits, alpha_decay
        self.alpha = nn.Parameter(torch.tensor(float(alpha)))

    def forward(self, x: Tensor) -> Tensor:
        return pact(x, self.alpha, self.bits)

    def penalty(self) -> Tensor:
        """``λα²/2`` (its gradient ``λα`` is weight decay on ``α``)."""
        return 0.5 * self.alpha_decay * self.alpha.square()

    def _arguments(self) -> dict[str, Any]:
        # .item() syncs with the device: configs are read outside the training step
        return {"bits": self.bits, "alpha": self.alpha.item(), "alpha_decay": self.alpha_decay}
