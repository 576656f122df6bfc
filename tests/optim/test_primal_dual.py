"""Primal–dual steps on the Lagrangian of the binary constraints."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.testing import assert_close

from qnnlab.optim import PrimalDual, lagrangian_step


def test_violated_constraint_grows_its_multiplier() -> None:
    # w = 0.5, ε = 0.1: φ = −0.4625, φ' = 1.5; λ = 1, g = 0.2, η = 1
    grad_l, lam = lagrangian_step(torch.tensor([0.5]), torch.tensor([0.2]), torch.tensor([1.0]), 0.1, 1.0)
    assert_close(grad_l, torch.tensor([0.2 - 1.5]))
    assert_close(lam, torch.tensor([1.4625]))


def test_satisfied_constraint_shrinks_its_multiplier_to_zero() -> None:
    # w = 0.9: φ = 0.1 − 0.19² = 0.0639, φ' = −4·0.9·(0.81 − 1) = 0.684
    w, g = torch.tensor([0.9, 0.9]), torch.tensor([0.0, 0.0])
    grad_l, lam = lagrangian_step(w, g, torch.tensor([0.5, 0.01]), 0.1, 1.0)
    assert_close(lam, torch.tensor([0.5 - 0.0639, 0.0]))  # the second is projected onto λ ≥ 0
    assert_close(grad_l, torch.tensor([-0.5 * 0.684, -0.01 * 0.684]))


def test_one_step_by_hand_and_diagnostics() -> None:
    p = torch.nn.Parameter(torch.tensor([0.5, 0.9]))
    opt = PrimalDual([p], lr=0.1, dual_lr=1.0, eps=0.1, init_multiplier=1.0)
    p.grad = torch.tensor([0.2, 0.0])
    opt.step()
    # w⁺ = w − γ(g − λφ'): 0.5 − 0.1·(0.2 − 1.5) = 0.63; 0.9 − 0.1·(0 − 0.684) = 0.9684
    assert_close(p.detach(), torch.tensor([0.63, 0.9684]))
    (lam,) = opt.multipliers()
    assert_close(lam, torch.tensor([1.4625, 1.0 - 0.0639]))
    # diagnostics at the new point with the gradient in p.grad: ∇_w L = g − λφ'(w⁺), φ'(w) = −4w(w² − 1)
    diag = opt.diagnostics()
    assert_close(diag["multiplier_max"], torch.tensor(1.4625))
    assert_close(diag["multiplier_mean"], torch.tensor((1.4625 + 0.9361) / 2))
    dphi = [-4 * 0.63 * (0.63**2 - 1), -4 * 0.9684 * (0.9684**2 - 1)]
    grad_l = torch.tensor([0.2 - 1.4625 * dphi[0], 0.0 - 0.9361 * dphi[1]])
    assert_close(diag["lagrangian_grad_norm"], grad_l.norm())


def test_multipliers_pull_weights_onto_the_grid() -> None:
    p = torch.nn.Parameter(torch.tensor([0.3, -0.6, 0.8]))
    opt = PrimalDual([p], lr=0.05, dual_lr=0.5, eps=1e-3)
    for _ in range(400):
        p.grad = torch.zeros(3)
        opt.step()
    assert_close(p.detach().abs(), torch.ones(3), atol=0.02, rtol=0)


@given(st.lists(st.floats(-1, 1, allow_nan=False), min_size=1, max_size=20), st.floats(-3, 3), st.floats(1e-3, 1.0))
def test_multipliers_stay_nonnegative_and_iterates_in_box(ws, g: float, eps: float) -> None:
    p = torch.nn.Parameter(torch.tensor(ws))
    opt = PrimalDual([p], lr=0.5, dual_lr=2.0, eps=eps)
    for _ in range(3):
        p.grad = torch.full_like(p, g)
        opt.step()
    assert (opt.multipliers()[0] >= 0).all()
    assert (p.abs() <= 1).all()


def test_multiplier_state_round_trips() -> None:
    p = torch.nn.Parameter(torch.tensor([0.5]))
    opt = PrimalDual([p], lr=0.1, eps=0.1)
    p.grad = torch.tensor([0.1])
    opt.step()
    state = opt.state_dict()
    assert state["state"][0]["multiplier"].item() == pytest.approx(0.4625)
