"""QuantLinear / QuantConv2d and quantize_model."""

import doctest

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

import qnnlab.nn.layers as layers_module
from qnnlab.nn.layers import QuantConv2d, QuantLinear, quantize_model
from qnnlab.nn.models import constrained_names, param_groups
from qnnlab.quant.grids import sign
from qnnlab.quant.quantizers import PACT, SignQuantizer


def test_quant_linear_forward_and_ste_backward() -> None:
    layer = QuantLinear(3, 2, weight_quantizer={"name": "sign", "estimator": "clipped"}, input_quantizer="uniform")
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.5, -1.5, 0.0], [-0.2, 0.9, 1.2]]))
        layer.bias.copy_(torch.tensor([0.1, -0.1]))
    x = torch.tensor([[-0.4, 0.6, 2.2], [1.4, 3.7, 0.2]], requires_grad=True)
    y = layer(x)
    w_q = torch.tensor([[1.0, -1.0, 1.0], [-1.0, 1.0, 1.0]])
    x_q = torch.tensor([[0.0, 1.0, 2.0], [1.0, 3.0, 0.0]])  # k = 2, step 1: levels 0..3
    assert_close(y, F.linear(x_q, w_q, layer.bias))
    upstream = torch.tensor([[1.0, 2.0], [-1.0, 0.5]])
    y.backward(upstream)
    # weights: hardtanh STE 1{|w| ≤ 1}; inputs: clipped ReLU 1{0 < x < 3}
    assert_close(layer.weight.grad, (upstream.T @ x_q) * torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]]))
    assert_close(x.grad, (upstream @ w_q) * torch.tensor([[0.0, 1.0, 1.0], [1.0, 0.0, 1.0]]))
    assert_close(layer.bias.grad, upstream.sum(0))


def test_quant_conv2d_forward_and_ste_backward() -> None:
    conv = QuantConv2d(2, 3, 3, padding=1, weight_quantizer="sign", input_quantizer=None)
    x = torch.randn(2, 2, 5, 5, requires_grad=True)
    y = conv(x)
    assert_close(y, F.conv2d(x, sign(conv.weight), conv.bias, padding=1))
    upstream = torch.randn_like(y)
    y.backward(upstream)
    w_ref = sign(conv.weight).detach().requires_grad_(True)
    x_ref = x.detach().clone().requires_grad_(True)
    F.conv2d(x_ref, w_ref, conv.bias.detach(), padding=1).backward(upstream)
    assert_close(conv.weight.grad, w_ref.grad)  # identity STE: the gradient at sign(W)
    assert_close(x.grad, x_ref.grad)


def test_no_quantizers_is_the_float_layer() -> None:
    linear = nn.Linear(4, 2)
    q = QuantLinear.from_float(linear)
    x = torch.randn(3, 4)
    assert torch.equal(q(x), linear(x))


def make_model() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 2, 3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Sequential(nn.Linear(8, 4), nn.BatchNorm1d(4)),
        nn.Linear(4, 1),
    )


def test_quantize_model_swaps_weight_layers_and_keeps_parameters() -> None:
    model = make_model()
    before = dict(model.named_parameters())
    names_before = constrained_names(model)
    state = torch.get_rng_state()
    out = quantize_model(model, weight_quantizer=SignQuantizer("clipped"), input_quantizer={"name": "pact"}, skip={"4"})
    assert out is model
    assert torch.equal(torch.get_rng_state(), state)  # swapping draws no random numbers
    assert type(model[0]) is QuantConv2d and type(model[3][0]) is QuantLinear and type(model[4]) is nn.Linear
    assert isinstance(model[3][1], nn.BatchNorm1d)
    after = dict(model.named_parameters())
    for name, p in before.items():
        assert after[name] is p
    assert set(after) - set(before) == {"0.input_quantizer.alpha", "3.0.input_quantizer.alpha"}
    assert model[0].input_quantizer.alpha is not model[3][0].input_quantizer.alpha
    assert constrained_names(model) == names_before
    assert sum(len(g["params"]) for g in param_groups(model)) == len(after)
    assert model(torch.randn(5, 1, 4, 4)).shape == (5, 1)


def test_quantize_model_skip_by_predicate_and_root_layer() -> None:
    model = make_model()
    quantize_model(model, weight_quantizer="sign", skip=lambda name, m: isinstance(m, nn.Conv2d))
    assert type(model[0]) is nn.Conv2d and type(model[3][0]) is QuantLinear
    root = nn.Linear(3, 1, bias=False)
    swapped = quantize_model(root, weight_quantizer="sign")
    assert type(swapped) is QuantLinear and swapped.weight is root.weight
    assert [n for n, _ in swapped.named_parameters()] == ["weight"]
    again = quantize_model(swapped, weight_quantizer="sign")  # already quantized layers are left alone
    assert again is swapped


def test_quantize_model_keeps_mode_and_device() -> None:
    model = make_model().eval()
    quantize_model(model, input_quantizer=PACT())
    assert not model[0].training and model[0].input_quantizer.alpha.device == model[0].weight.device


def test_unknown_skip_names_fail_with_the_layer_names() -> None:
    with pytest.raises(ValueError, match=r"skip names no Linear/Conv2d layer: 9; layers: 0, 3\.0, 4"):
        quantize_model(make_model(), weight_quantizer="sign", skip={"9"})


def test_docstring_examples_run() -> None:
    assert doctest.testmod(layers_module).failed == 0
