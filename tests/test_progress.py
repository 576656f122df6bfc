"""Progress bars: runs, seeds, methods and epochs with ETAs on a terminal; nothing of them elsewhere."""

import io
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from rich.progress import Progress

from qnnlab import cli
from qnnlab.config import validate_config

CONFIG = """
epochs = 40
batch_size = 50
[data]
name = "logistic"
n_train = 2000
n_test = 200
[method]
name = "askewsgd"
eps = { hold = 1 }
"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "NO_COLOR")}
    src = str(Path(__file__).resolve().parents[1] / "src")
    return env | {"PYTHONPATH": src, "TERM": "xterm-256color", "COLUMNS": "120", "OMP_NUM_THREADS": "1", **extra}


def _run_on_a_terminal(args: list[str], env: dict[str, str]) -> str:
    """Run ``args`` with stdin, stdout and stderr on a pseudo-terminal; return everything it wrote."""
    main, sub = pty.openpty()
    proc = subprocess.Popen(args, stdin=sub, stdout=sub, stderr=sub, env=env)
    os.close(sub)
    chunks = []
    while True:
        try:
            data = os.read(main, 1 << 16)
        except OSError:  # EIO: the terminal closed
            break
        if not data:
            break
        chunks.append(data)
    os.close(main)
    assert proc.wait(timeout=300) == 0, b"".join(chunks).decode(errors="replace")[-2000:]
    return b"".join(chunks).decode(errors="replace")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "small.toml"
    path.write_text(CONFIG)
    return path


def test_a_terminal_gets_the_bars(config: Path, tmp_path: Path) -> None:
    out = _run_on_a_terminal([sys.executable, "-m", "qnnlab", "run", str(config), "-o", str(tmp_path)], _env())
    for bar in ("runs", "seeds", "methods of seed 0", "askewsgd (seed 0)"):
        assert bar in out
    assert "\x1b[?25l" in out  # the live display hides the cursor while it draws
    assert "0:00:0" in out  # an ETA column


def test_pipes_get_no_escape_codes(config: Path, tmp_path: Path) -> None:
    args = [sys.executable, "-m", "qnnlab", "run", str(config), "-o", str(tmp_path)]
    proc = subprocess.run(args, capture_output=True, text=True, env=_env(), timeout=300, check=True)
    assert "askewsgd" in proc.stdout and "± " in proc.stdout  # the table is there
    assert "\x1b" not in proc.stdout + proc.stderr


@pytest.mark.parametrize(("quiet", "ci"), [(True, False), (False, True)])
def test_no_bars_with_quiet_or_in_ci(monkeypatch: pytest.MonkeyPatch, quiet: bool, ci: bool) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    monkeypatch.delenv("CI", raising=False)
    assert isinstance(cli._progress(False), Progress)  # the control: a terminal, not quiet, not CI
    if ci:
        monkeypatch.setenv("CI", "true")
    assert cli._progress(quiet) is None


def test_the_bars_count_runs_seeds_and_methods() -> None:
    base = {"epochs": 3, "data": {"name": "logistic", "n_train": 200}}
    configs = [
        validate_config({**base, "seed": seed, "label": label, "method": {"name": "sgd"}})
        for seed in (0, 1)
        for label in ("a", "b", "c")
    ]
    progress = Progress(console=Console(file=io.StringIO()), auto_refresh=False)
    on_run = cli._epoch_bars(progress, configs)
    runs, seeds, methods, epochs = progress.tasks
    for i, cfg in enumerate(configs[:4]):
        on_epoch = on_run(cfg)
        assert (methods.description, methods.total, methods.completed) == (f"methods of seed {cfg.seed}", 3, i % 3)
        assert (epochs.description, epochs.total) == (f"{cfg.label} (seed {cfg.seed})", 3)
        for epoch in range(4):
            on_epoch(epoch, {})
    assert (runs.completed, runs.total) == (4, 6)
    assert (seeds.completed, seeds.total) == (1, 2)  # seed 0 done, seed 1 under way
    assert (methods.completed, methods.total) == (1, 3)


def test_the_bars_of_several_comparisons_and_problems_count_each_apart() -> None:
    base = {"epochs": 1, "method": {"name": "sgd"}, "seed": 0}
    logistic = [validate_config({**base, "label": x, "data": {"name": "logistic", "n_train": 200}}) for x in "ab"]
    cancer = [
        validate_config({**base, "label": x, "data": {"name": "breast_cancer", "seed": p}})
        for p in (0, 1)
        for x in "ab"
    ]
    progress = Progress(console=Console(file=io.StringIO()), auto_refresh=False)
    on_run = cli._epoch_bars(progress, logistic + cancer, ["logistic"] * 2 + ["cancer"] * 4)
    runs, seeds, methods, epochs = progress.tasks
    assert (seeds.description, seeds.total) == ("seeds of each comparison and problem", 3)
    on_run(logistic[0])(1, {})
    assert methods.description == "methods of logistic, seed 0" and methods.total == 2
    on_epoch = on_run(cancer[2])
    assert methods.description == "methods of cancer, problem 1, seed 0" and methods.completed == 0
    assert epochs.description == "a (cancer, problem 1, seed 0)"
    on_epoch(1, {})
    assert (runs.completed, seeds.completed) == (2, 0)
