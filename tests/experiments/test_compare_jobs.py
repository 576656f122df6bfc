"""``compare`` in worker processes records what it records in this process: the same store, results and table."""

import json
import sqlite3
from pathlib import Path

import pytest
import torch

from qnnlab.experiments.compare import _work, aggregate, compare, markdown_table
from qnnlab.experiments.presets import preset_runs, select_runs

pytestmark = pytest.mark.usefixtures("one_thread")


def _stored(folder: Path) -> list:
    """Every row of the store but the wall-clock fields, in run-id order."""
    db = sqlite3.connect(folder / "qnnlab.sqlite")
    runs = []
    for rid, comparison, config, summary, status in db.execute(
        "SELECT id, comparison, config, summary, status FROM runs ORDER BY id"
    ):
        summary = {k: v for k, v in json.loads(summary).items() if k != "wall_time"}
        metrics = db.execute("SELECT epoch, name, value FROM metrics WHERE run_id = ? ORDER BY 1, 2", (rid,)).fetchall()
        series = db.execute("SELECT epoch, name, data FROM series WHERE run_id = ? ORDER BY 1, 2", (rid,)).fetchall()
        runs.append((rid, comparison, json.loads(config), summary, status, metrics, series))
    return runs


def test_two_workers_record_what_one_process_records(tmp_path: Path) -> None:
    # the stochastic BinaryConnect draws from torch's global generator: seeded per run in the workers too
    runs = [
        c.with_(epochs=2) for c in select_runs(preset_runs("logistic", 2), ["minibatch sgd", "binaryconnect (stoch.)"])
    ]
    # a second comparison, its run the longest: the workers take it first, the store still gets it last
    b1 = select_runs(preset_runs("logistic", 1), ["sgd (b=1, 1/k steps)"])[0].with_(epochs=1)
    assert _work(b1) > max(map(_work, runs))
    runs, names = [*runs, b1], ["logistic"] * len(runs) + ["b=1"]
    one = compare(runs, tmp_path / "one", names)
    calls = []
    two = compare(runs, tmp_path / "two", names, jobs=2, on_run=lambda cfg: lambda e, m: calls.append((cfg.label, e)))
    assert _stored(tmp_path / "one") == _stored(tmp_path / "two")
    assert [r[1] for r in _stored(tmp_path / "two")] == names
    assert [r.run_id for r in two] == [r.run_id for r in one] == [1, 2, 3, 4, 5]
    assert all(torch.equal(a.weights["weight"], b.weights["weight"]) for a, b in zip(one, two, strict=True))
    assert calls == [
        (c.label, e) for c in runs for e in range(c.epochs + 1)
    ]  # every epoch of each run, in config order
    for r in two:  # the checkpoints, renamed to the ids here; nothing else is left behind
        assert (tmp_path / "two" / "checkpoints" / f"run-{r.run_id}.pt").is_file()
    assert sorted(p.name for p in (tmp_path / "two").iterdir() if not p.name.startswith("qnnlab.sqlite")) == [
        "checkpoints"
    ]

    def table(results):
        return [line.rsplit("|", 2)[0] for line in markdown_table(aggregate(results)).splitlines()]  # no wall s

    assert table(one) == table(two)


def test_jobs_must_be_positive_and_trackers_stay_in_this_process(tmp_path: Path) -> None:
    runs = preset_runs("logistic", 1)[:2]
    with pytest.raises(ValueError, match="name: 3 comparison names for 2 configs; give one, or one per config"):
        compare(runs, tmp_path, ["a", "b", "c"])
    with pytest.raises(ValueError, match="jobs: 0; must be >= 1"):
        compare(runs, tmp_path, "x", jobs=0)
    with pytest.raises(ValueError, match="jobs: runs with trackers"):
        compare([c.with_(track=("tensorboard",)) for c in runs], tmp_path, "x", jobs=2)
