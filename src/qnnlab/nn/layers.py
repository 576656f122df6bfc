"""Quantized layers: ``nn.Linear`` / ``nn.Conv2d`` whose weight and input pass through quantizers.

.. math::
    y = W_q x_q + b, \\qquad W_q = q_w(W), \\quad x_q = q_a(x)

``W`` stays the real-valued (latent) parameter under its usual name ``weight``; the optimizer
updates it with the straight-through gradient of ``q_w``. A quantizer of ``None`` keeps that
side in full precision. :func:`quantize_model` swaps a model's ``Linear`` / ``Conv2d`` layers for
these, keeping the same ``Parameter`` objects (as torchao's ``from_linear``), so parameter names,
``param_groups`` and optimizer state are unchanged.

Example:
    >>> import torch
    >>> layer = QuantLinear(4, 2, weight_quantizer="sign", input_quantizer={"name": "pact", "bits": 2})
    >>> layer(torch.randn(3, 4)).shape
    torch.Size([3, 2])
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from torch import Tensor, nn

from qnnlab.quant.quantizers import QuantizerSpec, get_quantizer

__all__ = ["QuantConv2d", "QuantLinear", "quantize_model"]


class _Quantized:
    """What QuantLinear and QuantConv2d share: the two quantizers and the swap from a float layer."""

    weight: nn.Parameter
    weight_quantizer: nn.Module | None
    input_quantizer: nn.Module | None

    def _set_quantizers(self, weight_quantizer: QuantizerSpec, input_quantizer: QuantizerSpec) -> None:
        self.weight_quantizer = get_quantizer(weight_quantizer)
        self.input_quantizer = get_quantizer(input_quantizer)

    def quantized_weight(self) -> Tensor:
        """``q_w(W)`` (``W`` itself without a weight quantizer)."""
        return self.weight if self.weight_quantizer is None else self.weight_quantizer(self.weight)

    def quantized_input(self, x: Tensor) -> Tensor:
        """``q_a(x)`` (``x`` itself without an input quantizer)."""
        return x if self.input_quantizer is None else self.input_quantizer(x)


class QuantLinear(_Quantized, nn.Linear):
    """``nn.Linear`` computing ``F.linear(q_a(x), q_w(W), b)``.

    Args:
        in_features, out_features, bias, device, dtype: as ``nn.Linear``.
        weight_quantizer, input_quantizer: a quantizer, its name, its config dict, or ``None``
            (full precision); see :func:`qnnlab.quant.quantizers.get_quantizer`.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        weight_quantizer: QuantizerSpec = None,
        input_quantizer: QuantizerSpec = None,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__(in_features, out_features, bias, device=device, dtype=dtype)
        self._set_quantizers(weight_quantizer, input_quantizer)

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.linear(self.quantized_input(x), self.quantized_weight(), self.bias)

    @classmethod
    def from_float(
        cls, module: nn.Linear, *, weight_quantizer: QuantizerSpec = None, input_quantizer: QuantizerSpec = None
    ) -> QuantLinear:
        """A ``QuantLinear`` holding ``module``'s own ``weight`` and ``bias`` Parameter objects."""
        # built on the meta device: no allocation and no draw from the global RNG
        new = cls(
            module.in_features,
            module.out_features,
            module.bias is not None,
            weight_quantizer=weight_quantizer,
            input_quantizer=input_quantizer,
            device="meta",
        )
        return _adopt(new, module)


class QuantConv2d(_Quantized, nn.Conv2d):
    """``nn.Conv2d`` convolving ``q_a(x)`` with ``q_w(W)``.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
        padding_mode, device, dtype: as ``nn.Conv2d``.
        weight_quantizer, input_quantizer: as :class:`QuantLinear`.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        *,
        weight_quantizer: QuantizerSpec = None,
        input_quantizer: QuantizerSpec = None,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            dilation,
            groups,
            bias,
            padding_mode,
            device=device,
            dtype=dtype,
        )
        self._set_quantizers(weight_quantizer, input_quantizer)

    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(self.quantized_input(x), self.quantized_weight(), self.bias)

    @classmethod
    def from_float(
        cls, module: nn.Conv2d, *, weight_quantizer: QuantizerSpec = None, input_quantizer: QuantizerSpec = None
    ) -> QuantConv2d:
        """A ``QuantConv2d`` holding ``module``'s own ``weight`` and ``bias`` Parameter objects."""
        new = cls(
            module.in_channels,
            module.out_channels,
            module.kernel_size,
            module.stride,
            module.padding,
            module.dilation,
            module.groups,
            module.bias is not None,
            module.padding_mode,
            weight_quantizer=weight_quantizer,
            input_quantizer=input_quantizer,
            device="meta",
        )
        return _adopt(new, module)


def _adopt(new: nn.Module, old: nn.Module) -> nn.Module:
    new.weight = old.weight
    new.bias = old.bias
    for quantizer in (new.weight_quantizer, new.input_quantizer):
        if quantizer is not None:
            quantizer.to(old.weight.device)  # PACT's α lives with the layer
    new.train(old.training)
    return new


_SWAPS: dict[type[nn.Module], type[nn.Module]] = {nn.Linear: QuantLinear, nn.Conv2d: QuantConv2d}


def quantize_model(
    model: nn.Module,
    *,
    weight_quantizer: QuantizerSpec = None,
    input_quantizer: QuantizerSpec = None,
    skip: Iterable[str] | Callable[[str, nn.Module], bool] = (),
) -> nn.Module:
    """Swap every ``nn.Linear`` / ``nn.Conv2d`` of ``model`` for its quantized version, in place.

    Each swapped layer gets its own quantizers (configs are built per layer, instances copied)
    and keeps its ``weight`` / ``bias`` Parameter objects. Returns the model — a new module when
    ``model`` itself is a ``Linear`` / ``Conv2d`` (its qualified name is ``""``).

    Args:
        model: the float model.
        weight_quantizer, input_quantizer: as :class:`QuantLinear`.
        skip: qualified names of layers to keep in full precision (e.g. ``{"0", "fc"}``), or a
            predicate ``(name, module) -> bool``.
    """
    targets = {name: m for name, m in model.named_modules() if type(m) in _SWAPS}
    if callable(skip):
        keep = skip
    else:
        names = set(skip)
        unknown = sorted(names - set(targets))
        if unknown:
            raise ValueError(
                f"skip names no Linear/Conv2d layer: {', '.join(unknown)}; layers: {', '.join(targets) or '(none)'}"
            )
        keep = lambda name, module: name in names  # noqa: E731
    for name, module in targets.items():
        if keep(name, module):
            continue
        new = _SWAPS[type(module)].from_float(
            module, weight_quantizer=weight_quantizer, input_quantizer=input_quantizer
        )
        if name == "":
            return new
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, new)
    return model
