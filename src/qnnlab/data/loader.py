"""Your own ``DataLoader`` s as a qnnlab data set: batches exactly as they deal them.

Training iterates the training loader as it is, so its batch size, sampler, collate function,
workers and random state decide the epoch (a run's ``batch_size`` is not used). The
training split is evaluated through a loader over the same ``Dataset`` and collate function
in its stored order, so evaluation neither draws from the training sampler's random state
nor shuffles. Both loaders must have a length (no iterable-style datasets).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from qnnlab.data import TASKS, Batches, Task

__all__ = ["LoaderData"]


class LoaderData:
    """``train`` (and ``test``) loaders of ``(x, y)`` batches; see the module docstring.

    Args:
        train: the training loader.
        test: the test loader; without it only the training split is evaluated.
        task: ``"binary"``, ``"multiclass"`` or ``"regression"``; inferred only for integer labels
            (``"multiclass"``): pass it for float labels.
        n_outputs: the model's output width, needed only to build a named model.
    """

    def __init__(
        self,
        train: DataLoader,
        test: DataLoader | None = None,
        *,
        task: Task | None = None,
        n_outputs: int | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        for what, loader in (("train", train), ("test", test)):
            if loader is not None and not isinstance(loader, DataLoader):
                raise TypeError(f"{what} must be a torch.utils.data.DataLoader, got {type(loader).__name__}")
        self.train, self.test, self.device = train, test, torch.device(device)
        self.n_outputs = n_outputs
        if task is None:
            label = torch.as_tensor(train.dataset[0][1])
            if label.is_floating_point():
                raise ValueError("float labels: pass task='binary' (labels in {0, 1}) or task='regression'")
            task = "multiclass"
        if task not in TASKS:
            raise ValueError(f"Invalid task: {task!r}; choose from: {', '.join(TASKS)}")
        self.task = task
        self._ordered = DataLoader(
            train.dataset, batch_size=train.batch_size or 1, collate_fn=train.collate_fn, num_workers=train.num_workers
        )

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(torch.as_tensor(self.train.dataset[0][0]).shape)

    @property
    def n_train(self) -> int:
        return len(self.train.dataset)

    @property
    def eval_splits(self) -> tuple[str, ...]:
        return ("train", "test") if self.test is not None else ("train",)

    def to(self, device: str | torch.device) -> LoaderData:
        out = copy.copy(self)
        out.device = torch.device(device)
        return out

    def steps_per_epoch(self, batch_size: int) -> int:
        return len(self.train)

    def _moved(self, batches: Any) -> Iterator[tuple[Tensor, Tensor]]:
        for x, y in batches:
            yield x.to(self.device), y.to(self.device)

    def train_batches(self, batch_size: int, generator: torch.Generator) -> Batches:
        """One epoch of the training loader (``batch_size`` and ``generator`` are the loader's own)."""
        return self._moved(self.train)

    def eval_batches(self, split: str, batch_size: int, limit: int | None = None) -> Batches:
        """``split`` in its stored order, in the loaders' batches; ``limit``: its first ``limit`` examples."""
        loaders = {"train": self._ordered, "test": self.test}
        if split not in self.eval_splits:
            raise ValueError(f"unknown split {split!r}; choose from: {', '.join(self.eval_splits)}")
        batches = self._moved(loaders[split])
        return batches if limit is None else _first(batches, limit)


def _first(batches: Iterator[tuple[Tensor, Tensor]], n: int) -> Batches:
    """The batches holding the first ``n`` examples, the last one cut to size."""
    left = n
    for x, y in batches:
        if left <= 0:
            return
        yield x[:left], y[:left]
        left -= len(y)
