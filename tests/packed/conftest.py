from collections.abc import Callable
from pathlib import Path

import pytest

from qnnlab.config import validate_config
from qnnlab.store import RunStore
from qnnlab.train.loop import RunResult, fit


def _train_run(results: Path, **changes) -> RunResult:
    """A short logistic run (BinaryConnect: latent weights live in the optimizer) with a checkpoint."""
    cfg = validate_config(
        {
            "epochs": 3,
            "batch_size": 50,
            "data": {"name": "logistic", "n_train": 200, "n_test": 100},
            "model": {"name": "linear", "bias": True},
            "method": {"name": "binaryconnect", "lr": 0.1},
        }
        | changes
    )
    with RunStore(results) as store:
        return fit(cfg, store=store)


@pytest.fixture
def train_run() -> Callable[..., RunResult]:
    """``train_run(results_dir, **config changes)``: train and record a short logistic run."""
    return _train_run


@pytest.fixture
def logistic_run(tmp_path: Path) -> RunResult:
    return _train_run(tmp_path / "results")
