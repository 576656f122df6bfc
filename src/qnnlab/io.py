"""File writes that are atomic, JSON that is valid, and OS errors as one line naming the path.

An atomic write goes to a temporary file of its own (a unique name beside the target, so that
concurrent writers never share one), is flushed to disk, then renamed over the target in one
step: a reader sees the old file or the new one, never a part of either. Errors name the
target, not the temporary file, which is removed.

JSON written by qnnlab (the store's summaries and series, ``--json`` output, sweep records) is
strict JSON: a NaN or an infinity is written as ``null`` (:func:`dumps_json`), never as the
bare ``NaN``/``Infinity`` that other parsers reject.
"""

from __future__ import annotations

import json
import math
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, BinaryIO

__all__ = ["atomic_file", "describe_os_error", "dumps_json", "finite_or_none", "write_atomic"]


@contextmanager
def atomic_file(path: str | Path) -> Iterator[BinaryIO]:
    """A binary file that replaces ``path`` when the block ends; if the block raises, ``path`` is untouched.

    The new file gets the usual permissions (``0o666`` less the umask), as ``open`` would give it.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as err:
        raise type(err)(err.errno, err.strerror, str(path)) from None
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        with suppress(FileNotFoundError):
            tmp.unlink()
        if isinstance(err, OSError) and err.filename in (str(tmp), tmp):
            raise type(err)(err.errno, err.strerror, str(path)) from None
        raise


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` atomically."""
    with atomic_file(path) as f:
        f.write(data.encode() if isinstance(data, str) else data)


def describe_os_error(err: OSError) -> str:
    """One line naming the path: ``"out/model.qnn: is a directory"`` (``str(err)`` when it names none)."""
    if err.filename is None or err.strerror is None:
        return str(err)
    return f"{err.filename}: {err.strerror[0].lower()}{err.strerror[1:]}"


def finite_or_none(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, ±inf) replaced by ``None``, through dicts, lists and tuples."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_or_none(v) for v in value]
    return value


def dumps_json(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` of :func:`finite_or_none` of ``value``, with ``allow_nan=False``: valid JSON, NaN as ``null``."""
    return json.dumps(finite_or_none(value), allow_nan=False, **kwargs)
