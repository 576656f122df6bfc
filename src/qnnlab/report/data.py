"""A comparison read back from the run store, grouped by method and aggregated over seeds.

Only finished runs count; when a comparison was run more than once into the same folder,
the latest run of each (method label, data seed, seed) is kept. A run may hold any subset of the
metrics and series (a loss only, no diagnostics, no histograms): what is missing is simply absent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qnnlab.store import DB_NAME, RunStore

__all__ = ["Comparison", "MethodRuns", "load_comparison"]

# the per-iteration curve is averaged over windows so that it has at most this many points
MAX_ITER_POINTS = 400


@dataclass
class MethodRuns:
    """Every seed of one method (one label): store rows, per-epoch metrics and series."""

    label: str
    runs: list[dict[str, Any]] = field(default_factory=list)
    histories: list[dict[int, dict[str, float]]] = field(default_factory=list)
    batch_losses: list[np.ndarray] = field(default_factory=list)
    hists: list[dict[int, list[float]]] = field(default_factory=list)
    edges: np.ndarray | None = None

    @property
    def seeds(self) -> list[int]:
        return [r["seed"] for r in self.runs]

    def metric_names(self) -> list[str]:
        return sorted(set().union(*(h[e].keys() for h in self.histories for e in h)))

    def epoch_stats(self, metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """``(epochs, mean, std)`` over seeds (sample std; 0 for one seed), or None if never recorded."""
        if not self.histories:
            return None
        epochs = sorted(set.intersection(*(set(h) for h in self.histories)))
        rows = [[h[e].get(metric, np.nan) for e in epochs] for h in self.histories]
        values = np.array(rows, dtype=float)
        keep = ~np.isnan(values).any(axis=0)
        if not keep.any():
            return None
        values = values[:, keep]
        std = values.std(axis=0, ddof=1) if len(values) > 1 else np.zeros(values.shape[1])
        return np.array(epochs)[keep], values.mean(axis=0), std

    def iteration_stats(self, max_points: int = MAX_ITER_POINTS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mini-batch loss vs iteration ``k = 1..K``: window means, then mean and std over seeds."""
        k = min(len(b) for b in self.batch_losses)
        losses = np.stack([b[:k] for b in self.batch_losses])
        windows = np.array_split(np.arange(1, k + 1), min(max_points, k)) if k else []
        x = np.array([w.mean() for w in windows])
        means = np.stack([losses[:, w - 1].mean(axis=1) for w in windows], axis=1) if k else losses
        std = means.std(axis=0, ddof=1) if len(means) > 1 else np.zeros(means.shape[1])
        return x, means.mean(axis=0), std

    def histogram_frames(self) -> tuple[list[int], np.ndarray]:
        """``(epochs, counts)`` with counts ``(epochs, bins)``, the seeds' mean weight histogram."""
        epochs = sorted(set.intersection(*(set(h) for h in self.hists))) if self.hists else []
        return epochs, np.array([[h[e] for e in epochs] for h in self.hists], dtype=float).mean(axis=0)


@dataclass
class Comparison:
    name: str
    methods: list[MethodRuns]
    skipped: int  # runs left out: failed, unfinished, diverged, or superseded by a later run
    diverged: list[str] = field(default_factory=list)  # "label (seed s): why", one per diverged run

    @property
    def optimum(self) -> float | None:
        """The certified binary optimum recorded in the runs' summaries, if any."""
        values = {r["summary"].get("binary_optimum") for m in self.methods for r in m.runs} - {None}
        return values.pop() if len(values) == 1 else None


def load_comparison(results_dir: str | Path, name: str | None = None) -> Comparison:
    """The finished runs of comparison ``name`` (default: the one run last) grouped by label."""
    with _open(results_dir) as store:
        rows = store.runs()
        names = list(dict.fromkeys(r["comparison"] for r in rows))
        if not names:
            raise ValueError(f"no runs in {Path(results_dir) / DB_NAME}")
        if name is None:
            name = rows[-1]["comparison"]
        elif name not in names:
            raise ValueError(f"unknown comparison {name!r}; choose from: {', '.join(sorted(names))}")
        rows = [r for r in rows if r["comparison"] == name]
        latest = {(r["label"], r["data_seed"], r["seed"]): r for r in rows if r["status"] == "done"}
        methods: dict[str, MethodRuns] = {}
        for run in latest.values():
            m = methods.setdefault(run["label"], MethodRuns(run["label"]))
            m.runs.append(run)
            m.histories.append(store.history(run["id"]))
            batches = store.series(run["id"], "batch_loss")
            m.batch_losses.append(np.array([x for e in sorted(batches) for x in batches[e]], dtype=float))
            m.hists.append(store.series(run["id"], "weight_hist"))
            edges = store.series(run["id"], "weight_hist_edges")
            if edges and m.edges is None:
                m.edges = np.array(edges[min(edges)], dtype=float)
    diverged = [
        f"{r['label']} (seed {r['seed']}): {(r['summary'] or {}).get('error') or 'diverged'}"
        for r in rows
        if r["status"] == "diverged"
    ]
    if not methods:
        why = f" ({len(diverged)} diverged)" if diverged else ""
        raise ValueError(f"comparison {name!r} has no finished runs{why} in {Path(results_dir) / DB_NAME}")
    # methods in the order they were first run
    order = list(dict.fromkeys(r["label"] for r in rows))
    return Comparison(name, [methods[label] for label in order if label in methods], len(rows) - len(latest), diverged)


def _open(results_dir: str | Path) -> RunStore:
    if not (Path(results_dir) / DB_NAME).is_file():
        raise FileNotFoundError(f"no run store in {results_dir}: {DB_NAME} not found (run `qnnlab compare` first)")
    return RunStore(results_dir, read_only=True)
