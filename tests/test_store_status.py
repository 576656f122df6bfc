"""Run statuses: interrupted and diverged, the pid and host of each run, and stores made before them."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from qnnlab.store import DB_NAME, RunStore

# the runs table as stores made before the interrupted/diverged statuses have it
OLD_RUNS = """
CREATE TABLE runs (
    id INTEGER PRIMARY KEY, comparison TEXT NOT NULL, label TEXT NOT NULL, method TEXT NOT NULL,
    seed INTEGER NOT NULL, data_seed INTEGER, config TEXT NOT NULL, versions TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    started REAL NOT NULL, finished REAL, summary TEXT
);
CREATE TABLE metrics (
    run_id INTEGER NOT NULL REFERENCES runs(id), epoch INTEGER NOT NULL, name TEXT NOT NULL, value REAL,
    PRIMARY KEY (run_id, epoch, name)
);
INSERT INTO runs VALUES (1, 'old', 'sgd', 'sgd', 0, NULL, '{"label": "sgd"}', '{}', 'done', 1.0, 2.0, '{"a": 1}');
INSERT INTO runs VALUES (2, 'old', 'sgd', 'sgd', 1, NULL, '{"label": "sgd"}', '{}', 'running', 1.0, NULL, NULL);
INSERT INTO metrics VALUES (1, 0, 'loss', 0.5);
"""


def _old_store(folder: Path) -> Path:
    folder.mkdir()
    with sqlite3.connect(folder / DB_NAME) as db:
        db.executescript(OLD_RUNS)
    return folder


def test_an_old_store_is_read_as_is_and_migrated_when_written(tmp_path: Path) -> None:
    folder = _old_store(tmp_path / "old")
    with RunStore(folder, read_only=True) as store:
        assert [(r["id"], r["status"], r.get("pid")) for r in store.runs()] == [(1, "done", None), (2, "running", None)]
    with RunStore(folder) as store:  # migrated: the new statuses are allowed, rows and metrics kept
        assert [r["status"] for r in store.runs()] == ["done", "running"] and store.history(1) == {0: {"loss": 0.5}}
        store.finish_run(2, {"error": "stopped"}, status="interrupted")
        new = store.start_run({"label": "x"}, comparison="old", versions={})
        store.finish_run(new, {}, status="diverged")
        assert [r["status"] for r in store.runs()] == ["done", "interrupted", "diverged"]
        (sql,) = store._db.execute("SELECT sql FROM sqlite_schema WHERE name = 'runs'").fetchone()
        assert "'diverged'" in sql and "pid INTEGER" in sql
    with RunStore(folder) as store:  # opening again changes nothing
        assert len(store.runs()) == 3


def test_each_run_records_its_process_and_a_dead_one_shows_as_interrupted(tmp_path: Path) -> None:
    with RunStore(tmp_path) as store:
        mine = store.start_run({"label": "a"}, comparison="c", versions={})
        gone = store.start_run({"label": "b"}, comparison="c", versions={})
        elsewhere = store.start_run({"label": "c"}, comparison="c", versions={})
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
        store._db.execute("UPDATE runs SET pid = ? WHERE id = ?", (int(dead.stdout), gone))
        store._db.execute("UPDATE runs SET pid = 1, host = 'another-host' WHERE id = ?", (elsewhere,))
        runs = {r["id"]: r for r in store.runs()}
    assert runs[mine]["pid"] == os.getpid() and runs[mine]["host"] == socket.gethostname()
    assert runs[mine]["status"] == "running"  # this process is alive
    assert runs[gone]["status"] == "interrupted"  # its process is gone
    assert runs[elsewhere]["status"] == "running"  # another host: cannot tell


def test_finish_run_takes_only_known_statuses(tmp_path: Path) -> None:
    with RunStore(tmp_path) as store:
        run = store.start_run({"label": "a"}, comparison="c", versions={})
        with pytest.raises(ValueError, match="status 'crashed': choose from: done, failed, interrupted, diverged"):
            store.finish_run(run, {}, status="crashed")


def test_resume_run_after_an_epoch_deletes_the_later_ones(tmp_path: Path) -> None:
    with RunStore(tmp_path) as store:
        run = store.start_run({"label": "a"}, comparison="c", versions={})
        for epoch in range(4):
            store.log_epoch(run, epoch, {"loss": float(epoch)}, {"batch_loss": [1.0]})
        store.finish_run(run, {}, status="interrupted")
        assert store.resume_run(run, after=1) == 1
        assert sorted(store.history(run)) == [0, 1] and sorted(store.series(run, "batch_loss")) == [0, 1]
        assert store.runs()[0]["status"] == "running"
