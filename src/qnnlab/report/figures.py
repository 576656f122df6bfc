"""The report's figures: one plotly figure per question, each drawn from a :class:`Comparison`.

Every curve is the mean over seeds with a band of ±1 standard error of that mean (``band="se"``, the
default), ±1 standard deviation (``"std"``) or none (``"none"``); quantized weights ``Q(w)`` are solid
lines, continuous weights ``w`` dashed. A method keeps its colour in every figure (:data:`PALETTE`: 24
colours, pairwise distinguishable; they repeat beyond 24 methods). Legends sit below the plot with every
entry shown, in the page and in PNG/PDF; the linear/log buttons sit in the title row, above every panel.

What has no data is left out: a figure, a panel, a method's curve. A panel whose every curve is constant
(a fixed β, a flat learning rate) is left out too and its values named in the figure's subtitle. When the
runs differ in length by more than 2×, epochs and iterations are drawn as a fraction of each run (the
hover shows the epoch), so that 50-epoch runs are not squeezed beside 300-epoch ones. On log axes
the range follows the mean lines, with about five ticks, values ≤ 0 are gaps rather than streaks to the
axis, and a band's lower edge is clipped at a tenth of the mean.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.colors import hex_to_rgb
from plotly.subplots import make_subplots

from qnnlab.report.data import Comparison, MethodRuns

__all__ = ["BANDS", "DIAGNOSTICS", "FIGURES", "PALETTE", "STATIC_FIGURES", "WIDTH", "build_figures", "static_version"]

# 24 colours picked farthest-first in CIEDE2000 from plotly's qualitative palettes, each dark enough for
# a white page (L* ≤ 68): the first 12 differ pairwise by ΔE₀₀ ≥ 21, all 24 by ≥ 15 (plotly's Dark24:
# 9.3 within its first 12; its default Plotly palette has 10 colours)
PALETTE = [
    "#4C78A8", "#90AD1C", "#FB0D0D", "#620042", "#FE00FA", "#6C4516", "#00A08B", "#B2828D",
    "#E58606", "#0D2A63", "#511CFB", "#117733", "#AF0038", "#565656", "#FC0080", "#B10DA1",
    "#999999", "#661100", "#F97B72", "#9D755D", "#008695", "#1CBE4F", "#9467BD", "#222A2A",
]  # fmt: skip
# band kind → what the subtitle says
BANDS = {"se": "bands: ±1 standard error over seeds", "std": "bands: ±1 std over seeds", "none": "no bands"}
WIDTH = 1100  # px of the static figures; the legend's rows are laid out for it
MAX_FRAMES = 60
# (metric, panel title) of the diagnostics figure; metrics an optimizer adds are appended
DIAGNOSTICS = [
    ("stationarity", "stationarity r_γ(w)"),
    ("violation_max", "max violation [−φ_ε(w)]₊"),
    ("violation_mean", "mean violation [−φ_ε(w)]₊"),
    ("feasible", "fraction of weights in C_ε"),
    ("near_grid", "fraction with |w − Q(w)| ≤ 0.05"),
    ("grid_dist", "mean |w − Q(w)|"),
    ("quant_error", "‖w − Q(w)‖₂"),
    ("q_loss_gap", "f(Q(w)) − f(w) (train)"),
]
# panels that start on a log scale (they shrink by orders of magnitude)
_LOG_SCALE = {"stationarity", "violation_max", "violation_mean", "grid_dist", "quant_error", "lr", "eps"}
_BUILT_IN = {
    *(f"{p}{s}_{m}" for p in ("", "q_") for s in ("train", "val", "test") for m in ("loss", "acc")),
    *(name for name, _ in DIAGNOSTICS),
    "lr",
    "eps",
}
_TOP = 104  # px above the plot: title, subtitle, the buttons' line (+26 for a line of panel titles)
_ROW_PX = 26  # px per legend row


@dataclass(frozen=True)
class _Plot:
    """What every figure of one report shares: the comparison, the band kind, and the x axis."""

    c: Comparison
    band: str
    fraction: bool  # x = epoch / (the run's epochs): the runs differ in length

    @property
    def style(self) -> str:
        return f"solid: quantized weights Q(w) · dashed: continuous weights w · {BANDS[self.band]}"

    def epoch_axis(self, m: MethodRuns, epochs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(x, epochs)``: the epochs, or their fraction of this method's run."""
        last = max((max(h) for h in m.histories if h), default=0)
        return (epochs / last if self.fraction and last else epochs.astype(float)), epochs

    @property
    def epoch_title(self) -> str:
        return "fraction of the run (epoch / the run's epochs)" if self.fraction else "epoch"


