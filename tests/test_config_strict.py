"""Strict configs: no coercion, finite floats, ranges, and checks that need the data; each a clean CLI line (exit 2)."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli_check import fails_cleanly
from qnnlab.config import ConfigError, validate_config

BASE = {
    "epochs": 2,
    "batch_size": 50,
    "data": {"name": "logistic", "n_train": 200, "n_test": 100},
    "model": {"name": "linear"},
    "method": {"name": "sgd", "lr": 0.5},
}


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, list):
        return "[" + ", ".join(map(_toml_value, value)) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)  # ints, finite floats, strings (TOML basic strings)


def toml(config: dict) -> str:
    top = "".join(f"{k} = {_toml_value(v)}\n" for k, v in config.items() if not isinstance(v, dict))
    tables = "".join(
        f"[{k}]\n" + "".join(f"{kk} = {_toml_value(vv)}\n" for kk, vv in v.items())
        for k, v in config.items()
        if isinstance(v, dict)
    )
    return top + tables


def _with(path: str, value: object) -> dict:
    config = json.loads(json.dumps(BASE))
    *parents, key = path.split(".")
    table = config
    for name in parents:
        table = table[name]
    table[key] = value
    return config


def _run(tmp_path: Path, config: dict, names: str) -> str:
    (tmp_path / "c.toml").write_text(toml(config))
    return fails_cleanly(["run", tmp_path / "c.toml", "-o", tmp_path / "out", "-q"], names)


# int fields and float fields of the base config, and values each must refuse
INTS = ["epochs", "batch_size", "seed", "eval_batch_size", "checkpoint_every", "data.n_train", "data.d", "data.seed"]
FLOATS = [
    "checkpoint_interval",
    "method.lr",
    "method.momentum",
    "method.weight_decay",
    "method.adam_eps",
    "data.w_scale",
]
NOT_INTS = st.one_of(
    st.booleans(),
    st.text(alphabet="ab1.-e ", max_size=5),
    st.floats(allow_nan=True, allow_infinity=True).filter(lambda x: not (math.isfinite(x) and x == int(x))),
    st.integers(max_value=-1),
    st.integers(min_value=2**63, max_value=2**64 - 1),
)
NOT_FLOATS = st.one_of(
    st.booleans(),
    st.text(alphabet="ab1.-e ", max_size=5),
    st.sampled_from([math.inf, -math.inf, math.nan]),
    st.floats(max_value=-1e-3),
)
MALFORMED = st.one_of(
    st.tuples(st.sampled_from(INTS), NOT_INTS),
    st.tuples(st.sampled_from(FLOATS), NOT_FLOATS),
    st.tuples(st.sampled_from(["method.nope", "data.nope", "nope", "model.nope"]), st.integers()),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(MALFORMED)
def test_malformed_configs_fail_with_one_line_naming_the_field(case: tuple[str, object]) -> None:
    path, value = case
    with tempfile.TemporaryDirectory() as folder:
        _run(Path(folder), _with(path, value), path.rpartition(".")[2])


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("epochs", True, "epochs: Input should be a valid integer (got True)"),
        ("method.lr", "0.5", "method.lr: Input should be a valid number (got '0.5')"),
        ("method.lr", math.inf, "method.lr: Input should be a finite number"),
        ("data.w_scale", math.inf, "data.w_scale: Input should be a finite number"),
        ("seed", 2**63, "seed: Input should be less than 9223372036854775808"),
        ("seed", 2**64 - 1, "seed: Input should be less than 9223372036854775808"),
        ("data.seed", 2**64 - 1, "data.seed: Input should be less than 9223372036854775808"),
        ("bits", 9, "bits = 9: no SAWB coefficients for its k-bit grid's scale; allowed: 1, 2, 3, 4, 5, 6, 7, 8"),
        ("bits", 33, "bits = 33: no SAWB coefficients"),
        ("bits", 100, "bits = 100: no SAWB coefficients"),
        ("label", "a\nb", "label 'a\\nb': must not contain '\\n' (it names a row of the tables)"),
        ("label", "a|b", "label 'a|b': must not contain '|'"),
        ("eval_train", 201, "eval_train (201) must be <= the 200 training examples"),
    ],
)
def test_each_malformed_field_of_the_issue(tmp_path: Path, path: str, value: object, message: str) -> None:
    _run(tmp_path, _with(path, value), message)


def test_infinite_hyperparameters_of_every_method_are_refused(tmp_path: Path) -> None:
    for method, field in [
        ({"name": "askewsgd"}, "alpha"),
        ({"name": "askewsgd"}, "eps"),
        ({"name": "primal_dual"}, "dual_lr"),
        ({"name": "primal_dual"}, "init_multiplier"),
        ({"name": "proxquant"}, "lam"),
    ]:
        value = {"init": math.inf} if field == "eps" else math.inf
        config = {**BASE, "method": {**method, field: value}}
        _run(tmp_path, config, f"method.{field}")
    two_moons = {**BASE, "data": {"name": "two_moons", "n_train": 200, "n_test": 100, "noise": math.inf}}
    _run(tmp_path, two_moons, "data.noise: Input should be a finite number")
    moons_seed = {**BASE, "data": {"name": "two_moons", "n_train": 200, "n_test": 100, "seed": 2**32}}
    _run(tmp_path, moons_seed, "data.seed: Input should be less than 4294967296")


def test_milestones_beyond_the_run_are_refused(tmp_path: Path) -> None:
    config = {**BASE, "schedule": {"kind": "step", "milestones": [1, 2], "factor": 0.5}}
    _run(tmp_path, config, "schedule.milestones: 2 is not < epochs (2), so it would never apply")


def test_arrays_still_stand_for_tuples() -> None:
    cfg = validate_config({**BASE, "model": {"name": "linear", "keep_fp": ["biases"]}, "track": []})
    assert cfg.model.keep_fp == ("biases",) and validate_config(cfg.model_dump()) == cfg
    with pytest.raises(ConfigError, match="epochs: Input should be a valid integer"):
        validate_config({**BASE, "epochs": 2.0})


def test_checks_that_need_the_model(tmp_path: Path) -> None:
    linear = {**BASE, "model": {"name": "linear", "keep_fp": ["first"]}}
    _run(tmp_path, linear, "model.keep_fp = ['first']: leaves no quantized parameter in model 'linear'")
    resnet = {**BASE, "model": {"name": "resnet20"}}
    line = _run(tmp_path, resnet, "model 'resnet20' cannot take the inputs of data set 'logistic' (shape (10,))")
    assert "conv2d" in line


def test_sizes_of_a_file_backed_set_are_checked_once_loaded(tmp_path: Path) -> None:
    from data.formats import mnist_folder

    folder = mnist_folder(tmp_path / "mnist")  # 30 training images
    mnist = {"name": "mnist", "data_dir": str(folder)}
    model = {"name": "linear"}
    _run(tmp_path, {**BASE, "data": mnist, "model": model}, "batch_size (50) must be <= data.n_train (30)")
    small = {**BASE, "batch_size": 10, "eval_train": 31, "data": mnist, "model": model}
    _run(tmp_path, small, "eval_train (31) must be <= the 30 training examples")


@pytest.mark.parametrize("device", ["cuda", "mps"])
def test_a_device_named_in_the_file_is_checked_as_the_flag_is(tmp_path: Path, device: str) -> None:
    if (device == "cuda" and torch.cuda.is_available()) or (device == "mps" and torch.backends.mps.is_available()):
        pytest.skip(f"this machine has {device}")
    _run(tmp_path, {**BASE, "device": device}, f"c.toml: device = '{device}': this torch build sees no")


def test_sizes_no_machine_can_allocate_are_one_line(tmp_path: Path) -> None:
    huge = {**BASE, "data": {"name": "logistic", "n_train": 10**14, "n_test": 100}}
    _run(tmp_path, huge, "cannot allocate memory for the run (4,000,000,000,004,000 bytes for one tensor)")


def test_an_endless_run_is_refused(tmp_path: Path) -> None:
    _run(tmp_path, _with("epochs", 2**63), "epochs: Input should be less than or equal to 1000000")
