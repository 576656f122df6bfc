"""ProxQuant: a base step at the real weights, then the prox of a quantization regularizer.

.. math::
    \\theta_{t+1} = \\operatorname{clip}\\bigl(\\operatorname{prox}_{\\eta_t \\lambda_t R}
    (\\theta_t - \\eta_t u_t), -1, 1\\bigr), \\qquad \\tau_t = \\eta_t \\lambda_t,

where ``u_t`` is the base step (Adam in the paper, or SGD / heavy-ball momentum) built from the
gradient at the real ``θ_t`` (no straight-through estimator) and ``η_t`` the group's current
``lr``. ``R`` and its prox (:mod:`qnnlab.quant.prox`): the W-shaped ``Σ min(|θ − 1|, |θ + 1|)``
for ``bits = 1`` (soft threshold toward the nearest of ±1), ``½‖θ − T(θ)‖²`` toward a symmetric
ternarization (threshold as ProxQuant's, one scale as TWN's) for ``bits = 2`` and toward the
nearest level of the per-tensor max-scaled k-bit grid for ``bits ≥ 3``, i.e. ``(θ + τq)/(1 + τ)``.

The strength grows linearly: ``λ_t = λ·t``. With ``lam_growth = "constant"`` the optimizer uses
``λ_t = group["lam"]`` and the caller sets it (the training loop writes ``λ·e`` before epoch
``e = 0, 1, ...``, as the authors' code does); with ``"iteration"`` it uses ``λ·k`` with ``k``
the number of steps the group has taken before this one.

The run judges the weights at the same hard quantization (``sign``, ``T(θ)`` on ``KBitGrid(2, s)``
or the max-scaled k-bit level; :meth:`QuantOptimizer.quantize`).

Setting ``group["frozen"] = True`` hard-quantizes the group's weights at its next step
(``sign``, ``T(θ)`` or the k-bit level) and holds them there from then on: the base step is
taken with a zero step size, so unconstrained groups keep training.

Reference: Bai, Wang & Liberty, "ProxQuant: quantized neural networks via proximal
operators", ICLR 2019, arXiv:1810.00861 (schedule, clip and freeze as in the authors' code,
``allenbai01/ProxQuant``, ``main_binary_reg.py`` and ``reg.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from qnnlab.optim._base import EntryRule, QuantOptimizer, check_nonnegative, clip_unit
from qnnlab.quant.grids import KBitGrid, uniform_round
from qnnlab.quant.prox import (
    kbit_scales,
    prox_binary,
    prox_grid,
    prox_toward,
    quantize_targets,
    ternary_point,
    ternary_stats,
)

__all__ = ["LAM_GROWTHS", "ProxQuant", "proxquant_"]

LAM_GROWTHS = ("constant", "iteration")


def proxquant_(params: list[Tensor], bits: int, tau: float) -> None:
    """``θ ← clip(prox_τ(θ), −1, 1)`` in place for one group's tensors (eagerly, the optimizer's rule)."""
    project, static, stats = _prox_rule(bits)
    per_tensor = stats(params) if stats is not None else {}
    for i, p in enumerate(params):
        p.copy_(project(p, tau=tau, **{n: v[i] for n, v in per_tensor.items()}, **static))


def prox_binary_project(w: Tensor, *, tau: float) -> Tensor:
    """``clip(prox_τ(w), −1, 1)`` of the binary regularizer, entry-wise."""
    return clip_unit(prox_binary(w, tau))


def prox_ternary_project(w: Tensor, *, threshold: Tensor, scale: Tensor, tau: float) -> Tensor:
    """``clip((w + τT(w))/(1 + τ), −1, 1)`` entry-wise, with the tensor's ternary threshold and scale."""
    return clip_unit(prox_toward(w, ternary_point(w, threshold, scale), tau))


def prox_kbit_project(w: Tensor, *, scale: Tensor, tau: float, bits: int) -> Tensor:
    """``clip((w + τq)/(1 + τ), −1, 1)``, ``q = s·clamp(⌊w/s + ½⌋, −m, m)`` entry-wise, ``s`` the tensor's scale."""
    m = KBitGrid(bits).max_level
    return clip_unit(prox_toward(w, uniform_round(w, scale, -m, m), tau))


