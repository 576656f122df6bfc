"""Atomic writes: one complete version at any time, under concurrent writers too."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import qnnlab.io
from qnnlab.io import atomic_file, describe_os_error, write_atomic

WRITERS, WRITES = 3, 60
# each writer process loads qnnlab/io.py alone (stdlib only): no torch import per process
WRITER = """
import runpy, sys
write_atomic = runpy.run_path(sys.argv[1])["write_atomic"]
for i in range(int(sys.argv[4])):
    write_atomic(sys.argv[2], (f"{sys.argv[3]} {i}\\n" * 2000).encode())
"""


def is_one_version(data: bytes) -> bool:
    first = data.split(b"\n", 1)[0]
    return bool(first) and data == (first + b"\n") * 2000


def test_concurrent_writers_lose_nothing_and_readers_see_whole_versions(tmp_path: Path) -> None:
    target = tmp_path / "table.md"
    write_atomic(target, b"start\n" * 2000)
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, qnnlab.io.__file__, str(target), f"w{k}", str(WRITES)])
        for k in range(WRITERS)
    ]
    reads = 0
    while any(p.poll() is None for p in procs):
        assert is_one_version(target.read_bytes())  # never a mix, never a partial file
        reads += 1
        time.sleep(0.001)
    assert [p.wait() for p in procs] == [0] * WRITERS  # no writer lost a write to an error
    assert reads > 0 and is_one_version(target.read_bytes())
    assert target.read_bytes().split(b" ")[1].startswith(str(WRITES - 1).encode())  # a last write won
    assert os.listdir(tmp_path) == ["table.md"]  # no temporary file left behind


@pytest.mark.parametrize("data", ["ε → 0, |w − Q(w)|\n", b"\x00\xff" * 1000, ""])
def test_write_atomic_writes_exactly_the_data(tmp_path: Path, data: str | bytes) -> None:
    write_atomic(tmp_path / "f", data)
    assert (tmp_path / "f").read_bytes() == (data.encode() if isinstance(data, str) else data)  # text as UTF-8


def test_a_new_file_gets_the_usual_permissions(tmp_path: Path) -> None:
    umask = os.umask(0o027)
    try:
        write_atomic(tmp_path / "f", "x")
    finally:
        os.umask(umask)
    assert (tmp_path / "f").stat().st_mode & 0o777 == 0o640  # 0o666 less the umask, as open() gives


def test_a_failed_write_leaves_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.pt"
    write_atomic(path, b"old")
    with pytest.raises(RuntimeError, match="crash"), atomic_file(path) as f:
        f.write(b"half of the new")
        raise RuntimeError("crash")
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["ckpt.pt"]


def test_errors_name_the_target_not_the_temporary_file(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    with pytest.raises(IsADirectoryError) as err:
        write_atomic(tmp_path / "dir", "x")
    assert describe_os_error(err.value) == f"{tmp_path / 'dir'}: is a directory"
    with pytest.raises(FileNotFoundError) as err:
        write_atomic(tmp_path / "missing" / "f", "x")
    assert describe_os_error(err.value) == f"{tmp_path / 'missing' / 'f'}: no such file or directory"
    assert os.listdir(tmp_path) == ["dir"] and os.listdir(tmp_path / "dir") == []
    assert describe_os_error(FileNotFoundError("run-3.pt: no checkpoint")) == "run-3.pt: no checkpoint"
