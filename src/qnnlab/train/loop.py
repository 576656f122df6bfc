"""The training loop: one run of one method on one data set with one seed.

Per epoch: set the method's per-epoch hyperparameters (ASkewSGD's ``ε``), take the mini-batch steps (the learning rate
follows the per-iteration schedule), then evaluate the continuous weights ``w`` and the
quantized weights ``Q(w)`` on both splits, compute the diagnostics, and write them all to
the run store in one transaction. Epoch 0 records the initialization. Data and model live
on ``cfg.device``; the seed fixes initialization, data order, augmentation and sampling.
"""

from __future__ import annotations

import os
import platform
import time
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
from qnnlab.methods import METHODS, build_optimizer
from qnnlab.nn.models import build_model, constrained_names, param_groups
from qnnlab.quant.grids import get_grid
from qnnlab.schedules import lr_scheduler
from qnnlab.store import RunStore
from qnnlab.train.diagnostics import weight_diagnostics
from qnnlab.train.enumerate import MAX_ENUM_DIM, binary_minimum, model_losses
from qnnlab.train.evaluate import continuous_weights, evaluate_batches, loss_fn, quantized_weights

__all__ = ["RunResult", "binary_optimum", "fit", "versions"]


@dataclass
class RunResult:
    label: str
    config: RunConfig
    summary: dict[str, Any]
    history: list[dict[str, float]] = field(default_factory=list)
    run_id: int | None = None
    weights: dict[str, Tensor] = field(default_factory=dict)


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
) -> dict[str, float]:
    grid = get_grid(cfg.bits)
    w = continuous_weights(model, optimizer)
    q = quantized_weights(w, names, grid)
    out: dict[str, Tensor] = {}
    for prefix, weights in (("", w), ("q_", q)):
        for split in ("train", "test"):
            batches = data.eval_batches(split, cfg.eval_batch_size, cfg.eval_train if split == "train" else None)
            out[f"{prefix}{split}_loss"], out[f"{prefix}{split}_acc"] = evaluate_batches(model, weights, batches)
    out.update(weight_diagnostics([w[n] for n in names], grid, scheduled.get("eps")))
    # .tolist() syncs with the device: once per epoch
    values = dict(zip(out, torch.stack(list(out.values())).tolist(), strict=True))
    values["lr"] = optimizer.param_groups[0]["lr"]
    values.update({k: float(v) for k, v in scheduled.items()})
    return values


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
    model = build_model(cfg.model, data.input_shape, data.n_outputs).to(cfg.device)
    info = METHODS.get(cfg.method.name)
    if info.prepare_model is not None:
        model = info.prepare_model(model, cfg.method)
    names = constrained_names(model, cfg.model.keep_fp)
    optimizer = build_optimizer(cfg.method, param_groups(model, cfg.model.keep_fp))
    scheduler = lr_scheduler(optimizer, cfg.lr_schedule(data.n_train))
    run_id = store.start_run(cfg.model_dump(), comparison=comparison, versions=versions()) if store else None

    def record(epoch: int, scheduled: dict[str, Any]) -> dict[str, float]:
        metrics = _epoch_metrics(model, optimizer, data, names, cfg, scheduled)
        if store is not None:
            store.log_epoch(run_id, epoch, metrics)
        if on_epoch is not None:
            on_epoch(epoch, metrics)
        return metrics

    start = time.perf_counter()
    try:
        history = [record(0, cfg.method.epoch_values(0))]
        for epoch in range(1, cfg.epochs + 1):
            scheduled = cfg.method.epoch_values(epoch - 1)
            for group in optimizer.param_groups:
                if group.get("constrained", True):
                    group.update(scheduled)
            for x, y in data.train_batches(cfg.batch_size, order):
                optimizer.zero_grad(set_to_none=True)
                loss_fn(model(x), y).backward()
                optimizer.step()
                scheduler.step()
            history.append(record(epoch, scheduled))
    except BaseException:
        if store is not None:
            store.finish_run(run_id, {}, status="failed")
        raise
    wall = time.perf_counter() - start

    final = continuous_weights(model, optimizer)
    summary = _summary(cfg, data, model, history[-1], final, names, wall)
    if store is not None:
        store.finish_run(run_id, summary)
        _save_checkpoint(store.dir / "checkpoints" / f"run-{run_id}.pt", cfg, model, optimizer, final)
    return RunResult(cfg.label, cfg, summary, history, run_id, final)


def _summary(
    cfg: RunConfig,
    data: Dataset | ImageFolderData,
    model: torch.nn.Module,
    last: dict[str, float],
    final: dict[str, Tensor],
    names: list[str],
    wall: float,
) -> dict[str, Any]:
    grid = get_grid(cfg.bits)
    summary: dict[str, Any] = {**last, "wall_time": wall}
    q = quantized_weights(final, names, grid)
    levels = grid.levels()
    summary["on_grid"] = all(bool(torch.isin(q[n], levels.to(q[n].device)).all()) for n in names)
    optimum = binary_optimum(cfg, data)
    if optimum is not None:
        # the loss of Q(w) under the same definition as the enumerated optimum
        qvec = torch.cat([q[n].reshape(-1) for n, _ in model.named_parameters()]).cpu()
        f_q = float(model_losses(model, data.x_train.cpu(), data.y_train.cpu())(qvec[None])[0])
        summary["binary_optimum"] = optimum
        summary["gap"] = f_q - optimum
        summary["rel_gap"] = (f_q - optimum) / abs(optimum)
    return summary


def _save_checkpoint(path: Path, cfg: RunConfig, model, optimizer, final: dict[str, Tensor]) -> None:
    """Everything needed to resume or export, written to a temp file then renamed (atomic)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(
        {
            "config": cfg.model_dump(),
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "continuous": final,
            "epoch": cfg.epochs,
            "versions": versions(),
        },
        tmp,
    )
    os.replace(tmp, path)
