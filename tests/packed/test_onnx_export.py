"""ONNX and QONNX export: the graphs run in onnxruntime and in qonnx's own executor and give qnnlab's outputs at Q(w).

Exactly on integer-valued inputs through layers whose float arithmetic is exact (integer grid
levels, sums of integers below 2^24); through batch norm or scaled grids, within TOL of the
output's magnitude: onnxruntime and torch round the same products in a different order.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn
from torch.func import functional_call
from typer.testing import CliRunner

from qnnlab import export_model
from qnnlab.cli import app
from qnnlab.config import validate_config
from qnnlab.data import get_dataset
from qnnlab.nn import QuantConv2d, QuantLinear
from qnnlab.nn.models import build_model, constrained_names
from qnnlab.packed import QuantSpec, load_run, quantized_state_dict
from qnnlab.packed.onnx_export import _integer_type, onnx_graph
from qnnlab.quant.quantizers import SignQuantizer

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("qonnx")
from onnx import numpy_helper  # noqa: E402
from qonnx.core.modelwrapper import ModelWrapper  # noqa: E402
from qonnx.core.onnx_exec import execute_onnx  # noqa: E402
from qonnx.transformation.infer_datatypes import InferDataTypes  # noqa: E402
from qonnx.util.cleanup import cleanup_model  # noqa: E402

TOL = 1e-5  # |onnx − qnnlab| ≤ TOL·(1 + |qnnlab|) where the arithmetic is not exact


def run_onnx(model: "onnx.ModelProto", x: torch.Tensor) -> np.ndarray:
    return ort.InferenceSession(model.SerializeToString()).run(None, {"input": x.numpy()})[0]


def run_qonnx(model: "onnx.ModelProto", x: torch.Tensor) -> np.ndarray:
    """qonnx's cleanup (shapes, constant folding, names) at the batch of ``x``, then its node-by-node executor."""
    clean = cleanup_model(ModelWrapper(model), override_inpsize=len(x))
    return execute_onnx(clean, {clean.graph.input[0].name: x.numpy()})[clean.graph.output[0].name]


def initializers(model: "onnx.ModelProto") -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def assert_close(out: np.ndarray, reference: torch.Tensor) -> None:
    ref = reference.detach().numpy()
    assert out.shape == ref.shape
    assert np.all(np.abs(out - ref) <= TOL * (1 + np.abs(ref))), np.abs(out - ref).max()


def test_a_logistic_run_exports_through_the_cli_and_runs_exactly(logistic_run, tmp_path: Path) -> None:
    run = f"{tmp_path / 'results'}:{logistic_run.run_id}"
    runner = CliRunner()
    for fmt in ("onnx", "qonnx"):
        result = runner.invoke(app, ["export", run, "--out", str(tmp_path / f"m.{fmt}"), "--format", fmt])
        assert result.exit_code == 0, result.output
        assert f"wrote {tmp_path / f'm.{fmt}'}" in " ".join(result.output.split())
    plain, qonnx = onnx.load(tmp_path / "m.onnx"), onnx.load(tmp_path / "m.qonnx")
    x = torch.randint(-4, 5, (64, 10)).float()  # integer-valued: x·w is an exact integer
    reference = load_run(run).model.eval()(x)  # the model at the Q(w) the run was judged on
    assert np.array_equal(run_onnx(plain, x), reference.detach().numpy())
    assert np.array_equal(run_qonnx(qonnx, x), reference.detach().numpy())

    # the binary weight is ±1 in both graphs: INT2 levels through DequantizeLinear, float32 through BipolarQuant
    w = logistic_run.quantized["weight"].numpy()
    levels = initializers(plain)["weight"]
    assert plain.graph.initializer[[t.name for t in plain.graph.initializer].index("weight")].data_type == 26  # INT2
    assert np.array_equal(levels.astype(np.float32), w) and set(np.unique(w)) == {-1.0, 1.0}
    assert np.array_equal(initializers(qonnx)["weight"], w)
    assert [n.op_type for n in plain.graph.node] == ["DequantizeLinear", "Gemm"]
    assert (qonnx.graph.node[0].op_type, qonnx.graph.node[0].domain) == ("BipolarQuant", "qonnx.custom_op.general")
    # qonnx infers the weight node's output as BIPOLAR, the datatype FINN maps to XNOR-popcount
    typed = cleanup_model(ModelWrapper(qonnx)).transform(InferDataTypes())
    assert typed.get_tensor_datatype(typed.graph.node[0].output[0]).name == "BIPOLAR"
    assert json.loads(plain.metadata_props[0].value)["quantized"] == {"weight": {"bits": 1, "scale": 1.0}}
    # sizes: the 10 weights take 3 bytes of INT2 (10·2 bits) in onnx, 40 of float32 in qonnx
    assert len(plain.graph.initializer[[t.name for t in plain.graph.initializer].index("weight")].raw_data) == 3
    assert (tmp_path / "m.onnx").stat().st_size < 1_000 and (tmp_path / "m.qonnx").stat().st_size < 1_200


