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
3      ``α/3·{−3..3}`` (``KBitGrid(3)``)          (6.822, 6.143)     fitted [#fit]_
4      ``α/7·{−7..7}`` (``KBitGrid(4)``)          (12.1, 12.2)       LUQ reference code (Chmiel et al.)
4      16 levels ``±α/15·{1, 3, .., 15}``         (12.68, 12.80)     IBM fms-model-optimizer ``sawb_utils``
5      ``α/15·{−15..15}`` (``KBitGrid(5)``)       (16.03, 16.53)     fitted [#fit]_
6      ``α/31·{−31..31}`` (``KBitGrid(6)``)       (20.76, 21.98)     fitted [#fit]_
7      ``α/63·{−63..63}`` (``KBitGrid(7)``)       (25.56, 27.52)     fitted [#fit]_
8      ``α/127·{−127..127}`` (``KBitGrid(8)``)    (30.41, 33.15)     fitted [#fit]_
=====  ========================================  =================  ===================================

.. [#fit] fitted by ``scripts/fit_sawb.py`` (this library; family Gaussian, Laplace, uniform): the
   least-squares line through the MSE-optimal clips of the three shapes at unit RMS, 2·10⁶
   stratified draws each, seed 0, rounded to 4 significant digits. That family is the one of those
   tried that best reproduces the published zero-level pairs: it gives (2.575, 1.658) for the
   ternary grid and (11.37, 11.22) for ``KBitGrid(4)``; the published pairs are kept for those two.
   With the rounded pairs the MSE at ``α`` is at most 0.4 % above the optimum for Gaussian and
   Laplace weights (population values, by quadrature) at every fitted width (the published 4-bit
   pair: 1.5 %).

   From 4 bits on ``c₂ ≳ c₁`` and both grow by ≈ 5 per bit, while ``α`` grows only slowly (3.96 RMS
   for Gaussian weights at 8 bits): ``α`` is the small difference of two large terms, so the pair
   is ill-conditioned in the shape statistic ``ρ = E|w|/√E[w²]``. A relative error ``δ`` in ``ρ``
   moves ``α`` by ``≈ (c₂ρ/(c₁ − c₂ρ))·δ``: ``6.7δ`` for Gaussian weights at 8 bits (``4.1δ`` with the
   4-bit pair), and the last digits of the 6- to 8-bit pairs move with the fitting seed (≈ 0.3 % at
   8 bits, along the direction that keeps ``α`` fixed). The regression is only meant for ``ρ``
   inside the family's range, 0.707 (Laplace) to 0.866 (uniform). For flatter tensors it gives
   too small a clip, down to the ``max|w|`` fallback once ``ρ ≥ c₁/c₂`` (0.917 at 8 bits, 0.992 at
   4), and even for uniform weights, whose optimal clip is ``max|w|`` itself, the 8-bit ``α`` is
   1.4 % short, which costs 32 % MSE there (clipping dominates at that width).

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

__all__ = ["SAWB_COEFFICIENTS", "sawb_coefficients", "sawb_from_moments", "sawb_scale"]

# (bits, grid has a zero level) -> (c1, c2); see the module docstring for sources
SAWB_COEFFICIENTS: dict[tuple[int, bool], tuple[float, float]] = {
    (2, False): (3.212, 2.178),
    (2, True): (2.6, 1.71),
    (4, True): (12.1, 12.2),
    (4, False): (12.68, 12.80),
    # fitted by scripts/fit_sawb.py (family Gaussian, Laplace, uniform); more ill-conditioned as bits grow
    (3, True): (6.822, 6.143),
    (5, True): (16.03, 16.53),
    (6, True): (20.76, 21.98),
    (7, True): (25.56, 27.52),
    (8, True): (30.41, 33.15),
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
    a = w.abs()
    return sawb_from_moments(a.square().mean().sqrt(), a.mean(), a.amax(), coefficients)


def sawb_from_moments(rms: Tensor, mean_abs: Tensor, max_abs: Tensor, coefficients: tuple[float, float]) -> Tensor:
    """``α_w = c₁·rms − c₂·mean_abs``, ``max_abs`` where that is ``≤ 0``, at least the smallest positive float.

    Entry-wise, so one call gives the scales of many tensors from their moments.
    """
    c1, c2 = coefficients
    alpha = c1 * rms - c2 * mean_abs
    # an all-zero tensor gets the smallest positive scale, so dividing by it stays finite
    return torch.where(alpha > 0, alpha, max_abs).clamp_min(torch.finfo(alpha.dtype).tiny)
