"""Step-size and ε schedules: pure functions of a counter, with their formulas.

Learning-rate schedules map the iteration count ``k = 0, 1, ...`` to ``γ_k`` and are
applied through :class:`torch.optim.lr_scheduler.LambdaLR` (see :func:`lr_scheduler`), so
they compose with anything that speaks the torch scheduler protocol. The ε schedule maps
the epoch ``e = 0, 1, ...`` to the constraint level of ASkewSGD.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

__all__ = ["Schedule", "annealed_eps", "constant", "exponential", "inverse_power", "lr_scheduler", "step_decay"]

Schedule = Callable[[int], float]


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
