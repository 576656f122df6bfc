"""Train every run of a preset over several seeds; aggregate mean ± std per method, and mark the significant bests.

Runs are paired across methods by ``(data seed, training seed)``; a column's best mean is marked only where
an exact sign test over those pairs says it beats the runner-up (:mod:`qnnlab.experiments.significance`).
A run that diverged is counted beside its row (``3 (2 diverged)``) and left out of its means; a mean
that is not finite is printed as ``not finite``, never as ``nan ± 0``.
Over several problems (data seeds), the mean ± std are over every (problem, seed) pair, and the spread
over problems of a column is the sample std of its per-problem means (:data:`SPREAD`).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from qnnlab.config import RunConfig
from qnnlab.experiments.published import published
from qnnlab.experiments.significance import ALPHA, Better, PairedTest, sign_test
from qnnlab.store import RunStore
from qnnlab.train.checkpoint import import_run
from qnnlab.train.guard import Diverged
from qnnlab.train.loop import RunResult, fit

__all__ = [
    "BETTER",
    "COLUMNS",
    "SPREAD",
    "PairKey",
    "Row",
    "aggregate",
    "best_tests",
    "compare",
    "format_cell",
    "markdown_table",
    "pairwise_tests",
    "run_key",
    "table_cells",
    "table_columns",
    "table_notes",
]


PairKey = tuple[int | None, int]  # (data seed, training seed): the pairing of the paired tests


@dataclass(frozen=True)
class Row:
    """One method's results: ``{column: (mean, std)}`` over its runs, each run's value by its
    ``(data seed, training seed)``, and the columns in which it is the significant best."""

    label: str
    n: int  # finished runs
    stats: dict[str, tuple[float, float]]
    values: dict[str, dict[PairKey, float]] = field(default_factory=dict)
    best: frozenset[str] = frozenset()
    diverged: int = 0  # runs that diverged (in no mean)
    problems: int = 1  # distinct data seeds among its runs
    spread: dict[str, float] = field(default_factory=dict)  # column -> std of the per-problem means (2+ problems)


# (summary key, header, scale, format); a column no row has a value for is left out of the table
COLUMNS: list[tuple[str, str, float, str]] = [
    ("q_train_loss", "train loss Q(w)", 1.0, ".4f"),
    ("q_test_acc", "test acc Q(w) %", 100.0, ".2f"),
    ("q_test_loss", "test loss Q(w)", 1.0, ".4f"),
    ("rel_gap", "gap to binary opt. %", 100.0, ".3f"),
    ("cert_gap", "certified gap bound %", 100.0, ".3f"),
    ("train_loss", "train loss w", 1.0, ".4f"),
    ("test_acc", "test acc w %", 100.0, ".2f"),
    ("near_grid", "|w − Q(w)| ≤ 0.05 %", 100.0, ".1f"),
    ("eps", "final ε", 1.0, ".1e"),
    ("wall_time", "wall s", 1.0, ".2f"),
]
# which way is better in each column; the others (ε) have no best
BETTER: dict[str, Better] = {
    "q_train_loss": "min",
    "q_test_acc": "max",
    "q_test_loss": "min",
    "rel_gap": "min",
    "cert_gap": "min",
    "train_loss": "min",
    "test_acc": "max",
    "near_grid": "max",
    "wall_time": "min",
}
# columns whose spread over problems the table shows beside them (when a row ran on 2+ problems)
SPREAD: dict[str, str] = {
    "rel_gap": "gap spread over problems %",
    "cert_gap": "bound spread over problems %",
    "q_test_acc": "acc spread over problems %",
}
PUBLISHED_HEADER = "published (source)"
BOLD_NOTE = (
    "Bold: the best mean of its column where it beats the runner-up in an exact one-sided sign test over "
    f"the (data seed, training seed) pairs both ran, at α = {ALPHA} (pairs within a relative 1e-9 count as ties "
    "and are dropped; at least 5 untied pairs are needed); a column without bold has no significant winner."
)
UNTUNED_NOTE = "`*`: not tuned on this preset; hyperparameters derived from its ASkewSGD row."


def compare(
    configs: Sequence[RunConfig],
    results_dir: str | Path,
    name: str | Sequence[str],
    *,
    on_run: Callable[[RunConfig], Callable | None] | None = None,
    resume: bool = False,
    jobs: int = 1,
) -> list[RunResult]:
    """Train ``configs``, all recorded in ``results_dir``'s store under comparison ``name`` (or one name per
    config: several comparisons trained as one batch of runs) in config order.

    A run that diverges comes back with ``status = "diverged"`` and its message as ``error``; the others
    go on. With ``resume``, finished runs are taken from the store and interrupted ones continue
    (:func:`qnnlab.fit`), in this process. ``jobs > 1`` trains them in that many worker processes
    (spawned; one torch thread each), each run into a store of its own that is then imported, with its
    checkpoint, in config order: the store, the results and the table are those of ``jobs = 1`` (but
    ``wall_time``). ``on_run(cfg)`` is called as each run starts, or with workers as its results come in
    (its callback then gets every epoch at once). Runs that track (``cfg.track``) are trained in this
    process only.
    """
    if jobs < 1:
        raise ValueError(f"jobs: {jobs}; must be >= 1")
    if jobs > 1 and any(cfg.track for cfg in configs):
        raise ValueError("jobs: runs with trackers (track = [...]) are trained in this process; use jobs = 1")
    names = [name] * len(configs) if isinstance(name, str) else list(name)
    if len(names) != len(configs):
        raise ValueError(f"name: {len(names)} comparison names for {len(configs)} configs; give one, or one per config")
    with RunStore(results_dir) as store:
        if jobs == 1 or len(configs) <= 1 or resume:
            return [
                _run(cfg, store, n, on_run(cfg) if on_run else None, resume)
                for cfg, n in zip(configs, names, strict=True)
            ]
        return _in_workers(configs, store, names, on_run, min(jobs, len(configs)))


def _run(cfg: RunConfig, store: RunStore, name: str, on_epoch: Callable | None, resume: bool) -> RunResult:
    try:
        return fit(cfg, store=store, comparison=name, on_epoch=on_epoch, resume=resume)
    except Diverged as err:
        return RunResult(cfg.label, cfg, {}, status="diverged", error=str(err))


def _in_workers(
    configs: Sequence[RunConfig],
    store: RunStore,
    names: Sequence[str],
    on_run: Callable[[RunConfig], Callable | None] | None,
    jobs: int,
) -> list[RunResult]:
    """:func:`compare` with ``jobs`` worker processes (see there)."""
    import multiprocessing
    import tempfile
    from concurrent.futures import Future, ProcessPoolExecutor

    # spawn: a fresh interpreter per worker (forking a process that ran torch's thread pools can hang)
    context = multiprocessing.get_context("spawn")
    out = []
    with (
        tempfile.TemporaryDirectory(prefix=".compare-", dir=store.dir) as tmp,
        ProcessPoolExecutor(jobs, mp_context=context, initializer=_one_thread) as pool,
    ):
        folders = [Path(tmp) / str(i) for i in range(len(configs))]
        futures: list[Future | None] = [None] * len(configs)
        for i in sorted(range(len(configs)), key=lambda i: -_work(configs[i])):  # the longest first: no long tail
            futures[i] = pool.submit(_fit_into, configs[i], str(folders[i]), names[i])
        try:
            for cfg, name, folder, future in zip(configs, names, folders, futures, strict=True):
                try:
                    result = future.result()
                finally:
                    ids = _adopt(store, folder, name)  # a failed run is recorded as failed, as in this process
                result = replace(result, run_id=ids[result.run_id])
                out.append(result)
                if on_run is not None and (on_epoch := on_run(cfg)) is not None:
                    for epoch, metrics in enumerate(result.history):
                        on_epoch(epoch, metrics)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return out


def _work(cfg: RunConfig) -> float:
    """A run's expected cost, to order the workers' queue: its optimizer steps, plus 10 per epoch for the
    evaluation (about what an epoch's evaluation costs on the linear presets; a data set whose config does not
    give its size counts as one batch per epoch)."""
    n = getattr(cfg.data, "n_train", None) if cfg.data is not None else None
    steps = -(-n // cfg.batch_size) if isinstance(n, int) else 1
    return cfg.epochs * (steps + 10)


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


def _fit_into(cfg: RunConfig, folder: str, name: str) -> RunResult:
    """A worker's run: ``cfg`` trained into the store in ``folder``."""
    with RunStore(folder) as store:
        return _run(cfg, store, name, None, False)


