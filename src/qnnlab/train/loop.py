"""The training loop: one run of one method on one data set with one seed.

:func:`fit` reads top to bottom: resolve the data and the model (named in the config, or
your own objects), build the optimizer and its schedulers, then per epoch take the
mini-batch steps (:func:`train_epoch`; the learning rate follows the per-iteration schedule)
and let the :class:`~qnnlab.train.recorder.Recorder` evaluate ``w`` and ``Q(w)`` and write
the epoch to the run store, then step the per-epoch hyperparameters (ASkewSGD's ``ε``,
ProxQuant's ``λ``: an :class:`~qnnlab.schedules.EpochScheduler`). Epoch 0 records the
initialization. The mini-batch losses stay on the device until the epoch is recorded (no
per-step host sync). Trackers named in ``cfg.track`` (optional extras, imported only then)
get every epoch's metrics too. Data and model live on ``cfg.device``; the seed fixes
initialization, data order, augmentation and sampling. Everything a run changes is held by
the model, the optimizer, the two schedulers and the data-order generator (and the global
torch RNG): the recorder checkpoints them every ``cfg.checkpoint_every`` epochs but no sooner than
``cfg.checkpoint_interval`` seconds after the last checkpoint (or the start), and
``fit(..., resume=True)`` continues an interrupted run from its last checkpoint
(:mod:`qnnlab.train.checkpoint`), bit for bit as if it had never stopped. SIGTERM and SIGHUP
stop a run as Ctrl-C does (:mod:`qnnlab.train.signals`): it is marked ``interrupted``; a
run whose loss, weights or optimizer state stop being finite is marked ``diverged`` and
raises :class:`~qnnlab.train.guard.Diverged` (:mod:`qnnlab.train.guard`). Under torchrun the
same function trains data-parallel (:mod:`qnnlab.train.distributed`): the model is wrapped in
DDP before the optimizer is built, each rank trains on its slice of each batch, rank 0 records.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from time import monotonic
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from qnnlab.config import ConfigError, RunConfig, check_sizes, load_config, validate_config
from qnnlab.data import Data, get_dataset, with_validation
from qnnlab.methods import METHODS, build_optimizer
from qnnlab.nn.models import build_model, constrained_names, param_groups
from qnnlab.schedules import EpochScheduler, lr_scheduler
from qnnlab.store import RunStore
from qnnlab.train.checkpoint import checkpoint_path, load_checkpoint, previous_run
from qnnlab.train.distributed import Replicas
from qnnlab.train.enumerate import MAX_ENUM_DIM
from qnnlab.train.evaluate import Metric
from qnnlab.train.guard import Diverged, overflow
from qnnlab.train.recorder import Recorder, RunResult, describe, versions
from qnnlab.train.signals import terminate_as_interrupt

__all__ = ["RunResult", "build_run_model", "fit", "train_epoch", "versions"]


@lru_cache(maxsize=4)
def load_dataset(data_cfg) -> Data:
    """:func:`qnnlab.data.get_dataset`, cached (on the CPU) across the runs of a comparison."""
    return get_dataset(data_cfg)


def build_run_model(cfg: RunConfig, input_shape: int | Sequence[int], n_outputs: int = 1) -> nn.Module:
    """The model a run trains: :func:`build_model`, then the method's ``prepare_model`` hook."""
    return _prepared(cfg, build_model(cfg.model, input_shape, n_outputs))


def _prepared(cfg: RunConfig, model: nn.Module) -> nn.Module:
    info = METHODS.get(cfg.method.name)
    return model if info.prepare_model is None else info.prepare_model(model, cfg.method)


def _as_config(config: RunConfig | Mapping[str, Any] | str | Path, data: Data | None) -> RunConfig:
    """A validated config; a dict without ``data`` given with a data object gets ``data = None``, so that
    its batch size is not checked against the default data set's."""
    if isinstance(config, RunConfig):
        return config
    if isinstance(config, str | Path):
        return load_config(config)
    return validate_config({"data": None} | dict(config) if data is not None else dict(config))


def _check_data(data: Data | None) -> None:
    """:class:`TypeError` unless ``data`` is ``None`` or quacks like a :class:`qnnlab.data.Data`."""
    if data is not None and not all(
        hasattr(data, a) for a in ("train_batches", "eval_batches", "steps_per_epoch", "task", "n_train")
    ):
        raise TypeError(
            f"data must be a qnnlab.data.Dataset (Dataset.from_tensors, .from_datasets, .from_loaders) or another "
            f"qnnlab.data.Data, got {type(data).__name__}"
        )


