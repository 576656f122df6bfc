"""Shared skeleton of qnnlab's optimizers: direction → base step → projection.

Every method is a :class:`torch.optim.Optimizer` whose ``step`` does, per param group,

1. ``d = direction(w, g)``: the method's search direction (the plain gradient by default);
2. ``u = base(d)``: the base step, SGD (heavy-ball momentum ``b ← μb + d``, ``u = b``) or
   Adam (bias-corrected ``m̂/(√v̂ + δ)``), with weight decay ``d ← d + λw`` added before it;
3. ``w ← w − γ·c·u``: ``γ`` is the group's ``lr`` and ``c`` an optional per-tensor scale;
4. ``project``: the method's map back onto its domain (a box clip, a re-binarization, ...).

:meth:`QuantOptimizer.quantize` gives the point ``Q(w)`` each weight is judged at and the
per-tensor scale of its grid (:mod:`qnnlab.quant.tensor_grids`); methods that train for a grid
of their own override :meth:`QuantOptimizer._grid`.

All four act on lists of tensors with ``torch._foreach_*`` kernels: no Python loop over
elements and no host synchronization. Groups carry ``constrained``: where it is ``False``
(biases, norms) steps 1 and 4 are skipped and the group is trained in full precision.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

from qnnlab.quant.tensor_grids import default_grid

__all__ = ["BASES", "QuantOptimizer", "check_nonnegative", "check_positive", "clip_unit_box_", "flat_map"]

BASES = ("sgd", "adam")


def check_positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"Invalid {name}: {value}; must be > 0")


def check_nonnegative(name: str, value: float) -> None:
    if not value >= 0:
        raise ValueError(f"Invalid {name}: {value}; must be >= 0")


def clip_unit_box_(tensors: list[Tensor]) -> None:
    """Clamp every tensor to the box ``[-1, 1]`` in place."""
    torch._foreach_clamp_min_(tensors, -1.0)
    torch._foreach_clamp_max_(tensors, 1.0)


def flat_map(fn, *tensor_lists: list[Tensor]):
    """Apply an entry-wise ``fn`` to the concatenation of each list, split back to shapes.

    One flat tensor per group means a fixed number of kernels whatever the layer count.
    When ``fn`` returns a tuple of flat tensors, a tuple of lists comes back.
    """
    first = tensor_lists[0]
    sizes = [t.numel() for t in first]
    out = fn(*(torch.cat([t.reshape(-1) for t in ts]) for ts in tensor_lists))

    def unflatten(flat: Tensor) -> list[Tensor]:
        return [o.view_as(t) for o, t in zip(flat.split(sizes), first, strict=True)]

    return tuple(unflatten(o) for o in out) if isinstance(out, tuple) else unflatten(out)


class QuantOptimizer(Optimizer):
    """Base class; subclasses override :meth:`_direction`, :meth:`_project`, :meth:`_targets`."""

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        method_defaults: dict[str, Any],
        *,
        lr: float,
        momentum: float,
        weight_decay: float,
        base: str,
        betas: tuple[float, float],
        adam_eps: float,
    ) -> None:
        """Validate the base-step hyperparameters and register them beside the method's own."""
        check_positive("learning rate", lr)
        check_nonnegative("momentum", momentum)
        check_nonnegative("weight_decay", weight_decay)
        if base not in BASES:
            raise ValueError(f"Invalid base: {base!r}; choose from: {', '.join(BASES)}")
        beta1, beta2 = betas
        if not (0 <= beta1 < 1 and 0 <= beta2 < 1):
            raise ValueError(f"Invalid betas: {betas}; each must be in [0, 1)")
        check_positive("adam_eps", adam_eps)
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay, base=base, betas=betas, adam_eps=adam_eps)
        super().__init__(params, {**defaults, "constrained": True, **method_defaults})

    # -- hooks ------------------------------------------------------------------------
    def _targets(self, group: dict[str, Any], params: list[Tensor]) -> list[Tensor]:
        """The tensors the update is applied to (the parameters themselves by default)."""
        return params

    def _direction(self, group: dict[str, Any], targets: list[Tensor], grads: list[Tensor]) -> list[Tensor]:
        """Search direction of a constrained group (the plain gradient by default)."""
        return grads

    def _project(self, group: dict[str, Any], params: list[Tensor], targets: list[Tensor]) -> None:
        """Map a constrained group back onto the method's domain, in place."""

    def _scales(self, group: dict[str, Any], params: list[Tensor]) -> list[float] | None:
        """Per-tensor learning-rate multipliers, or ``None`` for all ones."""
        return None

    def _grid(self, group: dict[str, Any], params: list[Tensor], bits: int) -> tuple[list[Tensor], Tensor]:
        """``(Q(w), s)`` of a constrained group's parameters (default: the ``default_grid`` of ``bits``)."""
        return default_grid([self.latent(p) for p in params], bits)

    def latent(self, p: Tensor) -> Tensor:
        """The continuous weight behind parameter ``p`` (``p`` itself by default)."""
        return p

    @torch.no_grad()
    def quantize(self, params: list[Tensor], bits: int) -> tuple[list[Tensor], Tensor]:
        """``(Q(w), s)``: the point each parameter's continuous weight is judged at, and its grid's scale.

        ``Q(w)/s`` is a level of ``get_grid(bits)`` (:mod:`qnnlab.quant.tensor_grids`); ``s`` has one
        entry per parameter. Each parameter is quantized as its param group's method prescribes.
        """
        wanted = {id(p): i for i, p in enumerate(params)}
        q: list[Tensor | None] = [None] * len(params)
        scales: list[Tensor | None] = [None] * len(params)
        for group in self.param_groups:
            mine = [p for p in group["params"] if id(p) in wanted]
            trained = group.get("bits")  # a method that trains for one grid is judged on that one only
            if mine and trained is not None and trained != bits:
                raise ValueError(
                    f"this {type(self).__name__} group trains for bits={trained}; it cannot be judged on bits={bits}"
                )
            if mine:
                qs, ss = self._grid(group, mine, bits)
                for p, qp, sp in zip(mine, qs, ss.unbind(), strict=True):
                    q[wanted[id(p)]], scales[wanted[id(p)]] = qp, sp
        if any(t is None for t in q):
            raise ValueError("quantize: every parameter must belong to one of the optimizer's param groups")
        return q, torch.stack(scales)

    # -- step ---------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            constrained = group["constrained"]
            targets = self._targets(group, params) if constrained else params
            dirs = self._direction(group, targets, grads) if constrained else grads
            updates = self._base_update(group, params, targets, dirs)
            scales = self._scales(group, params) if constrained else None
            if scales is not None:
                updates = torch._foreach_mul(updates, scales)
            torch._foreach_add_(targets, updates, alpha=-group["lr"])
            if constrained:
                self._project(group, params, targets)
        return loss

    def _base_update(
        self, group: dict[str, Any], params: list[Tensor], targets: list[Tensor], dirs: list[Tensor]
    ) -> list[Tensor]:
        if group["weight_decay"] != 0:
            dirs = torch._foreach_add(dirs, targets, alpha=group["weight_decay"])
        if group["base"] == "adam":
            return self._adam(group, params, dirs)
        if group["momentum"] == 0:
            return dirs
        bufs = [self._buffer(p, "momentum_buffer") for p in params]
        torch._foreach_mul_(bufs, group["momentum"])
        torch._foreach_add_(bufs, dirs)
        return bufs

    def _adam(self, group: dict[str, Any], params: list[Tensor], dirs: list[Tensor]) -> list[Tensor]:
        beta1, beta2 = group["betas"]
        ms = [self._buffer(p, "exp_avg") for p in params]
        vs = [self._buffer(p, "exp_avg_sq") for p in params]
        torch._foreach_lerp_(ms, dirs, 1 - beta1)
        torch._foreach_mul_(vs, beta2)
        torch._foreach_addcmul_(vs, dirs, dirs, value=1 - beta2)
        # step counts are python ints: no device sync, and they ride in state_dict
        steps = []
        for p in params:
            state = self.state[p]
            state["step"] = state.get("step", 0) + 1
            steps.append(state["step"])
        denom = torch._foreach_sqrt(vs)
        torch._foreach_div_(denom, [(1 - beta2**t) ** 0.5 for t in steps])
        torch._foreach_add_(denom, group["adam_eps"])
        updates = torch._foreach_div(ms, denom)
        torch._foreach_div_(updates, [1 - beta1**t for t in steps])
        return updates

    def _buffer(self, p: Tensor, name: str) -> Tensor:
        state = self.state[p]
        if name not in state:
            state[name] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return state[name]