def preset_model(data: dict, model: dict, input_shape: tuple[int, ...], n_outputs: int) -> tuple:
    """A preset's network with random weights and batch-norm statistics, and its data config."""
    cfg = validate_config({"data": data, "model": model, "method": {"name": "sgd", "lr": 0.1}})
    torch.manual_seed(0)
    net = build_model(cfg.model, input_shape, n_outputs).eval()
    for bn in (m for m in net.modules() if isinstance(m, nn.BatchNorm1d)):
        bn.running_mean.normal_(0, 0.5), bn.running_var.uniform_(0.5, 2)
    return net, cfg


def test_the_two_moons_network_with_batch_norm() -> None:
    model, cfg = preset_model({"name": "two_moons"}, {"name": "moons_mlp"}, (2,), 1)
    quant = {n: 1 for n in constrained_names(model)}  # its 9 binary weights
    x = get_dataset(cfg.data).x_test
    reference = functional_call(model, quantized_state_dict(model, quant), (x,))
    for fmt, execute in (("onnx", run_onnx), ("qonnx", run_qonnx)):
        assert_close(execute(onnx_graph(model, quant, (2,), fmt), x), reference)


def test_the_digits_mlp_at_two_bits_per_tensor_and_four_bits_per_channel() -> None:
    model, cfg = preset_model({"name": "digits"}, {"name": "mlp", "width": 256, "depth": 2, "bias": False}, (64,), 10)
    names = constrained_names(model)
    quant = {names[0]: QuantSpec(2, "tensor"), names[1]: QuantSpec(2, "tensor"), names[2]: QuantSpec(4, "channel")}
    x = get_dataset(cfg.data).x_test
    reference = functional_call(model, quantized_state_dict(model, quant), (x,))
    plain, qonnx = onnx_graph(model, quant, (64,), "onnx"), onnx_graph(model, quant, (64,), "qonnx")
    assert_close(run_onnx(plain, x), reference)
    assert_close(run_qonnx(qonnx, x), reference)

    # the graphs hold Q(w) exactly: s·q from the integer levels (onnx), and as the float initializer (qonnx)
    state, plain_init, qonnx_init = quantized_state_dict(model, quant), initializers(plain), initializers(qonnx)
    for name in names:
        s = plain_init[f"{name}.scale"]
        q = plain_init[name].astype(np.float32)
        assert np.array_equal((s.reshape(-1, 1) if s.ndim else s) * q, state[name].numpy())
        assert np.array_equal(qonnx_init[name], state[name].numpy())
    types = {t.name: t.data_type for t in plain.graph.initializer}
    assert [types[n] for n in names] == [26, 26, 22]  # INT2, INT2, INT4
    quant_nodes = [n for n in qonnx.graph.node if n.op_type == "Quant"]
    assert [dict((a.name, onnx.helper.get_attribute_value(a)) for a in n.attribute) for n in quant_nodes] == [
        {"signed": 1, "narrow": 1, "rounding_mode": b"ROUND"}
    ] * 3
    assert [qonnx_init[n.input[3]].item() for n in quant_nodes] == [2.0, 2.0, 4.0]
    # 64·256 + 256·256 ternary and 256·10 4-bit weights: 20,480 + 1,280 bytes of codes in onnx
    assert sum(len(t.raw_data) for t in plain.graph.initializer if t.name in names) == 4096 + 16384 + 1280


def conv_net() -> nn.Sequential:
    """A small conv net with every quantizer QONNX expresses: PACT and uniform inputs, a sign activation."""
    torch.manual_seed(0)
    model = nn.Sequential(
        QuantConv2d(1, 8, 3, padding=1, weight_quantizer="sign"),  # as an ste run: sign(Q(w)) = Q(w) is left out
        nn.ReLU(),
        QuantConv2d(8, 8, 3, input_quantizer={"name": "pact", "bits": 2, "alpha": 3.0}),  # step α/n = 1
        nn.MaxPool2d(2),
        nn.Flatten(),
        QuantLinear(72, 16, input_quantizer={"name": "uniform", "bits": 3, "step": 2.0}),
        SignQuantizer(),
        nn.Linear(16, 10),
    ).eval()
    with torch.no_grad():
        for layer in (model[0], model[2], model[5], model[7]):
            layer.bias.copy_(torch.randint(-3, 4, layer.bias.shape))  # integer biases: every sum is exact
    return model