def _data(cfg: RunConfig, data: Data | None) -> Data:
    """The data trained on, on ``cfg.device``, with the config's validation split carved from its training split."""
    if data is None:
        if cfg.data is None:
            raise ValueError("the config names no data set (data = None): pass data= to fit")
        data = load_dataset(cfg.data)
    if cfg.data is not None:
        check_sizes(cfg, data.n_train)  # a file-backed set's size is known only now
    if cfg.validation is not None:
        data = with_validation(data, cfg.validation)
    return data.to(cfg.device)


def _model(cfg: RunConfig, data: Data, model: nn.Module | None) -> tuple[nn.Module, nn.Module | None]:
    """``(the model trained, the architecture the binary optimum is posed on)``: built from the config or
    the one given, then prepared for the method (which may swap layers in place)."""
    if model is None:
        if data.n_outputs is None:
            raise ValueError(f"model {cfg.model.name!r} needs the data's n_outputs: pass n_outputs= with the data")
        model = build_model(cfg.model, data.input_shape, data.n_outputs)
        _probe(cfg, model, data.input_shape)
    if not constrained_names(model, cfg.model.keep_fp):
        raise ConfigError(
            f"model.keep_fp = {list(cfg.model.keep_fp)}: leaves no quantized parameter in model {cfg.model.name!r}"
        )
    small = sum(p.numel() for p in model.parameters()) <= MAX_ENUM_DIM
    plain = copy.deepcopy(model) if small else None
    return _prepared(cfg, model).to(cfg.device), plain


def _probe(cfg: RunConfig, model: nn.Module, input_shape: Sequence[int]) -> None:
    """:class:`ConfigError` unless ``model`` takes one input of ``input_shape`` (a ResNet on vector data does not)."""
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape))
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise ConfigError(
            f"model {cfg.model.name!r} cannot take the inputs of data set {cfg.data.name!r} (shape "
            f"{tuple(input_shape)}): {first}"
        ) from None
    finally:
        model.train(was)


def _recorded_config(cfg: RunConfig, model: nn.Module | None, data: Data | None) -> dict[str, Any]:
    """The config as stored: a model or data set passed as an object is described, not named."""
    out = cfg.model_dump()
    if model is not None:
        out["model"] = {**describe(model), "keep_fp": list(cfg.model.keep_fp)}
    if data is not None:
        out["data"] = {**describe(data), "n_train": data.n_train}
    return out


def train_epoch(
    model: nn.Module,
    optimizer: Optimizer,
    scheduler: LRScheduler,
    batches: Iterable[tuple[Tensor, Tensor]],
    loss_fn: Metric,
    on_batch: Callable[[Tensor], None],
) -> None:
    """One pass over ``batches``: a step of ``optimizer`` and of ``scheduler`` per batch; each loss to ``on_batch``."""
    model.train()
    zero_grad = _zero_grad(optimizer)
    for x, y in batches:
        zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        on_batch(loss)
        optimizer.step()
        scheduler.step()


def _zero_grad(optimizer: Optimizer) -> Callable[[], None]:
    """``optimizer.zero_grad(set_to_none=True)``; for torch's own ``zero_grad``, its assignments ``p.grad = None``
    without the profiler range around them, which costs more than the assignments."""
    if type(optimizer).zero_grad is not Optimizer.zero_grad:
        return lambda: optimizer.zero_grad(set_to_none=True)
    params = [p for group in optimizer.param_groups for p in group["params"]]

    def clear() -> None:
        for p in params:
            p.grad = None

    return clear


