"""A Lightning callback: anneal ε/λ per epoch, validate at ``Q(w)``, record every epoch in the run store.

Optional extra: ``pip install 'qnnlab[lightning]'``. The ``LightningModule`` trains with a qnnlab
optimizer (``configure_optimizers`` returns, e.g., ``ASkewSGD(param_groups(self), ...)``)::

    from qnnlab.integrations.lightning import QuantCallback

    callback = QuantCallback("results", "lit", data=data, schedules={"eps": annealed_eps(1.0, 2, 0.5, 1e-4)})
    lightning.Trainer(max_epochs=10, callbacks=[callback]).fit(module, train_loader, val_loader)

Before each training epoch ``e`` (0-based, Lightning's ``current_epoch``) every scheduled
hyperparameter is set to ``schedule(e)`` in the optimizer's constrained param groups (an
:class:`~qnnlab.schedules.EpochScheduler` driven by the trainer's epoch, so a run resumed from a
checkpoint goes on where it stopped). During validation the quantized parameters hold ``Q(w)``
(:func:`qnnlab.train.evaluate.quantized`), so whatever ``validation_step`` logs is measured at
the weights the run is judged on; ``w`` is restored afterwards. With ``results`` a
:class:`~qnnlab.train.recorder.Recorder` records the initialization and every training epoch
(its mini-batch losses too: ``training_step`` returns the loss or a dict with ``"loss"``),
evaluating the module's ``forward`` on ``data``; its run id rides in the callback's state, so a
resumed fit appends to the same run. ``qnnlab report results`` then draws it.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from torch import Tensor

from qnnlab.data import Data
from qnnlab.schedules import EpochScheduler, Schedule
from qnnlab.train.evaluate import Metric, quantized
from qnnlab.train.recorder import Recorder, judged_bits, quantized_names

__all__ = ["QuantCallback"]


class QuantCallback(pl.Callback):
    """See the module docstring.

    Args:
        results: the results folder to record in; ``None``: record nothing.
        name: the comparison the run is recorded under.
        data: the data the recorder evaluates ``w`` and ``Q(w)`` on (needed with ``results``).
        schedules: ``{param-group key: schedule of the epoch}``, e.g. ``{"eps": annealed_eps(...)}``.
        bits: the grid ``Q(w)`` is judged on (default: the optimizer's, else binary).
        loss, metrics, config: passed to the :class:`~qnnlab.train.recorder.Recorder`.
        validate_quantized: swap ``Q(w)`` in during validation.
    """

    def __init__(
        self,
        results: str | Path | None = None,
        name: str = "lightning",
        *,
        data: Data | None = None,
        schedules: Mapping[str, Schedule] | None = None,
        bits: int | None = None,
        loss: Metric | None = None,
        metrics: Mapping[str, Metric] | None = None,
        config: Any = None,
        validate_quantized: bool = True,
    ) -> None:
        if results is not None and data is None:
            raise ValueError("QuantCallback(results=...) needs data= to evaluate w and Q(w) on")
        self.results, self.name, self.data, self.bits = results, name, data, bits
        self.schedules = dict(schedules or {})
        self.loss, self.metrics, self.config = loss, metrics, config
        self.validate_quantized = validate_quantized
        self.scheduler: EpochScheduler | None = None
        self.recorder: Recorder | None = None
        self._run_id: int | None = None  # of a run to resume, from a checkpoint
        self._swap = ExitStack()

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        optimizer = trainer.optimizers[0]
        self.scheduler = EpochScheduler(optimizer, **self.schedules)
        if self.results is None:
            return
        self.recorder = Recorder(
            self.results,
            self.name,
            model=pl_module,
            optimizer=optimizer,
            data=self.data.to(pl_module.device),
            config=self.config,
            bits=self.bits,
            loss=self.loss,
            metrics=self.metrics,
            schedulers=[self.scheduler],
            run_id=self._run_id,
        )
        if self.recorder.epoch < 0:
            self.recorder.log_epoch(0)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.scheduler.step(trainer.current_epoch)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if self.recorder is not None and isinstance(loss, Tensor):
            self.recorder.log_batch(loss)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.recorder is not None:
            self.recorder.log_epoch(trainer.current_epoch + 1)

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.validate_quantized and trainer.optimizers:
            optimizer = trainer.optimizers[0]
            names = quantized_names(pl_module, optimizer)
            self._swap.enter_context(quantized(pl_module, optimizer, names, judged_bits(optimizer, self.bits)))

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._swap.close()

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.recorder is not None:
            self.recorder.finish()

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self._swap.close()
        if self.recorder is not None:
            self.recorder.fail()

    def state_dict(self) -> dict[str, Any]:
        return {"run_id": self.recorder.run_id if self.recorder is not None else self._run_id}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._run_id = state_dict.get("run_id")
