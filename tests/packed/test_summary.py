"""The summary's counts against small models counted by hand."""

import math
from pathlib import Path

import pytest
from torch import nn

from qnnlab.nn import QuantLinear
from qnnlab.packed import QuantSpec, export_model, export_run, summarize, summary_of
from qnnlab.packed.summary import trace_layers
from qnnlab.quant.quantizers import SignQuantizer


def small() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1),  # weight 4×2×3×3 = 72 at 2 bits, per-channel scales; bias 4
        nn.BatchNorm2d(4),  # 4 × (weight, bias, running mean, running var) float32 + an int64 counter
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(100, 3),  # weight 3×100 = 300 at 1 bit, one scale; bias 3
    )


QUANT = {"0.weight": QuantSpec(2, "channel"), "4.weight": QuantSpec(1, "tensor")}


def test_hand_counted_small_model() -> None:
    s = summarize(small(), QUANT, input_shape=(2, 5, 5))
    conv, bn, fc = s.layers
    assert (conv.name, conv.kind, bn.kind, fc.kind) == ("0", "Conv2d", "BatchNorm2d", "Linear")
    # conv: 4 rows of 18 codes × 2 bits = 36 bits -> 5 bytes each; 4 scales; 4 float32 biases
    assert (conv.params_kbit, conv.kbits, conv.bytes_kbit, conv.bytes_scales) == (72, [2], 20, 16)
    assert (conv.params_float, conv.bytes_float, conv.bytes) == (4, 16, 52)
    # 4·5·5 = 100 outputs, each 2·3·3 = 18 MACs; none with a 1-bit weight; a float input
    assert (conv.output_shape, conv.input_bits) == ([4, 5, 5], None)
    assert (conv.macs, conv.binary_weight_macs, conv.binary_macs) == (1800, 0, 0)
    assert (bn.params_float, bn.bytes_float, bn.macs, bn.binary_weight_macs, bn.output_shape) == (
        17,
        72,
        0,
        0,
        [4, 5, 5],
    )
    # fc: 3 rows of ⌈100/8⌉ = 13 bytes, one scale, 3 biases; 300 MACs with 1-bit weights, float inputs
    assert (fc.params_1bit, fc.bytes_1bit, fc.bytes_scales, fc.bytes_float) == (300, 39, 4, 12)
    assert (fc.macs, fc.binary_weight_macs, fc.binary_macs, fc.output_shape) == (300, 300, 0, [3])

    assert s.packed_bytes == 52 + 72 + 55 == 179
    assert s.float32_bytes == 4 * (72 + 4 + 17 + 300 + 3) == 1584
    assert s.compression == 1584 / 179
    totals = s.to_dict()["totals"]
    assert totals["params_1bit"] == 300 and totals["params_kbit"] == 72 and totals["params_float"] == 24
    assert (totals["macs"], totals["binary_weight_macs"], totals["binary_macs"]) == (2100, 300, 0)
    assert totals["file_bytes"] is None


def test_binary_macs_need_a_binary_weight_and_a_binary_input() -> None:
    model = nn.Sequential(
        nn.Linear(6, 5),  # float input (the data)
        SignQuantizer(),
        nn.Linear(5, 4),  # input all ±1 (a sign activation), 1-bit weight: binary MACs
        nn.ReLU(),
        QuantLinear(4, 3, input_quantizer={"name": "pact", "bits": 2}),  # 2-bit input, 1-bit weight
        SignQuantizer(),
        nn.Linear(3, 2),  # binary input, float weight
    )
    quant = {"0.weight": 1, "2.weight": 1, "4.weight": 1}
    layers = summarize(model, quant, input_shape=(6,)).layers
    assert [layer.name for layer in layers] == ["0", "2", "4", "4.input_quantizer", "6"]  # PACT's α is a layer's
    fc0, fc2, fc4, _, fc6 = layers
    assert [layer.input_bits for layer in (fc0, fc2, fc4, fc6)] == [None, 1, 2, 1]
    assert [layer.macs for layer in (fc0, fc2, fc4, fc6)] == [30, 20, 12, 6]
    assert [layer.binary_weight_macs for layer in (fc0, fc2, fc4, fc6)] == [30, 20, 12, 0]
    assert [layer.binary_macs for layer in (fc0, fc2, fc4, fc6)] == [0, 20, 0, 0]


def test_macs_of_grouped_and_1d_convolutions() -> None:
    model = nn.Sequential(nn.Conv1d(4, 6, 3, groups=2), nn.Flatten(), nn.Linear(48, 2, bias=False))
    # conv: 6 channels × 8 positions, each (4/2)·3 = 6 MACs; linear: 48·2
    seen = trace_layers(model, (4, 10))
    assert (seen["0"].macs, seen["2"].macs) == (288, 96)
    assert (seen["0"].output_shape, seen["1"].output_shape, seen["2"].output_shape) == ([6, 8], [48], [2])


def test_without_input_shape_macs_are_unknown_and_a_wrong_one_fails() -> None:
    s = summarize(small(), QUANT)
    assert s.layers[0].macs is None and s.layers[0].output_shape is None and s.to_dict()["totals"]["macs"] is None
    with pytest.raises(ValueError, match=r"input_shape \(7,\) does not fit the model"):
        summarize(small(), QUANT, (7,))
    with pytest.raises(KeyError, match="unknown tensor 'nope' in quant"):
        summarize(small(), {"nope": 1})
    assert math.isnan(summarize(nn.Sequential(nn.ReLU()), {}).compression)


def test_a_run_and_its_file_summarize_alike(logistic_run, tmp_path: Path) -> None:
    run = f"{tmp_path / 'results'}:{logistic_run.run_id}"
    size = export_run(run, tmp_path / "m.qnn")
    of_run, of_file = summary_of(run).to_dict(), summary_of(tmp_path / "m.qnn").to_dict()
    assert of_file["totals"].pop("file_bytes") == size
    assert of_run["totals"].pop("file_bytes") is None
    assert of_run == of_file
    assert of_run["totals"]["params_1bit"] == 10 and of_run["totals"]["macs"] == 10
    assert of_run["totals"]["packed_bytes"] == 2 + 4 + 4
    assert of_run["layers"][0]["output_shape"] == [1]


def test_a_file_without_an_architecture_is_summarized_tensor_by_tensor(tmp_path: Path) -> None:
    model = small()
    size = export_model(model, QUANT, tmp_path / "x.qnn", input_shape=(2, 5, 5))
    s = summary_of(tmp_path / "x.qnn")
    assert s.layers == [] and s.file_bytes == size
    by_name = {t.name: t for t in s.tensors}
    assert list(by_name) == sorted(model.state_dict())  # by name (a module's own order needs the module)
    conv = by_name["0.weight"]
    assert (conv.shape, conv.dtype, conv.bits, conv.scale, conv.bytes_codes, conv.bytes_scales) == (
        [4, 2, 3, 3], "float32", 2, "channel", 20, 16,
    )  # fmt: skip
    counter = by_name["1.num_batches_tracked"]
    assert (counter.shape, counter.dtype, counter.bits, counter.bytes) == ([], "int64", None, 8)
    totals = s.to_dict()["totals"]
    assert (totals["packed_bytes"], totals["params_1bit"], totals["macs"]) == (179, 300, None)
    # with its architecture given, the same file is summarized layer by layer, MACs from the stored input shape
    with_model = summary_of(tmp_path / "x.qnn", model=small())
    assert with_model.total("macs") == 2100
    assert sorted(with_model.tensors, key=lambda t: t.name) == s.tensors
