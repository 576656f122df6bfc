"""The certified binary optimum ``min_{w ∈ {±1}^d} f(w)``, by exhaustive enumeration.

All ``2^d`` sign vectors are scored in chunks (no loop over vectors): matrix products for
the logistic model, :func:`torch.vmap` over :func:`torch.func.functional_call` for any small
network, in float64 so that the ranking is exact to well below any reported gap.
:func:`binary_optimum` caches the result by what it depends on: the training data's contents,
the architecture and the loss (never by a config that names them).
"""

from __future__ import annotations

import copy
import hashlib
from collections import OrderedDict
from collections.abc import Callable, Hashable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, replace_all_batch_norm_modules_

from qnnlab.train.evaluate import Metric, loss_fn

__all__ = ["MAX_ENUM_DIM", "binary_minimum", "binary_optimum", "data_digest", "logistic_losses", "model_losses"]

MAX_ENUM_DIM = 20
_CACHE_SIZE = 16
_OPTIMA: OrderedDict[Hashable, float] = OrderedDict()


def binary_minimum(losses: Callable[[Tensor], Tensor], d: int, *, chunk: int = 1 << 14) -> tuple[float, Tensor]:
    """``(min f, argmin)`` over ``{±1}^d``, where ``losses`` maps ``(m, d)`` candidates to ``(m,)``.

    Candidate ``i`` has entry ``j`` equal to ``+1`` iff bit ``j`` of ``i`` is set.
    """
    if not 1 <= d <= MAX_ENUM_DIM:
        raise ValueError(f"Invalid d: {d}; enumeration needs 1 <= d <= {MAX_ENUM_DIM}")
    powers = torch.arange(d)
    best, best_w = float("inf"), torch.empty(0)
    for start in range(0, 1 << d, chunk):
        idx = torch.arange(start, min(start + chunk, 1 << d))
        cand = ((idx[:, None] >> powers) & 1).to(torch.float64) * 2 - 1
        vals = losses(cand)
        i = int(vals.argmin())
        if float(vals[i]) < best:
            best, best_w = float(vals[i]), cand[i]
    return best, best_w


def logistic_losses(x: Tensor, y: Tensor) -> Callable[[Tensor], Tensor]:
    """``W ↦ mean_i [softplus(x_i·w) − y_i·x_i·w]`` for each row ``w`` of ``W`` (no bias)."""
    x64, y64 = x.to(torch.float64), y.to(torch.float64)

    def losses(w: Tensor) -> Tensor:
        o = x64 @ w.to(torch.float64).T
        return (F.softplus(o) - y64[:, None] * o).mean(0)

    return losses


def model_losses(model: nn.Module, x: Tensor, y: Tensor, loss: Metric = loss_fn) -> Callable[[Tensor], Tensor]:
    """``W ↦ loss(model with parameters w)`` on ``(x, y)`` for each row ``w`` of ``W``.

    A row is every parameter flattened and concatenated in ``named_parameters`` order. The
    model is a float64 copy in training mode whose batch norms keep no running statistics,
    so they normalize with the statistics of the whole of ``x``: the loss is a function of
    the weights alone.
    """
    net = copy.deepcopy(model).to(device=x.device, dtype=torch.float64).train()
    replace_all_batch_norm_modules_(net)
    names, shapes = zip(*((n, p.shape) for n, p in net.named_parameters()), strict=True)
    sizes = [s.numel() for s in shapes]
    x64 = x.to(torch.float64)
    y64 = y.to(torch.float64) if y.is_floating_point() else y

    def one(w: Tensor) -> Tensor:
        params = {n: t.view(s) for n, t, s in zip(names, w.split(sizes), shapes, strict=True)}
        return loss(functional_call(net, params, (x64,)), y64)

    batched = torch.vmap(one)
    return lambda w: batched(w.to(torch.float64))


def data_digest(*tensors: Tensor) -> str:
    """SHA-256 of the tensors' shapes, dtypes and contents: the key the cached optima are found by."""
    h = hashlib.sha256()
    for t in tensors:
        h.update(f"{tuple(t.shape)}{t.dtype}".encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def binary_optimum(model: nn.Module, x: Tensor, y: Tensor, loss: Metric = loss_fn) -> float:
    """``min f`` over ``{±1}`` values of every parameter of ``model``, ``f = loss`` on ``(x, y)`` as in
    :func:`model_losses`; cached by the contents of ``(x, y)``, the architecture and ``loss``."""
    key = (data_digest(x, y), type(model), repr(model), loss)
    if key not in _OPTIMA:
        n = sum(p.numel() for p in model.parameters())
        _OPTIMA[key] = binary_minimum(model_losses(model, x, y, loss), n)[0]
        if len(_OPTIMA) > _CACHE_SIZE:
            _OPTIMA.popitem(last=False)
    _OPTIMA.move_to_end(key)
    return _OPTIMA[key]
