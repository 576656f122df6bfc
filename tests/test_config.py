"""Bad configs fail before training with one line naming the field and the allowed values."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from qnnlab.cli import app
from qnnlab.config import ConfigError, load_config, validate_config

GOOD = """
label = "demo"
epochs = 3
batch_size = 100

[data]
name = "logistic"
n_train = 600
n_test = 100

[method]
name = "askewsgd"
lr = 0.5
alpha = 1.0
eps = { init = 1.0, hold = 1, decay = 0.5, floor = 1e-3 }
"""

BAD = [
    ({"method": {"name": "sgd", "lr": 0}}, r"^method\.lr: Input should be greater than 0 \(got 0\)$"),
    ({"method": {"name": "sgd", "lr": -1.0}}, r"^method\.lr: Input should be greater than 0"),
    ({"method": {"name": "askewsgd", "eps": {"init": 0.0}}}, r"^method\.eps\.init: Input should be greater than 0"),
    ({"method": {"name": "askewsgd", "alpha": 0}}, r"^method\.alpha: Input should be greater than 0"),
    ({"method": {"name": "askewsgd", "alpha": -2}}, r"^method\.alpha: Input should be greater than 0"),
    ({"method": {"name": "sgd"}, "bits": 0}, r"^bits: Input should be greater than or equal to 1 \(got 0\)$"),
    (
        {"method": {"name": "askew"}},
        r"^method: Input tag 'askew' .* expected tags: 'sgd', 'binaryconnect', 'askewsgd'(, '\w+')*$",
    ),
    ({"method": {"name": "sgd", "lr": "fast"}}, r"^method\.lr: Input should be a valid number"),
    ({"method": {"name": "sgd", "momentum": 1.5}}, r"^method\.momentum: Input should be less than 1"),
    ({"method": {"name": "sgd", "learning_rate": 0.1}}, r"^method\.learning_rate: Extra inputs are not permitted"),
    ({"method": {"name": "sgd"}, "epoch": 3}, r"^epoch: Extra inputs are not permitted"),
    ({"method": {"name": "sgd"}, "epochs": 0}, r"^epochs: Input should be greater than or equal to 1"),
    ({"method": {"name": "sgd"}, "batch_size": 7000}, r"batch_size \(7000\) must be <= data\.n_train \(6000\)"),
    (
        {"method": {"name": "binaryconnect"}, "bits": 2},
        r"bits = 2 is not supported by method 'binaryconnect'; allowed: 1",
    ),
    ({"method": {"name": "askewsgd", "eps": {"hold": 50}}}, r"method\.eps\.hold \(50\) must be < epochs \(50\)"),
    (
        {"method": {"name": "askewsgd", "eps": {"decay": 1.5}}},
        r"^method\.eps\.decay: Input should be less than or equal to 1",
    ),
    ({"method": {"name": "sgd"}, "data": {"name": "cifar"}}, r"^data: Input tag 'cifar' .* expected tags: 'logistic'"),
    (
        {"method": {"name": "sgd"}, "schedule": {"kind": "cosine"}},
        r"expected tags: 'constant', 'step', 'inverse_power'",
    ),
    ({}, r"^method: Field required$"),
]


@pytest.mark.parametrize(("data", "pattern"), BAD)
def test_invalid_field_is_named(data: dict, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern) as err:
        validate_config(data)
    assert "\n" not in str(err.value)


def test_good_config_loads(tmp_path: Path) -> None:
    path = tmp_path / "good.toml"
    path.write_text(GOOD)
    cfg = load_config(path)
    assert cfg.method.eps.decay == 0.5
    assert cfg.steps_per_epoch() == 6
    assert cfg.lr_schedule()(100) == 0.5


def test_label_defaults_to_method_name() -> None:
    assert validate_config({"method": {"name": "binaryconnect"}}).label == "binaryconnect"


def test_step_schedule_milestones_are_epochs() -> None:
    cfg = validate_config(
        {"method": {"name": "sgd", "lr": 1.0}, "schedule": {"kind": "step", "milestones": [2], "factor": 0.5}}
    )
    # 6000 samples / batch 100 = 60 iterations per epoch
    assert [cfg.lr_schedule()(k) for k in (119, 120)] == [1.0, 0.5]


runner = CliRunner()


@pytest.mark.parametrize(("data", "pattern"), BAD[:8])
def test_cli_prints_one_line_and_exits_2(tmp_path: Path, data: dict, pattern: str) -> None:
    import tomli_w

    path = tmp_path / "bad.toml"
    path.write_text(tomli_w.dumps({"epochs": 50, **data}) if data else "")
    result = runner.invoke(app, ["run", str(path), "--results", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith(f"error: {path}: ")
    assert not (tmp_path / "out").exists()  # failed before anything was trained or written


def test_cli_reports_toml_syntax_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.toml"
    bad.write_text("epochs = = 3")
    result = runner.invoke(app, ["run", str(bad)])
    assert result.exit_code == 2 and "not valid TOML" in result.output
    result = runner.invoke(app, ["run", str(tmp_path / "nope.toml")])
    assert result.exit_code == 2 and "no such file" in result.output


def test_cli_unknown_preset_lists_choices() -> None:
    result = runner.invoke(app, ["compare", "moons", "--seeds", "1"])
    assert result.exit_code == 2
    assert "unknown preset 'moons'; choose from: breast-cancer, cifar10-resnet20, cifar10-vgg, digits" in result.output