def fit(
    config: RunConfig | Mapping[str, Any] | str | Path,
    *,
    model: nn.Module | None = None,
    data: Data | None = None,
    loss: Metric | None = None,
    metrics: Mapping[str, Metric] | None = None,
    results: str | Path | RunStore | None = None,
    store: RunStore | None = None,
    comparison: str = "",
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    resume: bool = False,
) -> RunResult:
    """Train one run and return its summary, every epoch recorded in the results folder when one is given.

    Args:
        config: a :class:`RunConfig`, a dict of one, or a TOML file; its method, epochs, batch size,
            seed, bits and schedule always apply.
        model: any ``nn.Module`` instead of the config's model (its quantized parameters follow
            ``config.model.keep_fp``: by default every weight of two or more dimensions).
        data: a :class:`qnnlab.data.Dataset` (``Dataset.from_tensors``, ``.from_datasets``,
            ``.from_loaders``) instead of the config's data set.
        loss: ``(output, target) -> mean loss``; default from the data's task (logistic, cross-entropy, MSE).
        metrics: ``{name: (output, target) -> batch mean}`` recorded beside the task's own.
        results: the results folder (or an open :class:`RunStore`); ``store`` is the same.
        comparison: the name the run is recorded under (``qnnlab report -c``).
        on_epoch: called with ``(epoch, metrics)`` after each recorded epoch.
        resume: look for this run (the same comparison and recorded config) in the store first: a
            finished one is returned as stored (not trained again), an interrupted or failed one
            continues from its last checkpoint (its epochs after it are trained again), a diverged
            one raises :class:`~qnnlab.train.guard.Diverged` again.

    Raises :class:`~qnnlab.train.guard.Diverged` when the run diverges (marked so in the store, its
    last good checkpoint kept). The certified binary optimum is enumerated for whatever model and data are trained when
    every parameter is binary and there are few of them (:class:`~qnnlab.train.recorder.Recorder`).
    """
    cfg = _as_config(config, data)
    replicas = Replicas.from_env()
    cfg = cfg.with_(device=replicas.device(cfg.device)) if replicas.distributed else cfg
    if resume and replicas.distributed:
        raise ValueError("resume=True under torchrun is not supported: resume the run in one process")
    target = (results if results is not None else store) if replicas.writes else None
    if resume and target is None:
        raise ValueError("resume=True needs the results folder the run was recorded in: pass results=DIR")
    opened = RunStore(target) if isinstance(target, str | Path) else None
    try:
        with terminate_as_interrupt():
            return _fit(cfg, model, data, loss, metrics, opened or target, comparison, on_epoch, resume, replicas)
    finally:
        if opened is not None:
            opened.close()


def _fit(
    cfg: RunConfig,
    model: nn.Module | None,
    data: Data | None,
    loss: Metric | None,
    metrics: Mapping[str, Metric] | None,
    store: RunStore | None,
    comparison: str,
    on_epoch: Callable[[int, dict[str, float]], None] | None,
    resume: bool,
    replicas: Replicas,
) -> RunResult:
    _check_data(data)
    own_data, own_model = data, model
    recorded = _recorded_config(cfg, own_model, own_data)
    previous = previous_run(store, comparison, recorded) if resume else None
    if previous is not None and previous["status"] in ("done", "diverged"):
        return _stored_result(store, previous, cfg)  # without loading its data
    data = _data(cfg, data)
    torch.manual_seed(cfg.seed)
    order = torch.Generator().manual_seed(cfg.seed)
    model, plain = _model(cfg, data, model)
    trained = replicas.wrap(model)  # before the optimizer copies any latent state from the parameters
    optimizer = build_optimizer(cfg.method, param_groups(model, cfg.model.keep_fp))
    lr = lr_scheduler(optimizer, cfg.lr_schedule(steps_per_epoch=data.steps_per_epoch(cfg.batch_size)))
    hyper = EpochScheduler(optimizer, **cfg.method.epoch_schedules())
    tracker = None
    run_id, ckpt = None, None
    if previous is not None:
        run_id = previous["id"]
        path = checkpoint_path(store.dir, run_id)
        if path.is_file():
            ckpt = load_checkpoint(path)
            _restore(ckpt, model, optimizer, lr, hyper, order)
        else:  # stopped before its first checkpoint: trained again from the start
            store.resume_run(run_id, after=-1)

    def training_state() -> dict[str, Any]:
        rng = {"torch": torch.get_rng_state(), "order": order.get_state()}
        if torch.cuda.is_initialized():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {"lr_scheduler": lr.state_dict(), "epoch_scheduler": hyper.state_dict(), "rng": rng}

    def after_epoch(epoch: int, values: dict[str, float]) -> None:
        if tracker is not None:
            tracker.log(epoch, values)
        if on_epoch is not None:
            on_epoch(epoch, values)

    recorder = Recorder(
        store,
        comparison,
        model=model,
        optimizer=optimizer,
        data=data,
        config=recorded,
        bits=cfg.bits,
        loss=loss,
        metrics=metrics,
        schedulers=[hyper],
        eval_batch_size=cfg.eval_batch_size,
        eval_train=cfg.eval_train,
        on_epoch=after_epoch,
        optimum_model=plain,
        run_id=run_id,
        checkpoint=ckpt,
        training_state=training_state,
        bn_recalibrate=cfg.bn_recalibrate,
        certify_time=cfg.certify_time,
    )
    every, interval = cfg.checkpoint_every, cfg.checkpoint_interval
    last_checkpoint = monotonic()
    try:
        tracker = _open_tracker(cfg, recorder.store, comparison, recorder.run_id) if replicas.writes else None
        if ckpt is None:
            recorder.log_epoch(0)
        for epoch in range(recorder.epoch + 1, cfg.epochs + 1):
            try:
                train_epoch(
                    trained,
                    optimizer,
                    lr,
                    replicas.shard(data.train_batches(cfg.batch_size, order)),
                    replicas.loss(recorder.objective.loss),
                    recorder.log_batch,
                )
            except RuntimeError as err:
                diverged = overflow(err, model, optimizer, epoch, len(recorder.batch_losses))
                if diverged is None:
                    raise
                raise diverged from None
            recorder.log_epoch(epoch)
            hyper.step()
            due = every and epoch % every == 0 and epoch < cfg.epochs
            if due and monotonic() - last_checkpoint >= interval:
                recorder.checkpoint()
                last_checkpoint = monotonic()
    except BaseException as err:
        status = {Diverged: "diverged", KeyboardInterrupt: "interrupted"}
        recorder.fail(next((v for k, v in status.items() if isinstance(err, k)), "failed"), str(err) or None)
        if tracker is not None:
            tracker.close({}, failed=True)
        if isinstance(err, Diverged):
            raise Diverged(_diverged_message(recorder.run_id, cfg, err, store), recorder.run_id) from None
        raise
    result = replace(recorder.finish(), config=cfg)
    if tracker is not None:
        tracker.close(result.summary)
    return result


