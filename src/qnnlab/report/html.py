"""One self-contained HTML page per comparison: plotly.js inlined, so it opens offline.

The page holds the results table (mean ± std over runs; a column's best mean in bold where a paired
sign test says it beats the runner-up; the gap to the certified binary optimum where it is known),
the pairwise comparisons behind the bold, the figures of :mod:`qnnlab.report.figures` (those with
data), and the exact configs and package versions of the runs.
"""

from __future__ import annotations

import datetime
import html
import json
from pathlib import Path
from typing import Any, NamedTuple

import plotly
import plotly.io as pio
from plotly.offline import get_plotlyjs

from qnnlab.experiments.compare import (
    BETTER,
    Row,
    aggregate,
    best_tests,
    format_cell,
    pairwise_tests,
    table_columns,
    table_notes,
)
from qnnlab.io import write_atomic
from qnnlab.report.data import Comparison
from qnnlab.report.figures import build_figures
from qnnlab.report.sweep import sweep_section

__all__ = ["pairwise_tables", "render_html", "results_table", "write_html"]

_CSS = """
body { font-family: system-ui, sans-serif; margin: 24px auto; max-width: 1280px; padding: 0 16px; color: #222; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { margin-top: 1.6em; }
.meta, .note { color: #555; margin-top: 0; }
.scroll { overflow-x: auto; max-width: 100%; }
table.results, table.pairwise { border-collapse: collapse; font-size: 0.86em; }
table.results th, table.results td, table.pairwise th, table.pairwise td {
  border-bottom: 1px solid #ddd; padding: 3px 7px; text-align: right; }
table.results td { white-space: nowrap; }
table.results td small { color: #666; }
table.results th { vertical-align: bottom; max-width: 9em; }
table.results th:first-child, table.results td:first-child, table.pairwise th:first-child { text-align: left; }
table.results td:first-child, table.pairwise th:first-child { position: sticky; left: 0; background: #fff; }
table.results td b { color: #000; }
table.pairwise td { white-space: nowrap; font-variant-numeric: tabular-nums; }
table.pairwise td.win { background: #d8f0d8; } table.pairwise td.loss { background: #f6dada; }
.figure { margin: 18px 0 28px; }
pre { background: #f6f6f6; padding: 8px; overflow-x: auto; font-size: 0.85em; }
details { margin: 6px 0; }
"""


class _Done(NamedTuple):
    label: str
    summary: dict[str, Any]


def _rows(c: Comparison) -> list[Row]:
    done = [(_Done(m.label, r["summary"] or {}), (r["data_seed"], r["seed"])) for m in c.methods for r in m.runs]
    return aggregate([d for d, _ in done], keys=[k for _, k in done])


