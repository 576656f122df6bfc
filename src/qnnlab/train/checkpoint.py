"""Run checkpoints: written atomically with a SHA-256 digest, loaded with ``weights_only=True`` and verified.

A checkpoint (``RESULTS/checkpoints/run-ID.pt``) is a dict of tensors and plain values (no
pickled objects): what :func:`qnnlab.packed.export_run` packs (``config``, ``model``,
``continuous``, ``quantized``, ``grid_scales``), and, for resuming, the optimizer's state and
the ``training`` state of :func:`qnnlab.fit` (learning-rate and per-epoch schedulers, the
global and data-order RNG states, the recorder's clock; the metric history stays in the run store,
so a checkpoint's size does not grow with the epochs). ``epoch`` is the last
epoch it holds; ``final`` says whether the run had finished.

``sha256`` is the digest of everything else (:func:`digest`): every tensor's name, dtype,
shape and bytes and every other value's ``repr``, in key order. :func:`load_checkpoint`
recomputes it, so a flipped byte anywhere in a tensor or a value fails with one line naming
the file. A checkpoint without a digest (written before qnnlab stored one) loads unverified.

:func:`previous_run` finds the run a resumed :func:`qnnlab.fit` continues: the last one of the
comparison recorded with the same config (``checkpoint_every`` and ``checkpoint_interval`` aside).
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.torch_version import TorchVersion

from qnnlab.io import atomic_file, dumps_json
from qnnlab.store import RunStore, StoreError

__all__ = ["CheckpointError", "checkpoint_path", "digest", "load_checkpoint", "previous_run", "save_checkpoint"]


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded or fails its digest; the message names the file."""


def checkpoint_path(results_dir: str | Path, run_id: int) -> Path:
    return Path(results_dir) / "checkpoints" / f"run-{run_id}.pt"


def import_run(store: RunStore, source: RunStore, run_id: int) -> int:
    """Copy run ``run_id`` of ``source`` into ``store`` with its checkpoint (written atomically); its new id."""
    new = store.import_run(source, run_id)
    origin = checkpoint_path(source.dir, run_id)
    if origin.is_file():
        target = checkpoint_path(store.dir, new)
        target.parent.mkdir(parents=True, exist_ok=True)
        with origin.open("rb") as src, atomic_file(target) as dst:
            shutil.copyfileobj(src, dst)
    return new


def _feed(h: Any, key: str, value: Any) -> None:
    if isinstance(value, Tensor):
        t = value.detach().cpu().contiguous().reshape(-1)
        h.update(f"{key}:{t.dtype}:{tuple(value.shape)}:".encode())
        h.update(t.view(torch.uint8).numpy().tobytes())
    elif isinstance(value, Mapping):
        for k in sorted(value, key=repr):
            _feed(h, f"{key}/{k!r}", value[k])
    elif isinstance(value, list | tuple):
        h.update(f"{key}:{type(value).__name__}{len(value)}".encode())
        for i, v in enumerate(value):
            _feed(h, f"{key}/{i}", v)
    else:
        h.update(f"{key}={value!r};".encode())


def digest(state: Mapping[str, Any]) -> str:
    """The SHA-256 (hex) of ``state`` without its ``sha256`` key; see the module docstring."""
    h = hashlib.sha256()
    _feed(h, "", {k: v for k, v in state.items() if k != "sha256"})
    return h.hexdigest()


def save_checkpoint(path: str | Path, state: Mapping[str, Any]) -> str:
    """Write ``state`` with its digest to ``path`` atomically (readers see the old file or the new one); returns it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sha = digest(state)
    buffer = io.BytesIO()
    torch.save({**state, "sha256": sha}, buffer)
    with atomic_file(path) as f:
        f.write(buffer.getbuffer())
    return sha


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint at ``path`` (on the CPU), its digest verified; :class:`CheckpointError` naming the file."""
    path = Path(path)
    try:
        # the versions hold torch.__version__, a TorchVersion (a str subclass)
        with torch.serialization.safe_globals([TorchVersion]):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except OSError:
        raise
    except Exception as err:  # a foreign or damaged file can fail anywhere in the unpickler
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise CheckpointError(f"{path}: not a qnnlab run checkpoint ({type(err).__name__}: {first})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: not a qnnlab run checkpoint (a {type(state).__name__}, not a dict)")
    if "sha256" in state and state["sha256"] != digest(state):
        raise CheckpointError(f"{path}: damaged (its SHA-256 digest does not match its contents)")
    return state


_WHEN = ("checkpoint_every", "checkpoint_interval")  # when checkpoints are written: not what the run computes


def _identity(config: Mapping[str, Any]) -> Any:
    return {k: v for k, v in json.loads(dumps_json(config)).items() if k not in _WHEN}


def previous_run(store: RunStore, comparison: str, config: Mapping[str, Any]) -> dict[str, Any] | None:
    """The last run of ``comparison`` in ``store`` recorded with ``config`` (as stored; ``checkpoint_every`` and
    ``checkpoint_interval`` aside), or ``None``. A run still ``running`` in a live process raises
    :class:`StoreError`: it is not resumed twice."""
    wanted = _identity(config)
    found = [r for r in store.runs(comparison) if _identity(r["config"]) == wanted]
    if not found:
        return None
    last = found[-1]
    if last["status"] == "running":
        where = f"pid {last.get('pid')} on {last.get('host')}" if last.get("pid") is not None else "another process"
        raise StoreError(
            f"{store.path}: run {last['id']} ({last['label']}, seed {last['seed']}) is still running ({where})"
        )
    return last
