"""Hyperparameter sweeps selected on validation data: ``qnnlab sweep SPEC.toml``.

A sweep takes the rows of a preset (or run configs), searches each row's space of config
fields, scores every trial on a **validation** metric, picks the best trial per row, and
reruns that configuration over the final seeds, whose table reports the **test** metrics::

    name = "logistic-lr-eps"            # default: the spec file's stem
    preset = "logistic"                 # or configs = ["run.toml", ...] beside the spec
    set = { epochs = 20 }               # fields changed in every run (as qnnlab run --set)
    search = "grid"                     # grid | random | tpe (optuna's TPE: pip install 'qnnlab[tpe]')
    metric = "q_val_loss"               # a val_* or q_val_* metric; q_val_acc is maximized
    at = "last"                         # its value at the last epoch, or "best": its best epoch's
    trial_seeds = [0]                   # a trial's score: the mean over these training seeds
    seeds = 5                           # the best configuration's reruns: seeds seed_start ..

    [space.askewsgd]                    # a row label, or a method name (every row of the method)
    "method.lr" = [0.3, 1.0, 3.0]       # a list: grid values (random and TPE draw from it)
    "method.eps.hold" = [5, 10]
    [space.primal_dual]                 # random and TPE also draw from distributions:
    "method.lr" = [0.3, 1.0]            # { kind = "log_uniform", low = 0.1, high = 10 }, uniform, int, choice

Grid search trains every combination; random search and TPE ``trials`` draws per row, from
``seed``. Runs without a validation split get ``validation`` (default: a stratified 20 %
of the training data, seed 0); the final reruns keep it, so they train on the same examples
as the trials. Trials are recorded under the comparison ``NAME-trials`` with labels
``ROW #i``, the final runs under ``NAME``; ``NAME.sweep.json`` in the results folder holds
every trial's fields and score and the selection (read by ``qnnlab report``). A run is
found in the store by its identity (its comparison and its config but for the label), so a
sweep run again, after an interruption or with more trials, trains only what is missing.

Runs go one after another (``workers = 1``), in ``workers`` processes writing the one
store concurrently (SQLite WAL, one transaction per epoch), or on Ray Tune
(:class:`Runner` ``backend="ray"``: a local instance, or the cluster at ``address``); each
run takes ``cpus`` threads wherever it runs, so every backend computes the same numbers and
selects the same configuration. Grid and random trials depend on neither the backend nor
``workers``; TPE asks ``workers`` trials per row at a time, so its choices depend on it.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import statistics
import tempfile
import uuid
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, BeforeValidator, Field, ValidationError, model_validator

from qnnlab.config import ConfigError, RunConfig, format_validation_error, load_config, override, read_toml
from qnnlab.data import ValidationSplit
from qnnlab.io import write_atomic
from qnnlab.registry import Schema
from qnnlab.store import RunStore
from qnnlab.train.checkpoint import import_run

__all__ = [
    "Job",
    "MethodSweep",
    "Runner",
    "SweepError",
    "SweepRecord",
    "SweepSpec",
    "TrialRecord",
    "load_record",
    "load_spec",
    "plan",
    "record_path",
    "sweep",
]


class SweepError(RuntimeError):
    """A sweep that cannot go on (a trial that failed, a metric never recorded); one line."""


# -- the spec ---------------------------------------------------------------------------------
class Uniform(Schema):
    """``U(low, high)``."""

    kind: Literal["uniform"] = "uniform"
    low: float
    high: float


class LogUniform(Schema):
    """``exp U(log low, log high)``: every decade equally likely."""

    kind: Literal["log_uniform"] = "log_uniform"
    low: float = Field(gt=0)
    high: float = Field(gt=0)


class IntRange(Schema):
    """An integer of ``low .. high`` (both included), each equally likely."""

    kind: Literal["int"] = "int"
    low: int
    high: int


class Choice(Schema):
    """One of ``values``; a bare list in the spec is a choice (the values of a grid)."""

    kind: Literal["choice"] = "choice"
    values: list[Any] = Field(min_length=1)


def _list_is_choice(value: Any) -> Any:
    return {"kind": "choice", "values": value} if isinstance(value, list) else value


Dimension = Annotated[
    Uniform | LogUniform | IntRange | Choice, Field(discriminator="kind"), BeforeValidator(_list_is_choice)
]


class SweepSpec(Schema):
    """A sweep (see the module docstring); every field is checked before anything trains."""

    name: str = Field("", description="the comparison of the final runs; default: the spec file's stem")
    preset: str | None = Field(None, description="the rows: a preset's (or configs)")
    configs: list[str] = Field(default_factory=list, description="the rows: run configs, beside the spec")
    set_: dict[str, Any] = Field(default_factory=dict, alias="set", description="fields changed in every run")
    validation: ValidationSplit | None = Field(None, description="for rows without one; default: 20 %, seed 0")
    space: dict[str, dict[str, Dimension]] = Field(min_length=1, description="per row: {field path: values}")
    search: Literal["grid", "random", "tpe"] = "grid"
    trials: int | None = Field(None, ge=1, description="per row, for random search and TPE")
    seed: int = Field(0, ge=0, description="seed of the random and TPE draws")
    trial_seeds: list[Annotated[int, Field(ge=0)]] = Field([0], min_length=1)
    metric: str = Field("q_val_loss", description="the validation metric trials are scored on")
    mode: Literal["min", "max"] | None = Field(None, description="default: min for *_loss, max for *_acc")
    at: Literal["last", "best"] = Field("last", description="the metric at the last epoch, or at its best epoch")
    seeds: int = Field(5, ge=1, le=1000, description="training seeds of the best configuration's reruns")
    seed_start: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> SweepSpec:
        if (self.preset is None) == (not self.configs):
            raise ValueError("give the rows as preset = NAME or as configs = [FILES], one of the two")
        if not self.metric.startswith(("val_", "q_val_")):
            raise ValueError(
                f"metric {self.metric!r} is not a validation metric (val_* or q_val_*): trials are selected on "
                "validation data, never on test"
            )
        if self.mode is None:
            mode = "min" if self.metric.endswith("_loss") else "max" if self.metric.endswith("_acc") else None
            if mode is None:
                raise ValueError(f"mode: say whether {self.metric!r} is better low (min) or high (max)")
            object.__setattr__(self, "mode", mode)
        if self.search == "grid":
            if self.trials is not None:
                raise ValueError("trials: a grid search trains every combination of its lists; leave trials out")
            for row, space in self.space.items():
                for path, dim in space.items():
                    if not isinstance(dim, Choice):
                        raise ValueError(
                            f"space.{row}.{path}: a {dim.kind} distribution in a grid search; give a list of values "
                            "or use search = 'random' or 'tpe'"
                        )
        elif self.trials is None:
            raise ValueError(f"trials: required for search = {self.search!r} (draws per row)")
        for row, space in self.space.items():
            for path, dim in space.items():
                if isinstance(dim, Uniform | LogUniform | IntRange) and dim.low > dim.high:
                    raise ValueError(f"space.{row}.{path}: low ({dim.low}) must be <= high ({dim.high})")
        return self

    @property
    def trials_comparison(self) -> str:
        return f"{self.name}-trials"


def load_spec(path: str | Path) -> SweepSpec:
    """Read and validate a sweep spec (TOML); :class:`ConfigError` with one line naming the field."""
    path = Path(path)
    data = read_toml(path, "sweep spec")
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"{path}: {format_validation_error(err)}") from None
    if not spec.name:
        spec = spec.model_copy(update={"name": path.stem})
    configs = [str(path.parent / c) for c in spec.configs]
    return spec.model_copy(update={"configs": configs})


# -- the rows and their trials ------------------------------------------------------------------
DEFAULT_VALIDATION = ValidationSplit(size=0.2)


def _rows(spec: SweepSpec) -> dict[str, tuple[RunConfig, dict[str, Any]]]:
    """``{row label: (its config, the changes every run of it gets)}`` for the rows the space names: ``set``,
    and the validation split. They are validated with each trial's fields (which may be what makes them valid)."""
    from qnnlab.experiments.presets import preset_runs, select_runs

    base = preset_runs(spec.preset, 1) if spec.preset is not None else [load_config(c) for c in spec.configs]
    rows: dict[str, tuple[RunConfig, dict[str, Any]]] = {}
    for key in spec.space:
        try:
            picked = select_runs(base, [key])
        except KeyError as err:
            raise ConfigError(f"space.{key}: {str(err).strip(chr(34) + chr(39))}") from None
        for cfg in picked:
            if cfg.label in rows:
                raise ConfigError(f"space.{key}: row {cfg.label!r} is already swept by another space table")
            changes = dict(spec.set_)
            if spec.validation is not None or cfg.validation is None:
                changes["validation"] = (spec.validation or DEFAULT_VALIDATION).model_dump()
            rows[cfg.label] = cfg, changes
    return rows


