"""Quantizer modules: the registry, hand values, and the property that outputs lie on the grid."""

import doctest

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.testing import assert_close

import qnnlab.quant.quantizers as quantizers_module
from qnnlab.quant.quantizers import (
    PACT,
    QUANTIZERS,
    SAWBQuantizer,
    SignQuantizer,
    UniformQuantizer,
    get_quantizer,
)
from qnnlab.quant.scales import sawb_scale


def test_registry_names_and_lookup() -> None:
    assert QUANTIZERS.names() == ["pact", "sawb", "sign", "uniform"]
    assert isinstance(get_quantizer("sign"), SignQuantizer)
    q = get_quantizer({"name": "uniform", "bits": 3, "step": 0.5})
    assert (q.bits, q.step, q.estimator) == (3, 0.5, "clipped_relu")
    assert get_quantizer(None) is None


@pytest.mark.parametrize(
    "q",
    [
        SignQuantizer("clipped", 2.0),
        UniformQuantizer(3, 0.25, "relu"),
        SAWBQuantizer(2, zero=False),
        PACT(4, 6.0, 1e-3),
    ],
    ids=lambda q: q.name,
)
def test_config_round_trip(q) -> None:
    rebuilt = get_quantizer(q.config())
    assert type(rebuilt) is type(q) and rebuilt.config() == q.config()
    assert rebuilt.bits == q.bits
    x = torch.linspace(-3, 9, 50)
    assert torch.equal(rebuilt(x), q(x))


def test_instances_are_copied_so_layers_never_share_alpha() -> None:
    q = PACT(alpha=2.0)
    copy = get_quantizer(q)
    assert copy is not q and copy.alpha is not q.alpha and copy.alpha.item() == 2.0


@pytest.mark.parametrize(
    ("spec", "error", "message"),
    [
        ("ternary", KeyError, "unknown quantizer 'ternary'; choose from: pact, sawb, sign, uniform"),
        ({"bits": 2}, ValueError, "has no 'name'; choose from: pact, sawb, sign, uniform"),
        ({"name": "pact", "bitz": 2}, ValueError, "invalid arguments for quantizer 'pact': .*'bitz'"),
        ({"name": "sign", "estimator": "tanh"}, KeyError, "unknown estimator 'tanh'; choose from"),
        ({"name": "sign", "clip": -1.0}, ValueError, "Invalid clip: -1.0; must be > 0"),
        ({"name": "uniform", "bits": 0}, ValueError, "Invalid bits: 0; must be an integer >= 1"),
        ({"name": "uniform", "step": 0.0}, ValueError, "Invalid step: 0.0; must be > 0"),
        ({"name": "sawb", "bits": 1}, ValueError, "Invalid bits: 1; must be an integer >= 2"),
        ({"name": "sawb", "bits": 3, "zero": False}, ValueError, "no SAWB coefficients for bits=3 zero=False"),
        ({"name": "sawb", "signed": False, "zero": False}, ValueError, "Invalid zero: False"),
        ({"name": "pact", "alpha": 0.0}, ValueError, "Invalid alpha: 0.0; must be > 0"),
        ({"name": "pact", "alpha_decay": -1.0}, ValueError, "Invalid alpha_decay: -1.0; must be >= 0"),
    ],
)
def test_bad_specs_fail_early(spec, error, message) -> None:
    with pytest.raises(error, match=message):
        get_quantizer(spec)


def test_uniform_hand_values_and_clipped_relu_gradient() -> None:
    # k = 2, s = 0.5: levels {0, 0.5, 1, 1.5}; STE 1{0 < x < 1.5}
    x = torch.tensor([-0.3, 0.0, 0.2, 0.25, 0.8, 1.4, 1.5, 2.0], requires_grad=True)
    y = UniformQuantizer(2, 0.5)(x)
    assert_close(y, torch.tensor([0.0, 0.0, 0.0, 0.5, 1.0, 1.5, 1.5, 1.5]))
    y.sum().backward()
    assert x.grad.tolist() == [0, 0, 1, 1, 1, 1, 0, 0]


