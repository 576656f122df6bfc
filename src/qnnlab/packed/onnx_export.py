"""ONNX and QONNX graphs of a model at its quantized weights ``Q(w)``.

Both graphs are traced from the model by ``torch.onnx.export`` (the dynamo exporter); only the
quantized weights and the quantizers become dedicated nodes (``torch.onnx.ops.symbolic``):

* ``onnx`` (opset 25, for onnxruntime and other ONNX runtimes): each quantized weight is an
  integer initializer holding its unit-grid levels ``q`` (INT2 for 1–2 bits, INT4 for 3–4,
  INT8 for 5–8, INT16 above; a binary weight is stored as ±1) and a ``DequantizeLinear``
  node with its scale ``s`` (a scalar, or one per output channel on axis 0), whose output
  ``s·q`` (one float32 product) is exactly ``Q(w)``. Activation quantizers stay the float
  operations qnnlab computes (sign, rounding to a grid), so the graph computes what qnnlab does.
* ``qonnx`` (the QONNX dialect of Pappalardo et al., "QONNX: representing arbitrary-precision
  quantized neural networks", 2022, arXiv:2206.07527, read by FINN and hls4ml; standard ops at
  opset 18): each quantized weight is a float32 initializer holding ``Q(w)`` followed by
  ``BipolarQuant(w, s)`` (1 bit) or ``Quant(w, s, 0, k; signed, narrow, ROUND)`` (k bits: the
  levels ``−m..m``), both of which map ``Q(w)`` to itself. Activation quantizers become nodes on
  their tensors: ``sign`` is ``BipolarQuant(x, 1)`` (``sign(0) = +1``); ``uniform`` (step ``s``)
  and ``pact`` (step ``α/n``) are ``Quant(x, s, 0, k; unsigned, HALF_UP)``: clamping
  ``x/s`` to ``[0, 2^k − 1]`` and rounding ties up, as :func:`qnnlab.quant.grids.uniform_round`.
  The input has a static batch of 1, as FINN expects (qonnx's ``cleanup(override_inpsize=N)``
  changes it).

A weight quantizer that maps ``Q(w)`` to itself (``sign`` on a unit binary grid, as in an ``ste``
run) is left out of both graphs. Initializers keep their state-dict names; a quantized
weight's scale is ``NAME.scale`` (and, in QONNX, ``NAME.zero_point``, ``NAME.bit_width``).
The graph input is ``input``, the output ``output``; ``onnx.checker`` checks every graph.
"""

from __future__ import annotations

import copy
import json
import logging
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call

import qnnlab
from qnnlab.nn.layers import QuantConv2d, QuantLinear
from qnnlab.packed.quantize import QuantArg, QuantizedTensor, QuantSpec, quantize_state
from qnnlab.quant.quantizers import PACT, Quantizer, SignQuantizer, UniformQuantizer

__all__ = ["ONNX_FORMATS", "onnx_graph", "write_onnx"]

ONNX_FORMATS: tuple[str, ...] = ("onnx", "qonnx")
OPSETS = {"onnx": 25, "qonnx": 18}  # INT2 initializers need opset 25
QONNX_DOMAIN = "qonnx.custom_op.general"
_TENSOR_KEY = "qnnlab.tensor"  # node metadata: which state-dict tensor a weight node holds


def _node(op: str, inputs: tuple[Tensor, ...], attrs: dict[str, Any], like: Tensor, tensor: str = "") -> Tensor:
    """The ONNX node ``op`` (``DOMAIN::Op``; the standard domain at opset 25) with an output shaped as ``like``."""
    domain = op.partition("::")[0]
    meta = {_TENSOR_KEY: tensor} if tensor else None
    version = 1 if domain else OPSETS["onnx"]
    return torch.onnx.ops.symbolic(
        op, inputs, attrs, dtype=torch.float32, shape=like.shape, version=version, metadata_props=meta
    )


class _Dequantize(nn.Module):
    """``DequantizeLinear(q, s)``: the integer levels ``q`` of ``Q(w) = s·q`` (``onnx``)."""

    def __init__(self, name: str, q: QuantizedTensor) -> None:
        super().__init__()
        self.name = name
        self.register_buffer("levels", q.levels().to(torch.int8 if q.bits <= 8 else torch.int16))
        self.register_buffer("scale", q.scale)

    def forward(self) -> Tensor:
        return _node("::DequantizeLinear", (self.levels, self.scale), {"axis": 0}, self.levels, self.name)


