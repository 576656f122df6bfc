"""ASkewSGD: each branch of the skewed direction by hand, then invariants."""

import math

import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from torch.testing import assert_close

from qnnlab.optim import ASkewSGD, skewed_direction
from qnnlab.quant import binary_dphi, binary_phi


def one_step(w: float, g: float, *, lr: float = 0.1, eps: float = 0.1, alpha: float = 1.0) -> float:
    p = torch.nn.Parameter(torch.tensor([w]))
    p.grad = torch.tensor([g])
    ASkewSGD([p], lr=lr, eps=eps, alpha=alpha).step()
    return p.item()


# w = 0.5, ε = 0.1, α = 1: φ = 0.1 − (0.25 − 1)² = −0.4625, φ' = −4·0.5·(0.25 − 1) = 1.5,
# K = −αφ/φ' = 0.4625/1.5 = 0.308333...
K_HALF = 0.4625 / 1.5


def test_constraint_values() -> None:
    w = torch.tensor([0.5, 0.9, 0.0, 1.0])
    assert_close(binary_phi(w, 0.1), torch.tensor([-0.4625, 0.1 - 0.19**2, -0.9, 0.1]))
    assert_close(binary_dphi(w), torch.tensor([1.5, -4 * 0.9 * (0.81 - 1), 0.0, 0.0]))


def test_feasible_point_takes_plain_gradient() -> None:
    # w = 0.9: φ = 0.1 − 0.0361 = 0.0639 ≥ 0
    assert_close(skewed_direction(torch.tensor([0.9]), torch.tensor([0.7]), 0.1, 1.0), torch.tensor([0.7]))
    assert one_step(0.9, 0.7) == pytest.approx(0.9 - 0.1 * 0.7)


def test_infeasible_but_minus_g_satisfies_velocity_condition() -> None:
    # g = −1: (−g)K = 0.3083 > K² = 0.0951, so s = g and w⁺ = 0.5 + 0.1
    s = skewed_direction(torch.tensor([0.5]), torch.tensor([-1.0]), 0.1, 1.0)
    assert_close(s, torch.tensor([-1.0]))
    assert one_step(0.5, -1.0) == pytest.approx(0.6)


def test_corrective_step_minus_k() -> None:
    # g = +1 would push w towards 0: (−g)K = −0.308 < K², so s = −K and w moves towards 1
    s = skewed_direction(torch.tensor([0.5, -0.5]), torch.tensor([1.0, -1.0]), 0.1, 1.0)
    assert_close(s, torch.tensor([-K_HALF, K_HALF]))
    assert one_step(0.5, 1.0) == pytest.approx(0.5 + 0.1 * K_HALF)
    assert one_step(-0.5, -1.0) == pytest.approx(-0.5 - 0.1 * K_HALF)
    # α scales K linearly
    assert one_step(0.5, 1.0, alpha=0.5) == pytest.approx(0.5 + 0.1 * 0.5 * K_HALF)


@pytest.mark.parametrize("w", [0.0, 1.0, -1.0])
def test_singular_points_take_plain_gradient(w: float) -> None:
    # φ' = 0 at w ∈ {0, ±1}: K is undefined there and the direction must stay finite
    g = torch.tensor([0.3, -0.3])
    s = skewed_direction(torch.full((2,), w), g, 0.1, 1.0)
    assert_close(s, g)
    assert torch.isfinite(s).all()


def test_overflowing_k_takes_plain_gradient() -> None:
    # float32: w subnormal makes φ' subnormal and K = −αφ/φ' overflow; the step must stay finite
    w = torch.tensor([1e-45, -1e-45])
    s = skewed_direction(w, torch.tensor([0.5, 0.5]), 0.1, 1.0)
    assert_close(s, torch.tensor([0.5, 0.5]))


def test_box_clamp() -> None:
    assert one_step(0.9, -0.7) == pytest.approx(0.97)
    assert one_step(0.95, -1.0) == 1.0
    assert one_step(-0.95, 1.0) == -1.0


def test_inactive_constraint_is_clipped_sgd() -> None:
    # ε = 1: every w in [−1, 1] is feasible, so ASkewSGD is SGD followed by a clip
    w = torch.linspace(-1, 1, 11)
    g = torch.randn(11)
    assert_close(skewed_direction(w, g, 1.0, 1.0), g)


