"""Record any training loop: each epoch's metrics of ``w`` and ``Q(w)`` and its diagnostics, in the run store.

::

    rec = Recorder("results", "my-study", model=model, optimizer=opt, data=data)
    rec.log_epoch()                      # epoch 0: the initialization
    for epoch in range(epochs):
        for x, y in loader:
            ...                          # forward, backward, opt.step()
            rec.log_batch(loss)          # optional: the per-iteration curve (no host sync)
        rec.log_epoch()                  # evaluate w and Q(w), diagnostics, one transaction
    rec.finish()                         # checkpoint and summary; then `qnnlab report results`

Per epoch the recorder evaluates the continuous weights ``w`` and the quantized weights
``Q(w)`` (:mod:`qnnlab.train.evaluate`) on every split of ``data`` (``train_loss``,
``q_test_acc``, ...), computes the diagnostics of :mod:`qnnlab.train.diagnostics` on a full
batch of up to :data:`DIAGNOSTIC_EXAMPLES` training examples, reads the learning rate and the
scheduled hyperparameters (``ε`` and whatever its ``schedulers`` set), and writes them all
with the epoch's series (mini-batch losses, weight histogram) in one transaction; the
values are read from the device once per epoch. The quantized parameters are those of the
optimizer's ``constrained`` param groups (:func:`qnnlab.nn.param_groups`; an optimizer whose
groups say nothing: the weights of two or more dimensions). When every parameter is binary
and there are at most :data:`~qnnlab.train.enumerate.MAX_ENUM_DIM` of them, the certified
binary optimum is enumerated on the training data and the summary gets the gap of ``Q(w)``.

Before each epoch is measured, the divergence guard (:func:`qnnlab.train.guard.check_finite`)
checks the epoch's mini-batch losses, the weights and the optimizer state; a NaN or an infinity
raises :class:`~qnnlab.train.guard.Diverged` and nothing of that epoch is recorded or
checkpointed. :meth:`Recorder.checkpoint` writes everything needed to export or resume the run
(:mod:`qnnlab.train.checkpoint`); :meth:`Recorder.finish` writes the final one before it marks
the run ``done``.

Beyond that, for a convex linear problem (a bias-free linear model under the default loss) it gets
the box relaxation's bound ``box_bound``, the best certified lower bound ``certified_lower`` and the
certified gap bound ``cert_gap = (f(Q(w)) − L)/|L|``, and the exact gap when branch-and-bound proves
the optimum within ``certify_time`` (:mod:`qnnlab.train.certified`).

``Q(w)`` is judged with batch-norm statistics re-estimated at ``Q(w)`` on the training examples the
train metrics use (:mod:`qnnlab.train.recalibrate`; ``bn_recalibrate=False``: the running statistics
gathered at ``w``), the convention the enumerated optimum uses, so that with all the training data
"train loss Q(w)" is the loss whose gap is reported.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim import Optimizer

import qnnlab
from qnnlab.certify import certified_gap
from qnnlab.data import Data, Dataset
from qnnlab.methods import method_name
from qnnlab.nn.models import constrained_names
from qnnlab.quant.grids import get_grid
from qnnlab.schedules import EpochScheduler
from qnnlab.store import RunStore
from qnnlab.train.certified import ConvexBound, convex_bound
from qnnlab.train.checkpoint import checkpoint_path, save_checkpoint
from qnnlab.train.diagnostics import (
    histogram_edges,
    model_stationarity,
    optimizer_diagnostics,
    weight_diagnostics,
    weight_histogram,
)
from qnnlab.train.enumerate import MAX_ENUM_DIM, binary_optimum, model_losses
from qnnlab.train.evaluate import Metric, Objective, continuous_weights, evaluate, quantized_weights
from qnnlab.train.guard import check_finite
from qnnlab.train.recalibrate import recalibrated_stats

__all__ = ["DIAGNOSTIC_EXAMPLES", "Recorder", "RunResult", "describe", "judged_bits", "quantized_names", "versions"]

# examples whose full-batch gradient feeds the stationarity diagnostics (a fixed subset beyond)
DIAGNOSTIC_EXAMPLES = 10_000


@dataclass
class RunResult:
    label: str
    config: Any  # the RunConfig of a fit, else the run's config as stored
    summary: dict[str, Any]
    history: list[dict[str, float]] = field(default_factory=list)
    run_id: int | None = None
    weights: dict[str, Tensor] = field(default_factory=dict)  # the continuous w of every parameter
    quantized: dict[str, Tensor] = field(default_factory=dict)  # Q(w) of the constrained ones
    grid_scales: dict[str, Tensor] = field(default_factory=dict)  # their grid scales s (0-d)
    status: str = "done"  # or "diverged" (a comparison goes on past a diverged run)
    error: str | None = None  # why it did not finish


def versions() -> dict[str, str]:
    """What a run's numbers depend on beside its config; runs are bit-identical only at the same ``torch_threads``."""
    return {
        "qnnlab": qnnlab.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "torch_threads": str(torch.get_num_threads()),
    }


