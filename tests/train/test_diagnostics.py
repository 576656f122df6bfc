"""Diagnostics: hand-computed values for every branch, the tangent-cone limit, and the training loop's records."""

import collections
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from qnnlab.config import validate_config
from qnnlab.experiments.presets import preset_runs
from qnnlab.optim import SGD, ASkewSGD
from qnnlab.quant.grids import BinaryGrid, KBitGrid
from qnnlab.train.diagnostics import (
    feasible_projection,
    gradient_mapping,
    histogram_edges,
    model_stationarity,
    optimizer_diagnostics,
    stationarity,
    violation,
    weight_diagnostics,
    weight_histogram,
)
from qnnlab.train.evaluate import loss_fn
from qnnlab.train.loop import fit

BIN = BinaryGrid()
EPS = 0.5625  # √ε = 0.75, so C_ε ∩ [−1, 1] = {0.5 ≤ |w| ≤ 1} exactly in floating point
SMALL = {"epochs": 3, "data": {"name": "logistic", "n_train": 500, "n_test": 100}}

pytestmark = pytest.mark.usefixtures("one_thread")


def t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def test_violation_is_the_positive_part_of_minus_phi() -> None:
    # (w² − 1)² = 1, 0.87890625, 0.5625, 0, 0.1936; minus ε = 0.5625, then [·]₊
    assert torch.equal(violation(t(0.0, 0.25, 0.5, 1.0, 1.2), EPS), t(0.4375, 0.31640625, 0.0, 0.0, 0.0))


def test_feasible_projection_for_each_set() -> None:
    w = t(0.0, 0.25, 0.5, 0.8, 1.2, -0.3, -2.0)
    # C_ε ∩ box = {0.5 ≤ |w| ≤ 1}; 0 goes to +a (sign(0) = +1)
    assert torch.equal(feasible_projection(w, BIN, EPS), t(0.5, 0.5, 0.5, 0.8, 1.0, -0.5, -1.0))
    box = t(0.0, 0.25, 0.5, 0.8, 1.0, -0.3, -1.0)
    assert torch.equal(feasible_projection(w, BIN, None), box)  # no ε: the box only
    assert torch.equal(feasible_projection(w, BIN, 4.0), box)  # ε ≥ 1: C_ε contains the box
    assert torch.equal(feasible_projection(w, BIN, 0.0), t(1, 1, 1, 1, 1, -1, -1))  # ε = 0: the grid
    assert torch.equal(feasible_projection(t(-4.0, 2.5), KBitGrid(3), None), t(-3.0, 2.5))  # levels −3..3


def test_kbit_projection_violation_and_weight_diagnostics_by_hand() -> None:
    # 3 bits, ε = 0.01: r_ε = (1 − √0.6)/2 ≈ 0.1127 around each level of −3..3
    r = (1 - math.sqrt(0.6)) / 2
    u = t(0.3, 0.05, -1.2, 3.7, 0.5)
    assert torch.allclose(feasible_projection(u, KBitGrid(3), 0.01), t(r, 0.05, -1 - r, 3.0, r))
    assert torch.allclose(violation(t(0.3, 0.05), 0.01, 3), t(0.0341, 0.0))  # (0.3·0.7)² − ε
    # w = [0.15, 0.5] on the grid 0.5·{−3..3}: u = [0.3, 1.0], Q(w) = [0, 0.5]
    d = weight_diagnostics(t(0.15, 0.5), t(0.0, 0.5), KBitGrid(3), 0.01, 0.5)
    assert d["grid_dist"].item() == pytest.approx(0.15)  # mean |u − Q/s| = (0.3 + 0)/2
    assert d["near_grid"].item() == 0.5 and d["quant_error"].item() == pytest.approx(0.15)
    assert d["feasible"].item() == 0.5 and d["violation_max"].item() == pytest.approx(0.0341)
    # the gradient mapping in weight units: w̄ − s·P_X((w̄ − g)/s) with s = 0.5
    assert torch.allclose(gradient_mapping(t(0.5), t(0.1), KBitGrid(3), 0.01, 1.0, 0.5), t(0.5 - 0.5 * (1 - r)))


def test_gradient_mapping_branches_by_hand() -> None:
    w_bar = t(0.5, 0.5, 0.8, -1.0, -0.5, 0.6, 1.0)
    g = t(0.1, -0.1, 0.05, 0.2, -0.2, 0.3, -0.4)
    # w̄ − g = 0.4, 0.6, 0.75, −1.2, −0.3, 0.3, 1.4 → P_X = 0.5, 0.6, 0.75, −1, −0.5, 0.5, 1
    expected = t(
        0.0,  # at the inner end a, pushed towards 0: the tangent cone [0, ∞) cuts it
        -0.1,  # at a, pushed outwards: free
        0.05,  # inside: free
        0.0,  # at the box −1, pushed out of it
        0.0,  # at −a, pushed towards 0
        0.1,  # 0.1 from a with |g| = 0.3: the unit step resolves only the distance to the bound
        0.0,  # at the box +1, pushed out of it
    )
    assert torch.allclose(gradient_mapping(w_bar, g, BIN, EPS, 1.0), expected, atol=1e-15)
    assert stationarity(w_bar, g, BIN, EPS).item() == pytest.approx(0.15, abs=1e-15)  # √(0.01 + 0.0025 + 0.01)
    assert stationarity(w_bar, g, BIN, EPS, g_free=t(0.2)).item() == pytest.approx(0.25, abs=1e-15)
    # a smaller step resolves it: the projected gradient onto the tangent cone, 0.3
    assert gradient_mapping(w_bar, g, BIN, EPS, 0.1)[5].item() == pytest.approx(0.3, abs=1e-12)