def _space(spec: SweepSpec, label: str, method: str) -> dict[str, Any]:
    return spec.space[label] if label in spec.space else spec.space[method]


def _grid(space: dict[str, Choice]) -> list[dict[str, Any]]:
    return [dict(zip(space, values, strict=True)) for values in product(*(d.values for d in space.values()))]


def _draw(dim: Any, rng: np.random.Generator) -> Any:
    if isinstance(dim, Uniform):
        return float(rng.uniform(dim.low, dim.high))
    if isinstance(dim, LogUniform):
        return float(math.exp(rng.uniform(math.log(dim.low), math.log(dim.high))))
    if isinstance(dim, IntRange):
        return int(rng.integers(dim.low, dim.high + 1))
    return dim.values[int(rng.integers(len(dim.values)))]


def _random(space: dict[str, Any], trials: int, seed: int, label: str) -> list[dict[str, Any]]:
    # a stream per row, whatever the other rows are
    rng = np.random.default_rng([seed, zlib.crc32(label.encode())])
    return [{path: _draw(dim, rng) for path, dim in space.items()} for _ in range(trials)]


def _suggest(trial: Any, path: str, dim: Any) -> Any:
    """The value of ``path`` an optuna trial asks for (a choice is asked by index: any value will do)."""
    if isinstance(dim, Uniform | LogUniform):
        return trial.suggest_float(path, dim.low, dim.high, log=isinstance(dim, LogUniform))
    if isinstance(dim, IntRange):
        return trial.suggest_int(path, dim.low, dim.high)
    return dim.values[trial.suggest_categorical(path, list(range(len(dim.values))))]


