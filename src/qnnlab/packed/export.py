"""Export a model's quantized weights to a packed ``.qnn`` file, and load them back.

:func:`export_model` quantizes the named tensors of any ``nn.Module`` (:mod:`qnnlab.packed.quantize`),
packs their codes (:mod:`qnnlab.packed.bits`) and writes them with every other state-dict entry
as is (:mod:`qnnlab.packed.format`). :func:`export_run` does this for a trained run: it
rebuilds the run's model from its checkpoint and packs every constrained tensor's ``Q(w)`` (the
weights the run was judged on) on its grid, with the per-tensor scale the method trained with
(:mod:`qnnlab.quant.tensor_grids`). :func:`load_packed` rebuilds the model (from the stored run config, or
into a module you pass) with ``Q(w)`` as its weights; its outputs equal the quantized model's
bit for bit.

A run is named by its checkpoint file (``results/checkpoints/run-3.pt``) or as
``RESULTS_DIR:RUN_ID`` (``results:3``).

Example::

    from qnnlab.packed import export_model, load_packed

    export_model(mlp, {"0.weight": 1, "2.weight": QuantSpec(4, "channel")}, "mlp.qnn", input_shape=(784,))
    same = load_packed("mlp.qnn", model=fresh_mlp)  # forward == the quantized mlp's, bit for bit
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.torch_version import TorchVersion

import qnnlab
from qnnlab.config import ConfigError, validate_config
from qnnlab.data import get_dataset
from qnnlab.nn.models import constrained_names
from qnnlab.packed.format import FORMAT_VERSION, PackedFileError, read_container, write_container
from qnnlab.packed.quantize import QuantArg, QuantizedTensor, QuantSpec, as_specs, quantize

__all__ = [
    "PackedModel",
    "RunModel",
    "export_model",
    "export_run",
    "load_packed",
    "load_run",
    "quantized_state_dict",
    "read_packed",
    "resolve_checkpoint",
]


def _quantize_state(
    state: Mapping[str, Tensor], quant: QuantArg
) -> tuple[dict[str, QuantSpec], dict[str, QuantizedTensor], dict[str, Tensor]]:
    """``(specs, quantized tensors, the other tensors)`` of a state dict."""
    specs = as_specs(quant, state)
    quantized = {}
    for name, spec in specs.items():
        try:
            quantized[name] = quantize(state[name], spec)
        except ValueError as err:
            raise ValueError(f"{name}: {err}") from None
    # copies: a state dict may hold views or tied tensors, which safetensors refuses to write
    return specs, quantized, {n: t.detach().clone() for n, t in state.items() if n not in specs}


def quantized_state_dict(model: nn.Module, quant: QuantArg) -> dict[str, Tensor]:
    """``model``'s state dict with ``Q(w)`` for each tensor named in ``quant``: what :func:`load_packed` restores."""
    state = model.state_dict()
    _, quantized, _ = _quantize_state(state, quant)
    return {n: quantized[n].dequantize() if n in quantized else t.detach() for n, t in state.items()}


def export_model(
    model: nn.Module,
    quant: QuantArg,
    out: str | Path,
    *,
    config: Mapping[str, Any] | None = None,
    n_outputs: int | None = None,
    input_shape: tuple[int, ...] | None = None,
) -> int:
    """Write ``model`` with the tensors named in ``quant`` packed on their grids; returns the file size.

    Args:
        model: any module; every state-dict entry not in ``quant`` is stored as is.
        quant: ``{state-dict name: bits or QuantSpec}``; a bare ``bits`` means scale 1.
        out: the ``.qnn`` file to write.
        config: the run config that rebuilds ``model`` (``build_model(config.model, input_shape, n_outputs)``);
            without it, :func:`load_packed` needs a module of the same architecture.
        n_outputs: the model's output size (with ``config``).
        input_shape: one sample's shape: to rebuild the model, and for the multiply-accumulate
            counts of ``qnnlab summary``.
    """
    specs, quantized, floats = _quantize_state(model.state_dict(), quant)
    tensors = {f"float:{n}": t for n, t in floats.items()}
    for n, q in quantized.items():
        tensors[f"packed:{n}"] = q.packed()
        tensors[f"scale:{n}"] = q.scale
    meta = {
        "format_version": FORMAT_VERSION,
        "qnnlab_version": qnnlab.__version__,
        "config": dict(config) if config is not None else None,
        "n_outputs": n_outputs,
        "input_shape": list(input_shape) if input_shape is not None else None,
        "quantized": {
            n: {
                "bits": q.bits,
                "shape": list(q.shape),
                "dtype": str(q.dtype).removeprefix("torch."),
                "scale": specs[n].mode,
            }
            for n, q in quantized.items()
        },
    }
    return write_container(out, tensors, meta)


@dataclass(frozen=True)
class PackedModel:
    """The contents of a ``.qnn`` file."""

    quantized: dict[str, QuantizedTensor]
    specs: dict[str, QuantSpec]
    floats: dict[str, Tensor]
    config: dict[str, Any] | None
    n_outputs: int | None
    input_shape: tuple[int, ...] | None
    file_bytes: int

    def state_dict(self) -> dict[str, Tensor]:
        """Every tensor, the quantized ones as ``Q(w)``."""
        return {**self.floats, **{n: q.dequantize() for n, q in self.quantized.items()}}


