"""Synthetic data sets of the ASkewSGD experiments, generated from an explicit seed."""

from __future__ import annotations

import torch

from qnnlab.data import Dataset

__all__ = ["logistic_toy"]


def logistic_toy(
    d: int = 10, n_train: int = 6000, n_test: int = 1000, *, w_scale: float = 1.0, seed: int = 0
) -> Dataset:
    """Experiment I of ASkewSGD: a logistic model whose truth lies on (or near) the binary grid.

    ``X ~ U(−1, 1)^d``, ``w* = s·sign(U(−½, ½)^d)`` and ``y ~ Bernoulli(σ(X w*))`` with labels in
    ``{0, 1}``; the first ``n_train`` rows are the training set. ``s = 1`` puts ``w*`` on
    ``{±1}^d``; the paper's second variant uses ``s = 0.8``. ``extras["w_star"]`` holds ``w*``.
    """
    gen = torch.Generator().manual_seed(seed)
    n = n_train + n_test
    x = torch.rand(n, d, generator=gen) * 2 - 1
    w_star = w_scale * torch.where(torch.rand(d, generator=gen) >= 0.5, 1.0, -1.0)
    y = torch.bernoulli(torch.sigmoid(x @ w_star), generator=gen)
    return Dataset(x[:n_train], y[:n_train], x[n_train:], y[n_train:], {"w_star": w_star})
