"""The runs of ``test_distributed.py``: run by torchrun (one process per rank), each rank saves what it trained.

``python -m torch.distributed.run --standalone --nproc_per_node=2 tests/train/ddp_runs.py OUT`` writes
``OUT/rank-R.pt``: per case the model's parameters and the optimizer's latent weights on rank ``R``, and
rank 0 also records the CLI's run in ``OUT/results``.
"""

import sys
from pathlib import Path

import torch
from torch import nn

# 605 examples in batches of 100: the last batch (5) splits 2 + 3 over two ranks
DATA = {"name": "logistic", "d": 6, "n_train": 605, "n_test": 50}
METHODS = {
    "askewsgd": {"name": "askewsgd", "lr": 1.0, "eps": {"hold": 1, "decay": 0.5}},
    "binaryconnect": {"name": "binaryconnect", "lr": 0.1},
    "binaryconnect-stochastic": {"name": "binaryconnect", "lr": 0.1, "stochastic": True},
    "proxquant": {"name": "proxquant", "lr": 0.05, "lam": 0.5},
}
CONFIG = """\
epochs = 2
batch_size = 100
[data]
name = "logistic"
d = 6
n_train = 605
n_test = 50
[model]
name = "linear"
[method]
name = "binaryconnect"
lr = 0.1
stochastic = true
"""


def config(method: str) -> dict:
    return {"epochs": 3, "batch_size": 100, "data": DATA, "method": METHODS[method]}


def linear() -> nn.Module:
    torch.manual_seed(0)
    return nn.Linear(DATA["d"], 1, bias=False)


def fitted(method: str) -> dict[str, torch.Tensor]:
    """``fit`` of ``method`` on :func:`linear`: its parameter and the latent weight it was judged by."""
    from qnnlab import fit

    model = linear()
    result = fit(config(method), model=model)
    return {"param": model.weight.detach().clone(), "latent": result.weights["weight"].clone()}


def own_loop(rank: int, sync: bool) -> dict[str, torch.Tensor]:
    """Stochastic BinaryConnect built *before* the DDP wrap, from a different initialization and global
    generator on each rank; ``sync``: the wrap re-syncs its state and its draws come from their own generator."""
    from qnnlab.data import get_dataset
    from qnnlab.data.synthetic import LogisticData
    from qnnlab.optim import BinaryConnect
    from qnnlab.train.distributed import Replicas, own_draws

    torch.manual_seed(100 + rank)
    model = nn.Linear(DATA["d"], 1, bias=False)
    opt = BinaryConnect(model.parameters(), lr=0.1, stochastic=True)
    replicas = Replicas.from_env()
    net = replicas.wrap(model, opt if sync else None)
    if sync:
        own_draws(opt, seed=0)
    data = get_dataset(LogisticData(**DATA))
    loss = replicas.loss(nn.functional.binary_cross_entropy_with_logits)
    for x, y in replicas.shard(data.train_batches(100, torch.Generator().manual_seed(0))):
        opt.zero_grad()
        loss(net(x).squeeze(1), y).backward()
        opt.step()
    return {"param": model.weight.detach().clone(), "latent": opt.latent(model.weight).clone()}


def main(out: Path) -> None:
    import torch.distributed as dist

    from qnnlab.cli import app
    from qnnlab.train.distributed import Replicas

    rank = Replicas.from_env().rank
    runs = {name: fitted(name) for name in METHODS}
    runs |= {"own-loop-synced": own_loop(rank, True), "own-loop-unsynced": own_loop(rank, False)}
    torch.save(runs, out / f"rank-{rank}.pt")
    (out / "cli.toml").write_text(CONFIG)
    dist.barrier()
    app(["run", str(out / "cli.toml"), "--results", str(out / "results"), "--quiet"], standalone_mode=False)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
