"""The objective: task defaults, extra metrics, batch-size-weighted means, by hand."""

import pytest
import torch
from torch import nn

from qnnlab.train.evaluate import Objective, accuracy, evaluate, loss_fn, mse


def test_task_defaults_and_additions() -> None:
    assert Objective.for_task("binary") == Objective.for_task("multiclass") == Objective(loss_fn, {"acc": accuracy})
    assert Objective.for_task("regression") == Objective(mse, {})

    def mae(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (out.reshape(y.shape) - y).abs().mean()

    got = Objective.for_task("regression", loss=mae, metrics={"mse": mse})
    assert got.loss is mae and got.metrics == {"mse": mse}
    assert Objective.for_task("binary", metrics={"mae": mae}).metrics == {"acc": accuracy, "mae": mae}


def test_mse_compares_a_column_with_targets() -> None:
    assert float(mse(torch.tensor([[1.0], [3.0]]), torch.tensor([0.0, 1.0]))) == pytest.approx((1 + 4) / 2)


def test_evaluate_weights_each_batch_by_its_size() -> None:
    model = nn.Linear(1, 1, bias=False)
    weights = {"weight": torch.tensor([[2.0]])}  # swapped in: the model's own weight is not used
    x = torch.tensor([[1.0], [-1.0], [0.5]])
    y = torch.tensor([1.0, 1.0, 0.0])
    out = evaluate(model, weights, [(x[:2], y[:2]), (x[2:], y[2:])], Objective(mse, {"acc": accuracy}))
    # outputs 2, −2, 1: squared errors 1, 9, 1; correct: yes, no, no
    assert float(out["loss"]) == pytest.approx(11 / 3) and float(out["acc"]) == pytest.approx(1 / 3)
    assert model.training  # the mode is restored
