"""MNIST-format data: the IDX files of MNIST and Fashion-MNIST, read with numpy.

An IDX file (LeCun et al., http://yann.lecun.com/exdb/mnist/) is a big-endian header —
two zero bytes, a type code (``0x08``: unsigned byte), the number of dimensions ``k`` —
then ``k`` 32-bit sizes, then the data. Image files have magic ``0x00000803``
(``N×28×28``), label files ``0x00000801`` (``N``). Files may be gzip-compressed
(``*.gz``, as Debian's ``dataset-fashion-mnist`` ships them) or raw.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from contextlib import nullcontext
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np
import torch

from qnnlab.data import DataError, Dataset, FileDataConfig, Pixels, data_folder, register_dataset, subset
from qnnlab.io import describe_os_error

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


# deflate emits at least 2 bits per 258-byte match: no gzip file holds more than ~1032× its size
_DEFLATE_MAX_RATIO = 1032


def read_idx(path: str | Path, magic: int) -> np.ndarray:
    """The array stored in an IDX file whose magic number must be ``magic`` (``0x803`` or ``0x801``).

    The header's sizes are checked against what the file can hold before anything is allocated,
    and a gzip file is decompressed only up to the size its header announces (no gzip bombs).
    """
    path = Path(path)
    try:
        with path.open("rb") as raw:
            gz = raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
            on_disk = os.fstat(raw.fileno()).st_size
            with gzip.GzipFile(fileobj=raw) if gz else nullcontext(raw) as f:
                return _parse(path, f, magic, on_disk, gz)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise DataError(f"{path}: truncated or corrupt gzip file ({err})") from None
    except OSError as err:
        raise DataError(describe_os_error(err)) from None


def _parse(path: Path, f: BinaryIO, magic: int, on_disk: int, gz: bool) -> np.ndarray:
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    head = f.read(4)
    if len(head) < 4:
        raise DataError(f"{path}: truncated: {len(head)} bytes, fewer than the 4-byte magic number")
    found = int.from_bytes(head, "big")
    if found != magic:
        raise DataError(f"{path}: wrong magic number 0x{found:08x}; expected 0x{magic:08x} (an IDX file of uint8)")
    sizes = f.read(4 * ndim)
    if len(sizes) < 4 * ndim:
        raise DataError(f"{path}: truncated header: {4 + len(sizes)} bytes, expected {header}")
    shape = tuple(int.from_bytes(sizes[i : i + 4], "big") for i in range(0, 4 * ndim, 4))
    size = math.prod(shape)  # exact, whatever the header says (np.prod would overflow)
    if gz and size > _DEFLATE_MAX_RATIO * on_disk:
        raise DataError(
            f"{path}: corrupt header: shape {shape} needs {size} bytes of data; "
            f"a gzip file of {on_disk} bytes holds at most {_DEFLATE_MAX_RATIO * on_disk}"
        )
    data = f.read(size + 1 if gz else min(size + 1, on_disk))  # never more than the header or the file allows
    if len(data) != size:
        short = len(data) < size
        raise DataError(
            f"{path}: {'truncated' if short else 'trailing bytes'}: "
            f"expected {size} bytes of data for shape {shape}, found {len(data) if short else 'more'}"
        )
    return np.frombuffer(data, np.uint8, size).reshape(shape)


def _find(folder: Path, stem: str, what: str) -> Path:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    names = ", ".join(f"{s}[.gz]" for _, *pair in _FILES for s in pair)
    raise DataError(f"{what}: no {stem}[.gz] in {folder}; expected the four IDX files {names}")


def load_idx_folder(folder: Path, cfg: FileDataConfig, what: str) -> Dataset:
    """Both splits of an MNIST-format folder as ``uint8`` ``N×1×28×28`` images and long labels."""
    gen = torch.Generator().manual_seed(cfg.seed)
    splits, train = [], None  # train: the training images' file and image shape
    for split, images_stem, labels_stem in _FILES:
        images_path, labels_path = _find(folder, images_stem, what), _find(folder, labels_stem, what)
        images, labels = read_idx(images_path, IMAGES_MAGIC), read_idx(labels_path, LABELS_MAGIC)
        if len(images) == 0:
            raise DataError(f"{images_path}: 0 images; the {split} split needs at least one")
        train = train or (images_path, images.shape[1:])
        if images.shape[1:] != train[1]:
            shape, expected = ("×".join(map(str, s)) for s in (images.shape[1:], train[1]))
            raise DataError(f"{images_path}: {shape} images; the training images ({train[0]}) are {expected}")
        if len(images) != len(labels):
            raise DataError(f"{labels_path}: {len(labels)} labels for {len(images)} images in {images_path}")
        if labels.size and labels.max() > 9:
            raise DataError(f"{labels_path}: label {labels.max()} out of range; expected 0..9")
        x = torch.from_numpy(images.copy()).unsqueeze(1)
        y = torch.from_numpy(labels.astype(np.int64))
        splits += subset(x, y, cfg.n_train if split == "train" else cfg.n_test, gen, f"{what} {split} split")
    x_tr, y_tr, x_te, y_te = splits
    return Dataset(x_tr, y_tr, x_te, y_te, n_outputs=10, pixels=Pixels.fit(x_tr, str(train[0])))


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
