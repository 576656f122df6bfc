"""The run store: one embedded SQLite database per results folder.

``runs`` holds one row per training run (its config, versions, status, summary);
``metrics`` holds one row per (run, epoch, metric), a scalar; ``series`` holds one row per
(run, epoch, name) for the per-epoch vectors, a JSON array of numbers:

- ``batch_loss``: the loss of each mini-batch step of the epoch, in order (the iterations
  ``k`` of epoch ``e`` follow those of epochs ``1 .. e−1``; epoch 0 has none);
- ``weight_hist``: counts of the continuous quantized weights over the bins whose edges are
  ``weight_hist_edges`` (see :func:`qnnlab.train.diagnostics.weight_histogram`).

The database is in WAL mode and each epoch is written in its own transaction, so a crash
loses nothing already recorded and readers (reports, queries) can open the file while a
run is writing to it.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["DB_NAME", "RunStore"]

DB_NAME = "qnnlab.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    comparison TEXT NOT NULL,
    label TEXT NOT NULL,
    method TEXT NOT NULL,
    seed INTEGER NOT NULL,
    data_seed INTEGER,
    config TEXT NOT NULL,
    versions TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    started REAL NOT NULL,
    finished REAL,
    summary TEXT
);
CREATE TABLE IF NOT EXISTS metrics (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    epoch INTEGER NOT NULL,
    name TEXT NOT NULL,
    value REAL,
    PRIMARY KEY (run_id, epoch, name)
);
CREATE TABLE IF NOT EXISTS series (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    epoch INTEGER NOT NULL,
    name TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (run_id, epoch, name)
);
"""


class RunStore:
    """Open (creating if needed) ``DIR/qnnlab.sqlite``."""

    def __init__(self, results_dir: str | Path) -> None:
        self.dir = Path(results_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / DB_NAME
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ------------------------------------------------------------------------
    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def start_run(self, config: Mapping[str, Any], *, comparison: str, versions: Mapping[str, str]) -> int:
        """A new run; ``config`` is any JSON-able mapping, whose ``label``, ``method.name``, ``seed`` and
        ``data.seed`` (when present) fill the columns of the same names."""
        method, data = config.get("method") or {}, config.get("data") or {}
        with self._transaction() as db:
            cur = db.execute(
                "INSERT INTO runs (comparison, label, method, seed, data_seed, config, versions, status, started)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?)",
                (
                    comparison,
                    config.get("label") or method.get("name", ""),
                    method.get("name", ""),
                    config.get("seed", 0),
                    data.get("seed"),
                    json.dumps(config, sort_keys=True),
                    json.dumps(dict(versions), sort_keys=True),
                    time.time(),
                ),
            )
        return int(cur.lastrowid)

    def log_epoch(
        self,
        run_id: int,
        epoch: int,
        metrics: Mapping[str, float],
        series: Mapping[str, Sequence[float]] | None = None,
    ) -> None:
        """All of one epoch's metrics and series, in one transaction."""
        with self._transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO metrics (run_id, epoch, name, value) VALUES (?, ?, ?, ?)",
                [(run_id, epoch, k, float(v)) for k, v in metrics.items()],
            )
            db.executemany(
                "INSERT OR REPLACE INTO series (run_id, epoch, name, data) VALUES (?, ?, ?, ?)",
                [(run_id, epoch, k, json.dumps(list(v))) for k, v in (series or {}).items()],
            )

    def resume_run(self, run_id: int) -> int:
        """Mark run ``run_id`` running again (a resumed training); returns its last recorded epoch (−1: none)."""
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
                raise ValueError(f"{self.path}: no run {run_id} to resume")
            db.execute("UPDATE runs SET status = 'running', finished = NULL, summary = NULL WHERE id = ?", (run_id,))
            (last,) = db.execute("SELECT MAX(epoch) FROM metrics WHERE run_id = ?", (run_id,)).fetchone()
        return -1 if last is None else int(last)

    def finish_run(self, run_id: int, summary: Mapping[str, Any], *, status: str = "done") -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE runs SET status = ?, finished = ?, summary = ? WHERE id = ?",
                (status, time.time(), json.dumps(dict(summary), sort_keys=True), run_id),
            )

    # -- reading ------------------------------------------------------------------------
    def runs(self, comparison: str | None = None) -> list[dict[str, Any]]:
        """Runs in insertion order, with ``config``, ``versions`` and ``summary`` decoded."""
        query, args = "SELECT * FROM runs", ()
        if comparison is not None:
            query, args = query + " WHERE comparison = ?", (comparison,)
        cur = self._db.execute(query + " ORDER BY id", args)
        cols = [c[0] for c in cur.description]
        rows = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
        for r in rows:
            for key in ("config", "versions", "summary"):
                r[key] = json.loads(r[key]) if r[key] is not None else None
        return rows

    def history(self, run_id: int) -> dict[int, dict[str, float]]:
        """``{epoch: {metric: value}}`` of one run."""
        out: dict[int, dict[str, float]] = {}
        for epoch, name, value in self._db.execute(
            "SELECT epoch, name, value FROM metrics WHERE run_id = ? ORDER BY epoch, name", (run_id,)
        ):
            out.setdefault(epoch, {})[name] = value
        return out

    def series(self, run_id: int, name: str) -> dict[int, list[float]]:
        """``{epoch: values}`` of one run's series ``name`` (epochs without it are absent)."""
        return {
            epoch: json.loads(data)
            for epoch, data in self._db.execute(
                "SELECT epoch, data FROM series WHERE run_id = ? AND name = ? ORDER BY epoch", (run_id, name)
            )
        }
