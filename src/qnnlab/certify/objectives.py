"""Convex training losses of a linear model without bias, as functions of its flat weight vector.

The model maps ``x ∈ R^d`` to ``o = W x`` with ``W ∈ R^{K×d}`` (``nn.Linear(d, K, bias=False)``);
the variable is ``w = vec(W)``, row-major, as :meth:`torch.Tensor.flatten` lays out the weight.
On the training set ``(x_i, y_i)_{i=1..n}``:

- ``logistic`` (``K = 1``, ``y_i ∈ [0, 1]``): ``f(w) = mean_i softplus(o_i) − y_i o_i``
  (:func:`torch.nn.functional.binary_cross_entropy_with_logits`);
- ``cross_entropy`` (``K ≥ 2``, ``y_i ∈ {0..K−1}``): ``f(w) = mean_i logsumexp(o_i) − o_{i,y_i}``
  (:func:`torch.nn.functional.cross_entropy`);
- ``squared`` (``y_i ∈ R^K``): ``f(w) = mean_{i,k} (o_ik − y_ik)²`` (:func:`torch.nn.functional.mse_loss`),
  evaluated through the Gram matrix ``XᵀX/n``, once computed.

Each is convex in ``w`` (a convex function of a linear map), which is what makes the box
relaxation of :mod:`qnnlab.certify.box` a valid lower bound. Everything is float64 NumPy,
the precision of the SciPy solvers that use it.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np
from scipy.special import expit, log_softmax, logsumexp, softmax
from torch import Tensor, nn

from qnnlab.registry import Registry

__all__ = ["LOSSES", "CrossEntropy", "LinearObjective", "Logistic", "Squared", "linear_objective", "objective_for"]

LOSSES: Registry[type[LinearObjective]] = Registry("loss")


class LinearObjective(ABC):
    """``f(w)`` of one loss on ``(x, y)``: its value and gradient, batched values, and Hessian."""

    name: ClassVar[str]

    def __init__(self, x: np.ndarray, y: np.ndarray, outputs: int) -> None:
        self.x = x
        self.y = y
        self.n, self.d = x.shape
        self.outputs = outputs
        self.dim = outputs * self.d

    @abstractmethod
    def value_grad(self, w: np.ndarray) -> tuple[float, np.ndarray]:
        """``(f(w), ∇f(w))`` at one point ``w`` of shape ``(dim,)``."""

    @abstractmethod
    def values(self, ws: np.ndarray) -> np.ndarray:
        """``f`` at each row of ``ws``, shape ``(m, dim)`` → ``(m,)``."""

    @abstractmethod
    def hessian(self, w: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """``∇²f(w)`` restricted to the coordinates ``idx``: shape ``(len(idx), len(idx))``."""

    def value(self, w: np.ndarray) -> float:
        return float(self.values(np.asarray(w, dtype=np.float64)[None])[0])


class Logistic(LinearObjective):
    """``mean_i softplus(x_i·w) − y_i x_i·w``; ``∇f = Xᵀ(σ(Xw) − y)/n``, ``∇²f = Xᵀ diag(σ(1−σ)) X/n``.

    ``softplus`` and ``σ`` share one exponential, ``e = exp(−|o|)``: ``softplus(o) = max(o, 0) + log(1 + e)``,
    ``σ(o) = (o ≥ 0 ? 1 : e)/(1 + e)``; the Hessian reuses the ``σ`` of the last gradient at the same point.
    """

    name = "logistic"

    def __init__(self, x: np.ndarray, y: np.ndarray, outputs: int) -> None:
        super().__init__(x, y, outputs)
        self.xt = np.ascontiguousarray(x.T)  # rows of Xᵀ: the gradient and the Hessian blocks read these
        self._last: tuple[np.ndarray, np.ndarray] | None = None  # (w, σ(Xw)) of the last value_grad

    def value_grad(self, w: np.ndarray) -> tuple[float, np.ndarray]:
        o = self.x @ w
        e = np.exp(-np.abs(o))
        one_e = 1.0 + e
        value = float(np.mean(np.maximum(o, 0.0) + np.log(one_e)) - self.y @ o / self.n)
        sigma = np.where(o >= 0, 1.0, e) / one_e
        self._last = (w.copy(), sigma)
        return value, self.xt @ (sigma - self.y) / self.n

    def values(self, ws: np.ndarray) -> np.ndarray:
        o = self.x @ ws.T
        return np.mean(np.logaddexp(0.0, o) - self.y[:, None] * o, axis=0)

    def hessian(self, w: np.ndarray, idx: np.ndarray) -> np.ndarray:
        cached = self._last is not None and np.array_equal(self._last[0], w)
        sigma = self._last[1] if cached else expit(self.x @ w)
        z = self.xt[idx]
        z *= np.sqrt(sigma * (1 - sigma))  # in place: a fresh (|idx|, n) temporary costs more than the product
        return z @ z.T / self.n


class CrossEntropy(LinearObjective):
    """``mean_i logsumexp(W x_i) − (W x_i)_{y_i}``; ``∇_W f = (softmax(XWᵀ) − onehot(y))ᵀ X / n``.

    The Hessian is ``(1/n) Σ_i (diag p_i − p_i p_iᵀ) ⊗ x_i x_iᵀ`` with ``p_i = softmax(W x_i)``.
    """

    name = "cross_entropy"

    def _logits(self, w: np.ndarray) -> np.ndarray:
        return self.x @ w.reshape(self.outputs, self.d).T

    def value_grad(self, w: np.ndarray) -> tuple[float, np.ndarray]:
        logp = log_softmax(self._logits(w), axis=1)
        rows = np.arange(self.n)
        residual = np.exp(logp)
        residual[rows, self.y] -= 1.0
        return float(-np.mean(logp[rows, self.y])), (residual.T @ self.x / self.n).ravel()

    def values(self, ws: np.ndarray) -> np.ndarray:
        m = len(ws)
        o = (self.x @ ws.reshape(m * self.outputs, self.d).T).reshape(self.n, m, self.outputs)
        return np.mean(logsumexp(o, axis=2) - o[np.arange(self.n), :, self.y], axis=0)

    def hessian(self, w: np.ndarray, idx: np.ndarray) -> np.ndarray:
        p = softmax(self._logits(w), axis=1)
        z = (p[:, :, None] * self.x[:, None, :]).reshape(self.n, self.dim)
        h = -(z.T @ z)
        for k in range(self.outputs):
            block = slice(k * self.d, (k + 1) * self.d)
            h[block, block] += (self.x.T * p[:, k]) @ self.x
        return h[np.ix_(idx, idx)] / self.n


class Squared(LinearObjective):
    """``mean_{i,k} ((W x_i)_k − y_ik)² = (1/K) Σ_k w_kᵀ G w_k − 2 b_k·w_k + c_k`` with ``G = XᵀX/n``,
    ``b_k = Xᵀy_k/n``, ``c_k = mean_i y_ik²``; ``∇_{w_k} f = (2/K)(G w_k − b_k)``, ``∇²f = (2/K) I_K ⊗ G``.
    """

    name = "squared"

    def __init__(self, x: np.ndarray, y: np.ndarray, outputs: int) -> None:
        super().__init__(x, y, outputs)
        targets = y.reshape(self.n, outputs)
        self.gram = x.T @ x / self.n
        self.cross = targets.T @ x / self.n  # row k: b_k
        self.const = float(np.mean(targets**2, axis=0).sum())
        self.hess = np.kron(np.eye(outputs), (2 / outputs) * self.gram)

    def value_grad(self, w: np.ndarray) -> tuple[float, np.ndarray]:
        weights = w.reshape(self.outputs, self.d)
        gw = weights @ self.gram
        value = (np.sum(gw * weights) - 2 * np.sum(self.cross * weights) + self.const) / self.outputs
        return float(value), (2 / self.outputs) * (gw - self.cross).ravel()

    def values(self, ws: np.ndarray) -> np.ndarray:
        rows = ws.reshape(len(ws), self.outputs, self.d)
        quad = np.sum((rows @ self.gram) * rows, axis=(1, 2))
        return (quad - 2 * np.sum(rows * self.cross, axis=(1, 2)) + self.const) / self.outputs

    def hessian(self, w: np.ndarray, idx: np.ndarray) -> np.ndarray:
        return self.hess[np.ix_(idx, idx)]


for _cls in (Logistic, CrossEntropy, Squared):
    LOSSES.register(_cls.name, _cls)


def linear_objective(
    loss: str, x: Tensor | np.ndarray, y: Tensor | np.ndarray, *, outputs: int | None = None
) -> LinearObjective:
    """The objective ``loss`` (see the module docstring) of a bias-free linear model on ``(x, y)``.

    ``x`` is ``(n, d)`` (or ``(n, ...)``, flattened); ``y`` is ``(n,)`` labels or targets, or ``(n, K)``
    targets for ``squared``. ``outputs`` is ``K``; by default 1 for ``logistic``, ``max(y) + 1`` for
    ``cross_entropy`` and ``y``'s width for ``squared``. Bad input raises a one-line ``ValueError``.
    """
    try:
        cls = LOSSES.get(loss)
    except KeyError as err:
        raise ValueError(str(err).strip("\"'")) from None
    xs = np.asarray(x.detach().cpu() if isinstance(x, Tensor) else x, dtype=np.float64)
    ys = np.asarray(y.detach().cpu() if isinstance(y, Tensor) else y, dtype=np.float64)
    if xs.ndim < 2 or len(xs) == 0 or xs[0].size == 0:
        raise ValueError(f"x: expected (n, d) inputs with n, d >= 1, got shape {tuple(xs.shape)}")
    xs = np.ascontiguousarray(xs.reshape(len(xs), -1))
    if len(ys) != len(xs):
        raise ValueError(f"y: {len(ys)} rows for {len(xs)} inputs")
    if not (np.isfinite(xs).all() and np.isfinite(ys).all()):
        raise ValueError("x, y: every value must be finite")
    if cls is Logistic:
        if ys.ndim != 1 or not ((ys >= 0) & (ys <= 1)).all():
            raise ValueError("y: the logistic loss takes labels (n,) in [0, 1]")
        k = 1
    elif cls is CrossEntropy:
        if ys.ndim != 1 or (ys != np.round(ys)).any() or (ys < 0).any():
            raise ValueError("y: cross-entropy takes class indices (n,) in {0, 1, ...}")
        ys = ys.astype(np.int64)
        k = int(ys.max()) + 1 if outputs is None else outputs
        if k < 2 or ys.max() >= k:
            raise ValueError(f"outputs: cross-entropy needs K >= 2 classes covering every label, got K = {k}")
    else:
        if ys.ndim > 2:
            raise ValueError(f"y: squared loss takes targets (n,) or (n, K), got shape {tuple(ys.shape)}")
        k = 1 if ys.ndim == 1 else ys.shape[1]
    if outputs is not None and outputs != k:
        raise ValueError(f"outputs: {outputs} does not match the {k} output(s) the {loss} loss and y define")
    return cls(xs, ys, k)


def objective_for(model: nn.Module, x: Tensor, y: Tensor, *, loss: str | None = None) -> LinearObjective | None:
    """The objective of ``model`` on ``(x, y)`` if it is one bias-free ``nn.Linear`` (after an optional
    ``nn.Flatten``), else ``None``. The loss defaults to qnnlab's: logistic for one output, cross-entropy
    otherwise (:func:`qnnlab.train.evaluate.loss_fn`).
    """
    layers = list(model) if isinstance(model, nn.Sequential) else [model]
    if layers and isinstance(layers[0], nn.Flatten):
        layers = layers[1:]
    if len(layers) != 1 or not isinstance(layers[0], nn.Linear) or layers[0].bias is not None:
        return None
    layer = layers[0]
    if math.prod(x.shape[1:]) != layer.in_features:
        raise ValueError(f"x: {math.prod(x.shape[1:])} features per row, the model takes {layer.in_features}")
    if loss is None:
        loss = "logistic" if layer.out_features == 1 else "cross_entropy"
    if loss == "logistic" and y.dim() == 2 and y.shape[1] == 1:
        y = y[:, 0]
    return linear_objective(loss, x, y, outputs=layer.out_features)
