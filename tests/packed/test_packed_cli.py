import json
from pathlib import Path

from typer.testing import CliRunner

from qnnlab.cli import app

runner = CliRunner()


def test_export_then_summary(logistic_run, tmp_path: Path) -> None:
    run = f"{tmp_path / 'results'}:{logistic_run.run_id}"
    out = tmp_path / "model.qnn"
    result = runner.invoke(app, ["export", run, "--out", str(out)])
    assert result.exit_code == 0, result.output
    size = out.stat().st_size
    assert f"wrote {out}: {size:,} bytes (10 of tensors + {size - 10:,} of header)" in " ".join(result.output.split())

    result = runner.invoke(app, ["summary", str(out)])
    assert result.exit_code == 0, result.output
    assert "Linear" in result.output and "compression ratio" in result.output
    assert f"file {size:,} bytes" in result.output

    result = runner.invoke(app, ["summary", run, "--json"])
    assert result.exit_code == 0, result.output
    totals = json.loads(result.output)["totals"]
    assert (totals["params_1bit"], totals["params_float"], totals["packed_bytes"], totals["float32_bytes"]) == (
        10,
        1,
        10,
        44,
    )


def test_errors_are_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "junk.qnn").write_bytes(b"hello world, not a model")
    result = runner.invoke(app, ["summary", str(tmp_path / "junk.qnn")])
    assert result.exit_code == 2
    assert "not a qnnlab packed file" in result.output
    result = runner.invoke(app, ["export", f"{tmp_path}:3", "--out", str(tmp_path / "x.qnn")])
    assert result.exit_code == 2
    assert "no checkpoint" in result.output and "run-3.pt" in result.output
    result = runner.invoke(app, ["export", f"{tmp_path}:3"])
    assert result.exit_code == 2 and "--out" in result.output
