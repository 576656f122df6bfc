"""The ``qnnlab`` command line: ``run``, ``compare``, ``list``, ``export`` and ``summary``.

Flags become validated configs before any training starts; a bad config or name prints
one line naming the field and the allowed values, and exits with status 2.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from qnnlab.config import ConfigError, RunConfig, load_config

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Train and compare quantized neural networks.")
# a wide table when piped (rich falls back to 80 columns off a terminal)
console = Console(width=None if sys.stdout.isatty() else 180)
err_console = Console(stderr=True)

ResultsOpt = Annotated[Path, typer.Option("--results", "-o", help="results folder (holds qnnlab.sqlite)")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars")]


def _fail(message: str) -> None:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _progress(quiet: bool) -> Progress | None:
    if quiet or not sys.stderr.isatty():
        return None
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    )


def _epoch_bars(progress: Progress | None, total_runs: int) -> Callable[[RunConfig], Callable | None] | None:
    """A callback factory: one overall bar over runs, one bar over the current run's epochs."""
    if progress is None:
        return None
    runs = progress.add_task("runs", total=total_runs)
    epochs = progress.add_task("", total=1)

    def on_run(cfg: RunConfig) -> Callable:
        progress.reset(epochs, total=cfg.epochs, description=f"{cfg.label} (seed {cfg.seed})")

        def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
            progress.update(epochs, completed=epoch)
            if epoch == cfg.epochs:
                progress.advance(runs)

        return on_epoch

    return on_run


def _print_table(rows, title: str) -> None:
    from qnnlab.experiments.compare import COLUMNS, format_cell

    table = Table(title=title)
    table.add_column("method")
    table.add_column("seeds", justify="right")
    for _, header, _, _ in COLUMNS:
        table.add_column(header, justify="right")
    for row in rows:
        table.add_row(row.label, str(row.n), *(format_cell(row, k, s, d) for k, _, s, d in COLUMNS))
    console.print(table)


def _train(configs: list[RunConfig], results: Path, name: str, quiet: bool) -> None:
    from qnnlab.experiments.compare import aggregate, compare, markdown_table, write_atomic

    progress = _progress(quiet)
    with progress or nullcontext():
        out = compare(configs, results, name, on_run=_epoch_bars(progress, len(configs)))
    rows = aggregate(out)
    _print_table(rows, f"{name}: weights judged after quantization, mean ± std over seeds")
    write_atomic(results / f"{name}.md", markdown_table(rows))
    if not quiet:
        console.print(f"runs and per-epoch metrics: {results / 'qnnlab.sqlite'}; table: {results / (name + '.md')}")


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="a TOML run config")],
    results: ResultsOpt = Path("results"),
    quiet: QuietOpt = False,
) -> None:
    """Train one run described by a TOML config."""
    try:
        cfg = load_config(config)
    except ConfigError as err:
        _fail(str(err))
    _train([cfg], results, config.stem, quiet)


@app.command()
def compare(
    preset: Annotated[str, typer.Argument(help="preset name (see `qnnlab list`)")] = "logistic",
    seeds: Annotated[int, typer.Option(min=1, help="training seeds 0..N-1")] = 5,
    results: ResultsOpt = Path("results"),
    quiet: QuietOpt = False,
) -> None:
    """Train every method of a preset over several seeds and print the comparison table."""
    from qnnlab.experiments.presets import preset_runs

    try:
        configs = preset_runs(preset, seeds)
    except (KeyError, ConfigError) as err:
        _fail(str(err).strip("'\""))
    _train(configs, results, preset, quiet)


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
    out: Annotated[Path, typer.Option("--out", help="the .qnn file to write")],
) -> None:
    """Write a trained run's quantized weights Q(w), bit-packed, to a .qnn file."""
    from qnnlab.packed import export_run, summary_of

    try:
        size = export_run(run, out)
        s = summary_of(out)  # reads the file back
    except (ValueError, KeyError, FileNotFoundError) as err:
        _fail(str(err).strip("'\""))
    console.print(
        f"wrote {out}: {size:,} bytes ({s.packed_bytes:,} of tensors + {size - s.packed_bytes:,} of header);"
        f" float32 equivalent {s.float32_bytes:,} bytes"
    )


def _count(n: int | None) -> str:
    return "—" if n is None else f"{n:,}"


@app.command()
def summary(
    target: Annotated[
        str, typer.Argument(metavar="MODEL_OR_RUN", help="a .qnn file, a run checkpoint .pt, or RESULTS_DIR:RUN_ID")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """Parameters, packed memory and MACs per layer, by precision; totals and compression ratio."""
    import json

    from qnnlab.packed import summary_of

    try:
        s = summary_of(target)
    except (ValueError, KeyError, FileNotFoundError) as err:
        _fail(str(err).strip("'\""))
    if as_json:
        typer.echo(json.dumps(s.to_dict(), indent=2))
        return
    table = Table(title=f"{target}: parameters and packed bytes by precision")
    for header in ("layer", "type", "1-bit", "k-bit", "float", "bytes", "MACs", "1-bit MACs"):
        table.add_column(header, justify="left" if header in ("layer", "type") else "right")
    for layer in s.layers:
        kbit = _count(layer.params_kbit) + (f" ({','.join(map(str, layer.kbits))}-bit)" if layer.kbits else "")
        table.add_row(
            layer.name,
            layer.kind,
            _count(layer.params_1bit),
            kbit,
            _count(layer.params_float),
            _count(layer.bytes),
            _count(layer.macs),
            _count(layer.binary_macs),
        )
    totals = [s.total(k) for k in ("params_1bit", "params_kbit", "params_float")]
    table.add_section()
    table.add_row(
        "total",
        "",
        *map(_count, totals),
        _count(s.packed_bytes),
        *map(_count, (s.total("macs"), s.total("binary_macs"))),
    )
    console.print(table)
    file = f"; file {s.file_bytes:,} bytes" if s.file_bytes is not None else ""
    console.print(
        f"packed size {s.packed_bytes:,} bytes{file}; float32 equivalent {s.float32_bytes:,} bytes;"
        f" compression ratio {s.compression:.1f}×"
    )


def main() -> None:
    app()
