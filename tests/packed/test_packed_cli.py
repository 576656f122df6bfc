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


def test_summary_of_a_file_without_a_run_config_lists_its_tensors(tmp_path: Path) -> None:
    from torch import nn

    from qnnlab import export_model

    export_model(nn.Sequential(nn.Linear(16, 4), nn.ReLU(), nn.Linear(4, 2)), {"0.weight": 1}, tmp_path / "m.qnn")
    result = runner.invoke(app, ["summary", str(tmp_path / "m.qnn")])
    assert result.exit_code == 0, result.output
    assert "packed bytes per tensor" in result.output and "MACs" not in result.output
    lines = {line.split("│")[1].strip(): line for line in result.output.splitlines() if line.count("│") > 3}
    assert "1-bit" in lines["0.weight"] and "4×16" in lines["0.weight"] and "as is" in lines["2.weight"]
    totals = json.loads(runner.invoke(app, ["summary", str(tmp_path / "m.qnn"), "--json"]).output)["totals"]
    assert (totals["packed_bytes"], totals["macs"]) == (4 * 2 + 4 + 4 * 4 + 2 * 4 * 4 + 2 * 4, None)


def test_a_hostile_file_and_bad_export_flags_fail_with_one_line(logistic_run, tmp_path: Path) -> None:
    from qnnlab.packed.format import write_container

    meta = {"format_version": 1, "qnnlab_version": "0", "config": None, "n_outputs": None, "input_shape": None}
    write_container(tmp_path / "evil.qnn", {}, meta | {"quantized": {"w": {"bits": 99}}})
    run = f"{tmp_path / 'results'}:{logistic_run.run_id}"
    for args, message in [
        (["summary", str(tmp_path / "evil.qnn")], "malformed metadata: quantized.w.bits: Input should be less than"),
        (["export", run, "--out", str(tmp_path / "m.x"), "--format", "tflite"], "unknown export format 'tflite'"),
        (["export", run, "--out", str(tmp_path / "m.onnx")], "an .onnx name for a .qnn file; pass --format onnx"),
    ]:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert message in " ".join(result.output.split()) and len(result.output.strip().splitlines()) == 1
        assert "Traceback" not in result.output
    assert not list(tmp_path.glob("m.*"))