def _color(i: int, alpha: float | None = None) -> str:
    hex_color = PALETTE[i % len(PALETTE)]
    if alpha is None:
        return hex_color
    r, g, b = hex_to_rgb(hex_color)
    return f"rgba({r},{g},{b},{alpha})"


def _segments(ok: np.ndarray) -> list[np.ndarray]:
    """Index runs where ``ok`` holds."""
    idx = np.arange(len(ok))
    return [idx[list(g)] for key, g in itertools.groupby(range(len(ok)), key=lambda k: bool(ok[k])) if key]


def _band_polygon(x: np.ndarray, lower: np.ndarray, upper: np.ndarray, ok: np.ndarray) -> tuple[list, list]:
    """One closed polygon per run of valid points, separated by gaps (``fill="toself"`` closes each)."""
    xs: list[float | None] = []
    ys: list[float | None] = []
    for seg in _segments(ok):
        xs += [*x[seg], *x[seg][::-1], None]
        ys += [*upper[seg], *lower[seg][::-1], None]
    return xs, ys


def _curve(
    fig: go.Figure,
    p: _Plot,
    i: int,
    m: MethodRuns,
    x: np.ndarray,
    mean: np.ndarray,
    spread: np.ndarray | None,
    *,
    dash: str = "solid",
    legend: bool = True,
    log: bool = False,
    hover_x: np.ndarray | None = None,
    x_name: str = "epoch",
    row: int | None = None,
    col: int | None = None,
) -> None:
    """A mean line and its band (left out when ``band="none"`` or the spread is 0 everywhere)."""
    where = {"row": row, "col": col} if row is not None else {}
    line = np.where(mean > 0, mean, np.nan) if log else mean
    if p.band != "none" and spread is not None and np.any(spread > 0):
        lower, upper = mean - spread, mean + spread
        if log:  # a decade below the mean at most: a lower edge at or near 0 would streak to the axis
            lower = np.maximum(lower, line / 10)
        ok = np.isfinite(lower) & np.isfinite(upper)
        xs, ys = _band_polygon(x, lower, upper, ok)
        if xs:
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    mode="lines",
                    fill="toself",
                    fillcolor=_color(i, 0.18),
                    line={"width": 0},
                    hoverinfo="skip",
                    showlegend=False,
                    legendgroup=m.label,
                ),
                **where,
            )
    shown = x if hover_x is None else hover_x
    fig.add_trace(
        go.Scatter(
            x=x,
            y=line,
            customdata=shown,
            mode="lines",
            name=m.label,
            legendgroup=m.label,
            showlegend=legend,
            line={"color": _color(i), "dash": dash, "width": 2},
            hovertemplate=f"{m.label}<br>{x_name} %{{customdata}}: %{{y:.5g}}<extra></extra>",
        ),
        **where,
    )


def _spread(p: _Plot, std: np.ndarray, n: int) -> np.ndarray | None:
    if p.band == "none":
        return None
    return std / math.sqrt(n) if p.band == "se" else std


def _epoch_curve(fig, p: _Plot, i: int, m: MethodRuns, metric: str, *, scale: float = 1.0, **kw) -> bool:
    """Draw ``metric`` of ``m`` per epoch; False if ``m`` never recorded it."""
    if not (stats := m.epoch_stats(metric)):
        return False
    epochs, mean, std = stats
    x, shown = p.epoch_axis(m, epochs)
    _curve(fig, p, i, m, x, mean * scale, _spread(p, std * scale, len(m.histories)), hover_x=shown, **kw)
    return True


def _constant(values: np.ndarray) -> bool:
    return float(np.ptp(values)) <= 1e-12 * max(1.0, float(np.abs(values).max()))


