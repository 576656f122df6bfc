"""Per-tensor quantization scales: SAWB (statistics-aware weight binning).

.. math::
    \\alpha_w = c_1 \\sqrt{\\mathbb{E}[w^2]} - c_2\\, \\mathbb{E}|w|

``α_w`` is the outermost level of a uniform symmetric grid; ``(c₁, c₂)`` were fitted offline by
linear regression of the MSE-optimal clip on the two moments over a family of distributions, so
each pair belongs to one bit width *and one level set*:

=====  ========================================  =================  ===================================
bits   levels                                    ``(c₁, c₂)``       source
=====  ========================================  =================  ===================================
2      ``{−α, −α/3, α/3, α}`` (no zero)           (3.212, 2.178)     IBM fms-model-optimizer ``sawb_utils``
2      ``{−α, 0, α}`` (ternary, ``KBitGrid(2)``)  (2.6, 1.71)        IBM fms-model-optimizer (code 103)
4      ``α/7·{−7..7}`` (``KBitGrid(4)``)          (12.1, 12.2)       LUQ reference code (Chmiel et al.)
4      16 levels ``±α/15·{1, 3, .., 15}``         (12.68, 12.80)     IBM fms-model-optimizer ``sawb_utils``
=====  ========================================  =================  ===================================

Provenance: the SAWB paper's own table could not be read here (only its abstract). The 2-bit
pair it is recalled to give, ≈(3.2, 2.1), matches the 4-level row, which IBM's code (the
authors' group) lists as (3.212, 2.178) [an older value, kept in a comment there next to a
newer (3.12, 2.064)]. None of the values is verified against the paper; instead
``tests/quant/test_scales.py`` checks that each pair puts ``α_w`` within a few percent of the
MSE-optimal clip of its level set for Gaussian and Laplace weights, which is what SAWB fits.

When ``c₁√E[w²] − c₂E|w| ≤ 0`` (all ``|w|`` nearly equal, e.g. already-binary weights: the
regression was not fitted there) we fall back to ``max|w|``, and an all-zero tensor gets the
smallest positive float; these guards are ours.

Reference: Choi, Chuang, Wang, Venkataramani, Srinivasan & Gopalakrishnan, "Bridging the
accuracy gap for 2-bit quantized neural networks (QNN)", 2018, arXiv:1807.06964.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["SAWB_COEFFICIENTS", "sawb_coefficients", "sawb_scale"]

# (bits, grid has a zero level) -> (c1, c2); see the module docstring for sources
SAWB_COEFFICIENTS: dict[tuple[int, bool], tuple[float, float]] = {
    (2, False): (3.212, 2.178),
    (2, True): (2.6, 1.71),
    (4, True): (12.1, 12.2),
    (4, False): (12.68, 12.80),
}


def sawb_coefficients(bits: int, zero: bool = True) -> tuple[float, float]:
    """``(c₁, c₂)`` for a ``bits``-bit grid with (``zero=True``, ``2^k − 1`` levels) or without a zero level."""
    try:
        return SAWB_COEFFICIENTS[(bits, zero)]
    except KeyError:
        known = ", ".join(f"bits={b} zero={z}" for b, z in SAWB_COEFFICIENTS)
        raise ValueError(
            f"no SAWB coefficients for bits={bits} zero={zero}; known: {known} (or pass coefficients=(c1, c2))"
        ) from None


def sawb_scale(w: Tensor, coefficients: tuple[float, float]) -> Tensor:
    """``α_w = c₁√E[w²] − c₂E|w|`` over the whole tensor (``max|w|`` where that is ``≤ 0``), a positive 0-d tensor."""
    c1, c2 = coefficients
    a = w.abs()
    alpha = c1 * a.square().mean().sqrt() - c2 * a.mean()
    # an all-zero tensor gets the smallest positive scale, so dividing by it stays finite
    return torch.where(alpha > 0, alpha, a.amax()).clamp_min(torch.finfo(alpha.dtype).tiny)
