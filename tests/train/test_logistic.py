"""Experiment I end to end: the logistic toy, evaluated after quantization."""

import pytest
import torch
from sklearn.linear_model import LogisticRegression

from qnnlab.data.synthetic import logistic_toy
from qnnlab.experiments.presets import preset_runs
from qnnlab.train.enumerate import logistic_losses
from qnnlab.train.loop import fit


def test_data_matches_the_reference_setting() -> None:
    data = logistic_toy(seed=3)
    assert data.x_train.shape == (6000, 10) and data.x_test.shape == (1000, 10)
    assert data.x_train.min() >= -1 and data.x_train.max() <= 1
    assert set(data.y_train.unique().tolist()) == {0.0, 1.0}
    assert set(data.extras["w_star"].abs().tolist()) == {1.0}
    assert torch.equal(logistic_toy(w_scale=0.8).extras["w_star"].abs(), torch.full((10,), 0.8))
    # the data seed alone fixes the data set
    assert torch.equal(logistic_toy(seed=3).x_train, data.x_train)
    assert not torch.equal(logistic_toy(seed=4).x_train, data.x_train)


def preset(label: str, seed: int = 0):
    return next(c for c in preset_runs("logistic", seed + 1) if c.label == label and c.seed == seed)


def test_full_precision_sgd_reaches_the_sklearn_optimum() -> None:
    cfg = preset("minibatch sgd")
    data = logistic_toy(seed=cfg.data.seed)
    clf = LogisticRegression(C=float("inf"), fit_intercept=False, tol=1e-10, max_iter=10_000)
    clf.fit(data.x_train.double().numpy(), data.y_train.numpy())
    w_opt = torch.tensor(clf.coef_, dtype=torch.float64)
    f_opt = float(logistic_losses(data.x_train, data.y_train)(w_opt)[0])
    result = fit(cfg)
    assert result.summary["train_loss"] <= f_opt * 1.01
    assert result.summary["train_loss"] >= f_opt * (1 - 1e-6)  # cannot beat the optimum


def test_askewsgd_reaches_the_enumerated_binary_optimum() -> None:
    result = fit(preset("askewsgd"))
    s = result.summary
    assert s["rel_gap"] < 0.01
    assert s["on_grid"]
    assert s["eps"] <= 1e-3  # ε annealed inside the run
    assert s["near_grid"] >= 0.99  # before rounding
    w = result.weights["weight"]
    assert ((w.abs() - 1).abs() <= 0.05).float().mean() >= 0.99
    assert set(w.sign().tolist()[0]) <= {-1.0, 1.0}


@pytest.mark.parametrize("label", ["binaryconnect", "binaryconnect (stoch.)", "askewsgd (1/√k steps)"])
def test_binary_methods_end_exactly_on_the_grid(label: str) -> None:
    cfg = preset(label).with_(epochs=20)
    summary = fit(cfg).summary
    assert summary["on_grid"]
    assert summary["rel_gap"] >= 0


def test_same_seed_same_metrics() -> None:
    cfg = preset("binaryconnect (stoch.)").with_(epochs=3)
    assert fit(cfg).history == fit(cfg).history
    other = fit(cfg.with_(seed=1)).history
    assert other != fit(cfg).history


def test_history_has_every_metric() -> None:
    history = fit(preset("askewsgd").with_(epochs=12)).history
    assert len(history) == 13
    keys = {"train_loss", "train_acc", "test_loss", "test_acc", "q_train_loss", "q_train_acc", "q_test_loss"}
    keys |= {"q_test_acc", "lr", "eps", "feasible", "grid_dist", "near_grid"}
    assert keys <= set(history[-1])
    # ε_e = ε₀·ρ^(e − E₀) for e ≥ E₀ = 10 (epoch e is trained with ε_{e−1}): it moves inside the run
    assert [h["eps"] for h in history[9:]] == [1.0, 1.0, 1.0, 0.75]
    assert 0 <= history[-1]["q_test_acc"] <= 1
