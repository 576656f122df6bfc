"""Optimizers for quantized training; each is a :class:`torch.optim.Optimizer`."""

from qnnlab.optim.adaste import AdaSTE, adaste_scale, adaste_weights
from qnnlab.optim.askewsgd import ASkewSGD, kbit_skewed_direction, skewed_direction
from qnnlab.optim.binaryconnect import BinaryConnect, glorot_lr_scale
from qnnlab.optim.bop import Bop
from qnnlab.optim.constrained_gd import ConstrainedGD, qp_direction, velocity_direction
from qnnlab.optim.primal_dual import PrimalDual, lagrangian_step
from qnnlab.optim.proxquant import ProxQuant, proxquant_
from qnnlab.optim.sgd import SGD
from qnnlab.optim.ste import STE

__all__ = [
    "SGD",
    "STE",
    "ASkewSGD",
    "AdaSTE",
    "BinaryConnect",
    "Bop",
    "ConstrainedGD",
    "PrimalDual",
    "ProxQuant",
    "adaste_scale",
    "adaste_weights",
    "glorot_lr_scale",
    "kbit_skewed_direction",
    "lagrangian_step",
    "proxquant_",
    "qp_direction",
    "skewed_direction",
    "velocity_direction",
]
