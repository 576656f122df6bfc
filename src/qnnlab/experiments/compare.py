"""Train every run of a preset over several seeds and aggregate mean ± std per method."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from qnnlab.config import RunConfig
from qnnlab.experiments.published import published
from qnnlab.store import RunStore
from qnnlab.train.loop import RunResult, fit

__all__ = ["COLUMNS", "Row", "aggregate", "compare", "markdown_table", "table_cells"]


@dataclass(frozen=True)
class Row:
    """One method's results over seeds: ``{column: (mean, std)}``."""

    label: str
    n: int
    stats: dict[str, tuple[float, float]]


# (summary key, header, scale, format); a column no row has a value for is left out of the table
COLUMNS: list[tuple[str, str, float, str]] = [
    ("q_train_loss", "train loss Q(w)", 1.0, ".4f"),
    ("q_test_acc", "test acc Q(w) %", 100.0, ".2f"),
    ("q_test_loss", "test loss Q(w)", 1.0, ".4f"),
    ("rel_gap", "gap to binary opt. %", 100.0, ".3f"),
    ("train_loss", "train loss w", 1.0, ".4f"),
    ("test_acc", "test acc w %", 100.0, ".2f"),
    ("near_grid", "|w − Q(w)| ≤ 0.05 %", 100.0, ".1f"),
    ("eps", "final ε", 1.0, ".1e"),
    ("wall_time", "wall s", 1.0, ".2f"),
]
PUBLISHED_HEADER = "published (source)"


def compare(
    configs: Sequence[RunConfig],
    results_dir: str | Path,
    name: str,
    *,
    on_run: Callable[[RunConfig], Callable | None] | None = None,
) -> list[RunResult]:
    """Train ``configs`` in order, all recorded in ``results_dir``'s store under ``name``."""
    with RunStore(results_dir) as store:
        return [fit(cfg, store=store, comparison=name, on_epoch=on_run(cfg) if on_run else None) for cfg in configs]


def aggregate(results: Sequence[RunResult]) -> list[Row]:
    """Group runs by label (first-seen order) and take mean and sample std of each column."""
    by_label: dict[str, list[RunResult]] = {}
    for r in results:
        by_label.setdefault(r.label, []).append(r)
    rows = []
    for label, rs in by_label.items():
        stats = {}
        for key, *_ in COLUMNS:
            vals = [r.summary[key] for r in rs if key in r.summary]
            if vals:
                stats[key] = (statistics.fmean(vals), statistics.stdev(vals) if len(vals) > 1 else 0.0)
        rows.append(Row(label, len(rs), stats))
    return rows


def format_cell(row: Row, key: str, scale: float, fmt: str) -> str:
    if key not in row.stats:
        return "—"
    mean, std = row.stats[key]
    return f"{mean * scale:{fmt}} ± {std * scale:{fmt}}"


def table_cells(rows: Sequence[Row], preset: str = "") -> tuple[list[str], list[list[str]]]:
    """``(header, one list of cells per row)``: the columns some row has, then the published numbers of ``preset``."""
    columns = [c for c in COLUMNS if any(c[0] in row.stats for row in rows)]
    refs = [published(preset, row.label) for row in rows]
    header = ["method", "seeds", *(h for _, h, _, _ in columns)]
    cells = [[row.label, str(row.n), *(format_cell(row, k, s, d) for k, _, s, d in columns)] for row in rows]
    if any(refs):
        header.append(PUBLISHED_HEADER)
        for line, ref in zip(cells, refs, strict=True):
            line.append(ref.cell() if ref else "—")
    return header, cells


def markdown_table(rows: Sequence[Row], preset: str = "") -> str:
    header, cells = table_cells(rows, preset)

    def line(values: list[str]) -> str:
        return "| " + " | ".join(v.replace("|", "\\|") for v in values) + " |"  # "|w − Q(w)|" stays one cell

    return "\n".join([line(header), "|" + "---|" * len(header), *map(line, cells)]) + "\n"
