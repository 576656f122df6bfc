"""The ``qnnlab`` command line: ``run``, ``compare``, ``sweep``, ``report``, ``list``, ``export`` and ``summary``.

Flags become validated configs before any training starts (``--set FIELD=VALUE``,
``--methods``, ``--epochs``, ``--seed-start`` through :func:`qnnlab.config.override`); a bad
config, value or name prints one line naming the field and the allowed values, and exits
with status 2. A run that diverges prints one line naming the epoch, the step and the
parameter (exit status 1, after the table of the others); SIGINT, SIGTERM and SIGHUP mark the
run ``interrupted`` (exit status 130, 143, 129) and ``--resume`` continues it. Progress bars
(runs, seeds, the methods of the current seed, epochs, each with its ETA) go to stderr only
when it is a terminal, not in CI and not with ``--quiet``.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated, NamedTuple

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from qnnlab.config import ConfigError, RunConfig, load_config, parse_overrides
from qnnlab.io import describe_os_error, dumps_json, write_atomic

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Train and compare quantized neural networks.")
# a wide table when piped (rich falls back to 80 columns off a terminal)
console = Console(width=None if sys.stdout.isatty() else 180)
err_console = Console(stderr=True)

ResultsOpt = Annotated[Path, typer.Option("--results", "-o", help="results folder (holds qnnlab.sqlite)")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars")]
TrackOpt = Annotated[
    list[str] | None, typer.Option("--track", help="also log every run to: tensorboard, wandb (repeatable)")
]
DeviceOpt = Annotated[str | None, typer.Option("--device", help="cpu, cuda, cuda:N or mps (default: cpu)")]
DataDirOpt = Annotated[
    Path | None, typer.Option("--data-dir", help="folder with the data set's files (default: $QNNLAB_DATA/<folder>)")
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set", metavar="FIELD=VALUE", help="change a config field, value as TOML: method.lr=0.5 (repeatable)"
    ),
]
MethodsOpt = Annotated[
    str | None, typer.Option("--methods", help="only these rows, by label or method name: askewsgd,ste")
]
EpochsOpt = Annotated[int | None, typer.Option("--epochs", help="epochs of every run")]
SeedStartOpt = Annotated[int | None, typer.Option("--seed-start", help="first training seed")]
ResumeOpt = Annotated[
    bool,
    typer.Option("--resume", help="skip the runs already finished in RESULTS; continue interrupted ones"),
]
JobsOpt = Annotated[
    int, typer.Option("--jobs", "-j", help="runs at a time, in worker processes (0: one per CPU); same results")
]
MAX_SEEDS = 1000  # already 12,000 runs of the logistic preset


def _fail(message: str) -> None:
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _progress(quiet: bool) -> Progress | None:
    if quiet or not sys.stderr.isatty() or os.environ.get("CI"):
        return None
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    )


def _data_seed(cfg: RunConfig) -> int | None:
    return getattr(cfg.data, "seed", None)


def _epoch_bars(
    progress: Progress | None, configs: Sequence[RunConfig], names: Sequence[str] | None = None
) -> Callable[[RunConfig], Callable] | None:
    """A callback factory: bars over all runs, over the seeds (of each comparison ``names`` gives and each of its
    problems), over the current seed's methods, over epochs."""
    if progress is None:
        return None
    names = list(names) if names is not None else [""] * len(configs)
    comparison = {id(cfg): name for cfg, name in zip(configs, names, strict=True)}
    problems = {n: {_data_seed(c) for c, m in zip(configs, names, strict=True) if m == n} for n in set(names)}

    def group(cfg: RunConfig) -> tuple[str, int | None, int]:
        return comparison.get(id(cfg), ""), _data_seed(cfg), cfg.seed

    def describe(key: tuple[str, int | None, int]) -> str:
        name, problem, seed = key
        parts = [name] if len(problems) > 1 else []
        parts += [f"problem {problem}"] if len(problems.get(name, ())) > 1 else []
        return ", ".join([*parts, f"seed {seed}"])

    per_seed = Counter(group(cfg) for cfg in configs)
    simple = len(problems) == 1 and all(len(p) == 1 for p in problems.values())
    runs = progress.add_task("runs", total=len(configs))
    seeds = progress.add_task("seeds" if simple else "seeds of each comparison and problem", total=len(per_seed))
    methods = progress.add_task("methods", total=1)
    epochs = progress.add_task("", total=1)
    left = dict(per_seed)

    def on_run(cfg: RunConfig) -> Callable:
        key = group(cfg)
        done = per_seed[key] - left[key]
        progress.reset(methods, total=per_seed[key], completed=done, description=f"methods of {describe(key)}")
        progress.reset(epochs, total=cfg.epochs, description=f"{cfg.label} ({describe(key)})")

        def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
            progress.update(epochs, completed=epoch)
            if epoch == cfg.epochs:
                left[key] -= 1
                progress.advance(runs)
                progress.advance(methods)
                if left[key] == 0:
                    progress.advance(seeds)

        return on_epoch

    return on_run


