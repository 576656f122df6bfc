"""k-bit ASkewSGD: the constraint and each branch of the direction by hand, the held grid step, invariants."""

import math

import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from torch.testing import assert_close

from qnnlab.config import ConfigError, validate_config
from qnnlab.experiments.presets import preset_runs
from qnnlab.optim import ASkewSGD, kbit_skewed_direction
from qnnlab.quant.constraints import kbit_dphi, kbit_feasible_radius, kbit_phi
from qnnlab.quant.scales import sawb_coefficients, sawb_scale
from qnnlab.train.loop import fit


def t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def test_constraint_values_by_hand() -> None:
    # levels −3..3, ε = 0.01; (u − a)(u − b) and 2u − a − b per point:
    # 0.3: a = 0, b = 1: −0.21, −0.4 | −1.3: a = −1, b = −2: −0.21, 0.4 | 0.05: −0.0475, −0.9
    # 0: on a level | 0.5: midpoint (round half to even: a = 0, b = 1) | 3.4: a = 3, b = 2 (inside the grid): 0.56, 1.8
    u = t(0.3, -1.3, 0.05, 0.0, 0.5, 3.4)
    assert_close(kbit_phi(u, 0.01, 3), t(-0.0341, -0.0341, 0.01 - 0.0475**2, 0.01, -0.0525, 0.01 - 0.56**2))
    assert_close(kbit_dphi(u, 3), t(-0.168, 0.168, -0.0855, 0.0, 0.0, -2.016))


def test_feasible_radius() -> None:
    r = kbit_feasible_radius(0.01)
    assert r == pytest.approx((1 - math.sqrt(0.6)) / 2)
    assert r * (1 - r) == pytest.approx(0.1)  # the product (u − a)(b − u) = √ε at the boundary
    assert kbit_phi(t(r - 1e-9, r + 1e-9), 0.01, 3).sign().tolist() == [1.0, -1.0]
    assert kbit_feasible_radius(1 / 16) == kbit_feasible_radius(1.0) == 0.5


# Δ = 0.5, w = 0.15 (u = 0.3), ε = 0.01, α = 1: dφ/dw = −0.168/0.5 = −0.336, K = −αφ/(dφ/dw) = −0.0341/0.336
K = -0.0341 / 0.336


def direction(w: float, g: float, *, lr: float = 0.1, eps: float = 0.01, bits: int = 3) -> float:
    return kbit_skewed_direction(t(w), t(g), t(0.5), eps, 1.0, lr, bits).item()


def test_corrective_step_is_minus_k_in_weight_units() -> None:
    # (−g)K = 0.05·0.1015 < K²: the coordinate is pushed back toward its level 0
    assert direction(0.15, 0.05) == pytest.approx(-K)
    assert direction(-0.15, -0.05) == pytest.approx(K)  # mirror image


def test_minus_g_meeting_the_velocity_condition_is_plain() -> None:
    # g = 0.2: (−g)K = 0.0203 > K² = 0.0103
    assert direction(0.15, 0.2) == 0.2


def test_corrective_step_is_capped_at_a_quarter_bin() -> None:
    # lr = 2: cap = Δ/(4·lr) = 0.0625 < |K| = 0.1015
    assert direction(0.15, 0.05, lr=2.0) == pytest.approx(0.0625)
    # the test (−g)K > K² keeps the unclamped K: with g = 0.08, (−g)K = 0.0081 < K² = 0.0103, so the
    # step is corrective, although the clamped K = −0.0625 would pass it (0.005 > 0.0039)
    assert direction(0.15, 0.08, lr=2.0) == pytest.approx(0.0625)


@pytest.mark.parametrize("w", [0.025, -0.975, 0.0, 0.25, 1.5])
def test_feasible_and_singular_points_take_the_plain_gradient(w: float) -> None:
    # u = 0.05, −1.95: within r_ε ≈ 0.113 of a level | u = 0, 3: on a level | u = 0.5: a midpoint
    assert direction(w, 0.7) == 0.7


def test_inactive_level_is_plain_everywhere_on_the_hull() -> None:
    w = torch.linspace(-1.5, 1.5, 31, dtype=torch.float64)
    g = torch.randn(31, dtype=torch.float64)
    assert torch.equal(kbit_skewed_direction(w, g, torch.full_like(w, 0.5), 1 / 16, 1.0, 0.1, 3), g)


