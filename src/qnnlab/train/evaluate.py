"""Loss and accuracy of a model under given weights: continuous ``w`` or quantized ``Q(w)``.

``Q(w)`` is the point the method judges each constrained tensor at, with its per-tensor grid
scale (:mod:`qnnlab.quant.tensor_grids`). Weights are swapped in with
:func:`torch.func.functional_call`, so evaluation never mutates the model. Binary tasks (one
logit) use the mean logistic loss and labels in ``{0, 1}`` (predict 1 when the logit is
positive); multi-class tasks use cross-entropy.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call
from torch.optim import Optimizer

from qnnlab.quant.tensor_grids import default_grid

__all__ = [
    "accuracy",
    "continuous_weights",
    "evaluate",
    "evaluate_batches",
    "loss_fn",
    "loss_gradient",
    "quantized_weights",
]


def loss_fn(logits: Tensor, y: Tensor) -> Tensor:
    """Mean logistic loss for one logit, mean cross-entropy otherwise."""
    if logits.shape[-1] == 1:
        return F.binary_cross_entropy_with_logits(logits.squeeze(-1), y)
    return F.cross_entropy(logits, y)


def accuracy(logits: Tensor, y: Tensor) -> Tensor:
    """Fraction of correct predictions, as a 0-d tensor (no host sync)."""
    if logits.shape[-1] == 1:
        return ((logits.squeeze(-1) > 0) == (y > 0.5)).float().mean()
    return (logits.argmax(-1) == y).float().mean()


def evaluate(model: nn.Module, weights: dict[str, Tensor], x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """``(loss, accuracy)`` of ``model`` on ``(x, y)`` with ``weights`` swapped in, in eval mode."""
    return evaluate_batches(model, weights, [(x, y)])


@torch.no_grad()
def evaluate_batches(
    model: nn.Module, weights: dict[str, Tensor], batches: Iterable[tuple[Tensor, Tensor]]
) -> tuple[Tensor, Tensor]:
    """``(mean loss, accuracy)`` over all examples of ``batches``, as 0-d tensors (no host sync)."""
    was_training = model.training
    model.eval()
    total_loss = total_correct = count = 0
    try:
        for x, y in batches:
            logits = functional_call(model, weights, (x,))
            total_loss = total_loss + loss_fn(logits, y) * len(y)
            total_correct = total_correct + accuracy(logits, y) * len(y)
            count += len(y)
    finally:
        model.train(was_training)
    return total_loss / count, total_correct / count


def loss_gradient(model: nn.Module, weights: dict[str, Tensor], x: Tensor, y: Tensor) -> dict[str, Tensor]:
    """``∇f`` of the loss on ``(x, y)`` at ``weights`` (every parameter), in eval mode."""
    leaves = {n: w.detach().requires_grad_(True) for n, w in weights.items()}
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            loss = loss_fn(functional_call(model, leaves, (x,)), y)
    finally:
        model.train(was_training)
    return dict(zip(leaves, torch.autograd.grad(loss, list(leaves.values())), strict=True))


def continuous_weights(model: nn.Module, optimizer: Optimizer) -> dict[str, Tensor]:
    """Every parameter's continuous value (BinaryConnect keeps it in the optimizer state)."""
    latent = getattr(optimizer, "latent", lambda p: p)
    return {name: latent(p).detach() for name, p in model.named_parameters()}


def quantized_weights(
    model: nn.Module, optimizer: Optimizer, names: list[str], bits: int
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """``(weights, scales)``: every parameter's continuous value with ``Q(w)`` on the tensors named in ``names``,
    and each of those tensors' grid scale ``s`` (0-d tensors), as the method judges them.

    ``Q(w)`` comes from the optimizer's ``quantize`` (:meth:`qnnlab.optim._base.QuantOptimizer.quantize`),
    or the default grid of ``bits`` (:func:`~qnnlab.quant.tensor_grids.default_grid`) for another optimizer.
    """
    weights = continuous_weights(model, optimizer)
    params = dict(model.named_parameters())
    quantize = getattr(optimizer, "quantize", None)
    if quantize is None:
        q, s = default_grid([weights[n] for n in names], bits)
    else:
        q, s = quantize([params[n] for n in names], bits)
    return {**weights, **{n: t.detach() for n, t in zip(names, q, strict=True)}}, dict(
        zip(names, s.unbind(), strict=True)
    )
