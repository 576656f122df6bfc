"""Optional experiment trackers: TensorBoard and Weights & Biases.

A run names its trackers in ``cfg.track`` (or ``--track`` on the command line); each gets the
run's config, every epoch's metrics (step = epoch) and the final summary. The tracker
packages are optional extras (``pip install 'qnnlab[tracking]'``): the core never imports
them, and this module imports one only when a run asks for it. Files go under the results
folder: ``tensorboard/<comparison>/<run>/`` and ``wandb/``.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from qnnlab.registry import Registry

__all__ = ["TRACKERS", "Tracker", "check_available", "open_trackers", "run_name"]


class Tracker(Protocol):
    def log(self, epoch: int, metrics: Mapping[str, float]) -> None: ...

    def close(self, summary: Mapping[str, Any], *, failed: bool = False) -> None: ...


# name -> (package it needs, factory(results_dir, cfg, name, comparison) -> Tracker)
TRACKERS: Registry[tuple[str, Callable[..., Tracker]]] = Registry("tracker")


def _tensorboard(*args: Any) -> Tracker:
    from qnnlab.tracking.tensorboard import TensorBoardTracker

    return TensorBoardTracker(*args)


def _wandb(*args: Any) -> Tracker:
    from qnnlab.tracking.wandb import WandbTracker

    return WandbTracker(*args)


TRACKERS.register("tensorboard", ("tensorboard", _tensorboard))
TRACKERS.register("wandb", ("wandb", _wandb))


def check_available(names: Sequence[str]) -> None:
    """Raise before any training if a named tracker is unknown or its package is missing."""
    for name in names:
        package, _ = TRACKERS.get(name)
        if importlib.util.find_spec(package) is None:
            raise ModuleNotFoundError(f"tracker {name!r} needs the {package!r} package: pip install 'qnnlab[tracking]'")


def run_name(cfg: Any, comparison: str, run_id: int | None) -> str:
    """``<comparison>-<run id>-<label>-seed<seed>``, safe as a folder name."""
    raw = f"{comparison or 'run'}-{run_id if run_id is not None else 0}-{cfg.label}-seed{cfg.seed}"
    return re.sub(r"[^A-Za-z0-9_.=+-]+", "_", raw)


class _Trackers:
    def __init__(self, trackers: list[Tracker]) -> None:
        self.trackers = trackers

    def log(self, epoch: int, metrics: Mapping[str, float]) -> None:
        for t in self.trackers:
            t.log(epoch, metrics)

    def close(self, summary: Mapping[str, Any], *, failed: bool = False) -> None:
        for t in self.trackers:
            t.close(summary, failed=failed)


def open_trackers(names: Sequence[str], results_dir: Path, cfg: Any, *, comparison: str, run_id: int | None) -> Tracker:
    """One tracker that forwards to each of ``names`` (duplicates dropped)."""
    names = list(dict.fromkeys(names))
    check_available(names)
    name = run_name(cfg, comparison, run_id)
    return _Trackers([TRACKERS.get(n)[1](Path(results_dir), cfg, name, comparison) for n in names])
