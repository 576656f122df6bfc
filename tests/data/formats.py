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
