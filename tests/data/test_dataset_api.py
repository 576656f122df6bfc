"""Your own data: tensors, torch datasets and DataLoaders, with the task inferred or given."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader, TensorDataset

import qnnlab.data
from qnnlab.data import Dataset, Pixels, infer_task
from qnnlab.data.loader import LoaderData


@pytest.mark.parametrize(
    ("y", "task"),
    [
        (torch.tensor([0, 3, 1]), "multiclass"),
        (torch.tensor([0.0, 1.0, 1.0]), "binary"),
        (torch.tensor([0.0, 0.5, 1.0]), "regression"),
        (torch.tensor([[0.0], [1.0]]), "regression"),  # a target column, not labels
    ],
)
def test_the_task_follows_the_labels(y: torch.Tensor, task: str) -> None:
    assert infer_task(y) == task


def test_from_tensors_infers_task_outputs_and_dtypes() -> None:
    x = np.arange(12, dtype=np.float64).reshape(6, 2)
    classes = Dataset.from_tensors(x[:4], np.array([0, 2, 1, 0]), x[4:], np.array([4, 1]))
    assert (classes.task, classes.n_outputs) == ("multiclass", 5)  # labels of both splits count
    assert classes.x_train.dtype == torch.float32 and classes.y_test.dtype == torch.long
    binary = Dataset.from_tensors(x[:4], [0, 1, 1, 0.0], x[4:], [1.0, 0])
    assert (binary.task, binary.n_outputs, binary.y_train.dtype) == ("binary", 1, torch.float32)
    wide = Dataset.from_tensors(x[:4], np.ones((4, 3)) * 2, x[4:], np.ones((2, 3)))
    assert (wide.task, wide.n_outputs) == ("regression", 3)
    given = Dataset.from_tensors(x[:4], [0, 1, 1, 0.0], x[4:], [1.0, 0], task="regression")
    assert given.task == "regression" and given.to("cpu").task == "regression"


def test_from_tensors_errors_name_the_problem() -> None:
    x = torch.zeros(4, 2)
    with pytest.raises(ValueError, match="x_train has 4 rows but y_train has 3"):
        Dataset.from_tensors(x, torch.zeros(3), x, torch.zeros(4))
    with pytest.raises(ValueError, match="Invalid task: 'ranking'; choose from: binary, multiclass, regression"):
        Dataset.from_tensors(x, torch.zeros(4), x, torch.zeros(4), task="ranking")
    with pytest.raises(ValueError, match="unknown split 'val'; choose from: train, test"):
        next(Dataset.from_tensors(x, torch.zeros(4), x, torch.zeros(4)).eval_batches("val", 2))


def test_from_datasets_reads_every_example_once() -> None:
    x, y = torch.randn(7, 1, 2, 2), torch.tensor([0, 1, 2, 0, 1, 2, 0])
    data = Dataset.from_datasets(TensorDataset(x[:5], y[:5]), TensorDataset(x[5:], y[5:]))
    assert torch.equal(data.x_train, x[:5]) and torch.equal(data.y_test, y[5:]) and data.input_shape == (1, 2, 2)


def test_loader_data_deals_the_loaders_batches() -> None:
    x, y = torch.arange(20.0).view(10, 2), torch.arange(10) % 3
    train = DataLoader(TensorDataset(x, y), batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(0))
    data = Dataset.from_loaders(train, DataLoader(TensorDataset(x[:6], y[:6]), batch_size=5))
    assert isinstance(data, LoaderData) and data.task == "multiclass" and data.eval_splits == ("train", "test")
    assert (data.n_train, data.input_shape, data.steps_per_epoch(999)) == (10, (2,), 3)
    # evaluation reads the training set in its stored order, without touching the sampler's state
    state = train.generator.get_state()
    ordered = torch.cat([b for b, _ in data.eval_batches("train", 999)])
    assert torch.equal(ordered, x) and torch.equal(train.generator.get_state(), state)
    assert [len(b) for b, _ in data.eval_batches("train", 999, limit=6)] == [4, 2]  # the first 6 examples
    seen = torch.cat([b for b, _ in data.train_batches(999, torch.Generator())])
    assert sorted(seen[:, 0].tolist()) == x[:, 0].tolist() and not torch.equal(seen, x)  # shuffled by the loader
    assert Dataset.from_loaders(train).eval_splits == ("train",)


def test_loader_data_needs_a_task_for_float_labels_and_real_loaders() -> None:
    floats = DataLoader(TensorDataset(torch.zeros(4, 2), torch.zeros(4)), batch_size=2)
    with pytest.raises(ValueError, match="float labels: pass task='binary'"):
        Dataset.from_loaders(floats)
    assert Dataset.from_loaders(floats, task="regression").task == "regression"
    with pytest.raises(TypeError, match=r"train must be a torch\.utils\.data\.DataLoader, got list"):
        Dataset.from_loaders([1, 2])


@given(
    n=st.integers(1, 40),
    batch=st.integers(1, 12),
    width=st.integers(1, 3),
    budget=st.sampled_from([1, 7, 1 << 22]),
    seed=st.integers(0, 2**31),
)
@settings(max_examples=60)
def test_train_batches_are_the_rows_of_the_seeded_permutation(n, batch, width, budget, seed) -> None:
    """Gathered a chunk of batches at a time, the batches equal indexing each batch's rows of one ``randperm``."""
    x, y = torch.randn(n, width), torch.randint(0, 3, (n,))
    data = Dataset.from_tensors(x, y, x[:1], y[:1])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(qnnlab.data, "GATHER_ELEMENTS", budget)
        got = list(data.train_batches(batch, torch.Generator().manual_seed(seed)))
    reference = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).split(batch)
    assert len(got) == len(reference) == data.steps_per_epoch(batch)
    for (xb, yb), idx in zip(got, reference, strict=True):
        assert torch.equal(xb, x[idx]) and torch.equal(yb, y[idx])
        # where a batch allocated on its own would start: kernels may round differently elsewhere
        assert xb.data_ptr() % qnnlab.data.ALIGNMENT == 0 and yb.data_ptr() % qnnlab.data.ALIGNMENT == 0


def test_train_batches_draw_the_augmentation_after_the_order() -> None:
    """Images: the same generator shuffles, then crops and flips batch by batch, as one ``randperm`` and ``Pixels``."""
    images = torch.randint(0, 256, (10, 1, 4, 4), dtype=torch.uint8)
    pixels = Pixels((0.5,), (0.25,), pad=1, flip=True)
    data = Dataset(images, torch.zeros(10), images, torch.zeros(10), pixels=pixels)
    got = [xb for xb, _ in data.train_batches(4, torch.Generator().manual_seed(3))]
    gen = torch.Generator().manual_seed(3)
    reference = [pixels(images[i], train=True, generator=gen) for i in torch.randperm(10, generator=gen).split(4)]
    assert all(torch.equal(a, b) for a, b in zip(got, reference, strict=True)) and len(got) == 3
