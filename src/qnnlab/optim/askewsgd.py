"""ASkewSGD: annealed interval-constrained skewed SGD, binary and k-bit.

Each constrained coordinate carries a constraint ``φ_ε ≥ 0`` that keeps it near the grid
(:mod:`qnnlab.quant.constraints`). The step replaces the gradient ``g`` by the skewed direction

.. math::
    s_{\\varepsilon,\\alpha}(w, g) =
    \\begin{cases}
      g  & \\text{if } \\varphi_\\varepsilon(w) \\ge 0 \\text{ or } \\varphi_\\varepsilon'(w) = 0
           \\text{ or } (-g)K > K^2, \\\\
      -K & \\text{otherwise,}
    \\end{cases}
    \\qquad K = -\\frac{\\alpha\\,\\varphi_\\varepsilon(w)}{\\varphi_\\varepsilon'(w)},

i.e. ``v = −s`` is the Euclidean projection of ``−g`` onto the half-line
``{v : φ'_ε(w)·v + αφ_ε(w) ≥ 0}``: an infeasible coordinate must move so that
``dφ/dt ≥ −αφ`` (Muehlebach & Jordan's velocity constraint). The iterate is never projected
onto ``C_ε``. ``ε`` is annealed towards 0 between epochs (``group["eps"]``), so the feasible
set shrinks onto the grid. The base step (SGD, momentum or Adam) acts on ``s``.

**Binary** (``bits = 1``): ``φ_ε(w) = ε − (w² − 1)²``; after the base step ``w`` is clamped to
``[−1, 1]``; the final weights are ``sign(w)``.

**k-bit** (``bits = k ≥ 2``): per tensor, the SAWB step ``Δ = α_w/m``
(:func:`~qnnlab.quant.tensor_grids.sawb_steps`, ``m = 2^(k−1) − 1``) puts the levels at
``Δ·{−m..m}``. In grid units ``u = w/Δ`` the constraint is ``φ_ε(u) = ε − (u − a)²(u − b)²``
between the nearest and the second-nearest levels, inactive for ``ε ≥ 1/16``. While it is
inactive the group takes plain base steps and ``Δ`` follows the weights; from the first step
with ``ε < 1/16`` each tensor holds its ``Δ`` (the authors freeze their clip at epoch 100, where
their annealing starts), ``K`` is taken in weight units, ``K = −αφ_ε(u)·Δ/φ'_ε(u)``, a corrective
step is clamped to ``±Δ/(4γ)`` so that a plain SGD step moves at most a quarter of a bin (the
test ``(−g)K > K²`` uses the unclamped ``K``), and after the base step ``w`` is clamped to
``[−mΔ, mΔ]``. The final weights are ``Δ·clamp(round(w/Δ), −m, m)``.

Why ``Δ`` is held: SAWB's regression was fitted on bell-shaped weights, and re-estimated on
weights that sit on (or are clamped to) its own grid it comes out smaller. Re-quantizing
``N(0, 1)`` weights 200 times, each time on a freshly estimated grid, shrinks ``α_w`` to 7 % of
its start at 2 bits and 49 % at 4 bits, and clamping uniform weights 10 times to a freshly
estimated 4-bit clip shrinks it to 3 % (measured here, :func:`test_reestimated_sawb_shrinks`
in ``tests/optim/test_askewsgd_kbit.py``); an annealed constraint toward a moving grid would
chase it to zero.

The singular points (``φ' = 0``: ``w ∈ {0, ±1}`` for the binary constraint, the levels and the
cell midpoints for the k-bit one) take the plain gradient, and so do points where ``K``
overflows the floating-point range (``|w|`` subnormal), so that no infinity ever reaches a
momentum or Adam buffer; the test ``(−g)K > K²`` is strict, as in the authors' code.

Departures from the authors' ImageNet code (``trainer_askewsgd.py``), all for the k-bit case:
the grid has the ``2^k − 1`` levels ``−m..m`` that fit in ``k`` bits, with ``Δ = α_w/m`` (their
4-bit run puts 17 levels ``−8..8`` at ``Δ = α_w/8``); ``Δ`` is held from the first active step
rather than from a given epoch, and the iterate is clamped only once it is (their code clamps
to the re-estimated clip before every direction, which the measurement above shows contracting);
the clamp comes after the step, which gives the same directions as clamping before the next one;
``K`` has no ``10⁻⁶`` in its denominator (a midpoint is singular instead); SAWB's coefficients
for bit widths other than 2 and 4 are this library's fit (:mod:`qnnlab.quant.scales`).

References:
    Leconte, Schechtman & Moulines, "ASkewSGD: an annealed interval-constrained
    optimisation method to train quantized neural networks", AISTATS 2023,
    arXiv:2211.03741 (algorithm reconstructed from the authors' code, repository
    aistats2023/537: the toy notebooks for the binary case, the ImageNet trainer for the
    k-bit one). Muehlebach & Jordan, "On constraints in first-order optimization:
    a view from non-smooth dynamical systems", JMLR 23(256), 2022.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from qnnlab.optim._base import EntryRule, QuantOptimizer, check_positive, clip_unit
from qnnlab.optim.constrained_gd import velocity_direction
from qnnlab.quant.constraints import binary_dphi, binary_phi, kbit_constraint
from qnnlab.quant.grids import get_grid
from qnnlab.quant.segments import Segments
from qnnlab.quant.tensor_grids import on_grid, sawb_steps

__all__ = ["KBIT_INACTIVE", "MAX_BITS", "ASkewSGD", "kbit_skewed_direction", "skewed_direction"]

MAX_BITS = 8
KBIT_INACTIVE = 1 / 16  # ε at or above which the k-bit constraint holds everywhere on the grid's hull


def skewed_direction(w: Tensor, g: Tensor, eps: float, alpha: float) -> Tensor:
    """``s_{ε,α}(w, g)`` entry-wise for the binary constraint (see the module docstring)."""
    return velocity_direction(binary_phi(w, eps), binary_dphi(w), g, alpha)


def askewsgd_direction(w: Tensor, g: Tensor, *, eps: float, alpha: float) -> Tensor:
    """The binary rule's direction, with its hyperparameters by keyword (:class:`~qnnlab.optim._base.EntryRule`)."""
    return skewed_direction(w, g, eps, alpha)


