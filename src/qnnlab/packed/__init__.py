"""Packed export of quantized weights: bit packing, the ``.qnn`` file, size summaries, packed matmuls."""

from qnnlab.packed.bits import pack_rows, row_bytes, unpack_rows
from qnnlab.packed.export import (
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
from qnnlab.packed.quantize import QuantizedTensor, QuantSpec, quantize
from qnnlab.packed.summary import LayerSummary, ModelSummary, summarize, summary_of

__all__ = [
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
    "export_model",
    "export_run",
    "load_packed",
    "load_run",
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
