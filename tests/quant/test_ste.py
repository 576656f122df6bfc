"""Straight-through estimators and PACT: forward and backward on hand-picked points."""

import doctest
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.testing import assert_close

import qnnlab.quant.ste as ste_module
from qnnlab.quant.grids import sign
from qnnlab.quant.ste import ESTIMATORS, pact, straight_through

# both sides of every kink: ±1 (hardtanh), 0 (ReLU), 1 (clipped ReLU with c = 1)
X = [-1.5, -1.0001, -1.0, -0.5, -0.0001, 0.0, 0.0001, 0.5, 0.9999, 1.0, 1.0001, 1.5]
UPSTREAM = torch.arange(1.0, len(X) + 1)
MASKS = {
    "identity": [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
    "clipped": [0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0],
    "relu": [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1],
    "clipped_relu": [0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0],
}


def test_every_estimator_is_covered() -> None:
    assert set(MASKS) == set(ESTIMATORS.names())


@pytest.mark.parametrize("estimator", sorted(MASKS))
def test_sign_ste_forward_and_backward(estimator: str) -> None:
    x = torch.tensor(X, requires_grad=True)
    y = straight_through(x, sign, estimator)
    assert y.tolist() == [-1, -1, -1, -1, -1, 1, 1, 1, 1, 1, 1, 1]
    y.backward(UPSTREAM)
    assert_close(x.grad, UPSTREAM * torch.tensor(MASKS[estimator], dtype=torch.float32))
    assert_close(ESTIMATORS.get(estimator)(x.detach()), torch.tensor(MASKS[estimator], dtype=torch.float32))


def test_clip_threshold_moves_the_kinks() -> None:
    x = torch.tensor([-3.0, -2.0, 0.5, 2.0, 2.5, 3.0, 3.5], requires_grad=True)
    straight_through(x, sign, "clipped", clip=3.0).sum().backward()
    assert x.grad.tolist() == [1, 1, 1, 1, 1, 1, 0]
    x.grad = None
    straight_through(x, sign, "clipped_relu", clip=3.0).sum().backward()
    assert x.grad.tolist() == [0, 0, 1, 1, 1, 0, 0]


def test_bad_estimator_and_clip_fail_with_the_choices() -> None:
    x = torch.zeros(2)
    with pytest.raises(KeyError, match="unknown estimator 'tanh'; choose from: clipped, clipped_relu, identity, relu"):
        straight_through(x, sign, "tanh")
    with pytest.raises(ValueError, match=r"Invalid clip: 0\.0; must be > 0"):
        straight_through(x, sign, "clipped", clip=0.0)


def test_pact_hand_values() -> None:
    # k = 2, α = 3: n = 3 steps of 1; 0.5 is a tie and goes up; x ≥ α saturates
    x = torch.tensor([-1.0, 0.0, 0.4, 0.5, 1.6, 2.99, 3.0, 5.0], requires_grad=True)
    alpha = torch.tensor(3.0, requires_grad=True)
    y = pact(x, alpha, 2)
    assert y.tolist() == [0, 0, 0, 1, 2, 3, 3, 3]
    y.backward(torch.arange(1.0, 9.0))
    assert x.grad.tolist() == [0, 2, 3, 4, 5, 6, 0, 0]  # 1{0 ≤ x < α}: x = 0 passes, x = α does not
    assert alpha.grad.item() == 7 + 8  # 1{x ≥ α}
    # α = 2, k = 2: step 2/3; 1 → round(1.5) = 2 → 4/3
    assert_close(pact(torch.tensor([1.0, 0.3, 9.0]), torch.tensor(2.0), 2), torch.tensor([4 / 3, 0.0, 2.0]))


def test_pact_alpha_gradient_skipped_when_not_required() -> None:
    x = torch.tensor([1.0, 4.0], requires_grad=True)
    pact(x, torch.tensor(3.0), 2).sum().backward()
    assert x.grad.tolist() == [1, 0]


points = st.lists(st.floats(-3, 6, allow_nan=False), min_size=1, max_size=30)


@given(points, st.floats(0.5, 4.0), st.integers(1, 4), st.integers(0, 2**31 - 1))
def test_pact_gradients_match_finite_differences_of_the_clip(values, alpha0, bits, seed) -> None:
    # the rounding is straight-through, so both STE gradients are the derivatives of
    # Σ g·clip(x, 0, α), checked by central differences away from the kinks x ∈ {0, α}
    h = 1e-4
    x = torch.tensor(values, dtype=torch.float64)
    x = x[((x - alpha0).abs() > 1e-2) & (x.abs() > 1e-2)]
    g = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    xr = x.clone().requires_grad_(True)
    alpha = torch.tensor(alpha0, dtype=torch.float64, requires_grad=True)
    pact(xr, alpha, bits).backward(g)

    def clipped(x_: torch.Tensor, a: float) -> torch.Tensor:
        return (g * x_.clamp(0.0, a)).sum()

    fd_alpha = (clipped(x, alpha0 + h) - clipped(x, alpha0 - h)) / (2 * h)
    assert_close(alpha.grad, fd_alpha, atol=1e-8, rtol=1e-6)
    fd_x = (g * ((x + h).clamp(0.0, alpha0) - (x - h).clamp(0.0, alpha0))) / (2 * h)
    assert_close(xr.grad, fd_x, atol=1e-8, rtol=1e-6)


def test_docstring_examples_run() -> None:
    assert doctest.testmod(ste_module).failed == 0


@pytest.mark.parametrize("estimator", sorted(MASKS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@given(
    values=st.lists(st.floats(-4, 4, allow_nan=False, width=16), min_size=1, max_size=40),
    clip=st.sampled_from([0.5, 1.0, 3.0, 1 / 3]),
)
def test_the_one_kernel_backward_equals_grad_times_the_proxy(estimator: str, dtype, values, clip) -> None:
    # the points themselves, the kinks ±c, 0 and the floats next to them
    c = torch.tensor(clip, dtype=dtype)
    kinks = torch.stack([c, -c, torch.zeros((), dtype=dtype)])
    near = [torch.nextafter(kinks, torch.tensor(d, dtype=dtype)) for d in (-math.inf, math.inf)]
    x = torch.cat([torch.tensor(values, dtype=dtype), kinks, *near]).requires_grad_(True)
    upstream = torch.randn(len(x), generator=torch.Generator().manual_seed(len(values))).to(dtype)
    straight_through(x, sign, estimator, clip=clip).backward(upstream)
    want = upstream * ESTIMATORS.get(estimator)(x.detach(), clip=clip)
    assert torch.equal(x.grad, want)  # −0 and +0 compare equal
