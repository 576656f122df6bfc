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
