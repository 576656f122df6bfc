"""Export a model's quantized weights to a packed ``.qnn`` file, and load them back.

:func:`export_model` quantizes the named tensors of any ``nn.Module`` (:mod:`qnnlab.packed.quantize`),
packs their codes (:mod:`qnnlab.packed.bits`) and writes them with every other state-dict entry
as is (:mod:`qnnlab.packed.format`). :func:`export_run` does this for a trained run: it
rebuilds the run's model from its checkpoint and packs every constrained tensor's ``Q(w)`` (the
weights the run was judged on) on its grid, with the per-tensor scale the method trained with
(:mod:`qnnlab.quant.tensor_grids`). :func:`load_packed` rebuilds the model (from the stored run config, or
into a module you pass) with ``Q(w)`` as its weights; its outputs equal the quantized model's
bit for bit. With ``format="onnx"`` or ``"qonnx"`` both write a graph of the model at ``Q(w)``
instead (:mod:`qnnlab.packed.onnx_export`).

A run is named by its checkpoint file (``results/checkpoints/run-3.pt``) or as
``RESULTS_DIR:RUN_ID`` (``results:3``).

Example::

    from qnnlab.packed import export_model, load_packed

    export_model(mlp, {"0.weight": 1, "2.weight": QuantSpec(4, "channel")}, "mlp.qnn", input_shape=(784,))
    same = load_packed("mlp.qnn", model=fresh_mlp)  # forward == the quantized mlp's, bit for bit
    export_model(mlp, {"0.weight": 1}, "mlp.onnx", format="onnx", input_shape=(784,))  # for onnxruntime
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

import qnnlab
from qnnlab.config import ConfigError, validate_config
from qnnlab.data import get_dataset
from qnnlab.nn.models import constrained_names
from qnnlab.packed.format import FORMAT_VERSION, PackedFileError, read_container, read_meta, write_container
from qnnlab.packed.onnx_export import ONNX_FORMATS, write_onnx
from qnnlab.packed.quantize import QuantArg, QuantizedTensor, QuantSpec, quantize_state

__all__ = [
    "FORMATS",
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


def quantized_state_dict(model: nn.Module, quant: QuantArg) -> dict[str, Tensor]:
    """``model``'s state dict with ``Q(w)`` for each tensor named in ``quant``: what :func:`load_packed` restores."""
    state = model.state_dict()
    _, quantized = quantize_state(state, quant)
    return {n: quantized[n].dequantize() if n in quantized else t.detach() for n, t in state.items()}


FORMATS: tuple[str, ...] = ("qnn", *ONNX_FORMATS)