# -- running jobs ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Job:
    """One run to have in the store: ``config`` recorded under ``comparison``."""

    comparison: str
    config: RunConfig

    @property
    def key(self) -> tuple[str, str]:
        return self.comparison, _identity(json.loads(json.dumps(self.config.model_dump())))


def _identity(config: dict[str, Any]) -> str:
    """What a run trains: its config without the label, as canonical JSON."""
    return json.dumps({k: v for k, v in config.items() if k != "label"}, sort_keys=True)


def _finished(store: RunStore, comparisons: set[str]) -> dict[tuple[str, str], dict[str, Any]]:
    """``{job key: store row}`` of the finished runs of ``comparisons`` (the latest of equal ones)."""
    return {
        (r["comparison"], _identity(r["config"])): r
        for c in sorted(comparisons)
        for r in store.runs(c)
        if r["status"] in ("done", "diverged")
    }


def _train(comparison: str, config: dict[str, Any], results: str, threads: int) -> int:
    """Train one run into the store in ``results`` with ``threads`` torch threads; returns its run id (a diverged
    run's too: it scores as the worst)."""
    import torch

    from qnnlab.config import validate_config
    from qnnlab.train.guard import Diverged
    from qnnlab.train.loop import fit

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return fit(validate_config(config), results=results, comparison=comparison).run_id
    except Diverged as err:
        return err.run_id
    finally:
        torch.set_num_threads(before)