def _print_table(rows, title: str, preset: str) -> None:
    from qnnlab.experiments.compare import table_cells, table_notes

    header, cells = table_cells(rows, preset, bold=lambda text: Text(text, style="bold"))
    table = Table(title=title, caption="\n".join(table_notes(rows)) or None, caption_justify="left")
    table.add_column(header[0], no_wrap=True)
    for h in header[1:]:
        table.add_column(h, justify="right")
    for line in cells:
        table.add_row(*(c if isinstance(c, Text) else Text(c) for c in line))  # plain text: sources carry "[code]"
    console.print(table)


def _with_trackers(configs: list[RunConfig], track: list[str] | None) -> list[RunConfig]:
    """``configs`` with ``--track`` names added; fails before training if one is unknown or not installed."""
    if track:
        try:
            configs = [cfg.with_(track=tuple(dict.fromkeys([*cfg.track, *track]))) for cfg in configs]
        except ConfigError as err:
            _fail(str(err))
    names = sorted({name for cfg in configs for name in cfg.track})
    if names:
        from qnnlab.tracking import check_available

        try:
            check_available(names)
        except ModuleNotFoundError as err:
            _fail(str(err))
    return configs


def _jobs(jobs: int, configs: list[RunConfig]) -> int:
    """Worker processes for ``--jobs`` (0: one per CPU this process may use), at most one per run."""
    if jobs < 0:
        _fail(f"--jobs {jobs}: must be >= 0 (0: one per CPU)")
    if jobs == 0:
        jobs = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if jobs > 1 and any(cfg.track for cfg in configs):
        _fail(f"--jobs {jobs}: runs that track (--track, track = [...]) train in this process; use --jobs 1")
    return max(1, min(jobs, len(configs)))


