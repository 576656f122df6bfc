"""Batch-norm statistics re-estimated at given weights, so that ``Q(w)`` is judged as one function.

A network trained at ``w`` carries batch-norm running statistics gathered at ``w`` (and at earlier
iterates); judged at ``Q(w)`` with them, its loss belongs to neither ``w`` nor ``Q(w)``. Before
``Q(w)`` is evaluated, :func:`recalibrated_stats` re-estimates them at ``Q(w)`` on the training
data: for each batch norm in turn (earlier ones already re-estimated), the exact mean and the
biased variance of its input over every training example given,

    μ_c = (1/N) Σ_i x_ic,    σ²_c = (1/N) Σ_i x_ic² − μ_c²,

which is what the layer computes in training mode on the whole set as one batch. The enumerated
binary optimum (:func:`qnnlab.train.enumerate.model_losses`) normalizes with exactly these
full-batch statistics, so "train loss Q(w)" and the loss whose gap is reported are the same
function of the weights. The statistics are returned as buffers for
:func:`torch.func.functional_call`; the model itself (its running statistics at ``w``) is never
changed. Cost: one forward pass per batch norm, each stopped at that layer.

Reference: Ioffe & Szegedy, "Batch normalization", ICML 2015, §3.1 (inference with population
statistics); re-estimating them after quantization: e.g. Nagel et al., "A white paper on neural
network quantization", 2021, §4.6.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable

import torch
from torch import Tensor, nn
from torch.func import functional_call
from torch.nn.modules.batchnorm import _BatchNorm

__all__ = ["recalibrated_stats"]


class _Reached(Exception):
    """Raised by the hook once the batch norm being re-estimated has seen its input: the rest is not needed."""


@torch.no_grad()
def recalibrated_stats(
    model: nn.Module, weights: dict[str, Tensor], batches: Callable[[], Iterable[tuple[Tensor, Tensor]]]
) -> dict[str, Tensor]:
    """``{"<bn>.running_mean": μ, "<bn>.running_var": σ²}`` of every batch norm of ``model`` that tracks
    running statistics, at ``weights``, over the examples of ``batches()`` (see the module docstring);
    ``{}`` for a model without one. ``batches`` is called once per batch norm and must deal the same
    examples each time."""
    norms = [(n, m) for n, m in model.named_modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
    stats: dict[str, Tensor] = {}
    was_training = model.training
    model.eval()
    try:
        for name, norm in norms:
            mean, var = _input_moments(model, {**weights, **stats}, norm, batches())
            prefix = f"{name}." if name else ""
            stats[f"{prefix}running_mean"] = mean.to(norm.running_mean.dtype)
            stats[f"{prefix}running_var"] = var.to(norm.running_var.dtype)
    finally:
        model.train(was_training)
    return stats


def _input_moments(
    model: nn.Module, state: dict[str, Tensor], norm: nn.Module, batches: Iterable[tuple[Tensor, Tensor]]
) -> tuple[Tensor, Tensor]:
    """Per channel, the mean and biased variance of ``norm``'s input over ``batches`` (``model`` at ``state``)."""
    sums: list[Tensor | int] = [0, 0, 0]  # examples (per channel), Σx, Σx²

    def accumulate(_module: nn.Module, args: tuple[Tensor, ...]) -> None:
        x = args[0].detach().to(torch.float64)
        dims = [0, *range(2, x.dim())]
        sums[0] += x.numel() // x.shape[1]
        sums[1] += x.sum(dims)
        sums[2] += x.square().sum(dims)
        raise _Reached

    handle = norm.register_forward_pre_hook(accumulate)
    try:
        for x, _ in batches:
            with contextlib.suppress(_Reached):
                functional_call(model, state, (x,))
    finally:
        handle.remove()
    count, total, squares = sums
    mean = total / count
    return mean, (squares / count - mean.square()).clamp_min(0)
