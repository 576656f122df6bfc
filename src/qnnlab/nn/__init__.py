"""Models, quantized layers, and the split of parameters into quantized and full-precision groups."""

from qnnlab.nn.layers import QuantConv2d, QuantLinear, quantize_model
from qnnlab.nn.models import build_model, param_groups

__all__ = ["QuantConv2d", "QuantLinear", "build_model", "param_groups", "quantize_model"]
