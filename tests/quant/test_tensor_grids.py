"""Per-tensor grids: segment reductions, SAWB steps and the default grid by hand, then invariants."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.testing import assert_close

from qnnlab.quant.segments import Segments
from qnnlab.quant.tensor_grids import default_grid, on_grid, sawb_steps


def test_segments_reduce_expand_and_split() -> None:
    a, b = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([[4.0], [5.0]])
    seg = Segments([a, b])
    assert torch.equal(seg.flat, torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]))
    assert torch.equal(seg.reduce(seg.flat, "sum"), torch.tensor([6.0, 9.0]))
    assert torch.equal(seg.stat(seg.flat, "mean"), torch.tensor([2.0, 2.0, 2.0, 4.5, 4.5]))
    x, y = seg.split(seg.flat * 2)
    assert torch.equal(x, 2 * a) and torch.equal(y, 2 * b) and y.shape == (2, 1)


def test_segments_reduce_empty_slices_as_segment_reduce() -> None:
    seg = Segments([torch.tensor([1.0, -2.0]), torch.empty(0), torch.tensor([3.0])])
    assert torch.equal(seg.reduce(seg.flat, "sum"), torch.tensor([-1.0, 0.0, 3.0]))
    assert_close(seg.reduce(seg.flat, "mean"), torch.tensor([-0.5, float("nan"), 3.0]), rtol=0, atol=0, equal_nan=True)
    assert torch.equal(seg.reduce(seg.flat, "max"), torch.tensor([1.0, float("-inf"), 3.0]))
    assert torch.equal(seg.reduce(seg.flat, "min"), torch.tensor([-2.0, float("inf"), 3.0]))
    assert torch.equal(seg.expand(torch.tensor([5.0, 6.0, 7.0])), torch.tensor([5.0, 5.0, 7.0]))
    with pytest.raises(ValueError, match="Invalid reduce: 'prod'; choose from: sum, mean, max, min"):
        seg.reduce(seg.flat, "prod")


@given(
    st.lists(st.lists(st.floats(-1e3, 1e3, allow_nan=False, width=32), max_size=40), min_size=1, max_size=5),
    st.sampled_from(["sum", "mean", "max", "min"]),
)
def test_segments_cpu_path_matches_torch_segment_reduce(ws: list[list[float]], reduce: str) -> None:
    # the CPU path reduces each slice with torch's own reductions; torch.segment_reduce is the reference
    seg = Segments([torch.tensor(w, dtype=torch.float32) for w in ws])
    ref = torch.segment_reduce(seg.flat, reduce, lengths=seg.lengths)
    got = seg.reduce(seg.flat, reduce)
    if reduce in ("max", "min"):
        assert torch.equal(got, ref)  # order-free: the same values
    else:  # sums to rounding: within n·2⁻²³·Σ|x| of the exact (float64) value, as any summation order is
        exact = Segments([torch.tensor(w, dtype=torch.float64) for w in ws])
        truth = torch.segment_reduce(exact.flat, reduce, lengths=exact.lengths)
        mass = torch.segment_reduce(exact.flat.abs(), reduce, lengths=exact.lengths)
        bound = exact.lengths * 2.0**-23 * mass + 1e-30
        assert torch.equal(got.isnan(), ref.isnan())  # the empty slices' means
        assert ((got.double() - truth).abs() <= bound).logical_or(truth.isnan()).all()
    per_tensor = torch.arange(len(ws), dtype=torch.float32)
    assert torch.equal(seg.expand(per_tensor), per_tensor.repeat_interleave(seg.lengths))


def test_sawb_steps_by_hand() -> None:
    # E[w²] = 4, E|w| = 1: α = 2·12.1 − 12.2 = 12, Δ = 12/7; equal magnitudes: 12.1 − 12.2 < 0 → max|w| = 1
    seg = Segments([torch.tensor([0.0, 0.0, 0.0, -4.0]), torch.tensor([1.0, -1.0, 1.0, -1.0])])
    assert_close(sawb_steps(seg, 4), torch.tensor([12.0 / 7, 1.0 / 7]))
    assert_close(sawb_steps(seg, 2), torch.tensor([2 * 2.6 - 1.71, 2.6 - 1.71]))  # ternary: m = 1
    assert_close(sawb_steps(seg, 2, (1.0, 0.0)), torch.tensor([2.0, 1.0]))  # coefficients passed in


def test_default_grid_by_hand() -> None:
    (q,), s = default_grid([torch.tensor([0.3, -0.2, 0.0])], 1)
    assert torch.equal(q, torch.tensor([1.0, -1.0, 1.0])) and torch.equal(s, torch.ones(1))
    # 2 bits: Δ = α = 3.49, −4/3.49 → −1 (clamped), the zeros stay
    (q,), s = default_grid([torch.tensor([0.0, 0.0, 0.0, -4.0])], 2)
    assert_close(q, torch.tensor([0.0, 0.0, 0.0, -3.49]))
    assert s.item() == pytest.approx(3.49)
    seg = Segments([torch.tensor([0.26, -0.74, 0.9])])
    (q,) = on_grid(seg, torch.tensor([0.25]), 3)  # levels 0.25·{−3..3}: ties go up
    assert_close(q, torch.tensor([0.25, -0.75, 0.75]))


tensors = st.lists(
    st.lists(st.floats(-3, 3, allow_nan=False, width=32), min_size=1, max_size=16), min_size=1, max_size=4
)


@given(tensors, st.integers(2, 8))
def test_default_grid_is_the_nearest_level_of_each_tensors_grid(ws: list[list[float]], bits: int) -> None:
    ts = [torch.tensor(w) for w in ws]
    q, s = default_grid(ts, bits)
    m = 2 ** (bits - 1) - 1
    assert (s > 0).all()
    for w, qt, st_ in zip(ts, q, s, strict=True):
        levels = st_ * torch.arange(-m, m + 1, dtype=w.dtype)
        assert torch.isin(qt, levels).all()  # exactly s·j: what the packed format stores
        best = (w[:, None] - levels).abs().min(1).values
        assert_close((w - qt).abs(), best, atol=1e-5 * float(st_), rtol=1e-5)
