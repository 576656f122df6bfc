"""The summary's counts against a small model counted by hand."""

import math
from pathlib import Path

import pytest
from torch import nn

from qnnlab.packed import QuantSpec, export_model, export_run, summarize, summary_of
from qnnlab.packed.summary import count_macs


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
    # 4·5·5 = 100 outputs, each 2·3·3 = 18 MACs; none with a 1-bit weight
    assert (conv.macs, conv.binary_macs) == (1800, 0)
    assert (bn.params_float, bn.bytes_float, bn.macs, bn.binary_macs) == (17, 16 * 4 + 8, 0, 0)
    # fc: 3 rows of ⌈100/8⌉ = 13 bytes, one scale, 3 biases; 300 MACs, all with 1-bit weights
    assert (fc.params_1bit, fc.bytes_1bit, fc.bytes_scales, fc.bytes_float) == (300, 39, 4, 12)
    assert (fc.macs, fc.binary_macs) == (300, 300)

    assert s.packed_bytes == 52 + 72 + 55 == 179
    assert s.float32_bytes == 4 * (72 + 4 + 17 + 300 + 3) == 1584
    assert s.compression == 1584 / 179
    totals = s.to_dict()["totals"]
    assert totals["params_1bit"] == 300 and totals["params_kbit"] == 72 and totals["params_float"] == 24
    assert (totals["macs"], totals["binary_macs"], totals["file_bytes"]) == (2100, 300, None)


def test_macs_of_grouped_and_1d_convolutions() -> None:
    model = nn.Sequential(nn.Conv1d(4, 6, 3, groups=2), nn.Flatten(), nn.Linear(48, 2, bias=False))
    # conv: 6 channels × 8 positions, each (4/2)·3 = 6 MACs; linear: 48·2
    assert count_macs(model, (4, 10)) == {"0": 288, "2": 96}


def test_without_input_shape_macs_are_unknown_and_a_wrong_one_fails() -> None:
    s = summarize(small(), QUANT)
    assert s.layers[0].macs is None and s.to_dict()["totals"]["macs"] is None
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


def test_a_file_without_config_cannot_be_summarized_by_path(tmp_path: Path) -> None:
    export_model(nn.Linear(3, 2), {"weight": 1}, tmp_path / "x.qnn")
    with pytest.raises(ValueError, match="holds no run config"):
        summary_of(tmp_path / "x.qnn")
