"""Misuse of the command line: each case ends in one line naming the file or flag, exit 2, no traceback."""

import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from cli_check import fails_cleanly
from qnnlab.cli import MAX_SEEDS, app
from qnnlab.config import validate_config
from qnnlab.store import DB_NAME, RunStore
from qnnlab.train.loop import fit

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "logistic_askewsgd.toml"
NOBODY = 65534


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """A results folder holding one short finished run of comparison ``toy``: its store and checkpoint."""
    results = tmp_path_factory.mktemp("results")
    cfg = validate_config(
        {
            "epochs": 2,
            "batch_size": 50,
            "data": {"name": "logistic", "n_train": 200, "n_test": 100},
            "method": {"name": "sgd", "lr": 0.5},
        }
    )
    with RunStore(results) as store:
        return results, fit(cfg, store=store, comparison="toy").run_id


# -- config files that cannot be read ------------------------------------------------------
def test_config_files_that_are_not_text_or_not_files(tmp_path: Path) -> None:
    (tmp_path / "latin1.toml").write_bytes('label = "é"\n'.encode("latin-1"))
    fails_cleanly(["run", tmp_path / "latin1.toml"], "latin1.toml: not UTF-8 text (byte 0xe9 at offset 9)")
    (tmp_path / "dir.toml").mkdir()
    fails_cleanly(["run", tmp_path / "dir.toml"], "dir.toml: is a directory")
    (tmp_path / "a.toml").symlink_to(tmp_path / "b.toml")
    (tmp_path / "b.toml").symlink_to(tmp_path / "a.toml")
    fails_cleanly(["run", tmp_path / "a.toml"], "a.toml: too many levels of symbolic links")
    fails_cleanly(["run", "/dev/zero"], "/dev/zero: larger than 1 MiB; not a run config")


@pytest.mark.parametrize("depth", [3000, 5000])
def test_deeply_nested_configs(tmp_path: Path, depth: int) -> None:
    nested = {
        "array": "a = " + "[" * depth + "]" * depth,
        "inline": "a = " + "{b = " * depth + "1" + "}" * depth,
        "dotted": "[" + ".".join(["t"] * depth) + "]",  # parses (no recursion), then too deep to print
    }
    for name, text in nested.items():
        (tmp_path / f"{name}.toml").write_text(text)
        fails_cleanly(["run", tmp_path / f"{name}.toml"], f"{name}.toml: arrays or tables nested too deeply")


