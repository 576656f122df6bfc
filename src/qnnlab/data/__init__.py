"""Data sets as in-memory tensors, built by name from a validated config."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor

__all__ = ["Dataset", "get_dataset"]


@dataclass(frozen=True)
class Dataset:
    """Train and test splits; binary labels are float ``{0, 1}``, class labels long."""

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    extras: dict[str, Tensor] = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]


def get_dataset(cfg) -> Dataset:
    """The data set a :class:`qnnlab.config.DataConfig` describes."""
    from qnnlab.data.synthetic import logistic_toy

    if cfg.name == "logistic":
        return logistic_toy(cfg.d, cfg.n_train, cfg.n_test, w_scale=cfg.w_scale, seed=cfg.seed)
    raise KeyError(f"unknown dataset {cfg.name!r}; choose from: logistic")
