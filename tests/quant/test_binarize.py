import torch
from torch.testing import assert_close

from qnnlab.quant import binarize_deterministic, binarize_stochastic, hard_sigmoid


def test_hard_sigmoid_values() -> None:
    x = torch.tensor([-3.0, -1.0, -0.5, 0.0, 0.4, 1.0, 2.0])
    assert_close(hard_sigmoid(x), torch.tensor([0.0, 0.0, 0.25, 0.5, 0.7, 1.0, 1.0]))


def test_deterministic_is_sign_with_zero_up() -> None:
    assert_close(binarize_deterministic(torch.tensor([-0.2, 0.0, 0.7])), torch.tensor([-1.0, 1.0, 1.0]))


def test_stochastic_is_unbiased_within_clt_bound() -> None:
    w = torch.tensor([-1.0, -0.6, -0.1, 0.0, 0.3, 0.9, 1.0])
    n = 200_000
    gen = torch.Generator().manual_seed(1)
    draws = binarize_stochastic(w.expand(n, -1).contiguous(), generator=gen)
    assert set(draws.unique().tolist()) <= {-1.0, 1.0}
    # E[w_b] = w and Var[w_b] = 1 - w², so the sample mean is within 5 standard errors
    bound = 5 * (1 - w**2).clamp_min(1e-12).sqrt() / n**0.5
    assert ((draws.mean(0) - w).abs() <= bound + 1e-7).all()