def _train(
    configs: list[RunConfig],
    results: Path,
    name: str | list[str],
    quiet: bool,
    track: list[str] | None = None,
    resume: bool = False,
    jobs: int = 1,
) -> None:
    from qnnlab.data import DataError
    from qnnlab.experiments.compare import aggregate, compare, markdown_table
    from qnnlab.store import StoreError
    from qnnlab.train.checkpoint import CheckpointError
    from qnnlab.train.distributed import is_rank_zero
    from qnnlab.train.loop import fit
    from qnnlab.train.signals import Interrupted

    configs = _with_trackers(configs, track)
    jobs = _jobs(jobs, configs)
    writes = is_rank_zero()  # under torchrun the other ranks train in step with rank 0, which records
    progress = _progress(quiet or not writes)
    try:
        with progress or nullcontext():
            if writes:
                on_run = _epoch_bars(progress, configs, None if isinstance(name, str) else name)
                out = compare(configs, results, name, on_run=on_run, resume=resume, jobs=jobs)
            else:
                out = [fit(cfg) for cfg in configs]
    except (ConfigError, CheckpointError, DataError, StoreError) as err:
        _fail(str(err))
    except OSError as err:  # a checkpoint that cannot be written, a full disk, ...
        _fail(describe_os_error(err))
    except (MemoryError, RuntimeError) as err:
        if (why := _allocation_failure(err)) is None:
            raise
        _fail(why)
    except KeyboardInterrupt as err:  # Ctrl-C, SIGTERM, SIGHUP: the run is marked interrupted
        signal = err.signal if isinstance(err, Interrupted) else "SIGINT"
        err_console.print(
            f"[bold red]interrupted:[/] {signal}; the run is marked interrupted in {escape(str(results))};"
            " continue with --resume",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit({"SIGINT": 130, "SIGTERM": 143, "SIGHUP": 129}.get(signal, 130)) from None
    if not writes:
        return
    names = [name] * len(out) if isinstance(name, str) else name
    for comparison in dict.fromkeys(names):
        rows = aggregate([r for r, n in zip(out, names, strict=True) if n == comparison])
        over = "(problem, seed) pairs" if any(row.problems > 1 for row in rows) else "seeds"
        title = f"{comparison}: weights judged after quantization, mean ± std over {over}"
        _print_table(rows, title, comparison)
        table = results / f"{comparison}.md"
        try:
            write_atomic(table, markdown_table(rows, comparison))
        except OSError as err:
            _fail(describe_os_error(err))
        if not quiet:
            console.print(f"runs and per-epoch metrics: {results / 'qnnlab.sqlite'}; table: {table}")
    for r in out:
        if r.status == "diverged":
            err_console.print(f"[bold red]error:[/] {escape(r.error or '')}", highlight=False, soft_wrap=True)
    if any(r.status == "diverged" for r in out):
        raise typer.Exit(1)


def _allocation_failure(err: BaseException) -> str | None:
    """One line for a tensor too large to allocate (data sizes or model widths no machine holds); else ``None``."""
    import re

    text = str(err)
    if not isinstance(err, MemoryError) and "allocate" not in text:
        return None
    size = re.search(r"allocate (\d+) bytes", text)
    what = f" ({int(size[1]):,} bytes for one tensor)" if size else ""
    return f"cannot allocate memory for the run{what}: check the data sizes (n_train, n_test) and the model's widths"


def _configure(
    configs: list[tuple[str, RunConfig]],
    *,
    sets: list[str] | None = None,
    methods: str | None = None,
    epochs: int | None = None,
    device: str | None = None,
    data_dir: Path | None = None,
) -> list[RunConfig]:
    """``(where, config)`` pairs with ``--methods``, ``--epochs``, ``--set``, ``--device`` and ``--data-dir`` applied,
    each validated again; :class:`ConfigError` names where (a file, a preset row) and the field."""
    from qnnlab.config import override
    from qnnlab.experiments.presets import select_runs

    if methods is not None:
        names = [n.strip() for n in methods.split(",") if n.strip()]
        try:
            picked = {id(c) for c in select_runs([c for _, c in configs], names)}
        except KeyError as err:
            raise ConfigError(f"--methods {methods}: {str(err).strip(chr(34) + chr(39))}") from None
        configs = [(where, c) for where, c in configs if id(c) in picked]
    changes = ({} if epochs is None else {"epochs": epochs}) | parse_overrides(sets or [])
    if device is not None:
        changes["device"] = device
    out = []
    for where, cfg in configs:
        extra = dict(changes)
        if data_dir is not None:
            if "data_dir" not in type(cfg.data).model_fields:
                raise ConfigError(f"--data-dir: data set {cfg.data.name!r} reads no files")
            extra["data.data_dir"] = str(data_dir)
        try:
            out.append(override(cfg, extra) if extra else cfg)
        except ConfigError as err:
            raise ConfigError(f"{where}: {err}") from None
    if device is not None:  # a valid name by now
        _check_device(device)
    for (where, _), cfg in zip(configs, out, strict=True):
        if cfg.device != "cpu" and cfg.device != device:  # named in the file: checked as --device is
            _check_device(cfg.device, f"{where}: device = {cfg.device!r}")
    return out


def _seeded(configs: list[RunConfig], seeds: int, seed_start: int | None) -> list[RunConfig]:
    """Each config over ``seeds`` training seeds from ``seed_start`` (default: its own seed), seed by seed."""
    if not 1 <= seeds <= MAX_SEEDS:
        raise ConfigError(f"--seeds {seeds}: choose from 1 to {MAX_SEEDS}")
    if seed_start is not None and seed_start < 0:
        raise ConfigError(f"--seed-start {seed_start}: must be >= 0")
    if seeds == 1 and seed_start is None:
        return configs
    start = [cfg.seed if seed_start is None else seed_start for cfg in configs]
    return [cfg.with_(seed=s + i) for i in range(seeds) for cfg, s in zip(configs, start, strict=True)]


def _check_device(device: str, where: str | None = None) -> None:
    """:class:`ConfigError` unless torch can use ``device`` (``cpu``, ``cuda``, ``cuda:N`` or ``mps``) here;
    the message starts with ``where`` (default ``--device DEVICE``)."""
    import torch

    where = where or f"--device {device}"
    if device.startswith("cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(f"{where}: this torch build sees no CUDA device")
        if int(device.partition(":")[2] or 0) >= count:
            raise ConfigError(f"{where}: no such device; this machine has cuda:0 to cuda:{count - 1}")
    elif device == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"{where}: this torch build sees no MPS device (Apple silicon only)")


@app.command()
def run(
    configs: Annotated[list[Path], typer.Argument(metavar="CONFIG...", help="TOML run configs")],
    comparison: Annotated[
        str | None,
        typer.Option("--comparison", "-c", help="the comparison the runs are recorded under (default: the file names)"),
    ] = None,
    seeds: Annotated[int, typer.Option(help="training seeds per config, from the config's seed or --seed-start")] = 1,
    seed_start: SeedStartOpt = None,
    sets: SetOpt = None,
    methods: MethodsOpt = None,
    epochs: EpochsOpt = None,
    results: ResultsOpt = Path("results"),
    quiet: QuietOpt = False,
    track: TrackOpt = None,
    device: DeviceOpt = None,
    data_dir: DataDirOpt = None,
    resume: ResumeOpt = False,
    jobs: JobsOpt = 1,
) -> None:
    """Train the runs described by TOML configs, as one comparison."""
    try:
        loaded = [(str(path), load_config(path)) for path in configs]
        cfgs = _configure(loaded, sets=sets, methods=methods, epochs=epochs, device=device, data_dir=data_dir)
        cfgs = _seeded(cfgs, seeds, seed_start)
    except ConfigError as err:
        _fail(str(err))
    name = comparison or "+".join(dict.fromkeys(path.stem for path in configs))
    _train(cfgs, results, name, quiet, track, resume, jobs)


@app.command()
def compare(
    presets: Annotated[
        list[str] | None,
        typer.Argument(metavar="[PRESET]...", help="preset names (see `qnnlab list`); default: logistic"),
    ] = None,
    seeds: Annotated[
        int | None, typer.Option(help=f"training seeds (N from 1 to {MAX_SEEDS}; default: the preset's, mostly 5)")
    ] = None,
    problems: Annotated[
        int | None,
        typer.Option(help="problems: every run on data seeds 0..N−1 (default: the preset's, mostly its one data seed)"),
    ] = None,
    seed_start: SeedStartOpt = None,
    sets: SetOpt = None,
    methods: MethodsOpt = None,
    epochs: EpochsOpt = None,
    results: ResultsOpt = Path("results"),
    quiet: QuietOpt = False,
    track: TrackOpt = None,
    device: DeviceOpt = None,
    data_dir: DataDirOpt = None,
    resume: ResumeOpt = False,
    jobs: JobsOpt = 1,
) -> None:
    """Train every method of a preset over several seeds (and problems) and print the comparison table.

    Several presets are trained as one batch of runs (one set of --jobs workers), each recorded and tabled
    as a comparison of its own.
    """
    from qnnlab.experiments.presets import preset_runs, spread

    if seeds is not None and not 1 <= seeds <= MAX_SEEDS:
        _fail(f"--seeds {seeds}: choose from 1 to {MAX_SEEDS}")
    if problems is not None and not 1 <= problems <= MAX_SEEDS:
        _fail(f"--problems {problems}: choose from 1 to {MAX_SEEDS}")
    if seed_start is not None and seed_start < 0:
        _fail(f"--seed-start {seed_start}: must be >= 0")
    names = list(dict.fromkeys(presets or ["logistic"]))
    configs, comparisons = [], []
    try:
        for preset in names:
            default_seeds, default_problems = spread(preset)
            runs = preset_runs(preset, seeds or default_seeds, seed_start or 0, problems or default_problems)
            rows = [(f"{preset} row {cfg.label!r}", cfg) for cfg in runs]
            picked = _configure(rows, sets=sets, methods=methods, epochs=epochs, device=device, data_dir=data_dir)
            configs += picked
            comparisons += [preset] * len(picked)
    except (KeyError, ValueError) as err:
        _fail(str(err).strip("'\""))
    _train(configs, results, comparisons, quiet, track, resume, jobs)


@app.command()
def sweep(
    spec: Annotated[Path, typer.Argument(help="a TOML sweep spec (see qnnlab.experiments.sweep)")],
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="runs at a time (worker processes, Ray trials)")] = 1,
    backend: Annotated[str, typer.Option(help="local (worker processes) or ray (Ray Tune)")] = "local",
    address: Annotated[
        str | None, typer.Option(help="the Ray cluster to join (ray.init(address)); default: a local instance")
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option("--ray-storage", help="Ray Tune's storage_path (every node's; default: RESULTS/ray)"),
    ] = None,
    cpus: Annotated[int, typer.Option("--cpus-per-run", help="torch threads (Ray: CPUs) of each run")] = 1,
    seeds: Annotated[int | None, typer.Option(help="the best configuration's seeds (default: the spec's)")] = None,
    seed_start: SeedStartOpt = None,
    results: ResultsOpt = Path("results"),
    quiet: QuietOpt = False,
) -> None:
    """Search each method's hyperparameters on validation data; rerun the best over seeds, reported on test."""
    from qnnlab.data import DataError
    from qnnlab.experiments.compare import aggregate, markdown_table
    from qnnlab.experiments.sweep import SweepError, load_spec
    from qnnlab.experiments.sweep import sweep as run_sweep
    from qnnlab.store import StoreError

    if backend not in ("local", "ray"):
        _fail(f"--backend {backend}: choose from: local, ray")
    for flag, value in (("--jobs", jobs), ("--cpus-per-run", cpus)):
        if value < 1:
            _fail(f"{flag} {value}: must be >= 1")
    if (address is not None or storage is not None) and backend != "ray":
        _fail(f"{'--address' if address is not None else '--ray-storage'}: only with --backend ray")
    if seeds is not None and not 1 <= seeds <= MAX_SEEDS:
        _fail(f"--seeds {seeds}: choose from 1 to {MAX_SEEDS}")
    if seed_start is not None and seed_start < 0:
        _fail(f"--seed-start {seed_start}: must be >= 0")
    try:
        s = load_spec(spec)
    except ConfigError as err:
        _fail(str(err))
    s = s.model_copy(update={k: v for k, v in (("seeds", seeds), ("seed_start", seed_start)) if v is not None})
    progress = _progress(quiet)
    task = progress.add_task("runs", total=None) if progress is not None else None
    try:
        with progress or nullcontext():
            record, final = run_sweep(
                s,
                results,
                backend=backend,
                workers=jobs,
                cpus=cpus,
                address=address,
                storage=storage,
                on_done=(lambda job: progress.advance(task)) if progress is not None else None,
            )
    except (ConfigError, DataError, StoreError, SweepError) as err:
        _fail(str(err))
    except OSError as err:
        _fail(describe_os_error(err))
    table = Table(title=f"{s.name}: trials selected on {record.describe()}; {record.search} search")
    for header in ("method", "trials", "best", "score", "fields of the best trial"):
        table.add_column(header, justify="right" if header in ("trials", "best", "score") else "left")
    for m in record.methods:
        best = m.best_trial
        fields = ", ".join(f"{k} = {v!r}" for k, v in best.params.items())
        score = "—" if best.score is None else f"{best.score:.6g}"
        table.add_row(escape(m.label), str(len(m.trials)), f"#{best.trial}", score, escape(fields))
    console.print(table)
    rows = aggregate([_Stored(r["label"], r["summary"], r["config"], r["status"]) for r in final])
    seeds_text = f"{record.seeds[0]}..{record.seeds[-1]}" if len(record.seeds) > 1 else str(record.seeds[0])
    _print_table(rows, f"{s.name}: the best configuration per method, seeds {seeds_text}, reported on test", s.name)
    try:
        write_atomic(results / f"{s.name}.md", markdown_table(rows, s.name))
    except OSError as err:
        _fail(describe_os_error(err))
    if not quiet:
        console.print(
            f"trials: comparison {record.trials_comparison!r}, final runs: {s.name!r} in {results / 'qnnlab.sqlite'};"
            f" selection: {results / (s.name + '.sweep.json')}; report: qnnlab report {results} -c {s.name}"
        )


