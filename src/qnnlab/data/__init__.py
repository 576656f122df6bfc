"""Data sets: built by name from a validated config, or from your own tensors and loaders; nothing is downloaded.

In-memory sets are a :class:`Dataset`: both splits as tensors, either float features or
``uint8`` images that :class:`Pixels` scales, normalizes and (for training) augments one
mini-batch at a time, so a 60k×784 set costs 47 MB rather than 188 MB. Your own data:
``Dataset.from_tensors(x_train, y_train, x_test, y_test)``, ``Dataset.from_datasets(train, test)``
(any map-style ``torch.utils.data.Dataset``, read once into tensors) or
``Dataset.from_loaders(train_loader, test_loader)`` (batches as your ``DataLoader`` s deal them:
:class:`qnnlab.data.loader.LoaderData`). The ImageNet tree is read lazily
(:class:`qnnlab.data.imagefolder.ImageFolderData`). All of them have the batch interface of
:class:`Data`, which is all that training and evaluation use.

A **validation split** is carved from the training split (:class:`ValidationSplit`, the run
config's ``validation`` table; :meth:`Dataset.with_validation`): a seeded random subset,
stratified for classification, so that hyperparameters are chosen without touching the test
split. The training split shrinks by as much, and every epoch is then evaluated on
``("train", "val", "test")``.

Named sets are registered with their config schema, one file each (:mod:`.synthetic`,
:mod:`.bundled`, :mod:`.idx`, :mod:`.cifar`, :mod:`.imagefolder`)::

    class RingData(DataConfig):
        name: Literal["ring"] = "ring"
        n: int = Field(500, ge=2)

    @register_dataset("ring", config=RingData)
    def ring(cfg: RingData) -> Dataset: ...

after which ``[data] name = "ring"`` validates in a TOML config. File-backed sets look in
``data_dir`` when the config names one, else in ``$QNNLAB_DATA/<folder>``, else (Fashion-MNIST
only) in Debian's ``/usr/share/datasets/fashion-mnist`` (``apt-get install dataset-fashion-mnist``).
A missing or malformed file raises :class:`DataError` naming the path and what was expected.
"""

from __future__ import annotations

import importlib
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator
from torch import Tensor

from qnnlab.registry import Registry, Schema, named_schema

__all__ = [
    "DATASETS",
    "DATA_ENV",
    "GATHER_ELEMENTS",
    "TASKS",
    "Batches",
    "Data",
    "DataConfig",
    "DataError",
    "DataInfo",
    "Dataset",
    "FileDataConfig",
    "Pixels",
    "Task",
    "ValidationSplit",
    "data_folder",
    "eval_subset",
    "get_dataset",
    "infer_task",
    "random_crop_flip",
    "register_dataset",
    "sample_indices",
    "subset",
    "validation_indices",
    "with_validation",
]

DATA_ENV = "QNNLAB_DATA"
# training examples' entries gathered at once by Dataset.train_batches (16 MB of float32), and where each
# batch starts: on torch's CPU allocator alignment, as a batch allocated on its own would
GATHER_ELEMENTS = 1 << 22
ALIGNMENT = 64
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


class ValidationSplit(Schema):
    """A validation split carved from the training data: ``size`` examples (an int ≥ 1) or that fraction
    of them (a float in (0, 1), rounded up), drawn with ``seed``; stratified by class for classification
    when ``stratify`` (each class keeps its share, scikit-learn's ``train_test_split``)."""

    size: int | float = Field(description="examples (an int) or a fraction of the training split (0 < size < 1)")
    seed: int = Field(0, ge=0, lt=2**63, description="seed of the draw, separate from the data and training seeds")
    stratify: bool = Field(True, description="classification: keep each class's share (regression: ignored)")

    @field_validator("size")
    @classmethod
    def _size(cls, size: int | float) -> int | float:
        if (isinstance(size, int) and size < 1) or (isinstance(size, float) and not 0 < size < 1):
            raise ValueError(f"must be an int >= 1 (examples) or a float in (0, 1) (a fraction); got {size!r}")
        return size

    def count(self, n_train: int) -> int:
        """Validation examples taken from ``n_train`` training examples."""
        return self.size if isinstance(self.size, int) else math.ceil(self.size * n_train)


