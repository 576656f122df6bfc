"""Writers of tiny data files in the real on-disk formats, for the loader tests."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
from PIL import Image

IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    """The IDX encoding: magic (0x08 type, ndim), big-endian int32 sizes, then the uint8 data."""
    magic = 0x800 | array.ndim if magic is None else magic
    return struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray, *, gz: bool = True, magic: int | None = None, cut: int = 0) -> Path:
    raw = idx_bytes(array, magic)
    raw = raw[: len(raw) - cut]
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def mnist_folder(root: Path, n_train: int = 30, n_test: int = 20, *, gz: bool = True, seed: int = 0) -> Path:
    """A folder with the four MNIST-format files; image ``i`` is filled with the value of its label × 20."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = np.repeat(labels[:, None, None] * 20, 28, 1).repeat(28, 2).astype(np.uint8)
        images_name, labels_name = IDX_FILES[split]
        suffix = ".gz" if gz else ""
        write_idx(root / (images_name + suffix), images, gz=gz)
        write_idx(root / (labels_name + suffix), labels, gz=gz)
    return root


def cifar_folder(root: Path, per_batch: int = 4, seed: int = 0) -> Path:
    """``data_batch_1..5`` and ``test_batch`` as pickled dicts with bytes keys, as the official archive."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
        batch = {
            b"batch_label": name.encode(),
            b"labels": rng.integers(0, 10, per_batch).tolist(),
            b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
            b"filenames": [f"{name}_{i}.png".encode() for i in range(per_batch)],
        }
        with (root / name).open("wb") as f:
            pickle.dump(batch, f)
    return root


def image_tree(root: Path, classes=("cat", "dog", "fox"), per_class: int = 2, size=(40, 30)) -> Path:
    """``train/<class>/`` and ``val/<class>/`` with small JPEG and PNG files of one colour per class."""
    for split in ("train", "val"):
        for c, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                image = Image.new("RGB", size, (80 * c, 40 * i, 200))
                image.save(folder / f"{i}.{'jpg' if i % 2 else 'png'}")
    return root


def _binstring(b: bytes) -> bytes:
    return b"U" + bytes([len(b)]) + b if len(b) < 256 else b"T" + struct.pack("<i", len(b)) + b


def py2_pickle(batch: dict[bytes, np.ndarray | list[int]]) -> bytes:
    """``batch`` pickled as Python 2's cPickle wrote the CIFAR-10 archive: protocol 2, byte strings as
    ``BINSTRING``, arrays through ``numpy.core.multiarray._reconstruct`` (2-D ``uint8`` arrays, small ints)."""
    out = b"\x80\x02}("  # PROTO 2, EMPTY_DICT, MARK
    for key, value in batch.items():
        out += _binstring(key)
        if isinstance(value, np.ndarray):
            dtype = b"cnumpy\ndtype\n" + _binstring(b"u1") + b"\x89\x88\x87R"  # dtype('u1', False, True)
            dtype += b"(K\x03" + _binstring(b"|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"  # its state
            shape = b"".join(b"J" + struct.pack("<i", n) for n in value.shape) + b"\x86"
            out += b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + _binstring(b"b") + b"\x87R"
            out += b"(K\x01" + shape + dtype + b"\x89" + _binstring(value.tobytes()) + b"tb"  # BUILD the array
        else:
            out += b"](" + b"".join(b"K" + bytes([v]) for v in value) + b"e"  # EMPTY_LIST, MARK, APPENDS
    return out + b"u."  # SETITEMS, STOP
