"""Counter-based draws: the hash by hand, the Bernoulli law of stochastic BinaryConnect, seeds and resume."""

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from qnnlab.optim import BinaryConnect
from qnnlab.optim._draws import _splitmix64, stream_key, uniform


def test_the_hash_by_hand() -> None:
    # splitmix64 from state 0: its well-known first output; fmix32(0) = 0, fmix32(1) = 0x514E28B7 (MurmurHash3)
    assert _splitmix64(0) == 0xE220A8397B1DCDAF
    assert uniform(0.0, torch.zeros(1)).item() == 0.0  # key 0, entry 0: h = fmix32(0) = 0
    assert uniform(1.0, torch.zeros(1)).item() == 0x514E28 * 2.0**-24  # ⌊0x514E28B7 / 2⁸⌋·2⁻²⁴
    # entry 1 under key 1 − 0x9E3779B9 (mod 2³²) hashes 1 as well: u depends on key + i·0x9E3779B9 only
    key = (1 - 0x9E3779B9) % 2**32
    assert uniform(float(key), torch.zeros(2, dtype=torch.float64))[1].item() == 0x514E28 * 2.0**-24
    assert stream_key(0, 0, 0) == _splitmix64(_splitmix64(_splitmix64(0))) % 2**32


def test_draws_are_exact_in_both_dtypes_and_follow_the_shape() -> None:
    like = torch.zeros(3, 4)
    u32, u64 = uniform(12345.0, like), uniform(12345.0, like.double())
    assert u32.shape == (3, 4) and torch.equal(u32.double(), u64)
    assert ((u64 * 2**24) == (u64 * 2**24).floor()).all() and (u64 >= 0).all() and (u64 < 1).all()


@settings(max_examples=20, deadline=None)
@given(w=st.floats(-1.0, 1.0), seed=st.integers(0, 2**63))
def test_stochastic_binaryconnect_is_plus_one_with_probability_half_one_plus_w(w: float, seed: int) -> None:
    n = 5_000
    p = torch.nn.Parameter(torch.full((n,), w))
    BinaryConnect([p], lr=0.1, stochastic=True, seed=seed)  # construction draws the first binary weights
    q = (1 + torch.tensor(w).clamp(-1, 1).item()) / 2
    plus = (p.detach() == 1).sum().item()
    assert abs(plus - n * q) <= 5 * (n * q * (1 - q)) ** 0.5 + 1  # 5 binomial standard deviations, ±1 for rounding


def run(seed: int | None, steps: int, torch_seed: int = 0, opt=None, ps=None):
    torch.manual_seed(torch_seed)
    if ps is None:
        ps = [torch.nn.Parameter(torch.rand(40, 3) * 2 - 1), torch.nn.Parameter(torch.rand(7) * 2 - 1)]
        opt = BinaryConnect(ps, lr=0.05, stochastic=True, seed=seed)
    for k in range(steps):
        for i, p in enumerate(ps):
            p.grad = torch.full_like(p, 0.1 * (k - i))
        opt.step()
    return ps, opt


def test_the_seed_not_torchs_generator_decides_the_draws() -> None:
    a, _ = run(seed=7, steps=3, torch_seed=0)
    state = torch.get_rng_state()
    b, _ = run(seed=7, steps=3, torch_seed=0)
    assert torch.equal(torch.get_rng_state(), state)  # steps consume nothing from torch's generator
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    c, _ = run(seed=8, steps=3, torch_seed=0)
    assert not torch.equal(a[0], c[0])
    # the two tensors of a group draw different streams: same latent, different binary weights
    ps = [torch.nn.Parameter(torch.zeros(1000)) for _ in range(2)]
    BinaryConnect(ps, stochastic=True, seed=1)
    assert not torch.equal(ps[0], ps[1])


def test_default_seed_is_torchs_initial_seed() -> None:
    torch.manual_seed(42)
    opt = BinaryConnect([torch.nn.Parameter(torch.zeros(3))], stochastic=True)
    assert opt.param_groups[0]["seed"] == 42


def test_a_resumed_run_draws_what_the_uninterrupted_one_did() -> None:
    straight, _ = run(seed=3, steps=4)
    ps, opt = run(seed=3, steps=2)
    saved = copy.deepcopy(opt.state_dict())
    torch.manual_seed(999)  # a different process: torch's generator elsewhere
    moved = [torch.nn.Parameter(p.detach().clone()) for p in ps]
    fresh = BinaryConnect(moved, lr=0.05, stochastic=True, seed=0)
    fresh.load_state_dict(saved)
    assert fresh.param_groups[0]["seed"] == 3
    for k in (2, 3):
        for i, p in enumerate(moved):
            p.grad = torch.full_like(p, 0.1 * (k - i))
        fresh.step()
    assert all(torch.equal(x, y) for x, y in zip(straight, moved, strict=True))


@pytest.mark.parametrize("seed", [-1, 1.5, True, "3"])
def test_bad_seeds_are_refused(seed) -> None:
    with pytest.raises(ValueError, match="Invalid seed"):
        BinaryConnect([torch.nn.Parameter(torch.zeros(2))], stochastic=True, seed=seed)
