"""The model zoo: shapes, parameter counts against the papers, and which parameters are quantized."""

import pytest
import torch

from qnnlab.config import (
    BCVGGModel,
    ConfigError,
    LinearModel,
    MLPModel,
    MoonsMLP,
    ResNet18Model,
    ResNet20Model,
    validate_config,
)
from qnnlab.nn.models import build_model, constrained_names, param_groups


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    ("cfg", "shape", "n_out"),
    [
        (LinearModel(), (10,), 1),
        (MoonsMLP(), (2,), 1),
        (MLPModel(width=32, depth=2), (1, 28, 28), 10),
        (BCVGGModel(width=1 / 16), (3, 32, 32), 10),
        (ResNet20Model(width=4), (3, 32, 32), 10),
        (ResNet18Model(width=4), (3, 32, 32), 7),
    ],
)
def test_forward_shapes(cfg, shape, n_out: int) -> None:
    model = build_model(cfg, shape, n_out)
    assert model(torch.randn(5, *shape)).shape == (5, n_out)


def test_parameter_counts_match_the_papers() -> None:
    # the 2-moons net has exactly 9 weights (2·3 + 3·1), all quantized, and BN without parameters
    moons = build_model(MoonsMLP(), 2)
    assert n_params(moons) == 9 and constrained_names(moons) == ["1.weight", "4.weight"]
    assert [m.momentum for m in moons.modules() if isinstance(m, torch.nn.BatchNorm1d)] == [0.15, 0.15]
    # He et al.: ResNet-20 has 0.27M parameters; torchvision's ResNet-18 has 11,689,512
    assert n_params(build_model(ResNet20Model(), (3, 32, 32), 10)) == 269_722
    assert n_params(build_model(ResNet18Model(), (3, 224, 224), 1000)) == 11_689_512
    # BinaryConnect's CIFAR-10 net: six 3×3 convs, 8192→1024→1024→10, BN (γ, β) after each of the 9 layers
    convs = [3 * 128, 128 * 128, 128 * 256, 256 * 256, 256 * 512, 512 * 512]
    weights = 9 * sum(convs) + 8192 * 1024 + 1024 * 1024 + 1024 * 10
    norms = 2 * (128 + 128 + 256 + 256 + 512 + 512 + 1024 + 1024 + 10)
    assert n_params(build_model(BCVGGModel(), (3, 32, 32), 10)) == weights + norms
    # BinaryConnect's MNIST MLP 784–2048–2048–2048–10
    mlp = build_model(MLPModel(), (1, 28, 28), 10)
    assert n_params(mlp) == 784 * 2048 + 2 * 2048 * 2048 + 2048 * 10 + 2 * (3 * 2048 + 10)


@pytest.mark.parametrize(
    ("keep_fp", "expected"),
    [
        (("biases", "norms"), ["1.weight", "4.weight"]),
        (("first", "biases", "norms"), ["4.weight"]),
        (("last", "biases", "norms"), ["1.weight"]),
        (("norms",), ["1.weight", "1.bias", "4.weight", "4.bias"]),
        (("biases",), ["1.weight", "2.weight", "2.bias", "4.weight", "5.weight", "5.bias"]),
        (("last",), ["1.weight", "1.bias", "2.weight", "2.bias", "5.weight", "5.bias"]),
        ((), ["1.weight", "1.bias", "2.weight", "2.bias", "4.weight", "4.bias", "5.weight", "5.bias"]),
    ],
)
def test_keep_fp_by_hand(keep_fp: tuple[str, ...], expected: list[str]) -> None:
    # Flatten, Linear(bias), BN, ReLU, Linear(bias), BN
    model = build_model(MLPModel(width=3, depth=1, bias=True), 4, 2)
    assert constrained_names(model, keep_fp) == expected
    groups = param_groups(model, keep_fp)
    assert sum(len(g["params"]) for g in groups) == 8
    assert [g["constrained"] for g in groups] == ([True, False] if len(expected) < 8 else [True])


def test_askewsgd_imagenet_split_quantizes_only_inner_3x3_convs() -> None:
    model = build_model(ResNet18Model(width=4), (3, 32, 32), 5)
    names = constrained_names(model, ("first", "last", "downsample", "biases", "norms"))
    assert len(names) == 16 and all(n.endswith(("conv1.weight", "conv2.weight")) for n in names)
    assert all(dict(model.named_parameters())[n].shape[-2:] == (3, 3) for n in names)
    default = constrained_names(model)
    assert "0.weight" in default and "14.weight" in default  # stem and final layer
    assert sum(".downsample." in n for n in default) == 3


def test_resnet20_shortcuts_have_no_parameters() -> None:
    model = build_model(ResNet20Model(width=4), (3, 8, 8), 10)
    assert not any("downsample" in n for n, _ in model.named_parameters())
    assert len(constrained_names(model)) == 1 + 18 + 1  # stem, 9 blocks × 2 convs, final layer


def test_model_config_errors() -> None:
    base = {"method": {"name": "sgd"}}
    with pytest.raises(ConfigError, match=r"^model: width \(5\) must be even"):
        validate_config({**base, "model": {"name": "resnet20", "width": 5}})
    with pytest.raises(ConfigError, match=r"model\.keep_fp\.0: Input should be 'first', 'last', 'biases', 'norms'"):
        validate_config({**base, "model": {"name": "mlp", "keep_fp": ["head"]}})
    with pytest.raises(ConfigError, match=r"^model: Input tag 'vgg16' .* expected tags: 'linear', 'moons_mlp', 'mlp'"):
        validate_config({**base, "model": {"name": "vgg16"}})
    with pytest.raises(ConfigError, match=r"^device: String should match pattern"):
        validate_config({**base, "device": "gpu"})
    with pytest.raises(ConfigError, match=r"image_size \(300\) must be <= resize \(256\)"):
        validate_config({**base, "batch_size": 1, "data": {"name": "imagenet", "image_size": 300}})
