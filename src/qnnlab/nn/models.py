"""Models built by name, and which of their parameters are quantized.

Every model takes its input shape and output width from the data set; each builder reads
its config, a :class:`ModelConfig` registered beside it (``@register_model("mlp", config=MLPModel)``),
so a model of your own is one decorated function and ``[model] name = "..."`` in a TOML config
names it. Weights (tensors of two or more dimensions) are
quantized unless ``keep_fp`` names them: ``"first"`` / ``"last"`` (the first / last layer
that owns such a weight, with its bias), ``"downsample"`` (1×1 shortcut convolutions),
``"biases"`` and ``"norms"`` (normalization parameters, which are quantized only when
left out of ``keep_fp``).

References:
    Courbariaux, Bengio & David, "BinaryConnect: training deep neural networks with binary
    weights during propagations", NeurIPS 2015, arXiv:1511.00363 (the MLP and the CIFAR-10
    network). He, Zhang, Ren & Sun, "Deep residual learning for image recognition", CVPR
    2016, arXiv:1512.03385 (ResNet-20 with parameter-free shortcuts, ResNet-18).
    Leconte, Schechtman & Moulines, "ASkewSGD", AISTATS 2023, arXiv:2211.03741 (the 2-moons
    network of the authors' code).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal, TypeVar

import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor, nn

from qnnlab.registry import Registry, Schema, named_schema

__all__ = [
    "DEFAULT_KEEP_FP",
    "MODELS",
    "BCVGGModel",
    "BasicBlock",
    "LinearModel",
    "MLPModel",
    "ModelConfig",
    "ModelInfo",
    "MoonsMLP",
    "ResNet18Model",
    "ResNet20Model",
    "build_model",
    "constrained_names",
    "param_groups",
    "register_model",
]

DEFAULT_KEEP_FP: tuple[str, ...] = ("biases", "norms")
KeepFP = Literal["first", "last", "biases", "norms", "downsample"]


class ModelConfig(Schema):
    """The config table of a model: ``name`` is its registry key, ``keep_fp`` what stays in full precision."""

    name: str
    keep_fp: tuple[KeepFP, ...] = Field(
        DEFAULT_KEEP_FP,
        description="parameters trained in full precision: the first / last weight layer, biases, norm layers, "
        "1×1 downsampling convolutions; every other weight is quantized",
    )


Builder = Callable[[Any, tuple[int, ...], int], nn.Module]


@dataclass(frozen=True)
class ModelInfo:
    """A registered model: its config schema and its builder ``(config, input_shape, n_outputs) -> nn.Module``."""

    name: str
    config: type[ModelConfig]
    build: Builder


MODELS: Registry[ModelInfo] = Registry("model")
B = TypeVar("B", bound=Builder)


def register_model(name: str, *, config: type[ModelConfig] | None = None) -> Callable[[B], B]:
    """Register the decorated builder ``(config, input_shape, n_outputs) -> nn.Module`` as model ``name``.

    ``config`` is the schema of its table; it must declare ``name: Literal[name] = name``.
    Without one the table takes only ``name`` and ``keep_fp``.
    """
    schema = named_schema(ModelConfig, name, config)
    return MODELS.decorator(name, lambda build: ModelInfo(name, schema, build))


def build_model(cfg: ModelConfig, input_shape: int | Sequence[int], n_outputs: int = 1) -> nn.Module:
    """The model a registered config describes, for inputs of ``input_shape``."""
    shape = (input_shape,) if isinstance(input_shape, int) else tuple(input_shape)
    return MODELS.get(cfg.name).build(cfg, shape, n_outputs)


class LinearModel(ModelConfig):
    name: Literal["linear"] = "linear"
    bias: bool = False


@register_model("linear", config=LinearModel)
def _linear(cfg: LinearModel, shape: tuple[int, ...], n_outputs: int) -> nn.Module:
    layer = nn.Linear(math.prod(shape), n_outputs, bias=cfg.bias)
    return layer if len(shape) == 1 else nn.Sequential(nn.Flatten(), layer)


class MoonsMLP(ModelConfig):
    """The 2-moons network of the ASkewSGD code: ``d→h→1``, no biases, BatchNorm (affine=False) after both layers."""

    name: Literal["moons_mlp"] = "moons_mlp"
    hidden: int = Field(3, ge=1)


@register_model("moons_mlp", config=MoonsMLP)
def _moons_mlp(cfg: MoonsMLP, shape: tuple[int, ...], n_outputs: int) -> nn.Module:
    """``Linear → BN → ReLU → Linear → BN`` without biases; BN affine=False, momentum 0.15, eps 1e-4."""
    norm = partial(nn.BatchNorm1d, eps=1e-4, momentum=0.15, affine=False)
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(math.prod(shape), cfg.hidden, bias=False),
        norm(cfg.hidden),
        nn.ReLU(),
        nn.Linear(cfg.hidden, n_outputs, bias=False),
        norm(n_outputs),
    )


class MLPModel(ModelConfig):
    """BinaryConnect's MLP: ``depth`` × (Linear → BatchNorm → ReLU), then Linear → BatchNorm."""

    name: Literal["mlp"] = "mlp"
    width: int = Field(2048, ge=1)
    depth: int = Field(3, ge=1)
    bias: bool = False