def results_table(c: Comparison) -> str:
    """The comparison table as HTML; a column's best mean is bold where it significantly beats the runner-up
    (the test is in the cell's tooltip)."""
    rows = _rows(c)
    columns = table_columns(rows)
    tests = best_tests(rows)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in ["method", "seeds", *(h for _, h, _, _ in columns)])
    body = []
    for r in rows:
        cells = [html.escape(r.label), str(r.n)]
        for key, _, scale, fmt in columns:
            text = html.escape(format_cell(r, key, scale, fmt)).replace(" ± ", " <small>± ") + (
                "</small>" if key in r.stats else ""
            )
            if key in r.best:
                _, runner, test = tests[key]
                tip = html.escape(f"vs {runner}: {test.describe()}", quote=True)
                text = f'<b title="{tip}">{text}</b>'
            cells.append(text)
        body.append("<tr>" + "".join(f"<td>{x}</td>" for x in cells) + "</tr>")
    return (
        f'<div class="scroll"><table class="results"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def pairwise_tables(c: Comparison) -> str:
    """Per column with a best: every method against every other, wins–losses over their common pairs (ties
    dropped), green where the row beats the column (one-sided sign test, p < α), red where it loses; each
    column's table folded in a ``<details>``."""
    rows = _rows(c)
    parts = []
    for key, header, _, _ in table_columns(rows):
        if key not in BETTER or sum(key in r.stats for r in rows) < 2:
            continue
        held = [r for r in rows if key in r.stats]
        matrix = pairwise_tests(held, key)
        head = "".join(f"<th>{html.escape(r.label)}</th>" for r in held)
        body = []
        for a, line in zip(held, matrix, strict=True):
            cells = []
            for b, test in zip(held, line, strict=True):
                if test is None:
                    cells.append("<td>—</td>")
                    continue
                back = matrix[held.index(b)][held.index(a)]
                kind = "win" if test.significant else "loss" if back is not None and back.significant else ""
                tip = html.escape(f"{a.label} vs {b.label}: {test.describe()}", quote=True)
                cells.append(f'<td class="{kind}" title="{tip}">{test.wins}–{test.losses}</td>')
            body.append(f"<tr><th>{html.escape(a.label)}</th>{''.join(cells)}</tr>")
        better = "lower" if BETTER[key] == "min" else "higher"
        parts.append(
            f"<details><summary>{html.escape(header)} ({better} is better)</summary>"
            f'<div class="scroll"><table class="pairwise"><thead><tr><th>row vs column</th>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div></details>"
        )
    return "\n".join(parts)


def _configs(c: Comparison) -> str:
    """Each method's config (shown once when its seeds differ only in ``seed``), with run ids."""
    parts = []
    for m in c.methods:
        distinct = {json.dumps({**r["config"], "seed": None}, sort_keys=True) for r in m.runs}
        shown = [m.runs[0]["config"]] if len(distinct) == 1 else [r["config"] for r in m.runs]
        ids = ", ".join(f"seed {r['seed']} → run {r['id']}" for r in m.runs)
        text = "\n".join(json.dumps(cfg, indent=2, sort_keys=True) for cfg in shown)
        parts.append(
            f"<details><summary>{html.escape(m.label)} <small>({html.escape(ids)})</small></summary>"
            f"<pre>{html.escape(text)}</pre></details>"
        )
    return "\n".join(parts)


def _versions(c: Comparison) -> str:
    seen: dict[str, set[str]] = {}
    for m in c.methods:
        for r in m.runs:
            for k, v in r["versions"].items():
                seen.setdefault(k, set()).add(str(v))
    seen.setdefault("plotly (report)", set()).add(plotly.__version__)
    return ", ".join(f"{html.escape(k)} {html.escape(' / '.join(sorted(v)))}" for k, v in seen.items())


def render_html(c: Comparison, *, results_dir: str | Path = "", band: str = "se") -> str:
    """The whole page as a string; ``band``: the figures' bands (see :data:`qnnlab.report.figures.BANDS`)."""
    figures = build_figures(c, band=band)
    divs = "\n".join(
        '<div class="figure">'
        + pio.to_html(
            fig,
            full_html=False,
            include_plotlyjs=False,
            div_id=f"fig-{key}",
            auto_play=False,
            config={"displaylogo": False, "responsive": True},
        )
        + "</div>"
        for key, fig in figures.items()
    )
    n_runs = sum(len(m.runs) for m in c.methods)
    seeds = sorted({s for m in c.methods for s in m.seeds})
    data_seeds = sorted({r["data_seed"] for m in c.methods for r in m.runs} - {None})  # None: data without one
    on_data = f"on data seeds {', '.join(map(str, data_seeds))}" if data_seeds else "on the same data"
    notes = "".join(f'<p class="note">{html.escape(n)}</p>' for n in table_notes(_rows(c)))
    pairwise = pairwise_tables(c)
    pairwise_section = (
        "<h2>Pairwise comparisons</h2>\n<p>Each cell: the row method's wins–losses against the column method over "
        "the (data seed, training seed) pairs both ran, ties dropped; green where the row wins a one-sided exact "
        "sign test at α = 0.05, red where it loses one (no correction for the many pairs; hover for the "
        f"p-value).</p>\n{pairwise}"
        if pairwise
        else ""
    )
    optimum = (
        f" The certified binary optimum (exhaustive enumeration) of the training loss is f* = {c.optimum:.6f};"
        " the gap column is (f(Q(w)) − f*)/|f*|."
        if c.optimum is not None
        else ""
    )
    skipped = f" {c.skipped} unfinished or superseded runs were left out." if c.skipped else ""
    diverged = "".join(f'<p class="note">Diverged, left out: {html.escape(d)}</p>' for d in c.diverged)
    stamp = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    title = f"qnnlab report: {c.name}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{_CSS}</style>
<script type="text/javascript">{get_plotlyjs()}</script>
</head><body>
<h1>{html.escape(title)}</h1>
<p class="meta">{len(c.methods)} methods × training seeds {", ".join(map(str, seeds))} {on_data}
({n_runs} runs) from
{html.escape(str(Path(results_dir) / "qnnlab.sqlite"))}; generated {stamp}.</p>
<h2>Results after quantization</h2>
<p>Mean ± std over runs of the final epoch.{optimum}{skipped}</p>
{results_table(c)}
{diverged}
{notes}
{pairwise_section}
{sweep_section(results_dir, c.name)}
<h2>Figures</h2>
{divs}
<h2>Configs and versions</h2>
<p>{_versions(c)}</p>
{_configs(c)}
</body></html>
"""


def write_html(c: Comparison, path: str | Path, *, results_dir: str | Path = "", band: str = "se") -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, render_html(c, results_dir=results_dir, band=band))
    return path
