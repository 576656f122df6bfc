"""Config overrides by dotted path (qnnlab.config.override) and the run/compare flags built on them."""

import sqlite3
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from cli_check import fails_cleanly
from qnnlab.cli import app
from qnnlab.config import ConfigError, override, parse_overrides, validate_config
from qnnlab.experiments.presets import preset_runs, select_runs

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "logistic_askewsgd.toml"
BASE = validate_config({"method": {"name": "askewsgd", "lr": 1.0, "eps": {"hold": 3}}, "epochs": 5})


def test_dotted_paths_set_nested_fields_and_keep_the_rest() -> None:
    cfg = override(BASE, {"method.lr": 0.5, "method.eps.hold": 2, "model.keep_fp": ["biases"], "epochs": 4})
    assert (cfg.method.lr, cfg.method.eps.hold, cfg.method.eps.decay) == (0.5, 2, BASE.method.eps.decay)
    assert (cfg.model.keep_fp, cfg.epochs, cfg.seed) == (("biases",), 4, 0)
    assert BASE.method.lr == 1.0  # a copy
    assert BASE.with_(**{"method.lr": 0.5}) == override(BASE, {"method.lr": 0.5})


def test_an_unknown_path_lists_the_fields_allowed_there() -> None:
    with pytest.raises(ConfigError, match=r"^method\.lrr: no such field in method; choose from: adam_eps, alpha, base"):
        override(BASE, {"method.lrr": 1.0})
    with pytest.raises(ConfigError, match=r"^colour: no such field in the config; choose from: batch_size, bits"):
        override(BASE, {"colour": 1})
    with pytest.raises(ConfigError, match=r"^method\.lr\.x: method\.lr is a float \(1\.0\), not a table$"):
        override(BASE, {"method.lr.x": 1})


def test_values_are_validated_like_the_config_file() -> None:
    with pytest.raises(ConfigError, match=r"^method\.lr: Input should be greater than 0 \(got -1\)$"):
        override(BASE, {"method.lr": -1})
    with pytest.raises(ConfigError, match=r"method\.eps\.hold \(5\) must be < epochs \(5\)"):
        override(BASE, {"method.eps.hold": 5})


def test_a_new_name_or_kind_starts_its_table_afresh_and_an_absent_table_starts_empty() -> None:
    sgd = override(BASE, {"method.lr": 2.0, "method.name": "sgd"})  # the name applies first, whatever the order
    assert sgd.method.model_dump() == validate_config({"method": {"name": "sgd", "lr": 2.0}}).method.model_dump()
    step = override(BASE, {"schedule.factor": 0.5, "schedule.kind": "step"})
    assert (step.schedule.kind, step.schedule.factor, step.schedule.milestones) == ("step", 0.5, [])
    val = override(BASE, {"validation.size": 0.25})
    assert (val.validation.size, val.validation.seed, val.validation.stratify) == (0.25, 0, True)
    with pytest.raises(ConfigError, match=r"validation\.sizes: Extra inputs are not permitted"):
        override(BASE, {"validation.sizes": 0.25})


def test_values_are_toml_literals_else_strings() -> None:
    items = ["method.lr=0.5", "method.eps.hold = 10", "method.base=adam", 'model.keep_fp=["biases"]']
    items += ["method.eps={hold = 3, decay = 0.5}", "method.stochastic=true", "data.data_dir=/data/x y", "epochs=1_0"]
    assert parse_overrides(items) == {
        "method.lr": 0.5,
        "method.eps.hold": 10,
        "method.base": "adam",
        "model.keep_fp": ["biases"],
        "method.eps": {"hold": 3, "decay": 0.5},
        "method.stochastic": True,
        "data.data_dir": "/data/x y",
        "epochs": 10,
    }
    assert parse_overrides(["epochs=3", "epochs=4"]) == {"epochs": 4}  # the last wins
    for bad in ("method.lr", "=1", "method..lr=1", ".lr=1"):
        with pytest.raises(ConfigError, match="expected FIELD=VALUE"):
            parse_overrides([bad])