def kbit_skewed_direction(w: Tensor, g: Tensor, step: Tensor, eps: float, alpha: float, lr: float, bits: int) -> Tensor:
    """``s_{ε,α}`` entry-wise for the k-bit constraint on the grid ``step·{−m..m}`` (``step``: ``Δ`` per entry).

    ``dφ/dw = φ'_ε(u)/Δ`` at ``u = w/Δ``, so ``K = −αφΔ/φ'`` comes out in weight units (computed so:
    two divisions per entry, ``w/Δ`` and this one); the corrective step is clamped to ``±Δ/(4·lr)``.
    """
    phi, dphi = kbit_constraint(w / step, eps, get_grid(bits).max_level)
    return velocity_direction(phi * step, dphi, g, alpha, cap=step / (4 * lr))


def kbit_direction(w: Tensor, g: Tensor, *, delta: Tensor, eps: float, alpha: float, lr: float, bits: int) -> Tensor:
    """The k-bit rule's direction (``delta``: the tensor's held ``Δ``; ``bits`` static)."""
    return kbit_skewed_direction(w, g, delta, eps, alpha, lr, bits)


def kbit_box(w: Tensor, *, delta: Tensor, bits: int) -> Tensor:
    """``clamp(w, −mΔ, mΔ)``: the hull of the tensor's grid."""
    top = delta * get_grid(bits).max_level
    return w.clamp(-top, top)


class ASkewSGD(QuantOptimizer):
    """ASkewSGD for binary or k-bit weights; unconstrained groups take plain base steps.

    Args:
        params: parameters or param groups; a group with ``constrained=False`` is trained
            in full precision (biases, norms).
        lr: step size ``γ`` (> 0).
        eps: constraint level ``ε`` (> 0); set ``group["eps"]`` each epoch to anneal it.
        alpha: violation decay rate ``α`` (> 0).
        bits: 1 (binary, the box ``[−1, 1]``) or ``2..8`` (SAWB-scaled k-bit grid per tensor).
        sawb: SAWB's ``(c₁, c₂)`` for the k-bit step (default ``None``: the table of
            :mod:`qnnlab.quant.scales` for the group's ``bits``).
        momentum, weight_decay, base, betas, adam_eps, fused: the base step (see
            :class:`qnnlab.optim.SGD`); momentum, decay and Adam act on the skewed direction.
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 0.1,
        *,
        eps: float = 1.0,
        alpha: float = 1.0,
        bits: int = 1,
        sawb: tuple[float, float] | None = None,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        base: str = "sgd",
        betas: tuple[float, float] = (0.9, 0.999),
        adam_eps: float = 1e-8,
        fused: bool | None = None,
    ) -> None:
        check_positive("eps", eps)
        check_positive("alpha", alpha)
        if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= MAX_BITS:
            raise ValueError(f"Invalid bits: {bits!r}; must be an integer in 1..{MAX_BITS}")
        method = {"eps": eps, "alpha": alpha, "bits": bits, "sawb": sawb}
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

    def grid_steps(self, group: dict[str, Any], params: list[Tensor], seg: Segments, *, hold: bool) -> Tensor:
        """Each tensor's k-bit step ``Δ``: its held one if any, else SAWB's of its weights (then held if ``hold``)."""
        held = [self.state[p].get("grid_step") for p in params]
        if all(h is not None for h in held):
            return torch.stack(held)
        fresh = sawb_steps(seg, group["bits"], group["sawb"]).unbind()
        if hold:
            for p, d in zip(params, fresh, strict=True):
                self.state[p].setdefault("grid_step", d.clone())
        return torch.stack([h if h is not None else d for h, d in zip(held, fresh, strict=True)])

    def _kbit_active(self, group: dict[str, Any], params: list[Tensor]) -> bool:
        """The k-bit constraint acts (``ε < 1/16``) or has acted (a step is held)."""
        return group["eps"] < KBIT_INACTIVE or "grid_step" in self.state[params[0]]

    def _rule(self, group: dict[str, Any], params: list[Tensor], targets: list[Tensor]) -> EntryRule:
        hyper = {"eps": group["eps"], "alpha": group["alpha"]}
        if group["bits"] == 1:
            return EntryRule(direction=askewsgd_direction, project=clip_unit, scalars=hyper)
        if not self._kbit_active(group, targets):
            return EntryRule()
        if any("grid_step" not in self.state[p] for p in targets):  # the first active step: hold each Δ
            self.grid_steps(group, targets, Segments(targets), hold=True)
        return EntryRule(
            direction=kbit_direction,
            project=kbit_box,
            scalars={**hyper, "lr": group["lr"]},
            static={"bits": group["bits"]},
            tensors={"delta": [self.state[p]["grid_step"] for p in targets]},
        )

    def _grid(self, group: dict[str, Any], params: list[Tensor], bits: int) -> tuple[list[Tensor], Tensor]:
        if bits == 1:
            return super()._grid(group, params, bits)
        seg = Segments(params)
        steps = self.grid_steps(group, params, seg, hold=False)
        return on_grid(seg, steps, bits), steps
