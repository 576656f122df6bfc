"""The validation split: carved from the training data, stratified, deterministic, evaluated every epoch."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch.utils.data import DataLoader, TensorDataset

import qnnlab
from qnnlab.config import ConfigError, validate_config
from qnnlab.data import DataError, Dataset, ValidationSplit, validation_indices, with_validation
from qnnlab.data.bundled import digits
from qnnlab.data.imagefolder import ImageFolderData
from qnnlab.experiments.presets import PRESETS, preset_runs


def test_sizes_are_counts_or_fractions_rounded_up() -> None:
    assert [ValidationSplit(size=s).count(1000) for s in (1, 250, 0.1, 0.0015)] == [1, 250, 100, 2]
    for bad in (0, -3, 0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match=r"must be an int >= 1 .* or a float in \(0, 1\)"):
            ValidationSplit(size=bad)


@given(st.integers(2, 300), st.floats(0.01, 0.99), st.integers(0, 2**31))
def test_the_two_parts_partition_the_training_rows(n: int, fraction: float, seed: int) -> None:
    split = ValidationSplit(size=fraction, seed=seed)
    if not 1 <= split.count(n) < n:
        with pytest.raises(DataError, match=r"validation\.size"):
            validation_indices(n, split)
        return
    train, val = validation_indices(n, split)
    assert len(val) == split.count(n) and torch.equal(torch.cat([train, val]).sort().values, torch.arange(n))
    assert torch.equal(train, train.sort().values) and torch.equal(val, val.sort().values)  # stored order kept
    assert all(torch.equal(a, b) for a, b in zip(validation_indices(n, split), (train, val), strict=True))


def test_stratified_split_keeps_every_class_share_and_follows_its_seed() -> None:
    data = digits(qnnlab.config.DigitsData())  # 1437 training images, 10 classes
    split = data.with_validation(ValidationSplit(size=0.2, seed=3))
    assert (split.n_train, split.n_val, split.eval_splits) == (1149, 288, ("train", "val", "test"))
    counts, val_counts = torch.bincount(data.y_train), torch.bincount(split.y_val)
    assert ((val_counts - 0.2 * counts).abs() <= 1).all()  # each class within one example of its share
    rows = {tuple(r) for r in data.x_train.tolist()}
    assert {tuple(r) for r in split.x_val.tolist()} <= rows and torch.equal(split.x_test, data.x_test)
    again = data.with_validation(ValidationSplit(size=0.2, seed=3))
    other = data.with_validation(ValidationSplit(size=0.2, seed=4))
    assert torch.equal(again.x_val, split.x_val) and not torch.equal(other.x_val, split.x_val)


def test_regression_is_not_stratified_and_errors_name_the_field() -> None:
    x = torch.arange(20.0).reshape(10, 2)
    reg = Dataset.from_tensors(x, x[:, 0] * 0.5, x[:2], x[:2, 0]).with_validation(ValidationSplit(size=3))
    assert (reg.n_train, reg.n_val) == (7, 3)
    one_of_a_class = Dataset.from_tensors(x, torch.tensor([0] * 9 + [1]), x[:2], torch.tensor([0, 1]))
    with pytest.raises(DataError, match=r"validation.size: cannot stratify 2 of 10 examples by class"):
        one_of_a_class.with_validation(ValidationSplit(size=2))
    assert one_of_a_class.with_validation(ValidationSplit(size=2, stratify=False)).n_val == 2
    with pytest.raises(ValueError, match="already has a validation split"):
        reg.with_validation(ValidationSplit(size=1))
    loaders = Dataset.from_loaders(DataLoader(TensorDataset(x, torch.zeros(10, dtype=torch.long))))
    with pytest.raises(ValueError, match="validation: LoaderData cannot carve a validation split"):
        with_validation(loaders, ValidationSplit(size=2))


def test_image_folders_split_their_training_samples() -> None:
    samples = [(Path(f"{c}/{i}.png"), c) for c in range(2) for i in range(5)]
    data = ImageFolderData(samples, samples[:2], ["a", "b"]).with_validation(ValidationSplit(size=4))
    assert (data.n_train, data.n_val, data.eval_splits) == (6, 4, ("train", "val", "test"))
    assert sorted(label for _, label in data.val) == [0, 0, 1, 1] and set(data.val).isdisjoint(data.train)


def test_the_config_checks_sizes_and_no_preset_has_a_split() -> None:
    cfg = validate_config({"method": {"name": "sgd"}, "validation": {"size": 0.1}})
    assert cfg.steps_per_epoch() == 54  # 5400 of the 6000 logistic rows, batches of 100
    with pytest.raises(ConfigError, match=r"validation.size \(6000\) must leave some of the 6000 examples"):
        validate_config({"method": {"name": "sgd"}, "validation": {"size": 6000}})
    with pytest.raises(ConfigError, match=r"batch_size \(100\) must be <= the 50 training examples left beside"):
        validate_config({"method": {"name": "sgd"}, "validation": {"size": 5950}})
    assert all(cfg.validation is None for name in PRESETS for cfg in preset_runs(name, 1))


def test_every_epoch_evaluates_w_and_q_on_the_split_user_metrics_too() -> None:
    toy = qnnlab.data.get_dataset(qnnlab.config.LogisticData(n_train=400, n_test=100))
    split = ValidationSplit(size=0.25, seed=1)
    cfg = {"epochs": 2, "batch_size": 50, "method": {"name": "sgd", "lr": 0.5}, "validation": split.model_dump()}
    metrics = {"margin": lambda out, y: (out.squeeze(-1) * (2 * y - 1)).mean()}
    result = qnnlab.fit(cfg, data=toy, metrics=metrics)
    assert (result.summary["n_train"], result.summary["n_val"]) == (300, 100)
    _, val = validation_indices(400, split, toy.y_train)
    x, y = toy.x_train[val], toy.y_train[val]
    w = result.weights["weight"]
    for prefix, weights in (("", w), ("q_", torch.where(w >= 0, 1.0, -1.0))):
        logits = (x @ weights.T).squeeze(-1)
        assert result.summary[f"{prefix}val_loss"] == pytest.approx(
            F.binary_cross_entropy_with_logits(logits, y).item()
        )
        assert result.summary[f"{prefix}val_acc"] == pytest.approx(((logits > 0) == (y > 0.5)).float().mean().item())
        margin = (logits * (2 * y - 1)).mean().item()
        assert result.summary[f"{prefix}val_margin"] == pytest.approx(margin, rel=1e-5)
    assert all("val_loss" in epoch and "q_val_acc" in epoch for epoch in result.history)
    plain = qnnlab.fit({**cfg, "validation": None}, data=toy)
    assert "val_loss" not in plain.summary and "n_val" not in plain.summary and plain.summary["n_train"] == 400
