import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.testing import assert_close

from qnnlab.quant import BinaryGrid, KBitGrid, get_grid, sign
from qnnlab.quant.grids import sign_tensor

floats = st.floats(-10, 10, allow_nan=False, width=32)


def brute_force_project(w: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """argmin over levels; ties to the larger level (the last minimum of |w - l|)."""
    d = (w[:, None] - levels[None, :]).abs()
    flipped = d.flip(1).argmin(1)
    return levels[levels.numel() - 1 - flipped]


def test_sign_never_returns_zero() -> None:
    assert_close(sign(torch.tensor([-2.0, -0.0, 0.0, 3.0])), torch.tensor([-1.0, 1.0, 1.0, 1.0]))
    x = torch.tensor([-float("inf"), -1e-45, 1e-45, float("inf"), float("nan")])
    assert sign(x).tolist() == [-1.0, -1.0, 1.0, 1.0, 1.0]


@given(st.lists(st.floats(allow_nan=False, width=32), min_size=1, max_size=50))
def test_sign_is_plus_one_exactly_where_w_is_not_negative(values: list[float]) -> None:
    w = torch.tensor(values)
    assert torch.equal(sign(w), torch.where(w >= 0, 1.0, -1.0))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
def test_sign_tensor_equals_sign_bitwise(dtype: torch.dtype) -> None:
    specials = [-float("inf"), -2.0, -1e-45, -0.0, 0.0, 1e-45, 3.0, float("inf"), float("nan"), -float("nan")]
    w = torch.cat([torch.tensor(specials), torch.randn(1000)]).to(dtype)
    assert torch.equal(sign_tensor(w), sign(w)) and sign_tensor(w).dtype == dtype
    grid = w.reshape(-1, 10).t()  # not contiguous
    assert torch.equal(sign_tensor(grid), sign(grid))
    leaf = torch.randn(5, requires_grad=True)
    assert torch.equal(sign_tensor(leaf), sign(leaf.detach()))


@given(st.lists(st.floats(width=32), min_size=1, max_size=50))
def test_sign_tensor_is_sign(values: list[float]) -> None:
    w = torch.tensor(values)
    assert torch.equal(sign_tensor(w), sign(w))


def test_binary_grid_hand_values() -> None:
    g = BinaryGrid()
    w = torch.tensor([-0.3, 0.0, 0.2, 1.7])
    assert_close(g.levels(), torch.tensor([-1.0, 1.0]))
    assert_close(g.project(w), torch.tensor([-1.0, 1.0, 1.0, 1.0]))
    assert_close(g.distance(w), torch.tensor([0.7, 1.0, 0.8, 0.7]))
    assert_close(BinaryGrid(0.5).project(w), torch.tensor([-0.5, 0.5, 0.5, 0.5]))


def test_kbit_grid_hand_values() -> None:
    g = KBitGrid(bits=3, scale=0.5)  # levels 0.5·{-3..3}
    assert_close(g.levels(), torch.tensor([-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5]))
    w = torch.tensor([-9.0, -0.26, 0.25, 0.74, 0.75, 1.3])
    assert_close(g.project(w), torch.tensor([-1.5, -0.5, 0.5, 0.5, 1.0, 1.5]))
    assert KBitGrid(bits=2).levels().tolist() == [-1.0, 0.0, 1.0]


@pytest.mark.parametrize(
    ("bits", "scale", "message"),
    [(0, 1.0, "Invalid bits: 0"), (2, 0.0, "Invalid scale: 0.0"), (2, -1.0, "Invalid scale: -1.0")],
)
def test_invalid_grids(bits: int, scale: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        get_grid(bits, scale)


def test_get_grid_dispatch() -> None:
    assert get_grid(1) == BinaryGrid()
    assert get_grid(4, 0.1) == KBitGrid(4, 0.1)
    assert get_grid(4).levels().numel() == 15


@given(st.lists(floats, min_size=1, max_size=50), st.integers(1, 6), st.floats(0.05, 3.0))
def test_project_is_nearest_level(values: list[float], bits: int, scale: float) -> None:
    grid = get_grid(bits, scale)
    w = torch.tensor(values)
    q = grid.project(w)
    levels = grid.levels()
    assert torch.isin(q, levels).all()
    # no level is strictly closer than the chosen one
    assert (grid.distance(w) <= (w[:, None] - levels).abs().min(1).values + 1e-5).all()
    # away from (float-rounded) ties, the fast rule equals the brute-force argmin
    two = (w[:, None] - levels).abs().topk(2, largest=False).values
    clear = (two[:, 1] - two[:, 0]) > 1e-4
    assert_close(q[clear], brute_force_project(w, levels)[clear])
