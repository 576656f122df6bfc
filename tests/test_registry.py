"""Open registries: a data set, a model and a method of your own, named in a TOML config."""

from pathlib import Path
from typing import Literal

import pytest
import torch
from pydantic import Field
from torch import nn
from typer.testing import CliRunner

import qnnlab
from qnnlab import registry
from qnnlab.cli import app
from qnnlab.config import ConfigError, load_config, validate_config
from qnnlab.data import DATASETS, DataConfig, Dataset
from qnnlab.methods import METHODS, BaseStep, MethodConfig
from qnnlab.nn.models import MODELS, ModelConfig
from qnnlab.optim import SGD
from qnnlab.registry import Registry, Schema, named_schema


@pytest.fixture
def plugins():
    """Registers ``ring`` (data), ``tiny`` (model) and ``plainsgd`` (method); unregisters them afterwards."""

    class RingData(DataConfig):
        name: Literal["ring"] = "ring"
        n: int = Field(60, ge=4)

    @qnnlab.register_dataset("ring", config=RingData)
    def ring(cfg: RingData) -> Dataset:
        gen = torch.Generator().manual_seed(cfg.seed)
        x = torch.randn(2 * cfg.n, 2, generator=gen)
        y = (x.norm(dim=1) > 1).float()
        return Dataset.from_tensors(x[: cfg.n], y[: cfg.n], x[cfg.n :], y[cfg.n :])

    @qnnlab.register_model("tiny")
    def tiny(cfg: ModelConfig, shape: tuple[int, ...], n_outputs: int) -> nn.Module:
        return nn.Linear(shape[0], n_outputs, bias=False)

    class PlainSGDConfig(MethodConfig):
        name: Literal["plainsgd"] = "plainsgd"
        lr: float = Field(0.5, gt=0)

    class PlainSGD(torch.optim.SGD):
        pass

    qnnlab.register_method("plainsgd", config=PlainSGDConfig, paper="none")(PlainSGD)
    yield
    for reg, name in ((DATASETS, "ring"), (MODELS, "tiny"), (METHODS, "plainsgd")):
        del reg._entries[name]


TOML = """
epochs = 2
batch_size = 20
[data]
name = "ring"
n = 40
[model]
name = "tiny"
[method]
name = "plainsgd"
lr = 0.25
"""


def test_a_toml_config_names_plugins_and_trains(plugins, tmp_path: Path) -> None:
    (tmp_path / "run.toml").write_text(TOML)
    cfg = load_config(tmp_path / "run.toml")
    assert (cfg.data.n, cfg.model.name, cfg.method.lr) == (40, "tiny", 0.25)
    assert cfg.model_dump()["data"] == {"name": "ring", "seed": 0, "n": 40}
    result = qnnlab.fit(tmp_path / "run.toml", results=tmp_path / "out")
    assert len(result.history) == 3 and "binary_optimum" in result.summary  # 2 binary weights: enumerated
    assert validate_config(cfg.model_dump()) == cfg  # round trip


def test_errors_list_the_registered_names(plugins) -> None:
    with pytest.raises(
        ConfigError, match=r"^data: Input tag 'rng' .* expected tags: 'logistic', .*'imagenet', 'ring'$"
    ):
        validate_config({"method": {"name": "sgd"}, "data": {"name": "rng"}})
    with pytest.raises(ConfigError, match=r"^data\.n: Input should be greater than or equal to 4 \(got 1\)$"):
        validate_config({"method": {"name": "sgd"}, "data": {"name": "ring", "n": 1}})
    with pytest.raises(ConfigError, match=r"^model\.width: Extra inputs are not permitted"):
        validate_config({"method": {"name": "sgd"}, "model": {"name": "tiny", "width": 3}})
    with pytest.raises(ConfigError, match=r"^method: name is required; choose from: 'sgd', .*'plainsgd'$"):
        validate_config({"method": {"lr": 0.1}})
    with pytest.raises(ConfigError, match=r"^method\.momentum: Extra inputs are not permitted"):
        validate_config({"method": {"name": "plainsgd", "momentum": 0.9}})  # its own schema, not BaseStep's


def test_default_schemas_and_name_checks(plugins) -> None:
    assert set(MODELS.get("tiny").config.model_fields) == {"name", "keep_fp"}
    assert MODELS.get("tiny").config().name == "tiny"
    bare = named_schema(DataConfig, "bare")
    assert set(bare.model_fields) == {"name", "seed"} and bare().name == "bare"
    assert issubclass(named_schema(BaseStep, "x"), BaseStep)

    class Wrong(DataConfig):
        name: Literal["other"] = "other"

    with pytest.raises(TypeError, match=r"Wrong must subclass DataConfig and declare name: Literal\['ring2'\]"):
        qnnlab.register_dataset("ring2", config=Wrong)
    with pytest.raises(TypeError, match="must subclass ModelConfig"):
        qnnlab.register_model("ring", config=Wrong)
    with pytest.raises(ValueError, match="dataset 'ring' is already registered"):
        qnnlab.register_dataset("ring")(lambda cfg: None)


def test_registry_names_sorted_or_in_order() -> None:
    reg: Registry[int] = Registry("thing")
    reg.register("b", 1)
    reg.register("a", 2)
    assert reg.names() == ["a", "b"] and reg.names(sort=False) == ["b", "a"] and list(reg) == ["a", "b"]
    with pytest.raises(KeyError, match="unknown thing 'c'; choose from: a, b"):
        reg.get("c")


def test_plugins_load_from_entry_points(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A package that advertises a module in the qnnlab.plugins group is imported before validation."""
    (tmp_path / "qnn_plugin_demo.py").write_text(
        "import qnnlab\nfrom qnnlab.data.synthetic import logistic_toy\n"
        "qnnlab.register_dataset('demo')(lambda cfg: logistic_toy(4, 50, 10, seed=cfg.seed))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))

    class EntryPoint:
        def load(self):
            import qnn_plugin_demo

            return qnn_plugin_demo

    groups = []
    monkeypatch.setattr(registry, "entry_points", lambda group: groups.append(group) or [EntryPoint()])
    monkeypatch.setattr(registry, "_plugins_loaded", False)
    try:
        (tmp_path / "demo.toml").write_text(
            'epochs = 1\nbatch_size = 10\n[data]\nname = "demo"\n[method]\nname = "sgd"'
        )
        result = CliRunner().invoke(app, ["run", str(tmp_path / "demo.toml"), "-o", str(tmp_path / "out"), "-q"])
        assert result.exit_code == 0, result.output
        assert groups == ["qnnlab.plugins"]
        validate_config({"method": {"name": "sgd"}, "data": {"name": "demo"}})
        assert groups == ["qnnlab.plugins"]  # once per process
    finally:
        DATASETS._entries.pop("demo", None)


def test_schema_is_strict_and_frozen() -> None:
    class T(Schema):
        a: int = 1

    with pytest.raises(ValueError, match="Extra inputs"):
        T(b=2)
    with pytest.raises(ValueError, match="frozen"):
        T().a = 2  # type: ignore[misc]
    assert hash(T()) == hash(T())


def test_the_method_of_an_optimizer() -> None:
    from qnnlab.methods import method_name

    p = [nn.Parameter(torch.zeros(2, 2))]
    assert method_name(SGD(p, lr=0.1)) == "sgd" and method_name(torch.optim.Adam(p)) == "adam"
