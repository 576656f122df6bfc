"""The report's sweep section: each method's trial scores against each field searched, the best marked.

A comparison written by ``qnnlab sweep`` has a record beside the store (``NAME.sweep.json``,
:class:`qnnlab.experiments.sweep.SweepRecord`); :func:`sweep_section` turns it into a table
of the selected configurations and one figure per method, a panel per field: every trial's
validation score (the mean over its trial seeds) against the field's value, the selected
trial as a star. Log-uniform fields get a log axis; choices are categories.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from qnnlab.experiments.sweep import MethodSweep, SweepRecord, load_record

__all__ = ["sweep_figure", "sweep_section"]


def _value(value: object) -> object:
    """A value as plotly can place it: numbers as they are, anything else as its TOML-ish text."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return json.dumps(value)
    return value


def sweep_figure(m: MethodSweep, record: SweepRecord) -> go.Figure:
    """One panel per searched field: score against value, the best trial a star."""
    keys = list(m.kinds)
    fig = make_subplots(rows=1, cols=len(keys), subplot_titles=keys, shared_yaxes=True)
    scored = [t for t in m.trials if t.score is not None]
    for col, key in enumerate(keys, start=1):
        for best in (False, True):
            trials = [t for t in scored if (t.trial == m.best) == best]
            fig.add_trace(
                go.Scatter(
                    x=[_value(t.params[key]) for t in trials],
                    y=[t.score for t in trials],
                    mode="markers",
                    marker={"symbol": "star", "size": 16, "color": "#d62728"}
                    if best
                    else {"size": 9, "color": "#1f77b4"},
                    name=f"best: trial #{m.best}" if best else "trials",
                    text=[f"trial #{t.trial}" for t in trials],
                    showlegend=col == 1,
                    legendgroup=str(best),
                ),
                row=1,
                col=col,
            )
        if m.kinds[key] == "log_uniform":
            fig.update_xaxes(type="log", row=1, col=col)
        elif m.kinds[key] == "choice":
            fig.update_xaxes(type="category", row=1, col=col)
    failed = len(m.trials) - len(scored)
    note = f" ({failed} trials without a finite score left out)" if failed else ""
    fig.update_yaxes(title_text=record.metric, row=1, col=1)
    fig.update_layout(
        title=f"{m.label}: {record.metric} of each trial{note}", height=360, template="plotly_white", margin={"t": 80}
    )
    return fig


def sweep_section(results_dir: str | Path, name: str) -> str:
    """The HTML section of comparison ``name``'s sweep, or ``""`` when it was not written by a sweep."""
    record = load_record(results_dir, name)
    if record is None:
        return ""
    rows = []
    for m in record.methods:
        best = m.best_trial
        fields = ", ".join(f"{k} = {json.dumps(v)}" for k, v in best.params.items())
        score = "—" if best.score is None else f"{best.score:.6g}"
        cells = [m.label, str(len(m.trials)), f"#{best.trial}", score, fields]
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("method", "trials", "selected", html.escape(record.metric), "fields"))
    figures = "\n".join(
        '<div class="figure">'
        + pio.to_html(sweep_figure(m, record), full_html=False, include_plotlyjs=False, config={"displaylogo": False})
        + "</div>"
        for m in record.methods
    )
    seeds = ", ".join(map(str, record.trial_seeds))
    return f"""<h2>Hyperparameter sweep</h2>
<p>The configurations above were selected by a {html.escape(record.search)} search on
{html.escape(record.describe())}: each trial's score is the mean over training seeds {seeds}
(its runs: comparison <code>{html.escape(record.trials_comparison)}</code>); the selected trial of each
method was then rerun over seeds {", ".join(map(str, record.seeds))}, whose test metrics the table reports.</p>
<table class="results"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>
{figures}
"""
