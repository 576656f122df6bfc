"""The ``.qnn`` file: a versioned, checksummed frame around a safetensors payload.

Layout (integers little-endian)::

    offset  bytes  content
    0       8      magic b"QNNPACK\\n"
    8       4      format version, uint32 (this module writes and reads FORMAT_VERSION = 1)
    12      8      payload length n, uint64
    20      32     SHA-256 of the payload
    52      n      payload: a safetensors file (8-byte header length, JSON header, raw buffers)

The payload's tensors are named ``packed:NAME`` (uint8, the codes of quantized tensor NAME,
:mod:`qnnlab.packed.bits`), ``scale:NAME`` (float32, ``()`` or one per output channel) and
``float:NAME`` (every other state-dict entry, in its own dtype). The safetensors metadata has
one key, ``qnnlab``, a JSON object::

    {"format_version": 1, "qnnlab_version": "0.1.0",
     "config": {...the run config...} | null, "n_outputs": 1 | null, "input_shape": [10] | null,
     "quantized": {"NAME": {"bits": 1, "shape": [1, 10], "dtype": "float32", "scale": "fixed"}}}

:class:`PackedMeta` is that object's schema; :func:`read_meta` checks it.

The safetensors container (https://huggingface.co/docs/safetensors) is a simple, documented
format that other tools read; the frame adds what it lacks: a magic number, a version and a
checksum, so that a wrong, truncated or corrupted file fails with a message naming the fault.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import Tensor

from qnnlab.config import format_validation_error
from qnnlab.io import write_atomic
from qnnlab.packed.bits import MAX_BITS

__all__ = [
    "FORMAT_VERSION",
    "FRAME_BYTES",
    "MAGIC",
    "PackedFileError",
    "PackedMeta",
    "TensorMeta",
    "read_container",
    "read_meta",
    "write_container",
]

MAGIC = b"QNNPACK\n"
FORMAT_VERSION = 1
_FRAME = struct.Struct("<8sIQ32s")
FRAME_BYTES = _FRAME.size  # 52


class PackedFileError(ValueError):
    """A ``.qnn`` file that cannot be read; the message names the file and the fault."""


def write_container(path: str | Path, tensors: dict[str, Tensor], meta: dict[str, Any]) -> int:
    """Write ``tensors`` and the JSON-able ``meta`` to ``path`` (atomically); returns the file size."""
    payload = st_save({k: t.contiguous() for k, t in tensors.items()}, metadata={"qnnlab": json.dumps(meta)})
    frame = _FRAME.pack(MAGIC, FORMAT_VERSION, len(payload), hashlib.sha256(payload).digest())
    write_atomic(Path(path), frame + payload)
    return len(frame) + len(payload)


def read_container(path: str | Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """``(tensors, meta)`` of a file written by :func:`write_container`; raises :class:`PackedFileError`."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise PackedFileError(f"{path}: no such file") from None
    if not data.startswith(MAGIC) and not MAGIC.startswith(data):
        raise PackedFileError(f"{path}: not a qnnlab packed file (starts with {data[:8]!r}, expected {MAGIC!r})")
    if len(data) < FRAME_BYTES:
        raise PackedFileError(f"{path}: truncated: {len(data)} bytes, shorter than the {FRAME_BYTES}-byte frame")
    _, version, length, digest = _FRAME.unpack_from(data)
    if version != FORMAT_VERSION:
        raise PackedFileError(
            f"{path}: format version {version} is not supported; this qnnlab reads version {FORMAT_VERSION}"
        )
    payload = data[FRAME_BYTES:]
    if len(payload) < length:
        raise PackedFileError(f"{path}: truncated: the frame announces {length} payload bytes, found {len(payload)}")
    if len(payload) > length:
        raise PackedFileError(f"{path}: {len(payload) - length} unexpected bytes after the {length}-byte payload")
    if hashlib.sha256(payload).digest() != digest:
        raise PackedFileError(
            f"{path}: checksum mismatch: the payload's SHA-256 is {hashlib.sha256(payload).hexdigest()[:16]}…,"
            f" the frame says {digest.hex()[:16]}… (the file is corrupt)"
        )
    try:
        tensors = st_load(payload)
        (n,) = struct.unpack_from("<Q", payload)
        meta = json.loads(json.loads(payload[8 : 8 + n])["__metadata__"]["qnnlab"])
    except (SafetensorError, ValueError, KeyError, TypeError, RecursionError) as err:
        raise PackedFileError(f"{path}: malformed payload: {err}") from None
    return tensors, meta


class TensorMeta(BaseModel):
    """One quantized tensor: its bits, shape, dtype and how its scale was chosen."""

    model_config = ConfigDict(extra="forbid", strict=True)
    bits: int = Field(ge=1, le=MAX_BITS)
    shape: list[Annotated[int, Field(ge=0)]]
    dtype: Literal["float16", "bfloat16", "float32", "float64"]
    scale: Literal["fixed", "tensor", "channel"]


class PackedMeta(BaseModel):
    """The ``qnnlab`` metadata object of a ``.qnn`` payload."""

    model_config = ConfigDict(extra="forbid", strict=True)
    format_version: Literal[1]
    qnnlab_version: str
    config: dict[str, Any] | None
    n_outputs: Annotated[int, Field(ge=1)] | None
    input_shape: list[Annotated[int, Field(ge=1)]] | None
    quantized: dict[str, TensorMeta]


def read_meta(path: str | Path, meta: Any) -> PackedMeta:
    """``meta`` checked against :class:`PackedMeta`; raises :class:`PackedFileError` naming the field."""
    try:
        return PackedMeta.model_validate(meta)
    except ValidationError as err:
        raise PackedFileError(f"{path}: malformed metadata: {format_validation_error(err)}") from None
