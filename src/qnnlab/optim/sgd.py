"""Full-precision baseline: (stochastic) gradient descent, heavy-ball momentum or Adam.

.. math::
    w_{k+1} = w_k - \\gamma_k\\, g_k

Full-batch GD, mini-batch GD and SGD are this one method run with batch size ``n``,
``b`` and ``1``. Reference: Bottou, Curtis & Nocedal, "Optimization methods for
large-scale machine learning", SIAM Review 2018, arXiv:1606.04838.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from torch import Tensor

from qnnlab.optim._base import QuantOptimizer

__all__ = ["SGD"]


class SGD(QuantOptimizer):
    """Unconstrained steps on every group; ``constrained`` has no effect.

    Args:
        params: parameters or param groups.
        lr: step size ``γ`` (> 0).
        momentum: heavy-ball coefficient ``μ`` (``b ← μb + g``, ``w ← w − γb``).
        weight_decay: L2 coefficient added to the gradient.
        base: ``"sgd"`` or ``"adam"``.
        betas, adam_eps: Adam's moment coefficients and denominator offset.
        fused: the fused step (``None``: where available; see :mod:`qnnlab.optim._base`).
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 0.1,
        *,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        base: str = "sgd",
        betas: tuple[float, float] = (0.9, 0.999),
        adam_eps: float = 1e-8,
        fused: bool | None = None,
    ) -> None:
        super().__init__(
            params,
            {},
            lr=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            base=base,
            betas=betas,
            adam_eps=adam_eps,
            fused=fused,
        )
