"""Interleaved timing on a shared machine: many short rounds, per-round ratios to a reference, median and IQR.

Each round times every case once, in a freshly shuffled order, for about ``seconds`` (a number of calls
fixed per case beforehand), and divides each case's time per call by the reference's time in the same
round: load that lasts longer than a round cancels in the ratio. The report gives the median over rounds
of the time and of the ratio, and the ratio's interquartile range.
"""

from __future__ import annotations

import os
import platform
import random
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import torch

import qnnlab


@dataclass(frozen=True)
class Stats:
    seconds: float  # median time per call
    ratio: float  # median per-round ratio to the reference
    q1: float
    q3: float

    def cells(self) -> str:
        return f"{self.seconds * 1e3:.3f} | {self.ratio:.2f} | {self.q1:.2f}–{self.q3:.2f}"


def calls_for(fn: Callable[[], object], seconds: float) -> int:
    """How many calls of ``fn`` take about ``seconds`` (at least one; ``seconds ≤ 0``: one, without warm-up)."""
    if seconds <= 0:
        return 1
    fn()
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-7)
    return max(1, round(seconds / once))


def interleaved(
    cases: dict[str, Callable[[], object]],
    references: dict[str, str],
    *,
    rounds: int,
    seconds: float,
    seed: int = 0,
    log: bool = True,
) -> dict[str, dict[str, Stats]]:
    """``{reference: {case: Stats}}``: every case against each reference, from the same rounds."""
    numbers = {name: calls_for(fn, seconds) for name, fn in cases.items()}
    times: dict[str, list[float]] = {name: [] for name in cases}
    order = list(cases)
    shuffle = random.Random(seed)
    for r in range(rounds):
        shuffle.shuffle(order)
        for name in order:
            fn, n = cases[name], numbers[name]
            start = time.perf_counter()
            for _ in range(n):
                fn()
            times[name].append((time.perf_counter() - start) / n)
        if log:
            print(f"round {r + 1}/{rounds}", file=sys.stderr, end="\r")
    out = {}
    for label, ref in references.items():
        out[label] = {}
        for name, ts in times.items():
            ratios = [t / base for t, base in zip(ts, times[ref], strict=True)]
            q1, _, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else (ratios[0],) * 3
            out[label][name] = Stats(statistics.median(ts), statistics.median(ratios), q1, q3)
    return out


def last_level_cache() -> int | None:
    """Bytes of the CPU's last-level cache (Linux sysfs), ``None`` where it cannot be read."""
    levels = {}
    for index in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            level, size = int((index / "level").read_text()), (index / "size").read_text().strip()
        except (OSError, ValueError):
            continue
        units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
        levels[level] = int(size[:-1]) * units[size[-1]] if size[-1] in units else int(size)
    return levels[max(levels)] if levels else None


def provenance(title: str, make_bench: list[str], extra: str = "") -> list[str]:
    """The Markdown head of a benchmark file: title, the command that produced it, versions and machine."""
    argv = [".venv/bin/python", *sys.argv]
    command = f"`{shlex.join(argv)}`"
    if argv == make_bench:
        command = f"`make bench`, i.e. {command},"
    return [
        f"# {title}",
        "",
        f"Produced by {command} on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        "",
        f"- versions: Python {platform.python_version()}, torch {torch.__version__}, "
        f"qnnlab {qnnlab.__version__}{extra}",
        f"- machine: {platform.processor() or platform.machine()}, {platform.system()}, "
        f"os.cpu_count() = {os.cpu_count()}, torch threads = {torch.get_num_threads()}",
    ]
