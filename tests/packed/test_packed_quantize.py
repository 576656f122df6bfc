import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from qnnlab.packed.quantize import QuantizedTensor, QuantSpec, packed_nbytes, quantize
from qnnlab.quant import get_grid


def q(w: list, bits: int, scale: float | str = 1.0) -> tuple[list, list, list]:
    out = quantize(torch.tensor(w), QuantSpec(bits, scale))
    return out.codes.tolist(), out.scale.tolist(), out.dequantize().tolist()


def test_binary_codes_are_sign_bits() -> None:
    # sign(0) = +1, as in training; code 1 <-> +1
    assert q([[0.3, -0.2, 0.0, -1.7]], 1) == ([[1, 0, 1, 0]], 1.0, [[1.0, -1.0, 1.0, -1.0]])
    assert q([[0.3, -0.2]], 1, 0.5) == ([[1, 0]], 0.5, [[0.5, -0.5]])


def test_binary_scales_are_mean_abs() -> None:
    w = [[1.0, -3.0], [2.0, 0.0]]
    assert q(w, 1, "tensor") == ([[1, 0], [1, 1]], 1.5, [[1.5, -1.5], [1.5, 1.5]])  # mean |w| = 6/4
    assert q(w, 1, "channel") == ([[1, 0], [1, 1]], [2.0, 1.0], [[2.0, -2.0], [1.0, 1.0]])


def test_kbit_scales_are_max_abs_over_m() -> None:
    # 2 bits: levels {-1, 0, 1}, m = 1, s = max|w| = 2; w/s = [0.2, -1, 0.6, 0.45] -> [0, -1, 1, 0]
    assert q([[0.4, -2.0], [1.2, 0.9]], 2, "tensor") == ([[1, 0], [2, 1]], 2.0, [[0.0, -2.0], [2.0, 0.0]])
    # 3 bits: m = 3; row 0: s = 3/3 = 1, ties go up (0.5 -> 1); row 1: s = 0.75/3 = 0.25, w/s = [3, -1.5, 0]
    codes, scale, deq = q([[3.0, -1.4, 0.5], [0.75, -0.375, 0.0]], 3, "channel")
    assert scale == [1.0, 0.25]
    assert codes == [[6, 2, 4], [6, 2, 3]]  # level + m
    assert deq == [[3.0, -1.0, 1.0], [0.75, -0.25, 0.0]]


def test_a_zero_statistic_gives_scale_one() -> None:
    assert q([[0.0, 0.0], [1.0, -1.0]], 2, "channel")[1] == [1.0, 1.0]
    assert q([[0.0, 0.0]], 1, "tensor")[1] == 1.0


@given(
    bits=st.integers(1, 8),
    scale=st.sampled_from([1.0, 0.5, 0.25, 3.0]),
    seed=st.integers(0, 2**16),
)
def test_fixed_scale_is_exactly_the_training_quantizer(bits: int, scale: float, seed: int) -> None:
    w = torch.randn(4, 7, generator=torch.Generator().manual_seed(seed)) * 3
    assert torch.equal(quantize(w, QuantSpec(bits, scale)).dequantize(), get_grid(bits, scale).project(w))


@given(
    bits=st.integers(1, 16),
    mode=st.sampled_from(["tensor", "channel"]),
    shape=st.sampled_from([(3, 5), (2, 3, 2, 2), (4, 1)]),
    seed=st.integers(0, 2**16),
)
def test_estimated_scales_put_every_weight_on_its_grid(bits: int, mode: str, shape: tuple, seed: int) -> None:
    w = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    qt = quantize(w, QuantSpec(bits, mode))
    s = qt.scale.reshape(-1, *[1] * (w.dim() - 1)) if mode == "channel" else qt.scale
    assert torch.equal(qt.dequantize(), get_grid(bits).project(w / s) * s)
    assert qt.codes.min() >= 0 and qt.codes.max() < get_grid(bits).levels().numel()
    back = QuantizedTensor.from_packed(qt.packed(), qt.scale, bits, shape, torch.float32)
    assert torch.equal(back.codes, qt.codes)
    assert torch.equal(back.dequantize(), qt.dequantize())
    assert qt.packed().nbytes + 4 * qt.scale.numel() == sum(packed_nbytes(shape, QuantSpec(bits, mode)))


def test_dtype_is_kept() -> None:
    w = torch.tensor([[0.3, -2.0]], dtype=torch.float64)
    out = quantize(w, QuantSpec(2)).dequantize()
    assert out.dtype == torch.float64 and out.tolist() == [[0.0, -1.0]]


def test_bad_specs_and_tensors_fail_with_the_value() -> None:
    with pytest.raises(ValueError, match=r"Invalid bits: 0; must be an integer in 1\.\.16"):
        QuantSpec(0)
    with pytest.raises(ValueError, match=r"Invalid bits: 1\.5; must be an integer"):
        QuantSpec(1.5)
    with pytest.raises(ValueError, match="Invalid bits: 17"):
        QuantSpec(17)
    with pytest.raises(ValueError, match=r"Invalid scale: -1\.0; must be > 0"):
        QuantSpec(1, -1.0)
    with pytest.raises(ValueError, match="unknown scale 'row'; choose from: a number > 0, tensor, channel"):
        QuantSpec(1, "row")
    with pytest.raises(ValueError, match=r"per-channel scales need a tensor of 2 or more dims; got shape \(3,\)"):
        quantize(torch.ones(3), QuantSpec(1, "channel"))
    with pytest.raises(ValueError, match=r"cannot quantize a torch\.int64 tensor"):
        quantize(torch.ones(2, 2, dtype=torch.long), QuantSpec(1))
    with pytest.raises(ValueError, match="NaN or infinite"):
        quantize(torch.tensor([[1.0, float("nan")]]), QuantSpec(1))


def test_out_of_range_codes_are_refused() -> None:
    packed = torch.tensor([[0b11000000]], dtype=torch.uint8)  # the 2-bit code 3: no such level
    with pytest.raises(ValueError, match=r"code 3 is out of range for the 2-bit grid \(max 2\)"):
        QuantizedTensor.from_packed(packed, torch.tensor(1.0), 2, (1, 1), torch.float32)
    with pytest.raises(ValueError, match=r"scale must be float32 of shape \(\) or \(1,\); got torch.float32 \(2,\)"):
        QuantizedTensor.from_packed(packed, torch.ones(2), 1, (1, 1), torch.float32)


def test_levels_are_the_unit_grid_integers() -> None:
    w = torch.tensor([[-0.3, 0.0, 2.0], [0.4, -5.0, 1.0]])
    assert quantize(w, QuantSpec(1)).levels().tolist() == [[-1, 1, 1], [1, -1, 1]]  # sign(0) = +1
    q = quantize(w, QuantSpec(3, 0.5))  # levels 0.5·{−3..3}: w/0.5 rounded (ties up), clamped to ±3
    assert q.levels().tolist() == [[-1, 0, 3], [1, -3, 2]] and q.levels().dtype == torch.int64
    assert torch.equal(q.scale * q.levels(), q.dequantize())
