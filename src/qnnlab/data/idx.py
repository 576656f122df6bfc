"""MNIST-format data: the IDX files of MNIST and Fashion-MNIST, read with numpy.

An IDX file (LeCun et al., http://yann.lecun.com/exdb/mnist/) is a big-endian header —
two zero bytes, a type code (``0x08``: unsigned byte), the number of dimensions ``k`` —
then ``k`` 32-bit sizes, then the data. Image files have magic ``0x00000803``
(``N×28×28``), label files ``0x00000801`` (``N``). Files may be gzip-compressed
(``*.gz``, as Debian's ``dataset-fashion-mnist`` ships them) or raw.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from qnnlab.data import DataError, Dataset, FileDataConfig, Pixels, data_folder, register_dataset, subset

__all__ = [
    "IMAGES_MAGIC",
    "LABELS_MAGIC",
    "FashionMNISTData",
    "MNISTData",
    "fashion_mnist",
    "load_idx_folder",
    "mnist",
    "read_idx",
]

IMAGES_MAGIC, LABELS_MAGIC = 0x803, 0x801
FASHION_MNIST_DEBIAN = "/usr/share/datasets/fashion-mnist"
# (split, images stem, labels stem, expected count) of the four standard files
_FILES = (
    ("train", "train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    ("test", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
)


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as err:
        raise DataError(f"{path}: truncated or corrupt gzip file ({err})") from None


def read_idx(path: str | Path, magic: int) -> np.ndarray:
    """The array stored in an IDX file whose magic number must be ``magic`` (``0x803`` or ``0x801``)."""
    path = Path(path)
    raw = _read_bytes(path)
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < 4:
        raise DataError(f"{path}: truncated: {len(raw)} bytes, fewer than the 4-byte magic number")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise DataError(f"{path}: wrong magic number 0x{found:08x}; expected 0x{magic:08x} (an IDX file of uint8)")
    if len(raw) < header:
        raise DataError(f"{path}: truncated header: {len(raw)} bytes, expected {header}")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, offset=4))
    size = int(np.prod(shape))
    if len(raw) - header != size:
        raise DataError(
            f"{path}: {'truncated' if len(raw) - header < size else 'trailing bytes'}: "
            f"expected {size} bytes of data for shape {shape}, found {len(raw) - header}"
        )
    return np.frombuffer(raw, np.uint8, size, offset=header).reshape(shape)


def _find(folder: Path, stem: str, what: str) -> Path:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    names = ", ".join(f"{s}[.gz]" for _, *pair in _FILES for s in pair)
    raise DataError(f"{what}: no {stem}[.gz] in {folder}; expected the four IDX files {names}")


def load_idx_folder(folder: Path, cfg: FileDataConfig, what: str) -> Dataset:
    """Both splits of an MNIST-format folder as ``uint8`` ``N×1×28×28`` images and long labels."""
    gen = torch.Generator().manual_seed(cfg.seed)
    splits = []
    for split, images_stem, labels_stem in _FILES:
        images_path, labels_path = _find(folder, images_stem, what), _find(folder, labels_stem, what)
        images, labels = read_idx(images_path, IMAGES_MAGIC), read_idx(labels_path, LABELS_MAGIC)
        if len(images) != len(labels):
            raise DataError(f"{labels_path}: {len(labels)} labels for {len(images)} images in {images_path}")
        if labels.size and labels.max() > 9:
            raise DataError(f"{labels_path}: label {labels.max()} out of range; expected 0..9")
        x = torch.from_numpy(images.copy()).unsqueeze(1)
        y = torch.from_numpy(labels.astype(np.int64))
        splits += subset(x, y, cfg.n_train if split == "train" else cfg.n_test, gen, f"{what} {split} split")
    x_tr, y_tr, x_te, y_te = splits
    return Dataset(x_tr, y_tr, x_te, y_te, n_outputs=10, pixels=Pixels.fit(x_tr))


class FashionMNISTData(FileDataConfig):
    """Fashion-MNIST (Xiao, Rasul & Vollgraf 2017, arXiv:1708.07747): the four IDX files, 60k/10k 28×28 grey images."""

    name: Literal["fashion_mnist"] = "fashion_mnist"


class MNISTData(FileDataConfig):
    """MNIST (LeCun et al. 1998): the four standard IDX files in a local folder."""

    name: Literal["mnist"] = "mnist"


@register_dataset("fashion_mnist", config=FashionMNISTData)
def fashion_mnist(cfg: FashionMNISTData) -> Dataset:
    """Fashion-MNIST (Xiao, Rasul & Vollgraf 2017, arXiv:1708.07747): 60k/10k 28×28 grey images, 10 classes."""
    return load_idx_folder(data_folder(cfg.data_dir, "fashion-mnist", FASHION_MNIST_DEBIAN), cfg, "fashion_mnist")


@register_dataset("mnist", config=MNISTData)
def mnist(cfg: MNISTData) -> Dataset:
    """MNIST from the four standard IDX files in a local folder (``$QNNLAB_DATA/mnist`` by default)."""
    return load_idx_folder(data_folder(cfg.data_dir, "mnist"), cfg, "mnist")
