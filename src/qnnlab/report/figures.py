"""The report's figures: one plotly figure per function, each drawn from a :class:`Comparison`.

Every curve is the mean over seeds with a ±1 standard-deviation band; a method keeps its
colour in every figure; quantized weights ``Q(w)`` are solid lines and continuous weights
``w`` dashed. Line figures carry buttons that switch either axis between linear and log.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import plotly.graph_objects as go
from plotly.colors import hex_to_rgb, qualitative
from plotly.subplots import make_subplots

from qnnlab.report.data import Comparison, MethodRuns

__all__ = ["DIAGNOSTICS", "FIGURES", "STATIC_FIGURES", "build_figures", "static_version"]

PALETTE = qualitative.Plotly
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
_LOG_SCALE = {"stationarity", "violation_max", "violation_mean", "grid_dist", "quant_error"}
_BUILT_IN = {
    *(f"{p}{s}_{m}" for p in ("", "q_") for s in ("train", "val", "test") for m in ("loss", "acc")),
    *(name for name, _ in DIAGNOSTICS),
    "lr",
    "eps",
}
_STYLE = "solid: quantized weights Q(w) · dashed: continuous weights w · bands: ±1 std over seeds"


def _color(i: int, alpha: float | None = None) -> str:
    hex_color = PALETTE[i % len(PALETTE)]
    if alpha is None:
        return hex_color
    r, g, b = hex_to_rgb(hex_color)
    return f"rgba({r},{g},{b},{alpha})"


def _curve(
    fig: go.Figure,
    i: int,
    m: MethodRuns,
    x: np.ndarray,
    mean: np.ndarray,
    std: np.ndarray,
    *,
    dash: str = "solid",
    legend: bool = True,
    row: int | None = None,
    col: int | None = None,
) -> None:
    """A mean line and its ±1 std band (the band is left out when every std is 0)."""
    where = {"row": row, "col": col} if row is not None else {}
    if np.any(std > 0):
        fig.add_trace(
            go.Scatter(
                x=np.concatenate([x, x[::-1]]),
                y=np.concatenate([mean + std, (mean - std)[::-1]]),
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
    fig.add_trace(
        go.Scatter(
            x=x,
            y=mean,
            mode="lines",
            name=m.label,
            legendgroup=m.label,
            showlegend=legend,
            line={"color": _color(i), "dash": dash, "width": 2},
            hovertemplate=f"{m.label}<br>%{{x}}: %{{y:.5g}}<extra></extra>",
        ),
        **where,
    )


def _axis_toggles(fig: go.Figure, *, x: bool = True, y: bool = True, log_y: bool | None = False) -> None:
    """Buttons that switch every x (or y) axis between linear and log scale (``log_y=None``: mixed)."""
    menus = []
    for letter, wanted, initial in (("y", y, log_y), ("x", x, False)):
        if not wanted:
            continue
        axes = [a.plotly_name for a in (fig.select_yaxes() if letter == "y" else fig.select_xaxes())]
        buttons = [
            {"label": f"{scale} {letter}", "method": "relayout", "args": [{f"{a}.type": scale for a in axes}]}
            for scale in ("linear", "log")
        ]
        menus.append(
            {
                "type": "buttons",
                "direction": "right",
                "buttons": buttons,
                "active": -1 if initial is None else int(initial),
                "x": 1.0 if letter == "y" else 0.8,
                "xanchor": "right",
                "y": 1.02,
                "yanchor": "bottom",
                "pad": {"t": 0, "b": 4},
                "font": {"size": 11},
            }
        )
        if initial:
            fig.update_yaxes(type="log") if letter == "y" else fig.update_xaxes(type="log")
    fig.update_layout(updatemenus=menus)


def _layout(fig: go.Figure, title: str, subtitle: str = "", height: int = 420) -> go.Figure:
    fig.update_layout(
        title={"text": title, "subtitle": {"text": subtitle}, "x": 0.0, "xanchor": "left", "xref": "paper"},
        template="plotly_white",
        height=height,
        margin={"t": 100, "l": 60, "r": 20, "b": 50},
        legend={"groupclick": "togglegroup"},
        hovermode="closest",
    )
    return fig


def loss_vs_epoch(c: Comparison) -> go.Figure:
    fig = go.Figure()
    for i, m in enumerate(c.methods):
        for metric, dash in (("q_train_loss", "solid"), ("train_loss", "dash")):
            if stats := m.epoch_stats(metric):
                _curve(fig, i, m, *stats, dash=dash, legend=dash == "solid")
    if c.optimum is not None:
        fig.add_hline(
            y=c.optimum,
            line={"color": "black", "width": 1, "dash": "dot"},
            annotation_text="certified binary optimum",
            annotation_position="top right",
        )
    fig.update_xaxes(title="epoch")
    fig.update_yaxes(title="training loss f")
    _axis_toggles(fig)
    return _layout(fig, "Training loss per epoch", _STYLE)


def loss_vs_iteration(c: Comparison) -> go.Figure:
    fig = go.Figure()
    for i, m in enumerate(c.methods):
        if all(len(b) for b in m.batch_losses):
            _curve(fig, i, m, *m.iteration_stats())
    fig.update_xaxes(title="iteration (mini-batch step)")
    fig.update_yaxes(title="mini-batch loss")
    _axis_toggles(fig)
    return _layout(
        fig,
        "Training loss per iteration",
        "loss of each mini-batch at the weights the forward pass used, averaged over windows of iterations",
    )


def _panels(
    c: Comparison, panels: list[tuple[str, str]], cols: int, *, dashed: dict[str, str] | None = None, scale=None
) -> go.Figure:
    """One subplot per metric; ``dashed`` maps a panel's metric to a second metric drawn dashed."""
    rows = -(-len(panels) // cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[t for _, t in panels], horizontal_spacing=0.08)
    seen: set[str] = set()
    for k, (metric, _) in enumerate(panels):
        row, col = k // cols + 1, k % cols + 1
        for i, m in enumerate(c.methods):
            for name, dash in ((metric, "solid"), ((dashed or {}).get(metric), "dash")):
                if name is None or not (stats := m.epoch_stats(name)):
                    continue
                x, mean, std = stats
                f = (scale or {}).get(name, 1.0)
                _curve(fig, i, m, x, mean * f, std * f, dash=dash, legend=m.label not in seen, row=row, col=col)
                seen.add(m.label)
    fig.update_xaxes(title="epoch")
    return fig


def test_metrics(c: Comparison) -> go.Figure:
    panels = [("q_test_acc", "test accuracy (%)"), ("q_test_loss", "test loss")]
    fig = _panels(
        c,
        panels,
        2,
        dashed={"q_test_acc": "test_acc", "q_test_loss": "test_loss"},
        scale={"q_test_acc": 100.0, "test_acc": 100.0},
    )
    _axis_toggles(fig)
    return _layout(fig, "Test accuracy and loss", _STYLE)


def schedules(c: Comparison) -> go.Figure:
    fig = _panels(c, [("lr", "learning rate γ (end of epoch)"), ("eps", "constraint level ε")], 2)
    _axis_toggles(fig, log_y=True)
    return _layout(fig, "Schedules", "per epoch; ε only for methods with a constraint level")


def diagnostics(c: Comparison) -> go.Figure:
    names = set().union(*(m.metric_names() for m in c.methods))
    panels = [(k, t) for k, t in DIAGNOSTICS if k in names]
    panels += [(k, f"{k} (optimizer)") for k in sorted(names - _BUILT_IN)]
    fig = _panels(c, panels, 3)
    for k, (metric, _) in enumerate(panels):
        if metric in _LOG_SCALE:
            fig.update_yaxes(type="log", row=k // 3 + 1, col=k % 3 + 1)
    _axis_toggles(fig, log_y=None)
    rows = -(-len(panels) // 3)
    return _layout(
        fig,
        "Optimization diagnostics",
        "of the continuous weights w, per epoch (see qnnlab.train.diagnostics for the formulas)",
        height=120 + 260 * rows,
    )


def _fractions(m: MethodRuns) -> tuple[list[int], np.ndarray]:
    epochs, counts = m.histogram_frames()
    total = counts.sum(axis=1, keepdims=True)
    return epochs, counts / np.where(total > 0, total, 1)


def _centers(m: MethodRuns) -> np.ndarray:
    return (m.edges[:-1] + m.edges[1:]) / 2


def _with_histograms(c: Comparison) -> list[tuple[int, MethodRuns]]:
    return [(i, m) for i, m in enumerate(c.methods) if m.edges is not None and m.histogram_frames()[0]]


def weight_animation(c: Comparison) -> go.Figure:
    """Histogram of the continuous quantized weights per method, with an epoch slider."""
    shown = _with_histograms(c)
    fig = make_subplots(rows=max(len(shown), 1), cols=1, shared_xaxes=True, subplot_titles=[m.label for _, m in shown])
    data = [(i, m, *_fractions(m)) for i, m in shown]
    last = max((e[-1] for *_, e, _ in data), default=0)
    steps = sorted({round(float(v)) for v in np.linspace(0, last, min(MAX_FRAMES, last + 1))})

    def bars(epoch: int) -> list[go.Bar]:
        out = []
        for i, m, epochs, frac in data:
            k = int(np.searchsorted(epochs, min(epoch, epochs[-1]), side="right")) - 1
            out.append(
                go.Bar(
                    x=_centers(m),
                    y=frac[max(k, 0)],
                    name=m.label,
                    marker={"color": _color(i)},
                    hovertemplate=f"{m.label} (epoch {epochs[max(k, 0)]})<br>w ≈ %{{x:.3f}}: %{{y:.1%}}<extra></extra>",
                )
            )
        return out

    for r, bar in enumerate(bars(0), start=1):
        fig.add_trace(bar, row=r, col=1)
    traces = list(range(len(data)))
    fig.frames = [go.Frame(data=bars(e), name=str(e), traces=traces) for e in steps]
    animate = {"frame": {"duration": 120, "redraw": True}, "mode": "immediate", "transition": {"duration": 0}}
    fig.update_layout(
        sliders=[
            {
                "currentvalue": {"prefix": "epoch "},
                "pad": {"t": 40},
                "steps": [
                    {"label": str(e), "method": "animate", "args": [[str(e)], {**animate, "frame": {"duration": 0}}]}
                    for e in steps
                ],
            }
        ],
        updatemenus=[
            {
                "type": "buttons",
                "direction": "right",
                "x": 1.0,
                "xanchor": "right",
                "y": 1.02,
                "yanchor": "bottom",
                "buttons": [
                    {"label": "▶ play", "method": "animate", "args": [None, {**animate, "fromcurrent": True}]},
                    {"label": "❚❚ pause", "method": "animate", "args": [[None], {**animate, "frame": {"duration": 0}}]},
                ],
            }
        ],
        bargap=0.05,
        showlegend=False,
    )
    fig.update_yaxes(tickformat=".0%", rangemode="tozero")
    fig.update_xaxes(title="continuous weight w/s (s: its tensor's grid scale, 1 on ±1)", row=len(shown), col=1)
    return _layout(
        fig,
        "Weight distribution per epoch",
        "fraction of the continuous quantized weights per bin (mean over seeds); bins centred on the levels",
        height=170 + 170 * max(len(shown), 1),
    )


def weight_heatmap(c: Comparison) -> go.Figure:
    """The same histograms as an image: epoch × weight value, colour = fraction of weights."""
    shown = _with_histograms(c)
    fig = make_subplots(
        rows=max(len(shown), 1), cols=1, subplot_titles=[m.label for _, m in shown], vertical_spacing=0.06
    )
    for r, (_, m) in enumerate(shown, start=1):
        epochs, frac = _fractions(m)
        fig.add_trace(
            go.Heatmap(
                x=epochs,
                y=_centers(m),
                z=frac.T,
                coloraxis="coloraxis",
                hovertemplate="epoch %{x}<br>w ≈ %{y:.3f}: %{z:.1%}<extra></extra>",
            ),
            row=r,
            col=1,
        )
        fig.update_yaxes(title="w/s", row=r, col=1)
    fig.update_layout(coloraxis={"colorscale": "Viridis", "colorbar": {"title": "fraction", "tickformat": ".0%"}})
    fig.update_xaxes(title="epoch", row=len(shown), col=1)
    return _layout(
        fig,
        "Weights migrating to the grid",
        "fraction of the continuous weights per bin and epoch (mean over seeds)",
        height=140 + 170 * max(len(shown), 1),
    )


# (key, function) in page order; the static export draws STATIC_FIGURES
FIGURES: list[tuple[str, Callable[[Comparison], go.Figure]]] = [
    ("loss_epoch", loss_vs_epoch),
    ("loss_iteration", loss_vs_iteration),
    ("test", test_metrics),
    ("schedules", schedules),
    ("diagnostics", diagnostics),
    ("weights", weight_animation),
    ("weights_heatmap", weight_heatmap),
]
STATIC_FIGURES = ["loss_epoch", "loss_iteration", "test", "schedules", "diagnostics", "weights_heatmap"]


def build_figures(c: Comparison, keys: list[str] | None = None) -> dict[str, go.Figure]:
    return {key: fn(c) for key, fn in FIGURES if keys is None or key in keys}


def static_version(fig: go.Figure) -> go.Figure:
    """A copy without buttons, sliders and frames, for PNG/PDF."""
    out = go.Figure(fig)
    out.frames = ()
    out.layout.updatemenus = ()
    out.layout.sliders = ()
    return out