class _Stored(NamedTuple):
    label: str
    summary: dict
    config: dict  # as stored: aggregate pairs runs by its seeds
    status: str = "done"


REPORT_FORMATS = ("html", "png", "pdf")
REPORT_BANDS = ("se", "std", "none")  # qnnlab.report.figures.BANDS, without importing plotly


@app.command()
def report(
    results: Annotated[Path, typer.Argument(help="results folder holding qnnlab.sqlite")],
    comparison: Annotated[
        str | None, typer.Option("--comparison", "-c", help="which comparison (default: the one run last)")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="HTML file (default: RESULTS/<comparison>.html)")] = None,
    formats: Annotated[
        list[str] | None,
        typer.Option("--format", "-f", help="html (default), png, pdf; repeatable (figures: RESULTS/<name>-figures)"),
    ] = None,
    band: Annotated[
        str, typer.Option("--band", help="curve bands: se (±1 standard error, default), std (±1 std), none")
    ] = "se",
) -> None:
    """Write an offline HTML report (and static figures) comparing the methods of a comparison."""
    formats = list(dict.fromkeys(formats or ["html"]))
    if bad := [f for f in formats if f not in REPORT_FORMATS]:
        _fail(f"Invalid format {bad[0]!r}; choose from: {', '.join(REPORT_FORMATS)}")
    if band not in REPORT_BANDS:
        _fail(f"Invalid band {band!r}; choose from: {', '.join(REPORT_BANDS)}")
    try:
        from qnnlab.report.data import load_comparison
        from qnnlab.report.html import write_html
        from qnnlab.report.static import write_static
    except ModuleNotFoundError as err:
        _fail(f"qnnlab report needs {err.name}: pip install 'qnnlab[report]'")
    try:
        data = load_comparison(results, comparison)
    except (FileNotFoundError, ValueError) as err:
        _fail(str(err))
    written = []
    try:
        if "html" in formats:
            written.append(write_html(data, out or results / f"{data.name}.html", results_dir=results, band=band))
        for fmt in formats:
            if fmt != "html":
                written += write_static(data, results / f"{data.name}-figures", fmt, band=band)
    except (ModuleNotFoundError, RuntimeError, ValueError) as err:  # ValueError: a malformed sweep record
        _fail(str(err))
    except OSError as err:  # --out a folder, a read-only results folder, ...
        _fail(describe_os_error(err))
    for path in written:
        console.print(str(path), highlight=False, soft_wrap=True)