def test_one_step_by_hand() -> None:
    # 2 bits (levels −Δ, 0, Δ), SAWB pair (2, 0): α = 2·√E[w²] = 2·0.25 = 0.5 = Δ; zero gradient
    # u = 0.6: a = 1, b = 0, φ = 0.01 − 0.24² = −0.0476, φ' = 0.096, K = 0.0476·0.5/0.096 → 0.3 + 0.1·K
    # u = 0.8: φ = 0.01 − 0.16² = −0.0156, φ' = 0.192, K = 0.0156·0.5/0.192; u = 0: on the level 0
    p = torch.nn.Parameter(torch.tensor([0.3, 0.4, 0.0, 0.0]))
    opt = ASkewSGD([p], lr=0.1, eps=0.01, bits=2, sawb=(2.0, 0.0))
    p.grad = torch.zeros(4)
    opt.step()
    assert_close(p.detach(), torch.tensor([0.3 + 0.1 * 0.0476 * 0.5 / 0.096, 0.4 + 0.1 * 0.0156 * 0.5 / 0.192, 0, 0]))
    assert opt.state[p]["grid_step"].item() == pytest.approx(0.5)
    (q,), scale = opt.quantize([p], 2)
    assert torch.equal(q, torch.tensor([0.5, 0.5, 0.0, 0.0])) and scale.item() == pytest.approx(0.5)


def test_the_step_is_held_from_the_first_active_step_and_bounds_the_iterate() -> None:
    p = torch.nn.Parameter(torch.tensor([0.3, 0.4, 0.0, 0.0]))
    opt = ASkewSGD([p], lr=0.1, eps=0.01, bits=2, sawb=(2.0, 0.0))
    p.grad = torch.zeros(4)
    opt.step()
    with torch.no_grad():
        p.mul_(3)  # SAWB of these weights would be 1.5
    p.grad = torch.tensor([0.0, 0.0, -1.0, 0.0])
    opt.step()
    assert opt.state[p]["grid_step"].item() == pytest.approx(0.5)
    assert p.detach().abs().max().item() == pytest.approx(0.5)  # clamped to the hull [−Δ, Δ]
    assert opt.quantize([p], 2)[1].item() == pytest.approx(0.5)


def test_inactive_constraint_is_the_base_step_and_follows_sawb() -> None:
    # ε ≥ 1/16: plain SGD, nothing clamped, Δ re-estimated from the current weights
    w0 = torch.tensor([0.3, -2.0, 0.05, 0.7])
    p, q = torch.nn.Parameter(w0.clone()), torch.nn.Parameter(w0.clone())
    opt = ASkewSGD([p], lr=0.1, eps=0.07, bits=4)
    ref = torch.optim.SGD([q], lr=0.1)
    for g in (torch.tensor([0.1, -0.3, 0.5, 0.2]), torch.tensor([-1.0, 0.4, 0.0, 0.3])):
        p.grad, q.grad = g.clone(), g.clone()
        opt.step()
        ref.step()
    assert torch.equal(p, q) and "grid_step" not in opt.state[p]
    expected = sawb_scale(p.detach(), sawb_coefficients(4)) / 7
    assert_close(opt.quantize([p], 4)[1][0], expected)


def test_quantize_refuses_another_bit_width() -> None:
    p = torch.nn.Parameter(torch.ones(3))
    with pytest.raises(ValueError, match="trains for bits=4; it cannot be judged on bits=2"):
        ASkewSGD([p], bits=4).quantize([p], 2)


