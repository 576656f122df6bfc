"""Optimizers for quantized training; each is a :class:`torch.optim.Optimizer`."""

from qnnlab.optim.askewsgd import ASkewSGD, skewed_direction
from qnnlab.optim.binaryconnect import BinaryConnect, glorot_lr_scale
from qnnlab.optim.sgd import SGD
from qnnlab.optim.ste import STE

__all__ = ["SGD", "STE", "ASkewSGD", "BinaryConnect", "glorot_lr_scale", "skewed_direction"]