@app.command("list")
def list_() -> None:
    """List the registered methods and presets."""
    from qnnlab.experiments.presets import PRESETS
    from qnnlab.methods import METHODS

    table = Table(title="methods")
    table.add_column("name")
    table.add_column("grids (bits)")
    table.add_column("reference")
    for name in METHODS:
        info = METHODS.get(name)
        table.add_row(name, "any" if info.bits is None else ", ".join(map(str, info.bits)), info.paper)
    console.print(table)
    console.print("presets: " + ", ".join(PRESETS.names()))


@app.command()
def export(
    run: Annotated[str, typer.Argument(help="a run: its checkpoint .pt, or RESULTS_DIR:RUN_ID")],
    out: Annotated[Path, typer.Option("--out", help="the file to write")],
    format: Annotated[
        str, typer.Option("--format", "-f", help="qnn (bit-packed), onnx (onnxruntime) or qonnx (FINN, hls4ml)")
    ] = "qnn",
) -> None:
    """Write a trained run's quantized weights Q(w): bit-packed (.qnn), or as an ONNX or QONNX graph."""
    from qnnlab.packed import export_run, summary_of

    if format == "qnn" and out.suffix == ".onnx":
        _fail(f"--out {out}: an .onnx name for a .qnn file; pass --format onnx or --format qonnx")
    try:
        size = export_run(run, out, format=format)
        s = summary_of(out if format == "qnn" else run)  # a .qnn file is read back
    except (ValueError, KeyError, ModuleNotFoundError) as err:
        _fail(str(err).strip("'\""))
    except OSError as err:
        _fail(describe_os_error(err))
    if format == "qnn":
        detail = f"{s.packed_bytes:,} of tensors + {size - s.packed_bytes:,} of header"
    else:
        detail = {"onnx": "an ONNX graph for onnxruntime", "qonnx": "a QONNX graph for FINN and hls4ml"}[format]
    console.print(f"wrote {out}: {size:,} bytes ({detail}); float32 equivalent {s.float32_bytes:,} bytes")


