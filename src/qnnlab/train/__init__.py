"""Training: the loop, evaluation after quantization, diagnostics, exact binary optima."""
