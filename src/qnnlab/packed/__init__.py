"""Exporting quantized weights: bit packing, the ``.qnn`` file, ONNX and QONNX graphs, summaries, packed matmuls."""

from qnnlab.packed.bits import pack_rows, row_bytes, unpack_rows
from qnnlab.packed.export import (
    FORMATS,
    PackedModel,
    RunModel,
    export_model,
    export_run,
    load_packed,
    load_run,
    quantized_state_dict,
    read_packed,
    resolve_checkpoint,
)
from qnnlab.packed.format import FORMAT_VERSION, MAGIC, PackedFileError
from qnnlab.packed.matmul import PackedBinaryLinear, pack_signs, unpack_matmul, xnor_matmul
from qnnlab.packed.onnx_export import onnx_graph
from qnnlab.packed.quantize import QuantizedTensor, QuantSpec, quantize
from qnnlab.packed.summary import LayerSummary, ModelSummary, TensorSummary, summarize, summary_of

__all__ = [
    "FORMATS",
    "FORMAT_VERSION",
    "MAGIC",
    "LayerSummary",
    "ModelSummary",
    "PackedBinaryLinear",
    "PackedFileError",
    "PackedModel",
    "QuantSpec",
    "QuantizedTensor",
    "RunModel",
    "TensorSummary",
    "export_model",
    "export_run",
    "load_packed",
    "load_run",
    "onnx_graph",
    "pack_rows",
    "pack_signs",
    "quantize",
    "quantized_state_dict",
    "read_packed",
    "resolve_checkpoint",
    "row_bytes",
    "summarize",
    "summary_of",
    "unpack_matmul",
    "unpack_rows",
    "xnor_matmul",
]
