"""Packed binary linear layers against the float layer: time, weight memory, and exactness.

For each shape (batch N, in K, out M) a ``Linear(K, M)`` has its weight put on ``{−1, +1}``
(``s = 1``) and is compared, in one process, with :class:`qnnlab.packed.PackedBinaryLinear`
built from it (sign bits packed 8 per byte):

* real inputs (integer-valued, so every product is exact): float ``Linear`` against the
  packed layer's ``forward`` (sign bits expanded to ±1 one block of 256 output rows at a time);
* binary inputs ``x ∈ {±1}``: float ``Linear`` against ``forward_binary`` (XNOR + popcount
  on 64-bit words), timed *including* the packing of ``x`` into sign bits.

Each packed output is checked to equal the float output exactly (``torch.equal``) before it
is timed. Times are medians of ``torch.utils.benchmark.Timer.blocked_autorange``.

Usage (``make bench``)::

    .venv/bin/python benchmarks/bench_packed.py --out docs/benchmarks_packed.md
    .venv/bin/python benchmarks/bench_packed.py --quick   # smoke test: small shapes, prints only
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path

import torch
from torch import nn
from torch.utils.benchmark import Timer

import qnnlab
from qnnlab.io import write_atomic
from qnnlab.packed import PackedBinaryLinear, pack_signs

MAKE_BENCH = [".venv/bin/python", "benchmarks/bench_packed.py", "--out", "docs/benchmarks_packed.md"]
SHAPES = [(1, 1024, 1024), (64, 1024, 1024), (256, 784, 512), (256, 2048, 2048)]
QUICK_SHAPES = [(4, 100, 30)]


def _ms(stmt: str, env: dict, threads: int, min_run_time: float) -> float:
    return Timer(stmt, globals=env, num_threads=threads).blocked_autorange(min_run_time=min_run_time).median * 1e3


def bench(n: int, k: int, m: int, threads: int, min_run_time: float) -> dict[str, float | int]:
    linear = nn.Linear(k, m)
    with torch.no_grad():
        linear.weight.copy_(torch.where(linear.weight >= 0, 1.0, -1.0))
        linear.bias.copy_(torch.randint(-4, 5, (m,)).float())
    packed = PackedBinaryLinear.from_linear(linear)
    x = torch.randint(-8, 9, (n, k)).float()
    xb = torch.where(torch.rand(n, k) < 0.5, -1.0, 1.0)
    with torch.no_grad():
        if not torch.equal(packed(x), linear(x)) or not torch.equal(packed.forward_binary(pack_signs(xb)), linear(xb)):
            raise AssertionError(f"packed output differs from the float layer at N={n}, K={k}, M={m}")
        env = {"linear": linear, "packed": packed, "pack_signs": pack_signs, "x": x, "xb": xb}
        float_ms = _ms("linear(x)", env, threads, min_run_time)
        return {
            "float_ms": float_ms,
            "unpack_ms": _ms("packed(x)", env, threads, min_run_time),
            "xnor_ms": _ms("packed.forward_binary(pack_signs(xb))", env, threads, min_run_time),
            "float_bytes": linear.weight.nbytes,
            "packed_bytes": packed.w_bits.nbytes + packed.scale.nbytes,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="Markdown file to write (atomically)")
    parser.add_argument("--quick", action="store_true", help="small shapes, short runs (smoke test)")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default: 1)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.out is None and not args.quick:
        parser.error("--out is required unless --quick")
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    shapes, min_run_time = (QUICK_SHAPES, 0.02) if args.quick else (SHAPES, 0.5)

    table = [
        "| N × K → M | float Linear (ms) | packed, real x (ms) | ratio | packed XNOR, ±1 x (ms) | ratio "
        "| weight bytes float | weight bytes packed | memory ratio |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n, k, m in shapes:
        r = bench(n, k, m, args.threads, min_run_time)
        print(f"{n} x {k} -> {m}: {r}", file=sys.stderr)
        table.append(
            f"| {n} × {k} → {m} | {r['float_ms']:.3f} | {r['unpack_ms']:.3f} | {r['unpack_ms'] / r['float_ms']:.2f} "
            f"| {r['xnor_ms']:.3f} | {r['xnor_ms'] / r['float_ms']:.2f} | {r['float_bytes']:,} | {r['packed_bytes']:,} "
            f"| {r['float_bytes'] / r['packed_bytes']:.1f} |"
        )
    command = f"`{shlex.join(['.venv/bin/python', *sys.argv])}`"
    if [".venv/bin/python", *sys.argv] == MAKE_BENCH:
        command = f"`make bench`, i.e. {command},"
    lines = [
        "# Packed binary matmul benchmark",
        "",
        f"Produced by {command} on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        "",
        f"- versions: Python {platform.python_version()}, torch {torch.__version__}, qnnlab {qnnlab.__version__}",
        f"- machine: {platform.processor() or platform.machine()}, {platform.system()}, "
        f"os.cpu_count() = {os.cpu_count()}, torch threads = {torch.get_num_threads()}, "
        f"load average at the end {os.getloadavg()[0]:.1f}",
        "- float: `nn.Linear(K, M)` with weight on {−1, +1}, float32, CPU; packed: "
        "`qnnlab.packed.PackedBinaryLinear.from_linear` (sign bits, 8 per byte, one float32 scale)",
        "- real x: integer-valued in [−8, 8]; ±1 x: random signs, packed by `pack_signs` inside the timed call",
        "- every packed output equals the float output exactly (`torch.equal`), checked before timing",
        f"- timing: `torch.utils.benchmark.Timer.blocked_autorange(min_run_time={min_run_time})`, median; "
        "ratio = packed time / float time (> 1: slower)",
        "- weight bytes: `nbytes` of the stored weight (packed: bits + scale); beyond them the packed paths hold "
        "one unpacked block (256 rows × K × 4.5 bytes), or N × M × 13 bytes for XNOR (one word's XOR, "
        "its popcounts, the sums), freed after the call",
        "",
        *table,
        "",
    ]
    print("\n".join(table))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(args.out, "\n".join(lines))
        print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
