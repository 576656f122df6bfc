"""Your own conv net on scikit-learn's digits, trained by three methods through ``qnnlab.fit``, then reported.

    python examples/own_model.py [RESULTS_DIR]      # writes RESULTS_DIR/own-model.html

Every method trains the same architecture from the same initialization on the same data;
each is judged at the weights it would be deployed with, ``Q(w)`` (here binary: ±1 for every
convolution and the linear layer; BatchNorm and the final bias stay in full precision).
The full-precision network is judged at ``sign(w)`` too: what rounding a float net costs.
"""

import sys

import torch
from sklearn.datasets import load_digits
from torch import nn

import qnnlab
from qnnlab.cli import app


def conv_net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1, bias=False),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1, bias=False),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 2 * 2, 10),
    )


def main(results: str = "results") -> None:
    x, y = load_digits(return_X_y=True)
    images = torch.tensor(x / 16, dtype=torch.float32).view(-1, 1, 8, 8)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    train, test = order[:1500], order[1500:]
    data = qnnlab.Dataset.from_tensors(images[train], y[train], images[test], y[test])
    adam = {"base": "adam", "lr": 1e-2}
    methods = {
        "full precision": {"name": "sgd", **adam},
        "binaryconnect": {"name": "binaryconnect", **adam},
        # a longer step: its weights travel from their small initialization to ±1 as ε shrinks
        "askewsgd": {"name": "askewsgd", "base": "adam", "lr": 3e-2, "eps": {"hold": 2, "decay": 0.3, "floor": 1e-4}},
    }
    for label, method in methods.items():
        torch.manual_seed(0)  # the same initialization for every method
        config = {"label": label, "epochs": 8, "batch_size": 64, "method": method}
        result = qnnlab.fit(config, model=conv_net(), data=data, results=results, comparison="own-model")
        print(f"{label:>15}: test accuracy at Q(w) {result.summary['q_test_acc']:.1%}")
    app(["report", results, "-c", "own-model"], standalone_mode=False)  # = `qnnlab report RESULTS -c own-model`


if __name__ == "__main__":
    main(*sys.argv[1:])