def _adopt(store: RunStore, folder: Path, name: str) -> dict[int, int]:
    """Import the runs of the store in ``folder`` into ``store``, with their checkpoints; ``{old id: new id}``."""
    if not folder.exists():
        return {}
    with RunStore(folder) as source:
        return {row["id"]: import_run(store, source, row["id"]) for row in source.runs(name)}


def _field(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)


def run_key(result: RunResult) -> PairKey | None:
    """``(data seed, training seed)`` of a run, from its config (a :class:`RunConfig` or a stored dict);
    the data seed is ``None`` for data without one, and the key ``None`` without a training seed."""
    cfg = result.config
    seed = None if cfg is None else _field(cfg, "seed")
    data = None if cfg is None else _field(cfg, "data")
    return None if seed is None else (None if data is None else _field(data, "seed"), seed)


def aggregate(results: Sequence[RunResult], *, keys: Sequence[PairKey | None] | None = None) -> list[Row]:
    """Group runs by label (first-seen order): the mean and sample std of each column, each run's value
    under its pairing key, and the columns each row wins (:func:`best_tests`).

    ``keys[i]`` pairs ``results[i]`` across methods (default: :func:`run_key`); a run without a key counts
    in the mean and std but in no paired test.
    """
    keys = [run_key(r) for r in results] if keys is None else list(keys)
    if len(keys) != len(results):
        raise ValueError(f"keys: {len(keys)} keys for {len(results)} results")
    by_label: dict[str, list[tuple[RunResult, PairKey | None]]] = {}
    for r, k in zip(results, keys, strict=True):
        by_label.setdefault(r.label, []).append((r, k))
    rows = []
    for label, runs in by_label.items():
        stats, values, spread = {}, {}, {}
        diverged = sum(getattr(r, "status", "done") == "diverged" for r, _ in runs)
        problems = {None if k is None else k[0] for _, k in runs}
        for key, *_ in COLUMNS:
            # a stored non-finite value is null: it counts as NaN, so the mean says "not finite"
            got = [
                (float("nan") if r.summary[key] is None else float(r.summary[key]), k)
                for r, k in runs
                if key in r.summary
            ]
            if got:
                vals = [v for v, _ in got]
                sd = 0.0 if len(vals) == 1 else statistics.stdev(vals) if all(map(math.isfinite, vals)) else math.nan
                stats[key] = (statistics.fmean(vals), sd)
                values[key] = {k: v for v, k in got if k is not None and math.isfinite(v)}
            if key in SPREAD and len(problems) > 1 and (means := _problem_means(values.get(key, {}))):
                spread[key] = statistics.stdev(means) if len(means) > 1 else 0.0
        rows.append(
            Row(label, len(runs) - diverged, stats, values, diverged=diverged, problems=len(problems), spread=spread)
        )
    winners: dict[str, set[str]] = {}
    for key, (label, _, test) in best_tests(rows).items():
        if test.significant:
            winners.setdefault(label, set()).add(key)
    return [replace(row, best=frozenset(winners.get(row.label, ()))) for row in rows]