def test_sawb_hand_values() -> None:
    # E[w²] = 4, E|w| = 1
    w = torch.tensor([0.0, 0.0, 0.0, 4.0], requires_grad=True)
    # 4 bits, zero level: α = 2·12.1 − 12.2 = 12, step 12/7, 4/(12/7) = 2.33 → 2 → 24/7
    y = SAWBQuantizer(4)(w)
    assert_close(y, torch.tensor([0.0, 0.0, 0.0, 24 / 7]))
    y.backward(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    assert w.grad.tolist() == [1, 2, 3, 4]  # identity STE, no gradient through α
    # 2 bits, 4 levels: α = 2·3.212 − 2.178 = 4.246, levels ±α/3, ±α; 0 is a tie and goes up
    a = 2 * 3.212 - 2.178
    assert_close(SAWBQuantizer(2, zero=False)(w.detach()), torch.tensor([a / 3, a / 3, a / 3, a]))
    # unsigned 4 bits (LUQ activations) on [0, 3, 0, 4]: √E[x²] = 2.5, E|x| = 1.75, α = 30.25 − 21.35 = 8.9,
    # step 2α/15 = 1.1867: 3 → 2.53 → 3 steps, 4 → 3.37 → 3 steps = 3.56; negatives → 0
    assert_close(SAWBQuantizer(4, signed=False)(torch.tensor([0.0, 3.0, 0.0, 4.0])), torch.tensor([0, 3.56, 0, 3.56]))
    assert_close(SAWBQuantizer(4, signed=False)(torch.tensor([0.0, -3.0, 0.0, 4.0])), torch.tensor([0, 0, 0, 3.56]))


def test_pact_module_penalty_and_alpha_parameter() -> None:
    q = PACT(bits=2, alpha=3.0, alpha_decay=0.1)
    assert [n for n, _ in q.named_parameters()] == ["alpha"] and q.alpha.dim() == 0
    assert_close(q.penalty(), torch.tensor(0.5 * 0.1 * 9.0))
    q.penalty().backward()
    assert_close(q.alpha.grad, torch.tensor(0.1 * 3.0))
    assert q(torch.tensor([0.4, 1.6, 7.0])).tolist() == [0.0, 2.0, 3.0]


def _on_levels(y: torch.Tensor, levels: torch.Tensor, tol: float) -> bool:
    return bool(((y[:, None] - levels[None, :]).abs().min(1).values <= tol).all())


values = st.lists(st.floats(-20, 20, allow_nan=False, width=32), min_size=1, max_size=40)


@given(values, st.sampled_from(["identity", "clipped", "relu", "clipped_relu"]))
def test_sign_maps_onto_its_grid(xs, estimator) -> None:
    assert set(SignQuantizer(estimator)(torch.tensor(xs)).tolist()) <= {-1.0, 1.0}


@given(values, st.integers(1, 5), st.floats(0.05, 2.0))
def test_uniform_maps_onto_its_grid_nearest(xs, bits, step) -> None:
    x = torch.tensor(xs, dtype=torch.float64)
    y = UniformQuantizer(bits, step)(x)
    n = 2**bits - 1
    assert _on_levels(y, step * torch.arange(n + 1, dtype=torch.float64), 1e-9)
    assert ((y - x.clamp(0, n * step)).abs() <= step / 2 + 1e-9).all()


@given(values, st.integers(1, 5), st.floats(0.1, 10.0))
def test_pact_maps_onto_its_grid_nearest(xs, bits, alpha) -> None:
    x = torch.tensor(xs, dtype=torch.float64)
    q = PACT(bits, alpha).double()
    y = q(x).detach()
    n, a = 2**bits - 1, q.alpha.detach()  # α as stored (float32, then double)
    assert _on_levels(y, a / n * torch.arange(n + 1, dtype=torch.float64), 1e-9)
    assert ((y - x.clamp(0, a)).abs() <= a / n / 2 + 1e-9).all()


@given(
    values, st.sampled_from([(2, True, True), (4, True, True), (2, True, False), (4, True, False), (4, False, True)])
)
def test_sawb_maps_onto_its_grid_nearest(xs, variant) -> None:
    bits, signed, zero = variant
    x = torch.tensor(xs, dtype=torch.float64)
    q = SAWBQuantizer(bits, signed=signed, zero=zero)
    alpha = sawb_scale(x, q.coefficients)
    if not signed:
        n = 2**bits - 1
        levels = 2 * alpha / n * torch.arange(n + 1, dtype=torch.float64)
    elif zero:
        m = 2 ** (bits - 1) - 1
        levels = alpha / m * torch.arange(-m, m + 1, dtype=torch.float64)
    else:
        n = 2**bits - 1
        levels = alpha / n * torch.arange(-n, n + 1, 2, dtype=torch.float64)
    y = q(x)
    tol = 1e-9 * float(alpha)
    assert _on_levels(y, levels, tol)
    # the nearest level (ties may go either way within tol)
    nearest = (x[:, None] - levels[None, :]).abs().min(1).values
    assert ((y - x).abs() <= nearest + tol).all()


def test_docstring_examples_run() -> None:
    assert doctest.testmod(quantizers_module).failed == 0
