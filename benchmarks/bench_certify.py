"""Certified binary optima beyond enumeration: branch-and-bound on correlated-feature logistic problems.

Each instance is :func:`qnnlab.data.synthetic.correlated_logistic` (n = 6000 training rows, features
N(0, 1) with pairwise correlation ρ = 0.8, or 0.9 for a harder set, w* = ±0.5, y ~ Bernoulli(σ(x·w*));
instance i has seed i)
with a bias-free linear model and the mean logistic loss; :func:`qnnlab.certify.certify` runs on it
with no incumbent from the caller, under a wall-clock limit, on one core (BLAS limited to one thread).
Per (ρ, d) it reports how many instances were certified optimal within the limit, the median and
largest wall and CPU times and node counts, the certified gap ``(f(w) − L)/L`` where the limit was hit,
how loose the box relaxation is (``(f* − f_box)/f_box``) and how far rounding its minimizer lands.

Two controls, measured in the same run: a fixed workload (1000 gradient evaluations at d = 40) at the
start and at the end, whose time shows how busy the machine was; and the node solver, the projected
Newton of :func:`qnnlab.certify.relax` against SciPy's L-BFGS-B on the same node boxes (30 % of the
coordinates fixed, warm-started at the root's minimizer), alternated, as a time ratio.

Usage::

    .venv/bin/python benchmarks/bench_certify.py --out docs/benchmarks_certify.md
    .venv/bin/python benchmarks/bench_certify.py --quick   # smoke test: d = 12, 16, checked against enumeration
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from scipy.optimize import Bounds, minimize
from threadpoolctl import threadpool_limits

import qnnlab
from qnnlab.certify import box_bound, certified_gap, certify, linear_objective, relax
from qnnlab.data.synthetic import correlated_logistic
from qnnlab.io import write_atomic
from qnnlab.train.enumerate import MAX_ENUM_DIM, binary_minimum, logistic_losses

N_TRAIN, W_SCALE = 6000, 0.5
SUITE = [(0.8, [40, 50, 60, 80]), (0.9, [40, 60])]  # (ρ, dimensions)
QUICK_SUITE = [(0.8, [12, 16])]


def _objective(d: int, seed: int, rho: float = 0.8):
    data = correlated_logistic(d, N_TRAIN, 1, rho=rho, w_scale=W_SCALE, seed=seed)
    return linear_objective("logistic", data.x_train, data.y_train), data


def control_ms() -> float:
    """1000 ``value_grad`` calls at d = 40: the machine's speed now."""
    f, _ = _objective(40, 123)
    w = np.full(40, 0.1)
    t0 = time.perf_counter()
    for _ in range(1000):
        f.value_grad(w)
    return (time.perf_counter() - t0) * 1e3


def instance(rho: float, d: int, seed: int, time_limit: float) -> dict:
    f, data = _objective(d, seed, rho)
    cpu0 = time.process_time()
    cert = certify(f, time_limit=time_limit)
    cpu = time.process_time() - cpu0
    root = box_bound(f)
    rounded = f.value(np.where(root.point >= 0, 1.0, -1.0))
    out = {
        "rho": rho,
        "d": d,
        "seed": seed,
        "status": cert.status,
        "wall": cert.seconds,
        "cpu": cpu,
        "nodes": cert.nodes,
        "gap": cert.gap,
        "box_gap": certified_gap(cert.value, cert.box_lower),
        "rounding_gap": (rounded - cert.value) / cert.value,
        "value": cert.value,
        "lower": cert.lower,
    }
    if d <= MAX_ENUM_DIM:  # the quick run: the enumerated optimum must agree
        best, _ = binary_minimum(logistic_losses(data.x_train, data.y_train), d)
        if not abs(best - cert.value) <= 1e-9 * best:
            raise AssertionError(f"d={d} seed={seed}: branch-and-bound {cert.value} != enumeration {best}")
        out["enumerated"] = True
    return out


def _lbfgsb(f, lo, hi, start):
    res = minimize(f.value_grad, start, jac=True, method="L-BFGS-B", bounds=Bounds(lo, hi), options={"gtol": 1e-9})
    return res.fun, res.nfev


def node_solvers(d: int, boxes: int) -> dict:
    """Projected Newton against L-BFGS-B on the same ``boxes`` node boxes, alternated."""
    f, _ = _objective(d, 0)
    root = box_bound(f).point
    rng = np.random.default_rng(0)
    newton_s = lbfgsb_s = 0.0
    newton_evals = lbfgsb_evals = 0
    worst = 0.0
    counted = f.value_grad
    calls = [0]

    def counting(w):
        calls[0] += 1
        return counted(w)

    f.value_grad = counting
    for _ in range(boxes):
        lo, hi = -np.ones(d), np.ones(d)
        fixed = rng.random(d) < 0.3
        lo[fixed] = hi[fixed] = np.where(rng.random(d) < 0.5, -1.0, 1.0)[fixed]
        start = np.clip(root, lo, hi)
        calls[0] = 0
        t0 = time.perf_counter()
        ours = relax(f, lo, hi, start)
        newton_s += time.perf_counter() - t0
        newton_evals += calls[0]
        t0 = time.perf_counter()
        value, nfev = _lbfgsb(f, lo, hi, start)
        lbfgsb_s += time.perf_counter() - t0
        lbfgsb_evals += nfev
        worst = max(worst, ours.value - value)
    return {
        "d": d,
        "boxes": boxes,
        "newton_ms": newton_s / boxes * 1e3,
        "lbfgsb_ms": lbfgsb_s / boxes * 1e3,
        "newton_evals": newton_evals / boxes,
        "lbfgsb_evals": lbfgsb_evals / boxes,
        "worst": worst,
    }


