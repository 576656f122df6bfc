"""Optimizers for quantized training; each is a :class:`torch.optim.Optimizer`."""

from qnnlab.optim.askewsgd import ASkewSGD, skewed_direction
from qnnlab.optim.binaryconnect import BinaryConnect, glorot_lr_scale
from qnnlab.optim.constrained_gd import ConstrainedGD, qp_direction, velocity_direction
from qnnlab.optim.primal_dual import PrimalDual, lagrangian_step
from qnnlab.optim.sgd import SGD
from qnnlab.optim.ste import STE

__all__ = [
    "SGD",
    "STE",
    "ASkewSGD",
    "BinaryConnect",
    "ConstrainedGD",
    "PrimalDual",
    "glorot_lr_scale",
    "lagrangian_step",
    "qp_direction",
    "skewed_direction",
    "velocity_direction",
]
