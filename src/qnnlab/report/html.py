"""One self-contained HTML page per comparison: plotly.js inlined, so it opens offline.

The page holds the results table (mean ± std over seeds, the best value of each column in
bold, the gap to the certified binary optimum where it is known), the figures of
:mod:`qnnlab.report.figures`, and the exact configs and package versions of the runs.
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

from qnnlab.experiments.compare import COLUMNS, Row, aggregate, format_cell
from qnnlab.io import write_atomic
from qnnlab.report.data import Comparison
from qnnlab.report.figures import build_figures
from qnnlab.report.sweep import sweep_section

__all__ = ["BETTER", "render_html", "results_table", "write_html"]

# which way is better for each table column (columns not listed are never bold)
BETTER: dict[str, str] = {
    "q_train_loss": "min",
    "q_test_acc": "max",
    "rel_gap": "min",
    "train_loss": "min",
    "near_grid": "max",
    "wall_time": "min",
}

_CSS = """
body { font-family: system-ui, sans-serif; margin: 24px auto; max-width: 1280px; color: #222; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { margin-top: 1.6em; }
.meta { color: #666; margin-top: 0; }
table.results { border-collapse: collapse; font-size: 0.92em; }
table.results th, table.results td { border-bottom: 1px solid #ddd; padding: 4px 10px; text-align: right; }
table.results td { white-space: nowrap; }
table.results th:first-child, table.results td:first-child { text-align: left; }
table.results td b { color: #000; }
.figure { margin: 18px 0 28px; }
pre { background: #f6f6f6; padding: 8px; overflow-x: auto; font-size: 0.85em; }
details { margin: 6px 0; }
"""


class _Done(NamedTuple):
    label: str
    summary: dict[str, Any]


def _rows(c: Comparison) -> list[Row]:
    return aggregate([_Done(m.label, r["summary"]) for m in c.methods for r in m.runs])


def results_table(c: Comparison) -> str:
    """The comparison table as HTML; the best mean of each column (as printed) is bold."""
    rows = _rows(c)
    best: dict[str, str] = {}
    for key, _, scale, fmt in COLUMNS:
        pick = {"min": min, "max": max}.get(BETTER.get(key, ""))
        means = [r.stats[key][0] for r in rows if key in r.stats]
        if pick is not None and len(means) > 1:
            best[key] = f"{pick(means) * scale:{fmt}}"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in ["method", "seeds", *(h for _, h, _, _ in COLUMNS)])
    body = []
    for r in rows:
        cells = [html.escape(r.label), str(r.n)]
        for key, _, scale, fmt in COLUMNS:
            text = html.escape(format_cell(r, key, scale, fmt))
            bold = key in best and f"{r.stats[key][0] * scale:{fmt}}" == best[key]
            cells.append(f"<b>{text}</b>" if bold else text)
        body.append("<tr>" + "".join(f"<td>{x}</td>" for x in cells) + "</tr>")
    return f'<table class="results"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


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
                seen.setdefault(k, set()).add(v)
    seen.setdefault("plotly (report)", set()).add(plotly.__version__)
    return ", ".join(f"{html.escape(k)} {html.escape(' / '.join(sorted(v)))}" for k, v in seen.items())


def render_html(c: Comparison, *, results_dir: str | Path = "") -> str:
    """The whole page as a string."""
    figures = build_figures(c)
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
    optimum = (
        f" The certified binary optimum (exhaustive enumeration) of the training loss is f* = {c.optimum:.6f};"
        " the gap column is (f(Q(w)) − f*)/|f*|."
        if c.optimum is not None
        else ""
    )
    skipped = f" {c.skipped} unfinished or superseded runs were left out." if c.skipped else ""
    stamp = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    title = f"qnnlab report: {c.name}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{_CSS}</style>
<script type="text/javascript">{get_plotlyjs()}</script>
</head><body>
<h1>{html.escape(title)}</h1>
<p class="meta">{len(c.methods)} methods × seeds {", ".join(map(str, seeds))} ({n_runs} runs) from
{html.escape(str(Path(results_dir) / "qnnlab.sqlite"))}; generated {stamp}.</p>
<h2>Results after quantization</h2>
<p>Mean ± std over seeds of the final epoch; the best mean of each column is in bold.{optimum}{skipped}</p>
{results_table(c)}
{sweep_section(results_dir, c.name)}
<h2>Figures</h2>
{divs}
<h2>Configs and versions</h2>
<p>{_versions(c)}</p>
{_configs(c)}
</body></html>
"""


def write_html(c: Comparison, path: str | Path, *, results_dir: str | Path = "") -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, render_html(c, results_dir=results_dir))
    return path
