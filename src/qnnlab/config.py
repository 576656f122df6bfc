"""Run configuration: pydantic models, TOML loading, and one-line validation errors.

A run is one method trained on one data set with one seed. Every table forbids unknown
keys; every number carries its allowed range; nothing is coerced (``epochs = true`` and
``lr = "0.5"`` are errors) and every float is finite; errors name the field and what is
allowed. Sizes that depend on the data (``batch_size``, ``eval_train`` against ``n_train``)
are checked here when the config states the size, else once the data are loaded
(:func:`check_sizes`).
The ``data``, ``model`` and ``method`` tables are validated against the schema registered
under their ``name`` (:func:`qnnlab.register_dataset`, :func:`qnnlab.register_model`,
:func:`qnnlab.register_method`; each schema lives beside its loader, builder or optimizer), so
a plugin's names are valid as soon as it is imported.

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

Any field can be changed afterwards by its dotted path, validated like the file itself
(:func:`override`; ``qnnlab run --set method.lr=0.5``)::

    cfg = override(cfg, {"method.lr": 0.5, "method.eps.hold": 5, "validation": {"size": 0.1}})
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, model_validator

from qnnlab.data import DATASETS, DataConfig, ValidationSplit
from qnnlab.data.bundled import BreastCancerData, DigitsData, MNIST5kData
from qnnlab.data.cifar import CIFAR10Data
from qnnlab.data.idx import FashionMNISTData, MNISTData
from qnnlab.data.imagefolder import ImageNetData
from qnnlab.data.synthetic import LogisticData, TwoMoonsData
from qnnlab.io import describe_os_error
from qnnlab.methods import METHODS, MethodConfig
from qnnlab.nn.models import (
    MODELS,
    BCVGGModel,
    LinearModel,
    MLPModel,
    ModelConfig,
    MoonsMLP,
    ResNet18Model,
    ResNet20Model,
)
from qnnlab.quant.scales import SAWB_COEFFICIENTS
from qnnlab.registry import Schema, load_plugins, registered
from qnnlab.schedules import Schedule, constant, exponential, inverse_power, step_decay

__all__ = [
    "BCVGGModel",
    "BreastCancerData",
    "CIFAR10Data",
    "ConfigError",
    "DigitsData",
    "FashionMNISTData",
    "ImageNetData",
    "LinearModel",
    "LogisticData",
    "MLPModel",
    "MNIST5kData",
    "MNISTData",
    "MoonsMLP",
    "ResNet18Model",
    "ResNet20Model",
    "RunConfig",
    "TwoMoonsData",
    "ValidationSplit",
    "check_sizes",
    "format_validation_error",
    "load_config",
    "override",
    "parse_overrides",
    "read_toml",
    "validate_config",
]


class ConstantSchedule(Schema):
    kind: Literal["constant"] = "constant"


class StepSchedule(Schema):
    """Multiply the step by ``factor`` at each epoch in ``milestones``."""

    kind: Literal["step"] = "step"
    milestones: list[Annotated[int, Field(ge=0)]] = Field(default_factory=list)
    factor: float = Field(0.1, gt=0)


class InversePowerSchedule(Schema):
    """``γ_k = γ₀/(1 + k/τ)^p`` over iterations ``k``."""

    kind: Literal["inverse_power"] = "inverse_power"
    tau: float = Field(100.0, gt=0)
    power: float = Field(1.0, ge=0)


class ExponentialSchedule(Schema):
    """``γ_k = γ₀·(γ_end/γ₀)^(k/K)`` over the run's ``K`` iterations (BinaryConnect's LR_start → LR_fin)."""

    kind: Literal["exponential"] = "exponential"
    final_lr: float = Field(gt=0, description="γ_end, reached at the last iteration")


ScheduleConfig = Annotated[
    ConstantSchedule | StepSchedule | InversePowerSchedule | ExponentialSchedule, Field(discriminator="kind")
]


class RunConfig(Schema):
    label: str = Field("", description="row name in tables (no newline, no '|'); defaults to the method name")
    seed: int = Field(0, ge=0, lt=2**63, description="training seed: initialization, data order, sampling")
    epochs: int = Field(50, ge=1, le=1_000_000, description="passes over the training data")
    batch_size: int = Field(100, ge=1)
    bits: int = Field(1, ge=1, description="grid the weights are judged on")
    # None: the data are passed to qnnlab.fit as an object (the run store describes them)
    data: registered(DATASETS, DataConfig, optional=True) = LogisticData()  # type: ignore[valid-type]
    model: registered(MODELS, ModelConfig) = LinearModel()  # type: ignore[valid-type]
    method: registered(METHODS, MethodConfig)  # type: ignore[valid-type]
    schedule: ScheduleConfig = ConstantSchedule()
    track: tuple[Literal["tensorboard", "wandb"], ...] = Field(
        (), description="trackers that also get every epoch's metrics (optional extras, see qnnlab.tracking)"
    )
    device: str = Field("cpu", pattern=r"^(cpu|cuda(:\d+)?|mps)$", description="where data and model live")
    eval_train: int | None = Field(
        None, ge=1, description="training examples the per-epoch train metrics use (a fixed subset); None: all"
    )
    eval_batch_size: int = Field(1000, ge=1, le=10**9, description="examples per forward pass when evaluating")
    validation: ValidationSplit | None = Field(
        None, description="a validation split carved from the training data, evaluated every epoch; None: none"
    )
    checkpoint_every: int = Field(
        1, ge=0, description="epochs between checkpoints (resume continues from the last); 0: only the final one"
    )
    checkpoint_interval: float = Field(
        5.0,
        ge=0,
        le=10**9,
        description="seconds at least between two checkpoints (the final one aside), so that short epochs are not "
        "dominated by writing them; 0: every checkpoint_every epochs",
    )
    bn_recalibrate: bool = Field(
        True, description="judge Q(w) with batch-norm statistics re-estimated at Q(w) on the training data"
    )
    certify_time: float = Field(
        10.0, ge=0, description="seconds of branch-and-bound per convex linear problem beyond enumeration; 0: box bound"
    )

    @model_validator(mode="after")
    def _consistent(self) -> RunConfig:
        if not self.label:
            object.__setattr__(self, "label", self.method.name)
        if bad := [c for c in ("\n", "\r", "|") if c in self.label]:
            raise ValueError(f"label {self.label!r}: must not contain {bad[0]!r} (it names a row of the tables)")
        grids = [1, *sorted(b for b, zero in SAWB_COEFFICIENTS if zero)]
        if self.bits not in grids and getattr(self.method, "sawb", None) is None:
            raise ValueError(
                f"bits = {self.bits}: no SAWB coefficients for its k-bit grid's scale; allowed: "
                + ", ".join(map(str, grids))
            )
        if isinstance(self.schedule, StepSchedule) and (
            late := [m for m in self.schedule.milestones if m >= self.epochs]
        ):
            raise ValueError(f"schedule.milestones: {late[0]} is not < epochs ({self.epochs}), so it would never apply")
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
        n_train = getattr(self.data, "n_train", None)
        if n_train is not None:
            check_sizes(self, n_train, error=ValueError)
        return self

    def steps_per_epoch(self, n_train: int | None = None) -> int:
        """Mini-batches per epoch; ``n_train`` is the loaded training set's size when the config leaves it open."""
        n = n_train if n_train is not None else getattr(self.data, "n_train", None)
        if n is None:
            raise ValueError(
                f"the size of data set {getattr(self.data, 'name', None)!r} is known once loaded; pass n_train"
            )
        if n_train is None and self.validation is not None:
            n -= self.validation.count(n)
        return -(-n // self.batch_size)

    def lr_schedule(self, n_train: int | None = None, *, steps_per_epoch: int | None = None) -> Schedule:
        """``γ_k`` over iterations ``k``; step milestones are given in epochs.

        ``steps_per_epoch`` is the loaded data's (a loader deals its own batches); by default
        :meth:`steps_per_epoch` of ``n_train``.
        """
        s, lr = self.schedule, self.method.lr

        def steps() -> int:
            return steps_per_epoch if steps_per_epoch is not None else self.steps_per_epoch(n_train)

        if isinstance(s, StepSchedule):
            return step_decay(lr, [m * steps() for m in s.milestones], s.factor)
        if isinstance(s, ExponentialSchedule):
            return exponential(lr, s.final_lr, self.epochs * steps())
        if isinstance(s, InversePowerSchedule):
            return inverse_power(lr, s.tau, s.power)
        return constant(lr)

    def with_(self, **changes: Any) -> RunConfig:
        """A validated copy with fields replaced: top-level names, or dotted paths (``**{"method.lr": 0.5}``);
        see :func:`override`."""
        return override(self, changes)


class ConfigError(ValueError):
    """A config that failed validation; ``str()`` is one line naming the fields."""


def check_sizes(cfg: RunConfig, n_train: int, *, error: type[Exception] = ConfigError) -> None:
    """Raise ``error`` unless ``cfg``'s validation split, ``batch_size`` and ``eval_train`` fit ``n_train`` examples
    (the data set's training split, before the validation split is carved from it)."""
    if cfg.validation is not None:
        n_val = cfg.validation.count(n_train)
        if n_val >= n_train:
            raise error(f"validation.size ({cfg.validation.size}) must leave some of the {n_train} examples")
        n_train -= n_val
        if cfg.batch_size > n_train:
            raise error(
                f"batch_size ({cfg.batch_size}) must be <= the {n_train} training examples left beside "
                f"the {n_val} of the validation split"
            )
    if cfg.batch_size > n_train:
        raise error(f"batch_size ({cfg.batch_size}) must be <= data.n_train ({n_train})")
    if cfg.eval_train is not None and cfg.eval_train > n_train:
        raise error(f"eval_train ({cfg.eval_train}) must be <= the {n_train} training examples")


# the union whose tag pydantic puts in the path ("schedule.step.factor")
_TAGGED = ("schedule",)


def format_validation_error(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = list(e["loc"])
        if len(loc) >= 2 and loc[0] in _TAGGED:
            del loc[1]  # the union tag pydantic puts in the path ("schedule.step.factor" -> "schedule.factor")
        loc = ".".join(str(x) for x in loc) or "config"
        msg = e["msg"].removeprefix("Value error, ")
        got = "" if e["type"] in ("missing", "value_error", "union_tag_invalid") else f" (got {e['input']!r})"
        parts.append(f"{loc}: {msg}{got}")
    return "; ".join(parts)


# the field whose value picks a table's schema: a registered entry's name, a schedule's kind
_TAGS = ("name", "kind")


def override(cfg: RunConfig, changes: Mapping[str, Any]) -> RunConfig:
    """A validated copy of ``cfg`` with each dotted field path of ``changes`` set to its value.

    ``{"method.lr": 0.5, "method.eps.hold": 10, "model.keep_fp": ["biases"]}``; a top-level name
    replaces the whole field (``{"data": {...}}``); a path into an optional table left out starts
    it (``{"validation.size": 0.1}``). A path that names no field fails with the fields allowed
    there; a value the schema refuses fails as a config file would, naming the field
    (:class:`ConfigError`). Changing a table's ``name`` (or ``schedule.kind``) starts that
    table afresh from the new entry's defaults, and the other paths into it apply after it, so
    ``{"method.name": "sgd", "method.lr": 1.0}`` switches the method.
    """
    data = cfg.model_dump()
    # tags first, shortest path first: a table is reset before the fields set inside it
    ordered = sorted(changes.items(), key=lambda kv: (kv[0].rpartition(".")[2] not in _TAGS, kv[0].count(".")))
    for path, value in ordered:
        *parents, key = path.split(".")
        table, where, new = data, [], False
        for name in parents:
            if new:
                table = table.setdefault(name, {})
            else:
                inner = _field(table, name, where)
                if inner is None:  # an optional table left out: it starts empty
                    inner = table[name] = {}
                    new = True
                table = inner
            where.append(name)
            if not isinstance(table, dict):
                raise ConfigError(f"{path}: {'.'.join(where)} is {_kind(table)}, not a table")
        if key not in table and not new:
            _field(table, key, where)  # the error: no such field, with those allowed
        if parents and key in _TAGS and table[key] != value:
            table.clear()  # a new entry: its own schema and defaults
            table[key] = value
            data = validate_config(data).model_dump()
        else:
            table[key] = value
    return validate_config(data)


def _field(table: dict[str, Any], name: str, where: list[str]) -> Any:
    if name not in table:
        at = ".".join(where) or "the config"
        raise ConfigError(f"{'.'.join([*where, name])}: no such field in {at}; choose from: {', '.join(sorted(table))}")
    return table[name]


def _kind(value: Any) -> str:
    return f"a {type(value).__name__} ({value!r})"


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """``["method.lr=0.5", 'model.keep_fp=["biases"]']`` → ``{"method.lr": 0.5, "model.keep_fp": ["biases"]}``.

    Each value is read as a TOML literal (``0.5``, ``true``, ``"adam"``, ``[1, 2]``, ``{hold = 5}``);
    text that is not one is taken as a string (``base=adam``). A later item for the same path wins.
    """
    out: dict[str, Any] = {}
    for item in items:
        path, eq, text = item.partition("=")
        path = path.strip()
        if not eq or not path or any(not part for part in path.split(".")):
            raise ConfigError(f"--set {item}: expected FIELD=VALUE with a dotted field path, e.g. method.lr=0.5")
        try:
            out[path] = tomllib.loads(f"v = {text.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            out[path] = text.strip()
    return out


def validate_config(data: dict[str, Any]) -> RunConfig:
    """A :class:`RunConfig` from a dict; raises :class:`ConfigError` with one line.

    Data sets, models and methods are those registered (plugins advertised in the
    ``qnnlab.plugins`` entry-point group are imported first, see :func:`qnnlab.registry.load_plugins`).
    """
    load_plugins()
    try:
        return RunConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err)) from None


def read_toml(path: str | Path, what: str = "run config") -> dict[str, Any]:
    """The table of a TOML file of at most 1 MiB of UTF-8; :class:`ConfigError` naming ``path`` otherwise."""
    path = Path(path)
    limit = 1 << 20  # a config is a few kB; this stops /dev/zero or a stray data file early
    try:
        with path.open("rb") as f:
            raw = f.read(limit + 1)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except OSError as err:  # a directory, a symlink loop, no permission, ...
        raise ConfigError(describe_os_error(err)) from None
    if len(raw) > limit:
        raise ConfigError(f"{path}: larger than {limit >> 20} MiB; not a {what}")
    try:
        return tomllib.loads(raw.decode())
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{raw[err.start]:02x} at offset {err.start})") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    except RecursionError:  # in the parser
        raise ConfigError(f"{path}: arrays or tables nested too deeply to be a {what}") from None


def load_config(path: str | Path) -> RunConfig:
    """Read and validate a TOML run config; raises :class:`ConfigError` with one line."""
    data = read_toml(path)
    try:
        return validate_config(data)
    except RecursionError:  # in the values an error message repeats
        raise ConfigError(f"{path}: arrays or tables nested too deeply to be a run config") from None
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
