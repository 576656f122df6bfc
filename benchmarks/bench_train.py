"""Whole training step and one training epoch of every method on the fashion-mlp preset, as ratios to full precision.

*Training step*: ``zero_grad``, forward, backward and ``step`` of the preset's model (MLP 784→512→512→10
with BN, batch 100) on a fixed random batch, each method with its own model preparation (STE's sign
layers, BinaryConnect's and AdaSTE's latents) and its preset hyperparameters, once with the SGD base
step and once with the preset's Adam; the ratio is to full precision (qnnlab's SGD, i.e. torch's) with
the same base step, per round. *Epoch*: the loop's training steps over the real Fashion-MNIST training
set (60,000 images, 600 steps: data order, forward, backward, step, scheduler; evaluation excluded),
the preset's configuration, ratio to the full-precision epoch. Both are timed as short interleaved
rounds in shuffled order (``_timing.py``); full precision timed twice gives the control row.

Usage (``make bench``)::

    .venv/bin/python benchmarks/bench_train.py --out docs/benchmarks_train.md
    .venv/bin/python benchmarks/bench_train.py --quick   # smoke test: few rounds, no epoch table
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from _timing import interleaved, provenance

from qnnlab.config import RunConfig
from qnnlab.experiments.presets import preset_runs
from qnnlab.io import write_atomic
from qnnlab.methods import build_optimizer
from qnnlab.nn.models import param_groups
from qnnlab.schedules import lr_scheduler
from qnnlab.train.evaluate import loss_fn
from qnnlab.train.loop import build_run_model, load_dataset

PRESET = "fashion-mlp"
FP = "sgd (full precision)"
# the section on `make run`'s whole time (timed from outside, not by this script), kept when the tables are rewritten
MAKE_RUN = "## `make run`"
MAKE_BENCH = [".venv/bin/python", "benchmarks/bench_train.py", "--out", "docs/benchmarks_train.md"]


def configs(base: str) -> dict[str, RunConfig]:
    """The preset's runs by label, with the base step replaced by ``base`` (plain SGD: no momentum)."""
    out = {}
    for cfg in preset_runs(PRESET, 1):
        method = cfg.method if base == "adam" else cfg.method.model_copy(update={"base": "sgd", "momentum": 0.0})
        out[cfg.label] = cfg.model_copy(update={"method": method})
    return out


def built(cfg: RunConfig, input_shape, n_outputs: int = 10):
    torch.manual_seed(cfg.seed)
    model = build_run_model(cfg, input_shape, n_outputs)
    optimizer = build_optimizer(cfg.method, param_groups(model, cfg.model.keep_fp))
    for group in optimizer.param_groups:
        if group.get("constrained", True):
            group.update(cfg.method.epoch_values(0))
    return model, optimizer


def training_step(cfg: RunConfig, x: torch.Tensor, y: torch.Tensor):
    model, optimizer = built(cfg, tuple(x.shape[1:]))

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        optimizer.step()

    return step


def training_epoch(cfg: RunConfig, data):
    model, optimizer = built(cfg, data.input_shape, data.n_outputs)
    scheduler = lr_scheduler(optimizer, cfg.lr_schedule(data.n_train))
    order = torch.Generator().manual_seed(cfg.seed)
    steps = -(-data.n_train // cfg.batch_size)

    def epoch() -> None:  # the loop's steps (qnnlab.train.loop.fit), evaluation excluded
        batch_loss = torch.empty(steps)
        for k, (x, y) in enumerate(data.train_batches(cfg.batch_size, order)):
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            batch_loss[k] = loss.detach()
            optimizer.step()
            scheduler.step()

    return epoch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="Markdown file to write (atomically)")
    parser.add_argument("--quick", action="store_true", help="few rounds, no epoch table (smoke test)")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default: 1)")
    parser.add_argument("--rounds", type=int, default=None, help="training-step rounds (default: 31, quick: 3)")
    parser.add_argument("--epoch-rounds", type=int, default=3, help="epoch rounds (default: 3)")
    args = parser.parse_args()
    if args.out is None and not args.quick:
        parser.error("--out is required unless --quick")
    torch.set_num_threads(args.threads)
    rounds = args.rounds or (3 if args.quick else 31)

    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(100, 1, 28, 28, generator=gen), torch.randint(10, (100,), generator=gen)
    steps, refs = {}, {}
    for base in ("sgd", "adam"):
        cfgs = configs(base)
        for label, cfg in cfgs.items():
            steps[f"{label} [{base}]"] = training_step(cfg, x, y)
        steps[f"{FP} [{base}] (control)"] = training_step(cfgs[FP], x, y)
        refs[base] = f"{FP} [{base}]"
    step_stats = interleaved(steps, refs, rounds=rounds, seconds=0.1 if not args.quick else 0.01)

    table = [
        "| method | base | median step (ms) | ratio to full precision, same base | IQR |",
        "|---|---|---:|---:|---:|",
    ]
    for name in steps:
        label, base = name.rsplit(" [", 1)
        base, _, control = base.partition("]")
        s = step_stats[base][name]
        table.append(f"| {label}{control} | {base} | {s.cells()} |")
    misses = [n for n in steps if not n.endswith("(control)") and step_stats[n.rsplit(" [", 1)[1][:-1]][n].ratio > 1.1]
    verdict = f"Issue 11's target, every method's training step ≤ 1.1 × full precision: missed by {', '.join(misses)}."
    if not misses:
        verdict = "Issue 11's target, every method's training step ≤ 1.1 × full precision: met by every row."
    print("\n".join([*table, verdict]))

    epoch_table = []
    if not args.quick:
        cfgs = configs("adam")
        data = load_dataset(cfgs[FP].data)
        epochs = {label: training_epoch(cfg, data) for label, cfg in cfgs.items()}
        epoch_stats = interleaved(epochs, {"fp": FP}, rounds=args.epoch_rounds, seconds=0.0)["fp"]
        epoch_table = ["| method | median epoch (s) | ratio to full precision | IQR |", "|---|---:|---:|---:|"]
        for label, s in epoch_stats.items():
            epoch_table.append(f"| {label} | {s.seconds:.2f} | {s.ratio:.2f} | {s.q1:.2f}–{s.q3:.2f} |")
        print("\n".join(epoch_table))

    lines = [
        *provenance("Training step and epoch benchmark", MAKE_BENCH),
        f"- preset `{PRESET}`: its model, batch size and hyperparameters (ε at its epoch-0 value); rows marked `*` "
        "are the preset's untuned ones; every optimizer on its default path (`fused=None`)",
        f"- training step: {rounds} rounds of about 100 ms per row in shuffled order; ratio = per-round ratio to "
        "full precision with the same base step, median over rounds, with its interquartile range; the "
        "control row is full precision timed a second time",
        "",
        *table,
        "",
        verdict,
        "",
        f"One epoch of the loop's training steps on Fashion-MNIST (60,000 images, batch 100, the preset's Adam "
        f"configurations), {args.epoch_rounds} rounds in shuffled order, ratio to the full-precision epoch:",
        "",
        *epoch_table,
        "",
    ]
    if args.out is not None:
        old = args.out.read_text() if args.out.exists() else ""
        kept = old[old.index(MAKE_RUN) :] if MAKE_RUN in old else ""  # measured by hand: kept as it is
        write_atomic(args.out, "\n".join(lines) + ("\n" + kept if kept else ""))
        print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
