"""CIFAR-10 from the standard python-pickle batches in a local folder.

The folder (``cifar-10-batches-py`` of the official archive, Krizhevsky 2009) holds
``data_batch_1`` … ``data_batch_5`` (training) and ``test_batch``: each a pickled dict with
``b"data"``, an ``N×3072`` uint8 array (the red, green and blue 32×32 planes of each image,
row-major), and ``b"labels"``, ``N`` ints in ``0..9``. A plain pickle can run any code when
loaded; these are read by a restricted unpickler that builds only what the format holds
(dicts, lists, ints, byte strings and numpy arrays) and refuses every other global, so a crafted
batch file fails with a :class:`DataError` instead of running its payload.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import Field

from qnnlab.data import DataError, Dataset, FileDataConfig, Pixels, data_folder, register_dataset, subset
from qnnlab.io import describe_os_error

__all__ = ["TEST_BATCH", "TRAIN_BATCHES", "CIFAR10Data", "cifar10", "read_batch"]

TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
_EXPECTED = "a pickled dict with b'data' (N×3072 uint8) and b'labels' (N ints in 0..9)"


# the globals a batch may name: numpy's array reconstructors (protocols 2–4, and 5's in-band
# buffers) and the classes they take; the original archive's ``numpy.core`` is now ``numpy._core``
_ALLOWED = {
    "numpy": {"ndarray", "dtype"},
    "numpy._core.multiarray": {"_reconstruct"},
    "numpy._core.numeric": {"_frombuffer"},
}
_RENAMED = {"numpy.core.multiarray": "numpy._core.multiarray", "numpy.core.numeric": "numpy._core.numeric"}


class _Forbidden(pickle.UnpicklingError):
    """A global outside :data:`_ALLOWED`: the file asks to import or call something a batch never holds."""


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        if name in _ALLOWED.get(_RENAMED.get(module, module), ()):
            return super().find_class(_RENAMED.get(module, module), name)
        raise _Forbidden(f"refused to load {module}.{name}, which is not part of the format")


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(images N×3×32×32 uint8, labels N int64)`` of one batch file, unpickled with only the format's types."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        names = ", ".join((*TRAIN_BATCHES, TEST_BATCH))
        raise DataError(f"{path}: no such file; a CIFAR-10 folder holds {names}") from None
    except OSError as err:
        raise DataError(describe_os_error(err)) from None
    try:
        batch = _BatchUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except _Forbidden as err:
        raise DataError(f"{path}: {err}; expected {_EXPECTED}") from None
    except Exception as err:  # whatever the bytes make the unpickler trip on: nothing of theirs has run
        raise DataError(f"{path}: not a readable pickle ({type(err).__name__}: {err}); expected {_EXPECTED}") from None
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise DataError(f"{path}: unexpected contents; expected {_EXPECTED}")
    data = batch[b"data"]
    try:
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        raise DataError(f"{path}: labels that are not integers; expected {_EXPECTED}") from None
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != 3072
        or labels.shape != (len(data),)
    ):
        shape, dtype = getattr(data, "shape", "?"), getattr(data, "dtype", type(data).__name__)
        raise DataError(f"{path}: data of shape {shape} ({dtype}) for {labels.size} labels; expected {_EXPECTED}")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"{path}: labels out of range [{labels.min()}, {labels.max()}]; expected 0..9")
    return data.reshape(-1, 3, 32, 32), labels


class CIFAR10Data(FileDataConfig):
    """CIFAR-10 (Krizhevsky 2009): the python-pickle batches ``data_batch_1..5`` and ``test_batch``."""

    name: Literal["cifar10"] = "cifar10"
    augment: bool = Field(False, description="random 32×32 crops of the 4-pixel zero-padded image and horizontal flips")


@register_dataset("cifar10", config=CIFAR10Data)
def cifar10(cfg: CIFAR10Data) -> Dataset:
    """Both splits as ``uint8`` images, normalized per channel with training statistics; optional crop/flip."""
    folder = data_folder(cfg.data_dir, "cifar-10-batches-py")
    train = [read_batch(folder / name) for name in TRAIN_BATCHES]
    x_te, y_te = read_batch(folder / TEST_BATCH)
    x_tr, y_tr = np.concatenate([b[0] for b in train]), np.concatenate([b[1] for b in train])
    if len(x_tr) == 0 or len(x_te) == 0:
        raise DataError(f"{folder}: 0 images in {'the training batches' if len(x_tr) == 0 else TEST_BATCH}")
    gen = torch.Generator().manual_seed(cfg.seed)
    x_tr, y_tr = subset(torch.from_numpy(x_tr), torch.from_numpy(y_tr), cfg.n_train, gen, "cifar10 training split")
    x_te, y_te = subset(torch.from_numpy(x_te), torch.from_numpy(y_te), cfg.n_test, gen, "cifar10 test split")
    pixels = Pixels.fit(x_tr, f"{folder} (training batches)", pad=4 if cfg.augment else 0, flip=cfg.augment)
    return Dataset(x_tr, y_tr, x_te, y_te, n_outputs=10, pixels=pixels)
