"""The ``qnnlab`` command line: ``run``, ``compare`` and ``list``.

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
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from qnnlab.config import ConfigError, RunConfig, load_config

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Train and compare quantized neural networks.")
# a wide table when piped (rich falls back to 80 columns off a terminal)
console = Console(width=None if sys.stdout.isatty() else 180)
err_console = Console(stderr=True)

ResultsOpt = Annotated[Path, typer.Option("--results", "-o", help="results folder (holds qnnlab.sqlite)")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars")]
DeviceOpt = Annotated[str | None, typer.Option("--device", help="cpu, cuda, cuda:N or mps (default: cpu)")]
DataDirOpt = Annotated[
    Path | None, typer.Option("--data-dir", help="folder with the data set's files (default: $QNNLAB_DATA/<folder>)")
]


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


def _print_table(rows, title: str, preset: str) -> None:
    from qnnlab.experiments.compare import table_cells

    header, cells = table_cells(rows, preset)
    table = Table(title=title)
    table.add_column(header[0], no_wrap=True)
    for h in header[1:]:
        table.add_column(h, justify="right")
    for line in cells:
        table.add_row(*map(escape, line))  # sources carry "[code]" tags, not rich markup
    console.print(table)


def _train(configs: list[RunConfig], results: Path, name: str, quiet: bool) -> None:
    from qnnlab.data import DataError
    from qnnlab.experiments.compare import aggregate, compare, markdown_table, write_atomic

    progress = _progress(quiet)
    try:
        with progress or nullcontext():
            out = compare(configs, results, name, on_run=_epoch_bars(progress, len(configs)))
    except DataError as err:
        _fail(str(err))
    rows = aggregate(out)
    _print_table(rows, f"{name}: weights judged after quantization, mean ± std over seeds", name)
    write_atomic(results / f"{name}.md", markdown_table(rows, name))
    if not quiet:
        console.print(f"runs and per-epoch metrics: {results / 'qnnlab.sqlite'}; table: {results / (name + '.md')}")


def _override(configs: list[RunConfig], device: str | None, data_dir: Path | None) -> list[RunConfig]:
    """The configs with ``--device`` and ``--data-dir`` applied (validated again)."""
    if device is not None and device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(f"--device {device}: this torch build sees no CUDA device")
    out = []
    for cfg in configs:
        changes: dict = {} if device is None else {"device": device}
        if data_dir is not None:
            if "data_dir" not in type(cfg.data).model_fields:
                raise ConfigError(f"--data-dir: data set {cfg.data.name!r} reads no files")
            changes["data"] = {**cfg.data.model_dump(), "data_dir": str(data_dir)}
        out.append(cfg.with_(**changes) if changes else cfg)
    return out


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="a TOML run config")],
    results: ResultsOpt = Path("results"),
    quiet: QuietOpt = False,
    device: DeviceOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Train one run described by a TOML config."""
    try:
        cfgs = _override([load_config(config)], device, data_dir)
    except ConfigError as err:
        _fail(str(err))
    _train(cfgs, results, config.stem, quiet)


@app.command()
def compare(
    preset: Annotated[str, typer.Argument(help="preset name (see `qnnlab list`)")] = "logistic",
    seeds: Annotated[int, typer.Option(min=1, help="training seeds 0..N-1")] = 5,
    results: ResultsOpt = Path("results"),
    quiet: QuietOpt = False,
    device: DeviceOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Train every method of a preset over several seeds and print the comparison table."""
    from qnnlab.experiments.presets import preset_runs

    try:
        configs = _override(preset_runs(preset, seeds), device, data_dir)
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


def main() -> None:
    app()
