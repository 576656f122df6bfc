"""Optimizer step time of qnnlab's optimizers, as ratios to torch's SGD (foreach) and fused Adam.

Only ``optimizer.step()`` is timed: every optimizer gets a fresh MLP built from the same seed, with
``.grad`` filled once with the same fixed random tensors (no forward/backward); steps mutate the
weights, which is fine for timing. Everything is measured in one process, as many short rounds in
shuffled order, each round's times divided by the reference's in that round (``_timing.py``).
Control rows: a second ``torch.optim.SGD(foreach=True)`` and qnnlab's SGD (which is torch's) against
the first; their deviation from 1 is the noise floor of the table. The fused path's first step is
measured in fresh processes: *cold* with an empty kernel cache (the C build), *warm* with it filled.

Two models: issue 11's MLP (2.79 M parameters: its weights and grads, 21 MiB, fit in a 32 MiB
last-level cache such as this machine's, so a run of steps is partly cache-resident and arithmetic
counts) and one of 20 M parameters (153 MiB: every step streams from memory). In the second
regime a step cannot beat its memory traffic: :func:`traffic` counts it per constrained entry from
the passes a step runs, and the targets table prints the floor it implies.

Usage (``make bench``)::

    .venv/bin/python benchmarks/bench_step.py --out docs/benchmarks.md
    .venv/bin/python benchmarks/bench_step.py --quick   # smoke test: tiny model, prints only

To benchmark another optimizer, append a ``(name, factory)`` pair to ``OPTIMIZERS``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path

import torch
from _timing import interleaved, last_level_cache, provenance
from torch import nn

from qnnlab.io import write_atomic
from qnnlab.nn.models import param_groups
from qnnlab.optim import SGD, STE, AdaSTE, ASkewSGD, BinaryConnect, ConstrainedGD, PrimalDual, ProxQuant
from qnnlab.optim._kernels import compiler

LR = 0.01
SGD_REF = "torch.optim.SGD(foreach=True)"
ADAM_REF = "torch.optim.Adam(fused=True)"
MAKE_BENCH = [".venv/bin/python", "benchmarks/bench_step.py", "--out", "docs/benchmarks.md"]

Factory = Callable[[nn.Module], torch.optim.Optimizer]
OPTIMIZERS: list[tuple[str, Factory]] = [
    (SGD_REF, lambda m: torch.optim.SGD(m.parameters(), lr=LR, foreach=True)),
    (f"{SGD_REF} (control)", lambda m: torch.optim.SGD(m.parameters(), lr=LR, foreach=True)),
    ("qnnlab SGD (control)", lambda m: SGD(param_groups(m), lr=LR)),
    (ADAM_REF, lambda m: torch.optim.Adam(m.parameters(), lr=LR, fused=True)),
    ("torch.optim.Adam(foreach=True)", lambda m: torch.optim.Adam(m.parameters(), lr=LR, foreach=True)),
    ('qnnlab SGD(base="adam")', lambda m: SGD(param_groups(m), lr=LR, base="adam")),
    ("BinaryConnect", lambda m: BinaryConnect(param_groups(m), lr=LR)),
    ("BinaryConnect(stochastic=True)", lambda m: BinaryConnect(param_groups(m), lr=LR, stochastic=True)),
    ("ASkewSGD(eps=0.1, alpha=1)", lambda m: ASkewSGD(param_groups(m), lr=LR, eps=0.1, alpha=1.0)),
    ("ASkewSGD(eps=0.1, alpha=1, momentum=0.9)", lambda m: ASkewSGD(param_groups(m), lr=LR, eps=0.1, momentum=0.9)),
    ("ASkewSGD(eps=0.1, alpha=1, fused=False)", lambda m: ASkewSGD(param_groups(m), lr=LR, eps=0.1, fused=False)),
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
    ('ProxQuant(bits=1, base="sgd")', lambda m: ProxQuant(param_groups(m), lr=LR, bits=1, lam=1.0, base="sgd")),
    ("ProxQuant(bits=1, Adam)", lambda m: ProxQuant(param_groups(m), lr=LR, bits=1, lam=1.0)),
    ("ProxQuant(bits=2, Adam)", lambda m: ProxQuant(param_groups(m), lr=LR, bits=2, lam=1.0)),
    ("ProxQuant(bits=4, Adam)", lambda m: ProxQuant(param_groups(m), lr=LR, bits=4, lam=1.0)),
    ("AdaSTE", lambda m: AdaSTE(param_groups(m), lr=LR)),
    ('AdaSTE(base="adam")', lambda m: AdaSTE(param_groups(m), lr=LR, base="adam")),
]
# issue 11's targets: row -> (reference, largest ratio)
TARGETS = {
    "ASkewSGD(eps=0.1, alpha=1)": ("sgd", 1.3),
    "BinaryConnect": ("sgd", 1.3),
    "ConstrainedGD(closed form, eps=0.1)": ("sgd", 1.3),
    "PrimalDual(eps=0.1)": ("sgd", 1.3),
    "STE(clip=True)": ("sgd", 1.3),
    'ProxQuant(bits=1, base="sgd")': ("sgd", 1.3),
    "BinaryConnect(stochastic=True)": ("sgd", 2.0),
    "AdaSTE": ("sgd", 2.0),
    "ASkewSGD(bits=4, eps=0.01, alpha=1)": ("sgd", 4.0),
    "ASkewSGD(bits=2, eps=0.01, alpha=1)": ("sgd", 4.0),
    'ASkewSGD(eps=0.1, alpha=1, base="adam")': ("adam", 1.3),
    "ProxQuant(bits=1, Adam)": ("adam", 1.3),
    'AdaSTE(base="adam")': ("adam", 1.3),
}
# floats torch's steps move per entry: SGD 3 (w, g -> w), momentum 5 (and the velocity), Adam 7 (w, g, m, v -> w, m, v)
REFERENCE_TRAFFIC = {"sgd": 3, "momentum": 5, "adam": 7}
SIZES = [784, 1536, 1024, 10]  # issue 11's bench MLP
LARGE = [784, 4096, 4096, 10]  # 20 M parameters: beyond the last-level cache
# the first step in a fresh process, cold (empty kernel cache) and warm
FIRST_STEP = ["ASkewSGD(eps=0.1, alpha=1)", 'ASkewSGD(eps=0.1, alpha=1, base="adam")', "BinaryConnect", "AdaSTE"]


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


def first_step(name: str, sizes: list[int]) -> float:
    """Seconds of the first ``step()`` of ``name`` (construction excluded), in this process."""
    import time

    opt = dict(OPTIMIZERS)[name](mlp(sizes, 0))
    start = time.perf_counter()
    opt.step()
    return time.perf_counter() - start


def first_steps(sizes: list[int], threads: int) -> list[str]:
    """Rows ``| name | cold ms | warm ms |`` from fresh processes sharing one new cache directory each."""
    rows = []
    for name in FIRST_STEP:
        with tempfile.TemporaryDirectory() as cache:
            env = {**os.environ, "QNNLAB_CACHE_DIR": cache, "OMP_NUM_THREADS": str(threads)}
            cmd = [sys.executable, __file__, "--first-step", name, "--sizes", ",".join(map(str, sizes))]
            cold, warm = (
                float(subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout) for _ in "cw"
            )
        rows.append(f"| `{name}` | {cold * 1e3:.0f} | {warm * 1e3:.1f} |")
    return rows


def traffic(name: str) -> float:
    """4-byte memory transfers per constrained entry of one step of row ``name``: for each C kernel the step runs,
    the arrays its spec reads and writes, plus one read per array written without being read (the write fetches
    its cache line first); for each torch SGD or Adam pass it runs, torch's own (``REFERENCE_TRAFFIC``).
    Counted on one bias-free layer (every entry constrained), whatever path the kernels take."""
    from qnnlab.optim._base import QuantOptimizer
    from qnnlab.optim._kernels import Kernel

    model = nn.Linear(64, 64, bias=False)
    model.weight.grad = torch.randn_like(model.weight)
    opt = dict(OPTIMIZERS)[name](model)
    opt.step()  # lazily created state
    moved = 0.0
    run, sgd, adam = Kernel.run, QuantOptimizer._torch_sgd, QuantOptimizer._torch_adam

    def kernel_run(self, arrays, tensors, floats, scalars, path):
        nonlocal moved
        spec = self.spec
        n = sum(t.numel() for t in arrays[spec.inputs[0]])
        written_only = [o for o in spec.outputs if o not in spec.inputs]
        moved += n * (len(spec.arrays) - len(written_only) + len(spec.outputs) + len(written_only))
        return run(self, arrays, tensors, floats, scalars, path)

    def torch_pass(base: Callable, floats: Callable[[dict], int]) -> Callable:
        def counted(self, group, params, targets, grads, lr):
            nonlocal moved
            moved += floats(group) * sum(t.numel() for t in targets)
            return base(self, group, params, targets, grads, lr)

        return counted

    Kernel.run = kernel_run
    QuantOptimizer._torch_sgd = torch_pass(sgd, lambda g: REFERENCE_TRAFFIC["momentum" if g["momentum"] else "sgd"])
    QuantOptimizer._torch_adam = torch_pass(adam, lambda g: REFERENCE_TRAFFIC["adam"])
    try:
        opt.step()
    finally:
        Kernel.run, QuantOptimizer._torch_sgd, QuantOptimizer._torch_adam = run, sgd, adam
    return moved / model.weight.numel()


def measure(sizes: list[int], rounds: int, seconds: float, seed: int) -> tuple[dict, int, nn.Module]:
    """``(stats, parameters, model)``: every optimizer's step on a fresh ``mlp(sizes)``, interleaved."""
    cases = {}
    for name, factory in OPTIMIZERS:
        opt = factory(mlp(sizes, seed))
        opt.step()  # lazily created state (momentum, Adam moments, latents), the kernel's build and load
        cases[name] = opt.step
    stats = interleaved(cases, {"sgd": SGD_REF, "adam": ADAM_REF}, rounds=rounds, seconds=seconds, seed=seed)
    model = mlp(sizes, seed)
    return stats, sum(p.numel() for p in model.parameters()), model