def _ternary_stats(tensors: list[Tensor]) -> dict[str, list[Tensor]]:
    threshold, scale = ternary_stats(tensors)
    return {"threshold": list(threshold.unbind()), "scale": list(scale.unbind())}


def _prox_rule(bits: int):
    """``(project, static, stats)``: the entry-wise prox of ``bits``, its static options, its per-tensor statistics."""
    if bits == 1:
        return prox_binary_project, {}, None
    if bits == 2:
        return prox_ternary_project, {}, _ternary_stats
    return prox_kbit_project, {"bits": bits}, lambda ts: {"scale": list(kbit_scales(ts, bits).unbind())}


class ProxQuant(QuantOptimizer):
    """ProxQuant for binary, ternary or k-bit weights; unconstrained groups take plain base steps.

    Args:
        params: parameters or param groups (``constrained=False`` for full precision).
        lr: step size ``η`` (> 0); the prox strength is ``τ = η·λ_t``.
        bits: 1 (binary prox), 2 (ternary) or more (k-bit grid).
        lam: regularization strength ``λ`` (>= 0), see ``lam_growth``.
        lam_growth: ``"constant"`` (``λ_t = lam``, set by the caller) or ``"iteration"``
            (``λ_t = lam·k``).
        frozen: hard-quantize the constrained weights and hold them (set it per group).
        momentum, weight_decay, base, betas, adam_eps, fused: the base step (the paper uses Adam).
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 0.01,
        *,
        bits: int = 1,
        lam: float = 1e-4,
        lam_growth: str = "constant",
        frozen: bool = False,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        base: str = "adam",
        betas: tuple[float, float] = (0.9, 0.999),
        adam_eps: float = 1e-8,
        fused: bool | None = None,
    ) -> None:
        if isinstance(bits, bool) or not isinstance(bits, int) or bits < 1:
            raise ValueError(f"Invalid bits: {bits!r}; must be an integer >= 1")
        check_nonnegative("lam", lam)
        if lam_growth not in LAM_GROWTHS:
            raise ValueError(f"Invalid lam_growth: {lam_growth!r}; choose from: {', '.join(LAM_GROWTHS)}")
        # prox_steps: steps taken, for lam_growth = "iteration"; rides in state_dict
        method = {"bits": bits, "lam": lam, "lam_growth": lam_growth, "frozen": frozen, "prox_steps": 0}
        super().__init__(
            params,
            method,
            lr=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            base=base,
            betas=betas,
            adam_eps=adam_eps,
            fused=fused,
        )

    def lam_t(self, group: dict[str, Any]) -> float:
        """The strength ``λ_t`` the group's next step uses."""
        growth = group["prox_steps"] if group["lam_growth"] == "iteration" else 1
        return group["lam"] * growth

    def _scales(self, group: dict[str, Any], params: list[Tensor]) -> list[float] | None:
        # a frozen group takes zero-length steps
        return [0.0] * len(params) if group["frozen"] else None

    def _rule(self, group: dict[str, Any], params: list[Tensor], targets: list[Tensor]) -> EntryRule:
        tau, bits = group["lr"] * self.lam_t(group), group["bits"]
        group["prox_steps"] += 1
        if group["frozen"]:
            return EntryRule(project_lists=lambda ps, ts: self._freeze(ps, bits))
        project, static, stats = _prox_rule(bits)
        return EntryRule(project=project, scalars={"tau": tau}, static=static, project_stats=stats)

    def _grid(self, group: dict[str, Any], params: list[Tensor], bits: int) -> tuple[list[Tensor], Tensor]:
        # judged at its own hard quantization: what the freeze sets and the prox pulls toward
        return prox_grid(params, bits)

    def _freeze(self, params: list[Tensor], bits: int) -> None:
        fresh = [p for p in params if not self.state[p].get("frozen", False)]
        if fresh:
            torch._foreach_copy_(fresh, quantize_targets(fresh, bits))
            for p in fresh:
                self.state[p]["frozen"] = True
