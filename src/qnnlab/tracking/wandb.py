"""Weights & Biases logging that never needs the network.

The mode is ``WANDB_MODE`` when set; otherwise ``online`` when ``WANDB_API_KEY`` is set and
``offline`` when it is not (no account needed). An online start that fails (no network, a
bad key) falls back to offline with a warning, so a run never fails or waits for lack of
network; ``wandb sync RESULTS/wandb/offline-run-*`` uploads offline runs later. Each run
logs its config, every epoch's metrics at step = epoch, and its summary.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import wandb

__all__ = ["WandbTracker", "wandb_mode"]

PROJECT = "qnnlab"


def wandb_mode() -> str:
    """``WANDB_MODE`` if set, else ``online`` with an API key in the environment, else ``offline``."""
    if mode := os.environ.get("WANDB_MODE"):
        return mode
    return "online" if os.environ.get("WANDB_API_KEY") else "offline"


class WandbTracker:
    def __init__(self, results_dir: Path, cfg: Any, name: str, comparison: str) -> None:
        kwargs = dict(
            project=os.environ.get("WANDB_PROJECT", PROJECT),
            group=comparison or None,
            name=name,
            config=cfg.model_dump(),
            dir=str(results_dir),
        )
        settings = wandb.Settings(silent=True, console="off", x_disable_stats=True, init_timeout=30)
        mode = wandb_mode()
        try:
            self.run = wandb.init(mode=mode, settings=settings, **kwargs)
        except Exception as err:
            if mode == "offline":
                raise
            warnings.warn(f"wandb could not start online ({err}); logging offline instead", stacklevel=2)
            self.run = wandb.init(mode="offline", settings=settings, **kwargs)

    def log(self, epoch: int, metrics: Mapping[str, float]) -> None:
        self.run.log(dict(metrics), step=epoch)

    def close(self, summary: Mapping[str, Any], *, failed: bool = False) -> None:
        for key, value in summary.items():
            if isinstance(value, bool | int | str) or (isinstance(value, float) and math.isfinite(value)):
                self.run.summary[key] = value
        self.run.finish(exit_code=1 if failed else 0)
