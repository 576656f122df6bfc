"""Models built by name, and which of their parameters are quantized."""

from __future__ import annotations

from typing import Any

from torch import nn

__all__ = ["build_model", "constrained_names", "param_groups"]


def build_model(cfg, n_features: int, n_outputs: int = 1) -> nn.Module:
    """The model a :class:`qnnlab.config.ModelConfig` describes."""
    if cfg.name == "linear":
        return nn.Linear(n_features, n_outputs, bias=cfg.bias)
    raise KeyError(f"unknown model {cfg.name!r}; choose from: linear")


def constrained_names(model: nn.Module) -> list[str]:
    """Names of the quantized parameters: weights of two or more dimensions.

    Biases and normalization parameters (one dimension) stay in full precision.
    """
    return [name for name, p in model.named_parameters() if p.dim() >= 2]


def param_groups(model: nn.Module) -> list[dict[str, Any]]:
    """``[{quantized weights, constrained=True}, {the rest, constrained=False}]`` (empty groups dropped)."""
    quantized = set(constrained_names(model))
    named = list(model.named_parameters())
    groups = [
        {"params": [p for n, p in named if n in quantized], "constrained": True},
        {"params": [p for n, p in named if n not in quantized], "constrained": False},
    ]
    return [g for g in groups if g["params"]]
