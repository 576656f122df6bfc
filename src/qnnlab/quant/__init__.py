"""Quantization grids (also per-tensor scaled), constraints, binarization, STEs, quantizers and scales."""

from qnnlab.quant.binarize import binarize_deterministic, binarize_stochastic, hard_sigmoid
from qnnlab.quant.constraints import binary_dphi, binary_feasible, binary_phi, kbit_dphi, kbit_phi
from qnnlab.quant.grids import BinaryGrid, Grid, KBitGrid, get_grid, sign, uniform_round
from qnnlab.quant.luq import LUQ_ACTIVATION, LUQ_WEIGHT, GradQuantizer, fp4_quantize, quantize_grad
from qnnlab.quant.quantizers import (
    PACT,
    QUANTIZERS,
    Quantizer,
    SAWBQuantizer,
    SignQuantizer,
    UniformQuantizer,
    get_quantizer,
)
from qnnlab.quant.scales import SAWB_COEFFICIENTS, sawb_coefficients, sawb_scale
from qnnlab.quant.segments import Segments
from qnnlab.quant.ste import ESTIMATORS, pact, straight_through
from qnnlab.quant.tensor_grids import default_grid, sawb_steps

__all__ = [
    "ESTIMATORS",
    "LUQ_ACTIVATION",
    "LUQ_WEIGHT",
    "PACT",
    "QUANTIZERS",
    "SAWB_COEFFICIENTS",
    "BinaryGrid",
    "GradQuantizer",
    "Grid",
    "KBitGrid",
    "Quantizer",
    "SAWBQuantizer",
    "Segments",
    "SignQuantizer",
    "UniformQuantizer",
    "binarize_deterministic",
    "binarize_stochastic",
    "binary_dphi",
    "binary_feasible",
    "binary_phi",
    "default_grid",
    "fp4_quantize",
    "get_grid",
    "get_quantizer",
    "hard_sigmoid",
    "kbit_dphi",
    "kbit_phi",
    "pact",
    "quantize_grad",
    "sawb_coefficients",
    "sawb_scale",
    "sawb_steps",
    "sign",
    "straight_through",
    "uniform_round",
]
