"""Packed binary matmuls against the float products."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from qnnlab.packed import PackedBinaryLinear, pack_signs, unpack_matmul, xnor_matmul


def signs(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.where(torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) < 0.5, -1.0, 1.0)


def test_hand_example() -> None:
    x = torch.tensor([[1.0, -1.0, 1.0]])
    w = torch.tensor([[1.0, 1.0, 1.0], [-1.0, 1.0, -1.0]])
    assert pack_signs(x).tolist() == [[0b10100000]] and pack_signs(w).tolist() == [[0b11100000], [0b01000000]]
    # row 0: one differing bit -> 3 - 2·1 = 1; row 1: all three differ -> 3 - 2·3 = -3
    assert xnor_matmul(pack_signs(x), pack_signs(w), 3).tolist() == [[1, -3]]
    assert unpack_matmul(x, pack_signs(w), 3).tolist() == [[1.0, -3.0]]


@given(n=st.integers(1, 9), k=st.integers(1, 200), m=st.integers(1, 12), seed=st.integers(0, 2**16))
def test_xnor_popcount_equals_the_float_product(n: int, k: int, m: int, seed: int) -> None:
    x, w = signs(n, k, seed=seed), signs(m, k, seed=seed + 1)
    out = xnor_matmul(pack_signs(x), pack_signs(w), k)
    assert out.dtype == torch.int32
    assert torch.equal(out.float(), x @ w.T)


@given(k=st.integers(1, 150), m=st.integers(1, 20), block=st.integers(1, 8), seed=st.integers(0, 2**16))
def test_sign_unpack_equals_the_float_product(k: int, m: int, block: int, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(-50, 51, (2, 3, k), generator=gen).float()  # integer-valued: exact products
    w = signs(m, k, seed=seed)
    assert torch.equal(unpack_matmul(x, pack_signs(w), k, block=block), x @ w.T)


def test_large_k_is_exact() -> None:
    x, w = signs(64, 4099, seed=3), signs(300, 4099, seed=4)
    assert torch.equal(xnor_matmul(pack_signs(x), pack_signs(w), 4099).float(), x @ w.T)


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_the_layer_equals_the_float_layer(scale: float) -> None:
    linear = nn.Linear(300, 40)
    with torch.no_grad():
        linear.bias.copy_(torch.randint(-3, 4, (40,)).float())
    layer = PackedBinaryLinear.from_linear(linear, scale, block=16)
    reference = nn.Linear(300, 40)
    with torch.no_grad():
        reference.weight.copy_(scale * torch.where(linear.weight >= 0, 1.0, -1.0))
        reference.bias.copy_(linear.bias)
        x = torch.randint(-8, 9, (5, 300)).float()
        xb = signs(5, 300)
        assert torch.equal(layer(x), reference(x))
        assert torch.equal(layer.forward_binary(pack_signs(xb)), reference(xb))
    # 300 signs -> 38 bytes per output instead of 1200
    assert layer.w_bits.shape == (40, 38) and layer.w_bits.nbytes * 31 < reference.weight.nbytes
    assert "in_features=300, out_features=40, bias=True" in repr(layer)


def test_shape_errors() -> None:
    with pytest.raises(ValueError, match=r"packed rows of K = 9 signs have 2 bytes; got 1 and 2"):
        xnor_matmul(torch.zeros(1, 1, dtype=torch.uint8), torch.zeros(1, 2, dtype=torch.uint8), 9)
    with pytest.raises(ValueError, match="x must end in K = 9"):
        unpack_matmul(torch.zeros(1, 8), torch.zeros(1, 2, dtype=torch.uint8), 9)
    with pytest.raises(ValueError, match=r"w_bits must be uint8 \(out_features, 2\) for in_features = 9"):
        PackedBinaryLinear(torch.zeros(3, 1, dtype=torch.uint8), 9, torch.tensor(1.0), None)