@given(st.floats(min_value=1e-6, max_value=1e3), st.integers(0, 4), st.integers(0, 10**6))
def test_override_then_read_gives_back_the_values(lr: float, hold: int, seed: int) -> None:
    cfg = override(BASE, parse_overrides([f"method.lr={lr!r}", f"method.eps.hold={hold}", f"seed={seed}"]))
    assert (cfg.method.lr, cfg.method.eps.hold, cfg.seed) == (lr, hold, seed)
    assert override(cfg, {"method.lr": BASE.method.lr, "method.eps.hold": 3, "seed": 0}) == BASE


def test_rows_are_picked_by_label_else_by_method() -> None:
    rows = preset_runs("logistic", 1)
    assert [c.label for c in select_runs(rows, ["askewsgd"])] == ["askewsgd"]  # the label, not both askewsgd rows
    sgd = [c.label for c in select_runs(rows, ["sgd", "ste"])]
    assert sgd == ["gd (full batch)", "minibatch sgd", "sgd (b=1, 1/k steps)", "ste"]
    with pytest.raises(KeyError, match=r"no row 'askew'; choose a label \(gd \(full batch\), .*or a method \(sgd, "):
        select_runs(rows, ["askew"])


def test_compare_with_methods_epochs_seed_start_and_set(tmp_path: Path) -> None:
    args = ["compare", "logistic", "--methods", "ste,minibatch sgd", "--epochs", "1", "--seeds", "2"]
    args += ["--seed-start", "3", "--set", "method.lr=0.25", "--set", "data.n_train=200", "-o", str(tmp_path), "-q"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    db = sqlite3.connect(tmp_path / "qnnlab.sqlite")
    rows = db.execute("SELECT label, seed, json_extract(config, '$.method.lr'), json_extract(config, '$.epochs')"
                      " FROM runs ORDER BY id").fetchall()  # fmt: skip
    assert rows == [(label, seed, 0.25, 1) for seed in (3, 4) for label in ("minibatch sgd", "ste")]


def test_run_takes_several_configs_into_one_comparison(tmp_path: Path) -> None:
    args = ["run", str(CONFIG), str(ROOT / "configs" / "digits_askewsgd_2bit.toml"), "--comparison", "both"]
    args += ["--epochs", "11", "--set", "data.n_train=100", "-o", str(tmp_path), "-q"]
    result = CliRunner().invoke(app, args)  # the digits config has no data.n_train: refused, nothing trained
    assert result.exit_code == 2 and "digits_askewsgd_2bit.toml: data.n_train: no such field in data" in result.output
    args = ["run", str(CONFIG), str(CONFIG), "-c", "both", "--seeds", "2", "--epochs", "11"]
    result = CliRunner().invoke(app, [*args, "--set", "data.n_train=200", "-o", str(tmp_path), "-q"])
    assert result.exit_code == 0, result.output
    db = sqlite3.connect(tmp_path / "qnnlab.sqlite")
    assert (
        db.execute("SELECT comparison, seed FROM runs ORDER BY id").fetchall() == [("both", 0)] * 2 + [("both", 1)] * 2
    )
    assert (tmp_path / "both.md").is_file()


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["compare", "--set", "method.eps.hold=3"], "logistic row 'gd (full batch)': method.eps: no such field"),
        (["compare", "--methods", "ste", "--set", "method.lr=-1"], "row 'ste': method.lr: Input should be greater"),
        (["compare", "--methods", "askew"], "--methods askew: no row 'askew'; choose a label"),
        (["compare", "--set", "lr"], "--set lr: expected FIELD=VALUE"),
        (["compare", "--epochs", "0"], "epochs: Input should be greater than or equal to 1"),
        (["compare", "--seed-start", "-1"], "--seed-start -1: must be >= 0"),
        (["run", CONFIG, "--seed-start", "-2"], "--seed-start -2: must be >= 0"),
        (["run", CONFIG, "--set", "method.eps.holds=1"], "logistic_askewsgd.toml: method.eps.holds: no such field"),
    ],
)
def test_bad_overrides_fail_in_one_line(args: list, names: str) -> None:
    fails_cleanly(args, names)