@pytest.mark.parametrize(("kwargs", "message"), [({"bits": 0}, "Invalid bits: 0"), ({"bits": 9}, "Invalid bits: 9")])
def test_invalid_bits(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ASkewSGD([torch.nn.Parameter(torch.ones(2))], **kwargs)


def test_reestimated_sawb_shrinks() -> None:
    # why the step is held: SAWB re-estimated on its own quantization, or on weights clamped to its own
    # clip, comes out smaller every round (the numbers in ASkewSGD's docstring)
    gen = torch.Generator().manual_seed(0)
    gauss = torch.randn(100_000, generator=gen)

    def requantized(w: torch.Tensor, bits: int, rounds: int) -> float:
        c, m, start = sawb_coefficients(bits), 2 ** (bits - 1) - 1, sawb_scale(w, sawb_coefficients(bits))
        for _ in range(rounds):
            d = sawb_scale(w, c) / m
            w = d * torch.round((w / d).clamp(-m, m))
        return float(sawb_scale(w, c) / start)

    assert requantized(gauss, 2, 200) < 0.1
    assert requantized(gauss, 4, 200) < 0.6
    w = torch.rand(100_000, generator=gen) * 2 - 1
    start = sawb_scale(w, sawb_coefficients(4))
    for _ in range(10):
        w = w.clamp(-sawb_scale(w, sawb_coefficients(4)), sawb_scale(w, sawb_coefficients(4)))
    assert float(sawb_scale(w, sawb_coefficients(4)) / start) < 0.05


def test_annealing_drives_weights_onto_the_held_grid() -> None:
    # no loss (g = 0): only the corrective steps act, and they reach C_ε as ε shrinks
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.randn(200) * 0.3)
    opt = ASkewSGD([p], lr=0.5, eps=1.0, bits=3)
    for eps in [0.05, 0.01, 1e-3, 1e-4, 1e-5]:
        opt.param_groups[0]["eps"] = eps
        for _ in range(60):
            p.grad = torch.zeros_like(p)
            opt.step()
    (q,), step = opt.quantize([p], 3)
    assert (kbit_phi(p.detach() / step, 1e-5, 3) >= -1e-6).all()
    assert_close(p.detach(), q, atol=1e-2 * step.item(), rtol=0)


# -- properties ---------------------------------------------------------------------------------

grid_units = st.floats(-4.5, 4.5, allow_nan=False)
grads = st.floats(-10, 10, allow_nan=False)
active = st.floats(1e-5, 0.06)
bit_widths = st.integers(2, 4)


def scalar_direction(u: float, g: float, step: float, eps: float, alpha: float, lr: float, top: int) -> float:
    """The rule per scalar, from the formulas (the reference for the vectorized one)."""
    a = min(max(round(u), -top), top)  # Python's round: half to even, like torch.round
    side = (u > a) - (u < a)
    b = a + side if abs(a + side) <= top else a - side
    phi = eps - ((u - a) * (u - b)) ** 2
    dphi = -2 * (u - a) * (u - b) * (2 * u - a - b) / step
    if phi >= 0 or dphi == 0:
        return g
    k = -alpha * phi / dphi
    if not math.isfinite(k) or (-g) * k > k * k:
        return g
    cap = step / (4 * lr)
    return -min(max(k, -cap), cap)


@given(
    st.lists(st.tuples(grid_units, grads), min_size=1, max_size=30),
    st.floats(0.01, 3.0),
    active,
    st.floats(0.01, 10.0),
    st.floats(1e-3, 2.0),
    bit_widths,
)
def test_vectorized_matches_scalar_reference(pairs, step: float, eps: float, alpha: float, lr: float, bits: int):
    top = 2 ** (bits - 1) - 1
    w = t(*(u * step for u, _ in pairs))
    g = t(*(gi for _, gi in pairs))
    pairs = zip(w.tolist(), g.tolist(), strict=True)
    expected = [scalar_direction(wi / step, gi, step, eps, alpha, lr, top) for wi, gi in pairs]
    got = kbit_skewed_direction(w, g, torch.full_like(w, step), eps, alpha, lr, bits)
    assert_close(got, t(*expected))


@given(grid_units, grads, st.floats(0.01, 3.0), active, st.floats(0.01, 10.0), st.floats(1e-3, 2.0), bit_widths)
def test_corrective_steps_meet_the_velocity_condition_or_the_cap(u, g, step, eps, alpha, lr, bits) -> None:
    top = 2 ** (bits - 1) - 1
    ut = t(u)
    phi, dphi = kbit_phi(ut, eps, top).item(), kbit_dphi(ut, top).item() / step
    assume(abs(dphi) > 1e-6)
    s = kbit_skewed_direction(ut * step, t(g), t(step), eps, alpha, lr, bits).item()
    cap = step / (4 * lr)
    if phi >= 0:
        assert s == g  # ε-feasible points are untouched
    elif s != g:
        v = -s
        # the projection onto {v : φ'v + αφ ≥ 0}, unless the cap cut it short (then it moves the right way)
        assert abs(s) <= cap * (1 + 1e-12)
        assert dphi * v + alpha * phi >= -1e-9 * max(1.0, abs(dphi * v)) or abs(abs(s) - cap) <= 1e-12 * cap
        assert dphi * v > 0


