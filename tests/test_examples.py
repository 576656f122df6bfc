"""Every script in examples/ runs as a user would run it; a recorder-written store renders in headless Chromium."""

import re
import runpy
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from browser import chromium
from qnnlab.cli import app
from qnnlab.store import RunStore

EXAMPLES = Path(__file__).parents[1] / "examples"
pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.slow]


def run_example(name: str, results: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", [str(EXAMPLES / name), str(results)])
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")


def test_own_model_trains_three_methods_and_reports(tmp_path: Path, monkeypatch, capsys) -> None:
    run_example("own_model.py", tmp_path, monkeypatch)
    out = capsys.readouterr().out
    assert [line.split(":")[0].strip() for line in out.splitlines()[:3]] == [
        "full precision",
        "binaryconnect",
        "askewsgd",
    ]
    assert (tmp_path / "own-model.html").stat().st_size > 100_000
    with RunStore(tmp_path) as store:
        assert [(r["label"], r["status"]) for r in store.runs("own-model")] == [
            ("full precision", "done"),
            ("binaryconnect", "done"),
            ("askewsgd", "done"),
        ]


def test_own_loop_records_a_store_the_report_renders(tmp_path: Path, monkeypatch, capsys) -> None:
    run_example("own_loop.py", tmp_path, monkeypatch)
    assert re.match(r"test accuracy at Q\(w\) \d+\.\d%, of w \d+\.\d%", capsys.readouterr().out)
    qnnlab_lines = [ln for ln in (EXAMPLES / "own_loop.py").read_text().splitlines() if "# qnnlab" in ln]
    assert len(qnnlab_lines) <= 15
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 0, result.output
    dom, console = chromium((tmp_path / "own-loop.html").as_uri(), tmp_path / "profile", "--dump-dom")
    assert console == []  # no JavaScript error, nor any other console message
    figures = dom.split('id="fig-')[1:]
    assert figures and all('class="main-svg"' in f for f in figures)  # plotly drew every figure
    with RunStore(tmp_path) as store:
        (run,) = store.runs("own-loop")
        assert sorted(store.history(run["id"])) == list(range(11))


@pytest.mark.filterwarnings("ignore:.*LeafSpec")
def test_lightning_callback(tmp_path: Path, monkeypatch, capsys) -> None:
    pytest.importorskip("lightning", reason="the lightning extra (in dev)")
    run_example("lightning_callback.py", tmp_path, monkeypatch)
    assert re.search(r"validation accuracy at Q\(w\) \d+\.\d%", capsys.readouterr().out)
    with RunStore(tmp_path) as store:
        (run,) = store.runs("lightning")
        assert run["status"] == "done" and sorted(store.history(run["id"])) == list(range(9))


def test_regression(tmp_path: Path, monkeypatch, capsys) -> None:
    run_example("regression.py", tmp_path, monkeypatch)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all("above the binary optimum" in line for line in lines)
    with RunStore(tmp_path) as store:
        assert all(r["summary"]["gap"] >= -1e-12 for r in store.runs("regression"))


def test_the_readme_snippet_runs_as_printed(tmp_path: Path, monkeypatch, capsys) -> None:
    readme = (EXAMPLES.parent / "README.md").read_text().split("## Your own model")[1]
    code = readme.split("```python\n")[1].split("```")[0]
    assert len(code.strip().splitlines()) <= 10
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    images = (x / 16).reshape(-1, 1, 8, 8)
    net = runpy.run_path(str(EXAMPLES / "own_model.py"))["conv_net"]()
    monkeypatch.chdir(tmp_path)
    exec(code, {"x_train": images[:1500], "y_train": y[:1500], "x_test": images[1500:], "y_test": y[1500:], "net": net})
    assert 0.5 < float(capsys.readouterr().out) <= 1.0
    assert (tmp_path / "results" / "qnnlab.sqlite").exists()
