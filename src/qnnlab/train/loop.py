"""The training loop: one run of one method on one data set with one seed.

Per epoch: set the method's per-epoch hyperparameters (ASkewSGD's ``ε``), take the mini-batch steps (the learning rate
follows the per-iteration schedule), then evaluate the continuous weights ``w`` and the
quantized weights ``Q(w)`` on both splits, compute the diagnostics, and write them all to
the run store in one transaction. Epoch 0 records the initialization. The mini-batch losses
are kept in a tensor during the epoch and read once with the epoch's metrics (no per-step
host sync); the weight histogram is taken once per epoch. Trackers named in ``cfg.track``
(optional extras, imported only then) get every epoch's metrics too. Data and model live
on ``cfg.device``; the seed fixes initialization, data order, augmentation and sampling.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

import qnnlab
from qnnlab.config import RunConfig
from qnnlab.data import Dataset, get_dataset
from qnnlab.data.imagefolder import ImageFolderData
from qnnlab.io import atomic_file
from qnnlab.methods import METHODS, build_optimizer
from qnnlab.nn.models import build_model, constrained_names, param_groups
from qnnlab.quant.grids import get_grid
from qnnlab.schedules import lr_scheduler
from qnnlab.store import RunStore
from qnnlab.train.diagnostics import (
    histogram_edges,
    model_stationarity,
    optimizer_diagnostics,
    weight_diagnostics,
    weight_histogram,
)
from qnnlab.train.enumerate import MAX_ENUM_DIM, binary_minimum, model_losses
from qnnlab.train.evaluate import continuous_weights, evaluate_batches, loss_fn, quantized_weights

# examples whose full-batch gradient feeds the stationarity diagnostics (a fixed subset beyond)
DIAGNOSTIC_EXAMPLES = 10_000

__all__ = ["RunResult", "binary_optimum", "build_run_model", "fit", "versions"]


@dataclass
class RunResult:
    label: str
    config: RunConfig
    summary: dict[str, Any]
    history: list[dict[str, float]] = field(default_factory=list)
    run_id: int | None = None
    weights: dict[str, Tensor] = field(default_factory=dict)  # the continuous w of every parameter
    quantized: dict[str, Tensor] = field(default_factory=dict)  # Q(w) of the constrained ones
    grid_scales: dict[str, Tensor] = field(default_factory=dict)  # their grid scales s (0-d)


def versions() -> dict[str, str]:
    return {
        "qnnlab": qnnlab.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


@lru_cache(maxsize=4)
def load_dataset(data_cfg) -> Dataset | ImageFolderData:
    """:func:`qnnlab.data.get_dataset`, cached (on the CPU) across the runs of a comparison."""
    return get_dataset(data_cfg)


def _enumerable(model: torch.nn.Module, names: list[str], cfg: RunConfig, data) -> bool:
    """Every parameter is binary and there are few of them: the optimum can be certified by enumeration."""
    params = dict(model.named_parameters())
    return (
        cfg.bits == 1
        and isinstance(data, Dataset)
        and data.pixels is None
        and len(names) == len(params)
        and sum(p.numel() for p in params.values()) <= MAX_ENUM_DIM
    )


def binary_optimum(cfg: RunConfig, data: Dataset) -> float | None:
    """``min f`` over binary weights when it can be certified by enumeration, else ``None``.

    ``f`` is the training loss of the model with every parameter on ``{±1}`` and batch norms
    normalizing with full-training-set statistics (see :func:`qnnlab.train.enumerate.model_losses`).
    """
    model = build_model(cfg.model, data.input_shape, data.n_outputs)
    if not _enumerable(model, constrained_names(model, cfg.model.keep_fp), cfg, data):
        return None
    return _binary_optimum(cfg.data, cfg.model)


@lru_cache(maxsize=8)
def _binary_optimum(data_cfg, model_cfg) -> float:
    data = load_dataset(data_cfg)
    model = build_model(model_cfg, data.input_shape, data.n_outputs)
    n = sum(p.numel() for p in model.parameters())
    return binary_minimum(model_losses(model, data.x_train, data.y_train), n)[0]


def _epoch_metrics(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    data: Dataset,
    names: list[str],
    cfg: RunConfig,
    scheduled: dict[str, Any],
    batch_loss: Tensor,
) -> tuple[dict[str, float], dict[str, list[float]]]:
    """The epoch's scalar metrics and its series (see :mod:`qnnlab.store`)."""
    grid = get_grid(cfg.bits)
    eps = scheduled.get("eps")
    w = continuous_weights(model, optimizer)
    q, scales = quantized_weights(model, optimizer, names, cfg.bits)
    out: dict[str, Tensor] = {}
    for prefix, weights in (("", w), ("q_", q)):
        for split in ("train", "test"):
            batches = data.eval_batches(split, cfg.eval_batch_size, cfg.eval_train if split == "train" else None)
            out[f"{prefix}{split}_loss"], out[f"{prefix}{split}_acc"] = evaluate_batches(model, weights, batches)
    out["q_loss_gap"] = out["q_train_loss"] - out["train_loss"]
    flat = torch.cat([w[n].reshape(-1) for n in names])
    scale = torch.cat([scales[n].expand(w[n].numel()) for n in names])
    out.update(weight_diagnostics(flat, torch.cat([q[n].reshape(-1) for n in names]), grid, eps, scale))
    # gradients for the stationarity measures: full batch on small sets, a fixed subset otherwise
    x, y = next(data.eval_batches("train", DIAGNOSTIC_EXAMPLES, min(data.n_train, DIAGNOSTIC_EXAMPLES)))
    out["stationarity"] = model_stationarity(model, w, names, grid, eps, x, y, scales)
    extra = optimizer_diagnostics(model, optimizer, x, y)
    if clash := sorted(extra.keys() & out.keys()):
        raise ValueError(f"optimizer diagnostics {clash} clash with built-in metrics; rename them")
    out.update(extra)
    edges = histogram_edges(grid).to(flat.device)
    hist = weight_histogram(flat / scale, edges)  # in grid units: fixed bins whatever the scales
    # .tolist() syncs with the device: once per epoch
    values = dict(zip(out, torch.stack(list(out.values())).tolist(), strict=True))
    values["lr"] = optimizer.param_groups[0]["lr"]
    values.update({k: float(v) for k, v in scheduled.items()})
    series = {"batch_loss": batch_loss.tolist(), "weight_hist": hist.tolist(), "weight_hist_edges": edges.tolist()}
    return values, series


