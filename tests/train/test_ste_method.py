"""The `ste` method: its optimizer step, its config, its model preparation, and the logistic toy."""

import pytest
import torch
from torch.testing import assert_close

from qnnlab.config import ConfigError, validate_config
from qnnlab.experiments.presets import preset_runs
from qnnlab.methods import METHODS, STEConfig, build_optimizer
from qnnlab.nn.layers import QuantLinear
from qnnlab.nn.models import param_groups
from qnnlab.optim import STE
from qnnlab.train.loop import fit


@pytest.mark.parametrize(("clip", "expected"), [(False, [1.4, -0.7, 0.0]), (True, [1.0, -0.7, 0.0])])
def test_step_clips_only_when_asked(clip: bool, expected: list[float]) -> None:
    w = torch.nn.Parameter(torch.tensor([0.9, -0.2, 0.0]))
    bias = torch.nn.Parameter(torch.tensor([0.9]))
    opt = STE([{"params": [w]}, {"params": [bias], "constrained": False}], lr=0.5, clip=clip)
    w.grad, bias.grad = torch.tensor([-1.0, 1.0, 0.0]), torch.tensor([-1.0])
    opt.step()
    assert_close(w.detach(), torch.tensor(expected))
    assert_close(bias.detach(), torch.tensor([1.4]))  # full-precision groups are never clipped


def test_config_and_model_preparation() -> None:
    cfg = STEConfig(lr=0.2, estimator="clipped_relu")
    assert cfg.optimizer_kwargs()["clip"] is False and "estimator" not in cfg.optimizer_kwargs()
    model = METHODS.get("ste").prepare_model(torch.nn.Linear(4, 1, bias=False), cfg)
    assert type(model) is QuantLinear and model.weight_quantizer.config() == {
        "name": "sign",
        "estimator": "clipped_relu",
        "clip": 1.0,
    }
    assert type(build_optimizer(cfg, param_groups(model))) is STE
    with pytest.raises(ConfigError, match=r"method.estimator: Input should be 'identity', 'clipped', 'relu'"):
        validate_config({"method": {"name": "ste", "estimator": "tanh"}})
    with pytest.raises(ConfigError, match="bits = 2 is not supported by method 'ste'; allowed: 1"):
        validate_config({"bits": 2, "method": {"name": "ste"}})


def test_logistic_toy_end_to_end() -> None:
    cfg = next(c for c in preset_runs("logistic", 1) if c.label == "ste").with_(epochs=5)
    result = fit(cfg)
    s = result.summary
    assert s["on_grid"] and s["rel_gap"] >= 0
    assert s["q_train_loss"] < s["binary_optimum"] * 1.05
    # the forward pass already uses sign(w): evaluating w and Q(w) gives the same loss
    assert s["train_loss"] == pytest.approx(s["q_train_loss"])
    assert set(result.weights) == {"weight"}


def _one_step(method: dict, w0: float) -> float:
    """The weight after one step of ``method`` on ``f(w) = softplus(sign(w))`` (x = 1, y = 0), from ``w0``."""
    model = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(w0)
    cfg = validate_config({"method": method}).method
    model = METHODS.get(cfg.name).prepare_model(model, cfg) if METHODS.get(cfg.name).prepare_model else model
    opt = build_optimizer(cfg, param_groups(model))
    loss = torch.nn.functional.binary_cross_entropy_with_logits(model(torch.ones(1, 1)).squeeze(1), torch.zeros(1))
    loss.backward()
    opt.step()
    return float(getattr(opt, "latent", lambda p: p)(model.weight).detach())


def test_binaryconnect_is_identity_ste_with_a_clip_and_clipped_ste_differs() -> None:
    """One step from w = 1.5 with lr 1 and ∂f/∂sign(w) = σ(1) = 0.7311: BinaryConnect first clips its latent
    weight to 1 (1 − 0.7311), the identity STE steps from 1.5 (1.5 − 0.7311), the clipped STE's gradient
    1{|w| ≤ 1} is 0 there, so it stays."""
    g = float(torch.sigmoid(torch.tensor(1.0)))
    assert _one_step({"name": "binaryconnect", "lr": 1.0}, 1.5) == pytest.approx(1 - g)
    assert _one_step({"name": "ste", "lr": 1.0}, 1.5) == pytest.approx(1.5 - g)
    assert _one_step({"name": "ste", "lr": 1.0, "estimator": "clipped"}, 1.5) == 1.5
    # inside [−1, 1] the three take the same step
    for method in ({"name": "binaryconnect"}, {"name": "ste"}, {"name": "ste", "estimator": "clipped"}):
        assert _one_step({**method, "lr": 1.0}, 0.5) == pytest.approx(0.5 - g)


def test_binaryconnect_and_identity_ste_share_iterates_while_no_latent_leaves_the_box() -> None:
    base = {"epochs": 2, "batch_size": 50, "data": {"name": "logistic", "n_train": 500, "n_test": 100}}
    bc = fit({**base, "method": {"name": "binaryconnect", "lr": 0.01}})
    ste = fit({**base, "method": {"name": "ste", "lr": 0.01}})
    assert bc.weights["weight"].abs().max() < 1  # the clip never bit
    assert_close(bc.weights["weight"], ste.weights["weight"])
    assert torch.equal(bc.quantized["weight"], ste.quantized["weight"])
