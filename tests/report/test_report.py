"""``qnnlab report``: from a real comparison run to an HTML page rendered by headless Chromium."""

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from browser import chromium
from qnnlab.cli import app
from qnnlab.experiments.presets import preset_runs
from qnnlab.report.data import load_comparison
from qnnlab.report.figures import FIGURES, STATIC_FIGURES, build_figures
from qnnlab.store import RunStore

runner = CliRunner()


N_METHODS = len(preset_runs("logistic", 1))  # one row per method variant of the preset


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``qnnlab compare logistic --seeds 2`` (every method, the real preset), then ``qnnlab report``."""
    out = tmp_path_factory.mktemp("results")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the one_thread fixture (which is function-scoped)
    try:
        result = runner.invoke(app, ["compare", "logistic", "--seeds", "2", "-o", str(out), "-q"])
    finally:
        torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["report", str(out)])
    assert result.exit_code == 0, result.output
    assert str(out / "logistic.html") in result.output
    return out


def test_the_report_renders_in_headless_chromium(results: Path, tmp_path: Path) -> None:
    page = results / "logistic.html"
    text = page.read_text()
    assert not re.search(r"<script[^>]*\bsrc=", text)  # plotly.js is inlined: it opens offline
    dom, console = chromium(page.as_uri(), tmp_path / "profile", "--dump-dom")
    assert console == []  # no JavaScript error (nor any other console message)
    chunks = dom.split('id="fig-')[1:]
    assert [c.split('"')[0] for c in chunks] == [key for key, _ in FIGURES]
    for chunk in chunks:
        assert 'class="main-svg"' in chunk  # plotly drew it
    rendered = dict(zip((key for key, _ in FIGURES), chunks, strict=True))
    for key in ("loss_epoch", "loss_iteration", "test", "schedules", "diagnostics"):
        assert len(re.findall(r'class="trace scatter', rendered[key])) >= N_METHODS, key
    for key in ("loss_epoch", "loss_iteration", "test", "schedules", "diagnostics"):
        # every method in the legend, and no scrolling legend (plotly draws a scroll bar when entries overflow)
        assert len(re.findall(r'class="legendtext"', rendered[key])) == N_METHODS, key
        assert not re.search(r'<rect class="scrollbar"[^>]*\bheight="(?!0")', rendered[key]), key
    assert len(re.findall(r'class="point"', rendered["weights"])) >= N_METHODS * 61  # a bar per bin per method
    assert 'class="slider-container"' in rendered["weights"]
    assert len(re.findall(r"<image ", rendered["weights_heatmap"])) == N_METHODS  # one heatmap per method
    assert 'class="scroll"><table class="results"' in dom  # a wide table scrolls inside the page
    assert 'class="pairwise"' in dom and "sign test" in dom

    shot = tmp_path / "report.png"
    chromium(page.as_uri(), tmp_path / "profile2", f"--screenshot={shot}", "--window-size=1280,3000")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 100_000  # a blank page is a few kB


def test_the_console_check_sees_javascript_errors(tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    page.write_text("<html><body><script>notAFunction();</script></body></html>")
    _, console = chromium(page.as_uri(), tmp_path / "profile", "--dump-dom")
    assert any("Uncaught ReferenceError: notAFunction is not defined" in line for line in console)


def test_static_figures_for_papers(results: Path) -> None:
    result = runner.invoke(app, ["report", str(results), "--format", "png", "--format", "pdf"])
    assert result.exit_code == 0, result.output
    for key in STATIC_FIGURES:
        png, pdf = (results / "logistic-figures" / f"{key}.{ext}" for ext in ("png", "pdf"))
        assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 20_000
        assert pdf.read_bytes()[:5] == b"%PDF-"
    assert not (results / "logistic.html").with_name("logistic-figures").joinpath("weights.png").exists()


def test_the_figures_show_the_stored_numbers(results: Path) -> None:
    c = load_comparison(results)
    assert c.name == "logistic" and c.skipped == 0 and [m.seeds for m in c.methods] == [[0, 1]] * N_METHODS
    askew = next(m for m in c.methods if m.label == "askewsgd")
    with RunStore(results) as store:
        histories = [store.history(r["id"]) for r in askew.runs]
        batches = [store.series(r["id"], "batch_loss") for r in c.methods[0].runs]
    figures = build_figures(c, ["loss_epoch", "loss_iteration"])
    line = next(t for t in figures["loss_epoch"].data if t.name == "askewsgd" and t.line.dash == "solid")
    expected = np.mean([[h[e]["q_train_loss"] for e in sorted(h)] for h in histories], axis=0)
    assert np.allclose(line.y, expected, rtol=1e-12) and list(line.customdata) == list(range(51))
    # runs of 50 and 300 epochs: x is the fraction of each run, the hover keeps the epoch
    assert np.allclose(line.x, np.arange(51) / 50)
    # full-batch GD: one step per epoch, 300 iterations, fewer than the window cap: shown one by one
    gd = next(t for t in figures["loss_iteration"].data if t.name == "gd (full batch)" and t.mode == "lines")
    per_seed = [[x for e in sorted(b) for x in b[e]] for b in batches]
    assert list(gd.customdata) == list(range(1, 301)) and np.allclose(gd.y, np.mean(per_seed, axis=0))
    assert np.allclose(gd.x, np.arange(1, 301) / 300)


def test_only_the_latest_finished_run_of_each_seed_counts(tmp_path: Path) -> None:
    def config(label: str, seed: int) -> dict:
        return {"label": label, "seed": seed, "method": {"name": "sgd"}, "data": {"seed": 0}}

    with RunStore(tmp_path) as store:
        for label, seed, status, loss in [
            ("a", 0, "done", 1.0),
            ("a", 0, "done", 2.0),  # the same comparison run again: this one counts
            ("a", 1, "failed", 9.0),
            ("b", 0, "done", 3.0),
        ]:
            run = store.start_run(config(label, seed), comparison="cmp", versions={})
            store.log_epoch(run, 0, {"q_train_loss": loss})
            store.finish_run(run, {"q_train_loss": loss}, status=status)
        store.finish_run(store.start_run(config("z", 0), comparison="other", versions={}), {})
    c = load_comparison(tmp_path, "cmp")
    assert [(m.label, m.seeds) for m in c.methods] == [("a", [0]), ("b", [0])]
    assert c.methods[0].epoch_stats("q_train_loss")[1].tolist() == [2.0] and c.skipped == 2
    assert load_comparison(tmp_path).name == "other"  # default: the comparison run last
    with pytest.raises(ValueError, match="unknown comparison 'x'; choose from: cmp, other"):
        load_comparison(tmp_path, "x")


def test_report_errors_name_the_problem(tmp_path: Path) -> None:
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "no run store in" in result.output
    assert not (tmp_path / "qnnlab.sqlite").exists()  # reading never creates a store
    result = runner.invoke(app, ["report", str(tmp_path), "--format", "svg"])
    assert result.exit_code == 2 and "Invalid format 'svg'; choose from: html, png, pdf" in result.output
    result = runner.invoke(app, ["report", str(tmp_path), "--band", "iqr"])
    assert result.exit_code == 2 and "Invalid band 'iqr'; choose from: se, std, none" in result.output