def build_run_model(cfg: RunConfig, input_shape: int | Sequence[int], n_outputs: int = 1) -> torch.nn.Module:
    """The model a run trains: :func:`build_model`, then the method's ``prepare_model`` hook."""
    model = build_model(cfg.model, input_shape, n_outputs)
    info = METHODS.get(cfg.method.name)
    return model if info.prepare_model is None else info.prepare_model(model, cfg.method)


def fit(
    cfg: RunConfig,
    *,
    store: RunStore | None = None,
    comparison: str = "",
    on_epoch=None,
) -> RunResult:
    """Train one run; record every epoch in ``store`` (when given) and return the summary."""
    data = load_dataset(cfg.data).to(cfg.device)
    torch.manual_seed(cfg.seed)
    order = torch.Generator().manual_seed(cfg.seed)
    model = build_run_model(cfg, data.input_shape, data.n_outputs).to(cfg.device)
    names = constrained_names(model, cfg.model.keep_fp)
    optimizer = build_optimizer(cfg.method, param_groups(model, cfg.model.keep_fp))
    scheduler = lr_scheduler(optimizer, cfg.lr_schedule(data.n_train))
    run_id = store.start_run(cfg.model_dump(), comparison=comparison, versions=versions()) if store else None
    tracker = None

    def record(epoch: int, scheduled: dict[str, Any], batch_loss: Tensor) -> dict[str, float]:
        metrics, series = _epoch_metrics(model, optimizer, data, names, cfg, scheduled, batch_loss)
        if store is not None:
            store.log_epoch(run_id, epoch, metrics, series)
        if tracker is not None:
            tracker.log(epoch, metrics)
        if on_epoch is not None:
            on_epoch(epoch, metrics)
        return metrics

    start = time.perf_counter()
    try:
        tracker = _open_tracker(cfg, store, comparison, run_id)
        history = [record(0, cfg.method.epoch_values(0), torch.empty(0))]
        steps = -(-data.n_train // cfg.batch_size)
        for epoch in range(1, cfg.epochs + 1):
            scheduled = cfg.method.epoch_values(epoch - 1)
            for group in optimizer.param_groups:
                if group.get("constrained", True):
                    group.update(scheduled)
            batch_loss = torch.empty(steps, device=cfg.device)
            for k, (x, y) in enumerate(data.train_batches(cfg.batch_size, order)):
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(model(x), y)
                loss.backward()
                batch_loss[k] = loss.detach()  # a device-side copy, no sync
                optimizer.step()
                scheduler.step()
            history.append(record(epoch, scheduled, batch_loss))
    except BaseException:
        if store is not None:
            store.finish_run(run_id, {}, status="failed")
        if tracker is not None:
            tracker.close({}, failed=True)
        raise
    wall = time.perf_counter() - start

    final = continuous_weights(model, optimizer)
    judged, scales = quantized_weights(model, optimizer, names, cfg.bits)
    quantized = {n: judged[n] for n in names}
    summary = _summary(cfg, data, history[-1], quantized, scales, wall)
    if store is not None:
        store.finish_run(run_id, summary)
        path = store.dir / "checkpoints" / f"run-{run_id}.pt"
        _save_checkpoint(path, cfg, model, optimizer, final, quantized, scales)
    if tracker is not None:
        tracker.close(summary)
    return RunResult(cfg.label, cfg, summary, history, run_id, final, quantized, scales)


def _open_tracker(cfg: RunConfig, store: RunStore | None, comparison: str, run_id: int | None):
    """The trackers of ``cfg.track`` (imported only when asked for), writing under the store's folder."""
    if not cfg.track:
        return None
    if store is None:
        raise ValueError(f"track = {list(cfg.track)} needs a results folder: pass store=RunStore(DIR) to fit")
    from qnnlab.tracking import open_trackers

    return open_trackers(cfg.track, store.dir, cfg, comparison=comparison, run_id=run_id)


def _summary(
    cfg: RunConfig,
    data: Dataset | ImageFolderData,
    last: dict[str, float],
    q: dict[str, Tensor],
    scales: dict[str, Tensor],
    wall: float,
) -> dict[str, Any]:
    """The last epoch's metrics, the wall time, whether every ``Q(w)`` is on its grid, and the gap to the optimum."""
    levels = get_grid(cfg.bits).levels()
    summary: dict[str, Any] = {**last, "wall_time": wall}
    summary["on_grid"] = all(bool(torch.isin(t, scales[n] * levels.to(t.device)).all()) for n, t in q.items())
    optimum = binary_optimum(cfg, data)
    if optimum is not None:
        # the loss of Q(w) under the same definition as the enumerated optimum
        # scored on the plain architecture (a prepared model's STE layers do not vmap): the
        # weights are already on the grid, so the forward is the same
        plain = build_model(cfg.model, data.input_shape, data.n_outputs)
        qvec = torch.cat([q[n].reshape(-1) for n, _ in plain.named_parameters()]).cpu()
        f_q = float(model_losses(plain, data.x_train.cpu(), data.y_train.cpu())(qvec[None])[0])
        summary["binary_optimum"] = optimum
        summary["gap"] = f_q - optimum
        summary["rel_gap"] = (f_q - optimum) / abs(optimum)
    return summary


def _save_checkpoint(
    path: Path,
    cfg: RunConfig,
    model,
    optimizer,
    final: dict[str, Tensor],
    quantized: dict[str, Tensor],
    scales: dict[str, Tensor],
) -> None:
    """Everything needed to resume or export, written to a temp file then renamed (atomic).

    ``quantized`` and ``grid_scales`` are the judged ``Q(w)`` of the constrained tensors and their
    grid scales: what :func:`qnnlab.packed.export_run` packs.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as f:
        torch.save(
            {
                "config": cfg.model_dump(),
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "continuous": final,
                "quantized": quantized,
                "grid_scales": scales,
                "epoch": cfg.epochs,
                "versions": versions(),
            },
            f,
        )
