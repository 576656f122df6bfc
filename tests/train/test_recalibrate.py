"""Batch-norm statistics re-estimated at Q(w): exact by hand, and the gap's own convention end to end."""

import pytest
import torch
from torch import nn

from qnnlab.config import MoonsMLP
from qnnlab.data.synthetic import two_moons
from qnnlab.experiments.presets import preset_runs
from qnnlab.nn.models import build_model
from qnnlab.train.enumerate import binary_minimum, model_losses
from qnnlab.train.evaluate import evaluate
from qnnlab.train.loop import fit
from qnnlab.train.recalibrate import recalibrated_stats


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(1, 1, bias=False), nn.BatchNorm1d(1, affine=False), nn.Linear(1, 1, bias=False), nn.BatchNorm1d(1)
    )


def test_statistics_by_hand_layer_after_layer() -> None:
    model = _net()
    x = torch.tensor([[1.0], [2.0], [3.0], [6.0]])
    weights = {"0.weight": torch.tensor([[2.0]]), "2.weight": torch.tensor([[-1.0]])}
    before = {k: v.clone() for k, v in model.state_dict().items()}
    # two batches of two: the statistics are over all four examples, not averaged per batch
    stats = recalibrated_stats(model, {**dict(model.named_parameters()), **weights}, lambda: [(x[:2], 0), (x[2:], 0)])
    # first BN sees 2x = 2, 4, 6, 12: mean 6, biased var (16 + 4 + 0 + 36)/4 = 14
    assert stats["1.running_mean"].tolist() == [6.0] and stats["1.running_var"].tolist() == pytest.approx([14.0])
    # the second sees −(2x − 6)/√(14 + 1e-5): mean 0, biased var 14/(14 + 1e-5)
    assert stats["3.running_mean"].item() == pytest.approx(0.0, abs=1e-7)
    assert stats["3.running_var"].item() == pytest.approx(14 / (14 + 1e-5), rel=1e-6)
    # the model is untouched: its own running statistics and its mode
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items()) and model.training


def test_eval_with_the_statistics_is_the_full_batch_training_mode_forward() -> None:
    model = _net()
    x, y = torch.randn(64, 1), torch.rand(64).round()
    params = {n: p.detach() for n, p in model.named_parameters()}
    stats = recalibrated_stats(model, params, lambda: zip(x.split(10), y.split(10), strict=True))
    judged = evaluate(model, {**params, **stats}, [(x, y)])["loss"]
    flat = torch.cat([p.reshape(-1) for p in params.values()])
    assert float(judged) == pytest.approx(float(model_losses(model, x, y)(flat[None])[0]), rel=1e-6)


def test_no_batch_norm_no_statistics() -> None:
    model = nn.Linear(3, 1, bias=False)
    assert recalibrated_stats(model, dict(model.named_parameters()), lambda: [(torch.ones(2, 3), 0)]) == {}


def test_moons_train_loss_of_q_is_the_loss_whose_gap_is_reported() -> None:
    cfg = next(c for c in preset_runs("two-moons", 1) if c.label == "sgd (full precision)").with_(epochs=3)
    result = fit(cfg)
    s = result.summary
    f_q = s["binary_optimum"] + s["gap"]
    assert s["q_train_loss"] == pytest.approx(f_q, rel=1e-5)
    assert result.config.bn_recalibrate
    # switched off: Q(w) is judged with the running statistics gathered at w, a different function
    off = fit(cfg.with_(bn_recalibrate=False)).summary
    assert off["gap"] == s["gap"] and abs(off["q_train_loss"] - f_q) > 1e-3


def test_the_optimum_judged_with_its_own_statistics_is_the_enumerated_minimum() -> None:
    """At the enumerated optimum's own sign vector, the loss of Q(w) as the recorder judges it is f* (gap 0)."""
    data = two_moons(200, 20, seed=1)
    model = build_model(MoonsMLP(), 2)
    best, arg = binary_minimum(model_losses(model, data.x_train, data.y_train), 9)
    params = dict(model.named_parameters())
    signs = (t.view_as(p).float() for t, p in zip(arg.split([6, 3]), params.values(), strict=True))
    q = dict(zip(params, signs, strict=True))
    stats = recalibrated_stats(model, q, lambda: data.eval_batches("train", 64))
    judged = evaluate(model, {**q, **stats}, data.eval_batches("train", 64))["loss"]
    assert float(judged) == pytest.approx(best, rel=1e-5)