def step_table(stats: dict) -> list[str]:
    """The Markdown rows of every optimizer's median step and its ratios to both references."""
    table = [
        f"| optimizer | median step (ms) | ratio to `{SGD_REF}` | IQR | ratio to `{ADAM_REF}` | IQR |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in stats["sgd"]:
        s, a = stats["sgd"][name], stats["adam"][name]
        table.append(f"| `{name}` | {s.cells()} | {a.ratio:.2f} | {a.q1:.2f}–{a.q3:.2f} |")
    return table


def control_deviation(stats: dict) -> float:
    """The largest |median ratio − 1| of the two control rows."""
    return max(abs(stats["sgd"][name].ratio - 1) for name in (f"{SGD_REF} (control)", "qnnlab SGD (control)"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="Markdown file to write (atomically)")
    parser.add_argument("--quick", action="store_true", help="tiny model, short runs (smoke test)")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default: 1; 0: every core)")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default: 41, quick: 3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--first-step", help=argparse.SUPPRESS)
    parser.add_argument("--sizes", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.threads = args.threads or os.cpu_count() or 1
    torch.set_num_threads(args.threads)
    if args.first_step:
        print(first_step(args.first_step, [int(s) for s in args.sizes.split(",")]))
        return
    if args.out is None and not args.quick:
        parser.error("--out is required unless --quick")

    quick = [16, 32, 10]
    rounds = args.rounds or (3 if args.quick else 41)
    seconds = 0.002 if args.quick else 0.05
    large_rounds = max(11, rounds // 3)
    stats, n_params, model = measure(quick if args.quick else SIZES, rounds, seconds, args.seed)
    large, n_large, _ = (stats, n_params, model) if args.quick else measure(LARGE, large_rounds, seconds, args.seed)

    table = step_table(stats)
    large_table = step_table(large)
    targets = [
        f"| optimizer | target | {n_params / 1e6:.2f} M params | {n_large / 1e6:.1f} M params | memory floor | met |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, (ref, limit) in TARGETS.items():
        r, big = stats[ref][name].ratio, large[ref][name].ratio
        reference = SGD_REF if ref == "sgd" else ADAM_REF
        floor = traffic(name) / REFERENCE_TRAFFIC[ref]
        met = "yes" if r <= limit and big <= limit else (f"at {n_large / 1e6:.0f} M" if big <= limit else "**no**")
        targets.append(f"| `{name}` | ≤ {limit} × `{reference}` | {r:.2f} | {big:.2f} | {floor:.2f} | {met} |")
    deviation = control_deviation(stats)
    large_deviation = control_deviation(large)
    first = (
        []
        if args.quick
        else ["| optimizer | cold (ms) | warm (ms) |", "|---|---:|---:|", *first_steps(SIZES, args.threads)]
    )
    printed = [*table, f"control deviation: {deviation:.3f}", *large_table, f"control deviation: {large_deviation:.3f}"]
    print("\n".join([*printed, *(targets if args.threads == 1 else []), *first]))

    cc = f"; C compiler: {compiler()[1]}" if not args.quick else ""
    llc = f"{cache / 2**20:.0f} MiB" if (cache := last_level_cache()) else "an unknown size"
    lines = [
        *provenance("Optimizer step benchmark", MAKE_BENCH, cc),
        f"- model: `{' - '.join(map(str, model))}`, {n_params:,} parameters, float32, CPU",
        "- weights (dim ≥ 2) constrained, biases unconstrained (`qnnlab.nn.models.param_groups`); "
        f"lr = {LR} for all; grads filled once with fixed random tensors; qnnlab's optimizers take their "
        "default path (`fused=None`: the C kernel here) unless the row says `fused=False`",
        f"- timing: only `optimizer.step()`; {rounds} rounds, each timing every optimizer for about "
        f"{seconds * 1e3:.0f} ms in a shuffled order; ratio = the per-round ratio of times, median over rounds, "
        "with its interquartile range (`benchmarks/_timing.py`)",
        f"- controls: the second `{SGD_REF}` and qnnlab's SGD against the first; "
        f"**control deviation {deviation:.3f}** (the largest |median ratio − 1| of the two)",
        f"- this model's weights and grads take {n_params * 8 / 2**20:.0f} MiB, this CPU's last-level cache "
        f"holds {llc}: where they fit, a run of steps of one optimizer is partly cache-resident, the table mixes "
        "memory and arithmetic costs, and how much of each depends on what else the (shared) cache holds",
        "",
        *table,
        "",
        f"## Beyond the last-level cache: {n_large / 1e6:.1f} M parameters",
        "",
        f"The same rows on `{' - '.join(str(n) for n in LARGE)}` ({n_large:,} parameters, "
        f"{n_large * 8 / 2**20:.0f} MiB of weights and grads), {large_rounds} rounds: every step streams "
        f"from memory. **Control deviation {large_deviation:.3f}.**",
        "",
        *large_table,
        "",
        *(
            [
                "Issue 11's targets (one thread) against this run's median ratios on both models (a ratio within the "
                "control deviation of its limit is not a clear miss). *Memory floor*: the row's memory traffic per "
                "constrained entry over its reference's (`traffic` in `benchmarks/bench_step.py`, counted from the "
                "passes the step runs: arrays read, written, and one more read for an array written without being "
                "read), the least ratio any "
                "implementation of the same passes reaches where the step is memory-bound. BinaryConnect and AdaSTE "
                "write a second array (the binary or forward weights), PrimalDual and momentum read and write one "
                "more (the multipliers, the velocity); the Adam-base rows are three passes, torch's fused Adam "
                "between a direction and a projection pass.",
                "",
                *targets,
                "",
            ]
            if args.threads == 1
            else []
        ),
        "First `step()` of the fused path in a fresh process (construction excluded): cold = empty kernel cache "
        "(`QNNLAB_CACHE_DIR` a new directory; the C build), warm = the same directory again (loading the built "
        "library).",
        "",
        *first,
        "",
    ]
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(args.out, "\n".join(lines))
        print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
