"""BinaryConnect: binary forward weights, latent update with clip, Glorot scale."""

import math

import pytest
import torch
from torch.testing import assert_close

from qnnlab.optim import BinaryConnect, glorot_lr_scale


def test_construction_binarizes_and_clips_latent() -> None:
    p = torch.nn.Parameter(torch.tensor([0.3, -1.7, 0.0, 2.0]))
    opt = BinaryConnect([p], lr=0.1)
    assert_close(p.detach(), torch.tensor([1.0, -1.0, 1.0, 1.0]))
    assert_close(opt.latent(p), torch.tensor([0.3, -1.0, 0.0, 1.0]))


def test_deterministic_step_by_hand() -> None:
    p = torch.nn.Parameter(torch.tensor([0.3, -0.2, 0.95, -0.9]))
    opt = BinaryConnect([p], lr=0.5)
    p.grad = torch.tensor([1.0, -1.0, -1.0, 0.5])
    opt.step()
    # latent: 0.3 − 0.5 = −0.2; −0.2 + 0.5 = 0.3; 0.95 + 0.5 → clip 1; −0.9 − 0.25 → clip −1
    assert_close(opt.latent(p), torch.tensor([-0.2, 0.3, 1.0, -1.0]))
    assert_close(p.detach(), torch.tensor([-1.0, 1.0, 1.0, -1.0]))


def test_gradient_is_taken_at_the_binary_weights() -> None:
    # f(w_b) = ½‖w_b − t‖²: the gradient seen by the optimizer is w_b − t, not w − t
    p = torch.nn.Parameter(torch.tensor([0.2, -0.6]))
    opt = BinaryConnect([p], lr=0.1)
    t = torch.tensor([0.5, 0.5])
    (0.5 * (p - t).square().sum()).backward()
    assert_close(p.grad, torch.tensor([0.5, -1.5]))
    opt.step()
    assert_close(opt.latent(p), torch.tensor([0.2 - 0.05, -0.6 + 0.15]))


def test_glorot_scale_value() -> None:
    w = torch.empty(3, 4)  # fan_in 4, fan_out 3
    assert glorot_lr_scale(w) == pytest.approx(1 / math.sqrt(1.5 / 7))
    conv = torch.empty(8, 2, 3, 3)  # fan_in 2·9, fan_out 8·9
    assert glorot_lr_scale(conv) == pytest.approx(1 / math.sqrt(1.5 / (18 + 72)))
    assert glorot_lr_scale(torch.empty(5)) == 1.0


def test_glorot_scaled_step() -> None:
    p = torch.nn.Parameter(torch.zeros(3, 4) + 0.1)
    opt = BinaryConnect([p], lr=0.01, glorot_scale=True)
    p.grad = torch.ones(3, 4)
    opt.step()
    assert_close(opt.latent(p), torch.full((3, 4), 0.1 - 0.01 * math.sqrt(7 / 1.5)))


def test_stochastic_forward_weights_are_unbiased() -> None:
    torch.manual_seed(3)
    n = 100_000
    w = torch.tensor([-0.8, -0.3, 0.0, 0.5])
    p = torch.nn.Parameter(w.expand(n, -1).contiguous())
    opt = BinaryConnect([p], lr=1e-30, stochastic=True)  # a step leaves the latent in place
    p.grad = torch.zeros_like(p)
    opt.step()
    assert set(p.detach().unique().tolist()) <= {-1.0, 1.0}
    bound = 5 * (1 - w**2).sqrt() / n**0.5
    assert ((p.detach().mean(0) - w).abs() <= bound).all()


def test_unconstrained_group_is_plain_sgd() -> None:
    w, b = torch.nn.Parameter(torch.tensor([0.4])), torch.nn.Parameter(torch.tensor([0.4]))
    opt = BinaryConnect([{"params": [w]}, {"params": [b], "constrained": False}], lr=0.1)
    w.grad, b.grad = torch.tensor([1.0]), torch.tensor([1.0])
    opt.step()
    assert_close(b.detach(), torch.tensor([0.3]))
    assert_close(opt.latent(w), torch.tensor([0.3]))
    assert_close(w.detach(), torch.tensor([1.0]))
    assert opt.latent(b) is b
