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
run is writing to it. JSON columns are strict JSON: a non-finite number is ``null``, as is a
non-finite metric value (SQLite stores a NaN ``REAL`` as ``NULL``).

A run's ``status`` is ``running``, ``done``, ``failed`` (an error), ``interrupted`` (a signal,
Ctrl-C) or ``diverged`` (:mod:`qnnlab.train.guard`). Each run records the ``pid`` and ``host`` of
the process training it: :meth:`RunStore.runs` shows a ``running`` run whose process is gone
(on this host, that pid no longer alive: a ``kill -9``, a crash) as ``interrupted``. A store
made before these statuses existed is migrated when opened for writing (its ``runs`` table
rebuilt in one transaction) and read as is when opened read-only.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from qnnlab.io import describe_os_error, dumps_json

__all__ = ["DB_NAME", "STATUSES", "RunStore", "StoreError"]

DB_NAME = "qnnlab.sqlite"
STATUSES = ("running", "done", "failed", "interrupted", "diverged")

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
    status TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed', 'interrupted', 'diverged')),
    started REAL NOT NULL,
    finished REAL,
    summary TEXT,
    pid INTEGER,
    host TEXT
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


class StoreError(ValueError):
    """A results folder or store file that cannot be used; the message names the path."""


def _tables(db: sqlite3.Connection) -> set[str]:
    return {name for (name,) in db.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


# columns added since the first stores were made: an older store lacks them until migrated
_ADDED = {"runs": {"pid", "host"}}


def _check_schema(db: sqlite3.Connection, path: Path) -> None:
    """:class:`StoreError` unless ``db`` has a ``runs`` table and each store table it has holds (at least)
    the columns of :data:`_SCHEMA`; a table or a column (:data:`_ADDED`) added since the store was made
    may be missing."""
    with closing(sqlite3.connect(":memory:")) as expected:
        expected.executescript(_SCHEMA)
        columns = {table: _columns(expected, table) for table in sorted(_tables(expected))}
    present = _tables(db)
    found = ", ".join(sorted(present)) or "none"
    if "runs" not in present:
        raise StoreError(f"{path}: not a qnnlab run store (no table 'runs'; tables: {found})")
    for table, names in columns.items():
        if table in present and (missing := names - _ADDED.get(table, set()) - _columns(db, table)):
            raise StoreError(
                f"{path}: not a qnnlab run store (table {table!r} lacks {', '.join(sorted(missing))}; tables: {found})"
            )


def _migrate(db: sqlite3.Connection) -> None:
    """Rebuild an older ``runs`` table (without the ``interrupted``/``diverged`` statuses, ``pid``, ``host``)
    as :data:`_SCHEMA` has it, in one transaction; called before foreign keys are enforced."""
    (sql,) = db.execute("SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'runs'").fetchone()
    if "'diverged'" in sql:
        return
    old = ", ".join(sorted(_columns(db, "runs")))
    create = _SCHEMA.split(";")[0].replace("IF NOT EXISTS runs", "_runs_new")
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute(create)
        db.execute(f"INSERT INTO _runs_new ({old}) SELECT {old} FROM runs")
        db.execute("DROP TABLE runs")
        db.execute("ALTER TABLE _runs_new RENAME TO runs")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        return True
    return True


def _status(row: Mapping[str, Any]) -> str:
    """The stored status, except ``interrupted`` for a ``running`` run whose process on this host is gone."""
    pid, host = row.get("pid"), row.get("host")
    if row["status"] == "running" and pid is not None and host == socket.gethostname() and not _alive(pid):
        return "interrupted"
    return row["status"]


class RunStore:
    """Open (creating if needed) ``DIR/qnnlab.sqlite``.

    With ``read_only=True`` the store must exist and nothing in it changes; it opens in a read-only
    folder too (where SQLite can add no ``-wal``/``-shm`` companion files). A file that is not a
    qnnlab store (garbage, truncated, another program's SQLite) raises :class:`StoreError`.
    """

    def __init__(self, results_dir: str | Path, *, read_only: bool = False) -> None:
        self.dir = Path(results_dir)
        self.path = self.dir / DB_NAME
        if read_only and not self.path.is_file():
            raise StoreError(f"{self.path}: no such file")
        try:
            self._db = self._connect_read_only() if read_only else self._connect()
        except sqlite3.OperationalError as err:  # no permission, a read-only folder, a folder named like the file
            raise StoreError(f"{self.path}: cannot open the run store ({err})") from None
        except sqlite3.DatabaseError as err:  # not SQLite at all, or damaged
            raise StoreError(f"{self.path}: not a qnnlab run store ({err})") from None
        except OSError as err:
            raise StoreError(f"{self.dir}: cannot hold a run store ({describe_os_error(err)})") from None

    def _connect(self) -> sqlite3.Connection:
        self.dir.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None)
        try:
            if _tables(db):  # an existing store (never another program's database: checked before any write)
                _check_schema(db, self.path)
                _migrate(db)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA foreign_keys=ON")
            db.executescript(_SCHEMA)
            # a write that is rolled back: fails now, not at the first epoch, if the file is read-only
            db.execute("BEGIN IMMEDIATE")
            db.execute("CREATE TABLE _write_probe (x)")
            db.execute("ROLLBACK")
        except BaseException:
            db.close()
            raise
        return db

    def _connect_read_only(self) -> sqlite3.Connection:
        uri = self.path.resolve().as_uri() + "?mode=ro"
        db = sqlite3.connect(uri, uri=True, isolation_level=None)
        try:
            _tables(db)
        except sqlite3.OperationalError:
            if os.access(self.dir, os.W_OK, effective_ids=os.access in os.supports_effective_ids):
                raise
            # a WAL database in a folder we cannot write: no -shm file can be made, and no writer
            # is live (it would keep one); then SQLite reads it as an immutable file
            db.close()
            db = sqlite3.connect(uri + "&immutable=1", uri=True, isolation_level=None)
        try:
            _check_schema(db, self.path)
        except BaseException:
            db.close()
            raise
        return db

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
                "INSERT INTO runs (comparison, label, method, seed, data_seed, config, versions, status, started,"
                " pid, host) VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?)",
                (
                    comparison,
                    config.get("label") or method.get("name", ""),
                    method.get("name", ""),
                    config.get("seed", 0),
                    data.get("seed"),
                    dumps_json(config, sort_keys=True),
                    dumps_json(dict(versions), sort_keys=True),
                    time.time(),
                    os.getpid(),
                    socket.gethostname(),
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
                [(run_id, epoch, k, dumps_json(list(v))) for k, v in (series or {}).items()],
            )

    def resume_run(self, run_id: int, *, after: int | None = None) -> int:
        """Mark run ``run_id`` running again (a resumed training) by this process; returns its last recorded epoch
        (−1: none). With ``after``, the epochs recorded after it are deleted first (they are trained again)."""
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
                raise ValueError(f"{self.path}: no run {run_id} to resume")
            db.execute(
                "UPDATE runs SET status = 'running', finished = NULL, summary = NULL, pid = ?, host = ? WHERE id = ?",
                (os.getpid(), socket.gethostname(), run_id),
            )
            if after is not None:
                for table in ("metrics", "series"):
                    db.execute(f"DELETE FROM {table} WHERE run_id = ? AND epoch > ?", (run_id, after))
            (last,) = db.execute("SELECT MAX(epoch) FROM metrics WHERE run_id = ?", (run_id,)).fetchone()
        return -1 if last is None else int(last)

    def finish_run(self, run_id: int, summary: Mapping[str, Any], *, status: str = "done") -> None:
        """Close run ``run_id`` with ``status`` (one of :data:`STATUSES` but ``running``) and its summary."""
        if status not in STATUSES[1:]:
            raise ValueError(f"status {status!r}: choose from: {', '.join(STATUSES[1:])}")
        with self._transaction() as db:
            db.execute(
                "UPDATE runs SET status = ?, finished = ?, summary = ? WHERE id = ?",
                (status, time.time(), dumps_json(dict(summary), sort_keys=True), run_id),
            )

    def import_run(self, source: RunStore, run_id: int) -> int:
        """Copy run ``run_id`` of ``source`` (its row, metrics and series) into this store, in one transaction;
        returns its id here. Checkpoint files are not copied."""
        rows = source._read("SELECT * FROM runs WHERE id = ?", (run_id,))
        if not rows:
            raise StoreError(f"{source.path}: no run {run_id}")
        row = {k: rows[0][k] for k in rows[0].keys() if k != "id"}  # noqa: SIM118 (a sqlite3.Row)
        metrics = source._read("SELECT epoch, name, value FROM metrics WHERE run_id = ?", (run_id,))
        series = source._read("SELECT epoch, name, data FROM series WHERE run_id = ?", (run_id,))
        with self._transaction() as db:
            columns, marks = ", ".join(row), ", ".join("?" * len(row))
            cur = db.execute(f"INSERT INTO runs ({columns}) VALUES ({marks})", list(row.values()))
            new = int(cur.lastrowid)
            db.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?)", [(new, *r) for r in metrics])
            db.executemany("INSERT INTO series VALUES (?, ?, ?, ?)", [(new, *r) for r in series])
        return new

    # -- reading ------------------------------------------------------------------------
    def _read(self, query: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """All rows of ``query``; a damaged database raises :class:`StoreError` naming the file."""
        try:
            cur = self._db.cursor()
            cur.row_factory = sqlite3.Row
            return cur.execute(query, args).fetchall()
        except sqlite3.DatabaseError as err:
            raise StoreError(f"{self.path}: unreadable ({err})") from None

    def _json(self, text: str, what: str) -> Any:
        try:
            return json.loads(text)
        except ValueError:
            raise StoreError(f"{self.path}: {what} is not valid JSON") from None

    def runs(self, comparison: str | None = None) -> list[dict[str, Any]]:
        """Runs in insertion order, with ``config``, ``versions`` and ``summary`` decoded, and the ``status`` shown
        (``interrupted`` for a dead ``running`` one, see the module docstring)."""
        query, args = "SELECT * FROM runs", ()
        if comparison is not None:
            query, args = query + " WHERE comparison = ?", (comparison,)
        rows = [dict(r) for r in self._read(query + " ORDER BY id", args)]
        for r in rows:
            for key in ("config", "versions", "summary"):
                r[key] = self._json(r[key], f"run {r['id']}'s {key}") if r[key] is not None else None
            r["status"] = _status(r)
        return rows

    def history(self, run_id: int) -> dict[int, dict[str, float]]:
        """``{epoch: {metric: value}}`` of one run."""
        out: dict[int, dict[str, float]] = {}
        query = "SELECT epoch, name, value FROM metrics WHERE run_id = ? ORDER BY epoch, name"
        for epoch, name, value in self._read(query, (run_id,)):
            out.setdefault(epoch, {})[name] = value
        return out

    def series(self, run_id: int, name: str) -> dict[int, list[float]]:
        """``{epoch: values}`` of one run's series ``name`` (epochs without it are absent)."""
        query = "SELECT epoch, data FROM series WHERE run_id = ? AND name = ? ORDER BY epoch"
        return {epoch: self._json(data, f"run {run_id}'s {name}") for epoch, data in self._read(query, (run_id, name))}
