"""The methods' hand-value and property tests that take optimizer steps run on both paths: fused and eager."""

import inspect
import re

import pytest

from qnnlab.optim._base import QuantOptimizer

# the modules of the methods' own tests; test_contract and test_fused choose their paths themselves
BOTH_PATHS = {
    "test_adaste",
    "test_askewsgd",
    "test_askewsgd_kbit",
    "test_binaryconnect",
    "test_bop",
    "test_constrained_gd",
    "test_primal_dual",
    "test_proxquant",
}
_STEPS = re.compile(r"\.step\(|one_step\(|\brun\(")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    module = metafunc.module.__name__.rsplit(".", 1)[-1]
    takes_steps = _STEPS.search(inspect.getsource(metafunc.function)) is not None
    if module in BOTH_PATHS and takes_steps and metafunc.definition.get_closest_marker("slow") is None:
        metafunc.fixturenames.append("step_path")
        metafunc.parametrize("step_path", ["fused", "eager"], indirect=True)


@pytest.fixture
def step_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Force the path of every ``fused=None`` group (``fused=True`` insists: the C kernel must build)."""
    monkeypatch.setattr(QuantOptimizer, "fused_default", request.param == "fused")
    return request.param
