"""SAWB scales: hand values for every coefficient set, the guards, and the fit the coefficients claim."""

import math

import pytest
import torch
from torch.testing import assert_close

from qnnlab.quant.quantizers import SAWBQuantizer
from qnnlab.quant.scales import SAWB_COEFFICIENTS, sawb_coefficients, sawb_scale

# E[w²] = 4, E|w| = 1: α = 2·c1 − c2
W = torch.tensor([0.0, 0.0, 0.0, -4.0])


@pytest.mark.parametrize(
    ("bits", "zero", "alpha"),
    [
        (4, True, 2 * 12.1 - 12.2),
        (2, False, 2 * 3.212 - 2.178),
        (2, True, 2 * 2.6 - 1.71),
        (4, False, 2 * 12.68 - 12.80),
    ],
)
def test_sawb_hand_values(bits: int, zero: bool, alpha: float) -> None:
    assert_close(sawb_scale(W, sawb_coefficients(bits, zero)), torch.tensor(alpha))


def test_the_two_coefficient_sets_of_the_brief() -> None:
    assert sawb_coefficients(4) == (12.1, 12.2)
    assert sawb_coefficients(2, zero=False) == (3.212, 2.178)
    # w = [1, 2, 3, 4]·s: E|w| = 2.5, √E[w²] = √7.5
    w = torch.tensor([1.0, -2.0, 3.0, -4.0], dtype=torch.float64)
    assert_close(sawb_scale(w, (12.1, 12.2)), torch.tensor(12.1 * math.sqrt(7.5) - 30.5, dtype=torch.float64))
    assert_close(sawb_scale(w, (3.212, 2.178)), torch.tensor(3.212 * math.sqrt(7.5) - 2.178 * 2.5, dtype=torch.float64))


def test_guards_for_degenerate_tensors() -> None:
    # equal magnitudes: 12.1·1 − 12.2·1 < 0 → max|w|; the 2-bit pair stays positive
    w = torch.tensor([1.0, -1.0, 1.0, -1.0])
    assert sawb_scale(w, (12.1, 12.2)).item() == 1.0
    assert_close(sawb_scale(w, (3.212, 2.178)), torch.tensor(3.212 - 2.178))
    zero = sawb_scale(torch.zeros(5), (12.1, 12.2))
    assert zero.item() == torch.finfo(torch.float32).tiny
    assert torch.equal(SAWBQuantizer(4)(torch.zeros(5)), torch.zeros(5))


def test_unknown_bit_width_lists_the_known_ones() -> None:
    with pytest.raises(
        ValueError,
        match=r"no SAWB coefficients for bits=9 zero=True; known: bits=2 zero=False, .*, bits=8 zero=True \(or pass",
    ):
        sawb_coefficients(9)


def test_every_zero_level_grid_from_2_to_8_bits_has_coefficients() -> None:
    # the published pairs for 2 and 4 bits, the ones fitted by scripts/fit_sawb.py for the others
    expected = {
        2: (2.6, 1.71),
        3: (6.822, 6.143),
        4: (12.1, 12.2),
        5: (16.03, 16.53),
        6: (20.76, 21.98),
        7: (25.56, 27.52),
        8: (30.41, 33.15),
    }
    assert {bits: sawb_coefficients(bits, zero=True) for bits in range(2, 9)} == expected
    assert all(SAWBQuantizer(bits).coefficients == expected[bits] for bits in expected)


def _mse_ratio(quantizer: SAWBQuantizer, w: torch.Tensor) -> float:
    """MSE at SAWB's α over the best MSE on a fine α grid around it (the optimum must be inside)."""
    alpha = sawb_scale(w, quantizer.coefficients)
    alphas = alpha * torch.linspace(0.6, 1.4, 161, dtype=w.dtype)
    mse = torch.stack([(quantizer.round_to_grid(w, a) - w).square().mean() for a in alphas])
    best = int(mse.argmin())
    assert 0 < best < len(alphas) - 1
    return float((quantizer.round_to_grid(w, alpha) - w).square().mean() / mse[best])


def _samples(n: int = 200_000) -> dict[str, torch.Tensor]:
    # one point per equal-probability slice (the inverse CDF at (i + ½)/n): no sampling noise, so the
    # best clip of the sample is the population's even at 8 bits, where it hangs on a few tail points
    u = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    gauss = torch.distributions.Normal(0.0, 1.0).icdf(u)
    laplace = torch.distributions.Laplace(0.0, 1.0).icdf(u)
    return {"gaussian": gauss, "laplace": laplace}


@pytest.mark.parametrize(("bits", "zero"), list(SAWB_COEFFICIENTS))
def test_coefficients_give_near_optimal_clips_for_their_grid(bits: int, zero: bool) -> None:
    # what SAWB fits: α minimizing the quantization MSE of its level set (measured: ≤ 1.5 % above the optimum)
    for name, w in _samples().items():
        assert _mse_ratio(SAWBQuantizer(bits, zero=zero), w) <= 1.02, name


def test_two_bit_coefficients_belong_to_their_level_set() -> None:
    # swapping the 2-bit pairs between the 4-level and the ternary grid costs ≥ 4 % MSE on Gaussian weights
    w = _samples()["gaussian"]
    four_levels = SAWBQuantizer(2, zero=False, coefficients=sawb_coefficients(2, zero=True))
    ternary = SAWBQuantizer(2, zero=True, coefficients=sawb_coefficients(2, zero=False))
    assert _mse_ratio(four_levels, w) > 1.04
    assert _mse_ratio(ternary, w) > 1.04
