"""Synthetic data sets of the ASkewSGD experiments, generated from an explicit seed."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field

from qnnlab.data import DataConfig, Dataset, register_dataset

__all__ = ["LogisticData", "TwoMoonsData", "correlated_logistic", "logistic_toy", "two_moons"]


class LogisticData(DataConfig):
    """The convex toy of the ASkewSGD paper: X ~ U(−1,1)^d, y ~ Bernoulli(σ(X·s·w*))."""

    name: Literal["logistic"] = "logistic"
    d: int = Field(10, ge=1, le=64)
    n_train: int = Field(6000, ge=1)
    n_test: int = Field(1000, ge=1)
    w_scale: float = Field(1.0, gt=0, description="s: 1.0 puts w* on {±1}^d, 0.8 away from the vertices")
    seed: int = Field(0, ge=0, lt=2**63, description="data seed, separate from the training seed")


class TwoMoonsData(DataConfig):
    """ASkewSGD's non-convex toy: scikit-learn's two moons with Gaussian noise, standardized on the training split."""

    name: Literal["two_moons"] = "two_moons"
    n_train: int = Field(2000, ge=2)
    n_test: int = Field(200, ge=2)
    noise: float = Field(0.1, ge=0)
    seed: int = Field(0, ge=0, lt=2**32, description="data seed: both splits are drawn from one stream")


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


def correlated_logistic(
    d: int = 40, n_train: int = 6000, n_test: int = 1000, *, rho: float = 0.8, w_scale: float = 0.5, seed: int = 0
) -> Dataset:
    """Experiment I with correlated features: binary optima that rounding misses and enumeration cannot reach.

    ``x = √(1−ρ)·z + √ρ·z₀`` with ``z ~ N(0, I_d)`` and one ``z₀ ~ N(0, 1)`` per row (unit variances,
    every pair of features correlated ``ρ``), ``w* = s·sign(U(−½, ½)^d)``, ``y ~ Bernoulli(σ(x·w*))``
    with labels in ``{0, 1}``. With ``s = ½`` the box relaxation's minimizer lies inside the box and the
    correlation couples its coordinates, so certifying the binary optimum takes a real search
    (``benchmarks/bench_certify.py``). ``extras["w_star"]`` holds ``w*``.
    """
    if not 0 <= rho < 1:
        raise ValueError(f"Invalid rho: {rho}; expected 0 <= rho < 1")
    gen = torch.Generator().manual_seed(seed)
    n = n_train + n_test
    x = (1 - rho) ** 0.5 * torch.randn(n, d, generator=gen) + rho**0.5 * torch.randn(n, 1, generator=gen)
    w_star = w_scale * torch.where(torch.rand(d, generator=gen) >= 0.5, 1.0, -1.0)
    y = torch.bernoulli(torch.sigmoid(x @ w_star), generator=gen)
    return Dataset(x[:n_train], y[:n_train], x[n_train:], y[n_train:], {"w_star": w_star})


def two_moons(n_train: int = 2000, n_test: int = 200, *, noise: float = 0.1, seed: int = 0) -> Dataset:
    """ASkewSGD's non-convex toy (§1.4b of the reference notes): two interleaved half circles.

    Both splits come from scikit-learn's ``make_moons`` with Gaussian noise of std ``noise``,
    drawn one after the other from one ``RandomState(seed)`` (the authors' notebook seeded
    both with 0, so its test points shared the training noise); features are standardized
    with the training mean and std. Labels are float ``{0, 1}``.
    """
    from sklearn.datasets import make_moons

    rng = np.random.RandomState(seed)
    x_tr, y_tr = make_moons(n_train, noise=noise, random_state=rng)
    x_te, y_te = make_moons(n_test, noise=noise, random_state=rng)
    mean, std = x_tr.mean(0), x_tr.std(0)
    x_tr, x_te = (x_tr - mean) / std, (x_te - mean) / std
    return Dataset(*(torch.tensor(a, dtype=torch.float32) for a in (x_tr, y_tr, x_te, y_te)))


@register_dataset("logistic", config=LogisticData)
def _logistic(cfg: LogisticData) -> Dataset:
    return logistic_toy(cfg.d, cfg.n_train, cfg.n_test, w_scale=cfg.w_scale, seed=cfg.seed)


@register_dataset("two_moons", config=TwoMoonsData)
def _two_moons(cfg: TwoMoonsData) -> Dataset:
    return two_moons(cfg.n_train, cfg.n_test, noise=cfg.noise, seed=cfg.seed)
