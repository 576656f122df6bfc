"""TensorBoard logging through :class:`torch.utils.tensorboard.SummaryWriter`.

Each run writes ``RESULTS/tensorboard/<comparison>/<run name>/``: the config as text at
step 0, every metric as a scalar at step = epoch, the summary's numbers at the last step.
View with ``tensorboard --logdir RESULTS/tensorboard``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch.utils.tensorboard import SummaryWriter

__all__ = ["TensorBoardTracker"]


class TensorBoardTracker:
    def __init__(self, results_dir: Path, cfg: Any, name: str, comparison: str) -> None:
        self.log_dir = results_dir / "tensorboard" / (comparison or "runs") / name
        self.writer = SummaryWriter(str(self.log_dir))
        self.writer.add_text("config", "```json\n" + json.dumps(cfg.model_dump(), indent=2) + "\n```", 0)
        self.epoch = 0

    def log(self, epoch: int, metrics: Mapping[str, float]) -> None:
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, epoch)
        self.epoch = epoch

    def close(self, summary: Mapping[str, Any], *, failed: bool = False) -> None:
        self.writer.add_text("status", "failed" if failed else "done", self.epoch)
        self.writer.close()
