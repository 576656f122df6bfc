"""Bop: the gradient average, flips at the threshold (strict), sign initialization, the full-precision groups."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

from qnnlab.optim import Bop


def test_construction_takes_signs_with_sign_0_plus_1() -> None:
    p = torch.nn.Parameter(torch.tensor([0.3, -1.7, 0.0, -0.0, 2.0]))
    Bop([p])
    assert torch.equal(p.detach(), torch.tensor([1.0, -1.0, 1.0, 1.0, 1.0]))


def test_three_steps_by_hand() -> None:
    # γ = 1/2 and τ = 1/4: every average below is exact in binary
    p = torch.nn.Parameter(torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0]))
    opt = Bop([p], gamma=0.5, threshold=0.25)
    p.grad = torch.tensor([1.0, -1.0, 0.5, 2.0, -4.0])
    opt.step()
    # m = ½g = [½, −½, ¼, 1, −2]: m·w = [½, ½, ¼, −1, −2]; flips where m·w > ¼ (¼ = τ does not flip)
    assert_close(opt.state[p]["grad_avg"], torch.tensor([0.5, -0.5, 0.25, 1.0, -2.0]), rtol=0, atol=0)
    assert torch.equal(p.detach(), torch.tensor([-1.0, 1.0, 1.0, -1.0, 1.0]))
    p.grad = torch.tensor([0.0, 0.0, 0.25, 1.0, 0.0])
    opt.step()
    # m = ½m + ½g = [¼, −¼, ¼, 1, −1]; w = [−1, 1, 1, −1, 1]: m·w = [−¼, −¼, ¼, −1, −1]: no flip
    assert_close(opt.state[p]["grad_avg"], torch.tensor([0.25, -0.25, 0.25, 1.0, -1.0]), rtol=0, atol=0)
    assert torch.equal(p.detach(), torch.tensor([-1.0, 1.0, 1.0, -1.0, 1.0]))
    p.grad = torch.tensor([-1.0, 1.0, 0.75, -2.0, 0.0])
    opt.step()
    # m = [−3/8, 3/8, ½, −½, −½]: m·w = [3/8, 3/8, ½, ½, −½]: the first four flip
    assert_close(opt.state[p]["grad_avg"], torch.tensor([-0.375, 0.375, 0.5, -0.5, -0.5]), rtol=0, atol=0)
    assert torch.equal(p.detach(), torch.tensor([1.0, -1.0, -1.0, 1.0, 1.0]))


def test_threshold_equality_never_flips_either_sign() -> None:
    # m = ±τ exactly, agreeing with w: the paper's strict |m| > τ keeps both (Larq's rule would set −1 to +1)
    p = torch.nn.Parameter(torch.tensor([1.0, -1.0]))
    opt = Bop([p], gamma=1.0, threshold=0.5)
    p.grad = torch.tensor([0.5, -0.5])
    opt.step()
    assert torch.equal(p.detach(), torch.tensor([1.0, -1.0]))
    p.grad = torch.tensor([0.5 + 2**-20, -0.5 - 2**-20])  # just above τ: both flip
    opt.step()
    assert torch.equal(p.detach(), torch.tensor([-1.0, 1.0]))


def test_zero_threshold_flips_on_any_agreeing_average() -> None:
    p = torch.nn.Parameter(torch.tensor([1.0, 1.0, -1.0]))
    opt = Bop([p], gamma=1e-4, threshold=0.0)
    p.grad = torch.tensor([1e-30, 0.0, 1e-30])
    opt.step()
    assert torch.equal(p.detach(), torch.tensor([-1.0, 1.0, -1.0]))  # m = 0 never flips


def test_full_precision_groups_take_the_base_step_and_binary_ones_none() -> None:
    w = torch.nn.Parameter(torch.tensor([1.0, -1.0]))
    b = torch.nn.Parameter(torch.tensor([0.5]))
    opt = Bop(
        [{"params": [w]}, {"params": [b], "constrained": False}],
        lr=0.1,
        gamma=0.5,
        threshold=1.0,
        momentum=0.9,
        weight_decay=0.5,
    )
    assert (opt.param_groups[0]["momentum"], opt.param_groups[0]["weight_decay"]) == (0.0, 0.0)
    w.grad, b.grad = torch.tensor([0.25, 0.25]), torch.tensor([1.0])
    opt.step()
    assert torch.equal(w.detach(), torch.tensor([1.0, -1.0]))  # |m| = 1/8 < τ: nothing moves, no decay
    assert_close(b.detach(), torch.tensor([0.5 - 0.1 * (1.0 + 0.5 * 0.5)]))  # SGD with weight decay


@pytest.mark.parametrize("kwargs", [{"gamma": 0.0}, {"gamma": 1.5}, {"threshold": -1e-8}])
def test_bad_hyperparameters_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        Bop([torch.nn.Parameter(torch.ones(2))], **kwargs)


@settings(max_examples=40, deadline=None)
@given(
    init=st.lists(st.floats(-3, 3), min_size=1, max_size=12),
    grads=st.lists(st.lists(st.floats(-1e3, 1e3), min_size=12, max_size=12), min_size=1, max_size=6),
    gamma=st.floats(1e-6, 1.0),
    threshold=st.floats(0.0, 10.0),
    base=st.sampled_from(["sgd", "adam"]),
)
def test_weights_stay_binary(init: list, grads: list, gamma: float, threshold: float, base: str) -> None:
    p = torch.nn.Parameter(torch.tensor(init))
    opt = Bop([p], gamma=gamma, threshold=threshold, base=base)
    for g in grads:
        p.grad = torch.tensor(g[: len(init)])
        before = p.detach().clone()
        opt.step()
        assert bool(((p == 1) | (p == -1)).all())
        m = opt.state[p]["grad_avg"]
        assert torch.equal(p.detach(), torch.where(m * before > threshold, -before, before))
