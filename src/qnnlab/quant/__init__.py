"""Quantization grids, constraints around them, and binarization maps."""

from qnnlab.quant.binarize import binarize_deterministic, binarize_stochastic, hard_sigmoid
from qnnlab.quant.constraints import binary_dphi, binary_feasible, binary_phi
from qnnlab.quant.grids import BinaryGrid, Grid, KBitGrid, get_grid, sign

__all__ = [
    "BinaryGrid",
    "Grid",
    "KBitGrid",
    "binarize_deterministic",
    "binarize_stochastic",
    "binary_dphi",
    "binary_feasible",
    "binary_phi",
    "get_grid",
    "hard_sigmoid",
    "sign",
]
