"""The report's figures and tables on small synthetic comparisons: bands, axes, left-out panels, layout."""

import itertools
import math
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from qnnlab.cli import app
from qnnlab.report.data import Comparison, MethodRuns, load_comparison
from qnnlab.report.figures import PALETTE, build_figures
from qnnlab.report.html import pairwise_tables, render_html, results_table
from qnnlab.report.static import write_static
from qnnlab.store import RunStore


def _lab(hex_color: str) -> np.ndarray:
    """sRGB (D65) → CIELAB."""
    rgb = np.array([int(hex_color[i : i + 2], 16) for i in (1, 3, 5)]) / 255
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ lin
    t = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(t > (6 / 29) ** 3, np.cbrt(t), t / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def _ciede2000(lab1, lab2) -> float:
    """ΔE₀₀ (Sharma, Wu & Dalal, Color Res. Appl. 30, 2005), the perceptual colour difference."""
    (l1, a1, b1), (l2, a2, b2) = lab1, lab2
    c_bar = (math.hypot(a1, b1) + math.hypot(a2, b2)) / 2
    g = 0.5 * (1 - math.sqrt(c_bar**7 / (c_bar**7 + 25**7)))
    a1, a2 = (1 + g) * a1, (1 + g) * a2
    c1, c2 = math.hypot(a1, b1), math.hypot(a2, b2)
    h1, h2 = math.degrees(math.atan2(b1, a1)) % 360, math.degrees(math.atan2(b2, a2)) % 360
    dh = 0.0 if c1 * c2 == 0 else (h2 - h1 + 180) % 360 - 180
    d_l, d_c, d_h = l2 - l1, c2 - c1, 2 * math.sqrt(c1 * c2) * math.sin(math.radians(dh / 2))
    l_bar, c_bar = (l1 + l2) / 2, (c1 + c2) / 2
    h_bar = h1 + h2 if c1 * c2 == 0 else (h1 + h2) / 2 + (180 if abs(h1 - h2) > 180 else 0)
    t = (
        1
        - 0.17 * math.cos(math.radians(h_bar - 30))
        + 0.24 * math.cos(math.radians(2 * h_bar))
        + 0.32 * math.cos(math.radians(3 * h_bar + 6))
        - 0.20 * math.cos(math.radians(4 * h_bar - 63))
    )
    s_l = 1 + 0.015 * (l_bar - 50) ** 2 / math.sqrt(20 + (l_bar - 50) ** 2)
    s_c, s_h = 1 + 0.045 * c_bar, 1 + 0.015 * c_bar * t
    r_t = (
        -math.sin(math.radians(60 * math.exp(-(((h_bar - 275) / 25) ** 2))))
        * 2
        * math.sqrt(c_bar**7 / (c_bar**7 + 25**7))
    )
    return math.sqrt((d_l / s_l) ** 2 + (d_c / s_c) ** 2 + (d_h / s_h) ** 2 + r_t * (d_c / s_c) * (d_h / s_h))


def test_at_least_12_distinguishable_colours() -> None:
    # the formula against Sharma et al.'s published pairs
    assert _ciede2000((50, 2.6772, -79.7751), (50, 0, -82.7485)) == pytest.approx(2.0425, abs=1e-4)
    assert _ciede2000((50, -1.3802, -84.2814), (50, 0, -82.7485)) == pytest.approx(1.0000, abs=1e-4)
    assert _ciede2000((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387)) == pytest.approx(1.2644, abs=1e-4)
    labs = [_lab(c) for c in PALETTE]
    pairs = lambda n: (_ciede2000(a, b) for a, b in itertools.combinations(labs[:n], 2))  # noqa: E731
    assert len(PALETTE) == 24 and min(pairs(12)) >= 20 and min(pairs(24)) >= 15
    assert max(lab[0] for lab in labs) <= 68  # every colour reads on a white page


def _method(label: str, per_seed: list[dict[int, dict[str, float]]], **summary: float) -> MethodRuns:
    runs = [
        {"id": k, "seed": k, "data_seed": 0, "summary": dict(summary), "config": {"label": label}, "versions": {}}
        for k in range(len(per_seed))
    ]
    return MethodRuns(label, runs=runs, histories=per_seed, batch_losses=[np.array([])] * len(per_seed))


def _comparison(*methods: MethodRuns) -> Comparison:
    return Comparison("synthetic", list(methods), skipped=0)


def test_bands_are_a_standard_error_by_default_a_std_or_none() -> None:
    # two seeds at 1 and 3 every epoch: mean 2, std √2, standard error √2/√2 = 1
    m = _method("a", [{e: {"q_train_loss": 1.0} for e in range(3)}, {e: {"q_train_loss": 3.0} for e in range(3)}])
    for band, half in (("se", 1.0), ("std", math.sqrt(2))):
        fig = build_figures(_comparison(m), ["loss_epoch"], band=band)["loss_epoch"]
        (poly,) = [t for t in fig.data if t.fill == "toself"]
        ys = [y for y in poly.y if y is not None]
        assert ys == pytest.approx([2 + half] * 3 + [2 - half] * 3)
        assert ("standard error" if band == "se" else "±1 std") in fig.layout.title.subtitle.text
    fig = build_figures(_comparison(m), ["loss_epoch"], band="none")["loss_epoch"]
    assert [t.fill for t in fig.data] == [None] and "no bands" in fig.layout.title.subtitle.text
    with pytest.raises(ValueError, match="Invalid band 'iqr'; choose from: se, std, none"):
        build_figures(_comparison(m), band="iqr")


def test_constant_panels_are_left_out_and_named() -> None:
    history = {e: {"stationarity": 0.1 / (e + 1), "beta": 100.0, "lr": 0.5, "eps": 1.0 / (e + 1)} for e in range(4)}
    figures = build_figures(_comparison(_method("pd", [history])), ["diagnostics", "schedules"])
    diag = figures["diagnostics"]
    assert [a.text for a in diag.layout.annotations] == ["stationarity r_γ(w)"]
    assert diag.layout.title.subtitle.text.endswith("left out, constant over epochs: beta (optimizer) = 100")
    schedules = figures["schedules"]
    assert [a.text for a in schedules.layout.annotations] == ["constraint level ε"]
    assert "learning rate γ (end of epoch) = 0.5" in schedules.layout.title.subtitle.text


def test_runs_of_different_lengths_share_a_fraction_axis() -> None:
    short = _method("short", [{e: {"q_train_loss": 1.0 / (e + 1)} for e in range(6)}])  # epochs 0..5
    long = _method("long", [{e: {"q_train_loss": 1.0 / (e + 1)} for e in range(31)}])  # epochs 0..30
    fig = build_figures(_comparison(short, long), ["loss_epoch"])["loss_epoch"]
    a, b = fig.data
    assert list(a.x) == pytest.approx(np.arange(6) / 5) and list(a.customdata) == list(range(6))
    assert list(b.x) == pytest.approx(np.arange(31) / 30) and fig.layout.xaxis.title.text.startswith("fraction")
    same = build_figures(_comparison(short, _method("also 5", short.histories)), ["loss_epoch"])["loss_epoch"]
    assert list(same.data[0].x) == list(range(6)) and same.layout.xaxis.title.text == "epoch"


def test_log_panels_have_gaps_not_streaks_and_few_ticks() -> None:
    # a violation at 0 for two epochs, then spread over seeds; it spans 1e-1 .. 1e-5
    seeds = [
        {e: {"violation_max": v} for e, v in enumerate([0.0, 0.0, 1e-1, 1e-3, 1e-5])},
        {e: {"violation_max": v} for e, v in enumerate([0.0, 0.0, 1e-1, 0.0, 1e-5])},
    ]
    fig = build_figures(_comparison(_method("a", seeds)), ["diagnostics"])["diagnostics"]
    band, line = fig.data
    assert np.isnan(line.y[:2]).all() and line.y[2:] == pytest.approx([1e-1, 5e-4, 1e-5])
    # epoch 3: mean − se = 5e-4 − 5e-4 = 0, clipped to a tenth of the mean
    lower = [y for y in band.y if y is not None][3:][::-1]
    assert lower == pytest.approx([1e-1, 5e-5, 1e-5])
    axis = fig.layout.yaxis
    assert axis.type == "log" and axis.dtick == 1 and axis.range[0] < -5 < -1 < axis.range[1] < -0.5


def test_layout_buttons_above_panel_titles_and_a_full_legend_below() -> None:
    methods = [
        _method(
            f"method number {i}", [{e: {"q_test_acc": 0.5 + e / 10, "q_test_loss": 1.0 / (e + 1)} for e in range(3)}]
        )
        for i in range(12)
    ]
    fig = build_figures(_comparison(*methods), ["test"])["test"]
    plot_height = fig.layout.height - fig.layout.margin.t - fig.layout.margin.b
    for menu in fig.layout.updatemenus:  # their bottom is 32 px above the plot, the panel titles' line below
        assert menu.yanchor == "bottom" and (menu.y - 1) * plot_height == pytest.approx(32)
    legend = fig.layout.legend
    assert legend.orientation == "h" and legend.yref == "container" and legend.maxheight == 1.0
    few = build_figures(_comparison(*methods[:2]), ["test"])["test"]
    assert fig.layout.margin.b > few.layout.margin.b  # more legend rows, more room


def _store_with_a_subset(path: Path, metrics: list[str]) -> None:
    with RunStore(path) as store:
        for label in ("a", "b"):
            for seed in range(6):
                cfg = {"label": label, "seed": seed, "method": {"name": "sgd"}, "data": {"seed": 0}}
                run = store.start_run(cfg, comparison="own", versions={"torch": "x"})
                for epoch in range(3):
                    store.log_epoch(run, epoch, {m: 1.0 / (epoch + 1) + (label == "b") + seed for m in metrics})
                store.finish_run(run, {m: 0.1 + (label == "b") + seed for m in metrics})


@pytest.mark.parametrize(("metrics", "figures"), [(["train_loss"], ["loss_epoch"]), ([], [])])
def test_any_subset_of_metrics_reports_without_error(tmp_path: Path, metrics, figures) -> None:
    _store_with_a_subset(tmp_path, metrics)
    c = load_comparison(tmp_path)
    assert list(build_figures(c)) == figures
    page = render_html(c)
    assert page.count('class="figure"') == len(figures)
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 0, result.output
    if metrics:  # a column, a significant winner (a beats b on all 6 pairs), and its pairwise table
        assert "<b title=" in results_table(c) and 'class="win"' in pairwise_tables(c)
        assert [p.name for p in write_static(c, tmp_path / "png", "png")] == ["loss_epoch.png"]
    else:
        assert pairwise_tables(c) == "" and write_static(c, tmp_path / "png", "png") == []


def test_results_table_marks_only_significant_bests() -> None:
    def runs(label: str, values: list[float], **extra: float) -> MethodRuns:
        m = _method(label, [{0: {}}] * len(values))
        for r, v in zip(m.runs, values, strict=True):
            r["summary"] = {"q_train_loss": v, **extra}
        return m

    five = _comparison(runs("a", [0.1, 0.2, 0.3, 0.4, 0.5]), runs("b*", [0.2, 0.3, 0.4, 0.5, 0.6]))
    table = results_table(five)
    assert re.findall(r"<b title=\"([^\"]*)\">(.*?)</b>", table) == [
        ("vs b*: 5 wins, 0 ties, 0 losses; one-sided sign test p = 0.0312", "0.3000 <small>± 0.1581</small>")
    ]
    assert "`*`: not tuned" in render_html(five)
    four = _comparison(runs("a", [0.1, 0.2, 0.3, 0.4]), runs("b", [0.2, 0.3, 0.4, 0.5]))
    assert "<b" not in results_table(four)  # 4 of 4 pairs: p = 1/16, not below 0.05
    for m in five.methods:  # a user's own data: no data seed; runs still pair by training seed
        for r in m.runs:
            r["data_seed"] = None
    assert "<b title=" in results_table(five) and "on the same data" in render_html(five)