def _log_ranges(fig: go.Figure) -> dict[str, tuple[list[float], int | None]]:
    """Per y axis: its log range, set by the mean lines alone (bands are clipped to it), and one tick per
    ``dtick`` decades, about five ticks (``None``: plotly's own numbers, under a decade)."""
    spans: dict[str, list[float]] = {}
    for t in fig.data:
        if t.type != "scatter" or t.fill == "toself" or t.y is None:
            continue
        y = np.asarray([v for v in t.y if v is not None], dtype=float)
        y = y[np.isfinite(y) & (y > 0)]
        if y.size:
            spans.setdefault("yaxis" + (t.yaxis or "y")[1:], []).extend([y.min(), y.max()])
    out = {}
    for axis, values in spans.items():
        lo, hi = math.log10(min(values)), math.log10(max(values))
        pad = 0.05 * (hi - lo) + 0.05
        out[axis] = ([lo - pad, hi + pad], max(1, math.ceil((hi - lo) / 5)) if hi - lo >= 1 else None)
    return out


def _buttons_y(plot_height: int, titled: bool) -> float:
    """Paper ``y`` of the buttons' bottom: on their own line under the subtitle, above any panel title."""
    return 1 + (32 if titled else 6) / plot_height


def _finish(
    fig: go.Figure,
    title: str,
    subtitle: str,
    plot_height: int,
    *,
    toggles: bool = True,
    log_y: bool | None = False,
) -> go.Figure:
    """Title and subtitle at the top left, linear/log buttons at the top right, the legend below, sized to fit.

    ``log_y``: the y axes start on a log scale (True), linear (False), or as each panel set them (None).
    """
    names = [t.name for t in fig.data if t.showlegend is not False and t.name]
    entry = 46 + 7 * max((len(n) for n in names), default=0)
    rows = math.ceil(len(names) / max(1, (WIDTH - 140) // (entry + 30))) if names else 0
    bottom = 64 + _ROW_PX * rows
    titled = bool(fig.layout.annotations)  # subplot titles take the line just above the plot
    top = _TOP + 26 if titled else _TOP
    height = top + plot_height + bottom
    ranges = _log_ranges(fig)
    for axis in fig.select_yaxes():
        if (log_y or axis.type == "log") and axis.plotly_name in ranges:
            span, dtick = ranges[axis.plotly_name]
            axis.update(type="log", range=span, dtick=dtick)
    fig.update_yaxes(exponentformat="power")
    menus = []
    if toggles:
        y_axes = [a.plotly_name for a in fig.select_yaxes()]
        x_axes = [a.plotly_name for a in fig.select_xaxes()]
        for letter, axes, x, initial in (("y", y_axes, 1.0, log_y), ("x", x_axes, 0.8, False)):
            buttons = []
            for scale in ("linear", "log"):
                args: dict = {f"{a}.type": scale for a in axes}
                if letter == "y":
                    for a in axes:
                        span, dtick = ranges.get(a, (None, None))
                        log = scale == "log" and span is not None
                        args |= {f"{a}.range": span if log else None, f"{a}.autorange": not log, f"{a}.dtick": dtick}
                buttons.append({"label": f"{scale} {letter}", "method": "relayout", "args": [args]})
            menus.append(
                {
                    "type": "buttons",
                    "direction": "right",
                    "buttons": buttons,
                    "active": -1 if initial is None else int(initial),
                    "x": x,
                    "xanchor": "right",
                    "y": _buttons_y(plot_height, titled),
                    "yanchor": "bottom",
                    "pad": {"t": 0, "b": 0},
                    "font": {"size": 11},
                }
            )
    fig.update_layout(
        title={
            "text": title,
            "subtitle": {"text": subtitle},
            "x": 0.0,
            "xanchor": "left",
            "xref": "paper",
            "y": 1.0,
            "yanchor": "top",
            "yref": "container",
            "pad": {"t": 8},
        },
        updatemenus=menus,
        template="plotly_white",
        height=height,
        margin={"t": top, "l": 64, "r": 20, "b": bottom},
        legend={
            "orientation": "h",
            "x": 0.0,
            "xanchor": "left",
            "y": 0.0,
            "yanchor": "bottom",
            "yref": "container",
            "entrywidth": entry,
            "entrywidthmode": "pixels",
            "maxheight": 1.0,  # up to the whole figure: never a scrolling legend
            "groupclick": "togglegroup",
        },
        hovermode="closest",
    )
    return fig


def loss_vs_epoch(p: _Plot) -> go.Figure | None:
    fig = go.Figure()
    drawn = False
    for i, m in enumerate(p.c.methods):
        legend = True
        for metric, dash in (("q_train_loss", "solid"), ("train_loss", "dash")):
            if _epoch_curve(fig, p, i, m, metric, dash=dash, legend=legend):
                drawn, legend = True, False
    if not drawn:
        return None
    if p.c.optimum is not None:
        fig.add_hline(
            y=p.c.optimum,
            line={"color": "black", "width": 1, "dash": "dot"},
            annotation_text="certified binary optimum",
            annotation_position="top right",
        )
    fig.update_xaxes(title=p.epoch_title)
    fig.update_yaxes(title="training loss f")
    return _finish(fig, "Training loss per epoch", p.style, 320)


def loss_vs_iteration(p: _Plot) -> go.Figure | None:
    shown = [(i, m) for i, m in enumerate(p.c.methods) if m.batch_losses and all(len(b) for b in m.batch_losses)]
    if not shown:
        return None
    lengths = [min(len(b) for b in m.batch_losses) for _, m in shown]
    fraction = max(lengths) > 2 * min(lengths)
    fig = go.Figure()
    for (i, m), k in zip(shown, lengths, strict=True):
        x, mean, std = m.iteration_stats()
        _curve(
            fig,
            p,
            i,
            m,
            x / k if fraction else x,
            mean,
            _spread(p, std, len(m.batch_losses)),
            hover_x=np.round(x).astype(int),
            x_name="iteration",
        )
    fig.update_xaxes(title="fraction of the run's iterations" if fraction else "iteration (mini-batch step)")
    fig.update_yaxes(title="mini-batch loss")
    return _finish(
        fig,
        "Training loss per iteration",
        "loss of each mini-batch at the weights the forward pass used, averaged over windows of iterations · "
        + BANDS[p.band],
        320,
    )


def _panels(
    p: _Plot,
    panels: list[tuple[str, str]],
    cols: int,
    *,
    dashed: dict[str, str] | None = None,
    scale: dict[str, float] | None = None,
) -> tuple[go.Figure, int, list[str]] | None:
    """One subplot per metric with data (``dashed`` maps a panel's metric to a second one drawn dashed);
    constant panels are left out. Returns the figure, its rows, and a note per constant panel."""
    dashed, scale = dashed or {}, scale or {}
    kept, notes = [], []
    for metric, title in panels:
        curves = [
            s[1] * scale.get(name, 1.0)
            for m in p.c.methods
            for name in (metric, dashed.get(metric))
            if name is not None and (s := m.epoch_stats(name))
        ]
        if not curves:
            continue
        if all(_constant(v) for v in curves):
            values = sorted({float(f"{v[0]:.4g}") for v in curves})
            shown = ", ".join(f"{v:g}" for v in values[:3]) + (", …" if len(values) > 3 else "")
            notes.append(f"{title} = {shown}")
            continue
        kept.append((metric, title))
    if not kept:
        return None
    rows = -(-len(kept) // cols)
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=[t for _, t in kept],
        horizontal_spacing=0.08,
        vertical_spacing=min(0.5 / rows, 0.12),
    )
    seen: set[str] = set()
    for k, (metric, _) in enumerate(kept):
        row, col = k // cols + 1, k % cols + 1
        log = metric in _LOG_SCALE
        if log:
            fig.update_yaxes(type="log", row=row, col=col)
        for i, m in enumerate(p.c.methods):
            for name, dash in ((metric, "solid"), (dashed.get(metric), "dash")):
                if name is not None and _epoch_curve(
                    fig,
                    p,
                    i,
                    m,
                    name,
                    scale=scale.get(name, 1.0),
                    dash=dash,
                    legend=m.label not in seen,
                    log=log,
                    row=row,
                    col=col,
                ):
                    seen.add(m.label)
    fig.update_xaxes(title=p.epoch_title, row=rows)
    return fig, rows, notes


def _subtitle(text: str, notes: list[str]) -> str:
    return text + (" · left out, constant over epochs: " + "; ".join(notes) if notes else "")


def test_metrics(p: _Plot) -> go.Figure | None:
    made = _panels(
        p,
        [("q_test_acc", "test accuracy (%)"), ("q_test_loss", "test loss")],
        2,
        dashed={"q_test_acc": "test_acc", "q_test_loss": "test_loss"},
        scale={"q_test_acc": 100.0, "test_acc": 100.0},
    )
    if made is None:
        return None
    fig, rows, notes = made
    return _finish(fig, "Test accuracy and loss", _subtitle(p.style, notes), 280 * rows)


def schedules(p: _Plot) -> go.Figure | None:
    made = _panels(p, [("lr", "learning rate γ (end of epoch)"), ("eps", "constraint level ε")], 2)
    if made is None:
        return None
    fig, rows, notes = made
    return _finish(
        fig,
        "Schedules",
        _subtitle("per epoch; ε only for methods with a constraint level", notes),
        280 * rows,
        log_y=True,
    )


def diagnostics(p: _Plot) -> go.Figure | None:
    names = set().union(set(), *(m.metric_names() for m in p.c.methods))
    panels = [(k, t) for k, t in DIAGNOSTICS if k in names]
    panels += [(k, f"{k} (optimizer)") for k in sorted(names - _BUILT_IN)]
    made = _panels(p, panels, 3)
    if made is None:
        return None
    fig, rows, notes = made
    return _finish(
        fig,
        "Optimization diagnostics",
        _subtitle(
            f"of the continuous weights w, per epoch (formulas: qnnlab.train.diagnostics) · {BANDS[p.band]}", notes
        ),
        230 * rows,
        log_y=None,
    )


def _fractions(m: MethodRuns) -> tuple[list[int], np.ndarray]:
    epochs, counts = m.histogram_frames()
    total = counts.sum(axis=1, keepdims=True)
    return epochs, counts / np.where(total > 0, total, 1)


def _centers(m: MethodRuns) -> np.ndarray:
    return (m.edges[:-1] + m.edges[1:]) / 2


def _histogram_grid(c: Comparison, **subplots) -> tuple[list[tuple[int, MethodRuns]], go.Figure, int, int] | None:
    """The methods with weight histograms, and a grid of up to 3 columns with a panel for each."""
    shown = [(i, m) for i, m in enumerate(c.methods) if m.edges is not None and m.hists and m.histogram_frames()[0]]
    if not shown:
        return None
    cols = min(3, len(shown))
    rows = -(-len(shown) // cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[m.label for _, m in shown], **subplots)
    return shown, fig, rows, cols


def weight_animation(p: _Plot) -> go.Figure | None:
    """Histogram of the continuous quantized weights per method, with a slider over the run."""
    if (grid := _histogram_grid(p.c, shared_xaxes=True)) is None:
        return None
    shown, fig, rows, cols = grid
    data = [(i, m, *_fractions(m)) for i, m in shown]
    if p.fraction:  # the same fraction of every run
        steps = [round(float(v), 3) for v in np.linspace(0, 1, MAX_FRAMES + 1)]
    else:
        last = max(e[-1] for *_, e, _ in data)
        steps = sorted({round(float(v)) for v in np.linspace(0, last, min(MAX_FRAMES, last + 1))})

    def bars(step: float) -> list[go.Bar]:
        out = []
        for i, m, epochs, frac in data:
            epoch = step * epochs[-1] if p.fraction else step
            k = max(int(np.searchsorted(epochs, min(epoch, epochs[-1]), side="right")) - 1, 0)
            out.append(
                go.Bar(
                    x=_centers(m),
                    y=frac[k],
                    name=m.label,
                    marker={"color": _color(i)},
                    hovertemplate=f"{m.label} (epoch {epochs[k]})<br>w ≈ %{{x:.3f}}: %{{y:.1%}}<extra></extra>",
                )
            )
        return out

    for k, bar in enumerate(bars(0)):
        fig.add_trace(bar, row=k // cols + 1, col=k % cols + 1)
    traces = list(range(len(data)))
    fig.frames = [go.Frame(data=bars(s), name=str(s), traces=traces) for s in steps]
    animate = {"frame": {"duration": 120, "redraw": True}, "mode": "immediate", "transition": {"duration": 0}}
    label = (lambda s: f"{s:.0%}") if p.fraction else str
    fig.update_layout(
        sliders=[
            {
                "currentvalue": {"prefix": "fraction of each run " if p.fraction else "epoch "},
                "pad": {"t": 50},
                "steps": [
                    {"label": label(s), "method": "animate", "args": [[str(s)], {**animate, "frame": {"duration": 0}}]}
                    for s in steps
                ],
            }
        ],
        bargap=0.05,
        showlegend=False,
    )
    fig.update_yaxes(tickformat=".0%", rangemode="tozero")
    fig.update_xaxes(title="w/s", row=rows)
    fig = _finish(
        fig,
        "Weight distribution per epoch",
        "fraction of the continuous quantized weights per bin (mean over seeds), w/s in units of each tensor's grid "
        "scale s (1 on ±1)",
        190 * rows + 90,
        toggles=False,
    )
    fig.update_layout(
        updatemenus=[
            {
                "type": "buttons",
                "direction": "right",
                "x": 1.0,
                "xanchor": "right",
                "y": _buttons_y(190 * rows + 90, True),
                "yanchor": "bottom",
                "buttons": [
                    {"label": "▶ play", "method": "animate", "args": [None, {**animate, "fromcurrent": True}]},
                    {"label": "❚❚ pause", "method": "animate", "args": [[None], {**animate, "frame": {"duration": 0}}]},
                ],
            }
        ]
    )
    return fig


def weight_heatmap(p: _Plot) -> go.Figure | None:
    """The same histograms as an image: epoch × weight value, colour = fraction of weights (0 = white)."""
    if (grid := _histogram_grid(p.c, horizontal_spacing=0.06)) is None:
        return None
    shown, fig, rows, cols = grid
    for k, (_, m) in enumerate(shown):
        epochs, frac = _fractions(m)
        x, _ = p.epoch_axis(m, np.asarray(epochs))
        fig.add_trace(
            go.Heatmap(
                x=x,
                y=_centers(m),
                z=frac.T,
                customdata=np.broadcast_to(np.asarray(epochs), frac.T.shape),
                coloraxis="coloraxis",
                hovertemplate="epoch %{customdata}<br>w ≈ %{y:.3f}: %{z:.1%}<extra></extra>",
            ),
            row=k // cols + 1,
            col=k % cols + 1,
        )
    fig.update_yaxes(title="w/s", col=1)
    fig.update_xaxes(title=p.epoch_title, row=rows)
    fig.update_layout(
        coloraxis={
            "colorscale": [[0.0, "#ffffff"], [0.02, "#deebf7"], [0.3, "#4292c6"], [1.0, "#08306b"]],
            "cmin": 0.0,
            "colorbar": {"title": {"text": "fraction"}, "tickformat": ".0%", "len": 0.9},
        }
    )
    return _finish(
        fig,
        "Weights migrating to the grid",
        "fraction of the continuous weights per bin and epoch (mean over seeds); white: none",
        210 * rows,
        toggles=False,
    )


# (key, function) in page order; the static export draws STATIC_FIGURES
FIGURES: list[tuple[str, Callable[[_Plot], go.Figure | None]]] = [
    ("loss_epoch", loss_vs_epoch),
    ("loss_iteration", loss_vs_iteration),
    ("test", test_metrics),
    ("schedules", schedules),
    ("diagnostics", diagnostics),
    ("weights", weight_animation),
    ("weights_heatmap", weight_heatmap),
]
STATIC_FIGURES = ["loss_epoch", "loss_iteration", "test", "schedules", "diagnostics", "weights_heatmap"]


def build_figures(c: Comparison, keys: list[str] | None = None, *, band: str = "se") -> dict[str, go.Figure]:
    """The figures of ``keys`` (default: all) that have data, in page order; ``band``: one of :data:`BANDS`."""
    if band not in BANDS:
        raise ValueError(f"Invalid band {band!r}; choose from: {', '.join(BANDS)}")
    lengths = [max((max(h) for h in m.histories if h), default=0) for m in c.methods]
    lengths = [v for v in lengths if v > 0]
    p = _Plot(c, band, bool(lengths) and max(lengths) > 2 * min(lengths))
    figures = {key: fn(p) for key, fn in FIGURES if keys is None or key in keys}
    return {key: fig for key, fig in figures.items() if fig is not None}


def static_version(fig: go.Figure) -> go.Figure:
    """A copy without buttons, sliders and frames, for PNG/PDF."""
    out = go.Figure(fig)
    out.frames = ()
    out.layout.updatemenus = ()
    out.layout.sliders = ()
    return out
