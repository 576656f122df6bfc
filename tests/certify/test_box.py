"""The box relaxation: the Frank–Wolfe bound by hand, its validity at any point, and the projected Newton solver."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qnnlab.certify import box_bound, certified_gap, frank_wolfe_bound, linear_objective, relax
from qnnlab.certify.box import ROUNDING, duality_gap


def test_frank_wolfe_bound_by_hand() -> None:
    # f(u) = 1, g = (2, −1) at u = (0, ½) in [−1, 1]²: min_v g·(v − u) = 2·(−1) + (−1)·(1 − ½) = −2.5
    g, u, lo, hi = np.array([2.0, -1.0]), np.array([0.0, 0.5]), -np.ones(2), np.ones(2)
    assert frank_wolfe_bound(1.0, g, u, lo, hi) == pytest.approx(-1.5 - ROUNDING * 1.0, abs=1e-15)
    assert duality_gap(g, u, lo, hi) == 2.5
    # a fixed side (lo = hi) adds nothing; a point outside the box still gives a valid bound
    lo[1] = hi[1] = 1.0
    assert frank_wolfe_bound(1.0, g, u, lo, hi) == pytest.approx(-1.0 - 0.5 - ROUNDING, abs=1e-15)
    assert frank_wolfe_bound(1.0, g, np.array([3.0, 1.0]), lo, hi) == pytest.approx(1.0 - 8.0 - ROUNDING, abs=1e-14)


def test_box_bound_by_hand() -> None:
    # f(u) = (u − ½)² (one feature, y = ½): f_box = 0 at u = ½, binary optimum ¼; with y = 2: f_box = 1 = optimum
    half = box_bound(linear_objective("squared", np.ones((1, 1)), np.array([0.5])))
    assert half.point == pytest.approx([0.5]) and half.lower == pytest.approx(0.0, abs=1e-11) and half.lower <= 0.0
    two = box_bound(linear_objective("squared", np.ones((1, 1)), np.array([2.0])))
    assert two.point.tolist() == [1.0] and two.lower == pytest.approx(1.0, rel=1e-11) and two.lower <= 1.0
    # (u₁ + u₂ − 3)² + (u₁ − u₂)²: minimized on the box at the corner (1, 1), value 1 + 0, over two rows
    corner = box_bound(linear_objective("squared", np.array([[1.0, 1.0], [1.0, -1.0]]), np.array([3.0, 0.0])))
    assert corner.point.tolist() == [1.0, 1.0] and corner.lower == pytest.approx(0.5, rel=1e-11)


def test_certified_gap_by_hand() -> None:
    assert certified_gap(0.6, 0.5) == pytest.approx(0.2)
    assert certified_gap(0.0, 0.0) == 0.0 and certified_gap(1.0, 0.0) == float("inf")
    assert certified_gap(-0.5, -1.0) == pytest.approx(0.5)


def _problem(kind: str, d: int, n: int, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)) * 0.7 + 0.5 * rng.standard_normal((n, 1))  # correlated features
    w = rng.uniform(-1, 1, d)
    if kind == "logistic":
        y = (rng.random(n) < 1 / (1 + np.exp(-x @ w))).astype(float)
    elif kind == "cross_entropy":
        y = np.arange(n) % 3
    else:
        y = x @ w + 0.3 * rng.standard_normal(n)
    return linear_objective(kind, x, y)


@settings(max_examples=30)
@given(
    kind=st.sampled_from(["logistic", "cross_entropy", "squared"]),
    d=st.integers(1, 5),
    seed=st.integers(0, 10_000),
    u=st.lists(st.floats(-1, 1), min_size=5, max_size=5),
)
def test_every_bound_is_below_every_sign_vector_and_every_box_point(kind, d, seed, u) -> None:
    f = _problem(kind, d, 40, seed)
    signs = np.array(list(itertools.product([-1.0, 1.0], repeat=f.dim)))
    binary_min = f.values(signs).min()
    lo, hi = -np.ones(f.dim), np.ones(f.dim)
    root = box_bound(f)
    assert root.lower <= binary_min
    assert root.lower <= root.value <= f.value(np.clip(root.point, -1, 1)) + 1e-15
    # the Frank–Wolfe bound at an arbitrary, far from optimal point is valid too
    point = np.resize(np.array(u), f.dim)
    value, grad = f.value_grad(point)
    any_bound = frank_wolfe_bound(value, grad, point, lo, hi)
    assert any_bound <= root.value + 1e-12 and any_bound <= binary_min
    # a node: the first coordinate fixed to +1; the bound holds for the sign vectors in it
    lo[0] = 1.0
    node = relax(f, lo, hi, point)
    assert node.point[0] == 1.0 and node.lower <= f.values(signs[signs[:, 0] == 1.0]).min()
    # a smaller box, a larger minimum: L_node = f(x_node) − gap_node ≥ min_node − gap_node ≥ min_root − gap_node, and
    # min_root ≥ L_root (the gap is the solver's own: it may stop above its tolerance when f resolves no decrease)
    assert node.lower >= root.lower - (node.value - node.lower) - 1e-12


@pytest.mark.parametrize("kind", ["logistic", "cross_entropy", "squared"])
def test_newton_reaches_scipys_box_minimum(kind: str) -> None:
    from scipy.optimize import Bounds, minimize

    f = _problem(kind, 6, 200, 3)
    lo, hi = -np.ones(f.dim), np.ones(f.dim)
    lo[1] = hi[1] = -1.0
    ours = relax(f, lo, hi)
    ref = minimize(f.value_grad, np.zeros(f.dim), jac=True, method="L-BFGS-B", bounds=Bounds(lo, hi), tol=1e-14)
    assert ours.value <= ref.fun + 1e-12
    assert ours.value - ours.lower <= 1e-9 * max(1.0, ours.value)  # tight: the duality gap is closed
    assert np.all((ours.point >= lo) & (ours.point <= hi))