@given(
    st.lists(st.floats(-2, 2, allow_nan=False, width=32), min_size=2, max_size=20),
    st.lists(grads, min_size=5, max_size=5),
    active,
    st.sampled_from([{"base": "sgd"}, {"base": "sgd", "momentum": 0.9}, {"base": "adam"}]),
    bit_widths,
)
def test_iterates_stay_in_the_held_hull_and_quantize_onto_the_grid(ws, gs, eps: float, base: dict, bits: int) -> None:
    p = torch.nn.Parameter(torch.tensor(ws))
    assume(p.abs().max() > 0)
    opt = ASkewSGD([p], lr=0.05, eps=eps, bits=bits, **base)
    top = 2 ** (bits - 1) - 1
    for g in gs:
        p.grad = torch.full_like(p, g)
        opt.step()
        step = opt.state[p]["grid_step"]
        assert (p.abs() <= top * step * (1 + 1e-6)).all()
    (q,), scale = opt.quantize([p], bits)
    codes = q / scale
    assert torch.equal(scale, step[None])
    assert_close(codes, codes.round(), atol=1e-5, rtol=0)
    assert (codes.abs() <= top + 1e-5).all()


@given(st.lists(st.floats(-1, 1, allow_nan=False, width=32), min_size=1, max_size=20), grads, bit_widths)
def test_corrective_plain_sgd_steps_move_at_most_a_quarter_bin(ws, g: float, bits: int) -> None:
    p = torch.nn.Parameter(torch.tensor(ws))
    assume(p.abs().max() > 0)
    opt = ASkewSGD([p], lr=0.5, eps=1e-4, bits=bits)
    before = p.detach().clone()
    p.grad = torch.full_like(p, g)
    opt.step()
    step = opt.state[p]["grid_step"]
    moved = (p.detach() - before).abs()
    plain = torch.isclose(moved, torch.full_like(moved, 0.5 * abs(g)))
    top = 2 ** (bits - 1) - 1
    clipped = p.detach().abs() >= top * step * (1 - 1e-6)
    # every entry moved by the plain step, by at most Δ/4, or was stopped at the hull
    assert (plain | (moved <= step / 4 * (1 + 1e-5)) | clipped).all()


# -- configs and runs -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"bits": 2, "method": {"name": "askewsgd", "bits": 4}}, r"^config: method\.bits \(4\) must equal bits \(2\)"),
        ({"bits": 3, "method": {"name": "askewsgd"}}, r"^config: method\.bits \(1\) must equal bits \(3\)"),
        ({"bits": 9, "method": {"name": "askewsgd", "bits": 9}}, r"^method\.bits: Input should be less than or equal"),
    ],
)
def test_configs_name_the_bits_field(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        validate_config(changes)


@pytest.mark.slow
def test_ternary_digits_run_trains_on_its_grid() -> None:
    # measured on seed 0: ASkewSGD 96.7 % on its ternary grid; full precision rounded to SAWB's grid 96.4 % with
    # batch-norm statistics re-estimated at Q(w), 91.7 % with those gathered at w
    runs = {c.label: c for c in preset_runs("digits-2bit", 1)}
    ours = fit(runs["askewsgd"])
    stale = fit(runs["sgd (full precision)"].with_(bn_recalibrate=False)).summary
    s = ours.summary
    assert s["on_grid"] and s["near_grid"] > 0.98
    assert s["q_test_acc"] > 0.95 > stale["q_test_acc"]
    for name, q in ours.quantized.items():  # each tensor on its own held SAWB step
        step = ours.grid_scales[name]
        assert torch.equal(q, step * torch.round(q / step)) and (q / step).abs().max() <= 1
