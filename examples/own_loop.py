"""A plain PyTorch training loop, judged after quantization and recorded by qnnlab.

    python examples/own_loop.py [RESULTS_DIR]       # then: qnnlab report RESULTS_DIR

The loop is yours; qnnlab contributes the optimizer (ASkewSGD), the ε schedule and the
recorder, which evaluates ``w`` and ``Q(w)`` every epoch and writes the run store that
``qnnlab report`` draws (the lines marked ``# qnnlab``).
"""

import sys

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import qnnlab
from qnnlab.nn import param_groups
from qnnlab.optim import ASkewSGD


def main(results: str = "results") -> None:
    torch.manual_seed(0)
    x, y = load_digits(return_X_y=True)
    x, y = torch.tensor(x / 16, dtype=torch.float32), torch.tensor(y)
    loader = DataLoader(TensorDataset(x[:1400], y[:1400]), batch_size=64, shuffle=True)
    model = nn.Sequential(nn.Linear(64, 128, bias=False), nn.BatchNorm1d(128), nn.ReLU(), nn.Linear(128, 10))

    data = qnnlab.Dataset.from_tensors(x[:1400], y[:1400], x[1400:], y[1400:])  # qnnlab
    opt = ASkewSGD(param_groups(model), lr=1e-2, base="adam", eps=1.0)  # qnnlab
    eps = qnnlab.EpochScheduler(opt, eps=qnnlab.annealed_eps(1.0, hold=3, decay=0.4, floor=1e-4))  # qnnlab
    rec = qnnlab.Recorder(results, "own-loop", model=model, optimizer=opt, data=data, config={"label": "askewsgd"})
    rec.log_epoch()  # qnnlab: epoch 0, the initialization
    for _ in range(10):
        for xb, yb in loader:
            opt.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            rec.log_batch(loss)  # qnnlab
        rec.log_epoch()  # qnnlab
        eps.step()  # qnnlab
    summary = rec.finish().summary  # qnnlab
    print(f"test accuracy at Q(w) {summary['q_test_acc']:.1%}, of w {summary['test_acc']:.1%}")


if __name__ == "__main__":
    main(*sys.argv[1:])
