import sqlite3
from pathlib import Path

import pytest

from qnnlab.config import validate_config
from qnnlab.store import DB_NAME, RunStore, StoreError
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


# -- read-only opening and files that are not a store --------------------------------------
def _store_with_runs(folder: Path, runs: int = 1) -> None:
    with RunStore(folder) as store:
        for seed in range(runs):
            config = {"label": "a", "seed": seed, "method": {"name": "sgd"}, "data": {"seed": 0}}
            run = store.start_run(config, comparison="cmp", versions={"torch": "x"})
            for epoch in range(20):
                store.log_epoch(run, epoch, {"loss": 1 / (epoch + 1)}, {"batch_loss": [0.5] * 50})
            store.finish_run(run, {"loss": 0.05})


def test_a_read_only_store_reads_everything_and_writes_nothing(tmp_path: Path) -> None:
    _store_with_runs(tmp_path)
    before = (tmp_path / DB_NAME).read_bytes()
    with RunStore(tmp_path, read_only=True) as store:
        (run,) = store.runs("cmp")
        assert run["summary"] == {"loss": 0.05} and store.history(run["id"])[3] == {"loss": 0.25}
        assert store.series(run["id"], "batch_loss")[19] == [0.5] * 50
        with pytest.raises(sqlite3.OperationalError, match="attempt to write a readonly database"):
            store.finish_run(run["id"], {})
    assert (tmp_path / DB_NAME).read_bytes() == before
    with pytest.raises(StoreError, match=rf"^{tmp_path / 'none' / DB_NAME}: no such file$"):
        RunStore(tmp_path / "none", read_only=True)
    assert not (tmp_path / "none").exists()


@pytest.mark.parametrize("read_only", [True, False])
def test_garbage_truncated_and_foreign_files_are_refused(tmp_path: Path, read_only: bool) -> None:
    garbage, truncated, foreign = (tmp_path / name for name in ("garbage", "truncated", "foreign"))
    garbage.mkdir()
    (garbage / DB_NAME).write_bytes(b"SQLite format 2\x00 but really some text file" * 100)
    with pytest.raises(StoreError, match=rf"^{garbage / DB_NAME}: not a qnnlab run store \(file is not a database\)$"):
        RunStore(garbage, read_only=read_only)

    _store_with_runs(truncated, runs=20)
    raw = (truncated / DB_NAME).read_bytes()
    malformed = r"(not a qnnlab run store|unreadable) \(database disk image is malformed\)"
    faults = rf"{malformed}|run \d+'s batch_loss is not valid JSON"
    for cut in (len(raw) // 2, len(raw) // 100, 100):  # found on opening, on reading, or in a cut JSON row
        (truncated / DB_NAME).write_bytes(raw[:-cut])
        pattern = rf"^{truncated / DB_NAME}: ({faults})$"
        with pytest.raises(StoreError, match=pattern), RunStore(truncated, read_only=read_only) as store:
            for run in store.runs():
                store.series(run["id"], "batch_loss")

    foreign.mkdir()
    with sqlite3.connect(foreign / DB_NAME) as db:
        db.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY, name TEXT)")
    before = (foreign / DB_NAME).read_bytes()
    with pytest.raises(StoreError, match=rf"^{foreign / DB_NAME}: not a qnnlab run store \(table 'runs' lacks comp"):
        RunStore(foreign, read_only=read_only)
    assert (foreign / DB_NAME).read_bytes() == before  # another program's database is never written to


def test_a_results_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match=rf"^{tmp_path / 'file'}: cannot hold a run store \(.*file exists\)$"):
        RunStore(tmp_path / "file")


def test_a_store_from_before_a_table_existed_gains_it(tmp_path: Path) -> None:
    _store_with_runs(tmp_path)
    with sqlite3.connect(tmp_path / DB_NAME) as db:
        db.execute("DROP TABLE series")  # as a store made before per-epoch series
    with RunStore(tmp_path) as store:
        (run,) = store.runs()
        assert store.series(run["id"], "batch_loss") == {} and store.history(run["id"])[0] == {"loss": 1.0}


def test_any_config_mapping_starts_a_run(tmp_path: Path) -> None:
    with RunStore(tmp_path) as store:
        bare = store.start_run({}, comparison="c", versions={})
        named = store.start_run({"method": {"name": "sgd"}, "seed": 3}, comparison="c", versions={})
        rows = store.runs("c")
    assert [(r["id"], r["label"], r["method"], r["seed"], r["data_seed"]) for r in rows] == [
        (bare, "", "", 0, None),
        (named, "sgd", "sgd", 3, None),
    ]


def test_a_run_imported_from_another_store_is_the_same_run(tmp_path: Path) -> None:
    cfg = validate_config({**CFG, "epochs": 2, "method": {"name": "sgd", "lr": 0.5}})
    fit(cfg, results=tmp_path / "a", comparison="demo")
    with RunStore(tmp_path / "b") as target, RunStore(tmp_path / "a", read_only=True) as source:
        fit(cfg, store=target, comparison="other")  # run 1 here: the import becomes run 2
        assert target.import_run(source, 1) == 2
        (copied,) = target.runs("demo")
        (original,) = source.runs("demo")
        assert {**copied, "id": 1} == original
        assert target.history(2) == source.history(1)
        assert target.series(2, "batch_loss") == source.series(1, "batch_loss") != {}
        with pytest.raises(StoreError, match="no run 9"):
            target.import_run(source, 9)
