"""Data sets built by name from a validated config; nothing is downloaded.

In-memory sets are a :class:`Dataset`: both splits as tensors, either float features or
``uint8`` images that :class:`Pixels` scales, normalizes and (for training) augments one
mini-batch at a time, so a 60k×784 set costs 47 MB rather than 188 MB. The ImageNet tree
is read lazily (:class:`qnnlab.data.imagefolder.ImageFolderData`, same batch interface).

File-backed sets look in ``data_dir`` when the config names one, else in
``$QNNLAB_DATA/<folder>``, else (Fashion-MNIST only) in Debian's
``/usr/share/datasets/fashion-mnist`` (``apt-get install dataset-fashion-mnist``).
A missing or malformed file raises :class:`DataError` naming the path and what was expected.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "DATA_ENV",
    "DataError",
    "Dataset",
    "Pixels",
    "data_folder",
    "eval_subset",
    "get_dataset",
    "random_crop_flip",
    "sample_indices",
    "subset",
]

DATA_ENV = "QNNLAB_DATA"
# a fixed subset for the train-split metrics, the same for every run and seed
_EVAL_SUBSET_SEED = 0


class DataError(ValueError):
    """A data file that is missing or not in the expected format; the message names the path."""


def data_folder(data_dir: str | None, folder: str, default: str | None = None) -> Path:
    """``data_dir`` if given, else ``$QNNLAB_DATA/folder``, else ``default``; :class:`DataError` if none applies."""
    if data_dir is not None:
        return Path(data_dir)
    if root := os.environ.get(DATA_ENV):
        return Path(root) / folder
    if default is not None:
        return Path(default)
    raise DataError(f"no folder given for {folder!r}: set data.data_dir, pass --data-dir, or set {DATA_ENV}")


def random_crop_flip(x: Tensor, pad: int, flip: bool, generator: torch.Generator | None = None) -> Tensor:
    """Per image: a random crop of the zero-padded image (shifts in ``[-pad, pad]``), mirrored with probability ½.

    One gather for the whole batch; the random numbers come from ``generator`` on the CPU.
    """
    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    di = torch.randint(0, 2 * pad + 1, (n, 1), generator=generator)
    dj = torch.randint(0, 2 * pad + 1, (n, 1), generator=generator)
    rows = di + torch.arange(h)
    cols = dj + torch.arange(w)
    if flip:
        mirror = torch.rand(n, 1, generator=generator) < 0.5
        cols = torch.where(mirror, cols.flip(1), cols)
    rows, cols = rows.to(x.device), cols.to(x.device)
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chan = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chan, rows[:, None, :, None], cols[:, None, None, :]]


@dataclass(frozen=True)
class Pixels:
    """``uint8`` images ``(N, C, H, W)`` → ``(x/255 − mean_c)/std_c``; training batches first go through
    :func:`random_crop_flip` when ``pad > 0`` or ``flip``."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    pad: int = 0
    flip: bool = False

    def __call__(self, x: Tensor, *, train: bool = False, generator: torch.Generator | None = None) -> Tensor:
        if train and (self.pad or self.flip):
            x = random_crop_flip(x, self.pad, self.flip, generator)
        mean = torch.tensor(self.mean, device=x.device).view(-1, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(-1, 1, 1)
        return (x.float() / 255 - mean) / std

    @classmethod
    def fit(cls, images: Tensor, what: str = "the training images", **kwargs) -> Pixels:
        """Per-channel mean and std of ``uint8`` training images on the ``[0, 1]`` scale, exactly from histograms.

        A channel with one value throughout (std 0) cannot be normalized: :class:`DataError` naming ``what``.
        """
        levels = torch.arange(256, dtype=torch.float64) / 255
        hist = torch.stack([torch.bincount(images[:, c].reshape(-1), minlength=256) for c in range(images.shape[1])])
        for c, counts in enumerate(hist):
            if (counts > 0).sum() == 1:
                value = int(counts.argmax())
                raise DataError(f"{what}: every pixel of channel {c} is {value}; a constant input cannot be normalized")
        p = hist.double() / hist.sum(1, keepdim=True)
        mean = p @ levels
        std = (p * (levels - mean[:, None]).square()).sum(1).sqrt()
        return cls(tuple(mean.tolist()), tuple(std.tolist()), **kwargs)


@dataclass(frozen=True)
class Dataset:
    """Train and test splits in memory; binary labels are float ``{0, 1}`` (one logit), class labels long.

    ``n_outputs`` is the model's output width (1 for a binary task); ``pixels`` turns stored
    ``uint8`` images into model inputs (``None``: the stored features are the inputs).
    """

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    extras: dict[str, Tensor] = field(default_factory=dict)
    n_outputs: int = 1
    pixels: Pixels | None = None

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def n_train(self) -> int:
        return self.x_train.shape[0]

    def to(self, device: str | torch.device) -> Dataset:
        move = {k: getattr(self, k).to(device) for k in ("x_train", "y_train", "x_test", "y_test")}
        return replace(self, **move)

    def _inputs(self, x: Tensor, train: bool, generator: torch.Generator | None = None) -> Tensor:
        return x if self.pixels is None else self.pixels(x, train=train, generator=generator)

    def train_batches(self, batch_size: int, generator: torch.Generator) -> Iterator[tuple[Tensor, Tensor]]:
        """One epoch of shuffled mini-batches; ``generator`` (CPU) fixes the order and the augmentation."""
        for idx in torch.randperm(self.n_train, generator=generator).split(batch_size):
            idx = idx.to(self.x_train.device)
            yield self._inputs(self.x_train[idx], True, generator), self.y_train[idx]

    def eval_batches(self, split: str, batch_size: int, limit: int | None = None) -> Iterator[tuple[Tensor, Tensor]]:
        """``split`` (``"train"`` or ``"test"``) in order, in chunks; ``limit`` keeps a fixed random subset."""
        x, y = (self.x_train, self.y_train) if split == "train" else (self.x_test, self.y_test)
        if (idx := eval_subset(len(x), limit)) is not None:
            x, y = x[idx.to(x.device)], y[idx.to(x.device)]
        for xb, yb in zip(x.split(batch_size), y.split(batch_size), strict=True):
            yield self._inputs(xb, False), yb


def sample_indices(size: int, n: int | None, generator: torch.Generator, what: str) -> Tensor | None:
    """Sorted indices of a random ``n`` of ``size`` examples; ``None`` (all of them) when ``n`` is ``None``."""
    if n is None:
        return None
    if n > size:
        raise DataError(f"{what} has {size} examples; cannot take a subset of {n}")
    return torch.randperm(size, generator=generator)[:n].sort().values


def eval_subset(size: int, limit: int | None) -> Tensor | None:
    """The fixed subset of at most ``limit`` examples that train-split metrics use (``None``: all)."""
    if limit is None or limit >= size:
        return None
    return sample_indices(size, limit, torch.Generator().manual_seed(_EVAL_SUBSET_SEED), "")


def subset(x: Tensor, y: Tensor, n: int | None, generator: torch.Generator, what: str) -> tuple[Tensor, Tensor]:
    """A random subset of ``n`` rows (in their stored order); all rows when ``n`` is ``None``."""
    idx = sample_indices(len(x), n, generator, what)
    return (x, y) if idx is None else (x[idx], y[idx])


def get_dataset(cfg):
    """The data set a :class:`qnnlab.config.DataConfig` describes (a :class:`Dataset`, or the lazy ImageNet tree)."""
    from qnnlab.data import bundled, cifar, idx, imagefolder, synthetic

    loaders = {
        "logistic": lambda c: synthetic.logistic_toy(c.d, c.n_train, c.n_test, w_scale=c.w_scale, seed=c.seed),
        "two_moons": lambda c: synthetic.two_moons(c.n_train, c.n_test, noise=c.noise, seed=c.seed),
        "digits": bundled.digits,
        "mnist_5k": bundled.mnist_5k,
        "fashion_mnist": idx.fashion_mnist,
        "mnist": idx.mnist,
        "cifar10": cifar.cifar10,
        "imagenet": imagefolder.imagenet,
    }
    if cfg.name not in loaders:
        raise KeyError(f"unknown dataset {cfg.name!r}; choose from: {', '.join(sorted(loaders))}")
    return loaders[cfg.name](cfg)
