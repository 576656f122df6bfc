"""Networks end to end: two moons with its enumerated binary optimum, determinism, presets, tables."""

import pytest
import torch

from qnnlab.config import ConfigError, MoonsMLP, TwoMoonsData, validate_config
from qnnlab.data import get_dataset
from qnnlab.experiments.compare import aggregate, markdown_table, table_cells
from qnnlab.experiments.presets import preset_runs
from qnnlab.methods import METHODS
from qnnlab.nn.models import build_model
from qnnlab.schedules import exponential
from qnnlab.train.enumerate import binary_minimum, model_losses
from qnnlab.train.loop import RunResult, fit


def moons(label: str, epochs: int, seed: int = 0):
    cfg = next(c for c in preset_runs("two-moons", seed + 1) if c.label == label and c.seed == seed)
    return cfg.with_(epochs=epochs)


def test_moons_enumeration_matches_a_loop_over_sign_vectors() -> None:
    data = get_dataset(TwoMoonsData(n_train=50))
    model = build_model(MoonsMLP(), 2)
    f = model_losses(model, data.x_train, data.y_train)
    best, arg = binary_minimum(f, 9)
    w = arg.float()

    # the same loss by hand: BN with the batch's statistics (biased variance, eps 1e-4), no affine
    def bn(h: torch.Tensor) -> torch.Tensor:
        return (h - h.mean(0)) / torch.sqrt(h.var(0, unbiased=False) + 1e-4)

    logits = bn(torch.relu(bn(data.x_train @ w[:6].view(3, 2).T)) @ w[6:].view(1, 3).T).squeeze(1)
    by_hand = torch.nn.functional.binary_cross_entropy_with_logits(logits, data.y_train)
    assert best == pytest.approx(float(by_hand), rel=1e-5)
    # and it is the minimum: no sign vector does better
    signs = torch.tensor([[1.0 if (i >> j) & 1 else -1.0 for j in range(9)] for i in range(512)])
    assert float(f(signs).min()) == pytest.approx(best, rel=1e-12)


@pytest.mark.parametrize("label", ["binaryconnect", "askewsgd"])
def test_moons_binary_methods_end_on_the_grid_near_the_optimum(label: str) -> None:
    s = fit(moons(label, 30)).summary
    assert s["on_grid"] and s["gap"] >= -1e-12
    assert s["binary_optimum"] == pytest.approx(0.4202, abs=1e-3)
    assert s["q_test_acc"] >= 0.75


def test_askewsgd_weights_reach_the_grid_before_rounding() -> None:
    # ε × 0.8 per epoch from epoch 10 (≈ 1.7e-4 at the end), lr 0.1; the preset's tuned ×0.9 ends at ε ≈ 1.5e-2
    result = fit(moons("askewsgd", 50).with_(**{"method.lr": 0.1, "method.eps.decay": 0.8}))
    assert result.summary["near_grid"] == 1.0 and result.summary["eps"] < 2e-3
    w = torch.cat([result.weights[n].reshape(-1) for n in ("1.weight", "4.weight")])
    assert ((w.abs() - 1).abs() <= 0.05).all()


def test_same_seed_same_metrics_on_a_network() -> None:
    cfg = moons("binaryconnect (stoch.)", 4)
    first = fit(cfg).history
    assert fit(cfg).history == first
    assert fit(cfg.with_(seed=1)).history != first


def test_the_gap_needs_every_parameter_binary() -> None:
    s = fit(moons("sgd (full precision)", 2)).summary
    assert "gap" in s  # all 9 weights are quantized for the judgement, so the optimum applies
    cfg = validate_config({"method": {"name": "sgd"}, "epochs": 1, "model": {"name": "linear", "bias": True}})
    assert "gap" not in fit(cfg).summary  # a full-precision bias: no certified binary optimum


def test_every_registered_method_has_a_row_in_the_cpu_presets() -> None:
    for preset in ("two-moons", "digits", "fashion-mlp"):
        methods = {cfg.method.name for cfg in preset_runs(preset, 1)}
        missing = sorted(set(METHODS) - methods)
        assert not missing, f"preset {preset!r} has no row for {missing}; add one with row(...) in presets.py"


def test_presets_document_their_annealing() -> None:
    for preset in ("two-moons", "digits", "fashion-mlp", "mnist-mlp", "cifar10-vgg", "cifar10-resnet20"):
        cfgs = [c for c in preset_runs(preset, 1) if c.method.name == "askewsgd"]
        assert cfgs, preset
        for cfg in cfgs:
            eps = [cfg.method.epoch_values(e)["eps"] for e in range(cfg.epochs)]
            assert eps[0] == 1.0 and eps[-1] < 1.0, preset  # ε anneals inside every run


def test_exponential_schedule_by_hand() -> None:
    f = exponential(1e-2, 1e-4, 100)
    assert f(0) == 1e-2 and f(50) == pytest.approx(1e-3) and f(100) == pytest.approx(1e-4) and f(500) == f(100)
    cfg = validate_config(
        {"method": {"name": "sgd", "lr": 0.1}, "epochs": 4, "schedule": {"kind": "exponential", "final_lr": 0.001}}
    )
    assert cfg.lr_schedule()(2 * 60) == pytest.approx(0.01)  # 60 steps per epoch, half-way
    with pytest.raises(ValueError, match="Invalid final: 0"):
        exponential(1.0, 0.0, 10)
    with pytest.raises(ConfigError, match=r"^schedule\.final_lr: Input should be greater than 0"):
        validate_config({"method": {"name": "sgd"}, "schedule": {"kind": "exponential", "final_lr": 0}})


def _result(label: str, acc: float, **extra: float) -> RunResult:
    return RunResult(label, None, {"q_test_acc": acc, "test_acc": acc, **extra})  # type: ignore[arg-type]


def test_tables_keep_the_columns_some_row_has_and_add_published_numbers() -> None:
    rows = aggregate([_result("sgd (full precision)", 0.8), _result("sgd (full precision)", 0.9), _result("x", 0.5)])
    header, cells = table_cells(rows, "two-moons")
    assert header == ["method", "seeds", "test acc Q(w) %", "test acc w %", "published (source)"]
    assert cells[0][:3] == ["sgd (full precision)", "2", "85.00 ± 7.07"]
    assert cells[0][-1].startswith("acc % 88.0 ± 0.7 (ASkewSGD 2-moons notebook") and cells[1][-1] == "—"
    assert "published" not in markdown_table(rows, "digits")
    assert markdown_table(rows, "two-moons").count("\n") == 2 + 2
    grid = aggregate([_result("askewsgd", 0.8, near_grid=1.0)])
    assert "| \\|w − Q(w)\\| ≤ 0.05 % |" in markdown_table(grid)  # pipes in a header stay inside their cell
