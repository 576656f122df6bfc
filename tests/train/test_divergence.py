"""Nothing silent: a run that stops being finite stops, says where, is marked diverged and is never exported."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from cli_check import fails_cleanly
from qnnlab.config import validate_config
from qnnlab.experiments.compare import Row, aggregate, compare, format_cell, markdown_table
from qnnlab.io import dumps_json, finite_or_none
from qnnlab.store import RunStore
from qnnlab.train.checkpoint import checkpoint_path, load_checkpoint
from qnnlab.train.guard import Diverged, check_finite
from qnnlab.train.loop import fit
from qnnlab.train.recorder import RunResult

CFG = {
    "epochs": 3,
    "batch_size": 50,
    "data": {"name": "logistic", "n_train": 200, "n_test": 100},
    "method": {"name": "sgd", "lr": 0.5},
    "checkpoint_interval": 0,  # a checkpoint every epoch
}


def test_check_finite_names_the_first_bad_step_and_parameter() -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    opt = torch.optim.Adam(model.parameters())
    model(torch.ones(1, 2)).sum().backward()
    opt.step()
    ok = [torch.tensor(0.5), torch.tensor(0.25)]
    check_finite(model, opt, ok, 1)  # all finite: nothing
    with torch.no_grad():
        model[1].weight[0, 1] = float("nan")
    bad = [torch.tensor(0.5), torch.tensor(float("inf")), torch.tensor(float("nan"))]
    with pytest.raises(Diverged, match=r"^diverged at epoch 4, step 2 of 3: parameter '1.weight' is not finite$"):
        check_finite(model, opt, bad, 4)
    with torch.no_grad():
        model[1].weight[0, 1] = 0.0
    opt.state[model[0].bias]["exp_avg_sq"][0] = float("inf")
    with pytest.raises(Diverged, match=r"epoch 2: optimizer state 'exp_avg_sq' of parameter '0.bias' is not finite"):
        check_finite(model, opt, ok, 2)


class NanLater:
    """A logistic loss that turns NaN at the ``step``-th call after :meth:`arm` (the steps of the next epoch)."""

    def __init__(self, step: int) -> None:
        self.step, self.calls = step, None

    def arm(self, epoch: int, metrics: dict) -> None:
        if epoch == 1:
            self.calls = 0

    def __call__(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        value = nn.functional.binary_cross_entropy_with_logits(out.squeeze(-1), y.float())
        if self.calls is not None:
            self.calls += 1
            if self.calls >= self.step:
                return value * float("nan")
        return value


def test_a_diverged_run_stops_is_marked_keeps_its_last_good_checkpoint_and_is_not_exported(tmp_path: Path) -> None:
    loss = NanLater(3)  # 4 steps per epoch; epoch 2's third is NaN
    with pytest.raises(Diverged) as err:
        fit(CFG, results=tmp_path, comparison="d", loss=loss, on_epoch=loss.arm)
    assert str(err.value) == (
        "run 1 (sgd, seed 0) diverged at epoch 2, step 3 of 4: parameter 'weight' is not finite;"
        " kept the checkpoint of epoch 1"
    )
    with RunStore(tmp_path) as store:
        (run,) = store.runs()
        assert run["status"] == "diverged" and "epoch 2, step 3" in run["summary"]["error"]
        assert sorted(store.history(1)) == [0, 1]  # nothing of epoch 2 is recorded
    ckpt = load_checkpoint(checkpoint_path(tmp_path, 1))
    assert ckpt["epoch"] == 1 and not ckpt["final"] and torch.isfinite(ckpt["model"]["weight"]).all()
    line = fails_cleanly(["export", f"{tmp_path}:1", "--out", tmp_path / "x.qnn"], "the run diverged")
    assert "epoch 2, step 3" in line and not (tmp_path / "x.qnn").exists()
    # resumed: a diverged run is not trained again
    with pytest.raises(Diverged, match="diverged at epoch 2, step 3"):
        fit(CFG, results=tmp_path, comparison="d", loss=NanLater(1), resume=True)


def test_non_finite_initial_weights_stop_at_epoch_0(tmp_path: Path) -> None:
    model = nn.Linear(10, 1, bias=False)
    nn.init.constant_(model.weight, float("inf"))
    with pytest.raises(Diverged, match=r"run 1 \(sgd, seed 0\) diverged at epoch 0: parameter 'weight' is not finite"):
        fit(CFG, model=model, results=tmp_path)


@pytest.mark.parametrize(
    ("method", "schedule", "what"),
    [
        ({"name": "sgd", "lr": 1e300}, {}, "lr = 1e+300 overflows torch.float32"),
        ({"name": "sgd", "lr": 0.5, "weight_decay": 1e308}, {}, "weight_decay = 1e+308 overflows torch.float32"),
        ({"name": "sgd", "lr": 0.5}, {"kind": "step", "milestones": [1], "factor": 1e300}, "lr = 5e+299 overflows"),
    ],
)
def test_overflows_end_in_one_line_naming_epoch_step_and_parameter(
    tmp_path: Path, method: dict, schedule: dict, what: str
) -> None:
    config = tmp_path / "c.toml"
    schedule_toml = "".join(f"{k} = {json.dumps(v)}\n" for k, v in schedule.items())
    config.write_text(
        'epochs = 2\nbatch_size = 50\n[data]\nname = "logistic"\nn_train = 200\nn_test = 100\n[method]\n'
        + "".join(f"{k} = {json.dumps(v)}\n" for k, v in method.items())
        + (f"[schedule]\n{schedule_toml}" if schedule else "")
    )
    from typer.testing import CliRunner

    from qnnlab.cli import app

    result = CliRunner().invoke(app, ["run", str(config), "-o", str(tmp_path / "r"), "-q"])
    assert (result.exit_code == 1 and result.exception is None) or isinstance(result.exception, SystemExit)
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "diverged at epoch" in errors[0] and ", step 1:" in errors[0], result.output
    assert what in errors[0] and "parameter 'weight'" in errors[0]
    assert "diverged" in (tmp_path / "r" / "c.md").read_text()  # the table says so too


def test_a_comparison_goes_on_past_a_diverged_run_and_its_table_says_so(tmp_path: Path) -> None:
    configs = [
        validate_config({**CFG, "label": label, "method": {"name": "sgd", "lr": lr}, "seed": s})
        for label, lr in (("big", 1e300), ("ok", 0.5))
        for s in (0, 1)
    ]
    out = compare(configs, tmp_path, "mix")
    assert [r.status for r in out] == ["diverged", "diverged", "done", "done"]
    assert out[0].error.startswith("run 1 (big, seed 0) diverged at epoch 1, step 1: lr = 1e+300 overflows")
    rows = aggregate(out)
    assert [(r.label, r.n, r.diverged) for r in rows] == [("big", 0, 2), ("ok", 2, 0)]
    lines = markdown_table(rows).splitlines()
    assert lines[2].startswith("| big | 0 (2 diverged) | diverged | diverged |") and "nan" not in lines[2]
    assert lines[3].startswith("| ok | 2 | 0.")
    from qnnlab.report.data import load_comparison

    report = load_comparison(tmp_path, "mix")  # the report lists them (render_html: "Diverged, left out: ...")
    assert [m.label for m in report.methods] == ["ok"] and len(report.diverged) == 2
    assert report.diverged[0].startswith("big (seed 0): diverged at epoch 1, step 1: lr = 1e+300")


def test_non_finite_means_are_never_printed_as_nan_beside_numbers() -> None:
    runs = [RunResult("a", {"seed": s}, {"q_train_loss": v, "q_test_acc": 0.5}) for s, v in enumerate((0.4, None))]
    (row,) = aggregate(runs)
    assert format_cell(row, "q_train_loss", 1.0, ".4f") == "not finite"
    assert format_cell(row, "q_test_acc", 100.0, ".2f") == "50.00 ± 0.00"
    inf = Row("b", 1, {"q_train_loss": (math.inf, 0.0)})
    assert format_cell(inf, "q_train_loss", 1.0, ".4f") == "not finite"


def test_json_written_is_strict_nan_and_infinity_are_null(tmp_path: Path) -> None:
    value = {"a": math.nan, "b": [1.0, math.inf, -math.inf], "c": (2.0,), "d": "x"}
    assert finite_or_none(value) == {"a": None, "b": [1.0, None, None], "c": [2.0], "d": "x"}
    assert json.loads(dumps_json(value)) == finite_or_none(value)  # and dumps_json raised on no NaN
    with RunStore(tmp_path) as store:
        run = store.start_run({"label": "x", "seed": 0}, comparison="j", versions={})
        store.log_epoch(run, 0, {"loss": math.nan}, {"batch_loss": [math.inf, 1.0]})
        store.finish_run(run, {"q_train_loss": math.nan, "q_test_acc": 0.5})
        raw = store._db.execute("SELECT summary FROM runs").fetchone()[0]
        series = store._db.execute("SELECT data FROM series").fetchone()[0]
    assert json.loads(raw) == {"q_test_acc": 0.5, "q_train_loss": None} and "NaN" not in raw
    assert series == "[null, 1.0]"


def test_export_refuses_a_checkpoint_with_a_flipped_byte(tmp_path: Path) -> None:
    result = fit(CFG, results=tmp_path)
    path = checkpoint_path(tmp_path, result.run_id)
    raw = bytearray(path.read_bytes())
    at = raw.find(result.weights["weight"].numpy().tobytes())
    raw[at + 2] ^= 0x01  # one bit of one continuous weight
    path.write_bytes(bytes(raw))
    fails_cleanly(["export", path, "--out", tmp_path / "x.qnn"], "run-1.pt: damaged (its SHA-256 digest does not match")
    assert not (tmp_path / "x.qnn").exists()
