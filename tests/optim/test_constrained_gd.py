"""Muehlebach–Jordan velocity-constrained steps: closed form, QP, and ASkewSGD as a special case."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.testing import assert_close

from qnnlab.optim import ASkewSGD, ConstrainedGD, qp_direction, velocity_direction
from qnnlab.quant.constraints import BinaryConstraint, FunctionConstraint, binary_dphi, binary_phi

HALF_PLANE = FunctionConstraint(lambda w, eps: (1 - w[0] - w[1]).reshape(1))


def test_qp_by_hand_on_a_coupled_constraint() -> None:
    # φ(w) = 1 − w₁ − w₂ at w = (1, 1) is −1 (violated); with g = (−1, 0) and α = 1 the QP
    # min ½‖v + g‖² s.t. −v₁ − v₂ − 1 ≥ 0 projects v = (1, 0) onto v₁ + v₂ ≤ −1: v = (0, −1)
    w, g = torch.tensor([1.0, 1.0]), torch.tensor([-1.0, 0.0])
    assert_close(qp_direction(w, g, HALF_PLANE, 0.0, 1.0), torch.tensor([0.0, 1.0]), atol=1e-6, rtol=0)
    p = torch.nn.Parameter(w.clone())
    p.grad = g
    ConstrainedGD([p], lr=0.5, constraint=HALF_PLANE, alpha=1.0, box=None).step()
    assert_close(p.detach(), torch.tensor([1.0, 0.5]), atol=1e-6, rtol=0)


def test_qp_keeps_the_gradient_when_nothing_is_violated_or_minus_g_is_admissible() -> None:
    g = torch.tensor([0.3, -0.2])
    assert torch.equal(qp_direction(torch.tensor([0.2, 0.3]), g, HALF_PLANE, 0.0, 1.0), g)
    # violated, but −g = (1, 1)·(−1) already recovers fast enough: −v₁ − v₂ − 1 = 2 − 1 ≥ 0
    g = torch.tensor([1.0, 1.0])
    assert_close(qp_direction(torch.tensor([1.0, 1.0]), g, HALF_PLANE, 0.0, 1.0), g, atol=1e-6, rtol=0)


def test_closed_form_branches() -> None:
    # φ = (0.1, −0.4625, −0.4625, −0.9), φ' = (0, 1.5, 1.5, 0); K = 0.4625/1.5 on the middle two
    phi = torch.tensor([0.1, -0.4625, -0.4625, -0.9])
    dphi = torch.tensor([0.0, 1.5, 1.5, 0.0])
    g = torch.tensor([2.0, -1.0, 1.0, 0.5])
    assert_close(velocity_direction(phi, dphi, g, 1.0), torch.tensor([2.0, -1.0, -0.4625 / 1.5, 0.5]))


def run(opt_cls, w0, grads, **kwargs) -> torch.Tensor:
    p = torch.nn.Parameter(w0.clone())
    opt = opt_cls([p], **kwargs)
    for g in grads:
        p.grad = g.clone()
        opt.step()
    return p.detach()


def test_askewsgd_is_the_separable_special_case_with_identical_iterates() -> None:
    torch.manual_seed(0)
    w0 = torch.rand(50) * 2 - 1
    grads = [torch.randn(50) for _ in range(20)]
    hp = {"lr": 0.05, "eps": 0.05, "alpha": 1.0, "momentum": 0.9}
    ours = run(ConstrainedGD, w0, grads, constraint=BinaryConstraint(), solver="closed_form", box=1.0, **hp)
    assert torch.equal(ours, run(ASkewSGD, w0, grads, **hp))


def test_qp_solver_recovers_askewsgd_on_the_binary_constraint() -> None:
    # the binary constraint handed over as an opaque function: Jacobian by autograd, dual QP by Cholesky + NNLS
    torch.manual_seed(1)
    w0 = torch.rand(12, dtype=torch.float64) * 2 - 1
    grads = [torch.randn(12, dtype=torch.float64) for _ in range(10)]
    hp = {"lr": 0.1, "eps": 0.05, "alpha": 1.0}
    general = run(ConstrainedGD, w0, grads, constraint=FunctionConstraint(binary_phi), solver="qp", **hp)
    assert_close(general, run(ASkewSGD, w0, grads, **hp), atol=1e-7, rtol=0)


def test_closed_form_needs_a_separable_constraint() -> None:
    with pytest.raises(ValueError, match="'closed_form' needs a separable constraint"):
        ConstrainedGD([torch.nn.Parameter(torch.zeros(2))], constraint=HALF_PLANE, solver="closed_form")


@given(
    st.lists(st.floats(-1, 1, allow_nan=False), min_size=2, max_size=8),
    st.lists(st.floats(-5, 5, allow_nan=False), min_size=8, max_size=8),
    st.floats(1e-3, 0.9),
    st.floats(0.1, 5.0),
)
def test_qp_velocity_satisfies_the_active_constraints(ws, gs, eps: float, alpha: float) -> None:
    w = torch.tensor(ws, dtype=torch.float64)
    g = torch.tensor(gs[: len(ws)], dtype=torch.float64)
    v = -qp_direction(w, g, FunctionConstraint(binary_phi), eps, alpha)
    phi, dphi = binary_phi(w, eps), binary_dphi(w)
    # at φ' = 0 (and where the needed speed α|φ|/|φ'| exceeds 1e8) the plain gradient is kept
    active = (phi < 0) & (dphi.abs() * 1e8 > alpha * phi.abs())
    assert (dphi[active] * v[active] + alpha * phi[active] >= -1e-6).all()
    assert torch.equal(v[phi >= 0], -g[phi >= 0])