def _problem_means(values: Mapping[PairKey, float]) -> list[float]:
    """The mean of ``values`` over the training seeds of each problem (data seed), problem by problem."""
    by_problem: dict[int | None, list[float]] = {}
    for (problem, _), v in values.items():
        by_problem.setdefault(problem, []).append(v)
    return [statistics.fmean(v) for _, v in sorted(by_problem.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))]


def _ranked(rows: Sequence[Row], key: str) -> list[Row]:
    """Rows holding column ``key``, best mean first (NaN last)."""
    sign = 1.0 if BETTER[key] == "min" else -1.0
    held = [r for r in rows if key in r.stats]
    return sorted(held, key=lambda r: (math.isnan(r.stats[key][0]), sign * r.stats[key][0]))


def best_tests(rows: Sequence[Row]) -> dict[str, tuple[str, str, PairedTest]]:
    """Per column of :data:`BETTER` held by two rows or more: ``(best label, runner-up label, test)``, the
    sign test of the best mean against the second best over their common pairs."""
    out = {}
    for key in BETTER:
        ranked = _ranked(rows, key)
        if len(ranked) >= 2:
            best, runner = ranked[:2]
            test = sign_test(best.values.get(key, {}), runner.values.get(key, {}), BETTER[key])
            out[key] = (best.label, runner.label, test)
    return out