class Runner:
    """Trains jobs into ``results``' store, skipping those finished there; a context manager holding its workers.

    ``backend="local"``: in this process (``workers = 1``) or in a pool of ``workers`` processes
    writing the store concurrently; ``"ray"``: as Ray Tune trials, ``workers`` at a time, on the
    cluster at ``address`` (``ray.init(address)``) or on a local instance. Each run takes ``cpus``
    torch threads (Ray: reserves ``cpus`` CPUs), so every backend computes the same numbers.
    ``on_done(job)`` is called as each job finishes. A Ray trial trains into a store of its own,
    handed back as its checkpoint and imported into ``results`` (the nodes need not share a
    filesystem with it; Ray's ``storage`` must be one every node reaches on a multi-node cluster).
    """

    def __init__(
        self,
        results: str | Path,
        *,
        backend: Literal["local", "ray"] = "local",
        workers: int = 1,
        cpus: int = 1,
        address: str | None = None,
        storage: str | None = None,
        on_done: Callable[[Job], None] | None = None,
    ) -> None:
        self.results, self.backend, self.workers, self.cpus = Path(results), backend, workers, cpus
        self.address, self.on_done = address, on_done
        self.storage = storage or str((self.results / "ray").resolve())
        self._pool: Any = None
        self._ray_started = False

    def __enter__(self) -> Runner:
        if self.backend == "ray":
            try:
                import ray
            except ModuleNotFoundError:
                raise SweepError("--backend ray needs Ray Tune: pip install 'qnnlab[ray]'") from None
            if not ray.is_initialized():
                os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # no progress tables on the terminal
                where = {"address": self.address} if self.address else {"num_cpus": self.workers * self.cpus}
                ray.init(**where, include_dashboard=False, log_to_driver=False, logging_level="error")
                self._ray_started = True
        elif self.workers > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # spawn: a fresh interpreter per worker (forking a process that runs torch's thread pools can hang)
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        if self._ray_started:
            import ray

            ray.shutdown()

    def run(self, jobs: Sequence[Job]) -> dict[tuple[str, str], dict[str, Any]]:
        """Have every job finished in the store; returns their store rows by :attr:`Job.key`."""
        with RunStore(self.results) as store:
            done = _finished(store, {j.comparison for j in jobs})
        todo = list({j.key: j for j in jobs if j.key not in done}.values())
        if todo:
            if self.backend == "ray":
                self._ray(todo)
            elif self._pool is not None:
                self._local(todo)
            else:
                for job in todo:
                    _train(job.comparison, job.config.model_dump(), str(self.results), self.cpus)
                    self._done(job)
            with RunStore(self.results) as store:
                done = _finished(store, {j.comparison for j in jobs})
        if missing := [j for j in jobs if j.key not in done]:
            raise SweepError(f"run {missing[0].config.label!r} of {missing[0].comparison!r} did not finish")
        return {j.key: done[j.key] for j in jobs}

    def _done(self, job: Job) -> None:
        if self.on_done is not None:
            self.on_done(job)

    def _local(self, todo: list[Job]) -> None:
        from concurrent.futures import FIRST_EXCEPTION, wait

        args = (str(self.results), self.cpus)
        futures = {self._pool.submit(_train, j.comparison, j.config.model_dump(), *args): j for j in todo}
        pending = set(futures)
        try:
            while pending:
                finished, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for f in finished:
                    f.result()  # a worker's exception, raised here
                    self._done(futures[f])
        finally:
            for f in pending:
                f.cancel()

    def _ray(self, todo: list[Job]) -> None:
        """The jobs as one Ray Tune experiment; each finished trial's store is imported into ``results``."""
        from ray import tune

        name = f"qnnlab-{uuid.uuid4().hex[:12]}"
        payload = [
            {"index": k, "comparison": j.comparison, "config": j.config.model_dump(mode="json"), "cpus": self.cpus}
            for k, j in enumerate(todo)
        ]
        tuner = tune.Tuner(
            tune.with_resources(_ray_trial, {"cpu": self.cpus}),
            param_space={"job": tune.grid_search(payload)},
            # one worker process per concurrent trial, reused: torch is imported once per worker
            tune_config=tune.TuneConfig(max_concurrent_trials=self.workers, reuse_actors=True),
            run_config=tune.RunConfig(name=name, storage_path=self.storage, verbose=0),
        )
        grid = tuner.fit()
        try:
            with RunStore(self.results) as store:
                for result in grid:
                    if result.error is not None:
                        last = str(result.error).strip().splitlines()[-1]
                        raise SweepError(f"a Ray trial failed: {last}")
                    with result.checkpoint.as_directory() as folder:
                        _import(store, Path(folder))
                    self._done(todo[result.config["job"]["index"]])
        finally:
            shutil.rmtree(Path(self.storage) / name, ignore_errors=True)


def _import(store: RunStore, folder: Path) -> None:
    """The one run of the store in ``folder`` into ``store``, with its checkpoint."""
    with RunStore(folder, read_only=True) as trial:
        (run,) = trial.runs()
        import_run(store, trial, run["id"])


def _ray_trial(param: dict[str, Any]) -> None:
    """A Ray Tune trial: train into a store of its own, handed back to the driver as the trial's checkpoint."""
    from ray import tune

    job = param["job"]
    with tempfile.TemporaryDirectory() as folder:
        _train(job["comparison"], job["config"], folder, job["cpus"])
        tune.report({"done": 1}, checkpoint=tune.Checkpoint.from_directory(folder))