def test_gradient_mapping_on_the_box_and_on_the_grid() -> None:
    # box [−1, 1]: w̄ − g = 0.3, 1.3, −0.9, −0.4 → 0.3, 1, −0.9, −0.4
    g = t(0.2, -0.3, -0.1, 0.4)
    assert torch.allclose(gradient_mapping(t(0.5, 1.0, -1.0, 0.0), g, BIN, None, 1.0), t(0.2, 0.0, -0.1, 0.4))
    assert stationarity(t(0.5, 1.0, -1.0, 0.0), g, BIN, None).item() == pytest.approx(math.sqrt(0.21))
    # ε = 0: X = {±1}^n, whose tangent cone is {0}: every grid point is stationary
    assert torch.equal(gradient_mapping(t(1.0, -1.0), t(0.3, -0.2), BIN, 0.0, 1.0), t(0.0, 0.0))


def _tangent_reference(w: float, g: float, a: float) -> float:
    """−P_{T_X(w)}(−g) for one coordinate of X = {a ≤ |x| ≤ 1}, by cases."""
    low, high = (-1.0, 1.0) if a == 0 else (a, 1.0) if w > 0 else (-1.0, -a)
    d = -g
    if w == low:
        d = max(d, 0.0)  # only inwards from the lower end
    if w == high:
        d = min(d, 0.0)  # only inwards from the upper end (both: a degenerate interval, d = 0)
    return -d


# ε with an exact inner radius a = √(1 − √ε): 0.5625 → 0.5, 0.87890625 → 0.25, 0.19140625 → 0.75, 1 → 0, 0 → 1
@given(
    eps_a=st.sampled_from([(0.5625, 0.5), (0.87890625, 0.25), (0.19140625, 0.75), (1.0, 0.0), (0.0, 1.0)]),
    points=st.lists(
        st.tuples(st.integers(0, 2), st.floats(0, 1), st.booleans(), st.floats(-1, 1)), min_size=1, max_size=12
    ),
)
def test_small_steps_give_the_projected_gradient_onto_the_tangent_cone(eps_a, points) -> None:
    eps, a = eps_a
    ws = []
    for kind, u, negative, _ in points:
        # kind 0 / 1: the inner / outer end of an interval; 2: a point at least 0.01 inside it
        magnitude = (a, 1.0)[min(kind, 1)] if kind < 2 or a == 1 else a + 0.01 + u * (1 - a - 0.02)
        ws.append(-magnitude if negative else magnitude)
    g = [gi for *_, gi in points]
    expected = t(*(_tangent_reference(wi, gi, a) for wi, gi in zip(ws, g, strict=True)))
    assert torch.allclose(gradient_mapping(t(*ws), t(*g), BIN, eps, 1e-4), expected, atol=1e-9)


def test_weight_diagnostics_by_hand() -> None:
    d = weight_diagnostics(t(0.5, -0.2, 1.0, -1.0), t(1, -1, 1, -1), BIN, EPS)
    # Q(w) = 1, −1, 1, −1; w − Q(w) = −0.5, 0.8, 0, 0; only −0.2 is outside C_ε (φ = 0.5625 − 0.9216)
    assert d["grid_dist"].item() == pytest.approx(0.325)
    assert d["near_grid"].item() == 0.5
    assert d["quant_error"].item() == pytest.approx(math.sqrt(0.89))
    assert d["feasible"].item() == 0.75
    assert d["violation_max"].item() == pytest.approx(0.3591)
    assert d["violation_mean"].item() == pytest.approx(0.3591 / 4)
    assert "feasible" not in weight_diagnostics(t(0.5), t(1.0), BIN, None)


def test_histogram_bins_are_centred_on_the_levels() -> None:
    edges = histogram_edges(BIN)
    assert len(edges) == 62 and edges[0].item() == pytest.approx(-1.525) and edges[-1].item() == pytest.approx(1.525)
    centers = (edges[:-1] + edges[1:]) / 2
    assert torch.allclose(centers[[10, 30, 50]], t(-1.0, 0.0, 1.0))
    three = histogram_edges(KBitGrid(3))
    # 3 bits: levels −3..3, width 1/6, 55 bins centred on −4.5, −4.5 + 1/6, ..., 4.5
    assert len(three) == 56
    assert torch.allclose(((three[:-1] + three[1:]) / 2)[9:46:6], t(-3, -2, -1, 0, 1, 2, 3))
    # −1, 1, 1 on their levels; 0.02 in the bin of 0; 5.0 clamped into the last bin; −0.976 in [−1.025, −0.975)
    counts = weight_histogram(torch.tensor([-1.0, 1.0, 1.0, 0.02, 5.0, -0.976]), edges.float())
    expected = torch.zeros(61)
    expected[[10, 50, 30, 60]] = torch.tensor([2.0, 2.0, 1.0, 1.0])
    assert torch.equal(counts, expected)


