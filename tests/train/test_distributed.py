"""Data-parallel training with torchrun on 2 CPU processes (gloo): ranks in sync, equal to one process."""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import ddp_runs
import pytest
import torch
from torch import nn
from torch.testing import assert_close

from qnnlab.optim import BinaryConnect
from qnnlab.train.distributed import Replicas, own_draws

# float32 iterates after 21 steps: DDP averages two slices' gradients where one process sums one batch
# (measured: at most 6e-8 apart, 1 ulp of 1; the binary weights and stochastic draws identical)
TOLERANCE = {"rtol": 0.0, "atol": 1e-6}


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    out = tmp_path_factory.mktemp("ddp")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", ddp_runs.__file__]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    done = subprocess.run([*cmd, str(out)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return out, [torch.load(out / f"rank-{r}.pt", weights_only=True) for r in range(2)]


@pytest.mark.parametrize("method", ddp_runs.METHODS)
def test_ranks_identical_and_equal_to_one_process(ranks, method: str) -> None:
    _, (zero, one) = ranks
    for key in ("param", "latent"):
        assert torch.equal(zero[method][key], one[method][key]), f"{key} differs between the ranks"
    single = ddp_runs.fitted(method)
    for key in ("param", "latent"):
        assert_close(zero[method][key], single[key], **TOLERANCE)


def test_optimizer_built_before_the_wrap_is_resynced(ranks) -> None:
    _, (zero, one) = ranks
    for key in ("param", "latent"):
        assert torch.equal(zero["own-loop-synced"][key], one["own-loop-synced"][key])
    # without the re-sync the latents stay those of each rank's own initialization, and each rank's
    # global generator draws its own binary weights (both desyncs of issue 13, reproduced)
    for key in ("param", "latent"):
        assert not torch.equal(zero["own-loop-unsynced"][key], one["own-loop-unsynced"][key])


def test_only_rank_zero_records(ranks) -> None:
    out, _ = ranks
    with sqlite3.connect(out / "results" / "qnnlab.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM runs").fetchone() == (1,)
    assert (out / "results" / "cli.md").exists()
    assert len(list((out / "results" / "checkpoints").iterdir())) == 1


def test_shards_weight_uneven_slices_to_the_global_mean() -> None:
    # 5 examples over 2 ranks: slices of 2 and 3, weights 2·2/5 and 3·2/5; their average is the global mean
    x, y = torch.arange(5.0)[:, None], torch.zeros(5)
    losses = []
    for rank in range(2):
        replicas = Replicas(rank, 2)
        ((xs, ys),) = replicas.shard([(x, y)])
        losses.append(replicas.loss(lambda out, target: out.mean())(xs, ys))
    assert [len(xs) for xs in (x[:2], x[2:])] == [2, 3]
    assert_close(sum(losses) / 2, x.mean())
    empty = Replicas(0, 2)
    ((xs, ys),) = empty.shard([(x[:1], y[:1])])
    assert len(xs) == 0 and empty.loss(nn.functional.mse_loss)(xs.sum(1), ys).item() == 0.0


def test_own_draws_ignore_and_spare_the_global_generator() -> None:
    def run(interfere: bool) -> tuple[torch.Tensor, torch.Tensor]:
        p = torch.nn.Parameter(torch.zeros(50))
        opt = BinaryConnect([p], lr=0.1, stochastic=True)
        own_draws(opt, seed=3)
        torch.manual_seed(0)
        for _ in range(4):
            if interfere:
                torch.rand(7)  # another rank's dropout, evaluation, ...
            p.grad = torch.ones(50)
            opt.step()
        return p.detach().clone(), torch.rand(3)

    (a, after_a), (b, _) = run(False), run(True)
    assert torch.equal(a, b)  # the same draws whatever else the global generator served
    torch.manual_seed(0)
    assert torch.equal(after_a, torch.rand(3))  # and the steps took nothing from it
