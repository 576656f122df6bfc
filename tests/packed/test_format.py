"""The .qnn container: layout, and a clear error for each kind of damage."""

import hashlib
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import save as st_save
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


def well_framed(path: Path, tensors: dict, **meta) -> Path:
    """A file with a valid frame and checksum around ``tensors`` and the metadata of a 1×8 binary ``w``."""
    base = {"format_version": 1, "qnnlab_version": "0.1.0", "config": None, "n_outputs": None, "input_shape": None}
    base["quantized"] = {"w": {"bits": 1, "shape": [1, 8], "dtype": "float32", "scale": "fixed"}}
    write_container(path, tensors, base | meta)
    return path


W = {"packed:w": torch.zeros(1, 1, dtype=torch.uint8), "scale:w": torch.tensor(1.0)}
ENTRY = {"bits": 1, "shape": [1, 8], "dtype": "float32", "scale": "fixed"}


@pytest.mark.parametrize(
    ("tensors", "meta", "message"),
    [
        (W, {}, None),  # the baseline reads
        ({"packed:w": W["packed:w"]}, {}, "tensor 'w': 'scale:w'"),
        (
            {**W, "packed:v": torch.zeros(1, 1, dtype=torch.uint8)},
            {},
            "tensor 'packed:v' is not described by the metadata",
        ),
        ({**W, "float:w": torch.zeros(3)}, {}, "tensor 'w' is stored both packed and as is"),
        (W, {"quantized": {"w": {**ENTRY, "bits": 0}}}, "quantized.w.bits: Input should be greater than or equal to 1"),
        (W, {"quantized": {"w": {**ENTRY, "bits": "1"}}}, "quantized.w.bits: Input should be a valid integer"),
        (W, {"quantized": {"w": {**ENTRY, "shape": [-1, 8]}}}, "quantized.w.shape.0: Input should be greater than"),
        (W, {"quantized": {"w": {**ENTRY, "shape": [2, 8]}}}, "packed codes of 8 columns at 1 bits must be uint8"),
        (W, {"quantized": {"w": {**ENTRY, "dtype": "int64"}}}, "quantized.w.dtype: Input should be 'float16'"),
        (W, {"quantized": {"w": {**ENTRY, "scale": "channel"}}}, "a 'channel' scale has 1 dims"),
        (W, {"quantized": {"w": {**ENTRY, "evil": 1}}}, "quantized.w.evil: Extra inputs are not permitted"),
        (W, {"quantized": ["w"]}, "quantized: Input should be a valid dictionary"),
        (W, {"input_shape": ["a"]}, "input_shape.0: Input should be a valid integer"),
        (W, {"format_version": 2}, "format_version: Input should be 1"),
        ({**W, "scale:w": torch.tensor(-1.0)}, {}, "scale must be finite and > 0"),
        ({**W, "scale:w": torch.tensor(float("nan"))}, {}, "scale must be finite and > 0"),
        ({**W, "scale:w": torch.tensor(1.0, dtype=torch.float64)}, {}, "scale must be float32 of shape"),
    ],
)
def test_a_hostile_or_inconsistent_payload_fails_with_one_line(tmp_path: Path, tensors, meta, message) -> None:
    path = well_framed(tmp_path / "x.qnn", tensors, **meta)
    if message is None:
        assert read_packed(path).specs["w"].bits == 1
        return
    with pytest.raises(PackedFileError) as err:
        read_packed(path)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert str(err.value).startswith(f"{path}: malformed ")


def test_metadata_that_is_not_an_object_or_is_deeply_nested(tmp_path: Path) -> None:
    write_container(tmp_path / "x.qnn", W, [1, 2])  # type: ignore[arg-type]
    with pytest.raises(PackedFileError, match="malformed metadata: config: Input should be a valid dictionary"):
        read_packed(tmp_path / "x.qnn")
    damage(tmp_path / "y.qnn", frame(st_save(W, metadata={"qnnlab": "[" * 100_000 + "]" * 100_000})))
    with pytest.raises(PackedFileError, match="malformed payload"):
        read_packed(tmp_path / "y.qnn")


def test_a_config_that_builds_another_model_fails_before_allocating_it(tmp_path: Path) -> None:
    # a valid run config whose MLP (10^6 wide: 8 GB of float32 weights) does not match the stored tensors
    config = {
        "data": {"name": "logistic"},
        "model": {"name": "mlp", "width": 1_000_000, "depth": 2},
        "method": {"name": "sgd", "lr": 0.1},
    }
    path = well_framed(tmp_path / "x.qnn", W, config=config, n_outputs=1, input_shape=[10])
    with pytest.raises(PackedFileError, match=r"tensor '.*' is .* in the model its run config builds"):
        load_packed(path)
    path = well_framed(tmp_path / "y.qnn", W, config={"model": {"name": "nope"}}, n_outputs=1, input_shape=[10])
    with pytest.raises(PackedFileError, match=r"y\.qnn: its run config: model: Input tag 'nope'"):
        load_packed(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PackedFileError, match=r"nope\.qnn: no such file"):
        read_packed(tmp_path / "nope.qnn")
