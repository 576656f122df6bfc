"""Per-tensor statistics over a list of tensors, in a fixed number of kernels.

A :class:`Segments` holds the concatenation of a list of tensors; :meth:`Segments.reduce`
reduces each tensor's slice (:func:`torch.segment_reduce`), :meth:`Segments.expand`
broadcasts one value per tensor back to its entries, and :meth:`Segments.split` cuts a flat
result back into the tensors' shapes. Per-tensor scales (SAWB, max-abs, ternary means) of a
whole param group thus cost the same few kernels whatever the layer count, and nothing syncs
with the device.
"""

from __future__ import annotations

from functools import lru_cache

import torch
from torch import Tensor

__all__ = ["Segments"]


@lru_cache(maxsize=64)
def _lengths(sizes: tuple[int, ...], device: torch.device) -> Tensor:
    # built once per layout, so a step never copies from the host
    return torch.tensor(sizes, device=device)


class Segments:
    """The tensors of ``tensors`` laid end to end (``flat``), with their boundaries."""

    def __init__(self, tensors: list[Tensor]) -> None:
        self.tensors = tensors
        self.sizes = tuple(t.numel() for t in tensors)
        self.flat = torch.cat([t.reshape(-1) for t in tensors])
        self.lengths = _lengths(self.sizes, self.flat.device)

    def reduce(self, values: Tensor, reduce: str) -> Tensor:
        """One value per tensor: ``reduce`` (``"sum"``, ``"mean"``, ``"max"``, ...) of its slice of ``values``."""
        return torch.segment_reduce(values, reduce, lengths=self.lengths)

    def expand(self, per_tensor: Tensor) -> Tensor:
        """``per_tensor[i]`` repeated over the entries of tensor ``i``."""
        return per_tensor.repeat_interleave(self.lengths, output_size=self.flat.numel())

    def stat(self, values: Tensor, reduce: str) -> Tensor:
        """:meth:`reduce` broadcast back to the entries."""
        return self.expand(self.reduce(values, reduce))

    def split(self, flat: Tensor) -> list[Tensor]:
        """A flat tensor cut back into views shaped like ``tensors``."""
        return [o.view_as(t) for o, t in zip(flat.split(self.sizes), self.tensors, strict=True)]
