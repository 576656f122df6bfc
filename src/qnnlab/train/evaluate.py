"""Loss and metrics of a model under given weights: continuous ``w`` or quantized ``Q(w)``.

``Q(w)`` is the point the method judges each constrained tensor at, with its per-tensor grid
scale (:mod:`qnnlab.quant.tensor_grids`). Weights are swapped in with
:func:`torch.func.functional_call`, so evaluation never mutates the model (:func:`quantized`
swaps ``Q(w)`` into the parameters for code you do not control, such as a Lightning
validation loop). What is measured is an :class:`Objective`: a loss and named metrics, each
a batch mean of ``(output, target)``. The default follows the task: binary tasks (one
logit) the mean logistic loss with labels in ``{0, 1}`` and the accuracy (predict 1 when the
logit is positive), multi-class tasks cross-entropy and accuracy, regression the mean
squared error alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call
from torch.optim import Optimizer

from qnnlab.quant.tensor_grids import default_grid

__all__ = [
    "Metric",
    "Objective",
    "accuracy",
    "continuous_weights",
    "evaluate",
    "loss_fn",
    "loss_gradient",
    "mse",
    "quantized",
    "quantized_weights",
]

Metric = Callable[[Tensor, Tensor], Tensor]


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


def mse(output: Tensor, y: Tensor) -> Tensor:
    """Mean squared error ``mean((output − y)²)``; an ``(N, 1)`` output is compared with ``N`` targets."""
    return F.mse_loss(output.reshape(y.shape), y)


@dataclass(frozen=True)
class Objective:
    """The training loss and the metrics reported beside it: each ``(output, y) -> 0-d batch mean``."""

    loss: Metric = loss_fn
    metrics: Mapping[str, Metric] = field(default_factory=lambda: {"acc": accuracy})

    @classmethod
    def for_task(cls, task: str, loss: Metric | None = None, metrics: Mapping[str, Metric] | None = None) -> Objective:
        """The task's default (see the module docstring), with ``loss`` instead and ``metrics`` added."""
        default = cls(mse, {}) if task == "regression" else cls()
        extra = dict(metrics or {})
        if "loss" in extra:
            raise ValueError("metrics: 'loss' is the objective's own name; give the metric another")
        return cls(loss or default.loss, {**default.metrics, **extra})


class _Sweep(nn.Module):
    """``model`` over a sequence of batches, as one module: :func:`functional_call` swaps the weights in once per
    evaluation, not once per batch (a swap costs about what a small model's forward does)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batches: Iterable[tuple[Tensor, Tensor]], named: Mapping[str, Metric]) -> dict[str, Tensor]:
        totals: dict[str, Tensor | int] = dict.fromkeys(named, 0)
        count = 0
        for x, y in batches:
            output = self.model(x)
            for name, fn in named.items():
                totals[name] = totals[name] + fn(output, y) * len(y)
            count += len(y)
        return {name: total / count for name, total in totals.items()}


@torch.no_grad()
def evaluate(
    model: nn.Module,
    weights: dict[str, Tensor],
    batches: Iterable[tuple[Tensor, Tensor]],
    objective: Objective | None = None,
) -> dict[str, Tensor]:
    """``{"loss": mean loss, metric: mean}`` over all examples of ``batches`` with ``weights`` swapped in,
    in eval mode, as 0-d tensors (no host sync); ``objective`` defaults to :class:`Objective` ``()``."""
    objective = objective or Objective()
    was_training = model.training
    model.eval()
    try:
        swept = {f"model.{name}": w for name, w in weights.items()}
        return functional_call(_Sweep(model), swept, (batches, {"loss": objective.loss, **objective.metrics}))
    finally:
        model.train(was_training)


def loss_gradient(
    model: nn.Module, weights: dict[str, Tensor], x: Tensor, y: Tensor, loss: Metric = loss_fn
) -> dict[str, Tensor]:
    """``∇f`` of ``loss`` on ``(x, y)`` at ``weights`` (every parameter), in eval mode."""
    leaves = {n: w.detach().requires_grad_(True) for n, w in weights.items()}
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            value = loss(functional_call(model, leaves, (x,)), y)
    finally:
        model.train(was_training)
    return dict(zip(leaves, torch.autograd.grad(value, list(leaves.values())), strict=True))


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


@contextmanager
def quantized(model: nn.Module, optimizer: Optimizer, names: list[str], bits: int) -> Iterator[None]:
    """Inside the block the parameters named in ``names`` hold ``Q(w)``; on leaving, their values before."""
    judged, _ = quantized_weights(model, optimizer, names, bits)
    params = dict(model.named_parameters())
    saved = {n: params[n].detach().clone() for n in names}
    with torch.no_grad():
        for n in names:
            params[n].copy_(judged[n])
    try:
        yield
    finally:
        with torch.no_grad():
            for n in names:
                params[n].copy_(saved[n])
