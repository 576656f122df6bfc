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

from qnnlab.methods import METHODS, MethodConfig
from qnnlab.schedules import Schedule, constant, inverse_power, step_decay

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


DataConfig = Annotated[LogisticData, Field(discriminator="name")]


class ModelConfig(_Strict):
    name: Literal["linear"] = "linear"
    bias: bool = False


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


ScheduleConfig = Annotated[ConstantSchedule | StepSchedule | InversePowerSchedule, Field(discriminator="kind")]


class RunConfig(_Strict):
    label: str = Field("", description="row name in tables; defaults to the method name")
    seed: int = Field(0, ge=0, description="training seed: initialization, data order, sampling")
    epochs: int = Field(50, ge=1)
    batch_size: int = Field(100, ge=1)
    bits: int = Field(1, ge=1, description="grid the weights are judged on")
    data: DataConfig = LogisticData()
    model: ModelConfig = ModelConfig()
    method: MethodConfig
    schedule: ScheduleConfig = ConstantSchedule()
    track: tuple[Literal["tensorboard", "wandb"], ...] = Field(
        (), description="trackers that also get every epoch's metrics (optional extras, see qnnlab.tracking)"
    )

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
        if self.batch_size > self.data.n_train:
            raise ValueError(f"batch_size ({self.batch_size}) must be <= data.n_train ({self.data.n_train})")
        return self

    def steps_per_epoch(self) -> int:
        return -(-self.data.n_train // self.batch_size)

    def lr_schedule(self) -> Schedule:
        """``γ_k`` over iterations ``k``; step milestones are given in epochs."""
        s, lr = self.schedule, self.method.lr
        if isinstance(s, StepSchedule):
            return step_decay(lr, [m * self.steps_per_epoch() for m in s.milestones], s.factor)
        if isinstance(s, InversePowerSchedule):
            return inverse_power(lr, s.tau, s.power)
        return constant(lr)

    def with_(self, **changes: Any) -> RunConfig:
        """A validated copy with some top-level fields replaced."""
        return validate_config({**self.model_dump(), **changes})


class ConfigError(ValueError):
    """A config that failed validation; ``str()`` is one line naming the fields."""


_TAGGED = ("data", "method", "schedule")


def format_validation_error(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = list(e["loc"])
        if len(loc) >= 2 and loc[0] in _TAGGED:
            del loc[
                1
            ]  # the union tag pydantic puts in the path ("method.sgd.lr" -> "method.lr", "method.sgd" -> "method")
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
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    try:
        return validate_config(data)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
