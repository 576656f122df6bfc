"""The convex losses of bias-free linear models: hand-computed values, and agreement with torch autograd."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from qnnlab.certify import CrossEntropy, Logistic, Squared, linear_objective, objective_for
from qnnlab.train.evaluate import loss_fn


def test_logistic_by_hand() -> None:
    # x = (1, 2), y = 1, w = (1, −1): o = −1, f = log(1 + e^{−1}) + 1, ∇f = (σ(−1) − 1)·x, ∇²f = σ(1)σ(−1)·x xᵀ
    f = linear_objective("logistic", np.array([[1.0, 2.0]]), np.array([1.0]))
    value, grad = f.value_grad(np.array([1.0, -1.0]))
    s = 1 / (1 + math.e)  # σ(−1)
    assert value == pytest.approx(math.log1p(math.exp(-1)) + 1, rel=1e-15)
    assert np.allclose(grad, [s - 1, 2 * (s - 1)], rtol=1e-15)
    hess = s * (1 - s) * np.array([[1.0, 2.0], [2.0, 4.0]])
    assert np.allclose(f.hessian(np.array([1.0, -1.0]), np.arange(2)), hess, rtol=1e-14)
    f._last = None  # the Hessian without the cached σ of the last gradient
    assert np.allclose(f.hessian(np.array([1.0, -1.0]), np.array([1])), hess[1:, 1:], rtol=1e-14)


def test_cross_entropy_by_hand() -> None:
    # x = (1, 0), y = 0, W = I: logits (1, 0), f = log(1 + e^{−1}), ∇_W f = (p − e_0) xᵀ with p = softmax(1, 0)
    f = linear_objective("cross_entropy", np.array([[1.0, 0.0]]), np.array([0]), outputs=2)
    value, grad = f.value_grad(np.array([1.0, 0.0, 0.0, 1.0]))
    q = 1 / (1 + math.e)
    assert value == pytest.approx(math.log1p(math.exp(-1)), rel=1e-15)
    assert np.allclose(grad, [-q, 0.0, q, 0.0], rtol=1e-14)
    # (diag p − p pᵀ) ⊗ x xᵀ: only the entries of x_0 = 1 are non-zero
    h = f.hessian(np.array([1.0, 0.0, 0.0, 1.0]), np.arange(4))
    assert np.allclose(h[np.ix_([0, 2], [0, 2])], q * (1 - q) * np.array([[1, -1], [-1, 1]]), rtol=1e-14)
    assert np.count_nonzero(h) == 4


def test_squared_by_hand() -> None:
    # X = [[1, 2], [3, 4]], y = (1, 0), w = (1, 1): o = (3, 7), f = (2² + 7²)/2, ∇f = XᵀX w·2/n − 2Xᵀy/n, ∇²f = XᵀX
    f = linear_objective("squared", np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([1.0, 0.0]))
    value, grad = f.value_grad(np.array([1.0, 1.0]))
    assert value == pytest.approx(26.5, rel=1e-15)
    assert np.allclose(grad, [23.0, 32.0], rtol=1e-15)
    assert np.allclose(f.hessian(np.zeros(2), np.arange(2)), [[10.0, 14.0], [14.0, 20.0]], rtol=1e-15)


def _torch_loss(kind: str, x: torch.Tensor, y: torch.Tensor, k: int):
    def loss(w: torch.Tensor) -> torch.Tensor:
        o = x @ w.view(k, -1).T
        if kind == "logistic":
            return F.binary_cross_entropy_with_logits(o[:, 0], y)
        if kind == "cross_entropy":
            return F.cross_entropy(o, y)
        return F.mse_loss(o, y.view(len(y), -1))

    return loss


@pytest.mark.parametrize(("kind", "k"), [("logistic", 1), ("cross_entropy", 3), ("squared", 1), ("squared", 2)])
def test_every_function_agrees_with_torch_autograd(kind: str, k: int) -> None:
    gen = torch.Generator().manual_seed(k)
    x = torch.randn(50, 4, generator=gen, dtype=torch.float64)
    y = {
        "logistic": torch.rand(50, generator=gen, dtype=torch.float64),  # soft labels in [0, 1]
        "cross_entropy": torch.arange(50) % 3,
        "squared": torch.randn(50, k, generator=gen, dtype=torch.float64).squeeze(1),
    }[kind]
    f = linear_objective(kind, x, y)
    assert f.dim == 4 * k
    loss = _torch_loss(kind, x, y, k)
    ws = torch.randn(5, 4 * k, generator=gen, dtype=torch.float64)
    assert np.allclose(f.values(ws.numpy()), [float(loss(w)) for w in ws], rtol=1e-12)
    w = ws[0]
    value, grad = f.value_grad(w.numpy())
    assert value == pytest.approx(float(loss(w)), rel=1e-13)
    assert np.allclose(grad, torch.autograd.functional.jacobian(loss, w).numpy(), rtol=1e-10, atol=1e-14)
    idx = np.array([0, 2, 3])
    hess = torch.autograd.functional.hessian(loss, w).numpy()[np.ix_(idx, idx)]
    assert np.allclose(f.hessian(w.numpy(), idx), hess, rtol=1e-10, atol=1e-14)


def test_objective_for_a_model_matches_qnnlab_loss() -> None:
    x, y = torch.randn(30, 2, 3), (torch.arange(30) % 4)
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 4, bias=False))
    f = objective_for(model, x, y)
    assert isinstance(f, CrossEntropy) and f.dim == 24
    weight = model[1].weight.detach().double()
    with torch.no_grad():
        expected = float(loss_fn(model.double()(x.double()), y))
    assert f.value(weight.flatten().numpy()) == pytest.approx(expected, rel=1e-12)
    binary = nn.Linear(3, 1, bias=False)
    assert isinstance(objective_for(binary, torch.randn(8, 3), torch.ones(8, 1)), Logistic)
    assert isinstance(objective_for(binary, torch.randn(8, 3), torch.randn(8), loss="squared"), Squared)
    assert objective_for(nn.Linear(3, 1), torch.randn(8, 3), torch.ones(8)) is None  # a bias
    assert objective_for(nn.Sequential(nn.Linear(3, 3, bias=False), nn.ReLU()), torch.randn(8, 3), y[:8]) is None
    with pytest.raises(ValueError, match="x: 4 features per row, the model takes 3"):
        objective_for(binary, torch.randn(8, 4), torch.ones(8))


@pytest.mark.parametrize(
    ("loss", "x", "y", "outputs", "message"),
    [
        ("hinge", [[1.0]], [1.0], None, "unknown loss 'hinge'; choose from: cross_entropy, logistic, squared"),
        ("logistic", [1.0, 2.0], [1.0, 0.0], None, r"x: expected \(n, d\) inputs with n, d >= 1, got shape \(2,\)"),
        ("logistic", [[1.0], [2.0]], [1.0], None, "y: 1 rows for 2 inputs"),
        ("logistic", [[1.0], [np.nan]], [1.0, 0.0], None, "x, y: every value must be finite"),
        ("logistic", [[1.0], [2.0]], [1.0, 2.0], None, r"y: the logistic loss takes labels \(n,\) in \[0, 1\]"),
        ("logistic", [[1.0]], [1.0], 2, "outputs: 2 does not match the 1 output"),
        ("cross_entropy", [[1.0], [2.0]], [0.5, 1.0], None, "y: cross-entropy takes class indices"),
        ("cross_entropy", [[1.0], [2.0]], [0, 0], None, "outputs: cross-entropy needs K >= 2 classes"),
        ("cross_entropy", [[1.0], [2.0]], [0, 3], 2, "K >= 2 classes covering every label"),
        ("squared", [[1.0]], [[[1.0]]], None, r"y: squared loss takes targets \(n,\) or \(n, K\)"),
    ],
)
def test_bad_input_fails_with_one_line_naming_the_field(loss, x, y, outputs, message) -> None:
    with pytest.raises(ValueError, match=message):
        linear_objective(loss, np.array(x), np.array(y), outputs=outputs)
