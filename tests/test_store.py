import sqlite3
from pathlib import Path

import pytest

from qnnlab.config import validate_config
from qnnlab.store import DB_NAME, RunStore
from qnnlab.train.loop import fit

CFG = {"epochs": 5, "batch_size": 100, "data": {"name": "logistic", "n_train": 500, "n_test": 100}}


def test_database_is_in_wal_mode(tmp_path: Path) -> None:
    with RunStore(tmp_path):
        pass
    mode = sqlite3.connect(tmp_path / DB_NAME).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_run_and_epochs_round_trip(tmp_path: Path) -> None:
    cfg = validate_config({**CFG, "method": {"name": "sgd", "lr": 0.5}})
    with RunStore(tmp_path) as store:
        result = fit(cfg, store=store, comparison="demo")
        (run,) = store.runs("demo")
        history = store.history(run["id"])
    assert run["status"] == "done" and run["label"] == "sgd" and run["seed"] == 0 and run["data_seed"] == 0
    assert run["config"]["method"]["lr"] == 0.5 and "torch" in run["versions"]
    assert sorted(history) == list(range(6))  # epoch 0 is the initialization
    assert history[5]["q_train_loss"] == pytest.approx(result.summary["q_train_loss"])
    assert run["summary"]["wall_time"] > 0
    assert (tmp_path / "checkpoints" / f"run-{run['id']}.pt").exists()


def test_a_crash_keeps_every_recorded_epoch(tmp_path: Path) -> None:
    cfg = validate_config({**CFG, "method": {"name": "askewsgd", "eps": {"hold": 1}}})

    def crash(epoch: int, metrics: dict) -> None:
        if epoch == 3:
            raise RuntimeError("power cut")

    with RunStore(tmp_path) as store, pytest.raises(RuntimeError, match="power cut"):
        fit(cfg, store=store, on_epoch=crash)
    # a fresh connection, as a report reading after the crash would open
    with RunStore(tmp_path) as store:
        (run,) = store.runs()
        assert run["status"] == "failed"
        assert sorted(store.history(run["id"])) == [0, 1, 2, 3]
        assert store.history(run["id"])[3]["eps"] == pytest.approx(0.9**1)


def test_series_hold_the_batch_losses_and_the_weight_histograms(tmp_path: Path) -> None:
    import torch

    from qnnlab.data import get_dataset
    from qnnlab.nn.models import build_model
    from qnnlab.train.evaluate import loss_fn

    cfg = validate_config({**CFG, "method": {"name": "sgd", "lr": 0.5}})
    with RunStore(tmp_path) as store:
        run_id = fit(cfg, store=store).run_id
        batches = store.series(run_id, "batch_loss")
        hists, edges = store.series(run_id, "weight_hist"), store.series(run_id, "weight_hist_edges")
        assert store.series(run_id, "nothing") == {}
    assert sorted(batches) == list(range(6)) and batches[0] == []
    assert [len(batches[e]) for e in range(1, 6)] == [5] * 5  # n_train 500 / batch 100
    # the first recorded loss is the first mini-batch's, at the initialization
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, 10)
    data = get_dataset(cfg.data)
    idx = torch.randperm(500, generator=torch.Generator().manual_seed(cfg.seed))[:100]
    assert batches[1][0] == pytest.approx(loss_fn(model(data.x_train[idx]), data.y_train[idx]).item(), rel=1e-6)
    assert all(sum(h) == 10 for h in hists.values())  # every one of the d = 10 weights, every epoch
    assert len(edges[0]) == len(hists[0]) + 1 == 62


def test_any_config_mapping_starts_a_run(tmp_path: Path) -> None:
    with RunStore(tmp_path) as store:
        bare = store.start_run({}, comparison="c", versions={})
        named = store.start_run({"method": {"name": "sgd"}, "seed": 3}, comparison="c", versions={})
        rows = store.runs("c")
    assert [(r["id"], r["label"], r["method"], r["seed"], r["data_seed"]) for r in rows] == [
        (bare, "", "", 0, None),
        (named, "sgd", "sgd", 3, None),
    ]
