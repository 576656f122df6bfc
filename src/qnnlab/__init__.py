"""qnnlab: train quantized neural networks as constrained optimization problems."""

__version__ = "0.1.0"

from qnnlab.packed import export_model, export_run, load_packed, summarize

__all__ = ["__version__", "export_model", "export_run", "load_packed", "summarize"]