def test_a_small_conv_net_with_activation_quantizers_runs_exactly() -> None:
    model = conv_net()
    quant = {"0.weight": 1, "2.weight": QuantSpec(4), "5.weight": QuantSpec(2, 1.0), "7.weight": 1}
    # inputs in halves: sums in halves (PACT, step 1) and integers (uniform, step 2) hit the grids' ties
    # x/s = j + 1/2, which qnnlab, onnxruntime and qonnx (HALF_UP) all round up; zeros meet sign(0) = +1
    x = torch.randint(-6, 7, (64, 1, 8, 8)).float() / 2
    reference = functional_call(model, quantized_state_dict(model, quant), (x,)).detach().numpy()
    plain, qonnx = onnx_graph(model, quant, (1, 8, 8), "onnx"), onnx_graph(model, quant, (1, 8, 8), "qonnx")
    assert np.array_equal(run_onnx(plain, x), reference)
    assert np.array_equal(run_qonnx(qonnx, x), reference)

    typed = cleanup_model(ModelWrapper(qonnx)).transform(InferDataTypes())
    quant_nodes = {n.input[0]: n for n in typed.graph.node if n.op_type in ("Quant", "BipolarQuant")}
    assert len(quant_nodes) == 4 + 3  # four weights; the PACT, uniform and sign activations
    datatypes = sorted(typed.get_tensor_datatype(n.output[0]).name for n in quant_nodes.values())
    # unit scales give integer datatypes, as FINN reads them: weights ±1, 4 and 2 bits, PACT's 2-bit output,
    # the sign; the uniform grid's step 2 makes a scaled (float) grid
    assert datatypes == ["BIPOLAR", "BIPOLAR", "BIPOLAR", "FLOAT32", "INT2", "INT4", "UINT2"]
    assert "Sign" not in [n.op_type for n in plain.graph.node[:4]]  # the sign weight quantizer is gone


def test_errors_name_the_problem(tmp_path: Path) -> None:
    model = nn.Sequential(QuantLinear(4, 3, input_quantizer={"name": "sawb", "bits": 4}))
    with pytest.raises(
        ValueError, match=r"0\.input_quantizer: a 'sawb' quantizer has no QONNX node here; QONNX export"
    ):
        onnx_graph(model, {"0.weight": 1}, (4,), "qonnx")
    with pytest.raises(ValueError, match="unknown export format 'tflite'; choose from: qnn, onnx, qonnx"):
        export_model(model, {}, tmp_path / "m.onnx", format="tflite")
    with pytest.raises(ValueError, match="onnx export traces the model: give input_shape"):
        export_model(model, {}, tmp_path / "m.onnx", format="onnx")
    with pytest.raises(ValueError, match=r"0\.weight: ONNX export takes float32 weights; got torch.float64"):
        onnx_graph(nn.Sequential(nn.Linear(4, 3)).double(), {"0.weight": 1}, (4,))
    with pytest.raises(ValueError, match=r"input_shape \(5,\) does not fit the model: mat1 and mat2 shapes"):
        onnx_graph(nn.Linear(4, 3), {"weight": 1}, (5,), "qonnx")
    with pytest.raises(KeyError, match="unknown tensor 'w' in quant"):
        onnx_graph(nn.Linear(4, 3), {"w": 1}, (4,))
    assert not (tmp_path / "m.onnx").exists()


@given(bits=st.integers(1, 16), data=st.data())
def test_the_integer_type_holds_every_level_of_its_grid(bits: int, data) -> None:
    import onnx_ir as ir

    m = 1 if bits == 1 else 2 ** (bits - 1) - 1
    dtype = np.int8 if bits <= 8 else np.int16  # as the exported buffers
    levels = np.array(data.draw(st.lists(st.integers(-m, m), min_size=1, max_size=9)), dtype=dtype)
    tensor = ir.to_proto(ir.Tensor(levels, dtype=_integer_type(bits), name="q"))
    assert np.array_equal(numpy_helper.to_array(tensor).astype(np.int64), levels)
    assert _integer_type(bits).bitwidth == next(w for w in (2, 4, 8, 16) if bits <= w)
