"""AdaSTE: the forward map and every case of the adaptive estimator by hand, then invariants."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.testing import assert_close

from qnnlab.config import ConfigError, validate_config
from qnnlab.methods import AdaSTEConfig
from qnnlab.optim import AdaSTE, adaste_scale, adaste_weights
from qnnlab.train.loop import fit


def test_forward_weights_by_hand() -> None:
    theta = torch.tensor([0.3, -2.0, 0.0, 1e-4])
    # αβ = 1: exactly sign θ (sign 0 = +1)
    assert_close(adaste_weights(theta, 0.01, 100.0), torch.tensor([1.0, -1.0, 1.0, 1.0]))
    # αβ = 0.01: (θ + 1.01·sign θ)/2 between the wells, clipped beyond |θ| = 0.99
    theta = torch.tensor([0.5, -0.2, 1.5, -0.99])
    assert_close(adaste_weights(theta, 0.01, 1.0), torch.tensor([0.755, -0.605, 1.0, -1.0]))
    # β = 0: the clip (hard tanh)
    assert_close(adaste_weights(torch.tensor([0.5, -3.0]), 0.01, 0.0), torch.tensor([0.5, -1.0]))


def scale(theta: float, g: float, alpha: float, beta: float, tol: float = 1e-3) -> float:
    return adaste_scale(torch.tensor([theta]), torch.tensor([g]), alpha, beta, tol).item()


@pytest.mark.parametrize(
    ("theta", "g", "expected"),
    [
        (4.0, 0.5, 0.25),  # toward zero: 1/|θ|
        (-0.5, -1.0, 0.5),  # toward zero: 1/|θ| capped at ½
        (4.0, -0.5, 0.0),  # away from zero: nothing to gain, w* is already ±1
        (-3.0, 0.2, 0.0),
        (5e-4, 1.0, 1.0),  # |θ| ≤ tol: plain straight-through
        (2.0, 5e-4, 1.0),  # |g| ≤ tol
    ],
)
def test_binary_regime_cases(theta: float, g: float, expected: float) -> None:
    assert scale(theta, g, 0.01, 100.0) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("theta", "g", "beta", "expected"),
    [
        # α = 0.01; κ = 1 − αβ
        (5.0, 1.0, 1.0, 3.01 / 10),  # toward, saturated (|θ| > κ = 0.99): (1 + 2β + αβ)/((1 + β)|θ|)
        (-5.0, -1.0, 1.0, 3.01 / 10),
        (2.0, 1.0, 1.0, 0.5),  # ... capped at ½
        (0.5, 1.0, 1.0, 0.5),  # toward, between the wells: (|θ| + 2β(1 + α))/((1 + β)|θ|) ≥ ½, capped
        (-0.5, -1.0, 1.0, 0.5),
        (2.0, -1.0, 1.0, 0.0),  # away, saturated
        (0.5, -1.0, 3.0, 0.25),  # away, between the wells (κ = 0.97): the slope 1/(1 + β)
        (-0.5, 1.0, 3.0, 0.25),
        (5e-4, 1.0, 3.0, 0.25),  # dead zones: 1/(1 + β)
        (2.0, 1e-4, 3.0, 0.25),
    ],
)
def test_relaxed_regime_cases(theta: float, g: float, beta: float, expected: float) -> None:
    assert scale(theta, g, 0.01, beta) == pytest.approx(expected)


def test_uncapped_between_wells_value() -> None:
    # the toward value between the wells is ≥ 1/(1 + β) + 2β(1+α)/((1+β)|θ|); check it before the cap
    theta, beta, alpha = 0.5, 0.2, 0.01
    raw = (theta + 2 * beta * (1 + alpha)) / ((1 + beta) * theta)
    assert raw == pytest.approx(1.50666666) and scale(theta, 1.0, alpha, beta) == 0.5


def test_latent_initialization_and_forward_weights() -> None:
    p = torch.nn.Parameter(torch.tensor([0.3, -0.8, 0.0]))
    opt = AdaSTE([p], theta_init=2.0)
    assert_close(opt.theta(p), torch.tensor([2.0, -2.0, 2.0]))
    assert_close(p.detach(), torch.tensor([1.0, -1.0, 1.0]))  # w*(θ) = sign θ at α = 0.01, β = 100


def test_steps_by_hand_until_a_flip() -> None:
    # lr = 3, SGD: θ = 2, g = 1 is toward: c = ½, θ ← 2 − 1.5 = 0.5; then c = ½ again: θ ← −1 (flip)
    # θ = −2, g = 1 is away: c = 0, θ stays
    p = torch.nn.Parameter(torch.tensor([0.3, -0.8]))
    opt = AdaSTE([p], lr=3.0, theta_init=2.0)
    thetas = []
    for _ in range(2):
        p.grad = torch.ones(2)
        opt.step()
        thetas.append(opt.theta(p).tolist())
    assert thetas == [[0.5, -2.0], [-1.0, -2.0]]
    assert_close(p.detach(), torch.tensor([-1.0, -1.0]))


def test_weight_decay_is_the_prior_term() -> None:
    # the authors' reweight·θ: d = c·g + λθ; θ = 2, g = 0 (c·0 = 0): θ ← 2 − 0.1·0.5·2 = 1.9
    p = torch.nn.Parameter(torch.tensor([1.0]))
    opt = AdaSTE([p], lr=0.1, theta_init=2.0, weight_decay=0.5)
    p.grad = torch.zeros(1)
    opt.step()
    assert opt.theta(p).item() == pytest.approx(1.9)


def test_gradient_is_taken_at_the_forward_weights() -> None:
    # f(w) = ½(w − t)²: the gradient the optimizer sees is w*(θ) − t with w*(θ) = 0.755 (α = 0.01, β = 1)
    p = torch.nn.Parameter(torch.tensor([0.5]))
    opt = AdaSTE([p], lr=0.1, beta=1.0, theta_init=0.5)
    assert p.item() == pytest.approx(0.755)
    (0.5 * (p - 2.0).square().sum()).backward()
    assert p.grad.item() == pytest.approx(-1.245)
    opt.step()  # away between the wells: c = 1/(1 + β) = ½, θ ← 0.5 + 0.1·½·1.245
    assert opt.theta(p).item() == pytest.approx(0.5 + 0.06225)


def test_unconstrained_group_is_plain_sgd() -> None:
    w, b = torch.nn.Parameter(torch.tensor([0.4])), torch.nn.Parameter(torch.tensor([0.4]))
    opt = AdaSTE([{"params": [w]}, {"params": [b], "constrained": False}], lr=0.1)
    w.grad, b.grad = torch.tensor([1.0]), torch.tensor([1.0])
    opt.step()
    assert_close(b.detach(), torch.tensor([0.3]))
    assert opt.theta(b) is b
    assert w.item() == 1.0


def test_beta_annealing_schedule() -> None:
    cfg = AdaSTEConfig(alpha=0.01, beta=10.0, beta_growth=2.0)
    # β_e = min(10·2^e, 1/α + 100 = 200)
    assert [cfg.epoch_values(e)["beta"] for e in range(6)] == pytest.approx([10, 20, 40, 80, 160, 200])
    capped = AdaSTEConfig(beta=10.0, beta_growth=2.0, beta_max=30.0)
    assert [capped.epoch_values(e)["beta"] for e in range(3)] == [10.0, 20.0, 30.0]
    assert AdaSTEConfig().optimizer_kwargs()["beta"] == 100.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alpha": 0.0}, r"Invalid alpha: 0.0; must be > 0"),
        ({"beta": -1.0}, r"Invalid beta: -1.0; must be >= 0"),
        ({"theta_init": 0.0}, r"Invalid theta_init: 0.0; must be > 0"),
        ({"tol": -1e-3}, r"Invalid tol: -0.001; must be >= 0"),
    ],
)
def test_invalid_hyperparameters(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AdaSTE([torch.nn.Parameter(torch.zeros(2))], **kwargs)


@pytest.mark.parametrize(
    ("method", "message"),
    [
        ({"alpha": 0}, r"^method\.alpha: Input should be greater than 0"),
        ({"beta_growth": 0.5}, r"^method\.beta_growth: Input should be greater than or equal to 1"),
        ({"beta": 10, "beta_max": 5}, r"^method: beta_max \(5\.0\) must be >= beta \(10\.0\)$"),
        ({"theta_init": -1}, r"^method\.theta_init: Input should be greater than 0"),
    ],
)
def test_invalid_configs_name_the_field(method: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        validate_config({"method": {"name": "adaste", **method}})


def test_binary_only() -> None:
    with pytest.raises(ConfigError, match="bits = 2 is not supported by method 'adaste'; allowed: 1"):
        validate_config({"bits": 2, "method": {"name": "adaste"}})


# -- properties ------------------------------------------------------------------------------

reals = st.floats(-5, 5, allow_nan=False, width=32)
alphas = st.floats(1e-3, 0.5)
betas = st.floats(0.0, 300.0)


@given(st.lists(st.tuples(reals, reals), min_size=1, max_size=30), alphas, betas)
def test_estimator_is_odd_and_bounded(pairs, alpha: float, beta: float) -> None:
    theta = torch.tensor([p[0] for p in pairs])
    g = torch.tensor([p[1] for p in pairs])
    c = adaste_scale(theta, g, alpha, beta, 1e-3)
    # the problem is symmetric under w → −w: so is the estimator
    assert torch.equal(c, adaste_scale(-theta, -g, alpha, beta, 1e-3))
    assert (c >= 0).all() and (c <= 1).all()


@given(st.lists(reals, min_size=1, max_size=30), alphas, betas)
def test_forward_weights_are_in_the_box_with_the_sign_of_theta(ts, alpha: float, beta: float) -> None:
    theta = torch.tensor(ts)
    w = adaste_weights(theta, alpha, beta)
    assert (w.abs() <= 1).all()
    assert ((w >= 0) == (theta >= 0)).all()
    if alpha * beta >= 1:
        assert (w.abs() == 1).all()


# -- end to end ------------------------------------------------------------------------------


@pytest.mark.slow
def test_reaches_the_enumerated_binary_optimum() -> None:
    from qnnlab.experiments.presets import preset_runs

    cfg = next(c for c in preset_runs("logistic", 1) if c.label == "adaste (full batch)").with_(epochs=40)
    s = fit(cfg).summary
    assert s["rel_gap"] == 0.0 and s["on_grid"]
    assert s["near_grid"] == 1.0 and s["beta"] == 100.0  # αβ = 1: the forward weights are ±1