def pairwise_tests(rows: Sequence[Row], key: str) -> list[list[PairedTest | None]]:
    """``[i][j]``: the sign test of row ``i`` against row ``j`` in column ``key`` (``None`` on the diagonal
    or where either row lacks the column)."""

    def test(i: int, a: Row, j: int, b: Row) -> PairedTest | None:
        held = key in a.stats and key in b.stats
        return sign_test(a.values.get(key, {}), b.values.get(key, {}), BETTER[key]) if i != j and held else None

    return [[test(i, a, j, b) for j, b in enumerate(rows)] for i, a in enumerate(rows)]


def format_cell(row: Row, key: str, scale: float, fmt: str) -> str:
    if key not in row.stats:
        return "diverged" if row.diverged and not row.n else "—"
    mean, std = row.stats[key]
    if not (math.isfinite(mean) and math.isfinite(std)):
        return "not finite"
    return f"{mean * scale:{fmt}} ± {std * scale:{fmt}}"


def table_columns(rows: Sequence[Row]) -> list[tuple[str, str, float, str]]:
    """The :data:`COLUMNS` some row has a value for."""
    return [c for c in COLUMNS if any(c[0] in row.stats for row in rows)]


def table_cells(
    rows: Sequence[Row], preset: str = "", *, bold: Callable[[str], Any] | None = None
) -> tuple[list[str], list[list[Any]]]:
    """``(header, one list of cells per row)``: the columns some row has, then the published numbers of
    ``preset``. ``bold`` wraps the text of each row's significantly best cells (see :data:`BOLD_NOTE`)."""
    columns = table_columns(rows)
    spreads = {key for row in rows for key in row.spread}
    refs = [published(preset, row.label) for row in rows]
    several = any(row.problems > 1 for row in rows)
    header = ["method", "problems × seeds" if several else "seeds"]
    for key, head, _, _ in columns:
        header += [head, SPREAD[key]] if key in spreads else [head]
    cells = []
    for row in rows:
        runs = f"{row.problems} × {(row.n + row.diverged) // row.problems}" if several else str(row.n)
        line = [row.label, f"{runs} ({row.diverged} diverged)" if row.diverged else runs]
        for key, _, scale, fmt in columns:
            text = format_cell(row, key, scale, fmt)
            line.append(bold(text) if bold is not None and key in row.best else text)
            if key in spreads:
                line.append(f"{row.spread[key] * scale:{fmt}}" if key in row.spread else "—")
        cells.append(line)
    if any(refs):
        header.append(PUBLISHED_HEADER)
        for line, ref in zip(cells, refs, strict=True):
            line.append(ref.cell() if ref else "—")
    return header, cells


def table_notes(rows: Sequence[Row]) -> list[str]:
    """What a reader of the table needs: the rule for bold (when rows are paired), what ``*`` means (when used)."""
    notes = []
    if sum(any(row.values.get(key) for key in BETTER) for row in rows) >= 2:
        notes.append(BOLD_NOTE)
    if any(row.label.endswith("*") for row in rows):
        notes.append(UNTUNED_NOTE)
    return notes


def markdown_table(rows: Sequence[Row], preset: str = "") -> str:
    """The table in Markdown (significant bests in bold), then its notes."""
    header, cells = table_cells(rows, preset, bold=lambda text: f"**{text}**")

    def line(values: list[str]) -> str:
        return "| " + " | ".join(v.replace("|", "\\|") for v in values) + " |"  # "|w − Q(w)|" stays one cell

    notes = "".join(f"\n{note}\n" for note in table_notes(rows))
    return "\n".join([line(header), "|" + "---|" * len(header), *map(line, cells)]) + "\n" + notes