def _constrained_groups(optimizer: Optimizer) -> list[dict[str, Any]]:
    return [g for g in optimizer.param_groups if g.get("constrained", True)]


def judged_bits(optimizer: Optimizer, bits: int | None = None) -> int:
    """``bits`` if given, else the grid the optimizer's constrained group trains for (``bits``), else 1."""
    return bits if bits is not None else int(_constrained_groups(optimizer)[0].get("bits", 1))


def quantized_names(model: nn.Module, optimizer: Optimizer) -> list[str]:
    """The parameters of ``optimizer``'s constrained groups, in ``model`` order.

    An optimizer whose groups carry no ``constrained`` key quantizes the weights of two or more
    dimensions (:func:`qnnlab.nn.models.constrained_names` with its defaults).
    """
    if not any("constrained" in g for g in optimizer.param_groups):
        return constrained_names(model)
    wanted = {id(p) for g in _constrained_groups(optimizer) for p in g["params"]}
    return [n for n, p in model.named_parameters() if id(p) in wanted]


def describe(obj: object) -> dict[str, Any]:
    """A config table for an object passed in rather than named: ``{"name": "custom", "class": ...}``."""
    kind = type(obj)
    return {"name": "custom", "class": f"{kind.__module__}.{kind.__qualname__}"}


def _stored_config(config: Any, model: nn.Module, optimizer: Optimizer, data: Data, bits: int) -> dict[str, Any]:
    """``config`` as a JSON-able dict (a pydantic model dumped), completed with what the store and report read."""
    given = dict(config.model_dump() if hasattr(config, "model_dump") else (config or {}))
    method = method_name(optimizer)
    group = _constrained_groups(optimizer)[0]
    hyper = {k: v for k, v in group.items() if k != "params" and isinstance(v, bool | int | float | str | tuple)}
    defaults = {
        "label": given.get("label") or method,
        "seed": 0,
        "bits": bits,
        "method": {"name": method, **hyper},
        "model": describe(model),
        "data": {**describe(data), "n_train": data.n_train},
    }
    return {**defaults, **given}


def _gaps(f_q: float, optimum: float) -> dict[str, float]:
    """The summary's ``binary_optimum``, ``gap = f(Q(w)) − f*`` and ``rel_gap = gap/|f*|``."""
    return {"binary_optimum": optimum, "gap": f_q - optimum, "rel_gap": (f_q - optimum) / abs(optimum)}