class _QuantWeight(nn.Module):
    """``BipolarQuant(Q(w), s)`` or ``Quant(Q(w), s, 0, k; signed, narrow, ROUND)`` (``qonnx``)."""

    def __init__(self, name: str, q: QuantizedTensor) -> None:
        super().__init__()
        self.name, self.bits = name, q.bits
        self.register_buffer("value", q.dequantize().float())
        s = q.scale.float()
        self.register_buffer("scale", s.reshape(-1, *[1] * (len(q.shape) - 1)) if s.dim() else s)
        self.register_buffer("zero_point", torch.tensor(0.0))
        self.register_buffer("bit_width", torch.tensor(float(q.bits)))

    def forward(self) -> Tensor:
        if self.bits == 1:
            return _node(f"{QONNX_DOMAIN}::BipolarQuant", (self.value, self.scale), {}, self.value, self.name)
        attrs = {"signed": 1, "narrow": 1, "rounding_mode": "ROUND"}
        inputs = (self.value, self.scale, self.zero_point, self.bit_width)
        return _node(f"{QONNX_DOMAIN}::Quant", inputs, attrs, self.value, self.name)


class _QuantActivation(nn.Module):
    """A qnnlab activation quantizer as its QONNX node (see the module docstring)."""

    def __init__(self, quantizer: Quantizer) -> None:
        super().__init__()
        self.bits = quantizer.bits
        if isinstance(quantizer, SignQuantizer):
            step = torch.tensor(1.0)
        elif isinstance(quantizer, PACT):
            step = quantizer.alpha.detach() / (2**quantizer.bits - 1)  # as PACTFunction computes it
        else:
            step = torch.tensor(float(quantizer.step))
        self.register_buffer("scale", step.float())
        self.register_buffer("zero_point", torch.tensor(0.0))
        self.register_buffer("bit_width", torch.tensor(float(quantizer.bits)))

    def forward(self, x: Tensor) -> Tensor:
        if self.bits == 1:
            return _node(f"{QONNX_DOMAIN}::BipolarQuant", (x, self.scale), {}, x)
        attrs = {"signed": 0, "narrow": 0, "rounding_mode": "HALF_UP"}
        return _node(f"{QONNX_DOMAIN}::Quant", (x, self.scale, self.zero_point, self.bit_width), attrs, x)


_QONNX_ACTIVATIONS = (SignQuantizer, UniformQuantizer, PACT)


class _Graph(nn.Module):
    """``model`` called with its quantized weights taken from their nodes."""

    def __init__(self, model: nn.Module, weights: dict[str, nn.Module]) -> None:
        super().__init__()
        self.model = model
        self.names = list(weights)
        self.weights = nn.ModuleList(weights.values())

    def forward(self, input: Tensor) -> Tensor:
        return functional_call(self.model, {n: w() for n, w in zip(self.names, self.weights, strict=True)}, (input,))


def _view(
    model: nn.Module, quantized: Mapping[str, QuantizedTensor], specs: Mapping[str, QuantSpec], fmt: str
) -> _Graph:
    """A copy of ``model`` whose quantized weights and quantizers are ONNX nodes."""
    model = copy.deepcopy(model).eval()
    for name, layer in model.named_modules():
        weight = f"{name}.weight" if name else "weight"
        spec = specs.get(weight)
        if (
            isinstance(layer, QuantLinear | QuantConv2d)
            and isinstance(layer.weight_quantizer, SignQuantizer)
            and spec == QuantSpec(1, 1.0)
        ):
            layer.weight_quantizer = None  # sign(Q(w)) = Q(w) on the unit binary grid
    if fmt == "qonnx":
        for parent_name, parent in list(model.named_modules()):
            for child_name, child in list(parent.named_children()):
                if not isinstance(child, Quantizer):
                    continue
                if not isinstance(child, _QONNX_ACTIVATIONS):
                    where = f"{parent_name}.{child_name}" if parent_name else child_name
                    raise ValueError(
                        f"{where}: a {child.name!r} quantizer has no QONNX node here; QONNX export supports"
                        f" {', '.join(q.name for q in _QONNX_ACTIVATIONS)} (use format 'onnx')"
                    )
                setattr(parent, child_name, _QuantActivation(child))
    node = _Dequantize if fmt == "onnx" else _QuantWeight
    return _Graph(model, {n: node(n, q) for n, q in quantized.items()})