def validation_indices(n: int, split: ValidationSplit, labels: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """``(train, val)`` indices into ``n`` training examples, each sorted; stratified by ``labels`` when given.

    Deterministic in ``split.seed``. A size that leaves no training example, or a class too small
    to be stratified, raises :class:`DataError` naming ``validation.size``.
    """
    n_val = split.count(n)
    if not 1 <= n_val < n:
        raise DataError(f"validation.size: {split.size} takes {n_val} of {n} training examples; leave at least one")
    if labels is None or not split.stratify:
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(split.seed))
        return perm[n_val:].sort().values, perm[:n_val].sort().values
    from sklearn.model_selection import train_test_split

    try:
        train, val = train_test_split(range(n), test_size=n_val, stratify=labels.cpu().numpy(), random_state=split.seed)
    except ValueError as err:  # a class with one example, fewer validation examples than classes, ...
        raise DataError(f"validation.size: cannot stratify {n_val} of {n} examples by class ({err})") from None
    return torch.tensor(sorted(train)), torch.tensor(sorted(val))


def with_validation(data: Data, split: ValidationSplit) -> Data:
    """``data`` with ``split`` carved from its training split (:meth:`Dataset.with_validation`)."""
    carve = getattr(data, "with_validation", None)
    if carve is None:
        raise ValueError(
            f"validation: {type(data).__name__} cannot carve a validation split from its training data; "
            "pass the data as Dataset.from_tensors or Dataset.from_datasets"
        )
    return carve(split)


TASKS = ("binary", "multiclass", "regression")
Task = Literal["binary", "multiclass", "regression"]
Batches = Iterator[tuple[Tensor, Tensor]]


def infer_task(y: Tensor) -> Task:
    """``multiclass`` for integer labels, ``binary`` for float labels all in ``{0, 1}``, ``regression`` otherwise."""
    if not y.is_floating_point():
        return "multiclass"
    # one host sync, once per data set
    if y.dim() == 1 and bool(((y == 0) | (y == 1)).all()):
        return "binary"
    return "regression"


class Data(Protocol):
    """What training and evaluation read from a data set: :class:`Dataset`, ``LoaderData``, ``ImageFolderData``.

    ``task`` picks the default loss and metrics (:mod:`qnnlab.train.evaluate`); ``eval_splits``
    are the splits every epoch is evaluated on (``"train"`` first, ``"val"`` when there is a
    validation split).
    """

    task: str
    n_outputs: int | None

    @property
    def input_shape(self) -> tuple[int, ...]: ...

    @property
    def n_train(self) -> int: ...

    @property
    def eval_splits(self) -> tuple[str, ...]: ...

    def to(self, device: str | torch.device) -> Data: ...

    def steps_per_epoch(self, batch_size: int) -> int: ...

    def train_batches(self, batch_size: int, generator: torch.Generator) -> Batches: ...

    def eval_batches(self, split: str, batch_size: int, limit: int | None = None) -> Batches: ...


