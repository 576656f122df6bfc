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
