"""Branch-and-bound: the enumerated optimum wherever both apply, valid bounds at every limit, each rule by hand."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from qnnlab.certify import Relaxation, certify, linear_objective
from qnnlab.certify.branch_and_bound import _branch, _fix, _Search
from qnnlab.data.synthetic import correlated_logistic
from qnnlab.train.enumerate import binary_minimum, logistic_losses, model_losses


def _reference(kind: str, x: torch.Tensor, y: torch.Tensor, k: int):
    """``f`` over candidate rows by code independent of qnnlab.certify: the enumeration module's losses."""
    if kind == "logistic":
        return logistic_losses(x, y)
    if kind == "cross_entropy":
        return model_losses(nn.Linear(x.shape[1], k, bias=False), x, y)
    x64, y64 = x.double(), y.double().view(len(y), -1)
    return lambda w: ((x64 @ w.view(len(w), k, -1).transpose(1, 2)) - y64).square().mean((1, 2))


def _data(kind: str, d: int, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    data = correlated_logistic(d, n, 1, rho=0.8, seed=seed)
    if kind == "logistic":
        return data.x_train, data.y_train, 1
    if kind == "cross_entropy":  # 3 classes from two logits of the same features: d·3 binary weights
        return data.x_train, (data.x_train[:, 0] > 0).long() + (data.x_train[:, -1] > 0.5).long(), 3
    return data.x_train, data.x_train @ data.extras["w_star"] + 0.5 * torch.randn(n), 1


@pytest.mark.parametrize(
    ("kind", "d", "seeds"),
    [("logistic", 16, (0, 1, 2)), ("logistic", 12, (3, 4)), ("cross_entropy", 4, (0, 1)), ("squared", 14, (0, 1))],
)
def test_the_enumerated_optimum_wherever_both_apply(kind: str, d: int, seeds: tuple[int, ...]) -> None:
    for seed in seeds:
        x, y, k = _data(kind, d, 400, seed)
        f = linear_objective(kind, x, y)
        reference = _reference(kind, x, y, k)
        best, arg = binary_minimum(reference, d * k)
        cert = certify(f, time_limit=60)
        assert cert.status == "optimal" and cert.value == pytest.approx(best, rel=1e-9)
        if kind == "cross_entropy":  # ties: a column of W with equal entries flips without changing f
            assert float(reference(cert.weights[None])[0]) == pytest.approx(best, rel=1e-12)
        else:
            assert torch.equal(cert.weights, arg)
        # 1e-12: the two implementations round differently
        assert cert.box_lower <= cert.lower <= best <= cert.value * (1 + 1e-12) and cert.gap <= 1e-9
        assert cert.nodes >= 1 and cert.seconds > 0


def test_a_hard_instance_is_cut_short_with_valid_bounds() -> None:
    data = correlated_logistic(14, 300, 1, rho=0.9, seed=5)
    f = linear_objective("logistic", data.x_train, data.y_train)
    best, _ = binary_minimum(logistic_losses(data.x_train, data.y_train), 14)
    full = certify(f)
    assert full.status == "optimal" and full.nodes > 5  # a real search
    for cut in (certify(f, max_nodes=3), certify(f, time_limit=1e-9)):
        assert cut.status in ("node_limit", "time_limit") and cut.nodes <= 3
        assert cut.lower <= best <= cut.value * (1 + 1e-12) and cut.gap > 0
        assert cut.lower >= cut.box_lower  # never weaker than the root's bound
    assert certify(f, max_nodes=3).status == "node_limit" and certify(f, time_limit=1e-9).status == "time_limit"


@settings(max_examples=25)
@given(
    kind=st.sampled_from(["logistic", "cross_entropy", "squared"]),
    d=st.integers(1, 6),
    seed=st.integers(0, 10_000),
    max_nodes=st.sampled_from([1, 2, 5, None]),
)
def test_every_result_brackets_the_optimum(kind, d, seed, max_nodes) -> None:
    x, y, k = _data(kind, d, 60, seed)
    if kind == "cross_entropy" and y.max() < 2:
        y[0] = 2
    f = linear_objective(kind, x, y, outputs=k)
    best, _ = binary_minimum(_reference(kind, x, y, k), f.dim)
    cert = certify(f, max_nodes=max_nodes)
    assert cert.lower <= best + 1e-12 <= cert.value + 2e-12 and cert.lower >= cert.box_lower
    assert f.value(cert.weights.numpy()) == cert.value and set(cert.weights.tolist()) <= {-1.0, 1.0}
    if cert.status == "optimal":
        assert cert.value == pytest.approx(best, rel=1e-9, abs=1e-12)


def test_a_supplied_optimal_incumbent_is_kept() -> None:
    x, y, _ = _data("logistic", 10, 200, 7)
    best, arg = binary_minimum(logistic_losses(x, y), 10)
    cert = certify(linear_objective("logistic", x, y), incumbents=[arg.float().view(1, 10), -arg.numpy()], max_nodes=1)
    assert cert.value == pytest.approx(best, rel=1e-12) and torch.equal(cert.weights, arg)


def test_greedy_flips_reach_a_local_minimum_by_hand() -> None:
    # f(w) = (w₁ + w₂ + w₃ − 1)² on one row x = (1, 1, 1), y = 1: from (−1, −1, −1) (f = 16) one flip gives 4,
    # a second 0 at one of the three points with two +1s; a third flip raises f again
    search = _Search(linear_objective("squared", np.ones((1, 3)), np.array([1.0])), tol=1e-9)
    search.offer(-np.ones(3))
    assert search.value == 0.0 and sorted(search.best.tolist()) == [-1.0, 1.0, 1.0]
    search.offer(np.ones(3))  # f = 4: no better, ignored
    assert search.value == 0.0 and search.threshold() == pytest.approx(-1e-9)


def test_reduced_cost_fixing_by_hand() -> None:
    # L = 1, g = (0.3, −0.05, 0): the other side of w_j costs L + 2|g_j| = 1.6, 1.1, 1.0; with U = 1.5 only
    # w_1 is fixed, to −1 (g_1 > 0); the least discarded bound is 1.6
    search = _Search(linear_objective("squared", np.ones((1, 3)), np.array([1.0])), tol=0.0)
    search.value = 1.5
    rel = Relaxation(np.zeros(3), 1.0, np.array([0.3, -0.05, 0.0]), 1.0)
    lo, hi = _fix(rel, -np.ones(3), np.ones(3), search)
    assert lo.tolist() == [-1.0, -1.0, -1.0] and hi.tolist() == [-1.0, 1.0, 1.0] and search.floor == 1.6
    search.value = 1.05  # now w_2 too, to +1 (g_2 < 0); a coordinate already fixed stays as it is
    lo, hi = _fix(rel, lo, hi, search)
    assert lo.tolist() == [-1.0, 1.0, -1.0] and hi.tolist() == [-1.0, 1.0, 1.0] and search.floor == 1.1


def test_branching_score_and_child_starts_by_hand() -> None:
    # squared loss with X = diag(√2, 1, 2)·√3 (3 rows): H = (2/3)XᵀX = diag(4, 2, 8), (H⁻¹)_jj = 1/4, 1/2, 1/8;
    # at u = (0.5, 0, 0.9): scores (1 − u_j²)/(H⁻¹)_jj = 3, 2, 1.52 → branch on j = 0
    x = np.sqrt(3) * np.diag([np.sqrt(2), 1.0, 2.0])
    f = linear_objective("squared", x, np.zeros(3))
    assert np.allclose(f.hessian(np.zeros(3), np.arange(3)), np.diag([4.0, 2.0, 8.0]))
    rel = Relaxation(np.array([0.5, 0.0, 0.9]), 0.0, np.zeros(3), 0.0)
    j, starts = _branch(f, rel, -np.ones(3), np.ones(3))
    assert j == 0
    # H diagonal: moving u_0 to ±1 leaves the others where they are
    assert np.allclose(starts[0], [-1.0, 0.0, 0.9]) and np.allclose(starts[1], [1.0, 0.0, 0.9])
    # a coupled quadratic: the start is the exact minimizer with u_j held at its side
    g = np.array([[2.0, 1.0], [1.0, 2.0]])
    f2 = linear_objective("squared", np.linalg.cholesky(g).T, np.zeros(2))
    rel2 = Relaxation(np.array([0.2, -0.1]), 0.0, np.zeros(2), 0.0)
    j2, starts2 = _branch(f2, rel2, -np.ones(2), np.ones(2))
    h = f2.hessian(np.zeros(2), np.arange(2))
    other = 1 - j2
    for side, start in zip((-1.0, 1.0), starts2, strict=True):
        assert start[j2] == pytest.approx(side)
        # ∂f/∂u_other = 0 on the quadratic model around u with u_j2 = side
        delta = start - rel2.point
        assert (h @ delta)[other] == pytest.approx(0.0, abs=1e-10)  # up to the ridge
    # no coordinate strictly inside: the first free one
    on_bounds = Relaxation(np.array([1.0, -1.0, 1.0]), 0.0, np.zeros(3), 0.0)
    assert _branch(f, on_bounds, np.array([1.0, -1.0, -1.0]), np.array([1.0, 1.0, 1.0]))[0] == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"time_limit": 0}, "Invalid time_limit: 0; expected seconds > 0"),
        ({"max_nodes": 0}, "Invalid max_nodes: 0; expected >= 1 or None"),
        ({"tol": -1.0}, "Invalid tol: -1.0; expected >= 0"),
        ({"incumbents": [np.ones(3)]}, r"incumbents\[0\]: expected 4 entries, each -1 or \+1"),
        ({"incumbents": [np.ones(4), np.array([1.0, 0.0, 1.0, 1.0])]}, r"incumbents\[1\]: expected 4 entries"),
    ],
)
def test_bad_arguments_fail_with_one_line(kwargs: dict, message: str) -> None:
    f = linear_objective("logistic", np.ones((2, 4)), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=message):
        certify(f, **kwargs)
