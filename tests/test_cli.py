import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from qnnlab.cli import app
from qnnlab.experiments.presets import preset_runs

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


def test_run_the_shipped_config(tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", str(ROOT / "configs" / "logistic_askewsgd.toml"), "-o", str(tmp_path), "-q"])
    assert result.exit_code == 0, result.output
    assert "askewsgd" in result.output
    assert (tmp_path / "logistic_askewsgd.md").read_text().startswith("| method | seeds |")


def test_every_shipped_config_is_valid_and_the_kbit_one_matches_its_preset_row() -> None:
    from qnnlab.config import load_config

    configs = {p.name: load_config(p) for p in sorted((ROOT / "configs").glob("*.toml"))}
    assert len(configs) >= 2
    row = next(c for c in preset_runs("digits-2bit", 1) if c.label == "askewsgd")
    assert configs["digits_askewsgd_2bit.toml"].with_(label="askewsgd") == row


def test_compare_prints_the_table_and_fills_the_store(tmp_path: Path) -> None:
    result = runner.invoke(app, ["compare", "logistic", "--seeds", "2", "-o", str(tmp_path), "-q"])
    assert result.exit_code == 0, result.output
    for label in ("gd (full batch)", "binaryconnect (stoch.)", "askewsgd (1/√k steps)", "ste"):
        assert label in result.output
    assert "± " in result.output
    db = sqlite3.connect(tmp_path / "qnnlab.sqlite")
    n = len(preset_runs("logistic", 1))  # runs per seed
    assert db.execute("SELECT COUNT(*), SUM(status = 'done') FROM runs").fetchone() == (2 * n, 2 * n)
    table = (tmp_path / "logistic.md").read_text()
    assert sum(line.startswith("| ") for line in table.splitlines()) == 1 + n  # the header, one row per method
    assert "sign test" in table and "sign test" in result.output  # the rule for bold, under both tables


def test_list_names_methods_and_presets() -> None:
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0
    for name in ("askewsgd", "binaryconnect", "sgd", "logistic-0.8"):
        assert name in result.output


def test_compare_trains_several_presets_as_one_batch_each_over_its_own_seeds_and_problems(tmp_path: Path) -> None:
    from qnnlab.experiments.presets import spread

    assert spread("logistic") == (5, None) and spread("breast-cancer") == (1, 5)
    args = ["compare", "logistic", "breast-cancer", "--methods", "sgd", "--epochs", "1", "-o", str(tmp_path), "-q"]
    result = runner.invoke(app, [*args, "--jobs", "2"])
    assert result.exit_code == 0, result.output
    assert "logistic: weights judged" in result.output and "breast-cancer: weights judged" in result.output
    db = sqlite3.connect(tmp_path / "qnnlab.sqlite")
    rows = db.execute(
        "SELECT comparison, json_extract(config, '$.data.seed'), seed FROM runs WHERE label = 'minibatch sgd'"
        " ORDER BY id"
    ).fetchall()
    # the preset order; logistic: 5 training seeds of its one problem, breast cancer: 5 problems of one seed
    assert rows == [("logistic", 0, s) for s in range(5)] + [("breast-cancer", p, 0) for p in range(5)]
    assert {p.name for p in tmp_path.glob("*.md")} == {"logistic.md", "breast-cancer.md"}
    again = runner.invoke(
        app,
        [
            "compare",
            "breast-cancer",
            "--methods",
            "minibatch sgd",
            "--epochs",
            "1",
            "--seeds",
            "2",
            "--problems",
            "1",
            "-o",
            str(tmp_path / "b"),
            "-q",
        ],
    )
    assert again.exit_code == 0, again.output
    db = sqlite3.connect(tmp_path / "b" / "qnnlab.sqlite")
    assert db.execute("SELECT json_extract(config, '$.data.seed'), seed FROM runs").fetchall() == [(0, 0), (0, 1)]