def _count(n: int | None) -> str:
    return "—" if n is None else f"{n:,}"


def _precision(bits: int | None, dtype: str = "float") -> str:
    return dtype if bits is None else f"{bits}-bit"


def _layer_table(s, title: str) -> Table:
    table = Table(title=title)
    headers = ("layer", "type", "output", "input", "1-bit", "k-bit", "float", "bytes", "MACs", "1-bit-weight MACs")
    for header in (*headers, "1-bit MACs"):
        table.add_column(header, justify="left" if header in ("layer", "type", "output") else "right")
    for layer in s.layers:
        kbit = _count(layer.params_kbit) + (f" ({','.join(map(str, layer.kbits))}-bit)" if layer.kbits else "")
        seen = layer.macs is not None
        table.add_row(
            layer.name,
            layer.kind,
            "×".join(map(str, layer.output_shape)) if layer.output_shape is not None else "—",
            _precision(layer.input_bits) if seen else "—",
            _count(layer.params_1bit),
            kbit,
            _count(layer.params_float),
            _count(layer.bytes),
            *map(_count, (layer.macs, layer.binary_weight_macs, layer.binary_macs)),
        )
    table.add_section()
    params = (s.total("params_1bit"), s.total("params_kbit"), s.total("params_float"))
    macs = (s.total("macs"), s.total("binary_weight_macs"), s.total("binary_macs"))
    table.add_row("total", "", "", "", *map(_count, params), _count(s.packed_bytes), *map(_count, macs))
    return table


