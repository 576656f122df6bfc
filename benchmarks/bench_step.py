"""Optimizer step time of qnnlab's optimizers, as a ratio to ``torch.optim.SGD(foreach=True)``.

Only ``optimizer.step()`` is timed: every optimizer gets a fresh MLP built from the same
seed, with ``.grad`` filled once with the same fixed random tensors (no forward/backward).
All measurements happen in one process: the whole set, torch's SGD included, is measured
``--rounds`` times in alternating order and each optimizer's median over rounds is divided
by torch's. Steps mutate the weights; that is fine for timing.

Usage (``make bench``)::

    .venv/bin/python benchmarks/bench_step.py --out docs/benchmarks.md
    .venv/bin/python benchmarks/bench_step.py --quick   # smoke test: tiny model, prints only

To benchmark another optimizer, append a ``(name, factory)`` pair to ``OPTIMIZERS``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

import torch
from torch import nn
from torch.utils.benchmark import Timer

import qnnlab
from qnnlab.io import write_atomic
from qnnlab.nn.models import param_groups
from qnnlab.optim import SGD, STE, AdaSTE, ASkewSGD, BinaryConnect, ConstrainedGD, PrimalDual, ProxQuant

LR = 0.01
REFERENCE = "torch.optim.SGD(foreach=True)"
MAKE_BENCH = [".venv/bin/python", "benchmarks/bench_step.py", "--out", "docs/benchmarks.md"]

Factory = Callable[[nn.Module], torch.optim.Optimizer]
OPTIMIZERS: list[tuple[str, Factory]] = [
    (REFERENCE, lambda m: torch.optim.SGD(m.parameters(), lr=LR, foreach=True)),
    ("qnnlab SGD", lambda m: SGD(param_groups(m), lr=LR)),
    ("BinaryConnect", lambda m: BinaryConnect(param_groups(m), lr=LR)),
    ("BinaryConnect(stochastic=True)", lambda m: BinaryConnect(param_groups(m), lr=LR, stochastic=True)),
    ("ASkewSGD(eps=0.1, alpha=1)", lambda m: ASkewSGD(param_groups(m), lr=LR, eps=0.1, alpha=1.0)),
    (
        'ASkewSGD(eps=0.1, alpha=1, base="adam")',
        lambda m: ASkewSGD(param_groups(m), lr=LR, eps=0.1, alpha=1.0, base="adam"),
    ),
    # ε < 1/16: the constraint is active and each tensor's grid step is held after the first step
    ("ASkewSGD(bits=4, eps=0.01, alpha=1)", lambda m: ASkewSGD(param_groups(m), lr=LR, eps=0.01, bits=4)),
    ("ASkewSGD(bits=2, eps=0.01, alpha=1)", lambda m: ASkewSGD(param_groups(m), lr=LR, eps=0.01, bits=2)),
    ("ConstrainedGD(closed form, eps=0.1)", lambda m: ConstrainedGD(param_groups(m), lr=LR, eps=0.1)),
    ("PrimalDual(eps=0.1)", lambda m: PrimalDual(param_groups(m), lr=LR, eps=0.1)),
    ("STE(clip=True)", lambda m: STE(param_groups(m), lr=LR, clip=True)),
    ("ProxQuant(bits=1, Adam)", lambda m: ProxQuant(param_groups(m), lr=LR, bits=1, lam=1.0)),
    ("ProxQuant(bits=2, Adam)", lambda m: ProxQuant(param_groups(m), lr=LR, bits=2, lam=1.0)),
    ("ProxQuant(bits=4, Adam)", lambda m: ProxQuant(param_groups(m), lr=LR, bits=4, lam=1.0)),
    ("AdaSTE", lambda m: AdaSTE(param_groups(m), lr=LR)),
]


def mlp(sizes: list[int], seed: int) -> nn.Module:
    """Linear-ReLU-...-Linear with biases, weights and fixed random grads drawn from ``seed``."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(pairwise(sizes)):
        layers += [nn.Linear(n_in, n_out)] + ([nn.ReLU()] if i < len(sizes) - 2 else [])
    model = nn.Sequential(*layers)
    for p in model.parameters():
        p.grad = torch.randn_like(p) * 0.01
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="Markdown file to write (atomically)")
    parser.add_argument("--quick", action="store_true", help="tiny model, short runs (smoke test)")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default: 1)")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default: 3, quick: 2)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.out is None and not args.quick:
        parser.error("--out is required unless --quick")

    sizes = [16, 32, 10] if args.quick else [784, 1536, 1024, 10]
    rounds = args.rounds or (2 if args.quick else 3)
    min_run_time = 0.02 if args.quick else 1.0
    torch.set_num_threads(args.threads)

    runs = []
    for name, factory in OPTIMIZERS:
        model = mlp(sizes, args.seed)
        opt = factory(model)
        opt.step()  # warm-up: lazily created state (momentum, Adam moments, latents)
        runs.append((name, Timer("opt.step()", globals={"opt": opt}, num_threads=args.threads)))
    model = mlp(sizes, args.seed)
    n_params = sum(p.numel() for p in model.parameters())
    model_desc = " - ".join(map(str, model))

    times: dict[str, list[float]] = {name: [] for name, _ in runs}
    for r in range(rounds):
        for name, timer in runs if r % 2 == 0 else runs[::-1]:
            times[name].append(timer.blocked_autorange(min_run_time=min_run_time).median)
            print(f"round {r + 1}/{rounds} {name}: {times[name][-1] * 1e3:.3f} ms", file=sys.stderr)
    medians = {name: statistics.median(ts) for name, ts in times.items()}

    table = [f"| optimizer | median step time (ms) | ratio to `{REFERENCE}` |", "|---|---:|---:|"]
    table += [f"| `{n}` | {t * 1e3:.3f} | {t / medians[REFERENCE]:.2f} |" for n, t in medians.items()]
    command = f"`{shlex.join(['.venv/bin/python', *sys.argv])}`"
    if [".venv/bin/python", *sys.argv] == MAKE_BENCH:
        command = f"`make bench`, i.e. {command},"
    lines = [
        "# Optimizer step benchmark",
        "",
        f"Produced by {command} on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        "",
        f"- versions: Python {platform.python_version()}, torch {torch.__version__}, qnnlab {qnnlab.__version__}",
        f"- machine: {platform.processor() or platform.machine()}, {platform.system()}, "
        f"os.cpu_count() = {os.cpu_count()}, torch threads = {torch.get_num_threads()}",
        f"- model: `{model_desc}`, {n_params:,} parameters, float32, CPU",
        "- weights (dim ≥ 2) constrained, biases unconstrained (`qnnlab.nn.models.param_groups`); "
        f"lr = {LR} for all; grads filled once with fixed random tensors",
        "- timing: only `optimizer.step()`, "
        f"`torch.utils.benchmark.Timer.blocked_autorange(min_run_time={min_run_time})`, "
        f"{rounds} interleaved rounds in alternating order in one process; median over rounds; "
        f"ratio = median / median of `{REFERENCE}`",
        "",
        *table,
        "",
    ]
    text = "\n".join(lines)
    print("\n".join(table))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(args.out, text)
        print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
