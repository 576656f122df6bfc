"""Model size and compute by precision, tensor by tensor and layer by layer: what the packed model costs.

Per tensor (any state dict, so also a ``.qnn`` file whose architecture is unknown): its shape,
dtype, precision (1 bit, k bits or as stored), scale, and its bytes when packed:
``rows·⌈k·cols/8⌉`` per quantized tensor (one row per output channel,
:mod:`qnnlab.packed.bits`) plus 4 per float32 scale, ``count × element size`` for the rest.

Per layer (each module that owns state-dict tensors; needs the module):

* its parameters at 1 bit, at k bits (2..16) and in floating point, and their packed bytes;
* from one forward pass of a sample of ``input_shape`` (a seeded normal draw): its output shape,
  its input precision and its multiply-accumulates per sample (MACs). MACs are counted for
  ``Linear`` (``in_features`` per output element) and ``Conv1d/2d/3d`` (``in_channels/groups ×
  kernel volume`` per output element); other layers count 0. The input precision is the bits
  of the layer's input quantizer (``QuantLinear`` / ``QuantConv2d``), else 1 when every entry of
  its input is ±1 in that pass (after a ``sign`` activation), else full precision (``None``);
* ``binary_weight_macs``: the MACs with a 1-bit weight (each an addition or a subtraction), and
  ``binary_macs``: those whose weight *and* input are 1-bit (each an XNOR and a popcount).

Totals: the packed size (the sum; a ``.qnn`` file adds only its header), the float32
equivalent (4 bytes per element), and their ratio. The report follows the model summary of
Larq (Geiger & Team, "Larq: an open-source library for training binarized neural networks",
JOSS 2020).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from qnnlab.packed.quantize import QuantArg, QuantSpec, as_specs, packed_nbytes

__all__ = ["LayerSummary", "ModelSummary", "TensorSummary", "summarize", "summary_of", "trace_layers"]

_MAC_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass(frozen=True)
class TensorSummary:
    """One state-dict tensor: ``bits`` is ``None`` for a tensor stored as is; ``scale`` its grid's scale."""

    name: str
    shape: list[int]
    dtype: str
    numel: int
    bits: int | None
    scale: float | str | None
    bytes_codes: int
    bytes_scales: int

    @property
    def bytes(self) -> int:
        return self.bytes_codes + self.bytes_scales


@dataclass(frozen=True)
class LayerSummary:
    """One layer's parameters and bytes by precision; what one forward pass saw (``None``: no input shape given)."""

    name: str
    kind: str
    params_1bit: int = 0
    params_kbit: int = 0
    params_float: int = 0
    kbits: list[int] = field(default_factory=list)
    bytes_1bit: int = 0
    bytes_kbit: int = 0
    bytes_scales: int = 0
    bytes_float: int = 0
    output_shape: list[int] | None = None
    input_bits: int | None = None
    macs: int | None = None
    binary_weight_macs: int | None = None
    binary_macs: int | None = None

    @property
    def params(self) -> int:
        return self.params_1bit + self.params_kbit + self.params_float

    @property
    def bytes(self) -> int:
        return self.bytes_1bit + self.bytes_kbit + self.bytes_scales + self.bytes_float


_PARAM_KEYS = ("params_1bit", "params_kbit", "params_float", "bytes_1bit", "bytes_kbit", "bytes_scales", "bytes_float")
_MAC_KEYS = ("macs", "binary_weight_macs", "binary_macs")


@dataclass(frozen=True)
class ModelSummary:
    """Every tensor, every layer (none when the architecture is unknown), the totals; ``file_bytes`` of a file."""

    tensors: list[TensorSummary]
    layers: list[LayerSummary]
    file_bytes: int | None = None

    def total(self, key: str) -> int | None:
        """The sum of ``key`` over the tensors (parameters, bytes) or the layers (MACs; ``None`` if unknown)."""
        if key in _MAC_KEYS:
            values = [getattr(layer, key) for layer in self.layers]
            return None if not values or None in values else sum(values)
        return sum(_tensor_counts(t)[key] for t in self.tensors)

    @property
    def packed_bytes(self) -> int:
        return sum(t.bytes for t in self.tensors)

    @property
    def float32_bytes(self) -> int:
        return 4 * sum(t.numel for t in self.tensors)

    @property
    def compression(self) -> float:
        """``float32 bytes / packed bytes``."""
        return self.float32_bytes / self.packed_bytes if self.packed_bytes else math.nan

    def to_dict(self) -> dict[str, Any]:
        totals = {k: self.total(k) for k in (*_PARAM_KEYS, *_MAC_KEYS)}
        totals |= {
            "packed_bytes": self.packed_bytes,
            "float32_bytes": self.float32_bytes,
            "compression": self.compression,
            "file_bytes": self.file_bytes,
        }
        return {
            "tensors": [asdict(t) for t in self.tensors],
            "layers": [asdict(layer) for layer in self.layers],
            "totals": totals,
        }


def _tensor_counts(t: TensorSummary) -> Counter[str]:
    """The tensor's contribution to the per-precision parameter and byte counts."""
    if t.bits is None:
        return Counter(params_float=t.numel, bytes_float=t.bytes_codes)
    precision = "1bit" if t.bits == 1 else "kbit"
    return Counter(
        {f"params_{precision}": t.numel, f"bytes_{precision}": t.bytes_codes, "bytes_scales": t.bytes_scales}
    )