def _summary(rho: float, d: int, rows: list[dict]) -> str:
    solved = [r for r in rows if r["status"] == "optimal"]
    cut = [r for r in rows if r["status"] != "optimal"]

    def stat(key: str, fmt: str, rs: list[dict]) -> str:
        if not rs:
            return "—"
        vals = [r[key] for r in rs]
        return f"{statistics.median(vals):{fmt}} / {max(vals):{fmt}}"

    return (
        f"| {rho} | {d} | {len(solved)}/{len(rows)} | {stat('wall', '.1f', rows)} | {stat('cpu', '.1f', rows)} "
        f"| {stat('nodes', ',.0f', rows)} | {stat('gap', '.2%', cut)} | {stat('box_gap', '.1%', rows)} "
        f"| {stat('rounding_gap', '.2%', rows)} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="Markdown file to write (atomically)")
    parser.add_argument("--quick", action="store_true", help="d = 12, 16, 2 instances, checked against enumeration")
    parser.add_argument("--instances", type=int, default=5)
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds per instance (default: 60)")
    args = parser.parse_args()
    if args.out is None and not args.quick:
        parser.error("--out is required unless --quick")
    suite, instances, boxes = (QUICK_SUITE, 2, 5) if args.quick else (SUITE, args.instances, 200)

    with threadpool_limits(1):
        before = control_ms()
        solvers = node_solvers(40, boxes)
        print(f"node solvers: {solvers}", file=sys.stderr)
        rows = []
        for rho, dims in suite:
            for d in dims:
                for seed in range(instances):
                    r = instance(rho, d, seed, args.time_limit)
                    print(r, file=sys.stderr, flush=True)
                    rows.append(r)
        after = control_ms()

    table = [
        "| ρ | d | certified optimal | wall s (median / max) | CPU s (median / max) | nodes (median / max) "
        "| certified gap at the limit (median / max) | box gap (f(w) − f_box)/f_box | rounding the box minimizer |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *(_summary(rho, d, [r for r in rows if (r["rho"], r["d"]) == (rho, d)]) for rho, dims in suite for d in dims),
    ]
    per_instance = [
        "| ρ | d | seed | status | wall s | CPU s | nodes | f(w) | certified lower bound | gap |",
        "|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {r['rho']} | {r['d']} | {r['seed']} | {r['status']} | {r['wall']:.1f} | {r['cpu']:.1f} "
            f"| {r['nodes']:,} | {r['value']:.6f} | {r['lower']:.6f} | {r['gap']:.1e} |"
            for r in rows
        ),
    ]
    s = solvers
    solver_table = [
        "| node solver | ms per relaxation | f evaluations per relaxation | time ratio |",
        "|---|---:|---:|---:|",
        f"| projected Newton (`qnnlab.certify.relax`) | {s['newton_ms']:.2f} | {s['newton_evals']:.1f} | 1.00 |",
        f"| SciPy L-BFGS-B (gtol 1e-9) | {s['lbfgsb_ms']:.2f} | {s['lbfgsb_evals']:.1f} "
        f"| {s['lbfgsb_ms'] / s['newton_ms']:.2f} |",
    ]
    command = f"`{shlex.join(['.venv/bin/python', *sys.argv])}`"
    lines = [
        "# Certified binary optimum: branch-and-bound benchmark",
        "",
        f"Produced by {command} on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        "",
        f"- versions: Python {platform.python_version()}, NumPy {np.__version__}, qnnlab {qnnlab.__version__}",
        f"- machine: {platform.processor() or platform.machine()}, {platform.system()}, "
        f"os.cpu_count() = {os.cpu_count()}, one core (BLAS threads = 1); shared with other jobs: "
        f"load average at the end {os.getloadavg()[0]:.1f}",
        f"- control (1000 gradient evaluations, d = 40): {before:.0f} ms at the start, {after:.0f} ms at the end",
        f"- problems: `correlated_logistic(d, {N_TRAIN}, rho=ρ, w_scale={W_SCALE}, seed=i)`, i = 0..{instances - 1};"
        " linear model without bias, mean logistic loss; `certify(f, time_limit="
        f"{args.time_limit:g})`, no incumbent supplied",
        "- certified gap: (f(w) − L)/L for the best w found and the certified lower bound L; box gap: "
        "(f(w) − f_box)/f_box, the gap bound available without branching; rounding: (f(sign u_box) − f(w))/f(w), "
        "how far the rounded box minimizer is from the best w",
        "- wall s is what a user waits on this shared machine; CPU s (`time.process_time`) is this process's own time",
        "",
        *table,
        "",
        f"Node solver on {s['boxes']} node boxes at d = {s['d']} (30 % of the coordinates fixed, started at the "
        f"root minimizer; largest f(Newton) − f(L-BFGS-B): {s['worst']:.1e}):",
        "",
        *solver_table,
        "",
        "Every instance:",
        "",
        *per_instance,
        "",
    ]
    print("\n".join([*table, "", *solver_table]))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(args.out, "\n".join(lines))
        print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