@pytest.mark.parametrize("bias", [False, True])
def test_model_stationarity_uses_the_gradient_at_the_projected_point(bias: bool) -> None:
    torch.manual_seed(3)
    model = nn.Linear(4, 1, bias=bias).double()
    x, y = torch.rand(50, 4, dtype=torch.float64) * 2 - 1, torch.randint(0, 2, (50,)).double()
    w = {"weight": t(0.2, -0.9, 1.3, 0.7)[None]}
    if bias:
        w["bias"] = t(0.3)
    w_bar = t(0.5, -0.9, 1.0, 0.7)  # P_X for ε = 0.5625
    o = x @ w_bar + (0.3 if bias else 0.0)
    residual = torch.sigmoid(o) - y  # ∇ of the mean logistic loss: Xᵀ(σ(o) − y)/n, and mean(σ(o) − y) for the bias
    g = x.T @ residual / 50
    expected = stationarity(w_bar, g, BIN, EPS, g_free=residual.mean()[None] if bias else None)
    assert model_stationarity(model, w, ["weight"], BIN, EPS, x, y).item() == pytest.approx(expected.item(), rel=1e-12)


class _WithDiagnostics(SGD):
    def diagnostics(self) -> dict[str, torch.Tensor]:
        return {"grad_norm": torch.cat([p.grad.reshape(-1) for g in self.param_groups for p in g["params"]]).norm()}


def test_optimizer_hook_sees_the_full_batch_gradient() -> None:
    model = nn.Linear(3, 1)
    x, y = torch.rand(40, 3), torch.randint(0, 2, (40,)).float()
    expected = torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss_fn(model(x), y), list(model.parameters()))])
    out = optimizer_diagnostics(model, _WithDiagnostics(model.parameters(), lr=0.1), x, y)
    assert out["grad_norm"].item() == pytest.approx(expected.norm().item(), rel=1e-6)
    assert optimizer_diagnostics(model, SGD(model.parameters(), lr=0.1), x, y) == {}


def test_fit_records_optimizer_diagnostics_and_rejects_clashes(monkeypatch) -> None:
    cfg = validate_config({**SMALL, "method": {"name": "askewsgd", "eps": {"hold": 1}}})
    monkeypatch.setattr(ASkewSGD, "diagnostics", lambda self: {"multiplier_max": torch.tensor(1.5)}, raising=False)
    history = fit(cfg).history
    assert [h["multiplier_max"] for h in history] == [1.5] * 4
    monkeypatch.setattr(ASkewSGD, "diagnostics", lambda self: {"train_loss": torch.tensor(0.0)}, raising=False)
    with pytest.raises(ValueError, match=r"optimizer diagnostics \['train_loss'\] clash with built-in metrics"):
        fit(cfg)


def test_history_has_the_diagnostics() -> None:
    history = fit(validate_config({**SMALL, "method": {"name": "askewsgd", "eps": {"hold": 1}}})).history
    for key in ("stationarity", "violation_max", "violation_mean", "quant_error", "q_loss_gap", "feasible"):
        assert key in history[-1]
    assert history[-1]["q_loss_gap"] == pytest.approx(history[-1]["q_train_loss"] - history[-1]["train_loss"])
    assert "violation_max" not in fit(validate_config({**SMALL, "method": {"name": "sgd"}})).history[-1]


def test_askewsgd_stationarity_decreases_over_the_run() -> None:
    cfg = next(c for c in preset_runs("logistic", 1) if c.label == "askewsgd")
    s = [h["stationarity"] for h in fit(cfg).history]
    late = sum(s[-10:]) / 10
    assert s[0] > 10 * late  # the initialization is far from stationary
    assert sum(s[1:11]) / 10 > 1.5 * late  # and the run keeps approaching a KKT point of the shrinking C_ε
    assert late < 0.01


def _count_host_reads(monkeypatch) -> collections.Counter:
    calls: collections.Counter = collections.Counter()
    for name in ("item", "tolist", "__float__", "__bool__", "__int__", "__index__"):
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _original=original, _name=name, **kwargs):
            calls[_name] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    return calls


@pytest.mark.parametrize("method", [{"name": "askewsgd", "eps": {"hold": 1}}, {"name": "binaryconnect"}])
def test_no_host_sync_per_step(monkeypatch, method) -> None:
    def reads(batch_size: int) -> int:
        cfg = validate_config({**SMALL, "batch_size": batch_size, "method": method})
        fit(cfg)  # warm the data and optimum caches
        calls.clear()
        fit(cfg)
        return sum(calls.values())

    calls = _count_host_reads(monkeypatch)
    # 15 steps vs 150 steps: any read of a tensor per step would add at least 135
    assert reads(10) <= reads(100) + 3