@register_model("mlp", config=MLPModel)
def _mlp(cfg: MLPModel, shape: tuple[int, ...], n_outputs: int) -> nn.Module:
    """BinaryConnect's MLP: ``depth`` × (Linear → BN → ReLU), then Linear → BN (3×2048 for MNIST)."""
    layers: list[nn.Module] = [nn.Flatten()]
    width_in = math.prod(shape)
    for _ in range(cfg.depth):
        layers += [nn.Linear(width_in, cfg.width, bias=cfg.bias), nn.BatchNorm1d(cfg.width), nn.ReLU()]
        width_in = cfg.width
    layers += [nn.Linear(width_in, n_outputs, bias=cfg.bias), nn.BatchNorm1d(n_outputs)]
    return nn.Sequential(*layers)


class BCVGGModel(ModelConfig):
    """BinaryConnect's CIFAR-10 net: 2×128C3–MP2–2×256C3–MP2–2×512C3–MP2–2×1024FC–out, BatchNorm after every layer."""

    name: Literal["bc_vgg"] = "bc_vgg"
    width: float = Field(1.0, gt=0, le=4, description="multiplier of every channel and hidden-unit count")


@register_model("bc_vgg", config=BCVGGModel)
def _bc_vgg(cfg: BCVGGModel, shape: tuple[int, ...], n_outputs: int) -> nn.Module:
    """2×128C3–MP2–2×256C3–MP2–2×512C3–MP2–2×1024FC–out; each layer (then pool) → BN → ReLU, as in BinaryConnect."""
    c_in, h, w = shape

    def scaled(n: int) -> int:
        return max(1, round(n * cfg.width))

    layers: list[nn.Module] = []
    for c in (128, 256, 512):
        for pool in (False, True):
            layers += [nn.Conv2d(c_in, scaled(c), 3, padding=1, bias=False)]
            layers += [nn.MaxPool2d(2)] if pool else []
            layers += [nn.BatchNorm2d(scaled(c)), nn.ReLU()]
            c_in = scaled(c)
    width_in = c_in * (h // 8) * (w // 8)
    layers += [nn.Flatten()]
    for _ in range(2):
        layers += [nn.Linear(width_in, scaled(1024), bias=False), nn.BatchNorm1d(scaled(1024)), nn.ReLU()]
        width_in = scaled(1024)
    layers += [nn.Linear(width_in, n_outputs, bias=False), nn.BatchNorm1d(n_outputs)]
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    """``relu(bn(conv3(relu(bn(conv3(x))))) + shortcut(x))``; the shortcut is the identity when shapes agree.

    Otherwise ``shortcut="pad"`` subsamples and zero-pads the channels (He et al.'s option A,
    no parameters: the CIFAR ResNets) and ``"conv"`` is a strided 1×1 convolution with BN
    (option B, named ``downsample``: the ImageNet ResNets).
    """

    def __init__(self, c_in: int, c_out: int, stride: int, shortcut: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.stride, self.pad = stride, (c_out - c_in) // 2
        changes = stride != 1 or c_in != c_out
        self.downsample = (
            nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))
            if changes and shortcut == "conv"
            else None
        )
        self.subsample = changes and shortcut == "pad"

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            x = self.downsample(x)
        elif self.subsample:
            x = F.pad(x[:, :, :: self.stride, :: self.stride], (0, 0, 0, 0, self.pad, self.pad))
        return F.relu(out + x)


