"""What `make run` could gain by training a method's seeds as one stacked model (issue 11; not part of `make bench`).

Times the logistic toy's training step (``Linear(10, 1)`` without bias, the loop's ``zero_grad``, forward,
loss, backward, ``step`` and scheduler step) for one seed, and for five seeds stacked into one ``(5, 10)``
weight whose rows see their own batches (the per-seed mean losses summed, so each row gets its own seed's
gradient; entry-wise methods then take exactly the per-seed steps), and the optimizer step alone.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/stacked_seeds.py
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from qnnlab.optim import SGD, ASkewSGD

N, D, SEEDS, STEPS = 6000, 10, 5, 3000


def one_seed(make, batch: int, x, y) -> float:
    model = torch.nn.Linear(D, 1, bias=False)
    opt = make([model.weight])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 1.0)
    idx = torch.randint(N, (STEPS, batch), generator=torch.Generator().manual_seed(0))
    start = time.perf_counter()
    for k in range(STEPS):
        opt.zero_grad(set_to_none=True)
        F.binary_cross_entropy_with_logits(model(x[idx[k]]).squeeze(-1), y[idx[k]]).backward()
        opt.step()
        sched.step()
    return (time.perf_counter() - start) / STEPS


def stacked(make, batch: int, x, y) -> float:
    w = torch.nn.Parameter(torch.rand(SEEDS, D) * 0.6 - 0.3)
    opt = make([w])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 1.0)
    idx = torch.randint(N, (STEPS, SEEDS, batch), generator=torch.Generator().manual_seed(0))
    start = time.perf_counter()
    for k in range(STEPS):
        opt.zero_grad(set_to_none=True)
        logits = torch.einsum("sbd,sd->sb", x[idx[k]], w)
        F.binary_cross_entropy_with_logits(logits, y[idx[k]], reduction="none").mean(1).sum().backward()
        opt.step()
        sched.step()
    return (time.perf_counter() - start) / STEPS


def step_alone(opt, w, calls: int = 5000) -> float:
    opt.step()
    start = time.perf_counter()
    for _ in range(calls):
        opt.step()
    return (time.perf_counter() - start) / calls


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x = torch.rand(N, D) * 2 - 1
    y = torch.bernoulli(torch.sigmoid(x @ torch.ones(D)))
    methods = {"sgd": lambda ps: SGD(ps, lr=0.1), "askewsgd": lambda ps: ASkewSGD(ps, lr=0.1, eps=0.1)}
    for name, make in methods.items():
        for batch in (1, 100):
            a, s = one_seed(make, batch, x, y), stacked(make, batch, x, y)
            print(
                f"{name} batch {batch}: one seed {a * 1e6:.0f} µs/step; {SEEDS} seeds stacked {s * 1e6:.0f} µs/step "
                f"= {s / SEEDS * 1e6:.0f} µs per seed-step ({a * SEEDS / s:.1f}× less time)"
            )
    w = torch.nn.Parameter(torch.rand(1, D))
    w.grad = torch.rand(1, D)
    steps = {
        "torch.optim.SGD": torch.optim.SGD([w], lr=0.1),
        "qnnlab SGD": SGD([w], lr=0.1),
        "ASkewSGD (fused)": ASkewSGD([w], lr=0.1, eps=0.1),
        "ASkewSGD (eager)": ASkewSGD([w], lr=0.1, eps=0.1, fused=False),
    }
    for name, opt in steps.items():
        print(f"{name} step alone: {step_alone(opt, w) * 1e6:.1f} µs")


if __name__ == "__main__":
    main()
