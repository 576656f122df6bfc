"""Optimizers for quantized training; each is a :class:`torch.optim.Optimizer`."""

from qnnlab.optim.adaste import AdaSTE, adaste_scale, adaste_weights
from qnnlab.optim.askewsgd import ASkewSGD, skewed_direction
from qnnlab.optim.binaryconnect import BinaryConnect, glorot_lr_scale
from qnnlab.optim.proxquant import ProxQuant, proxquant_
from qnnlab.optim.sgd import SGD

__all__ = [
    "SGD",
    "ASkewSGD",
    "AdaSTE",
    "BinaryConnect",
    "ProxQuant",
    "adaste_scale",
    "adaste_weights",
    "glorot_lr_scale",
    "proxquant_",
    "skewed_direction",
]
