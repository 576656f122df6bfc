"""Data-parallel training under torchrun: each rank trains on its slice of every global mini-batch.

::

    torchrun --nproc_per_node=N -m qnnlab run CONFIG

torchrun starts ``N`` processes and sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` (and the
rendezvous address) in each; :class:`Replicas` reads them and initializes the default process
group once per process (gloo for CPU tensors, NCCL for CUDA ones; ``cuda`` means ``cuda:LOCAL_RANK``).
In :func:`qnnlab.fit` every rank then builds the same model, data and data-order generator from the
seed, and

- :meth:`Replicas.wrap` puts the model in ``DistributedDataParallel``, which broadcasts rank 0's
  parameters and buffers and averages the gradients in every backward pass; the optimizer is built
  *after* the wrap, so that latent state copied from the parameters (BinaryConnect's ``w``) is
  copied from the broadcast values. An optimizer built before the wrap is re-synced by
  ``wrap(model, optimizer)``, which broadcasts its state tensors from rank 0;
- :meth:`Replicas.shard` gives rank ``r`` the ``r``-th of ``W`` contiguous slices of each global
  batch, the batch one process would take (``batch_size`` stays the global batch size), and
  :meth:`Replicas.loss` weights its mean loss by ``n_r·W/n`` (``n_r`` of the ``n`` examples), so
  that DDP's average of the ranks' gradients is the gradient of the global batch's mean loss, a
  last batch not divisible by ``W`` included: the iterates equal a single process's up to the
  order of floating-point sums. The losses must be batch means (every built-in loss is);
- the optimizers' random draws (stochastic BinaryConnect) are counter-based, a function of the
  param group's ``seed`` (:mod:`qnnlab.optim._draws`), which :func:`broadcast_state` copies from
  rank 0 too: identical on every rank and in a single process;
- only rank 0 writes (:attr:`Replicas.writes`): the run store, checkpoints, trackers and tables.
  The other ranks evaluate each epoch in memory and discard it.

Batch norm normalizes each rank's slice by its own statistics (DDP's default; the running
statistics used to evaluate are rank 0's), so a batch-norm model is not the single-process one;
the per-iteration loss curve is rank 0's slice's (weighted). References: PyTorch's ``torchrun`` and
``DistributedDataParallel`` (Li et al., "PyTorch Distributed", VLDB 2020, arXiv:2006.15704).
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim import Optimizer

from qnnlab.train.evaluate import Metric

__all__ = ["Replicas", "broadcast_state", "is_rank_zero"]


def is_rank_zero() -> bool:
    """Whether this process writes outputs: rank 0 of a torchrun job, or any process outside one."""
    return int(os.environ.get("RANK", "0")) == 0


def _init_process_group() -> None:
    if dist.is_initialized():
        return
    nccl = torch.cuda.is_available() and dist.is_nccl_available()
    dist.init_process_group("cpu:gloo,cuda:nccl" if nccl else "gloo")
    atexit.register(dist.destroy_process_group)


@dataclass
class Replicas:
    """This process's place among the data-parallel ranks: ``rank`` of ``world`` (1 of 1 outside torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    _weight: float = field(default=1.0, repr=False)  # of the slice being trained on

    @classmethod
    def from_env(cls) -> Replicas:
        """torchrun's ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` (the process group initialized); else one process."""
        if "WORLD_SIZE" not in os.environ:
            return cls()
        _init_process_group()
        return cls(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def writes(self) -> bool:
        """Rank 0 alone writes the run store, checkpoints and outputs."""
        return self.rank == 0

    def device(self, device: str) -> str:
        """``cuda`` is this rank's GPU, ``cuda:LOCAL_RANK``; any other device as given."""
        if device == "cuda" and self.distributed:
            torch.cuda.set_device(self.local_rank)
            return f"cuda:{self.local_rank}"
        return device

    def wrap(self, model: nn.Module, optimizer: Optimizer | None = None) -> nn.Module:
        """``model`` in ``DistributedDataParallel`` (itself in one process); ``optimizer``'s state then re-synced."""
        if not self.distributed:
            return model
        device = next(model.parameters()).device
        wrapped = DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
        if optimizer is not None:
            broadcast_state(optimizer)
        return wrapped

    def shard(self, batches: Iterable[tuple[Tensor, Tensor]]) -> Iterable[tuple[Tensor, Tensor]]:
        """This rank's contiguous slice of each global batch; :meth:`loss` weights it. One process: ``batches``."""
        return self._slices(batches) if self.distributed else batches

    def _slices(self, batches: Iterable[tuple[Tensor, Tensor]]) -> Iterator[tuple[Tensor, Tensor]]:
        for x, y in batches:
            n = len(y)
            lo, hi = n * self.rank // self.world, n * (self.rank + 1) // self.world
            self._weight = (hi - lo) * self.world / n
            yield x[lo:hi], y[lo:hi]

    def loss(self, loss: Metric) -> Metric:
        """``loss`` times the current slice's weight ``n_r·W/n`` (an empty slice: an exact zero with zero gradient)."""
        if not self.distributed:
            return loss

        def weighted(output: Tensor, target: Tensor) -> Tensor:
            return loss(output, target) * self._weight if len(target) else output.sum() * 0

        return weighted


def broadcast_state(optimizer: Optimizer, src: int = 0) -> None:
    """Copy rank ``src``'s optimizer state tensors (latent weights, moments, held steps) and its groups' draw
    ``seed`` to every rank, in place.

    Every rank must hold the same state layout (the same optimizer built on the same parameters).
    """
    seeds = [group.get("seed") for group in optimizer.param_groups]
    dist.broadcast_object_list(seeds, src)
    for group, seed in zip(optimizer.param_groups, seeds, strict=True):
        if seed is not None:
            group["seed"] = seed
    with torch.no_grad():
        for group in optimizer.param_groups:
            for p in group["params"]:
                state = optimizer.state.get(p, {})
                for key in sorted(state):
                    if torch.is_tensor(state[key]):
                        dist.broadcast(state[key], src)
