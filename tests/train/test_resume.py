"""Nothing lost: a run killed mid-way and resumed ends bit-identical to one never stopped; signals; statuses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from qnnlab.cli import app
from qnnlab.config import load_config
from qnnlab.store import RunStore
from qnnlab.train.checkpoint import CheckpointError, checkpoint_path, digest, load_checkpoint, save_checkpoint
from qnnlab.train.loop import fit

TOML = """\
epochs = 20
checkpoint_interval = 0
batch_size = 50
[data]
name = "logistic"
n_train = 200
n_test = 100
[method]
name = "askewsgd"
lr = 0.5
eps = { init = 1.0, hold = 3, decay = 0.8 }
[schedule]
kind = "step"
milestones = [10]
factor = 0.5
"""
WALL = {"wall_time"}


def _tensors(ckpt: dict) -> dict[str, torch.Tensor]:
    """Every tensor of a checkpoint by its path (model, optimizer state, w, Q(w), scales, RNG states)."""
    out = {}

    def walk(prefix: str, value: object) -> None:
        if isinstance(value, torch.Tensor):
            out[prefix] = value
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}/{k}", v)
        elif isinstance(value, list | tuple):
            for i, v in enumerate(value):
                walk(f"{prefix}/{i}", v)

    walk("", {k: v for k, v in ckpt.items() if k != "sha256"})
    return out


def _stored(results: Path) -> tuple[dict, dict, dict]:
    with RunStore(results, read_only=True) as store:
        (run,) = store.runs()
        series = {name: store.series(run["id"], name) for name in ("batch_loss", "weight_hist")}
        summary = {k: v for k, v in run["summary"].items() if k not in WALL}
        return store.history(run["id"]), series, summary


def test_a_killed_run_resumes_bit_identical_to_an_uninterrupted_one(tmp_path: Path) -> None:
    config = tmp_path / "logistic.toml"
    config.write_text(TOML)
    threads = str(torch.get_num_threads())  # runs are bit-identical at a fixed thread count
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    killed = tmp_path / "killed"
    cmd = [sys.executable, "-m", "qnnlab", "run", str(config), "-o", str(killed), "-q"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ckpt = checkpoint_path(killed, 1)
    deadline = time.monotonic() + 120
    while not ckpt.is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    stopped_at = load_checkpoint(ckpt)["epoch"]
    assert 1 <= stopped_at < 20
    with RunStore(killed, read_only=True) as store:
        (run,) = store.runs()
        assert run["status"] == "interrupted" and run["pid"] == proc.pid  # stored 'running', its process gone

    result = CliRunner().invoke(app, ["run", str(config), "-o", str(killed), "-q", "--resume"])
    assert result.exit_code == 0, result.output
    fresh = tmp_path / "fresh"
    fit(load_config(config), results=fresh, comparison="logistic")

    (history, series, summary), (want_history, want_series, want_summary) = _stored(killed), _stored(fresh)
    assert sorted(history) == list(range(21))
    assert history == want_history and series == want_series and summary == want_summary
    got, want = _tensors(load_checkpoint(ckpt)), _tensors(load_checkpoint(checkpoint_path(fresh, 1)))
    assert got.keys() == want.keys()
    for name in want:
        assert torch.equal(got[name], want[name]), name
    with RunStore(killed, read_only=True) as store:
        assert [r["status"] for r in store.runs()] == ["done"]
    # finished: resumed again, nothing is trained and nothing changes
    again = CliRunner().invoke(app, ["run", str(config), "-o", str(killed), "-q", "--resume"])
    assert again.exit_code == 0 and _stored(killed)[0] == history


CFG = {
    "epochs": 4,
    "batch_size": 50,
    "data": {"name": "logistic", "n_train": 200, "n_test": 100},
    "method": {"name": "sgd", "lr": 0.5},
    "checkpoint_interval": 0,
}


def test_every_epoch_is_checkpointed_unless_asked_otherwise(tmp_path: Path) -> None:
    epochs: list[int] = []

    def seen(epoch: int, metrics: dict) -> None:
        if epoch and checkpoint_path(tmp_path / "a", 1).is_file():
            epochs.append(load_checkpoint(checkpoint_path(tmp_path / "a", 1))["epoch"])

    fit(CFG, results=tmp_path / "a", on_epoch=seen)
    assert epochs == [1, 2, 3]  # epoch e's checkpoint is on disk when epoch e + 1 is recorded
    final = load_checkpoint(checkpoint_path(tmp_path / "a", 1))
    assert final["final"] is True and final["epoch"] == 4 and int(final["versions"]["torch_threads"]) >= 1
    written: list[bool] = []
    path = checkpoint_path(tmp_path / "b", 1)
    fit({**CFG, "checkpoint_every": 0}, results=tmp_path / "b", on_epoch=lambda e, m: written.append(path.is_file()))
    assert written == [False] * 5 and load_checkpoint(path)["epoch"] == 4  # only the final one


def test_checkpoints_wait_checkpoint_interval_seconds(tmp_path: Path, monkeypatch) -> None:
    import qnnlab.train.loop as loop

    # the start, epoch 1, epoch 2, its checkpoint written, epoch 3, epoch 4, its checkpoint written
    clock = iter([0.0, 1.0, 2.0, 3.0, 4.5, 5.0, 6.0])
    monkeypatch.setattr(loop, "monotonic", lambda: next(clock))
    epochs: list[int] = []
    path = checkpoint_path(tmp_path, 1)

    def seen(epoch: int, metrics: dict) -> None:
        if epoch and path.is_file():
            epochs.append(load_checkpoint(path)["epoch"])

    fit({**CFG, "epochs": 5, "checkpoint_interval": 2.0}, results=tmp_path, on_epoch=seen)
    # epoch 1 (t = 1) is too soon, epoch 2 (t = 2) is due, epoch 3 comes 1.5 s after its checkpoint, epoch 4 2 s
    assert epochs == [2, 2, 4] and load_checkpoint(path)["epoch"] == 5


def test_sigterm_marks_the_run_interrupted_and_resume_continues_it(tmp_path: Path) -> None:
    def stop(epoch: int, metrics: dict) -> None:
        if epoch == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    before = signal.getsignal(signal.SIGTERM)  # SIG_DFL, or a handler a library set earlier in this process
    with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
        fit(CFG, results=tmp_path, comparison="c", on_epoch=stop)
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is restored
    with RunStore(tmp_path) as store:
        assert store.runs()[0]["status"] == "interrupted"
    assert load_checkpoint(checkpoint_path(tmp_path, 1))["epoch"] == 1  # epoch 2's was not written yet
    resumed = fit(CFG, results=tmp_path, comparison="c", resume=True)
    fresh = fit(CFG, results=tmp_path / "fresh", comparison="c")
    assert resumed.run_id == 1 and resumed.history == fresh.history
    assert {k: v for k, v in resumed.summary.items() if k not in WALL} == {
        k: v for k, v in fresh.summary.items() if k not in WALL
    }


def test_sighup_through_the_cli_exits_129_and_says_how_to_resume(tmp_path: Path, monkeypatch) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        'epochs = 3\nbatch_size = 50\n[data]\nname = "logistic"\nn_train = 200\nn_test = 100\n'
        '[method]\nname = "sgd"\nlr = 0.5\n'
    )
    import qnnlab.experiments.compare as compare

    real = compare.fit

    def hup(*args, **kwargs):
        kwargs["on_epoch"] = lambda e, m: os.kill(os.getpid(), signal.SIGHUP) if e == 1 else None
        return real(*args, **kwargs)

    monkeypatch.setattr(compare, "fit", hup)
    result = CliRunner().invoke(app, ["run", str(config), "-o", str(tmp_path / "r"), "-q"])
    assert result.exit_code == 129 and "SIGHUP" in result.output and "--resume" in result.output


def test_a_flipped_byte_in_a_checkpoint_is_one_clean_error(tmp_path: Path) -> None:
    path = tmp_path / "c.pt"
    state = {"scale": torch.tensor([0.5, 0.25]), "epoch": 3, "nested": {"w": torch.ones(4)}}
    sha = save_checkpoint(path, state)
    assert sha == digest(load_checkpoint(path)) and len(sha) == 64
    raw = bytearray(path.read_bytes())
    at = raw.find(torch.tensor([0.5, 0.25]).numpy().tobytes())
    raw[at + 1] ^= 0x40
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match=r"c\.pt: damaged \(its SHA-256 digest does not match"):
        load_checkpoint(path)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a qnnlab run checkpoint"):
        load_checkpoint(path)


def test_the_digest_covers_names_dtypes_shapes_and_values() -> None:
    base = {"a": torch.zeros(2, 2), "n": 1}
    variants = [
        {"a": torch.zeros(4), "n": 1},
        {"a": torch.zeros(2, 2, dtype=torch.float64), "n": 1},
        {"b": torch.zeros(2, 2), "n": 1},
        {"a": torch.zeros(2, 2), "n": 2},
    ]
    assert len({digest(base), *map(digest, variants)}) == 5
    assert digest(base) == digest({**base, "sha256": "anything"})


def test_a_run_still_running_elsewhere_is_not_resumed_twice(tmp_path: Path) -> None:
    from cli_check import fails_cleanly

    config = tmp_path / "c.toml"
    config.write_text(TOML.replace("epochs = 20", "epochs = 4").replace("[10]", "[1]"))
    CliRunner().invoke(app, ["run", str(config), "-o", str(tmp_path / "r"), "-q"])
    with RunStore(tmp_path / "r") as store:  # as if this (live) process were still training it
        store._db.execute("UPDATE runs SET status = 'running', pid = ?", (os.getpid(),))
    line = fails_cleanly(["run", config, "-o", tmp_path / "r", "-q", "--resume"], "run 1 (askewsgd, seed 0)")
    assert f"is still running (pid {os.getpid()} on " in line


def test_compare_resume_skips_the_finished_runs(tmp_path: Path) -> None:
    args = ["compare", "logistic", "--methods", "sgd", "--seeds", "2", "--epochs", "2", "-o", str(tmp_path), "-q"]
    args += ["--set", "data.n_train=200", "--set", "data.n_test=100", "--set", "batch_size=50"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    with RunStore(tmp_path) as store:  # as if the second seed had been killed mid-run
        store._db.execute("UPDATE runs SET status = 'interrupted' WHERE seed = 1")
    again = CliRunner().invoke(app, [*args, "--resume"])
    assert again.exit_code == 0, again.output
    with RunStore(tmp_path) as store:
        runs = [(r["id"], r["seed"], r["status"]) for r in store.runs()]
    assert len(runs) >= 2 and {seed for _, seed, _ in runs} == {0, 1}
    assert [r[0] for r in runs] == list(range(1, len(runs) + 1)) and {r[2] for r in runs} == {"done"}  # none added
    assert "sgd" in again.output
