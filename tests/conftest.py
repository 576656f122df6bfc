import os

import pytest
import torch
from hypothesis import settings

# derandomized in CI so that a property test cannot flake between runs
settings.register_profile("ci", derandomize=True, deadline=None, max_examples=200)
settings.register_profile("dev", deadline=None, max_examples=100)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