def _tensor(name: str, t: Tensor, spec: QuantSpec | None) -> TensorSummary:
    shape, dtype = list(t.shape), str(t.dtype).removeprefix("torch.")
    if spec is None:
        return TensorSummary(name, shape, dtype, t.numel(), None, None, t.numel() * t.element_size(), 0)
    codes, scales = packed_nbytes(tuple(t.shape), spec)
    return TensorSummary(name, shape, dtype, t.numel(), spec.bits, spec.scale, codes, scales)


@dataclass(frozen=True)
class _Seen:
    """What one layer did in the traced forward pass."""

    output_shape: list[int] | None
    input_bits: int | None
    macs: int


def trace_layers(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, _Seen]:
    """Output shape, input precision and MACs per sample of each module (by name), from one forward pass."""
    names = {m: n for n, m in model.named_modules()}
    seen: dict[str, _Seen] = {}

    def hook(module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
        name = names[module]
        if name in seen:  # a module called twice: count its MACs twice, keep its first shape
            seen[name] = _Seen(seen[name].output_shape, seen[name].input_bits, 2 * seen[name].macs)
            return
        macs = 0
        if isinstance(module, nn.Linear):
            macs = output.numel() * module.in_features
        elif isinstance(module, _MAC_LAYERS):
            macs = output.numel() * module.in_channels // module.groups * math.prod(module.kernel_size)
        quantizer = getattr(module, "input_quantizer", None)
        x = inputs[0] if inputs and isinstance(inputs[0], Tensor) else None
        if quantizer is not None:
            bits = quantizer.bits
        elif x is not None and x.numel() and bool((x.abs() == 1).all()):
            bits = 1
        else:
            bits = None
        shape = list(output.shape[1:]) if isinstance(output, Tensor) else None
        seen[name] = _Seen(shape, bits, macs)

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    sample = torch.randn(1, *input_shape, generator=torch.Generator().manual_seed(0), dtype=dtype)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(sample)
    except RuntimeError as err:
        raise ValueError(f"input_shape {tuple(input_shape)} does not fit the model: {err}") from None
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return seen


def _layer(
    prefix: str, tensors: list[TensorSummary], module: nn.Module | None, seen: _Seen | None, weight: QuantSpec | None
) -> LayerSummary:
    counts: Counter[str] = Counter()
    for t in tensors:
        counts.update(_tensor_counts(t))
    kbits = sorted({t.bits for t in tensors if t.bits is not None and t.bits > 1})
    kind = type(module).__name__ if module is not None else ""
    if seen is None:
        return LayerSummary(prefix or "(model)", kind, **counts, kbits=kbits)
    binary_weight = weight is not None and weight.bits == 1
    return LayerSummary(
        prefix or "(model)",
        kind,
        **counts,
        kbits=kbits,
        output_shape=seen.output_shape,
        input_bits=seen.input_bits,
        macs=seen.macs,
        binary_weight_macs=seen.macs if binary_weight else 0,
        binary_macs=seen.macs if binary_weight and seen.input_bits == 1 else 0,
    )


def _natural(item: tuple[str, Any]) -> list[tuple[int, int | str]]:
    return [(0, int(part)) if part.isdigit() else (1, part) for part in item[0].split(".")]


def summarize(
    model: nn.Module | Mapping[str, Tensor],
    quant: QuantArg,
    input_shape: tuple[int, ...] | None = None,
    *,
    file_bytes: int | None = None,
) -> ModelSummary:
    """The summary of ``model`` with the tensors in ``quant`` packed.

    ``model`` is a module, or only its state dict (then there are tensors but no layers);
    with ``input_shape`` the layers get their output shapes, input precision and MACs.
    """
    # a module's tensors in its own order; a bare state dict's by name, numbers counted ("2.w" before "10.w")
    state = model.state_dict() if isinstance(model, nn.Module) else dict(sorted(model.items(), key=_natural))
    specs = as_specs(quant, state)
    tensors = [_tensor(name, t, specs.get(name)) for name, t in state.items()]
    if not isinstance(model, nn.Module):
        return ModelSummary(tensors, [], file_bytes)
    seen = trace_layers(model, input_shape) if input_shape is not None else {}
    modules = dict(model.named_modules())
    by_layer: dict[str, list[TensorSummary]] = {}
    for t in tensors:
        by_layer.setdefault(t.name.rpartition(".")[0], []).append(t)
    layers = [
        _layer(
            prefix,
            group,
            modules.get(prefix),
            seen.get(prefix, _Seen(None, None, 0)) if input_shape is not None else None,
            specs.get(f"{prefix}.weight" if prefix else "weight"),
        )
        for prefix, group in by_layer.items()
    ]
    return ModelSummary(tensors, layers, file_bytes)


def summary_of(target: str | Path, model: nn.Module | None = None) -> ModelSummary:
    """The summary of a ``.qnn`` file, or of a run (a checkpoint ``.pt`` or ``RESULTS_DIR:RUN_ID``).

    A file that holds a run config is summarized layer by layer (its model is rebuilt); any
    other file tensor by tensor, or layer by layer when ``model`` (its architecture) is given.
    """
    from qnnlab.packed.export import load_run, read_packed

    if str(target).endswith(".qnn"):
        packed = read_packed(target)
        if model is None and packed.config is None:
            return summarize(packed.state_dict(), packed.specs, file_bytes=packed.file_bytes)
        return summarize(packed.load(model), packed.specs, packed.input_shape, file_bytes=packed.file_bytes)
    run = load_run(target)
    return summarize(run.model, run.quant, run.input_shape)