def _tensor_table(s, title: str) -> Table:
    table = Table(title=title)
    for header in ("tensor", "shape", "dtype", "stored as", "scale", "bytes"):
        table.add_column(header, justify="right" if header == "bytes" else "left")
    for t in s.tensors:
        scale = "" if t.scale is None else (f"{t.scale:g}" if isinstance(t.scale, float) else f"per {t.scale}")
        shape = "×".join(map(str, t.shape)) or "scalar"
        table.add_row(t.name, shape, t.dtype, _precision(t.bits, "as is"), scale, _count(t.bytes))
    table.add_section()
    table.add_row("total", "", "", "", "", _count(s.packed_bytes))
    return table


@app.command()
def summary(
    target: Annotated[
        str, typer.Argument(metavar="MODEL_OR_RUN", help="a .qnn file, a run checkpoint .pt, or RESULTS_DIR:RUN_ID")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of tables")] = False,
    tensors: Annotated[bool, typer.Option("--tensors", help="also list every tensor")] = False,
) -> None:
    """Parameters, packed memory and MACs per layer, by precision; totals and compression ratio.

    A .qnn file written without a run config (qnnlab.export_model) has no known architecture:
    it is listed tensor by tensor.
    """
    from qnnlab.packed import summary_of

    try:
        s = summary_of(target)
    except (ValueError, KeyError) as err:
        _fail(str(err).strip("'\""))
    except OSError as err:
        _fail(describe_os_error(err))
    if as_json:
        typer.echo(dumps_json(s.to_dict(), indent=2))
        return
    if s.layers:
        console.print(_layer_table(s, f"{target}: parameters, packed bytes and MACs per layer"))
    if tensors or not s.layers:
        console.print(_tensor_table(s, f"{target}: packed bytes per tensor"))
    file = f"; file {s.file_bytes:,} bytes" if s.file_bytes is not None else ""
    console.print(
        f"packed size {s.packed_bytes:,} bytes{file}; float32 equivalent {s.float32_bytes:,} bytes;"
        f" compression ratio {s.compression:.1f}×"
    )


def main() -> None:
    app()
