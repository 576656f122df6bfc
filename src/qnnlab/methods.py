"""The method registry: each training method's optimizer, hyperparameter schema and paper.

A method's schema is a pydantic model whose ``name`` field is its registry key; the run
config's ``method`` table is validated against the schema registered under its name, so
unknown methods, unknown keys, wrong types and out-of-range values fail before training.
A method of your own is an optimizer class and (optionally) its schema::

    class LionConfig(MethodConfig):
        name: Literal["lion"] = "lion"
        lr: float = Field(1e-4, gt=0)
        betas: tuple[float, float] = (0.9, 0.99)

    register_method("lion", config=LionConfig, paper="Chen et al. 2023")(Lion)

after which ``[method] name = "lion"`` validates in a TOML config. A method's per-epoch
hyperparameters (ASkewSGD's ``ε``, ProxQuant's ``λ``) are its :meth:`MethodConfig.epoch_schedules`,
applied by a :class:`qnnlab.schedules.EpochScheduler`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

from pydantic import Field, model_validator
from torch import nn
from torch.optim import Optimizer

from qnnlab.nn.layers import quantize_model
from qnnlab.optim import SGD, STE, AdaSTE, ASkewSGD, BinaryConnect, Bop, ConstrainedGD, PrimalDual, ProxQuant
from qnnlab.registry import Registry, Schema, named_schema
from qnnlab.schedules import Schedule, annealed_eps

__all__ = ["METHODS", "BaseStep", "MethodConfig", "MethodInfo", "build_optimizer", "method_name", "register_method"]


class MethodConfig(Schema):
    """The config table of a method: ``name`` is its registry key, ``lr`` the initial step size γ₀.

    Every other field is passed to the optimizer as a keyword argument (:meth:`optimizer_kwargs`).
    """

    name: str
    lr: float = Field(0.1, gt=0, description="initial step size γ₀")

    def optimizer_kwargs(self) -> dict[str, Any]:
        return self.model_dump(exclude={"name"})

    def epoch_schedules(self) -> dict[str, Schedule]:
        """``{param-group key: schedule}`` of the hyperparameters that change per epoch (none by default).

        A :class:`qnnlab.schedules.EpochScheduler` writes ``schedule(e)`` into every constrained
        param group before epoch ``e`` (counting completed epochs); the loop records the values.
        """
        return {}

    def epoch_values(self, epoch: int) -> dict[str, Any]:
        """The scheduled hyperparameters of ``epoch``: ``{key: schedule(epoch)}``."""
        return {key: schedule(epoch) for key, schedule in self.epoch_schedules().items()}


class BaseStep(MethodConfig):
    """Hyperparameters of the base step shared by qnnlab's methods."""

    momentum: float = Field(0.0, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    base: Literal["sgd", "adam"] = "sgd"
    betas: tuple[Annotated[float, Field(ge=0, lt=1)], Annotated[float, Field(ge=0, lt=1)]] = (0.9, 0.999)
    adam_eps: float = Field(1e-8, gt=0)


class SGDConfig(BaseStep):
    name: Literal["sgd"] = "sgd"


class BinaryConnectConfig(BaseStep):
    name: Literal["binaryconnect"] = "binaryconnect"
    stochastic: bool = False
    glorot_scale: bool = False


class BopConfig(BaseStep):
    """Bop: flip ``w`` where the gradient average (rate ``γ``) exceeds ``τ`` and agrees with ``w``; ``lr`` and the
    base step train the unconstrained groups only."""

    name: Literal["bop"] = "bop"
    lr: float = Field(0.01, gt=0, description="step size of the full-precision groups (biases, norms)")
    gamma: float = Field(1e-4, gt=0, le=1, description="adaptivity rate γ of the gradient average")
    threshold: float = Field(1e-8, ge=0, description="flip threshold τ")


class EpsConfig(Schema):
    """``ε_e = ε₀`` for ``e < hold``, then ``max(ε₀·decay^(e − hold), floor)``."""

    init: float = Field(1.0, gt=0)
    hold: int = Field(0, ge=0)
    decay: float = Field(0.9, gt=0, le=1)
    floor: float = Field(0.0, ge=0)

    def schedule(self) -> Schedule:
        return annealed_eps(self.init, self.hold, self.decay, self.floor)


class AnnealedEps(BaseStep):
    """A method whose constraint level ``ε`` is annealed between epochs."""

    eps: EpsConfig = EpsConfig()

    def optimizer_kwargs(self) -> dict[str, Any]:
        return {**super().optimizer_kwargs(), "eps": self.eps.init}

    def epoch_schedules(self) -> dict[str, Schedule]:
        return {"eps": self.eps.schedule()}

    @model_validator(mode="after")
    def _floor_below_init(self) -> AnnealedEps:
        if self.eps.floor > self.eps.init:
            raise ValueError(f"eps.floor ({self.eps.floor}) must be <= eps.init ({self.eps.init})")
        return self


class ASkewSGDConfig(AnnealedEps):
    """ASkewSGD; ``bits ≥ 2`` trains on the SAWB-scaled k-bit grid (``ε ≥ 1/16`` leaves its constraint inactive)."""

    name: Literal["askewsgd"] = "askewsgd"
    alpha: float = Field(1.0, gt=0)
    bits: int = Field(1, ge=1, le=8, description="1: binary; 2..8: SAWB-scaled k-bit grid; equals the run's bits")


class ConstrainedGDConfig(AnnealedEps):
    """Muehlebach–Jordan on the binary constraint; ``solver = "qp"`` takes the general path."""

    name: Literal["constrained_gd"] = "constrained_gd"
    alpha: float = Field(1.0, gt=0)
    solver: Literal["auto", "closed_form", "qp"] = "auto"
    box: float | None = Field(1.0, gt=0)


class PrimalDualConfig(AnnealedEps):
    name: Literal["primal_dual"] = "primal_dual"
    dual_lr: float = Field(1.0, gt=0)
    init_multiplier: float = Field(0.0, ge=0)


class STEConfig(BaseStep):
    """Sign weights with the chosen straight-through estimator; latent clipping only if ``clip``."""

    name: Literal["ste"] = "ste"
    estimator: Literal["identity", "clipped", "relu", "clipped_relu"] = "identity"
    clip: bool = False

    def optimizer_kwargs(self) -> dict[str, Any]:
        return self.model_dump(exclude={"name", "estimator"})


class ProxQuantConfig(BaseStep):
    """ProxQuant: ``λ_t = λ·e`` per epoch ``e`` (the authors' schedule), ``λ·k`` per iteration, or ``λ``."""

    name: Literal["proxquant"] = "proxquant"
    lr: float = Field(0.01, gt=0, description="initial step size η₀; the prox strength is τ = η·λ_t")
    base: Literal["sgd", "adam"] = "adam"
    bits: int = Field(1, ge=1, le=8, description="1: binary, 2: ternary, ≥ 3: k-bit; equals the run's bits")
    lam: float = Field(1e-4, ge=0, description="λ")
    lam_schedule: Literal["epoch", "iteration", "constant"] = "epoch"
    freeze_epoch: int | None = Field(None, ge=0, description="hard-quantize and freeze from this epoch on")

    def optimizer_kwargs(self) -> dict[str, Any]:
        kwargs = self.model_dump(exclude={"name", "lam_schedule", "freeze_epoch"})
        kwargs["lam_growth"] = "iteration" if self.lam_schedule == "iteration" else "constant"
        return {**kwargs, **self.epoch_values(0)}

    def epoch_schedules(self) -> dict[str, Schedule]:
        lam, freeze = self.lam, self.freeze_epoch
        schedules: dict[str, Schedule] = {}
        if self.lam_schedule == "epoch":
            schedules["lam"] = lambda e: lam * e
        elif self.lam_schedule == "constant":
            schedules["lam"] = lambda e: lam
        if freeze is not None:
            schedules["frozen"] = lambda e: e >= freeze
        return schedules


class AdaSTEConfig(BaseStep):
    """AdaSTE; ``β_e = min(β·ρ^e, β_max)`` per epoch ``e`` (constant with the default ``ρ = 1``)."""

    name: Literal["adaste"] = "adaste"
    lr: float = Field(0.01, gt=0, description="initial step size γ₀ on the latent θ")
    alpha: float = Field(0.01, gt=0, description="margin α of the double well")
    beta: float = Field(100.0, ge=0, description="weight β of the double well; w* = sign θ once αβ ≥ 1")
    beta_growth: float = Field(1.0, ge=1, description="ρ: β is multiplied by ρ every epoch")
    beta_max: float | None = Field(None, gt=0, description="cap on β; default 1/α + 100 (the authors' code)")
    theta_init: float = Field(10.0, gt=0, description="|θ₀|")
    tol: float = Field(1e-3, ge=0, description="dead zone for |θ| and |g|")

    def optimizer_kwargs(self) -> dict[str, Any]:
        kwargs = self.model_dump(exclude={"name", "beta_growth", "beta_max"})
        return {**kwargs, **self.epoch_values(0)}

    def epoch_schedules(self) -> dict[str, Schedule]:
        beta, growth = self.beta, self.beta_growth
        cap = max(1 / self.alpha + 100 if self.beta_max is None else self.beta_max, beta)
        return {"beta": lambda e: min(beta * growth**e, cap)}

    @model_validator(mode="after")
    def _cap_above_beta(self) -> AdaSTEConfig:
        if self.beta_max is not None and self.beta_max < self.beta:
            raise ValueError(f"beta_max ({self.beta_max}) must be >= beta ({self.beta})")
        return self


@dataclass(frozen=True)
class MethodInfo:
    """What the rest of qnnlab needs to know about a method."""

    name: str
    optimizer: type[Optimizer]
    config: type[MethodConfig]
    bits: tuple[int, ...] | None  # grids it trains for; None = any (full precision)
    paper: str
    # turns the built model into the one this method trains (e.g. swaps in quantized layers)
    prepare_model: Callable[[nn.Module, Any], nn.Module] | None = None


METHODS: Registry[MethodInfo] = Registry("method")
OptimizerT = TypeVar("OptimizerT", bound=type[Optimizer])


def register_method(
    name: str,
    *,
    config: type[MethodConfig] | None = None,
    bits: tuple[int, ...] | None = None,
    paper: str = "",
    prepare_model: Callable[[nn.Module, Any], nn.Module] | None = None,
) -> Callable[[OptimizerT], OptimizerT]:
    """Register the decorated optimizer class as method ``name``.

    Args:
        config: the schema of its table (``name: Literal[name] = name``); without one, qnnlab's
            base-step hyperparameters (:class:`BaseStep`: the optimizer must accept them).
        bits: the grids it trains for; ``None``: any (a full-precision method).
        paper: the reference shown by ``qnnlab list``.
        prepare_model: ``(model, config) -> model``, applied before the optimizer is built.
    """
    schema = named_schema(BaseStep if config is None else MethodConfig, name, config)
    return METHODS.decorator(name, lambda optimizer: MethodInfo(name, optimizer, schema, bits, paper, prepare_model))


def _sign_weights(model: nn.Module, cfg: STEConfig) -> nn.Module:
    """Swap the weight layers for ``QuantLinear`` / ``QuantConv2d`` with sign weights and ``cfg.estimator``."""
    return quantize_model(model, weight_quantizer={"name": "sign", "estimator": cfg.estimator})


# in the order their names are listed in errors
_ANY_BITS = tuple(range(1, 9))
register_method("sgd", config=SGDConfig, paper="Bottou, Curtis & Nocedal, SIAM Review 2018 (arXiv:1606.04838)")(SGD)
register_method(
    "binaryconnect",
    config=BinaryConnectConfig,
    bits=(1,),
    paper="Courbariaux, Bengio & David, NeurIPS 2015 (arXiv:1511.00363)",
)(BinaryConnect)
register_method(
    "askewsgd",
    config=ASkewSGDConfig,
    bits=_ANY_BITS,
    paper="Leconte, Schechtman & Moulines, AISTATS 2023 (arXiv:2211.03741)",
)(ASkewSGD)
register_method(
    "constrained_gd",
    config=ConstrainedGDConfig,
    bits=(1,),
    paper="Muehlebach & Jordan, JMLR 23(256), 2022 (arXiv:2107.08225)",
)(ConstrainedGD)
register_method(
    "primal_dual",
    config=PrimalDualConfig,
    bits=(1,),
    paper="Arrow, Hurwicz & Uzawa 1958; constraint of Leconte et al., AISTATS 2023",
)(PrimalDual)
register_method(
    "ste",
    config=STEConfig,
    bits=(1,),
    paper="Yin, Lyu, Zhang, Osher, Qi & Xin, ICLR 2019 (arXiv:1903.05662)",
    prepare_model=_sign_weights,
)(STE)
register_method(
    "proxquant", config=ProxQuantConfig, bits=_ANY_BITS, paper="Bai, Wang & Liberty, ICLR 2019 (arXiv:1810.00861)"
)(ProxQuant)
register_method("adaste", config=AdaSTEConfig, bits=(1,), paper="Le, Høier, Lin & Zach, CVPR 2022 (arXiv:2112.02880)")(
    AdaSTE
)
register_method(
    "bop",
    config=BopConfig,
    bits=(1,),
    paper="Helwegen, Widdicombe, Geiger, Liu, Cheng & Nusselder, NeurIPS 2019 (arXiv:1906.02107)",
)(Bop)


def method_name(optimizer: Optimizer) -> str:
    """The registered name of ``optimizer``'s class, else its class name in lower case."""
    kind = type(optimizer)
    return next((n for n in METHODS.names(sort=False) if METHODS.get(n).optimizer is kind), kind.__name__.lower())


def build_optimizer(cfg: MethodConfig, groups: list[dict[str, Any]]) -> Optimizer:
    """The registered optimizer for ``cfg.name`` over ``groups``."""
    info = METHODS.get(cfg.name)
    return info.optimizer(groups, **cfg.optimizer_kwargs())