# -- run stores, results folders and output files --------------------------------------------
def test_report_on_files_that_are_not_a_store(tmp_path: Path, finished: tuple[Path, int]) -> None:
    raw = (finished[0] / DB_NAME).read_bytes()
    for name, content in {"garbage": b"\x00 not sqlite " * 500, "truncated": raw[: len(raw) // 2]}.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / DB_NAME).write_bytes(content)
        fails_cleanly(["report", tmp_path / name], f"{tmp_path / name / DB_NAME}: not a qnnlab run store")
    (tmp_path / "foreign").mkdir()
    with sqlite3.connect(tmp_path / "foreign" / DB_NAME) as db:
        db.execute("CREATE TABLE users (name TEXT)")
    line = fails_cleanly(["report", tmp_path / "foreign"], f"{tmp_path / 'foreign' / DB_NAME}: not a qnnlab run store")
    assert line.endswith("tables: users)")


def test_outputs_that_cannot_be_written(tmp_path: Path, finished: tuple[Path, int]) -> None:
    results, run_id = finished
    (tmp_path / "file").write_text("x")
    under_a_file = tmp_path / "file" / "out"
    for command, fault in (  # report makes the folder it writes to; export expects it
        (["report", results], f"{tmp_path / 'file'}: file exists"),
        (["export", f"{results}:{run_id}"], f"{under_a_file}: not a directory"),
    ):
        fails_cleanly([*command, "--out", tmp_path], f"{tmp_path}: is a directory")
        fails_cleanly([*command, "--out", under_a_file], fault)
    assert sorted(os.listdir(tmp_path)) == ["file"]  # nothing left behind


def test_run_into_a_file_or_a_bad_store(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    fails_cleanly(["run", CONFIG, "-o", tmp_path / "file", "-q"], f"{tmp_path / 'file'}: cannot hold a run store")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / DB_NAME).write_bytes(b"garbage" * 1000)
    bad = tmp_path / "bad" / DB_NAME
    fails_cleanly(["run", CONFIG, "-o", tmp_path / "bad", "-q"], f"{bad}: not a qnnlab run store")
    assert bad.read_bytes() == b"garbage" * 1000


@contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """``folder`` and its files read-only; as root (whom permissions do not stop) the process runs as nobody."""
    paths = [folder, *folder.iterdir()]
    modes = [p.stat().st_mode for p in paths]
    for p, mode in zip(paths, modes, strict=True):
        p.chmod(mode & ~0o222)
    root = os.geteuid() == 0
    try:
        if root:
            os.seteuid(NOBODY)
        yield
    finally:
        if root:
            os.seteuid(0)
        for p, mode in zip(paths, modes, strict=True):
            p.chmod(mode)


def test_a_read_only_folder_is_reported_on_but_not_trained_into(finished: tuple[Path, int]) -> None:
    # outside pytest's private tmp folder, so that nobody can reach it
    base = Path(tempfile.mkdtemp())
    try:
        base.chmod(0o755)
        results, out = base / "results", base / "out"
        results.mkdir()
        out.mkdir(mode=0o777)
        out.chmod(0o777)
        shutil.copy(finished[0] / DB_NAME, results / DB_NAME)
        # the same commands once with write access, so that every module they import lazily is loaded
        # (nobody may not be able to read this Python's standard library, e.g. under /root)
        (base / "file").write_text("x")
        assert CliRunner().invoke(app, ["report", str(results), "--out", str(base / "warm.html")]).exit_code == 0
        assert CliRunner().invoke(app, ["run", str(CONFIG), "-o", str(base / "file"), "-q"]).exit_code == 2
        for state in ("open", "closed"):  # -wal/-shm kept by a reader (or a live writer); removed on a clean close
            if state == "closed":
                for companion in results.glob(f"{DB_NAME}-*"):
                    companion.unlink()
            files = sorted(os.listdir(results))
            with read_only(results):
                result = CliRunner().invoke(app, ["report", str(results), "--out", str(out / f"{state}.html")])
                assert result.exit_code == 0, result.output
                fails_cleanly(["report", results], f"{results / 'toy.html'}: permission denied")
                fails_cleanly(["run", CONFIG, "-o", results, "-q"], f"{results / DB_NAME}: cannot open the run store")
                assert sorted(os.listdir(results)) == files
            assert (out / f"{state}.html").read_text().startswith("<!DOCTYPE html>")
    finally:
        shutil.rmtree(base)


# -- flags ---------------------------------------------------------------------------------
@pytest.mark.skipif(torch.backends.mps.is_available(), reason="this machine has an MPS device")
def test_device_mps_without_one() -> None:
    fails_cleanly(["compare", "logistic", "--device", "mps", "-q"], "--device mps: this torch build sees no MPS device")


def test_device_cuda_that_is_not_there() -> None:
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    expected = "no such device; this machine has cuda:0 to" if count else "this torch build sees no CUDA device"
    fails_cleanly(["compare", "logistic", "--device", f"cuda:{count}", "-q"], f"--device cuda:{count}: {expected}")


@pytest.mark.parametrize("seeds", [0, MAX_SEEDS + 1, 10**12])
def test_seeds_out_of_range(seeds: int) -> None:
    fails_cleanly(["compare", "logistic", "--seeds", str(seeds)], f"--seeds {seeds}: choose from 1 to {MAX_SEEDS}")


@pytest.mark.parametrize("problems", [0, MAX_SEEDS + 1])
def test_problems_out_of_range(problems: int) -> None:
    fails_cleanly(["compare", "logistic", "--problems", str(problems)], f"--problems {problems}: choose from 1 to")


def test_negative_certify_time_names_the_field() -> None:
    fails_cleanly(["compare", "logistic", "--set", "certify_time=-1", "-q"], "certify_time: Input should be greater")


def test_jobs_out_of_range_or_with_trackers() -> None:
    fails_cleanly(["compare", "logistic", "--jobs", "-1", "-q"], "--jobs -1: must be >= 0 (0: one per CPU)")
    fails_cleanly(
        ["compare", "logistic", "--seeds", "1", "--jobs", "2", "--track", "tensorboard", "-q"],
        "--jobs 2: runs that track (--track, track = [...]) train in this process; use --jobs 1",
    )