def export_model(
    model: nn.Module,
    quant: QuantArg,
    out: str | Path,
    *,
    format: str = "qnn",
    config: Mapping[str, Any] | None = None,
    n_outputs: int | None = None,
    input_shape: tuple[int, ...] | None = None,
) -> int:
    """Write ``model`` with the tensors named in ``quant`` on their grids; returns the file size.

    Args:
        model: any module; every state-dict entry not in ``quant`` is stored as is.
        quant: ``{state-dict name: bits or QuantSpec}``; a bare ``bits`` means scale 1.
        out: the file to write.
        format: ``"qnn"`` (bit-packed, :mod:`qnnlab.packed.format`), ``"onnx"`` (runs in
            onnxruntime) or ``"qonnx"`` (for FINN and hls4ml); see :mod:`qnnlab.packed.onnx_export`.
        config: the run config that rebuilds ``model`` (``build_model(config.model, input_shape, n_outputs)``);
            without it, :func:`load_packed` needs a module of the same architecture.
        n_outputs: the model's output size (with ``config``).
        input_shape: one sample's shape: to rebuild the model, for the multiply-accumulate
            counts of ``qnnlab summary``, and to trace the ONNX graphs (required there).
    """
    if format not in FORMATS:
        raise ValueError(f"unknown export format {format!r}; choose from: {', '.join(FORMATS)}")
    if format != "qnn":
        if input_shape is None:
            raise ValueError(f"{format} export traces the model: give input_shape, one sample's shape")
        return write_onnx(model, quant, out, tuple(input_shape), format)
    state = model.state_dict()
    specs, quantized = quantize_state(state, quant)
    # copies: a state dict may hold views or tied tensors, which safetensors refuses to write
    tensors = {f"float:{n}": t.detach().clone() for n, t in state.items() if n not in specs}
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

    path: Path
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

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {
            **{n: tuple(t.shape) for n, t in self.floats.items()},
            **{n: q.shape for n, q in self.quantized.items()},
        }

    def build(self) -> nn.Module:
        """The model of the stored run config, once its tensors' names and shapes are checked to match the file's.

        The check builds the model on the meta device first, so a config that names a model
        other than the stored tensors (or a huge one) fails before anything is allocated.
        """
        from qnnlab.train.loop import build_run_model

        if self.config is None or self.n_outputs is None or self.input_shape is None:
            raise PackedFileError(
                f"{self.path}: holds no run config to rebuild the model from;"
                " pass model= a module of the same architecture"
            )
        try:
            cfg = validate_config(self.config)
        except ConfigError as err:
            raise PackedFileError(f"{self.path}: its run config: {err}") from None
        with torch.device("meta"):
            skeleton = build_run_model(cfg, self.input_shape, self.n_outputs)
        expected = {n: tuple(t.shape) for n, t in skeleton.state_dict().items()}
        stored = self.shapes()
        if bad := next((n for n in expected.keys() | stored.keys() if expected.get(n) != stored.get(n)), None):
            raise PackedFileError(
                f"{self.path}: tensor {bad!r} is {_shape(stored.get(bad))} in the file but"
                f" {_shape(expected.get(bad))} in the model its run config builds"
            )
        return build_run_model(cfg, self.input_shape, self.n_outputs)

    def load(self, model: nn.Module | None = None) -> nn.Module:
        """``model`` (default: :meth:`build`) with these tensors, ``Q(w)`` for the quantized ones, in eval mode."""
        model = self.build() if model is None else model
        model.load_state_dict(self.state_dict())
        return model.eval()


def _shape(shape: tuple[int, ...] | None) -> str:
    return "missing" if shape is None else f"of shape {list(shape)}"


def read_packed(path: str | Path) -> PackedModel:
    """Read and check a ``.qnn`` file; raises :class:`~qnnlab.packed.format.PackedFileError` naming the fault."""
    path = Path(path)
    tensors, raw = read_container(path)
    meta = read_meta(path, raw)
    described = {f"{kind}:{n}" for n in meta.quantized for kind in ("packed", "scale")}
    if extra := sorted(k for k in tensors if not k.startswith("float:") and k not in described):
        raise PackedFileError(f"{path}: malformed contents: tensor {extra[0]!r} is not described by the metadata")
    if both := sorted(n for n in meta.quantized if f"float:{n}" in tensors):
        raise PackedFileError(f"{path}: malformed contents: tensor {both[0]!r} is stored both packed and as is")
    quantized, specs = {}, {}
    for name, info in meta.quantized.items():
        try:
            scale, packed = tensors[f"scale:{name}"], tensors[f"packed:{name}"]
            if scale.dim() != (info.scale == "channel"):
                raise ValueError(f"a {info.scale!r} scale has {1 if info.scale == 'channel' else 0} dims")
            quantized[name] = QuantizedTensor.from_packed(
                packed, scale, info.bits, tuple(info.shape), getattr(torch, info.dtype)
            )
            specs[name] = QuantSpec(info.bits, float(scale) if info.scale == "fixed" else info.scale)
        except (KeyError, ValueError, TypeError) as err:
            raise PackedFileError(f"{path}: malformed contents: tensor {name!r}: {err}") from None
    floats = {k.removeprefix("float:"): t for k, t in tensors.items() if k.startswith("float:")}
    input_shape = tuple(meta.input_shape) if meta.input_shape is not None else None
    return PackedModel(path, quantized, specs, floats, meta.config, meta.n_outputs, input_shape, path.stat().st_size)


