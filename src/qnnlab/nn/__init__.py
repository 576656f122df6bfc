"""Models and the split of their parameters into quantized and full-precision groups."""

from qnnlab.nn.models import build_model, param_groups

__all__ = ["build_model", "param_groups"]
