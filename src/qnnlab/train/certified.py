"""Certified bounds on the binary optimum of a convex linear problem too large to enumerate, cached by the data.

For a bias-free linear model trained with qnnlab's default loss (logistic for one output,
cross-entropy for several, squared error for regression) the training loss ``f`` is convex, so
the minimum ``f_box`` over the box ``[−1, 1]^m`` bounds the binary optimum from below at any ``m``
(:func:`qnnlab.certify.box_bound`), and a trained ``Q(w)`` is within

    (f(Q(w)) − L)/|L|

of it for any certified lower bound ``L``. Branch-and-bound (:func:`qnnlab.certify.certify`) within
a time limit raises ``L`` and, when it finishes, gives the optimum itself. Both are computed once per
problem — keyed by the training data's contents, the architecture, the loss and the time limit, like
the enumerated optimum (:func:`qnnlab.train.enumerate.binary_optimum`) — with the first run's
``Q(w)`` as a starting incumbent.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np
from torch import Tensor, nn

from qnnlab.certify import LinearObjective, box_bound, certify, objective_for
from qnnlab.train.enumerate import data_digest
from qnnlab.train.evaluate import Metric, loss_fn, mse

__all__ = ["ConvexBound", "convex_bound"]

_CACHE_SIZE = 16
_BOUNDS: OrderedDict[Hashable, ConvexBound] = OrderedDict()
# qnnlab's default losses and the convex objective each is (None: objective_for's default for the outputs)
_LOSSES: dict[Metric, str | None] = {loss_fn: None, mse: "squared"}


@dataclass(frozen=True)
class ConvexBound:
    """What is certified about ``min_{{±1}^m} f``: ``f_box``, the best lower bound, and the optimum if proved."""

    objective: LinearObjective
    box: float  # f_box, the box relaxation's certified minimum
    lower: float  # the best certified lower bound: branch-and-bound's, else f_box
    optimum: float | None  # the binary optimum when branch-and-bound proved it within its time limit

    def value(self, q: Tensor) -> float:
        """``f(q)`` in float64 for the flat weight vector ``q``."""
        return self.objective.value(np.asarray(q.detach().cpu().double()))


def convex_bound(
    model: nn.Module, x: Tensor, y: Tensor, loss: Metric, incumbent: Tensor, time_limit: float
) -> ConvexBound | None:
    """The :class:`ConvexBound` of ``model`` on ``(x, y)`` (``None`` unless it is a bias-free linear model under a
    default loss); branch-and-bound runs for ``time_limit`` seconds from ``incumbent`` (0: the box bound only)."""
    if loss not in _LOSSES:
        return None
    objective = objective_for(model, x, y, loss=_LOSSES[loss])
    if objective is None:
        return None
    key = (data_digest(x, y), type(model), repr(model), loss, time_limit)
    if key not in _BOUNDS:
        box = box_bound(objective).lower
        if time_limit > 0:
            cert = certify(objective, incumbents=[incumbent.cpu().double()], time_limit=time_limit)
            optimum = cert.value if cert.status == "optimal" else None
            _BOUNDS[key] = ConvexBound(objective, box, max(box, cert.lower), optimum)
        else:
            _BOUNDS[key] = ConvexBound(objective, box, box, None)
        if len(_BOUNDS) > _CACHE_SIZE:
            _BOUNDS.popitem(last=False)
    _BOUNDS.move_to_end(key)
    return _BOUNDS[key]
