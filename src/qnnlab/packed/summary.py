"""Model size and compute by precision, layer by layer: what the packed model costs.

Per layer (each module that owns state-dict tensors):

* parameters at 1 bit, at k bits (2..16) and in floating point;
* their bytes when packed: ``rows·⌈k·cols/8⌉`` per quantized tensor (one row per output
  channel, :mod:`qnnlab.packed.bits`), 4 per float32 scale, ``count × element size`` for the rest;
* multiply-accumulates per sample (MACs) and how many of them have a 1-bit weight (each is
  then an addition or a subtraction). MACs are counted for ``Linear`` (``in_features`` per
  output element) and ``Conv1d/2d/3d`` (``in_channels/groups × kernel volume`` per output
  element) in one forward pass of a zero sample of ``input_shape``; other layers count 0.

Totals: the packed size (the sum; a ``.qnn`` file adds only its header), the float32
equivalent (4 bytes per element), and their ratio. The report follows the model summary of
Larq (Geiger & Team, "Larq: an open-source library for training binarized neural networks",
JOSS 2020).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from qnnlab.packed.quantize import QuantArg, as_specs, packed_nbytes

__all__ = ["LayerSummary", "ModelSummary", "count_macs", "summarize", "summary_of"]


@dataclass(frozen=True)
class LayerSummary:
    """One layer's parameters and bytes by precision, and its MACs per sample (``None``: no input shape given)."""

    name: str
    kind: str
    params_1bit: int = 0
    params_kbit: int = 0
    params_float: int = 0
    kbits: list[int] = field(default_factory=list)
    bytes_1bit: int = 0
    bytes_kbit: int = 0
    bytes_scales: int = 0
    bytes_float: int = 0
    macs: int | None = None
    binary_macs: int | None = None

    @property
    def params(self) -> int:
        return self.params_1bit + self.params_kbit + self.params_float

    @property
    def bytes(self) -> int:
        return self.bytes_1bit + self.bytes_kbit + self.bytes_scales + self.bytes_float


@dataclass(frozen=True)
class ModelSummary:
    """Every layer and the totals; ``file_bytes`` is the ``.qnn`` file's size when there is one."""

    layers: list[LayerSummary]
    file_bytes: int | None = None

    def total(self, key: str) -> int | None:
        values = [getattr(layer, key) for layer in self.layers]
        return None if None in values else sum(values)

    @property
    def packed_bytes(self) -> int:
        return sum(layer.bytes for layer in self.layers)

    @property
    def float32_bytes(self) -> int:
        return 4 * sum(layer.params for layer in self.layers)

    @property
    def compression(self) -> float:
        """``float32 bytes / packed bytes``."""
        return self.float32_bytes / self.packed_bytes if self.packed_bytes else math.nan

    def to_dict(self) -> dict[str, Any]:
        keys = ("params_1bit", "params_kbit", "params_float", "bytes_1bit", "bytes_kbit", "bytes_scales")
        totals = {k: self.total(k) for k in (*keys, "bytes_float", "macs", "binary_macs")}
        totals |= {
            "packed_bytes": self.packed_bytes,
            "float32_bytes": self.float32_bytes,
            "compression": self.compression,
            "file_bytes": self.file_bytes,
        }
        return {"layers": [asdict(layer) for layer in self.layers], "totals": totals}


def count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, int]:
    """MACs per sample of each ``Linear`` and ``Conv1d/2d/3d`` (by module name), from one forward pass."""
    names = {m: n for n, m in model.named_modules()}
    macs: dict[str, int] = {}

    def hook(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        if isinstance(module, nn.Linear):
            per_output = module.in_features
        else:
            per_output = module.in_channels // module.groups * math.prod(module.kernel_size)
        macs[names[module]] = macs.get(names[module], 0) + output.numel() * per_output

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, nn.Linear | nn.Conv1d | nn.Conv2d | nn.Conv3d)
    ]
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape, dtype=dtype))
    except RuntimeError as err:
        raise ValueError(f"input_shape {tuple(input_shape)} does not fit the model: {err}") from None
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return macs


def summarize(
    model: nn.Module, quant: QuantArg, input_shape: tuple[int, ...] | None = None, *, file_bytes: int | None = None
) -> ModelSummary:
    """The per-layer summary of ``model`` with the tensors in ``quant`` packed (MACs when ``input_shape`` is given)."""
    state = model.state_dict()
    specs = as_specs(quant, state)
    macs = count_macs(model, input_shape) if input_shape is not None else None
    modules = dict(model.named_modules())
    by_layer: dict[str, list[str]] = {}
    for name in state:
        by_layer.setdefault(name.rpartition(".")[0], []).append(name)
    layers = []
    for prefix, names in by_layer.items():
        counts: Counter[str] = Counter()
        kbits = set()
        for name in names:
            t, spec = state[name], specs.get(name)
            if spec is None:
                counts["params_float"] += t.numel()
                counts["bytes_float"] += t.numel() * t.element_size()
                continue
            precision = "1bit" if spec.bits == 1 else "kbit"
            codes, scales = packed_nbytes(tuple(t.shape), spec)
            counts[f"params_{precision}"] += t.numel()
            counts[f"bytes_{precision}"] += codes
            counts["bytes_scales"] += scales
            kbits |= {spec.bits} - {1}
        weight = specs.get(f"{prefix}.weight" if prefix else "weight")
        layer_macs = None if macs is None else macs.get(prefix, 0)
        binary = None if macs is None else (layer_macs if weight is not None and weight.bits == 1 else 0)
        kind = type(modules[prefix]).__name__ if prefix in modules else ""
        layers.append(
            LayerSummary(prefix or "(model)", kind, **counts, kbits=sorted(kbits), macs=layer_macs, binary_macs=binary)
        )
    return ModelSummary(layers, file_bytes)


def summary_of(target: str | Path) -> ModelSummary:
    """The summary of a ``.qnn`` file, or of a run (a checkpoint ``.pt`` or ``RESULTS_DIR:RUN_ID``)."""
    from qnnlab.packed.export import load_packed, load_run, read_packed
    from qnnlab.packed.format import PackedFileError

    if str(target).endswith(".qnn"):
        packed = read_packed(target)
        if packed.config is None:
            raise PackedFileError(
                f"{target}: holds no run config, so its model cannot be rebuilt here; in Python call"
                " summarize(module, read_packed(path).specs, input_shape)"
            )
        return summarize(load_packed(target), packed.specs, packed.input_shape, file_bytes=packed.file_bytes)
    run = load_run(target)
    return summarize(run.model, run.quant, run.input_shape)
