"""The recorder in a loop of your own: the same records as ``fit``, a store the report reads, resumable."""

import pytest
import torch
from torch import nn

import qnnlab
from qnnlab.config import validate_config
from qnnlab.data import get_dataset
from qnnlab.methods import build_optimizer
from qnnlab.nn import param_groups, quantize_model
from qnnlab.nn.models import build_model
from qnnlab.optim import SGD, ASkewSGD
from qnnlab.schedules import lr_scheduler
from qnnlab.store import RunStore
from qnnlab.train.evaluate import loss_fn, quantized, quantized_weights
from qnnlab.train.recorder import Recorder, quantized_names

pytestmark = pytest.mark.usefixtures("one_thread")

CFG = {
    "epochs": 3,
    "batch_size": 50,
    "data": {"name": "logistic", "d": 6, "n_train": 200, "n_test": 50},
    "method": {"name": "askewsgd", "lr": 0.5, "eps": {"hold": 1, "decay": 0.5}},
}


def test_a_hand_written_loop_with_the_recorder_records_what_fit_records(tmp_path) -> None:
    """The reference loop, written out by hand, against ``fit``: every metric, series and summary value."""
    cfg = validate_config(CFG)
    fitted = qnnlab.fit(cfg, results=tmp_path / "fit")
    data = get_dataset(cfg.data)
    torch.manual_seed(cfg.seed)
    order = torch.Generator().manual_seed(cfg.seed)
    model = build_model(cfg.model, data.input_shape)
    opt = build_optimizer(cfg.method, param_groups(model))
    lr = lr_scheduler(opt, cfg.lr_schedule(data.n_train))
    eps = qnnlab.EpochScheduler(opt, eps=qnnlab.annealed_eps(1.0, hold=1, decay=0.5))
    with Recorder(tmp_path / "own", model=model, optimizer=opt, data=data, config=cfg, schedulers=[eps]) as rec:
        rec.log_epoch()
        for _ in range(cfg.epochs):
            for x, y in data.train_batches(cfg.batch_size, order):
                opt.zero_grad()
                loss = loss_fn(model(x), y)
                loss.backward()
                opt.step()
                lr.step()
                rec.log_batch(loss)
            rec.log_epoch()
            eps.step()
    assert rec.history == fitted.history
    assert {k: v for k, v in rec.result.summary.items() if k != "wall_time"} == {
        k: v for k, v in fitted.summary.items() if k != "wall_time"
    }
    with RunStore(tmp_path / "fit") as a, RunStore(tmp_path / "own") as b:
        for name in ("batch_loss", "weight_hist", "weight_hist_edges"):
            assert a.series(1, name) == b.series(1, name)
        assert a.runs()[0]["config"] == b.runs()[0]["config"] and b.runs()[0]["status"] == "done"
    ckpt = torch.load(tmp_path / "own" / "checkpoints" / "run-1.pt", weights_only=False)
    assert ckpt["epoch"] == 3 and torch.equal(ckpt["quantized"]["weight"], rec.result.quantized["weight"])


def tiny(seed: int = 0) -> tuple[nn.Module, qnnlab.Dataset]:
    torch.manual_seed(seed)
    x = torch.randn(60, 3)
    y = (x[:, 0] > 0).long()
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)), qnnlab.Dataset.from_tensors(
        x[:40], y[:40], x[40:], y[40:]
    )


def test_what_the_store_is_told_without_a_config(tmp_path) -> None:
    model, data = tiny()
    opt = ASkewSGD(param_groups(model), lr=0.1, eps=0.5)
    rec = Recorder(tmp_path, "mine", model=model, optimizer=opt, data=data)
    first = rec.log_epoch()
    assert rec.names == ["0.weight", "2.weight"] and rec.bits == 1 and first["eps"] == 0.5
    assert "stationarity" in first and "feasible" in first and first["lr"] == 0.1
    rec.finish()
    with RunStore(tmp_path) as store:
        (run,) = store.runs("mine")
        assert store.series(run["id"], "batch_loss") == {0: []}
    cfg = run["config"]
    assert (run["label"], run["method"], run["seed"], run["data_seed"]) == ("askewsgd", "askewsgd", 0, None)
    assert cfg["method"]["eps"] == 0.5 and cfg["method"]["base"] == "sgd"
    assert cfg["model"]["class"] == "torch.nn.modules.container.Sequential" and cfg["data"]["n_train"] == 40


def test_which_parameters_are_quantized_and_on_which_grid() -> None:
    model, _ = tiny()
    assert quantized_names(model, torch.optim.SGD(model.parameters(), lr=0.1)) == ["0.weight", "2.weight"]
    assert quantized_names(model, torch.optim.SGD(param_groups(model), lr=0.1)) == ["0.weight", "2.weight"]
    everything = ASkewSGD(model.parameters(), lr=0.1)  # one constrained group: biases too
    assert quantized_names(model, everything) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    opt = ASkewSGD(param_groups(model), lr=0.1, bits=2, eps=1 / 16)
    _, data = tiny()
    assert Recorder(model=model, optimizer=opt, data=data).bits == 2
    with pytest.raises(ValueError, match="no quantized parameters"):
        Recorder(model=model, optimizer=SGD([{"params": model.parameters(), "constrained": False}], lr=0.1), data=data)


def test_quantized_swaps_q_in_and_restores_w() -> None:
    model, _ = tiny()
    opt = SGD(param_groups(model), lr=0.1)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    judged, _ = quantized_weights(model, opt, ["0.weight", "2.weight"], 1)
    with quantized(model, opt, ["0.weight", "2.weight"], 1):
        assert torch.equal(model[0].weight, judged["0.weight"]) and set(model[2].weight.unique().tolist()) <= {-1, 1}
        assert torch.equal(model[0].bias, before["0.bias"])
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())


def test_a_resumed_run_appends_to_its_record(tmp_path) -> None:
    model, data = tiny()
    opt = SGD(param_groups(model), lr=0.1)
    rec = Recorder(tmp_path, model=model, optimizer=opt, data=data)
    rec.log_epoch()
    rec.log_epoch()
    rec.fail()  # interrupted
    again = Recorder(tmp_path, model=model, optimizer=opt, data=data, run_id=rec.run_id)
    assert again.epoch == 1
    again.log_epoch()
    again.finish()
    with RunStore(tmp_path) as store:
        (run,) = store.runs()
        assert run["status"] == "done" and sorted(store.history(run["id"])) == [0, 1, 2]
        with pytest.raises(ValueError, match="no run 7 to resume"):
            store.resume_run(7)


def test_a_model_torch_vmap_cannot_run_needs_its_plain_architecture() -> None:
    torch.manual_seed(0)
    plain = nn.Linear(3, 1, bias=False)
    x = torch.randn(30, 3)
    data = qnnlab.Dataset.from_tensors(x, (x[:, 0] > 0).float(), x, (x[:, 0] > 0).float())
    prepared = quantize_model(nn.Sequential(nn.Linear(3, 1, bias=False)), weight_quantizer={"name": "sign"})
    opt = SGD(param_groups(prepared), lr=0.1)
    with pytest.raises(ValueError, match=r"cannot enumerate the binary optimum of Sequential under torch\.vmap"):
        Recorder(model=prepared, optimizer=opt, data=data)
    rec = Recorder(model=prepared, optimizer=opt, data=data, optimum_model=nn.Sequential(plain))
    assert rec.optimum is not None
