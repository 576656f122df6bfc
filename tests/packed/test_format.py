"""The .qnn container: layout, and a clear error for each kind of damage."""

import hashlib
import struct
from pathlib import Path

import pytest
import torch
from torch import nn

from qnnlab.packed import PackedFileError, export_model, load_packed, read_packed
from qnnlab.packed.format import FORMAT_VERSION, FRAME_BYTES, MAGIC, read_container, write_container


@pytest.fixture
def qnn(tmp_path: Path) -> Path:
    path = tmp_path / "m.qnn"
    export_model(nn.Linear(20, 3), {"weight": 1}, path)
    return path


def test_round_trip_and_frame_layout(tmp_path: Path) -> None:
    tensors = {"a": torch.arange(5, dtype=torch.uint8), "b": torch.tensor([1.5, -2.0], dtype=torch.float64)}
    size = write_container(tmp_path / "x.qnn", tensors, {"k": [1, 2]})
    data = (tmp_path / "x.qnn").read_bytes()
    assert size == len(data)
    magic, version, length, digest = struct.unpack_from("<8sIQ32s", data)
    assert (magic, version, length, FRAME_BYTES) == (MAGIC, FORMAT_VERSION, len(data) - 52, 52)
    assert digest == hashlib.sha256(data[52:]).digest()
    back, meta = read_container(tmp_path / "x.qnn")
    assert meta == {"k": [1, 2]}
    assert back.keys() == tensors.keys() and all(torch.equal(back[k], t) for k, t in tensors.items())


def damage(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_bad_magic(qnn: Path) -> None:
    damage(qnn, b"PK\x03\x04" + qnn.read_bytes()[4:])
    with pytest.raises(PackedFileError, match=r"m\.qnn: not a qnnlab packed file \(starts with b'PK\\x03\\x04"):
        read_packed(qnn)


def test_truncated_buffer(qnn: Path) -> None:
    data = qnn.read_bytes()
    damage(qnn, data[:-10])
    n = len(data) - FRAME_BYTES
    with pytest.raises(PackedFileError, match=f"truncated: the frame announces {n} payload bytes, found {n - 10}"):
        read_packed(qnn)


@pytest.mark.parametrize("keep", [0, 5, 30])
def test_truncated_inside_the_frame(qnn: Path, keep: int) -> None:
    damage(qnn, qnn.read_bytes()[:keep])
    with pytest.raises(PackedFileError, match=f"truncated: {keep} bytes, shorter than the 52-byte frame"):
        read_packed(qnn)


def test_checksum_mismatch(qnn: Path) -> None:
    data = bytearray(qnn.read_bytes())
    data[-3] ^= 0x01  # one flipped bit in the tensor buffers
    damage(qnn, bytes(data))
    with pytest.raises(PackedFileError, match=r"checksum mismatch: .* \(the file is corrupt\)"):
        load_packed(qnn, model=nn.Linear(20, 3))


def test_unknown_version(qnn: Path) -> None:
    data = bytearray(qnn.read_bytes())
    data[8:12] = struct.pack("<I", 7)
    damage(qnn, bytes(data))
    with pytest.raises(PackedFileError, match="format version 7 is not supported; this qnnlab reads version 1"):
        read_packed(qnn)


def test_trailing_bytes(qnn: Path) -> None:
    damage(qnn, qnn.read_bytes() + b"\x00\x00")
    with pytest.raises(PackedFileError, match="2 unexpected bytes after the"):
        read_packed(qnn)


def frame(payload: bytes) -> bytes:
    return struct.pack("<8sIQ32s", MAGIC, 1, len(payload), hashlib.sha256(payload).digest()) + payload


def test_a_well_framed_but_malformed_payload(tmp_path: Path) -> None:
    path = damage(tmp_path / "x.qnn", frame(b"not safetensors"))
    with pytest.raises(PackedFileError, match="malformed payload"):
        read_packed(path)


def test_a_quantized_tensor_without_its_scale(tmp_path: Path) -> None:
    meta = {"config": None, "n_outputs": None, "input_shape": None}
    meta["quantized"] = {"w": {"bits": 1, "shape": [1, 8], "dtype": "float32", "scale": "fixed"}}
    write_container(tmp_path / "x.qnn", {"packed:w": torch.zeros(1, 1, dtype=torch.uint8)}, meta)
    with pytest.raises(PackedFileError, match="malformed contents: tensor 'w': 'scale:w'"):
        read_packed(tmp_path / "x.qnn")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PackedFileError, match=r"nope\.qnn: no such file"):
        read_packed(tmp_path / "nope.qnn")
