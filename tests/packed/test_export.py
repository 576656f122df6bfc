"""Export and reload: file sizes against the packed arithmetic, and bit-identical outputs."""

import struct
from itertools import pairwise
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.func import functional_call

from qnnlab import export_model, export_run, load_packed
from qnnlab.data import get_dataset
from qnnlab.nn.models import constrained_names
from qnnlab.packed import PackedBinaryLinear, PackedFileError, QuantSpec, quantized_state_dict, read_packed, summarize
from qnnlab.packed.export import load_run, resolve_checkpoint
from qnnlab.packed.format import FRAME_BYTES, read_container
from qnnlab.quant import get_grid


def mlp(*sizes: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(pairwise(sizes)):
        layers += [nn.Linear(a, b)] + ([nn.ReLU()] if i < len(sizes) - 2 else [])
    return nn.Sequential(*layers)


def cnn() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 32), nn.ReLU(),
        nn.Linear(32, 10),
    )  # fmt: skip


def header_bytes(path: Path) -> int:
    """The frame plus the safetensors header (its 8-byte length and the JSON)."""
    (n,) = struct.unpack_from("<Q", path.read_bytes(), FRAME_BYTES)
    return FRAME_BYTES + 8 + n


def quantized_outputs(model: nn.Module, quant: dict, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    return functional_call(model, quantized_state_dict(model, quant), (x,))


def test_binary_mlp_file_is_the_packed_size_and_25x_smaller(tmp_path: Path) -> None:
    model = mlp(784, 512, 512, 10)
    quant = {n: 1 for n in constrained_names(model)}
    size = export_model(model, quant, tmp_path / "mlp.qnn", input_shape=(784,))
    # by hand: rows·⌈cols/8⌉ bytes of sign bits, one float32 scale per tensor, float32 biases
    bits = 512 * 784 // 8 + 512 * 512 // 8 + 10 * 512 // 8
    theoretical = bits + 3 * 4 + (512 + 512 + 10) * 4
    assert (bits, theoretical) == (83_584, 87_732)
    assert summarize(model, quant).packed_bytes == theoretical
    assert size == (tmp_path / "mlp.qnn").stat().st_size == header_bytes(tmp_path / "mlp.qnn") + theoretical
    assert theoretical <= size <= 1.05 * theoretical
    torch.save(model.state_dict(), tmp_path / "float.pt")
    assert size <= (tmp_path / "float.pt").stat().st_size / 25

    x = torch.randn(256, 784)
    loaded = load_packed(tmp_path / "mlp.qnn", model=mlp(784, 512, 512, 10))
    assert torch.equal(loaded(x), quantized_outputs(model, quant, x))
    assert set(loaded[0].weight.unique().tolist()) == {-1.0, 1.0}


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_round_trip_at_k_bits(tmp_path: Path, bits: int) -> None:
    model = cnn()
    model[1].running_mean.normal_()  # buffers travel as they are
    model[1].running_var.uniform_(0.5, 2)
    quant = {"0.weight": QuantSpec(bits, "channel"), "4.weight": QuantSpec(bits, "tensor"), "6.weight": bits}
    size = export_model(model, quant, tmp_path / "cnn.qnn", input_shape=(3, 8, 8))

    packed = read_packed(tmp_path / "cnn.qnn")
    assert packed.specs == {
        "0.weight": QuantSpec(bits, "channel"),
        "4.weight": QuantSpec(bits, "tensor"),
        "6.weight": QuantSpec(bits, 1.0),
    }
    reference = quantized_state_dict(model, quant)
    state = packed.state_dict()
    assert state.keys() == reference.keys()
    assert all(torch.equal(state[k], reference[k]) and state[k].dtype == reference[k].dtype for k in state)
    assert packed.quantized["0.weight"].scale.shape == (8,) and packed.quantized["4.weight"].scale.shape == ()
    for name, q in packed.quantized.items():
        assert q.codes.max() < 2**bits
        # a code per weight and nothing else: k bits each, rows padded to bytes
        rows, cols = q.shape[0], q.codes[0].numel()
        assert read_container(tmp_path / "cnn.qnn")[0][f"packed:{name}"].nbytes == rows * -(-cols * bits // 8)
    assert size == header_bytes(tmp_path / "cnn.qnn") + summarize(model, quant).packed_bytes

    x = torch.randn(16, 3, 8, 8)
    fresh = cnn()
    assert torch.equal(load_packed(tmp_path / "cnn.qnn", model=fresh)(x), quantized_outputs(model, quant, x))
    assert not fresh.training


def test_the_files_binary_rows_feed_the_packed_kernel(tmp_path: Path) -> None:
    model = mlp(100, 30, 10)
    export_model(model, {"0.weight": 1, "2.weight": 1}, tmp_path / "m.qnn")
    tensors, _ = read_container(tmp_path / "m.qnn")
    layer = PackedBinaryLinear(tensors["packed:0.weight"], 100, tensors["scale:0.weight"], None)
    x = torch.randint(-5, 6, (7, 100)).float()  # integer-valued: the float product is exact
    assert torch.equal(layer(x), x @ get_grid(1).project(model[0].weight.detach()).T)


def test_a_logistic_run_exports_and_reloads_bit_for_bit(logistic_run, tmp_path: Path) -> None:
    results = tmp_path / "results"
    out = tmp_path / "run.qnn"
    size = export_run(f"{results}:{logistic_run.run_id}", out)
    assert size == header_bytes(out) + 2 + 4 + 4  # 10 sign bits -> 2 bytes, a scale, the float32 bias

    model = load_packed(out)  # rebuilt from the stored run config
    data = get_dataset(logistic_run.config.data)
    q = {**logistic_run.weights, **logistic_run.quantized}  # what the run was judged on
    assert not torch.equal(q["weight"], logistic_run.weights["weight"])  # the latent w is not on the grid
    assert torch.equal(model(data.x_test), functional_call(model, q, (data.x_test,)))
    assert torch.equal(dict(model.named_parameters())["weight"], q["weight"])
    # the same run named by its checkpoint file
    checkpoint = results / "checkpoints" / f"run-{logistic_run.run_id}.pt"
    assert export_run(checkpoint, tmp_path / "again.qnn") == size
    assert (tmp_path / "again.qnn").read_bytes() == out.read_bytes()


@pytest.mark.parametrize(
    "method",
    [
        {"name": "sgd", "lr": 0.5},
        {"name": "askewsgd", "bits": 4, "eps": {"init": 0.05}},
        {"name": "proxquant", "bits": 4},
    ],
    ids=["sgd", "askewsgd", "proxquant"],
)
def test_a_kbit_run_packs_its_judged_weights_with_their_scale(tmp_path: Path, train_run, method: dict) -> None:
    run = train_run(tmp_path, bits=4, method=method)
    export_run(f"{tmp_path}:{run.run_id}", tmp_path / "k.qnn")
    packed = read_packed(tmp_path / "k.qnn")
    scale = run.grid_scales["weight"]
    assert scale != 1.0  # a per-tensor grid: SAWB's step, or ProxQuant's max|w|/7
    assert packed.specs == {"weight": QuantSpec(4, float(scale))}
    assert torch.equal(packed.state_dict()["weight"], run.quantized["weight"])
    assert torch.equal(run.quantized["weight"], scale * torch.round(run.quantized["weight"] / scale))


def test_errors_name_the_problem(tmp_path: Path) -> None:
    model = mlp(4, 3)
    with pytest.raises(KeyError, match=r"unknown tensor 'weight' in quant; choose from: 0\.weight, 0\.bias"):
        export_model(model, {"weight": 1}, tmp_path / "x.qnn")
    with torch.no_grad():
        model[0].weight[0, 0] = float("inf")
    with pytest.raises(ValueError, match=r"0\.weight: cannot quantize .* NaN or infinite"):
        export_model(model, {"0.weight": 1}, tmp_path / "x.qnn")
    export_model(mlp(4, 3), {"0.weight": 1}, tmp_path / "x.qnn")
    with pytest.raises(PackedFileError, match="holds no run config to rebuild the model from; pass model="):
        load_packed(tmp_path / "x.qnn")
    with pytest.raises(RuntimeError, match="size mismatch"):
        load_packed(tmp_path / "x.qnn", model=mlp(5, 3))
    with pytest.raises(
        FileNotFoundError, match=r"no checkpoint .*run-9\.pt \(a run writes one every checkpoint_every epochs\)"
    ):
        resolve_checkpoint(f"{tmp_path}:9")
    with pytest.raises(FileNotFoundError, match=r"no such checkpoint; give a \.pt file or RESULTS_DIR:RUN_ID"):
        resolve_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "bad.pt").write_bytes(b"junk")
    with pytest.raises(ValueError, match=r"bad\.pt: not a qnnlab run checkpoint"):
        export_run(tmp_path / "bad.pt", tmp_path / "y.qnn")


def test_a_two_moons_run_exports_and_reloads_bit_for_bit(tmp_path: Path, train_run) -> None:
    # the reference 2→3→1 network: 9 binary weights, batch-norm running statistics kept as float32
    run = train_run(
        tmp_path,
        epochs=3,
        data={"name": "two_moons"},
        model={"name": "moons_mlp"},
        method={"name": "askewsgd", "lr": 0.1, "base": "adam", "eps": {"hold": 1, "decay": 0.5}},
    )
    out = tmp_path / "moons.qnn"
    size = export_run(f"{tmp_path}:{run.run_id}", out)
    packed = read_packed(out)
    theoretical = sum(
        -(-q.shape[-1] // 8) * (q.shape[0] if len(q.shape) > 1 else 1) + 4 for q in packed.quantized.values()
    )
    theoretical += sum(t.numel() * t.element_size() for t in packed.floats.values())
    assert size == header_bytes(out) + theoretical  # rows padded to whole bytes, one float32 scale per tensor
    model = load_packed(out)
    data = get_dataset(run.config.data)
    q = {**run.weights, **run.quantized}
    reference = functional_call(model, {**dict(model.named_buffers()), **q}, (data.x_test,))
    assert torch.equal(model(data.x_test), reference)


def test_a_checkpoint_from_before_per_tensor_grids_loads_on_the_unit_grid(logistic_run, tmp_path: Path) -> None:
    checkpoint = tmp_path / "results" / "checkpoints" / f"run-{logistic_run.run_id}.pt"
    ckpt = torch.load(checkpoint, weights_only=False)
    assert torch.equal(ckpt["quantized"]["weight"], logistic_run.quantized["weight"])
    old = tmp_path / "old.pt"
    torch.save({k: v for k, v in ckpt.items() if k not in ("quantized", "grid_scales", "sha256")}, old)
    run = load_run(old)
    assert run.quant == {"weight": QuantSpec(1, 1.0)}
    assert torch.equal(run.model.weight.detach(), logistic_run.weights["weight"])  # the continuous w, as before
    export_run(old, tmp_path / "old.qnn")
    assert torch.equal(read_packed(tmp_path / "old.qnn").state_dict()["weight"], logistic_run.quantized["weight"])