def _restore(ckpt: Mapping[str, Any], model: nn.Module, optimizer: Optimizer, lr: LRScheduler, hyper, order) -> None:
    """Put the state of a checkpoint back into what :func:`fit` built afresh."""
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    training = ckpt["training"]
    lr.load_state_dict(training["lr_scheduler"])
    hyper.load_state_dict(training["epoch_scheduler"])
    rng = training["rng"]
    torch.set_rng_state(rng["torch"])
    order.set_state(rng["order"])
    if "cuda" in rng:
        torch.cuda.set_rng_state_all(rng["cuda"])


def _diverged_message(run_id: int | None, cfg: RunConfig, err: Diverged, store: RunStore | None) -> str:
    """``run 3 (sgd, seed 0) diverged at epoch 2, step 5 of 8: ...; kept the checkpoint of epoch 1``."""
    name = f"run {run_id} ({cfg.label}, seed {cfg.seed})" if run_id is not None else f"{cfg.label} (seed {cfg.seed})"
    kept = ""
    if store is not None and run_id is not None:
        path = checkpoint_path(store.dir, run_id)
        kept = (
            f"; kept the checkpoint of epoch {load_checkpoint(path)['epoch']}"
            if path.is_file()
            else "; no checkpoint was written before it"
        )
    return f"{name} {err}{kept}"


def _stored_result(store: RunStore, row: Mapping[str, Any], cfg: RunConfig) -> RunResult:
    """A finished run as the store holds it (resume skips it); a diverged one raises :class:`Diverged` again."""
    if row["status"] == "diverged":
        error = (row["summary"] or {}).get("error", "diverged")
        raise Diverged(f"run {row['id']} ({cfg.label}, seed {cfg.seed}) {error}", row["id"])
    history = store.history(row["id"])
    result = RunResult(row["label"], cfg, row["summary"], [history[e] for e in sorted(history)], row["id"])
    path = checkpoint_path(store.dir, row["id"])
    if path.is_file():
        ckpt = load_checkpoint(path)
        result.weights, result.quantized, result.grid_scales = (
            ckpt["continuous"],
            ckpt["quantized"],
            ckpt["grid_scales"],
        )
    return result


def _open_tracker(cfg: RunConfig, store: RunStore | None, comparison: str, run_id: int | None):
    """The trackers of ``cfg.track`` (imported only when asked for), writing under the store's folder."""
    if not cfg.track:
        return None
    if store is None:
        raise ValueError(f"track = {list(cfg.track)} needs a results folder: pass results=DIR to fit")
    from qnnlab.tracking import open_trackers

    return open_trackers(cfg.track, store.dir, cfg, comparison=comparison, run_id=run_id)
