"""Fit SAWB coefficients ``(c₁, c₂)`` for the symmetric k-bit grids with a zero level.

SAWB (Choi et al. 2018, arXiv:1807.06964) sets the outer level of a uniform grid to

.. math::
    \\alpha_w = c_1 \\sqrt{\\mathbb{E}[w^2]} - c_2\\, \\mathbb{E}|w|

and obtains ``(c₁, c₂)`` by linear regression: for each weight distribution of a family, find
the clip ``α*`` that minimizes the quantization MSE ``E[(w − Q_α(w))²]``, then least-squares fit
``α* ≈ c₁√E[w²] − c₂E|w|`` across the family. The grid here is qnnlab's ``KBitGrid``,
``α/m·{−m..m}`` with ``m = 2^(k−1) − 1`` (``2^k − 1`` levels), rounded through
:func:`qnnlab.quant.grids.uniform_round`, i.e. exactly what ``SAWBQuantizer(k)`` does.

``α*`` and both moments are scale-equivariant, so each distribution shape enters once, as a
sample normalized to unit RMS (``E[w²] = 1``): the fit is then the straight line
``α* ≈ c₁ − c₂·E|w|`` in the one shape statistic ``E|w|/√E[w²]``, each shape with weight 1.
``α*`` is found on one large fixed-seed (stratified, see :func:`sample`) sample per shape, in
float64: a coarse geometric grid of clips up to ``max|w|`` (beyond it nothing is clipped and the
MSE only grows with the step) locates the global minimum, and a bounded Brent search between the
grid neighbours refines it.

Default family: Gaussian, Laplace and uniform (``E|w|/√E[w²]`` = 0.798, 0.707, 0.866). Of the
families tried (subsets of gaussian, laplace, uniform, logistic, t5), it reproduces the two
published zero-level pairs best overall: (2.575, 1.658) against (2.6, 1.71) for the ternary grid
and (11.37, 11.22) against (12.1, 12.2) for the 4-bit grid, 1 %, 3 %, 6 % and 8 % off, with the
same signs of the residuals on Gaussian and Laplace weights as the published pairs. Gaussian +
Laplace alone (two shapes, so both α* are met exactly) gives (2.90, 2.10) and (10.69, 10.29);
adding logistic is about as close at bits 2 and 4 (7 % at worst) but its 8-bit pair puts the MSE
of Gaussian weights 3.5 % above the optimum; adding Student-t (t5) matches the 4-bit pair within
3 % but misses the ternary one by 17 % and is far from optimal on Gaussian and Laplace weights
from 6 bits on (the α* of t5 grows fast with the bit width).

The printed Markdown table gives, per bit width, ``(c₁, c₂)`` and, per distribution, the MSE at
the fitted ``α`` over the MSE at that distribution's own ``α*`` (1.0000 = optimal); a second
table lists the ``α*`` themselves (in units of the RMS). Deterministic for a given ``--seed``
(from 6 bits on, the last digits of ``(c₁, c₂)`` move with it: ≈ 0.3 % at 8 bits).

Usage::

    .venv/bin/python scripts/fit_sawb.py                       # bits 2..8, Gaussian + Laplace + uniform
    .venv/bin/python scripts/fit_sawb.py --bits 2 4 --family gaussian laplace logistic
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch
from scipy import stats
from scipy.optimize import minimize_scalar

from qnnlab.quant.grids import uniform_round

# the shapes, each with zero mean and unit variance (samples are normalized to unit RMS anyway)
DISTRIBUTIONS: dict[str, stats.rv_continuous] = {
    "gaussian": stats.norm(),
    "laplace": stats.laplace(scale=1 / math.sqrt(2)),
    "uniform": stats.uniform(-math.sqrt(3), 2 * math.sqrt(3)),
    "logistic": stats.logistic(scale=math.sqrt(3) / math.pi),
    "t5": stats.t(5, scale=math.sqrt(3 / 5)),  # Student-t, 5 degrees of freedom
}
DEFAULT_FAMILY = ("gaussian", "laplace", "uniform")
COARSE_POINTS = 160  # geometric clip grid, ≈ 3 % apart: the minimum is bracketed by its neighbours


def sample(name: str, n: int, seed: int) -> torch.Tensor:
    """``n`` stratified float64 draws of distribution ``name``, scaled to unit RMS.

    One uniform draw in each of the ``n`` equal-probability strata ``[i/n, (i+1)/n)``, mapped through
    the inverse CDF: an exact sample of the distribution whose tails (which set ``α*`` at high bit
    widths) are far less noisy than those of ``n`` independent draws. The stream depends on ``seed``
    and ``name`` only.
    """
    rng = np.random.default_rng([seed, *name.encode()])
    u = (np.arange(n) + rng.random(n)) / n
    u = np.clip(u, np.finfo(np.float64).tiny, np.nextafter(1.0, 0.0))  # ppf(0) = −∞
    w = torch.from_numpy(DISTRIBUTIONS[name].ppf(u))
    return w / w.square().mean().sqrt()


def quantization_mse(w: torch.Tensor, alpha: float, m: int) -> float:
    """``E[(w − Q_α(w))²]`` for the grid ``α/m·{−m..m}``."""
    return float((uniform_round(w, alpha / m, -m, m) - w).square().mean())


def optimal_clip(w: torch.Tensor, m: int) -> tuple[float, float]:
    """The MSE-minimizing ``α*`` for the grid ``α/m·{−m..m}`` and the MSE there."""
    top = float(w.abs().max())
    grid = np.geomspace(1e-2 * top, top, COARSE_POINTS)
    mses = np.array([quantization_mse(w, a, m) for a in grid])
    i = int(mses.argmin())
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    res = minimize_scalar(
        lambda a: quantization_mse(w, a, m), bounds=(lo, hi), method="bounded", options={"xatol": 1e-7}
    )
    # Brent may stop in a kink next to the grid point: keep whichever is lower
    return (float(res.x), float(res.fun)) if res.fun <= mses[i] else (float(grid[i]), float(mses[i]))


def fit(samples: dict[str, torch.Tensor], bits: int) -> tuple[float, float, dict[str, float], dict[str, float]]:
    """``(c₁, c₂)`` for ``bits``, with each distribution's ``α*`` and MSE ratio at the fitted ``α``."""
    m = 2 ** (bits - 1) - 1
    rows, targets, best = [], [], {}
    for name, w in samples.items():
        a = w.abs()
        rows.append([float(a.square().mean().sqrt()), -float(a.mean())])
        alpha, mse = optimal_clip(w, m)
        targets.append(alpha)
        best[name] = (alpha, mse)
    (c1, c2), *_ = np.linalg.lstsq(np.array(rows), np.array(targets), rcond=None)
    ratios = {}
    for (rms, neg_mean_abs), (name, w) in zip(rows, samples.items(), strict=True):
        ratios[name] = quantization_mse(w, c1 * rms + c2 * neg_mean_abs, m) / best[name][1]
    return float(c1), float(c2), {k: v[0] for k, v in best.items()}, ratios


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bits", type=int, nargs="+", default=list(range(2, 9)), help="bit widths k >= 2")
    parser.add_argument("--family", nargs="+", default=list(DEFAULT_FAMILY), choices=sorted(DISTRIBUTIONS))
    parser.add_argument("--samples", type=int, default=2_000_000, help="draws per distribution")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if min(args.bits) < 2:
        parser.error("--bits must be >= 2 (the zero-level grid needs m = 2^(k-1) - 1 >= 1)")
    if len(set(args.family)) < 2:
        parser.error("--family needs at least two distributions to fit two coefficients")

    samples = {name: sample(name, args.samples, args.seed) for name in dict.fromkeys(args.family)}
    fits = {bits: fit(samples, bits) for bits in args.bits}

    names = list(samples)
    print(f"family: {', '.join(names)}; {args.samples} draws each, seed {args.seed}, float64\n")
    print("| bits | c1 | c2 | " + " | ".join(f"MSE/opt {n}" for n in names) + " |")
    print("|---:|---:|---:|" + "---:|" * len(names))
    for bits, (c1, c2, _, ratios) in fits.items():
        print(f"| {bits} | {c1:.4f} | {c2:.4f} | " + " | ".join(f"{ratios[n]:.4f}" for n in names) + " |")
    print("\n| bits | " + " | ".join(f"α*/rms {n}" for n in names) + " |")
    print("|---:|" + "---:|" * len(names))
    for bits, (_, _, alphas, _) in fits.items():
        print(f"| {bits} | " + " | ".join(f"{alphas[n]:.4f}" for n in names) + " |")


if __name__ == "__main__":
    main()
