"""Least squares on binary weights: MSE on a linear model, with the certified binary optimum.

    python examples/regression.py [RESULTS_DIR]

The targets are ``y = X w* + noise`` with correlated features, so rounding the least-squares
solution need not give the best binary vector. The model has 12 weights, all binary, so
``qnnlab.fit`` enumerates all 2^12 sign vectors for the exact minimum of the mean squared
error over them and reports each method's gap to it.
"""

import sys

import torch
from torch import nn

import qnnlab


def main(results: str = "results") -> None:
    gen = torch.Generator().manual_seed(0)
    d, n = 12, 1200
    mixing = torch.eye(d) + 0.4 * torch.randn(d, d, generator=gen)  # correlated features
    x = torch.randn(n, d, generator=gen) @ mixing
    x = x / x.std(0)
    signs = torch.where(torch.rand(d, generator=gen) < 0.5, -1.0, 1.0)
    w_star = signs * (0.3 + 0.7 * torch.rand(d, generator=gen))
    y = x @ w_star + 0.5 * torch.randn(n, generator=gen)
    data = qnnlab.Dataset.from_tensors(x[:1000], y[:1000], x[1000:], y[1000:])  # task: regression (MSE)
    methods = {
        "least squares, rounded": {"name": "sgd", "lr": 0.05},
        "binaryconnect": {"name": "binaryconnect", "lr": 0.05},
        "askewsgd": {"name": "askewsgd", "lr": 0.05, "eps": {"hold": 10, "decay": 0.7, "floor": 1e-4}},
    }
    for label, method in methods.items():
        config = {"label": label, "epochs": 40, "batch_size": 50, "method": method}
        s = qnnlab.fit(config, model=nn.Linear(d, 1, bias=False), data=data, results=results, comparison="regression")
        gap = s.summary["rel_gap"]
        print(f"{label:>22}: train MSE at Q(w) {s.summary['q_train_loss']:.4f}, {gap:.2%} above the binary optimum")


if __name__ == "__main__":
    main(*sys.argv[1:])
