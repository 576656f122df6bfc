"""The method registry: each training method's optimizer, hyperparameter schema and paper.

A method's schema is a pydantic model whose ``name`` field is its registry key; the run
config's ``method`` table is validated against the union of all schemas, so unknown
methods, unknown keys, wrong types and out-of-range values fail before training.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn
from torch.optim import Optimizer

from qnnlab.nn.layers import quantize_model
from qnnlab.optim import SGD, STE, AdaSTE, ASkewSGD, BinaryConnect, ConstrainedGD, PrimalDual, ProxQuant
from qnnlab.registry import Registry
from qnnlab.schedules import Schedule, annealed_eps

__all__ = ["METHODS", "MethodConfig", "MethodInfo", "build_optimizer"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BaseStep(_Strict):
    """Hyperparameters of the base step shared by every method."""

    lr: float = Field(0.1, gt=0, description="initial step size γ₀")
    momentum: float = Field(0.0, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    base: Literal["sgd", "adam"] = "sgd"
    betas: tuple[Annotated[float, Field(ge=0, lt=1)], Annotated[float, Field(ge=0, lt=1)]] = (0.9, 0.999)
    adam_eps: float = Field(1e-8, gt=0)

    def optimizer_kwargs(self) -> dict[str, Any]:
        return self.model_dump(exclude={"name"})

    def epoch_values(self, epoch: int) -> dict[str, Any]:
        """Hyperparameters that follow a per-epoch schedule, as ``{group key: value}`` for ``epoch``.

        The training loop writes them into every constrained param group before the epoch
        (``epoch`` counts completed epochs) and records them with the epoch's metrics.
        """
        return {}


class SGDConfig(BaseStep):
    name: Literal["sgd"] = "sgd"


class BinaryConnectConfig(BaseStep):
    name: Literal["binaryconnect"] = "binaryconnect"
    stochastic: bool = False
    glorot_scale: bool = False


class EpsConfig(_Strict):
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

    def epoch_values(self, epoch: int) -> dict[str, Any]:
        return {"eps": self.eps.schedule()(epoch)}

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

    def epoch_values(self, epoch: int) -> dict[str, Any]:
        values: dict[str, Any] = {}
        if self.lam_schedule != "iteration":
            values["lam"] = self.lam * epoch if self.lam_schedule == "epoch" else self.lam
        if self.freeze_epoch is not None:
            values["frozen"] = epoch >= self.freeze_epoch
        return values


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

    def epoch_values(self, epoch: int) -> dict[str, Any]:
        cap = 1 / self.alpha + 100 if self.beta_max is None else self.beta_max
        return {"beta": min(self.beta * self.beta_growth**epoch, max(cap, self.beta))}

    @model_validator(mode="after")
    def _cap_above_beta(self) -> AdaSTEConfig:
        if self.beta_max is not None and self.beta_max < self.beta:
            raise ValueError(f"beta_max ({self.beta_max}) must be >= beta ({self.beta})")
        return self


MethodConfig = Annotated[
    SGDConfig
    | BinaryConnectConfig
    | ASkewSGDConfig
    | ConstrainedGDConfig
    | PrimalDualConfig
    | STEConfig
    | ProxQuantConfig
    | AdaSTEConfig,
    Field(discriminator="name"),
]


@dataclass(frozen=True)
class MethodInfo:
    """What the rest of qnnlab needs to know about a method."""

    name: str
    optimizer: type[Optimizer]
    config: type[BaseStep]
    bits: tuple[int, ...] | None  # grids it trains for; None = any (full precision)
    paper: str
    # turns the built model into the one this method trains (e.g. swaps in quantized layers)
    prepare_model: Callable[[nn.Module, Any], nn.Module] | None = None


METHODS: Registry[MethodInfo] = Registry("method")
METHODS.register(
    "sgd",
    MethodInfo("sgd", SGD, SGDConfig, None, "Bottou, Curtis & Nocedal, SIAM Review 2018 (arXiv:1606.04838)"),
)
METHODS.register(
    "binaryconnect",
    MethodInfo(
        "binaryconnect",
        BinaryConnect,
        BinaryConnectConfig,
        (1,),
        "Courbariaux, Bengio & David, NeurIPS 2015 (arXiv:1511.00363)",
    ),
)
METHODS.register(
    "askewsgd",
    MethodInfo(
        "askewsgd",
        ASkewSGD,
        ASkewSGDConfig,
        tuple(range(1, 9)),
        "Leconte, Schechtman & Moulines, AISTATS 2023 (arXiv:2211.03741)",
    ),
)
METHODS.register(
    "proxquant",
    MethodInfo(
        "proxquant",
        ProxQuant,
        ProxQuantConfig,
        tuple(range(1, 9)),
        "Bai, Wang & Liberty, ICLR 2019 (arXiv:1810.00861)",
    ),
)
METHODS.register(
    "adaste",
    MethodInfo("adaste", AdaSTE, AdaSTEConfig, (1,), "Le, Høier, Lin & Zach, CVPR 2022 (arXiv:2112.02880)"),
)

METHODS.register(
    "constrained_gd",
    MethodInfo(
        "constrained_gd",
        ConstrainedGD,
        ConstrainedGDConfig,
        (1,),
        "Muehlebach & Jordan, JMLR 23(256), 2022 (arXiv:2107.08225)",
    ),
)
METHODS.register(
    "primal_dual",
    MethodInfo(
        "primal_dual",
        PrimalDual,
        PrimalDualConfig,
        (1,),
        "Arrow, Hurwicz & Uzawa 1958; constraint of Leconte et al., AISTATS 2023",
    ),
)


def _sign_weights(model: nn.Module, cfg: STEConfig) -> nn.Module:
    """Swap the weight layers for ``QuantLinear`` / ``QuantConv2d`` with sign weights and ``cfg.estimator``."""
    return quantize_model(model, weight_quantizer={"name": "sign", "estimator": cfg.estimator})


METHODS.register(
    "ste",
    MethodInfo(
        "ste",
        STE,
        STEConfig,
        (1,),
        "Yin, Lyu, Zhang, Osher, Qi & Xin, ICLR 2019 (arXiv:1903.05662)",
        prepare_model=_sign_weights,
    ),
)


def build_optimizer(cfg: BaseStep, groups: list[dict[str, Any]]) -> Optimizer:
    """The registered optimizer for ``cfg.name`` over ``groups``."""
    info = METHODS.get(cfg.name)  # type: ignore[attr-defined]
    return info.optimizer(groups, **cfg.optimizer_kwargs())
