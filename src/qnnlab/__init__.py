"""qnnlab: train quantized neural networks as constrained optimization problems."""

__version__ = "0.1.0"

__all__ = ["__version__"]
