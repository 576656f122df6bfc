"""LUQ's FP4 neural-gradient quantizer: levels, each branch by hand, unbiasedness, SMP, autograd."""

import doctest

import pytest
import torch
from torch.testing import assert_close

import qnnlab.quant.luq as luq_module
from qnnlab.nn.layers import QuantLinear
from qnnlab.quant.luq import LUQ_ACTIVATION, LUQ_WEIGHT, GradQuantizer, fp4_quantize, quantize_grad
from qnnlab.quant.quantizers import SAWBQuantizer

ALPHA = 2.0**-5  # max|g| = 128·α = 4


def draw(seed: int, shape: tuple[int, ...], samples: int = 1) -> torch.Tensor:
    """The uniforms fp4_quantize draws from a generator seeded with ``seed``."""
    return torch.rand((samples, *shape), generator=torch.Generator().manual_seed(seed))


def test_powers_of_two_and_zero_are_exact() -> None:
    g = ALPHA * torch.tensor([-128.0, 64.0, -32.0, 4.0, -2.0, 1.0, 0.0])
    for seed in range(5):
        assert torch.equal(fp4_quantize(g, generator=torch.Generator().manual_seed(seed)), g)


def test_each_branch_by_hand() -> None:
    # x = |g|/α = [0.25, 0.75, 40, 96, 128]: underflow to {0, 1} w.p. x; log rounding
    # 40 ∈ [32, 64) up w.p. 40/32 − 1 = 1/4; 96 ∈ [64, 128) up w.p. 1/2; 128 is the top level
    x = torch.tensor([0.25, 0.75, 40.0, 96.0, 128.0])
    g = ALPHA * x * torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0])
    p_up = torch.tensor([0.25, 0.75, 0.25, 0.5, 0.0])
    down = torch.tensor([0.0, 0.0, 32.0, 64.0, 128.0])
    up = torch.tensor([1.0, 1.0, 64.0, 128.0, 256.0])
    for seed in range(20):
        u = draw(seed, g.shape)[0]
        expected = torch.sign(g) * ALPHA * torch.where(u < p_up, up, down)
        assert torch.equal(fp4_quantize(g, generator=torch.Generator().manual_seed(seed)), expected)


def test_levels_are_alpha_times_powers_of_two_or_zero() -> None:
    g = torch.randn(4000, generator=torch.Generator().manual_seed(1)) * torch.logspace(-4, 0, 4000)
    q = fp4_quantize(g, generator=torch.Generator().manual_seed(2))
    alpha = g.abs().max() / 128
    levels = torch.cat([torch.zeros(1), alpha * 2.0 ** torch.arange(8.0)])
    assert bool(torch.isin(q.abs(), levels).all())
    assert bool((q.abs() <= g.abs().max()).all())
    assert bool(((q == 0) | (q.sign() == g.sign())).all())
    assert (q == 0).any() and (q.abs() == alpha).any()  # underflow happens both ways


def test_all_zero_gradient_stays_zero() -> None:
    assert torch.equal(fp4_quantize(torch.zeros(3, 2)), torch.zeros(3, 2))


@pytest.mark.parametrize("samples", [1, 4])
def test_unbiased_within_a_clt_bound(samples: int) -> None:
    # one row per draw (max|g| is the same in every row, so α is too); 5 standard errors from
    # the Bernoulli variance α²·width²·p(1 − p) ≤ α²·width²/4 of one draw, width = up − down
    n = 20_000
    x = torch.tensor([0.01, 0.3, 0.5, 0.93, 1.7, 3.1, 5.9, 12.4, 50.0, 77.7, 100.0, 128.0], dtype=torch.float64)
    g = ALPHA * x * torch.tensor([1.0, -1.0] * 6, dtype=torch.float64)
    q = fp4_quantize(g.repeat(n, 1), samples=samples, generator=torch.Generator().manual_seed(3))
    width = torch.where(x < 1, 1.0, 2.0 ** torch.floor(torch.log2(x)))
    se = ALPHA * width / 2 / (n * samples) ** 0.5
    assert ((q.mean(0) - g).abs() <= 5 * se).all()


def test_smp_divides_the_variance() -> None:
    n = 20_000
    g = ALPHA * torch.tensor([0.5, 40.0, 96.0, 128.0], dtype=torch.float64)
    gen = torch.Generator().manual_seed(4)
    var1 = fp4_quantize(g.repeat(n, 1), generator=gen).var(0)[:3]
    var8 = fp4_quantize(g.repeat(n, 1), samples=8, generator=gen).var(0)[:3]
    # exact one-draw variances α²·width²·p(1 − p): p = 0.5, 0.25, 0.5 with widths 1, 32, 64
    exact = ALPHA**2 * torch.tensor([0.25, 32**2 * 0.1875, 64**2 * 0.25], dtype=torch.float64)
    assert_close(var1, exact, rtol=0.05, atol=0)
    assert_close(var8, exact / 8, rtol=0.05, atol=0)


def test_generator_makes_draws_reproducible() -> None:
    g = torch.randn(100)
    a = fp4_quantize(g, generator=torch.Generator().manual_seed(7))
    b = fp4_quantize(g, generator=torch.Generator().manual_seed(7))
    c = fp4_quantize(g, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_quantize_grad_is_identity_forward_and_fp4_backward() -> None:
    x = torch.randn(6, 3, requires_grad=True)
    y = quantize_grad(x, samples=2, generator=torch.Generator().manual_seed(5))
    assert torch.equal(y, x)
    upstream = torch.randn(6, 3)
    y.backward(upstream)
    assert torch.equal(x.grad, fp4_quantize(upstream, samples=2, generator=torch.Generator().manual_seed(5)))


def test_grad_quantizer_after_a_layer_quantizes_its_neural_gradient() -> None:
    layer = QuantLinear(4, 3, weight_quantizer=LUQ_WEIGHT, input_quantizer=LUQ_ACTIVATION)
    model = torch.nn.Sequential(layer, GradQuantizer(generator=torch.Generator().manual_seed(6)))
    x = torch.rand(5, 4)
    upstream = torch.randn(5, 3)
    model(x).backward(upstream)
    g_out = fp4_quantize(upstream, generator=torch.Generator().manual_seed(6))
    x_q = SAWBQuantizer(4, signed=False)(x)
    assert_close(layer.weight.grad, g_out.T @ x_q)  # identity STE on the 4-bit weight
    assert_close(layer.bias.grad, g_out.sum(0))


@pytest.mark.parametrize("samples", [0, 1.5])
def test_bad_samples_fail(samples) -> None:
    with pytest.raises(ValueError, match=f"Invalid samples: {samples}; must be an integer >= 1"):
        fp4_quantize(torch.ones(2), samples=samples)
    with pytest.raises(ValueError, match="Invalid samples"):
        GradQuantizer(samples=samples)


def test_docstring_examples_run() -> None:
    assert doctest.testmod(luq_module).failed == 0
