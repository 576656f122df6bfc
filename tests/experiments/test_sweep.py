"""qnnlab sweep: the spec, the trials, scoring on validation data, resuming, and the backends agreeing."""

import json
import math
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from cli_check import fails_cleanly
from qnnlab.cli import app
from qnnlab.config import ConfigError, validate_config
from qnnlab.experiments.sweep import (
    Choice,
    IntRange,
    Job,
    LogUniform,
    Runner,
    SweepSpec,
    TrialRecord,
    Uniform,
    _draw,
    _grid,
    _pick,
    _score,
    load_record,
    load_spec,
    plan,
    sweep,
)
from qnnlab.report.sweep import sweep_section

# two methods of the logistic preset over lr and the ε schedule, small enough for seconds
SPEC = {
    "name": "toy",
    "preset": "logistic",
    "set": {"epochs": 3, "data.n_train": 400, "data.n_test": 100},
    "metric": "val_loss",
    "seeds": 1,
    "space": {
        "askewsgd": {"method.lr": [0.3, 3.0], "method.eps": [{"hold": 1, "decay": 0.5}]},
        "primal_dual": {"method.lr": [0.3], "method.eps.hold": [0, 1]},
    },
}


def spec(**changes) -> SweepSpec:
    return SweepSpec.model_validate({**SPEC, **changes})


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"metric": "q_test_acc"}, "is not a validation metric (val_* or q_val_*): trials are selected on validation"),
        ({"metric": "val_margin"}, "mode: say whether 'val_margin' is better low (min) or high (max)"),
        ({"trials": 3}, "trials: a grid search trains every combination of its lists; leave trials out"),
        ({"search": "random"}, "trials: required for search = 'random'"),
        ({"space": {"ste": {"method.lr": {"kind": "uniform", "low": 0, "high": 1}}}}, "space.ste.method.lr: a uniform"),
        ({"configs": ["a.toml"]}, "give the rows as preset = NAME or as configs = [FILES], one of the two"),
    ],
)
def test_a_bad_spec_is_refused_naming_the_field(changes: dict, error: str) -> None:
    with pytest.raises(ValueError) as info:  # pydantic's ValidationError
        spec(**changes)
    assert error in str(info.value)


def test_the_shipped_spec_is_valid() -> None:
    shipped = load_spec(Path(__file__).resolve().parents[2] / "configs" / "sweeps" / "logistic.toml")
    assert (shipped.name, shipped.metric, shipped.mode, shipped.seeds) == ("logistic-sweep", "q_val_loss", "min", 5)
    assert set(shipped.space) == {"askewsgd", "primal_dual"}


SPECS = sorted((Path(__file__).resolve().parents[2] / "configs" / "sweeps").glob("*.toml"))


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_every_committed_spec_validates_with_all_its_trials(path: Path) -> None:
    rows = plan(load_spec(path))  # every trial's config validated; nothing trains
    assert rows and all(row.params for row in rows)
    assert all(row.fixed["validation"]["size"] == 0.2 for row in rows)


def test_spec_files_fail_in_one_line(tmp_path: Path) -> None:
    lr = '"method.lr" = {kind = "log_uniform", low = 2, high = 1}'
    path = write(tmp_path, f'preset = "logistic"\nsearch = "random"\ntrials = 2\n[space.ste]\n{lr}\n')
    with pytest.raises(ConfigError, match=r"spec.toml: .*space.ste.method.lr: low \(2.0\) must be <= high \(1.0\)"):
        load_spec(path)
    fails_cleanly(["sweep", path], "low (2.0) must be <= high (1.0)")
    fails_cleanly(
        ["sweep", write(tmp_path, 'preset = "logistic"\n[space.askew]\n"method.lr" = [1]\n')], "no row 'askew'"
    )
    fails_cleanly(["sweep", path, "--backend", "slurm"], "--backend slurm: choose from: local, ray")
    fails_cleanly(["sweep", path, "--seeds", "0"], "--seeds 0: choose from 1 to 1000")
    bad = write(tmp_path, 'preset = "logistic"\nset = {epochs = 3}\n[space.askewsgd]\n"method.lr" = [-1]\n')
    fails_cleanly(
        ["sweep", bad, "-o", tmp_path], "row 'askewsgd', trial 0 (method.lr = -1): method.lr: Input should be"
    )
    assert not (tmp_path / "qnnlab.sqlite").exists()  # every trial is checked before one trains