@dataclass(frozen=True)
class Dataset:
    """Train and test splits in memory; binary labels are float ``{0, 1}`` (one logit), class labels long.

    ``n_outputs`` is the model's output width (1 for a binary task); ``pixels`` turns stored
    ``uint8`` images into model inputs (``None``: the stored features are the inputs); ``task``
    is ``"binary"``, ``"multiclass"`` or ``"regression"`` (``""``: :func:`infer_task` on ``y_train``).
    ``x_val``, ``y_val``: the validation split (:meth:`with_validation`), ``None`` without one.
    """

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    extras: dict[str, Tensor] = field(default_factory=dict)
    n_outputs: int = 1
    pixels: Pixels | None = None
    task: str = ""
    x_val: Tensor | None = None
    y_val: Tensor | None = None

    def __post_init__(self) -> None:
        if not self.task:
            object.__setattr__(self, "task", infer_task(self.y_train))
        elif self.task not in TASKS:
            raise ValueError(f"Invalid task: {self.task!r}; choose from: {', '.join(TASKS)}")

    @classmethod
    def from_tensors(
        cls,
        x_train: Any,
        y_train: Any,
        x_test: Any,
        y_test: Any,
        *,
        task: Task | None = None,
        n_outputs: int | None = None,
    ) -> Dataset:
        """Your arrays or tensors as a data set: ``x`` of shape ``(N, *input_shape)``, ``y`` of ``N`` labels.

        Features become float32. ``task`` defaults to :func:`infer_task` on ``y_train``; labels
        then become long (multiclass) or float (binary, regression). ``n_outputs`` defaults to 1
        (binary), the largest label + 1 over both splits (multiclass) or the target width (regression).
        """
        dtype = torch.get_default_dtype()
        x_tr, x_te = (torch.as_tensor(x).to(dtype) for x in (x_train, x_test))
        y_tr, y_te = (torch.as_tensor(y) for y in (y_train, y_test))
        task = task or infer_task(y_tr)
        if task not in TASKS:
            raise ValueError(f"Invalid task: {task!r}; choose from: {', '.join(TASKS)}")
        y_tr, y_te = (y.long() if task == "multiclass" else y.to(dtype) for y in (y_tr, y_te))
        for split, x, y in (("train", x_tr, y_tr), ("test", x_te, y_te)):
            if len(x) != len(y):
                raise ValueError(f"x_{split} has {len(x)} rows but y_{split} has {len(y)}")
        if n_outputs is None:
            if task == "multiclass":
                n_outputs = int(torch.cat([y_tr, y_te]).max()) + 1
            else:
                n_outputs = 1 if y_tr.dim() == 1 else y_tr.shape[1]
        return cls(x_tr, y_tr, x_te, y_te, n_outputs=n_outputs, task=task)

    @classmethod
    def from_datasets(cls, train: Any, test: Any, **kwargs: Any) -> Dataset:
        """Two map-style ``torch.utils.data.Dataset`` s of ``(x, y)`` pairs, read once into tensors.

        ``kwargs`` as for :meth:`from_tensors`.
        """
        from torch.utils.data import default_collate

        (x_tr, y_tr), (x_te, y_te) = (default_collate([ds[i] for i in range(len(ds))]) for ds in (train, test))
        return cls.from_tensors(x_tr, y_tr, x_te, y_te, **kwargs)

    @staticmethod
    def from_loaders(train: Any, test: Any | None = None, **kwargs: Any) -> Data:
        """Batches as your ``DataLoader`` s deal them: see :class:`qnnlab.data.loader.LoaderData`."""
        from qnnlab.data.loader import LoaderData

        return LoaderData(train, test, **kwargs)

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def n_train(self) -> int:
        return self.x_train.shape[0]

    @property
    def n_val(self) -> int:
        return 0 if self.x_val is None else self.x_val.shape[0]

    @property
    def eval_splits(self) -> tuple[str, ...]:
        return ("train", "test") if self.x_val is None else ("train", "val", "test")

    def with_validation(self, split: ValidationSplit) -> Dataset:
        """A copy whose training split keeps ``n − m`` examples and whose validation split holds the other ``m``
        (:func:`validation_indices`: seeded, stratified by class for classification, stored order kept).

        Image statistics (:class:`Pixels`) stay those of the whole training split.
        """
        if self.x_val is not None:
            raise ValueError("validation: this data set already has a validation split")
        labels = self.y_train if self.task != "regression" else None
        train, val = (i.to(self.x_train.device) for i in validation_indices(self.n_train, split, labels))
        x, y = self.x_train, self.y_train
        return replace(self, x_train=x[train], y_train=y[train], x_val=x[val], y_val=y[val])

    def to(self, device: str | torch.device) -> Dataset:
        names = ("x_train", "y_train", "x_test", "y_test", "x_val", "y_val")
        return replace(self, **{k: getattr(self, k).to(device) for k in names if getattr(self, k) is not None})

    def steps_per_epoch(self, batch_size: int) -> int:
        return -(-self.n_train // batch_size)

    def _inputs(self, x: Tensor, train: bool, generator: torch.Generator | None = None) -> Tensor:
        return x if self.pixels is None else self.pixels(x, train=train, generator=generator)

    def train_batches(self, batch_size: int, generator: torch.Generator) -> Batches:
        """One epoch of shuffled mini-batches; ``generator`` (CPU) fixes the order and the augmentation.

        The shuffled rows are gathered a chunk of whole batches at a time (one ``index_select`` per
        :data:`GATHER_ELEMENTS` entries or per batch, whichever is larger) and dealt as views of it.
        """
        perm = torch.randperm(self.n_train, generator=generator).to(self.x_train.device)
        row = max(1, math.prod(self.input_shape))
        chunk = max(1, GATHER_ELEMENTS // (row * batch_size)) * batch_size
        for idx in perm.split(chunk):
            xs, ys = (_batches(t.index_select(0, idx), batch_size) for t in (self.x_train, self.y_train))
            for x, y in zip(xs, ys, strict=True):
                yield self._inputs(x, True, generator), y

    def eval_batches(self, split: str, batch_size: int, limit: int | None = None) -> Batches:
        """``split`` (``"train"``, ``"val"``, ``"test"``) in order, in chunks; ``limit`` keeps a fixed random subset."""
        if split not in self.eval_splits:
            raise ValueError(f"unknown split {split!r}; choose from: {', '.join(self.eval_splits)}")
        x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
        if (idx := eval_subset(len(x), limit)) is not None:
            x, y = x[idx.to(x.device)], y[idx.to(x.device)]
        for xb, yb in zip(x.split(batch_size), y.split(batch_size), strict=True):
            yield self._inputs(xb, False), yb


def _batches(rows: Tensor, batch_size: int) -> Sequence[Tensor]:
    """``rows.split(batch_size)`` with each batch starting on an :data:`ALIGNMENT` boundary, where a batch of
    its own is allocated: a kernel may sum in another order on other alignments (BLAS peels unaligned heads)."""
    size = rows.element_size()
    per = batch_size * math.prod(rows.shape[1:])
    full = len(rows) // batch_size
    if (per * size) % ALIGNMENT == 0 or full == 0:
        return rows.split(batch_size)
    slot = -(-per * size // ALIGNMENT) * ALIGNMENT // size
    padded = rows.new_empty(full, slot)[:, :per]
    padded.copy_(rows[: full * batch_size].reshape(full, per))
    batches = list(padded.view(full, batch_size, *rows.shape[1:]).unbind())
    if len(rows) > full * batch_size:
        batches.append(rows[full * batch_size :].clone())
    return batches


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


class DataConfig(Schema):
    """The config table of a data set: ``name`` is its registry key, ``seed`` fixes whatever is drawn.

    A schema whose training-set size is known before loading says so in ``n_train`` (a field
    or a property), so that a config's ``batch_size`` is checked against it.
    """

    name: str
    seed: int = Field(0, ge=0, lt=2**63, description="data seed, separate from the training seed")


class FileDataConfig(DataConfig):
    """A data set read from files in a local folder; nothing is downloaded."""

    data_dir: str | None = Field(
        None, description="folder with the files; default: $QNNLAB_DATA/<folder>, see qnnlab.data"
    )
    n_train: int | None = Field(None, ge=1, description="a seeded random subset of the training split; None: all of it")
    n_test: int | None = Field(None, ge=1, description="a seeded random subset of the test split; None: all of it")
    seed: int = Field(0, ge=0, lt=2**63, description="seed of the subsets")


@dataclass(frozen=True)
class DataInfo:
    """A registered data set: its config schema and its loader ``config -> Data``."""

    name: str
    config: type[DataConfig]
    load: Callable[[Any], Data]


DATASETS: Registry[DataInfo] = Registry("dataset")
L = TypeVar("L", bound=Callable[..., Any])


def register_dataset(name: str, *, config: type[DataConfig] | None = None) -> Callable[[L], L]:
    """Register the decorated loader ``config -> Data`` as data set ``name``.

    ``config`` is the schema of its table; it must declare ``name: Literal[name] = name``.
    Without one the table takes only ``name`` and ``seed``.
    """
    schema = named_schema(DataConfig, name, config)
    return DATASETS.decorator(name, lambda load: DataInfo(name, schema, load))


def get_dataset(cfg: DataConfig) -> Data:
    """The data set a registered config describes."""
    return DATASETS.get(cfg.name).load(cfg)


# the built-in sets register themselves on import, in the order their names are listed in errors
for _module in ("synthetic", "bundled", "idx", "cifar", "imagefolder"):
    importlib.import_module(f"qnnlab.data.{_module}")