def scalar_direction(w: float, g: float, eps: float, alpha: float) -> float:
    """The same rule written per scalar, from the formula (the reference for the vectorized one)."""
    phi = eps - (w * w - 1) ** 2
    dphi = -4 * w * (w * w - 1)
    if phi >= 0 or dphi == 0:
        return g
    k = -alpha * phi / dphi
    return g if (-g) * k > k * k else -k


unit = st.floats(-1, 1, allow_nan=False, width=32)
grads = st.floats(-10, 10, allow_nan=False, width=32)
levels = st.floats(1e-4, 2.0)


@given(st.lists(st.tuples(unit, grads), min_size=1, max_size=40), levels, st.floats(0.01, 10.0))
def test_vectorized_matches_scalar_reference(pairs, eps: float, alpha: float) -> None:
    w = torch.tensor([p[0] for p in pairs], dtype=torch.float64)
    g = torch.tensor([p[1] for p in pairs], dtype=torch.float64)
    expected = [scalar_direction(a, b, eps, alpha) for a, b in zip(w.tolist(), g.tolist(), strict=True)]
    assert_close(skewed_direction(w, g, eps, alpha), torch.tensor(expected, dtype=torch.float64))


@given(unit, grads, levels, st.floats(0.01, 10.0))
def test_velocity_condition_holds(w: float, g: float, eps: float, alpha: float) -> None:
    # v = −s satisfies φ'v + αφ ≥ 0 wherever φ' ≠ 0: the projection onto the half-line
    wt = torch.tensor([w], dtype=torch.float64)
    dphi = binary_dphi(wt).item()
    assume(abs(dphi) > 1e-6)
    v = -skewed_direction(wt, torch.tensor([g], dtype=torch.float64), eps, alpha).item()
    phi = binary_phi(wt, eps).item()
    if phi < 0:
        assert dphi * v + alpha * phi >= -1e-9 * max(1.0, abs(dphi * v))


@given(st.lists(unit, min_size=1, max_size=30), st.lists(grads, min_size=30, max_size=30), levels, st.floats(1e-3, 5.0))
def test_iterates_stay_in_box(ws, gs, eps: float, lr: float) -> None:
    p = torch.nn.Parameter(torch.tensor(ws))
    opt = ASkewSGD([p], lr=lr, eps=eps, alpha=1.0, momentum=0.5)
    for g in gs[:5]:
        p.grad = torch.full_like(p, g)
        opt.step()
        assert (p.abs() <= 1).all()


@given(unit, grads, levels, st.floats(1e-3, 1.0))
def test_feasible_inward_step_equals_sgd(w: float, g: float, eps: float, lr: float) -> None:
    # from a point of C_ε, with a step that stays inside the box, ASkewSGD is exactly SGD
    assume(binary_phi(torch.tensor(w), eps).item() >= 0)
    assume(abs(w - lr * g) <= 1)
    p, q = torch.nn.Parameter(torch.tensor([w])), torch.nn.Parameter(torch.tensor([w]))
    p.grad, q.grad = torch.tensor([g]), torch.tensor([g])
    ASkewSGD([p], lr=lr, eps=eps, alpha=1.0).step()
    torch.optim.SGD([q], lr=lr).step()
    assert torch.equal(p, q)


def test_feasible_intervals_match_closed_form() -> None:
    eps = 0.04  # √ε = 0.2: C_ε ∩ [0, ∞) = [√0.8, √1.2]
    lo, hi = math.sqrt(0.8), math.sqrt(1.2)
    w = torch.tensor([lo - 1e-3, lo + 1e-3, hi - 1e-3, hi + 1e-3], dtype=torch.float64)
    assert (binary_phi(w, eps) >= 0).tolist() == [False, True, True, False]


def test_annealing_drives_weights_to_the_grid() -> None:
    # no loss at all (g = 0): only the corrective steps act, and they reach C_ε as ε shrinks
    p = torch.nn.Parameter(torch.tensor([0.2, -0.4, 0.7, -0.05]))
    opt = ASkewSGD([p], lr=0.5, eps=1.0, alpha=1.0)
    for eps in [0.5, 0.1, 0.01, 1e-3, 1e-4]:
        opt.param_groups[0]["eps"] = eps
        for _ in range(50):
            p.grad = torch.zeros_like(p)
            opt.step()
    assert (binary_phi(p.detach(), 1e-4) >= -1e-6).all()
    assert_close(p.detach().abs(), torch.ones(4), atol=0.01, rtol=0)
    assert_close(p.detach().sign(), torch.tensor([1.0, -1.0, 1.0, -1.0]))
