"""Paired comparisons of two methods over the same (problem, training seed) pairs: the exact sign test.

Two methods ``a`` and ``b`` run on the same pairs ``k = (data seed, training seed)``; on each pair
present for both, ``a`` wins when its value is better (lower or higher, as the column says), loses when
worse, and ties when the two agree to a relative ``1e-9`` (e.g. the same ``Q(w)``); a NaN (a diverged
run) is worse than any number. Ties are dropped.
Under ``H₀`` (neither is better, each untied pair a fair coin), the number of wins ``W`` among the
``m`` untied pairs is ``Binomial(m, ½)``; the one-sided p-value for "``a`` beats ``b``" is
``P(Binomial(m, ½) ≥ W)`` (:func:`scipy.stats.binomtest`). It assumes nothing about the size of the
differences, only that pairs are independent, which makes it robust across problems whose losses
differ in scale; the price is power: with ``m = 5`` untied pairs the smallest p-value is
``2⁻⁵ = 0.031``, so at least 5 pairs are needed to reach the level ``α = 0.05``.

References:
    Conover, *Practical Nonparametric Statistics*, 3rd ed., Wiley 1999, §3.4 (the sign test).
    Demšar, "Statistical comparisons of classifiers over multiple data sets", JMLR 7, 2006.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Literal

from scipy.stats import binomtest

__all__ = ["ALPHA", "TIE_RTOL", "PairedTest", "sign_test"]

ALPHA = 0.05
TIE_RTOL = 1e-9
Better = Literal["min", "max"]


@dataclass(frozen=True)
class PairedTest:
    """``a`` against ``b`` over their common pairs: wins, ties, losses and the one-sided p-value of ``a``."""

    wins: int
    ties: int
    losses: int
    p: float  # P(Binomial(wins + losses, ½) ≥ wins); 1 when no pair is untied

    @property
    def significant(self) -> bool:
        return self.p < ALPHA

    def describe(self) -> str:
        return f"{self.wins} wins, {self.ties} ties, {self.losses} losses; one-sided sign test p = {self.p:.3g}"


def sign_test(a: Mapping[Hashable, float], b: Mapping[Hashable, float], better: Better) -> PairedTest:
    """The exact sign test of "``a`` is better than ``b``" over the keys both hold (see the module docstring)."""
    if better not in ("min", "max"):
        raise ValueError(f"Invalid better: {better!r}; expected 'min' or 'max'")
    worst = math.inf if better == "min" else -math.inf
    wins = ties = losses = 0
    for key in a.keys() & b.keys():
        x, y = (worst if math.isnan(v) else v for v in (a[key], b[key]))
        if math.isclose(x, y, rel_tol=TIE_RTOL, abs_tol=0.0):
            ties += 1
        elif (x < y) == (better == "min"):
            wins += 1
        else:
            losses += 1
    p = binomtest(wins, wins + losses, 0.5, alternative="greater").pvalue if wins + losses else 1.0
    return PairedTest(wins, ties, losses, float(p))