# -- scoring and the record -----------------------------------------------------------------------
class TrialRecord(BaseModel):
    """One trial: its number, the fields it set, its score (mean over the trial seeds) and its runs."""

    trial: int
    params: dict[str, Any]
    score: float | None  # None: not finite (a diverged run)
    runs: list[int]


class MethodSweep(BaseModel):
    """One row's search: the fields searched (with their kinds), every trial, and the best one's number."""

    label: str
    kinds: dict[str, str]
    trials: list[TrialRecord]
    best: int

    @property
    def best_trial(self) -> TrialRecord:
        return next(t for t in self.trials if t.trial == self.best)


class SweepRecord(BaseModel):
    """What a sweep searched and selected: written to ``RESULTS/NAME.sweep.json`` and read by the report."""

    name: str
    search: str
    metric: str
    mode: Literal["min", "max"]
    at: Literal["last", "best"]
    trial_seeds: list[int]
    seeds: list[int]
    trials_comparison: str
    methods: list[MethodSweep]

    def describe(self) -> str:
        at = "at the last epoch" if self.at == "last" else "at its best epoch"
        return f"{self.metric} ({self.mode}imized, {at}) on the validation split"


def record_path(results: str | Path, name: str) -> Path:
    return Path(results) / f"{name}.sweep.json"


def load_record(results: str | Path, name: str) -> SweepRecord | None:
    """The record of sweep ``name`` in ``results`` (``None`` when there is none); a malformed file raises ValueError."""
    path = record_path(results, name)
    if not path.is_file():
        return None
    try:
        return SweepRecord.model_validate_json(path.read_bytes())
    except ValidationError as err:
        raise ValueError(f"{path}: not a sweep record ({format_validation_error(err)})") from None


def _score(run: dict[str, Any], history: dict[int, dict[str, float]], metric: str, mode: str, at: str) -> float:
    """The run's metric at its last epoch, or its best over epochs 1..; a NaN or a diverged run counts as the worst."""
    worst = math.inf if mode == "min" else -math.inf
    if run.get("status") == "diverged":
        return worst
    values = [history[e].get(metric) for e in sorted(history) if e >= 1]
    if not values or values[-1] is None:
        recorded = ", ".join(sorted(k for k in history[max(history)] if "val" in k)) or "none"
        raise SweepError(
            f"metric {metric!r} was not recorded by run {run['id']} ({run['label']!r}); validation metrics: {recorded}"
        )
    finite = [worst if v is None or math.isnan(v) else v for v in values]
    return finite[-1] if at == "last" else (min if mode == "min" else max)(finite)


def _pick(trials: list[TrialRecord], mode: str) -> int:
    """The best trial's number; a tie goes to the first trial."""
    sign = 1 if mode == "min" else -1
    return min(trials, key=lambda t: (math.inf if t.score is None else sign * t.score, t.trial)).trial


@dataclass
class _Row:
    """One swept row: its base config, its space, the fields of each trial asked for so far."""

    label: str
    base: RunConfig
    fixed: dict[str, Any]  # set and the validation split
    space: dict[str, Any]
    params: list[dict[str, Any]]

    def config(self, i: int, seed: int, label: str | None = None) -> RunConfig:
        """Trial ``i`` at training ``seed``, labelled ``ROW #i`` (or ``label``)."""
        changes = {**self.fixed, **self.params[i], "seed": seed, "label": label or f"{self.label} #{i}"}
        try:
            return override(self.base, changes)
        except ConfigError as err:
            raise ConfigError(f"row {self.label!r}, trial {i} ({_fields(self.params[i])}): {err}") from None

    def jobs(self, spec: SweepSpec, trials: range) -> list[Job]:
        return [Job(spec.trials_comparison, self.config(i, seed)) for i in trials for seed in spec.trial_seeds]

    def scored(self, spec: SweepSpec, trials: range, found: dict, store: RunStore) -> list[TrialRecord]:
        """The trials' records: each run's score (:func:`_score`), their mean over the trial seeds."""
        out = []
        for i, jobs in zip(trials, _chunks(self.jobs(spec, trials), len(spec.trial_seeds)), strict=True):
            runs = [found[j.key] for j in jobs]
            mean = statistics.fmean(_score(r, store.history(r["id"]), spec.metric, spec.mode, spec.at) for r in runs)
            score = mean if math.isfinite(mean) else None
            out.append(TrialRecord(trial=i, params=self.params[i], score=score, runs=[r["id"] for r in runs]))
        return out


