"""ProxQuant: each prox region and target by hand, the λ_t schedule, the freeze, then invariants."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.testing import assert_close

from qnnlab.config import ConfigError, validate_config
from qnnlab.methods import ProxQuantConfig
from qnnlab.optim import ProxQuant
from qnnlab.quant.grids import sign
from qnnlab.quant.prox import (
    TERNARY_DELTA,
    kbit_grid,
    prox_binary,
    prox_grid,
    prox_toward,
    quantize_targets,
    ternary_grid,
)
from qnnlab.train.loop import fit

# -- binary prox, region by region (τ = 0.1) ----------------------------------------------


@pytest.mark.parametrize(
    ("w", "expected"),
    [
        (0.2, 0.3),  # |w| < 1 − τ: moves τ toward +1
        (-0.5, -0.6),  # ... and toward −1
        (0.95, 1.0),  # 1 − τ ≤ |w| ≤ 1 + τ: lands on sign(w)
        (-1.05, -1.0),
        (1.3, 1.2),  # |w| > 1 + τ: moves τ back toward +1
        (-2.0, -1.9),
        (0.0, 0.1),  # sign(0) = +1
    ],
)
def test_binary_prox_regions(w: float, expected: float) -> None:
    assert prox_binary(torch.tensor([w]), 0.1).item() == pytest.approx(expected)


def test_binary_prox_with_tau_at_least_one_is_sign_after_the_clip() -> None:
    w = torch.tensor([0.2, -0.7, 0.0, 3.0, -1.5])
    assert_close(prox_binary(w, 1.5), torch.tensor([1.0, -1.0, 1.0, 1.5, -1.0]))
    assert_close(prox_binary(w, 1.5).clamp(-1, 1), torch.tensor([1.0, -1.0, 1.0, 1.0, -1.0]))
    assert_close(prox_binary(w, 0.0), w)  # τ = 0 is the identity


def one_step(w: list[float], g: list[float], **kw) -> torch.Tensor:
    p = torch.nn.Parameter(torch.tensor(w))
    p.grad = torch.tensor(g)
    ProxQuant([p], **{"lr": 0.1, "lam": 1.0, "base": "sgd", **kw}).step()
    return p.detach()


def test_binary_step_by_hand() -> None:
    # τ = lr·λ = 0.1; SGD step, then prox, then clip
    # 0.5 − 0.1 = 0.4 → 0.5; 0.95 + 0.1 = 1.05 → 1; −0.9 − 0.2 = −1.1 → −1; 0.1 − 0.3 = −0.2 → −0.3
    out = one_step([0.5, 0.95, -0.9, 0.1], [1.0, -1.0, 2.0, 3.0])
    assert_close(out, torch.tensor([0.5, 1.0, -1.0, -0.3]))


def test_adam_base_then_prox() -> None:
    # Adam's first step is lr·sign(g): 0.5 − 0.1 = 0.4, −0.5 + 0.1 = −0.4; then the prox with τ = 0.1·0.5
    out = one_step([0.5, -0.5], [3.0, -0.2], base="adam", lam=0.5)
    assert_close(out, torch.tensor([0.45, -0.45]))


# -- ternary and k-bit targets ---------------------------------------------------------------


def test_ternary_targets_by_hand() -> None:
    # mean|w| = 0.55, δ = 0.385: 0.9, −0.5, −0.7 are kept, s = (0.9 + 0.5 + 0.7)/3 = 0.7; 0.1 → 0
    # second tensor: mean 0.65/3, δ = 0.151667: 0.4, 0.2 kept, s = 0.3; 0.05 → 0
    # third: all zero stays zero, with the smallest positive scale
    (a, b, c), scales = ternary_grid(
        [torch.tensor([0.9, 0.1, -0.5, -0.7]), torch.tensor([[0.4], [0.2], [0.05]]), torch.zeros(2)]
    )
    assert_close(a, torch.tensor([0.7, 0.0, -0.7, -0.7]))
    assert_close(b, torch.tensor([[0.3], [0.3], [0.0]]))
    assert torch.equal(c, torch.zeros(2))
    assert_close(scales, torch.tensor([0.7, 0.3, torch.finfo(torch.float32).tiny]))


def test_kbit_targets_by_hand() -> None:
    # 3 bits, m = 3, s = 0.6/3 = 0.2: w/s = [3, 1.25, −1.75, 0.25, 0.5] → [3, 1, −2, 0, 1] (ties go up)
    # 4 bits, m = 7, s = 0.1: w/s = [7, 3.3, −1.2] → [7, 3, −1]
    (a,), scale = kbit_grid([torch.tensor([0.6, 0.25, -0.35, 0.05, 0.1])], 3)
    assert_close(a, torch.tensor([0.6, 0.2, -0.4, 0.0, 0.2]))
    assert_close(scale, torch.tensor([0.2]))
    (b,), _ = kbit_grid([torch.tensor([0.7, 0.33, -0.12])], 4)
    assert_close(b, torch.tensor([0.7, 0.3, -0.1]))
    assert_close(kbit_grid([torch.zeros(3)], 3)[0][0], torch.zeros(3))


def test_binary_targets_have_unit_scale() -> None:
    (q,), scale = prox_grid([torch.tensor([0.3, -0.2, 0.0])], 1)
    assert torch.equal(q, torch.tensor([1.0, -1.0, 1.0])) and torch.equal(scale, torch.ones(1))


def test_prox_toward_and_ternary_step_by_hand() -> None:
    # zero gradient: only the prox acts, τ = 0.5: (w + 0.5·T(w))/1.5
    assert_close(prox_toward(torch.tensor([1.0, -0.4]), torch.tensor([0.0, -1.0]), 1.0), torch.tensor([0.5, -0.7]))
    # T(w) = [0.7, 0, −0.7, −0.7] (test_ternary_targets_by_hand)
    out = one_step([0.9, 0.1, -0.5, -0.7], [0.0] * 4, bits=2, lam=5.0)
    assert_close(out, torch.tensor([1.25 / 1.5, 0.1 / 1.5, -0.85 / 1.5, -1.05 / 1.5]))


def test_kbit_step_by_hand() -> None:
    # τ = 1: halfway to the 3-bit levels [0.6, 0.2, −0.4, 0, 0.2]
    out = one_step([0.6, 0.25, -0.35, 0.05, 0.1], [0.0] * 5, bits=3, lam=10.0)
    assert_close(out, torch.tensor([0.6, 0.225, -0.375, 0.025, 0.15]))


# -- λ_t schedule ---------------------------------------------------------------------------


def test_config_schedule_values() -> None:
    cfg = ProxQuantConfig(lam=0.01)
    assert [cfg.epoch_values(e)["lam"] for e in range(4)] == pytest.approx([0.0, 0.01, 0.02, 0.03])
    assert cfg.optimizer_kwargs()["lam"] == 0.0 and cfg.optimizer_kwargs()["lam_growth"] == "constant"
    const = ProxQuantConfig(lam=0.01, lam_schedule="constant")
    assert [const.epoch_values(e)["lam"] for e in (0, 7)] == [0.01, 0.01]
    per_step = ProxQuantConfig(lam=0.01, lam_schedule="iteration", freeze_epoch=3)
    assert per_step.optimizer_kwargs()["lam_growth"] == "iteration"
    assert per_step.optimizer_kwargs()["lam"] == 0.01
    assert [per_step.epoch_values(e) for e in (2, 3)] == [{"frozen": False}, {"frozen": True}]


def test_iteration_growth_by_hand() -> None:
    # λ_k = λ·k with k = steps taken before: τ = 0, 0.1, 0.2 with lr = 0.1, λ = 1
    p = torch.nn.Parameter(torch.tensor([0.5]))
    opt = ProxQuant([p], lr=0.1, lam=1.0, lam_growth="iteration", base="sgd")
    seen = []
    for _ in range(3):
        seen.append(opt.lam_t(opt.param_groups[0]))
        p.grad = torch.zeros(1)
        opt.step()
        seen.append(p.item())
    assert seen == pytest.approx([0.0, 0.5, 1.0, 0.6, 2.0, 0.8])


def test_loop_writes_and_records_the_schedule() -> None:
    cfg = validate_config(
        {
            "epochs": 4,
            "data": {"name": "logistic", "n_train": 300, "n_test": 100},
            "method": {"name": "proxquant", "lam": 0.5, "freeze_epoch": 3},
        }
    )
    history = fit(cfg).history
    # epoch e is trained with epoch_values(e − 1); epoch 0 records the initialization
    assert [h["lam"] for h in history] == pytest.approx([0.0, 0.0, 0.5, 1.0, 1.5])
    assert [h["frozen"] for h in history] == [0.0, 0.0, 0.0, 0.0, 1.0]
    assert history[-1]["grid_dist"] == 0.0  # frozen on the grid


# -- freeze ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bits", "w", "frozen"),
    [
        (1, [0.3, -0.6, 0.0], [1.0, -1.0, 1.0]),
        (2, [0.9, 0.1, -0.5, -0.7], [0.7, 0.0, -0.7, -0.7]),
        (3, [0.6, 0.25, -0.35, 0.05], [0.6, 0.2, -0.4, 0.0]),
    ],
)
def test_freeze_hard_quantizes_and_holds(bits: int, w: list[float], frozen: list[float]) -> None:
    p = torch.nn.Parameter(torch.tensor(w))
    b = torch.nn.Parameter(torch.tensor([0.5]))
    opt = ProxQuant([{"params": [p]}, {"params": [b], "constrained": False}], lr=0.1, bits=bits, lam=1.0)
    opt.param_groups[0]["frozen"] = True
    for step in range(3):
        p.grad, b.grad = torch.ones_like(p), torch.ones(1)
        opt.step()
        assert_close(p.detach(), torch.tensor(frozen))
        assert b.item() == pytest.approx(0.5 - 0.1 * (step + 1))  # Adam: lr·sign(g) per step
    after = p.detach().clone()
    p.grad = -torch.ones_like(p)
    opt.step()
    assert torch.equal(p.detach(), after)  # bit for bit: no re-quantization drift


# -- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lam": -1.0}, r"Invalid lam: -1.0; must be >= 0"),
        ({"bits": 0}, r"Invalid bits: 0; must be an integer >= 1"),
        ({"bits": 1.5}, r"Invalid bits: 1.5"),
        ({"lam_growth": "epoch"}, r"Invalid lam_growth: 'epoch'; choose from: constant, iteration"),
    ],
)
def test_invalid_hyperparameters(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ProxQuant([torch.nn.Parameter(torch.zeros(2))], **kwargs)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"method": {"name": "proxquant", "lam": -1}}, r"^method\.lam: Input should be greater than or equal to 0"),
        ({"method": {"name": "proxquant", "bits": 9}, "bits": 9}, r"^method\.bits: Input should be less than or"),
        ({"method": {"name": "proxquant", "bits": 2}}, r"config: method\.bits \(2\) must equal bits \(1\)"),
        (
            {"method": {"name": "proxquant", "lam_schedule": "weekly"}},
            r"^method\.lam_schedule: Input should be 'epoch'",
        ),
        (
            {"method": {"name": "proxquant", "freeze_epoch": 50}},
            r"config: method\.freeze_epoch \(50\) must be < epochs \(50\)",
        ),
        ({"method": {"name": "proxquant", "freeze_epoch": -1}}, r"^method\.freeze_epoch: Input should be greater"),
    ],
)
def test_invalid_configs_name_the_field(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        validate_config(changes)


def test_ternary_run_config_is_valid() -> None:
    assert validate_config({"bits": 2, "method": {"name": "proxquant", "bits": 2}}).method.bits == 2


# -- properties ------------------------------------------------------------------------------

reals = st.floats(-3, 3, allow_nan=False, width=32)
taus = st.floats(0, 3, allow_nan=False)


@given(st.lists(reals, min_size=1, max_size=30), taus)
def test_binary_prox_shrinks_the_distance_by_tau(ws: list[float], tau: float) -> None:
    w = torch.tensor(ws, dtype=torch.float64)
    s = sign(w)
    out = prox_binary(w, tau)
    # between w and its nearest grid point, and exactly τ closer to it (or on it)
    assert ((out - w) * (s - w) >= 0).all() and ((out - s) * (w - s) >= 0).all()
    assert_close((out - s).abs(), ((w - s).abs() - tau).clamp_min(0))
    if tau >= 1:
        assert torch.equal(out.clamp(-1, 1), s)


def naive_ternarize(w: torch.Tensor) -> torch.Tensor:
    """The symmetric ternarization written with masks on one tensor (the reference)."""
    delta = TERNARY_DELTA * w.abs().mean()
    kept = w.abs() >= delta
    out = torch.zeros_like(w)
    out[kept] = w[kept].abs().mean() * torch.sign(w[kept])
    return out


def naive_nearest_level(w: torch.Tensor, bits: int) -> torch.Tensor:
    m = 2 ** (bits - 1) - 1
    levels = w.abs().max() / m * torch.arange(-m, m + 1, dtype=w.dtype)
    # argmin over levels, ties to the larger level
    dist = (w[:, None] - levels).abs()
    return levels[dist.shape[1] - 1 - dist.flip(1).argmin(1)]


tensors = st.lists(st.lists(st.floats(-1, 1, allow_nan=False), min_size=1, max_size=12), min_size=1, max_size=4)


@given(tensors)
def test_ternary_targets_match_reference(ws: list[list[float]]) -> None:
    ts = [torch.tensor(w, dtype=torch.float64) for w in ws]
    targets, scales = ternary_grid(ts)
    for got, t, s in zip(targets, ts, scales, strict=True):
        assert_close(got, naive_ternarize(t))
        assert torch.isin(got, s * torch.tensor([-1.0, 0.0, 1.0], dtype=t.dtype)).all()  # on KBitGrid(2, s)


@given(tensors, st.integers(3, 6))
def test_kbit_targets_are_the_nearest_level(ws: list[list[float]], bits: int) -> None:
    ts = [torch.tensor(w, dtype=torch.float64) for w in ws]
    for got, t in zip(kbit_grid(ts, bits)[0], ts, strict=True):
        if t.abs().max() > 0:
            ref = naive_nearest_level(t, bits)
            # a float tie may break either way: then both levels are nearest
            assert_close((got - t).abs(), (ref - t).abs())


@given(tensors, st.integers(2, 5), taus)
def test_prox_lies_between_w_and_its_target(ws: list[list[float]], bits: int, tau: float) -> None:
    ts = [torch.tensor(w, dtype=torch.float64) for w in ws]
    for t, q in zip(ts, quantize_targets(ts, bits), strict=True):
        out = prox_toward(t, q, tau)
        lo, hi = torch.minimum(t, q), torch.maximum(t, q)
        assert (out >= lo - 1e-12).all() and (out <= hi + 1e-12).all()


@given(
    st.lists(st.floats(-1, 1, allow_nan=False, width=32), min_size=2, max_size=20),
    st.lists(st.floats(-10, 10, allow_nan=False, width=32), min_size=5, max_size=5),
    st.integers(1, 4),
    st.sampled_from(["sgd", "adam"]),
    st.floats(1e-3, 2.0),
)
def test_iterates_stay_in_box(ws: list[float], gs: list[float], bits: int, base: str, lr: float) -> None:
    p = torch.nn.Parameter(torch.tensor(ws))
    opt = ProxQuant([p], lr=lr, bits=bits, lam=0.5, base=base, momentum=0.5 if base == "sgd" else 0.0)
    for g in gs:
        p.grad = torch.full_like(p, g)
        opt.step()
        assert (p.abs() <= 1).all()


# -- end to end ------------------------------------------------------------------------------


@pytest.mark.slow
def test_reaches_the_enumerated_binary_optimum() -> None:
    from qnnlab.experiments.presets import preset_runs

    # 20 of the preset's 50 epochs: λ_e·lr has overtaken Adam's step by then
    cfg = next(c for c in preset_runs("logistic", 1) if c.label == "proxquant").with_(epochs=20)
    s = fit(cfg).summary
    assert s["rel_gap"] == 0.0 and s["on_grid"]
    assert s["near_grid"] == 1.0  # the continuous weights themselves end within 0.05 of ±1


def test_quantize_refuses_another_bit_width() -> None:
    p = torch.nn.Parameter(torch.tensor([0.3, -0.6]))
    with pytest.raises(ValueError, match="this ProxQuant group trains for bits=2; it cannot be judged on bits=4"):
        ProxQuant([p], bits=2).quantize([p], 4)
    # mean|w| = 0.45, δ = 0.315: only −0.6 is kept, s = 0.6
    (q,), scale = ProxQuant([p], bits=2).quantize([p], 2)
    assert_close(q, torch.tensor([0.0, -0.6]))
    assert scale.item() == pytest.approx(0.6)