def load_packed(path: str | Path, model: nn.Module | None = None) -> nn.Module:
    """The model stored in ``path`` with ``Q(w)`` as its weights, in eval mode.

    Without ``model`` it is rebuilt from the stored run config (:meth:`PackedModel.build`);
    with ``model`` (a module of the same architecture) the weights are loaded into it.
    """
    return read_packed(path).load(model)


# -- runs -----------------------------------------------------------------------------------
def resolve_checkpoint(run: str | Path) -> Path:
    """The checkpoint of ``run``: a ``.pt`` file, or ``RESULTS_DIR:RUN_ID`` (``RESULTS_DIR/checkpoints/run-ID.pt``)."""
    path = Path(run)
    match = re.fullmatch(r"(.+):(\d+)", str(run))
    if not path.exists() and match:
        path = Path(match[1]) / "checkpoints" / f"run-{match[2]}.pt"
        if not path.exists():
            raise FileNotFoundError(f"{run}: no checkpoint {path} (a run writes one every checkpoint_every epochs)")
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


def _unfinished(path: Path, ckpt: Mapping[str, Any]) -> str:
    """Why the run of checkpoint ``path`` has nothing to export: its status in the store beside it, if there."""
    from qnnlab.store import DB_NAME, RunStore

    match = re.fullmatch(r"run-(\d+)\.pt", path.name)
    status, error = "stopped", ""
    if match and (path.parent.parent / DB_NAME).is_file():
        with RunStore(path.parent.parent, read_only=True) as store:
            row = next((r for r in store.runs() if r["id"] == int(match[1])), None)
        if row is not None:
            status, error = row["status"], (row["summary"] or {}).get("error", "")
    if status == "diverged":
        return f"{path}: the run diverged ({error or 'not finite'}); nothing to export"
    return (
        f"{path}: the run {status}; this checkpoint of epoch {ckpt.get('epoch')} is not a finished run "
        "(resume it with --resume first)"
    )


def load_run(run: str | Path) -> RunModel:
    """A run's model from its checkpoint (its digest verified): ``Q(w)`` and its grid for every constrained tensor,
    ``w`` elsewhere. A checkpoint of an unfinished (interrupted, diverged) run or with non-finite weights is refused."""
    from qnnlab.train.checkpoint import load_checkpoint
    from qnnlab.train.loop import build_run_model

    path = resolve_checkpoint(run)
    ckpt = load_checkpoint(path)
    if not {"config", "model", "continuous"} <= ckpt.keys():
        raise ValueError(f"{path}: not a qnnlab run checkpoint (it needs the keys config, model, continuous)")
    if ckpt.get("final") is False:
        raise ValueError(_unfinished(path, ckpt))
    try:
        cfg = validate_config(ckpt["config"])
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
    # Q(w) and its scales where the checkpoint has them; an older one was judged on the unit grid
    state = {**ckpt["model"], **ckpt["continuous"], **ckpt.get("quantized", {})}
    if bad := [n for n, t in state.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]:
        raise ValueError(f"{path}: tensor {bad[0]!r} is not finite (NaN or infinity); nothing to export")
    scales = ckpt.get("grid_scales", {})
    data = get_dataset(cfg.data)
    model = build_run_model(cfg, data.input_shape, data.n_outputs)
    model.load_state_dict(state)
    quant = {n: QuantSpec(cfg.bits, float(scales.get(n, 1.0))) for n in constrained_names(model, cfg.model.keep_fp)}
    return RunModel(model, quant, cfg.model_dump(), tuple(data.input_shape), data.n_outputs, path)


def export_run(run: str | Path, out: str | Path, *, format: str = "qnn") -> int:
    """Export a trained run's ``Q(w)`` to ``out`` in ``format`` (see :func:`export_model`); returns the file size."""
    r = load_run(run)
    return export_model(
        r.model, r.quant, out, format=format, config=r.config, n_outputs=r.n_outputs, input_shape=r.input_shape
    )
