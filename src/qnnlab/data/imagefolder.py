"""ImageNet (or any image classification set) from a local ImageFolder tree, decoded lazily with Pillow.

The tree is ``ROOT/train/<class>/<image>`` and ``ROOT/val/<class>/<image>``; classes are the
sorted names of the training folders (index = position), as in torchvision's
``ImageFolder``. Each image is converted to RGB and its shorter side resized to ``resize``;
training takes a random ``image_size`` square crop, mirrored with probability ½,
evaluation the centre crop (the usual 256 → 224). Crops and flips are drawn from a seed
per example that the training generator deals out, so the epoch is reproducible whatever
the number of workers. Batches leave the loader as ``uint8`` and are normalized with the
usual ImageNet channel statistics on the training device.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import Field, model_validator
from torch import Tensor
from torch.utils.data import DataLoader

from qnnlab.data import (
    DataError,
    FileDataConfig,
    Pixels,
    ValidationSplit,
    data_folder,
    eval_subset,
    register_dataset,
    sample_indices,
    validation_indices,
)

__all__ = ["IMAGENET_PIXELS", "IMAGE_EXTENSIONS", "ImageFolderData", "ImageNetData", "imagenet", "scan"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp", ".tif", ".tiff")
IMAGENET_PIXELS = Pixels(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))

Sample = tuple[Path, int]


def scan(root: Path, classes: Sequence[str] | None = None) -> tuple[list[str], list[Sample]]:
    """``(classes, [(image path, class index)])`` of one split; ``classes`` from the training split if given."""
    if not root.is_dir():
        raise DataError(f"{root}: no such folder; expected an ImageFolder split {root}/<class>/<image>")
    found = sorted(d.name for d in root.iterdir() if d.is_dir())
    if classes is None:
        classes = found
    elif unknown := sorted(set(found) - set(classes)):
        raise DataError(f"{root}: class folders {', '.join(unknown)} are not among the training classes")
    index = {c: i for i, c in enumerate(classes)}
    samples = [
        (p, index[c]) for c in found for p in sorted((root / c).iterdir()) if p.suffix.lower() in IMAGE_EXTENSIONS
    ]
    if not samples:
        raise DataError(f"{root}: no images ({', '.join(IMAGE_EXTENSIONS)}) in class folders {root}/<class>/")
    return list(classes), samples


class _Images(torch.utils.data.Dataset):
    """Decodes one example: ``item`` is an index (centre crop) or ``(index, seed)`` (random crop and flip)."""

    def __init__(self, samples: list[Sample], size: int, resize: int) -> None:
        self.samples, self.size, self.resize = samples, size, resize

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, item: int | tuple[int, int]) -> tuple[Tensor, int]:
        from PIL import Image, UnidentifiedImageError

        i, seed = item if isinstance(item, tuple) else (item, None)
        path, label = self.samples[i]
        try:
            with Image.open(path) as im:
                im = im.convert("RGB")
        except (OSError, UnidentifiedImageError) as err:
            raise DataError(f"{path}: cannot decode the image ({err})") from None
        w, h = im.size
        scale = self.resize / min(w, h)
        w, h = max(self.size, round(w * scale)), max(self.size, round(h * scale))
        im = im.resize((w, h), Image.Resampling.BILINEAR)
        if seed is None:
            left, top, flip = (w - self.size) // 2, (h - self.size) // 2, False
        else:
            rng = random.Random(seed)
            left, top, flip = rng.randint(0, w - self.size), rng.randint(0, h - self.size), rng.random() < 0.5
        im = im.crop((left, top, left + self.size, top + self.size))
        if flip:
            im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1), label


@dataclass(frozen=True)
class ImageFolderData:
    """The lazy counterpart of :class:`qnnlab.data.Dataset`: same batch interface, images read per batch."""

    train: list[Sample]
    test: list[Sample]
    classes: list[str]
    image_size: int = 224
    resize: int = 256
    workers: int = 4
    pixels: Pixels = IMAGENET_PIXELS
    device: str = "cpu"
    val: list[Sample] = field(default_factory=list)  # a validation split carved from train (with_validation)

    task = "multiclass"

    @property
    def eval_splits(self) -> tuple[str, ...]:
        return ("train", "val", "test") if self.val else ("train", "test")

    @property
    def n_outputs(self) -> int:
        return len(self.classes)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (3, self.image_size, self.image_size)

    @property
    def n_train(self) -> int:
        return len(self.train)

    @property
    def n_val(self) -> int:
        return len(self.val)

    def to(self, device: str | torch.device) -> ImageFolderData:
        return replace(self, device=str(device))

    def with_validation(self, split: ValidationSplit) -> ImageFolderData:
        """The training images split in two by :func:`qnnlab.data.validation_indices`, stratified by class."""
        if self.val:
            raise ValueError("validation: this data set already has a validation split")
        labels = torch.tensor([label for _, label in self.train])
        train, val = (i.tolist() for i in validation_indices(self.n_train, split, labels))
        return replace(self, train=[self.train[i] for i in train], val=[self.train[i] for i in val])

    def steps_per_epoch(self, batch_size: int) -> int:
        return -(-self.n_train // batch_size)

    def _batches(self, samples: list[Sample], items: list, batch_size: int) -> Iterator[tuple[Tensor, Tensor]]:
        loader = DataLoader(
            _Images(samples, self.image_size, self.resize),
            batch_size=batch_size,
            sampler=items,
            num_workers=self.workers,
            pin_memory=self.device.startswith("cuda"),
        )
        for x, y in loader:
            yield self.pixels(x.to(self.device, non_blocking=True)), y.to(self.device)

    def train_batches(self, batch_size: int, generator: torch.Generator) -> Iterator[tuple[Tensor, Tensor]]:
        order = torch.randperm(self.n_train, generator=generator).tolist()
        seeds = torch.randint(2**62, (self.n_train,), generator=generator).tolist()
        return self._batches(self.train, list(zip(order, seeds, strict=True)), batch_size)

    def eval_batches(self, split: str, batch_size: int, limit: int | None = None) -> Iterator[tuple[Tensor, Tensor]]:
        if split not in self.eval_splits:
            raise ValueError(f"unknown split {split!r}; choose from: {', '.join(self.eval_splits)}")
        samples = {"train": self.train, "val": self.val, "test": self.test}[split]
        idx = eval_subset(len(samples), limit)
        return self._batches(samples, list(range(len(samples))) if idx is None else idx.tolist(), batch_size)


def _take(samples: list[Sample], n: int | None, generator: torch.Generator, what: str) -> list[Sample]:
    idx = sample_indices(len(samples), n, generator, what)
    return samples if idx is None else [samples[i] for i in idx.tolist()]


class ImageNetData(FileDataConfig):
    """An ImageFolder tree ``train/<class>/*.JPEG``, ``val/<class>/*.JPEG``, decoded lazily with Pillow."""

    name: Literal["imagenet"] = "imagenet"
    image_size: int = Field(224, ge=8, description="side of the square crop fed to the model")
    resize: int = Field(256, ge=8, description="shorter side after resizing, before cropping")
    workers: int = Field(4, ge=0, description="DataLoader worker processes")

    @model_validator(mode="after")
    def _crop_fits(self) -> ImageNetData:
        if self.image_size > self.resize:
            raise ValueError(f"image_size ({self.image_size}) must be <= resize ({self.resize})")
        return self


@register_dataset("imagenet", config=ImageNetData)
def imagenet(cfg: ImageNetData) -> ImageFolderData:
    """The ImageFolder tree in ``data_dir`` (default ``$QNNLAB_DATA/imagenet``): ``train/`` and ``val/``."""
    root = data_folder(cfg.data_dir, "imagenet")
    classes, train = scan(root / "train")
    _, test = scan(root / "val", classes)
    gen = torch.Generator().manual_seed(cfg.seed)
    train = _take(train, cfg.n_train, gen, f"{root / 'train'}")
    test = _take(test, cfg.n_test, gen, f"{root / 'val'}")
    return ImageFolderData(train, test, classes, cfg.image_size, cfg.resize, cfg.workers)