def _integer_type(bits: int):
    """The narrowest ONNX integer type holding the levels ``−m..m`` of a ``bits``-bit grid (``±1`` at 1 bit)."""
    import onnx_ir as ir

    types = ((2, ir.DataType.INT2), (4, ir.DataType.INT4), (8, ir.DataType.INT8), (16, ir.DataType.INT16))
    return next(dtype for width, dtype in types if bits <= width)


def _finish(program, specs: Mapping[str, QuantSpec], fmt: str, meta: dict[str, Any]):
    """Names, narrow integer types and metadata on the exported ``onnx_ir`` model; returns the ``ModelProto``."""
    import onnx
    import onnx_ir as ir

    graph = program.model.graph
    graph.inputs[0].name, graph.outputs[0].name = "input", "output"
    graph.inputs[0].metadata_props.clear()
    for value in list(graph.initializers.values()):
        value.metadata_props.clear()
        if value.name.startswith("model."):
            value.name = value.name.removeprefix("model.")
    for node in graph:
        name = node.metadata_props.pop(_TENSOR_KEY, None)
        # the exporter's per-node metadata (stack traces with local paths, FX names): not for a deployed file
        node.metadata_props.clear()
        for value in node.outputs:
            value.metadata_props.clear()
        if name is None:
            continue
        node.name = name
        weight, scale, *rest = node.inputs
        weight.name, scale.name = name, f"{name}.scale"
        for value, suffix in zip(rest, (".zero_point", ".bit_width"), strict=False):
            value.name = name + suffix
        if fmt == "onnx":
            dtype = _integer_type(specs[name].bits)
            weight.const_value = ir.Tensor(weight.const_value.numpy(), dtype=dtype, name=name)
            weight.dtype = dtype
    program.model.producer_name, program.model.producer_version = "qnnlab", qnnlab.__version__
    program.model.metadata_props["qnnlab"] = json.dumps(meta)
    proto = ir.to_proto(program.model)
    proto.ir_version = max(
        proto.ir_version, onnx.helper.find_min_ir_version_for([o for o in proto.opset_import if not o.domain])
    )
    onnx.checker.check_model(proto, full_check=True)
    return proto


def onnx_graph(model: nn.Module, quant: QuantArg, input_shape: tuple[int, ...], fmt: str = "onnx"):
    """The ``onnx.ModelProto`` of ``model`` at ``Q(w)`` for the tensors in ``quant`` (``fmt``: onnx or qonnx)."""
    if fmt not in ONNX_FORMATS:
        raise ValueError(f"unknown ONNX format {fmt!r}; choose from: {', '.join(ONNX_FORMATS)}")
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(f"ONNX export needs {err.name}: pip install 'qnnlab[onnx]'") from None
    specs, quantized = quantize_state(model.state_dict(), quant)
    if bad := next((n for n, q in quantized.items() if q.dtype != torch.float32), None):
        raise ValueError(f"{bad}: ONNX export takes float32 weights; got {quantized[bad].dtype}")
    batch = 1 if fmt == "qonnx" else 2  # a batch of 2 so that the exported batch dimension stays symbolic
    example = torch.zeros(batch, *input_shape)
    view = _view(model, quantized, specs, fmt)
    try:
        with torch.no_grad():
            view.model(example)  # a wrong shape fails here in one line, not in the tracer
    except RuntimeError as err:
        raise ValueError(f"input_shape {tuple(input_shape)} does not fit the model: {err}") from None
    dynamic = None if fmt == "qonnx" else ({0: torch.export.Dim("batch")},)
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                view, (example,), dynamo=True, opset_version=OPSETS[fmt], dynamic_shapes=dynamic, verbose=False
            )
    except Exception as err:  # the exporter's errors are pages long; the cause stays chained
        first = next((line for line in str(err).splitlines() if line.strip()), type(err).__name__)
        first = first.split("\x1b")[0].strip()  # before the exporter's coloured "next steps"
        raise ValueError(f"torch.onnx.export could not trace the model at input shape {input_shape}: {first}") from err
    finally:
        quiet.setLevel(level)
    meta = {
        "format": fmt,
        "quantized": {n: {"bits": s.bits, "scale": s.scale} for n, s in specs.items()},
        "input_shape": list(input_shape),
    }
    return _finish(program, specs, fmt, meta)


def write_onnx(model: nn.Module, quant: QuantArg, out: str | Path, input_shape: tuple[int, ...], fmt: str) -> int:
    """Write :func:`onnx_graph` to ``out`` (atomically); returns the file size."""
    from qnnlab.io import write_atomic

    data = onnx_graph(model, quant, input_shape, fmt).SerializeToString()
    write_atomic(Path(out), data)
    return len(data)