class Recorder:
    """Evaluates and records one training run of ``model`` by ``optimizer`` on ``data``; see the module docstring.

    Args:
        results: the results folder (or an open :class:`~qnnlab.store.RunStore`); ``None`` keeps
            the history in memory only.
        name: the comparison the run belongs to (``qnnlab report -c NAME``).
        model, optimizer: what is trained; ``Q(w)`` is the optimizer's ``quantize`` (else the
            default grid of ``bits``).
        data: the data to evaluate on: a :class:`qnnlab.data.Dataset` or any :class:`~qnnlab.data.Data`.
        config: the run's config as stored (a ``RunConfig`` or any JSON-able mapping; ``label``
            and ``seed`` name the run in tables); missing keys are filled from the objects.
        bits: the grid ``Q(w)`` is judged on; default: the constrained group's ``bits``, else 1.
        loss, metrics: the objective (:meth:`qnnlab.train.evaluate.Objective.for_task`).
        schedulers: :class:`~qnnlab.schedules.EpochScheduler` s whose values are recorded per epoch.
        eval_batch_size, eval_train: examples per forward pass; a fixed subset for the train split.
        on_epoch: called with ``(epoch, metrics)`` after each recorded epoch.
        optimum_model: the architecture the binary optimum is enumerated on (default ``model``;
            the model before quantized layers were swapped in, which :func:`torch.vmap` can run).
        run_id: continue this run of the store (a resumed training) instead of starting one.
        checkpoint: with ``run_id``, the checkpoint it continues from: the epochs recorded after its
            ``epoch`` are deleted, its clock restored and its history read back from the store
            (:func:`qnnlab.fit` with ``resume=True``).
        training_state: returns the state of the training loop a checkpoint also holds (schedulers,
            RNG states) under ``training``; see :mod:`qnnlab.train.checkpoint`.
        bn_recalibrate: judge ``Q(w)`` with batch-norm statistics re-estimated at ``Q(w)`` on the
            training data (the default; see the module docstring), else with those gathered at ``w``.
        certify_time: seconds of branch-and-bound for a convex linear problem too large to enumerate,
            once per problem (0: the box bound alone); see :mod:`qnnlab.train.certified`.
    """

    def __init__(
        self,
        results: str | Path | RunStore | None = None,
        name: str = "",
        *,
        model: nn.Module,
        optimizer: Optimizer,
        data: Data,
        config: Any = None,
        bits: int | None = None,
        loss: Metric | None = None,
        metrics: Mapping[str, Metric] | None = None,
        schedulers: Sequence[EpochScheduler] = (),
        eval_batch_size: int = 1000,
        eval_train: int | None = None,
        on_epoch: Callable[[int, dict[str, float]], None] | None = None,
        optimum_model: nn.Module | None = None,
        run_id: int | None = None,
        checkpoint: Mapping[str, Any] | None = None,
        training_state: Callable[[], Mapping[str, Any]] | None = None,
        bn_recalibrate: bool = True,
        certify_time: float = 10.0,
    ) -> None:
        self.model, self.optimizer, self.data = model, optimizer, data
        self.names = quantized_names(model, optimizer)
        if not self.names:
            raise ValueError("the optimizer has no quantized parameters (no param group with constrained=True)")
        self.bits = judged_bits(optimizer, bits)
        self.objective = Objective.for_task(data.task, loss, metrics)
        self.schedulers, self.on_epoch = list(schedulers), on_epoch
        self.eval_batch_size, self.eval_train = eval_batch_size, eval_train
        self.bn_recalibrate, self.certify_time = bn_recalibrate, certify_time
        self.config = _stored_config(config, model, optimizer, data, self.bits)
        self.config["bn_recalibrate"] = bn_recalibrate  # what was done, whatever the config said
        self.label = str(self.config["label"])
        self._optimum_model = optimum_model if optimum_model is not None else model
        self.optimum = self._certified_optimum()
        if isinstance(results, RunStore) or results is None:
            self.store, self._owns_store = results, False
        else:
            self.store, self._owns_store = RunStore(results), True
        self.epoch = -1  # the last recorded
        if self.store is None:
            self.run_id = None
        elif run_id is None:
            self.run_id = self.store.start_run(self.config, comparison=name, versions=versions())
        else:
            self.run_id = run_id
            self.epoch = self.store.resume_run(run_id, after=None if checkpoint is None else checkpoint["epoch"])
        self.history: list[dict[str, float]] = []
        self.result: RunResult | None = None
        self.training_state = training_state
        self.batch_losses: list[Tensor] = []  # the epoch's so far (log_batch)
        self._start = time.perf_counter()
        if checkpoint is not None:
            # the epochs up to the checkpoint's, as recorded (the later ones were just deleted)
            recorded = self.store.history(run_id)
            self.epoch, self.history = int(checkpoint["epoch"]), [recorded[e] for e in sorted(recorded)]
            self._start -= float(checkpoint["recorder"]["wall"])

    # -- per step and per epoch -------------------------------------------------------------
    def log_batch(self, loss: Tensor) -> None:
        """Keep one mini-batch loss (a device-side copy: no sync) for the epoch's ``batch_loss`` series."""
        self.batch_losses.append(loss.detach())

    def log_epoch(self, epoch: int | None = None) -> dict[str, float]:
        """Evaluate, record and return epoch ``epoch`` (default: the one after the last recorded, 0 first).

        Raises :class:`~qnnlab.train.guard.Diverged` (recording nothing) when the epoch's losses, the
        weights or the optimizer state are not all finite.
        """
        epoch = self.epoch + 1 if epoch is None else epoch
        check_finite(self.model, self.optimizer, self.batch_losses, epoch)
        metrics, series = self._measure()
        if self.store is not None:
            self.store.log_epoch(self.run_id, epoch, metrics, series)
        self.history.append(metrics)
        self.epoch = epoch
        self.batch_losses = []
        if self.on_epoch is not None:
            self.on_epoch(epoch, metrics)
        return metrics

    def _scheduled(self) -> dict[str, Any]:
        """``ε`` from the constrained param group (where the method has one) and every scheduler's values."""
        group = _constrained_groups(self.optimizer)[0]
        values = {"eps": group["eps"]} if "eps" in group else {}
        for scheduler in self.schedulers:
            values.update(scheduler.get_last_values())
        return values

    def _diagnostic_batch(self) -> tuple[Tensor, Tensor]:
        n = min(self.data.n_train, DIAGNOSTIC_EXAMPLES)
        batches = list(self.data.eval_batches("train", DIAGNOSTIC_EXAMPLES, n))
        if len(batches) == 1:
            return batches[0]
        xs, ys = zip(*batches, strict=True)
        return torch.cat(xs), torch.cat(ys)

    def _measure(self) -> tuple[dict[str, float], dict[str, list[float]]]:
        """The epoch's scalar metrics and its series (see :mod:`qnnlab.store`)."""
        model, optimizer, data, names = self.model, self.optimizer, self.data, self.names
        grid = get_grid(self.bits)
        scheduled = self._scheduled()
        eps = scheduled.get("eps")
        w = continuous_weights(model, optimizer)
        q, scales = quantized_weights(model, optimizer, names, self.bits)
        judged = {**q, **self._q_stats(q)}
        out: dict[str, Tensor] = {}
        for prefix, weights in (("", w), ("q_", judged)):
            for split in data.eval_splits:
                limit = self.eval_train if split == "train" else None
                batches = data.eval_batches(split, self.eval_batch_size, limit)
                for key, value in evaluate(model, weights, batches, self.objective).items():
                    out[f"{prefix}{split}_{key}"] = value
        out["q_loss_gap"] = out["q_train_loss"] - out["train_loss"]
        flat = torch.cat([w[n].reshape(-1) for n in names])
        scale = torch.cat([scales[n].expand(w[n].numel()) for n in names])
        out.update(weight_diagnostics(flat, torch.cat([q[n].reshape(-1) for n in names]), grid, eps, scale))
        # gradients for the stationarity measures: full batch on small sets, a fixed subset otherwise
        x, y = self._diagnostic_batch()
        loss = self.objective.loss
        out["stationarity"] = model_stationarity(model, w, names, grid, eps, x, y, scales, loss)
        extra = optimizer_diagnostics(model, optimizer, x, y, loss)
        if clash := sorted(extra.keys() & out.keys()):
            raise ValueError(f"optimizer diagnostics {clash} clash with built-in metrics; rename them")
        out.update(extra)
        edges = histogram_edges(grid).to(flat.device)
        hist = weight_histogram(flat / scale, edges)  # in grid units: fixed bins whatever the scales
        batch_loss = torch.stack(self.batch_losses) if self.batch_losses else torch.empty(0)
        # .tolist() syncs with the device: once per epoch
        values = dict(zip(out, torch.stack(list(out.values())).tolist(), strict=True))
        values["lr"] = optimizer.param_groups[0]["lr"]
        values.update({k: float(v) for k, v in scheduled.items()})
        series = {"batch_loss": batch_loss.tolist(), "weight_hist": hist.tolist(), "weight_hist_edges": edges.tolist()}
        return values, series

    def _q_stats(self, q: dict[str, Tensor]) -> dict[str, Tensor]:
        """The batch-norm statistics ``Q(w)`` is judged with: re-estimated at ``Q(w)`` (``bn_recalibrate``), else none
        (the model's own, gathered at ``w``)."""
        if not self.bn_recalibrate:
            return {}
        train = self.data.eval_batches
        return recalibrated_stats(self.model, q, lambda: train("train", self.eval_batch_size, self.eval_train))

    # -- the end ----------------------------------------------------------------------------
    def _certified_optimum(self) -> float | None:
        """``min f`` over binary weights when it can be certified by enumeration (see the module docstring)."""
        data = self.data
        if not (
            self.bits == 1
            and isinstance(data, Dataset)
            and data.pixels is None
            and self._all_quantized()
            and sum(p.numel() for p in self.model.parameters()) <= MAX_ENUM_DIM
        ):
            return None
        try:
            return binary_optimum(self._optimum_model, data.x_train.cpu(), data.y_train.cpu(), self.objective.loss)
        except RuntimeError as err:
            first = str(err).strip().splitlines()[0]
            raise ValueError(
                f"cannot enumerate the binary optimum of {type(self._optimum_model).__name__} under torch.vmap "
                f"({first}); pass optimum_model= the same architecture without quantized layers"
            ) from None

    def _summary(self, q: dict[str, Tensor], scales: dict[str, Tensor], wall: float) -> dict[str, Any]:
        """The last epoch's metrics, the wall time, whether every ``Q(w)`` is on its grid, the gap to the optimum."""
        levels = get_grid(self.bits).levels()
        summary: dict[str, Any] = {**(self.history[-1] if self.history else {}), "wall_time": wall}
        # the examples trained on (fewer than the data set's own n_train beside a validation split)
        summary["n_train"] = self.data.n_train
        if "val" in self.data.eval_splits:
            summary["n_val"] = self.data.n_val
        summary["on_grid"] = all(bool(torch.isin(t, scales[n] * levels.to(t.device)).all()) for n, t in q.items())
        if self.optimum is not None:
            # the loss of Q(w) under the same definition as the enumerated optimum: the weights are on
            # the grid, so the optimum model's forward is the run model's
            x, y = self.data.x_train.cpu(), self.data.y_train.cpu()
            f_q = float(model_losses(self._optimum_model, x, y, self.objective.loss)(self._flat(q).cpu()[None])[0])
            summary.update(_gaps(f_q, self.optimum))
        elif (bound := self._convex_bound(q)) is not None:
            f_q = bound.value(self._flat(q))
            summary["box_bound"], summary["certified_lower"] = bound.box, bound.lower
            summary["cert_gap"] = certified_gap(f_q, bound.lower)
            if bound.optimum is not None:
                summary.update(_gaps(f_q, bound.optimum))
        return summary

    def _flat(self, q: dict[str, Tensor]) -> Tensor:
        return torch.cat([q[n].reshape(-1) for n, _ in self._optimum_model.named_parameters()])

    def _convex_bound(self, q: dict[str, Tensor]) -> ConvexBound | None:
        """The certified bounds of a convex linear problem beyond enumeration (:mod:`qnnlab.train.certified`)."""
        data = self.data
        if not (self.bits == 1 and isinstance(data, Dataset) and data.pixels is None and self._all_quantized()):
            return None
        x, y = data.x_train.cpu(), data.y_train.cpu()
        return convex_bound(self._optimum_model, x, y, self.objective.loss, self._flat(q), self.certify_time)

    def _all_quantized(self) -> bool:
        return len(self.names) == len(dict(self.model.named_parameters()))

    def finish(self) -> RunResult:
        """Close the run: its final checkpoint, then its summary (marked ``done``), and its :class:`RunResult`."""
        wall = time.perf_counter() - self._start
        final, quantized, scales = self._weights()
        summary = self._summary(quantized, scales, wall)
        if self.store is not None:
            self._save_checkpoint(final, quantized, scales, wall, final_epoch=True)
            self.store.finish_run(self.run_id, summary)
        self._close()
        self.result = RunResult(self.label, self.config, summary, self.history, self.run_id, final, quantized, scales)
        return self.result

    def fail(self, status: str = "failed", error: str | None = None) -> None:
        """Mark the run ``failed``, ``interrupted`` or ``diverged`` (every epoch recorded so far, and its last
        checkpoint, stay); ``error`` goes into its summary."""
        if self.store is not None:
            self.store.finish_run(self.run_id, {} if error is None else {"error": error}, status=status)
        self._close()

    def _close(self) -> None:
        if self._owns_store and self.store is not None:
            self.store.close()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        if kind is not None:
            self.fail()
        elif self.result is None:
            self.finish()

    def _weights(self) -> tuple[dict[str, Tensor], dict[str, Tensor], dict[str, Tensor]]:
        """``(w, Q(w) of the quantized parameters, their grid scales)`` now."""
        w = continuous_weights(self.model, self.optimizer)
        judged, scales = quantized_weights(self.model, self.optimizer, self.names, self.bits)
        return w, {n: judged[n] for n in self.names}, scales

    def checkpoint(self) -> Path | None:
        """Write the run's checkpoint at the last recorded epoch (atomically; none without a store); its path."""
        if self.store is None:
            return None
        return self._save_checkpoint(*self._weights(), time.perf_counter() - self._start)

    def _save_checkpoint(
        self,
        final: dict[str, Tensor],
        quantized: dict[str, Tensor],
        scales: dict[str, Tensor],
        wall: float,
        *,
        final_epoch: bool = False,
    ) -> Path:
        """Everything needed to resume or export (see :mod:`qnnlab.train.checkpoint`), with its digest.

        ``quantized`` and ``grid_scales`` are the judged ``Q(w)`` of the constrained tensors and their
        grid scales: what :func:`qnnlab.packed.export_run` packs.
        """
        path = checkpoint_path(self.store.dir, self.run_id)
        state = {
            "config": self.config,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "continuous": final,
            "quantized": quantized,
            "grid_scales": scales,
            "epoch": self.epoch,
            "final": final_epoch,
            "versions": versions(),
            "recorder": {"wall": wall},  # the history is in the store: O(1) per checkpoint, not O(epochs)
        }
        if self.training_state is not None:
            state["training"] = dict(self.training_state())
        save_checkpoint(path, state)
        return path
