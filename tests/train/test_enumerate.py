import itertools

import pytest
import torch

from qnnlab.data.synthetic import logistic_toy
from qnnlab.train.enumerate import binary_minimum, logistic_losses


@pytest.mark.parametrize("d", [1, 3, 6])
def test_matches_a_plain_loop(d: int) -> None:
    data = logistic_toy(d, 300, 10, w_scale=0.7, seed=d)
    f = logistic_losses(data.x_train, data.y_train)
    best_loop, arg_loop = min(
        (float(f(torch.tensor([w], dtype=torch.float64))[0]), w) for w in itertools.product([-1.0, 1.0], repeat=d)
    )
    best, arg = binary_minimum(f, d, chunk=5)  # several chunks, one partial
    assert best == pytest.approx(best_loop, rel=1e-12)
    assert arg.tolist() == list(arg_loop)


def test_logistic_loss_by_hand() -> None:
    # one sample x = (1, 2), y = 1, w = (1, −1): o = −1, loss = softplus(o) − y·o = log(1 + e^{−1}) + 1
    f = logistic_losses(torch.tensor([[1.0, 2.0]]), torch.tensor([1.0]))
    val = float(f(torch.tensor([[1.0, -1.0]], dtype=torch.float64))[0])
    assert val == pytest.approx(torch.log1p(torch.exp(torch.tensor(-1.0, dtype=torch.float64))).item() + 1.0)


def test_quadratic_with_known_minimizer() -> None:
    target = torch.tensor([1.0, -1.0, -1.0, 1.0, 1.0], dtype=torch.float64)
    best, arg = binary_minimum(lambda w: (w - 0.9 * target).square().sum(1), 5)
    assert torch.equal(arg, target)
    assert best == pytest.approx(5 * 0.01)


@pytest.mark.parametrize("d", [0, 21])
def test_rejects_dimensions_out_of_range(d: int) -> None:
    with pytest.raises(ValueError, match=f"Invalid d: {d}"):
        binary_minimum(lambda w: w.sum(1), d)