def _dtype(name: str) -> torch.dtype:
    dtype = getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"unknown dtype {name!r}")
    return dtype


def read_packed(path: str | Path) -> PackedModel:
    """Read and check a ``.qnn`` file; raises :class:`~qnnlab.packed.format.PackedFileError` naming the fault."""
    tensors, meta = read_container(path)
    quantized, specs = {}, {}
    try:
        entries = meta["quantized"].items()
        for name, info in entries:
            try:
                bits, shape, dtype = int(info["bits"]), tuple(info["shape"]), _dtype(info["dtype"])
                scale = tensors[f"scale:{name}"]
                quantized[name] = QuantizedTensor.from_packed(tensors[f"packed:{name}"], scale, bits, shape, dtype)
                specs[name] = QuantSpec(bits, float(scale) if info["scale"] == "fixed" else info["scale"])
            except (KeyError, ValueError, TypeError) as err:
                raise ValueError(f"tensor {name!r}: {err}") from None
        floats = {k.removeprefix("float:"): t for k, t in tensors.items() if k.startswith("float:")}
        shape = meta["input_shape"]
        config, n_outputs = meta["config"], meta["n_outputs"]
    except (KeyError, ValueError, TypeError, AttributeError) as err:
        raise PackedFileError(f"{path}: malformed contents: {err}") from None
    input_shape = tuple(shape) if shape is not None else None
    return PackedModel(quantized, specs, floats, config, n_outputs, input_shape, Path(path).stat().st_size)


def load_packed(path: str | Path, model: nn.Module | None = None) -> nn.Module:
    """The model stored in ``path`` with ``Q(w)`` as its weights, in eval mode.

    Without ``model`` it is rebuilt from the stored run config; with ``model`` (a module of
    the same architecture) the weights are loaded into it.
    """
    from qnnlab.train.loop import build_run_model

    packed = read_packed(path)
    if model is None:
        if packed.config is None or packed.n_outputs is None or packed.input_shape is None:
            raise PackedFileError(
                f"{path}: holds no run config to rebuild the model from; pass model= a module of the same architecture"
            )
        model = build_run_model(validate_config(packed.config), packed.input_shape, packed.n_outputs)
    model.load_state_dict(packed.state_dict())
    return model.eval()


# -- runs -----------------------------------------------------------------------------------
def resolve_checkpoint(run: str | Path) -> Path:
    """The checkpoint of ``run``: a ``.pt`` file, or ``RESULTS_DIR:RUN_ID`` (``RESULTS_DIR/checkpoints/run-ID.pt``)."""
    path = Path(run)
    match = re.fullmatch(r"(.+):(\d+)", str(run))
    if not path.exists() and match:
        path = Path(match[1]) / "checkpoints" / f"run-{match[2]}.pt"
        if not path.exists():
            raise FileNotFoundError(f"{run}: no checkpoint {path} (a run writes one when it finishes)")
    if not path.is_file():
        raise FileNotFoundError(f"{run}: no such checkpoint; give a .pt file or RESULTS_DIR:RUN_ID")
    return path


@dataclass(frozen=True)
class RunModel:
    """A trained run's model, and how its tensors are quantized.

    The constrained tensors hold the judged ``Q(w)`` (the continuous ``w`` for a checkpoint from
    before qnnlab stored it), the others their trained values; ``quant`` gives each constrained
    tensor its bits and its grid's fixed scale, so quantizing it again is exact.
    """

    model: nn.Module
    quant: dict[str, QuantSpec]
    config: dict[str, Any]
    input_shape: tuple[int, ...]
    n_outputs: int
    checkpoint: Path


def load_run(run: str | Path) -> RunModel:
    """A run's model from its checkpoint: ``Q(w)`` and its grid for every constrained tensor, ``w`` elsewhere."""
    from qnnlab.train.loop import build_run_model

    path = resolve_checkpoint(run)
    try:
        # the checkpoint's versions hold torch.__version__, a TorchVersion (a str subclass)
        with torch.serialization.safe_globals([TorchVersion]):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a foreign or damaged file can fail anywhere in the unpickler
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise ValueError(f"{path}: not a qnnlab run checkpoint ({type(err).__name__}: {first})") from None
    if not isinstance(ckpt, dict) or not {"config", "model", "continuous"} <= ckpt.keys():
        raise ValueError(f"{path}: not a qnnlab run checkpoint (it needs the keys config, model, continuous)")
    try:
        cfg = validate_config(ckpt["config"])
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
    # Q(w) and its scales where the checkpoint has them; an older one was judged on the unit grid
    state = {**ckpt["model"], **ckpt["continuous"], **ckpt.get("quantized", {})}
    scales = ckpt.get("grid_scales", {})
    data = get_dataset(cfg.data)
    model = build_run_model(cfg, data.input_shape, data.n_outputs)
    model.load_state_dict(state)
    quant = {n: QuantSpec(cfg.bits, float(scales.get(n, 1.0))) for n in constrained_names(model, cfg.model.keep_fp)}
    return RunModel(model, quant, cfg.model_dump(), tuple(data.input_shape), data.n_outputs, path)


def export_run(run: str | Path, out: str | Path) -> int:
    """Export a trained run's ``Q(w)`` to ``out``; returns the file size."""
    r = load_run(run)
    return export_model(r.model, r.quant, out, config=r.config, n_outputs=r.n_outputs, input_shape=r.input_shape)
