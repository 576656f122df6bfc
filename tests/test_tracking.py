"""TensorBoard and wandb (offline) tracking: files written, read back, equal to the run store."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qnnlab.cli import app
from qnnlab.config import ConfigError, validate_config
from qnnlab.store import RunStore
from qnnlab.tracking import check_available
from qnnlab.train.loop import fit

CFG = {"epochs": 4, "batch_size": 100, "data": {"name": "logistic", "n_train": 500, "n_test": 100}}
ASKEW = {"name": "askewsgd", "eps": {"hold": 1}}

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def offline_wandb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No credentials, no wandb settings from the host, nothing written outside tmp_path."""
    for key in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_PROJECT", "WANDB_ENTITY", "WANDB_BASE_URL"):
        monkeypatch.delenv(key, raising=False)
    for key in ("HOME", "WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(key, str(tmp_path / "home"))
    monkeypatch.setenv("NETRC", str(tmp_path / "home" / ".netrc"))


def wandb_records(path: Path):
    """The protobuf records of a ``.wandb`` file, parsed with wandb's own schema.

    The file is a LevelDB-style log: a 7-byte header (``:W&B``, magic, version), then
    32 KiB blocks of chunks, each ``crc32 (4) | length (2, LE) | type (1: full, 2: first,
    3: middle, 4: last)`` followed by ``length`` bytes. wandb 0.31 ships no reader of it.
    """
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, block, chunk = 7, 32768, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # the tail of a block too short for a header is padding
            pos += block - pos % block
            continue
        length, kind = int.from_bytes(data[pos + 4 : pos + 6], "little"), data[pos + 6]
        chunk += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(chunk)
            yield record
            chunk = b""


def test_tensorboard_and_wandb_get_exactly_the_stored_metrics(tmp_path: Path, offline_wandb) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from qnnlab.tracking.wandb import wandb_mode

    assert wandb_mode() == "offline"  # no credentials in the environment
    cfg = validate_config({**CFG, "method": ASKEW, "track": ["tensorboard", "wandb"]})
    with RunStore(tmp_path) as store:
        run_id = fit(cfg, store=store, comparison="demo").run_id
        history = store.history(run_id)

    (logdir,) = (tmp_path / "tensorboard" / "demo").iterdir()
    assert logdir.name == f"demo-{run_id}-askewsgd-seed0"
    events = EventAccumulator(str(logdir), size_guidance={"scalars": 0})
    events.Reload()
    assert set(events.Tags()["scalars"]) == set(history[0])
    for tag in ("q_train_loss", "stationarity", "eps", "violation_max"):
        logged = [(e.step, e.value) for e in events.Scalars(tag)]
        # event files hold float32
        assert logged == [(epoch, pytest.approx(history[epoch][tag], rel=1e-6, abs=1e-30)) for epoch in range(5)]

    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")
    records = list(wandb_records(next(run_dir.glob("run-*.wandb"))))
    run = next(r.run for r in records if r.WhichOneof("record_type") == "run")
    assert run.display_name == f"demo-{run_id}-askewsgd-seed0" and run.run_group == "demo"
    config = {u.key: json.loads(u.value_json) for u in run.config.update}
    assert config["method"]["eps"]["hold"] == 1 and config["track"] == ["tensorboard", "wandb"]
    steps = {
        r.history.step.num: {i.key or i.nested_key[0]: json.loads(i.value_json) for i in r.history.item}
        for r in records
        if r.WhichOneof("record_type") == "history"
    }
    assert sorted(steps) == list(range(5))
    for epoch, metrics in history.items():
        assert {k: steps[epoch][k] for k in metrics} == metrics  # JSON doubles: exact
    exits = [r.exit.exit_code for r in records if r.WhichOneof("record_type") == "exit"]
    assert exits == [0]


def test_the_core_never_imports_the_trackers() -> None:
    code = (
        "import sys; import qnnlab.cli, qnnlab.experiments.compare, qnnlab.train.loop\n"
        "from qnnlab.config import validate_config\n"
        "qnnlab.train.loop.fit(validate_config({'epochs': 1, 'data': {'name': 'logistic', 'n_train': 200},"
        " 'method': {'name': 'sgd'}}))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('wandb', 'tensorboard', 'plotly')"
        " or m.startswith('torch.utils.tensorboard')))"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "[]"


def test_unknown_or_missing_trackers_fail_before_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"track\.0: Input should be 'tensorboard' or 'wandb' \(got 'mlflow'\)"):
        validate_config({**CFG, "method": ASKEW, "track": ["mlflow"]})
    result = CliRunner().invoke(app, ["compare", "logistic", "--seeds", "1", "--track", "mlflow", "-o", str(tmp_path)])
    assert result.exit_code == 2 and "track.0: Input should be 'tensorboard' or 'wandb'" in result.output
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(ModuleNotFoundError, match=r"tracker 'wandb' needs the 'wandb' package: pip install"):
        check_available(["tensorboard", "wandb"])
    result = CliRunner().invoke(app, ["compare", "logistic", "--seeds", "1", "--track", "wandb", "-o", str(tmp_path)])
    assert result.exit_code == 2 and "pip install 'qnnlab[tracking]'" in result.output
    assert not (tmp_path / "qnnlab.sqlite").exists()  # nothing trained
