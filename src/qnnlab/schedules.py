"""Step-size and ε schedules: pure functions of a counter, with their formulas.

Learning-rate schedules map the iteration count ``k = 0, 1, ...`` to ``γ_k`` and are
applied through :class:`torch.optim.lr_scheduler.LambdaLR` (see :func:`lr_scheduler`), so
they compose with anything that speaks the torch scheduler protocol. The ε schedule maps
the epoch ``e = 0, 1, ...`` to the constraint level of ASkewSGD; an :class:`EpochScheduler`
writes it (or ProxQuant's ``λ``, or any per-epoch hyperparameter) into the optimizer's
constrained param groups, in the style of a torch scheduler::

    eps = EpochScheduler(opt, eps=annealed_eps(1.0, hold=10, decay=0.75, floor=1e-4))
    for epoch in range(epochs):
        ...  # the epoch's steps
        eps.step()
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

__all__ = [
    "EpochScheduler",
    "Schedule",
    "annealed_eps",
    "constant",
    "exponential",
    "inverse_power",
    "lr_scheduler",
    "step_decay",
]

Schedule = Callable[[int], Any]


def _check(name: str, value: float, *, low: float = 0.0, strict: bool = True) -> None:
    ok = value > low if strict else value >= low
    if not ok:
        raise ValueError(f"Invalid {name}: {value}; must be {'>' if strict else '>='} {low}")


def constant(init: float) -> Schedule:
    """``γ_k = γ₀``."""
    _check("init", init)
    return lambda k: init


def step_decay(init: float, milestones: Sequence[int], factor: float) -> Schedule:
    """``γ_k = γ₀ · f^{#{m ∈ milestones : m ≤ k}}`` (multiply by ``f`` at each milestone)."""
    _check("init", init)
    _check("factor", factor)
    ms = sorted(milestones)
    if any(m < 0 for m in ms):
        raise ValueError(f"Invalid milestones: {list(milestones)}; must be >= 0")
    return lambda k: init * factor ** bisect.bisect_right(ms, k)


def inverse_power(init: float, tau: float, power: float) -> Schedule:
    """``γ_k = γ₀ / (1 + k/τ)^p``; ``p = 1`` (Robbins–Monro) and ``p = ½`` are the classic cases."""
    _check("init", init)
    _check("tau", tau)
    _check("power", power, strict=False)
    return lambda k: init / (1 + k / tau) ** power


def exponential(init: float, final: float, total: int) -> Schedule:
    """``γ_k = γ₀ · (γ_end/γ₀)^{min(k, K)/K}``: geometric decay from ``γ₀`` to ``γ_end`` over ``K`` iterations.

    BinaryConnect's schedule (Courbariaux, Bengio & David, NeurIPS 2015, arXiv:1511.00363), there applied per epoch.
    """
    _check("init", init)
    _check("final", final)
    _check("total", total)
    ratio = final / init
    return lambda k: init * ratio ** (min(k, total) / total)


def annealed_eps(init: float, hold: int, decay: float, floor: float = 0.0) -> Schedule:
    """``ε_e = ε₀`` for ``e < E₀``, then ``max(ε₀ · ρ^{e − E₀}, ε_min)``.

    Unlike the reference notebook (whose hold exceeded the run length, so ε never moved),
    validate ``hold`` against the number of epochs when you build a run: see
    :mod:`qnnlab.config`.
    """
    _check("init", init)
    _check("hold", hold, strict=False)
    if not 0 < decay <= 1:
        raise ValueError(f"Invalid decay: {decay}; must be in (0, 1]")
    _check("floor", floor, strict=False)
    return lambda e: init if e < hold else max(init * decay ** (e - hold), floor)


def lr_scheduler(optimizer: Optimizer, schedule: Schedule) -> LambdaLR:
    """A per-iteration torch scheduler that sets each group's lr to ``schedule(k)``.

    Groups keep their ratio to the first value: ``lr_g(k) = lr_g(0) · schedule(k)/schedule(0)``.
    """
    base = schedule(0)
    return LambdaLR(optimizer, lambda k: schedule(k) / base)


class EpochScheduler:
    """Sets hyperparameters of the constrained param groups to ``schedule(e)`` for epoch ``e``.

    ``EpochScheduler(optimizer, eps=annealed_eps(1.0, 10, 0.75, 1e-4))`` writes ``schedule(0)`` into
    every group with ``constrained`` true (or absent) now, and ``schedule(e)`` at the ``e``-th
    :meth:`step`, which is called once at the end of each epoch (``step(e)`` jumps to epoch ``e``).
    Each key must already be a hyperparameter of those groups. :meth:`state_dict` holds the
    epoch counter (the schedules are pure functions); :meth:`load_state_dict` also writes that
    epoch's values back into the groups.
    """

    def __init__(self, optimizer: Optimizer, **schedules: Schedule) -> None:
        self.optimizer, self.schedules = optimizer, schedules
        for key in schedules:
            if lacking := [g for g in self._groups() if key not in g]:
                raise ValueError(
                    f"{type(optimizer).__name__} has no hyperparameter {key!r} to schedule; its groups have: "
                    + ", ".join(k for k in lacking[0] if k != "params")
                )
        self.last_epoch = 0
        self._apply()

    def _groups(self) -> list[dict[str, Any]]:
        return [g for g in self.optimizer.param_groups if g.get("constrained", True)]

    def _apply(self) -> None:
        values = self.get_last_values()
        for group in self._groups():
            group.update(values)

    def get_last_values(self) -> dict[str, Any]:
        """``{key: schedule(last_epoch)}``: the values in the groups now."""
        return {key: schedule(self.last_epoch) for key, schedule in self.schedules.items()}

    def step(self, epoch: int | None = None) -> None:
        self.last_epoch = self.last_epoch + 1 if epoch is None else epoch
        self._apply()

    def state_dict(self) -> dict[str, Any]:
        return {"last_epoch": self.last_epoch}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.last_epoch = int(state["last_epoch"])
        self._apply()
