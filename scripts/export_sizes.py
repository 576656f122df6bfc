"""File sizes of the export formats for the presets' networks: ``.qnn``, ONNX, QONNX, and the float baselines.

For each network (built from its preset's config; every constrained weight on the preset's grid)
it writes, in one process:

* ``float ONNX``: ``torch.onnx.export`` of the model at ``Q(w)``, weights as float32 initializers
  (what exporting the model of ``load_packed`` gives);
* ``onnx`` / ``qonnx``: :func:`qnnlab.export_model` with ``format="onnx"`` / ``"qonnx"``;
* ``.qnn``: ``format="qnn"``; ``torch.save``: the float ``state_dict``.

The tensors are random (batch-norm statistics too, so that no two are equal): no format
compresses, so the sizes depend only on the shapes and grids.
Usage::

    .venv/bin/python scripts/export_sizes.py --out docs/export_sizes.md
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
import tempfile
import warnings
from datetime import UTC, datetime
from pathlib import Path

import torch
from torch import nn

import qnnlab
from qnnlab.config import validate_config
from qnnlab.io import write_atomic
from qnnlab.nn.models import build_model, constrained_names
from qnnlab.packed import QuantSpec, export_model, load_packed

NETWORKS = [
    # name, model config, input shape, outputs, bits (1: unit binary grid; k: k-bit grid, one scale per tensor)
    ("logistic (10 weights)", {"name": "linear", "bias": False}, (10,), 1, 1),
    ("two-moons 2→3→1, BN", {"name": "moons_mlp"}, (2,), 1, 1),
    ("digits MLP 64→256→256→10, BN", {"name": "mlp", "width": 256, "depth": 2, "bias": False}, (64,), 10, 1),
    ("digits MLP, ternary", {"name": "mlp", "width": 256, "depth": 2, "bias": False}, (64,), 10, 2),
    ("digits MLP, 4-bit", {"name": "mlp", "width": 256, "depth": 2, "bias": False}, (64,), 10, 4),
    ("fashion MLP 784→512→512→10, BN", {"name": "mlp", "width": 512, "depth": 2, "bias": False}, (784,), 10, 1),
    ("ResNet-20 (CIFAR-10)", {"name": "resnet20"}, (3, 32, 32), 10, 1),
]


def _float_onnx(model: nn.Module, input_shape: tuple[int, ...], out: Path) -> int:
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(model, (torch.zeros(2, *input_shape),), dynamo=True, verbose=False)
    program.save(out)
    return out.stat().st_size


def measure(model_cfg: dict, input_shape: tuple[int, ...], n_outputs: int, bits: int, tmp: Path) -> dict[str, int]:
    cfg = validate_config({"data": {"name": "logistic"}, "model": model_cfg, "method": {"name": "sgd", "lr": 0.1}})
    torch.manual_seed(0)
    model = build_model(cfg.model, input_shape, n_outputs).eval()
    with torch.no_grad():  # trained-looking norms: equal tensors would be stored once in the ONNX graphs
        for t in (
            t for n, t in model.state_dict().items() if t.is_floating_point() and n not in constrained_names(model)
        ):
            t.uniform_(0.5, 2)
    quant = {n: (1 if bits == 1 else QuantSpec(bits, "tensor")) for n in constrained_names(model)}
    sizes = {fmt: export_model(model, quant, tmp / f"m.{fmt}", format=fmt, input_shape=input_shape)
             for fmt in ("qnn", "onnx", "qonnx")}  # fmt: skip
    at_q = load_packed(tmp / "m.qnn", model=build_model(cfg.model, input_shape, n_outputs))
    sizes["float_onnx"] = _float_onnx(at_q, input_shape, tmp / "float.onnx")
    torch.save(model.state_dict(), tmp / "float.pt")
    sizes["torch_save"] = (tmp / "float.pt").stat().st_size
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="Markdown file to write (default: print only)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, model_cfg, shape, n_out, bits in NETWORKS:
            s = measure(model_cfg, shape, n_out, bits, Path(tmp))
            cells = [s[k] for k in ("torch_save", "float_onnx", "qonnx", "onnx", "qnn")]
            ratio = s["float_onnx"] / s["onnx"]
            rows.append(f"| {name} | {bits} | " + " | ".join(f"{c:,}" for c in cells) + f" | {ratio:.1f} |")
            print(rows[-1], flush=True)
    command = shlex.join([".venv/bin/python", "scripts/export_sizes.py", *sys.argv[1:]])
    text = "\n".join(
        [
            "# Export file sizes (bytes)",
            "",
            f"Produced by `{command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; qnnlab {qnnlab.__version__},"
            f" torch {torch.__version__}. Random weights on each grid (bits 1: ±1; k: one scale per tensor);"
            " biases and batch-norm tensors in float32. `float ONNX`: `torch.onnx.export` of the model at Q(w);"
            " `qonnx` / `onnx` / `.qnn`: `qnnlab.export_model(..., format=...)`; last column: float ONNX / onnx.",
            "",
            "| network | bits | torch.save | float ONNX | qonnx | onnx | .qnn | float ONNX / onnx |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
            *rows,
            "",
        ]
    )
    if args.out:
        write_atomic(args.out, text)


if __name__ == "__main__":
    main()
