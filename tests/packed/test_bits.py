import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from qnnlab.packed.bits import MAX_BITS, pack_rows, row_bytes, unpack_rows


@pytest.mark.parametrize(
    ("codes", "bits", "packed"),
    [
        ([[1, 0, 1]], 1, [[0b10100000]]),
        ([[1] * 9, [0] * 8 + [1]], 1, [[0xFF, 0x80], [0x00, 0x80]]),  # each row padded to whole bytes
        ([[3, 0, 2]], 2, [[0b11001000]]),
        ([[5, 6, 7]], 3, [[0b10111011, 0b10000000]]),
        ([[15, 1, 2]], 4, [[0xF1, 0x20]]),
        ([[255, 7]], 8, [[255, 7]]),
        ([[0x1234]], 16, [[0x12, 0x34]]),
    ],
)
def test_hand_packed_bytes(codes: list, bits: int, packed: list) -> None:
    out = pack_rows(torch.tensor(codes), bits)
    assert out.dtype == torch.uint8
    assert out.tolist() == packed
    assert unpack_rows(out, bits, len(codes), len(codes[0])).tolist() == codes


@given(
    rows=st.integers(1, 5),
    cols=st.integers(1, 40),
    bits=st.integers(1, MAX_BITS),
    seed=st.integers(0, 2**16),
)
def test_unpack_inverts_pack(rows: int, cols: int, bits: int, seed: int) -> None:
    codes = torch.randint(0, 2**bits, (rows, cols), generator=torch.Generator().manual_seed(seed))
    packed = pack_rows(codes, bits)
    assert packed.shape == (rows, row_bytes(cols, bits)) == (rows, -(-cols * bits // 8))
    assert torch.equal(unpack_rows(packed, bits, rows, cols), codes)


def test_bad_arguments_name_the_value() -> None:
    with pytest.raises(ValueError, match=r"Invalid bits: 0; must be in 1\.\.16"):
        pack_rows(torch.zeros(1, 3, dtype=torch.long), 0)
    with pytest.raises(ValueError, match="Invalid bits: 17"):
        unpack_rows(torch.zeros(1, 1, dtype=torch.uint8), 17, 1, 1)
    with pytest.raises(ValueError, match=r"must be a matrix \(rows, cols\); got shape \(3,\)"):
        pack_rows(torch.zeros(3, dtype=torch.long), 1)
    with pytest.raises(ValueError, match=r"must be uint8 of shape \(2, 1\); got torch.uint8 \(2, 2\)"):
        unpack_rows(torch.zeros(2, 2, dtype=torch.uint8), 1, 2, 5)