def _fields(params: dict[str, Any]) -> str:
    return ", ".join(f"{k} = {v!r}" for k, v in params.items())


def _chunks(items: list[Job], n: int) -> list[list[Job]]:
    return [items[i : i + n] for i in range(0, len(items), n)]


def plan(spec: SweepSpec) -> list[_Row]:
    """The swept rows with their grid or random trials, each trial validated (:class:`ConfigError`); trains nothing.

    TPE rows have no trials yet: they are asked for as the search goes.
    """
    rows = []
    for label, (base, fixed) in _rows(spec).items():
        space = _space(spec, label, base.method.name)
        if spec.search == "grid":
            params = _grid(space)
        elif spec.search == "random":
            params = _random(space, spec.trials, spec.seed, label)
        else:
            params = []
        rows.append(_Row(label, base, fixed, space, params))
        for i in range(len(params)):
            rows[-1].config(i, spec.trial_seeds[0])
    return rows


def sweep(spec: SweepSpec, results: str | Path, **runner: Any) -> tuple[SweepRecord, list[dict[str, Any]]]:
    """Run ``spec`` (see the module docstring); returns its record and the store rows of the final runs.

    ``runner``: the :class:`Runner`'s keyword arguments (``backend``, ``workers``, ``cpus``,
    ``address``, ``storage``, ``on_done``). Grid and random trials are all validated before the
    first one trains.
    """
    rows = plan(spec)
    with Runner(results, **runner) as run:
        if spec.search == "tpe":
            trials = _tpe(spec, rows, run)
        else:
            found = run.run([j for row in rows for j in row.jobs(spec, range(len(row.params)))])
            with RunStore(results, read_only=True) as store:
                trials = {row.label: row.scored(spec, range(len(row.params)), found, store) for row in rows}
        record = _record(spec, rows, trials)
        write_atomic(record_path(results, spec.name), record.model_dump_json(indent=2))
        best = {m.label: m.best for m in record.methods}
        final = [Job(spec.name, row.config(best[row.label], s, row.label)) for s in record.seeds for row in rows]
        found = run.run(final)
    return record, [found[j.key] for j in final]


def _record(spec: SweepSpec, rows: list[_Row], trials: dict[str, list[TrialRecord]]) -> SweepRecord:
    methods = [
        MethodSweep(
            label=row.label,
            kinds={path: dim.kind for path, dim in row.space.items()},
            trials=trials[row.label],
            best=_pick(trials[row.label], spec.mode),
        )
        for row in rows
    ]
    return SweepRecord(
        name=spec.name,
        search=spec.search,
        metric=spec.metric,
        mode=spec.mode,
        at=spec.at,
        trial_seeds=spec.trial_seeds,
        seeds=list(range(spec.seed_start, spec.seed_start + spec.seeds)),
        trials_comparison=spec.trials_comparison,
        methods=methods,
    )


def _tpe(spec: SweepSpec, rows: list[_Row], run: Runner) -> dict[str, list[TrialRecord]]:
    """Optuna's TPE, one study per row, asking ``workers`` trials of every row at a time."""
    try:
        import optuna
    except ModuleNotFoundError:
        raise SweepError("search = 'tpe' needs optuna: pip install 'qnnlab[tpe]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    direction = "minimize" if spec.mode == "min" else "maximize"
    studies = {
        row.label: optuna.create_study(direction=direction, sampler=optuna.samplers.TPESampler(seed=spec.seed))
        for row in rows
    }
    out: dict[str, list[TrialRecord]] = {row.label: [] for row in rows}
    for first in range(0, spec.trials, run.workers):
        batch = range(first, min(first + run.workers, spec.trials))
        asked = {row.label: [studies[row.label].ask() for _ in batch] for row in rows}
        for row in rows:
            row.params += [{p: _suggest(t, p, d) for p, d in row.space.items()} for t in asked[row.label]]
        found = run.run([j for row in rows for j in row.jobs(spec, batch)])
        with RunStore(run.results, read_only=True) as store:
            for row in rows:
                records = row.scored(spec, batch, found, store)
                for trial, record in zip(asked[row.label], records, strict=True):
                    if record.score is None:
                        studies[row.label].tell(trial, state=optuna.trial.TrialState.FAIL)
                    else:
                        studies[row.label].tell(trial, record.score)
                out[row.label] += records
    return out