def _stages(c_in: int, widths: Sequence[int], blocks: int, shortcut: str) -> list[nn.Module]:
    layers = []
    for i, c in enumerate(widths):
        for j in range(blocks):
            layers.append(BasicBlock(c_in, c, 2 if i > 0 and j == 0 else 1, shortcut))
            c_in = c
    return layers


class ResNet20Model(ModelConfig):
    """He et al.'s CIFAR ResNet-20 (3 stages × 3 basic blocks, parameter-free shortcuts), ProxQuant's setting."""

    name: Literal["resnet20"] = "resnet20"
    width: int = Field(16, ge=2, description="channels of the first stage (16 in the paper); must be even")

    @model_validator(mode="after")
    def _even(self) -> ResNet20Model:
        if self.width % 2:
            raise ValueError(f"width ({self.width}) must be even (the shortcuts pad channels symmetrically)")
        return self


@register_model("resnet20", config=ResNet20Model)
def _resnet20(cfg: ResNet20Model, shape: tuple[int, ...], n_outputs: int) -> nn.Module:
    """3×3 stem (w channels), 3 stages × 3 blocks of w, 2w, 4w channels, global average pool, linear."""
    w = cfg.width
    return nn.Sequential(
        nn.Conv2d(shape[0], w, 3, padding=1, bias=False),
        nn.BatchNorm2d(w),
        nn.ReLU(),
        *_stages(w, (w, 2 * w, 4 * w), 3, "pad"),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4 * w, n_outputs),
    )


class ResNet18Model(ModelConfig):
    """ResNet-18 for ImageNet (He et al. 2016; torchvision's layout: 7×7 stem, 1×1 downsampling shortcuts)."""

    name: Literal["resnet18"] = "resnet18"
    width: int = Field(64, ge=1, description="channels of the first stage (64 in the paper)")


@register_model("resnet18", config=ResNet18Model)
def _resnet18(cfg: ResNet18Model, shape: tuple[int, ...], n_outputs: int) -> nn.Module:
    """7×7/2 stem, 3×3/2 max pool, 4 stages × 2 blocks of w, 2w, 4w, 8w channels, average pool, linear."""
    w = cfg.width
    return nn.Sequential(
        nn.Conv2d(shape[0], w, 7, stride=2, padding=3, bias=False),
        nn.BatchNorm2d(w),
        nn.ReLU(),
        nn.MaxPool2d(3, stride=2, padding=1),
        *_stages(w, (w, 2 * w, 4 * w, 8 * w), 2, "conv"),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8 * w, n_outputs),
    )


_NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


def constrained_names(model: nn.Module, keep_fp: Sequence[str] = DEFAULT_KEEP_FP) -> list[str]:
    """Names of the quantized parameters (see the module docstring for ``keep_fp``).

    With the default, these are the weights of two or more dimensions; biases and
    normalization parameters stay in full precision. Other one-dimensional parameters
    (scales, thresholds) are never quantized.
    """
    layers = [n for n, m in model.named_modules() if any(p.dim() >= 2 for p in m.parameters(recurse=False))]
    first, last = (layers[0], layers[-1]) if layers else (None, None)
    names = []
    for mod_name, module in model.named_modules():
        for p_name, p in module.named_parameters(recurse=False):
            if isinstance(module, _NORMS):
                kinds = {"norms"}
            elif p_name == "bias":
                kinds = {"biases"}
            elif p.dim() >= 2:
                kinds = set()
            else:
                continue
            kinds |= {tag for tag, hit in (("first", first), ("last", last)) if hit == mod_name}
            if "downsample" in mod_name.split("."):
                kinds.add("downsample")
            if not kinds & set(keep_fp):
                names.append(f"{mod_name}.{p_name}" if mod_name else p_name)
    return names


def param_groups(model: nn.Module, keep_fp: Sequence[str] = DEFAULT_KEEP_FP) -> list[dict[str, Any]]:
    """``[{quantized weights, constrained=True}, {the rest, constrained=False}]`` (empty groups dropped)."""
    quantized = set(constrained_names(model, keep_fp))
    named = list(model.named_parameters())
    groups = [
        {"params": [p for n, p in named if n in quantized], "constrained": True},
        {"params": [p for n, p in named if n not in quantized], "constrained": False},
    ]
    return [g for g in groups if g["params"]]
