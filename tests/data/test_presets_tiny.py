"""The file-backed presets (MNIST, CIFAR-10, ImageNet) run correctly on the CPU at tiny sizes, on tiny files."""

from pathlib import Path
from typing import Any

import pytest
import torch
from formats import cifar_folder, image_tree, mnist_folder
from typer.testing import CliRunner

from qnnlab.cli import app
from qnnlab.config import RunConfig
from qnnlab.experiments.presets import preset_runs
from qnnlab.train.loop import fit

runner = CliRunner()

TINY_MODEL: dict[str, dict[str, Any]] = {
    "mlp": {"width": 16},
    "bc_vgg": {"width": 1 / 32},
    "resnet20": {"width": 4},
    "resnet18": {"width": 2},
}


def tiny(cfg: RunConfig, folder: Path) -> RunConfig:
    """``cfg`` on the tiny files in ``folder``: small widths, 2 epochs, ε annealed from the start."""
    data = {**cfg.data.model_dump(), "data_dir": str(folder)}
    if cfg.data.name == "imagenet":
        data |= {"image_size": 16, "resize": 20, "workers": 0}
    method = cfg.method.model_dump()
    if "eps" in method:
        method["eps"] |= {"hold": 0, "decay": 0.1}
    schedule = cfg.schedule.model_dump()
    if "milestones" in schedule:  # a milestone past the 2 epochs would be refused
        schedule["milestones"] = [m for m in schedule["milestones"] if m < 2]
    return cfg.with_(
        data=data,
        model={**cfg.model.model_dump(), **TINY_MODEL[cfg.model.name]},
        method=method,
        schedule=schedule,
        epochs=2,
        batch_size=4,
        eval_train=6,  # the smallest tiny set (imagenet) has 6 training images
        eval_batch_size=5,
    )


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("data")
    return {
        "mnist": mnist_folder(root / "mnist", 12, 6),
        "fashion_mnist": mnist_folder(root / "fashion", 12, 6),
        "cifar10": cifar_folder(root / "cifar", per_batch=2),
        "imagenet": image_tree(root / "imagenet", per_class=2),
    }


@pytest.mark.parametrize("preset", ["fashion-mlp", "mnist-mlp", "cifar10-vgg", "cifar10-resnet20", "imagenet-resnet18"])
def test_preset_runs_on_tiny_files(preset: str, folders: dict[str, Path]) -> None:
    for cfg in preset_runs(preset, 1):
        small = tiny(cfg, folders[cfg.data.name])
        result = fit(small)
        s = result.summary
        assert len(result.history) == 3 and 0 <= s["q_test_acc"] <= 1 and s["on_grid"], (preset, cfg.label)
        assert s["q_test_loss"] > 0 and "gap" not in s  # too many weights to enumerate
        assert "eps" not in s or s["eps"] < 1.0


def test_augmented_runs_are_deterministic(folders: dict[str, Path]) -> None:
    cfg = tiny(next(c for c in preset_runs("cifar10-resnet20", 1) if c.label == "binaryconnect"), folders["cifar10"])
    assert cfg.data.augment
    assert fit(cfg).history == fit(cfg).history


def test_cli_data_dir_device_and_data_errors(tmp_path: Path, folders: dict[str, Path]) -> None:
    result = runner.invoke(app, ["compare", "cifar10-vgg", "--seeds", "1", "--data-dir", str(tmp_path), "-q"])
    assert result.exit_code == 2
    assert "data_batch_1: no such file; a CIFAR-10 folder holds" in result.output
    result = runner.invoke(app, ["compare", "two-moons", "--data-dir", str(tmp_path), "-q"])
    assert result.exit_code == 2 and "--data-dir: data set 'two_moons' reads no files" in result.output
    if not torch.cuda.is_available():
        result = runner.invoke(app, ["compare", "two-moons", "--device", "cuda", "-q"])
        assert result.exit_code == 2 and "--device cuda: this torch build sees no CUDA device" in result.output
