"""The certified gap beside a result where enumeration does not apply: box bound, bound on the gap, B&B optimum."""

import pytest

import qnnlab.train.recorder as recorder
from qnnlab.certify import box_bound, linear_objective
from qnnlab.data.synthetic import correlated_logistic
from qnnlab.experiments.compare import aggregate, markdown_table
from qnnlab.train.enumerate import binary_minimum, logistic_losses
from qnnlab.train.loop import fit

D = 17


@pytest.fixture(scope="module")
def data():
    return correlated_logistic(D, 200, 100, seed=3)


@pytest.fixture(scope="module")
def best(data) -> float:
    """The binary optimum by enumerating the 2^17 sign vectors."""
    return binary_minimum(logistic_losses(data.x_train, data.y_train), D)[0]


@pytest.fixture
def beyond_enumeration(monkeypatch):
    """The recorder's enumeration limit below D, so that the d = 17 problem goes to the convex bounds."""
    monkeypatch.setattr(recorder, "MAX_ENUM_DIM", 16)


def _run(data, **extra):
    cfg = {"epochs": 2, "batch_size": 100, "method": {"name": "binaryconnect", "lr": 0.1}, **extra}
    return fit(cfg, data=data)


def test_branch_and_bound_optimum_and_gap_agree_with_enumeration(data, best, beyond_enumeration) -> None:
    s = _run(data).summary
    assert s["binary_optimum"] == pytest.approx(best, rel=1e-9)
    f = linear_objective("logistic", data.x_train, data.y_train)
    f_box = box_bound(f).lower
    assert s["box_bound"] == pytest.approx(f_box) and f_box <= best
    f_q = s["binary_optimum"] + s["gap"]
    assert s["rel_gap"] == pytest.approx((f_q - best) / best)
    # proved optimal: the best certified lower bound is the optimum, so the bound on the gap is the gap
    assert s["certified_lower"] == pytest.approx(best, rel=1e-9)
    assert s["cert_gap"] == pytest.approx(s["rel_gap"], abs=1e-9)


def test_box_bound_alone_bounds_the_gap(data, best, beyond_enumeration) -> None:
    result = _run(data, certify_time=0.0)
    s = result.summary
    assert "binary_optimum" not in s and "rel_gap" not in s
    q = result.quantized["weight"].reshape(-1).double().numpy()
    f_q = linear_objective("logistic", data.x_train, data.y_train).value(q)
    assert s["certified_lower"] == s["box_bound"]
    assert s["cert_gap"] == pytest.approx((f_q - s["box_bound"]) / s["box_bound"])
    assert s["cert_gap"] >= (f_q - best) / best  # a bound on the true gap
    assert "certified gap bound %" in markdown_table(aggregate([result])).splitlines()[0]


def test_no_bound_for_a_model_with_a_bias(data, beyond_enumeration) -> None:
    s = _run(data, model={"name": "linear", "bias": True}).summary
    assert "cert_gap" not in s and "box_bound" not in s