def test_grids_are_products_and_draws_stay_in_their_ranges() -> None:
    space = {"a": Choice(values=[1, 2]), "b": Choice(values=["x", "y", "z"])}
    assert _grid(space) == [{"a": a, "b": b} for a in (1, 2) for b in "xyz"]


@given(st.floats(-5, 5), st.floats(0, 5), st.integers(-3, 3), st.integers(0, 4), st.integers(0, 2**32 - 1))
def test_each_distribution_draws_inside_its_bounds(low: float, width: float, ilow: int, iwidth: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    assert low <= _draw(Uniform(low=low, high=low + width), rng) <= low + width
    lo = math.exp(low)
    assert (
        lo * (1 - 1e-12)
        <= _draw(LogUniform(low=lo, high=lo * math.exp(width)), rng)
        <= lo * math.exp(width) * (1 + 1e-12)
    )
    assert ilow <= _draw(IntRange(low=ilow, high=ilow + iwidth), rng) <= ilow + iwidth
    assert _draw(Choice(values=[[1], [2]]), rng) in ([1], [2])


def test_a_score_is_the_last_epoch_or_the_best_and_ties_go_to_the_first_trial() -> None:
    history = {0: {"val_loss": 0.1}, 1: {"val_loss": 0.5}, 2: {"val_loss": 0.3}, 3: {"val_loss": 0.4}}
    run = {"id": 7, "label": "x"}
    assert _score(run, history, "val_loss", "min", "last") == 0.4
    assert _score(run, history, "val_loss", "min", "best") == 0.3  # epoch 0 (the initialization) is not a candidate
    assert _score(run, history, "val_loss", "max", "best") == 0.5
    assert _score(run, {1: {"val_loss": math.nan}}, "val_loss", "min", "last") == math.inf
    with pytest.raises(
        Exception, match=r"metric 'val_acc' was not recorded by run 7 \('x'\); validation metrics: val_loss"
    ):
        _score(run, history, "val_acc", "max", "last")
    trials = [TrialRecord(trial=i, params={}, score=s, runs=[]) for i, s in enumerate([0.2, None, 0.1, 0.1])]
    assert (_pick(trials, "min"), _pick(trials, "max")) == (2, 0)


def _rows(db: Path, comparison: str) -> list[tuple]:
    query = "SELECT label, seed, status FROM runs WHERE comparison = ? ORDER BY id"
    return sqlite3.connect(db / "qnnlab.sqlite").execute(query, (comparison,)).fetchall()


@pytest.fixture(scope="module")
def local(tmp_path_factory) -> tuple[Path, object]:
    results = tmp_path_factory.mktemp("sweep")
    record, final = sweep(spec(), results)
    return results, record, final


def test_trials_are_scored_on_validation_and_the_best_rerun_under_the_sweeps_name(local) -> None:
    results, record, final = local
    assert _rows(results, "toy-trials") == [
        (f"{label} #{i}", 0, "done") for label, n in (("askewsgd", 2), ("primal_dual", 2)) for i in range(n)
    ]
    assert [(r["label"], r["seed"]) for r in final] == [("askewsgd", 0), ("primal_dual", 0)]
    store = sqlite3.connect(results / "qnnlab.sqlite")
    for m in record.methods:
        for t in m.trials:  # each score is the run's val_loss at its last epoch
            (value,) = store.execute("SELECT value FROM metrics WHERE run_id = ? AND epoch = 3 AND name = 'val_loss'",
                                     (t.runs[0],)).fetchone()  # fmt: skip
            assert t.score == value
        assert m.best == min(m.trials, key=lambda t: t.score).trial
        assert len({t.score for t in m.trials}) == len(m.trials)  # distinct: the selection is not a tie
    best = {m.label: m.best_trial.params for m in record.methods}
    config = final[0]["config"]
    assert config["method"]["lr"] == best["askewsgd"]["method.lr"]
    assert config["validation"] == {"size": 0.2, "seed": 0, "stratify": True} and final[0]["summary"]["n_train"] == 320
    assert load_record(results, "toy") == record


def test_a_sweep_run_again_trains_only_what_is_missing(local, tmp_path: Path) -> None:
    results, record, _ = local
    trained = []
    again, _ = sweep(spec(), results, on_done=trained.append)
    assert trained == [] and again == record
    # an interrupted sweep: its first trial finished, then the rest of it
    (config,) = sqlite3.connect(results / "qnnlab.sqlite").execute("SELECT config FROM runs ORDER BY id").fetchone()
    first = Job("toy-trials", validate_config(json.loads(config)))
    with Runner(tmp_path) as runner:
        runner.run([first])
    assert sweep(spec(), tmp_path, on_done=trained.append)[0] == record
    assert len(trained) == 4 - 1 + 2 and first not in trained  # 3 trials and 2 final runs


SPEC_TOML = """name = "toy"
preset = "logistic"
set = { epochs = 3, "data.n_train" = 400, "data.n_test" = 100 }
metric = "val_loss"
seeds = 1
[space.askewsgd]
"method.lr" = [0.3, 3.0]
"method.eps" = [{ hold = 1, decay = 0.5 }]
[space.primal_dual]
"method.lr" = [0.3]
"method.eps.hold" = [0, 1]
"""


def test_the_command_prints_and_writes_the_final_table(local, tmp_path: Path) -> None:
    results, _, _ = local  # the same sweep, found in the store: nothing trains
    result = CliRunner().invoke(app, ["sweep", str(write(tmp_path, SPEC_TOML)), "-o", str(results), "-q"])
    assert result.exit_code == 0, result.output
    assert "| askewsgd | 1 |" in (results / "toy.md").read_text()


def test_the_report_gains_a_sweep_section(local, tmp_path: Path) -> None:
    results, _, _ = local
    section = sweep_section(results, "toy")
    assert "Hyperparameter sweep" in section and "toy-trials" in section and "star" in section
    assert "val_loss (minimized, at the last epoch) on the validation split" in section
    assert sweep_section(results, "toy-trials") == ""
    (tmp_path / "toy.sweep.json").write_text('{"name": 1}')
    with pytest.raises(ValueError, match=r"toy\.sweep\.json: not a sweep record"):
        sweep_section(tmp_path, "toy")


def test_tpe_asks_its_trials_and_keeps_to_the_space(tmp_path: Path) -> None:
    pytest.importorskip("optuna")
    space = {
        "askewsgd": {
            "method.lr": {"kind": "log_uniform", "low": 0.1, "high": 3},
            "method.eps.hold": {"kind": "int", "low": 0, "high": 2},
        }
    }
    record, _ = sweep(spec(search="tpe", trials=3, space=space), tmp_path)
    (m,) = record.methods
    assert [t.trial for t in m.trials] == [0, 1, 2]
    assert all(0.1 <= t.params["method.lr"] <= 3 and t.params["method.eps.hold"] in (0, 1, 2) for t in m.trials)
    again, _ = sweep(spec(search="tpe", trials=3, space=space), tmp_path)
    assert again == record  # the same asks, found in the store


def selected(record) -> list:
    """What a sweep found: per method, each trial's fields and score, and the best trial."""
    return [(m.label, m.best, [(t.trial, t.params, t.score) for t in m.trials]) for m in record.methods]


@pytest.mark.slow
def test_local_workers_and_ray_select_the_same_configuration(local, tmp_path: Path) -> None:
    """The issue's check: --jobs 2 and --backend ray on a local Ray instance with 2 CPUs agree, score for score."""
    _, record, _ = local
    workers, _ = sweep(spec(), tmp_path / "jobs", workers=2)
    db = sqlite3.connect(tmp_path / "jobs" / "qnnlab.sqlite")  # written by two processes at once: every epoch there
    assert db.execute("SELECT COUNT(*) FROM runs WHERE status = 'done'").fetchone() == (6,)
    assert db.execute("SELECT COUNT(DISTINCT run_id || '-' || epoch) FROM metrics").fetchone() == (6 * 4,)
    assert selected(workers) == selected(record)  # run ids follow the order the runs started in
    pytest.importorskip("ray")
    ray, final = sweep(spec(), tmp_path / "ray", backend="ray", workers=2)
    assert selected(ray) == selected(record)
    assert [r["summary"]["val_loss"] for r in final] == [r["summary"]["val_loss"] for r in local[2]]
    assert (tmp_path / "ray" / "checkpoints" / f"run-{final[0]['id']}.pt").is_file()
