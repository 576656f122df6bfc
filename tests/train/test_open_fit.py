"""``qnnlab.fit`` on your own model, data, loss and metrics; the binary optimum keyed by the data actually used."""

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import qnnlab
from qnnlab.config import validate_config
from qnnlab.data import Dataset, get_dataset
from qnnlab.data.synthetic import logistic_toy
from qnnlab.nn.models import build_model
from qnnlab.store import RunStore
from qnnlab.train.enumerate import binary_minimum, logistic_losses

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = {"epochs": 3, "batch_size": 50, "data": {"name": "logistic", "d": 6, "n_train": 200, "n_test": 50}}


def config(method: dict, **changes) -> qnnlab.RunConfig:
    return validate_config({**SMALL, "method": method, **changes})


def test_own_model_and_data_run_the_same_loop_as_the_named_ones(tmp_path) -> None:
    cfg = config({"name": "askewsgd", "lr": 0.5, "eps": {"hold": 1, "decay": 0.5}})
    named = qnnlab.fit(cfg)
    torch.manual_seed(cfg.seed)  # fit builds the named model right after seeding
    model = build_model(cfg.model, 6)
    own = qnnlab.fit(cfg, model=model, data=get_dataset(cfg.data), results=tmp_path)
    assert own.history == named.history and own.summary.keys() == named.summary.keys()
    assert own.weights["weight"] is not None and torch.equal(own.weights["weight"], named.weights["weight"])
    with RunStore(tmp_path) as store:
        (run,) = store.runs()
    assert run["config"]["model"] == {
        "name": "custom",
        "class": "torch.nn.modules.linear.Linear",
        "keep_fp": ["biases", "norms"],
    }
    assert run["config"]["data"]["name"] == "custom" and run["config"]["data"]["n_train"] == 200
    assert run["data_seed"] is None and run["config"]["method"]["lr"] == 0.5


def test_the_binary_optimum_is_keyed_by_the_data_actually_used() -> None:
    """Regression: the optimum was cached by the data *config*: a second data set under one config got the first's."""
    cfg = config({"name": "sgd", "lr": 1.0}, epochs=1)
    first, second = logistic_toy(6, 200, 50, seed=1), logistic_toy(6, 200, 50, seed=2)
    optima = [qnnlab.fit(cfg, data=d).summary["binary_optimum"] for d in (first, second)]
    truth = [binary_minimum(logistic_losses(d.x_train, d.y_train), 6)[0] for d in (first, second)]
    assert optima == pytest.approx(truth, rel=1e-12) and optima[0] != optima[1]
    # the same data under the named config gives the same optimum as passing it in
    assert qnnlab.fit(cfg.with_(data={**SMALL["data"], "seed": 1})).summary["binary_optimum"] == optima[0]


def regression_data(d: int = 4) -> tuple[Dataset, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(120, d, generator=gen)
    w = torch.tensor([0.9, -0.4, 0.3, -1.2])[:d]
    y = x @ w + 0.1 * torch.randn(120, generator=gen)
    return Dataset.from_tensors(x[:100], y[:100], x[100:], y[100:]), w


def test_regression_trains_on_the_mse_and_certifies_its_binary_optimum() -> None:
    data, _ = regression_data()
    assert data.task == "regression" and data.n_outputs == 1
    torch.manual_seed(0)
    model = nn.Linear(4, 1, bias=False)
    w0 = model.weight.detach().clone()
    cfg = config({"name": "askewsgd", "lr": 0.05, "eps": {"hold": 1, "decay": 0.5}}, epochs=6, batch_size=20)
    result = qnnlab.fit(cfg, model=model, data=data)
    first = result.history[0]
    assert first["train_loss"] == pytest.approx(
        float(((data.x_train @ w0.T).squeeze(1) - data.y_train).square().mean())
    )
    assert not any(k.endswith("_acc") for k in first)  # no accuracy for a regression
    # the optimum by hand: every sign vector's mean squared error
    signs = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=4)), dtype=torch.float64)
    mses = ((data.x_train.double() @ signs.T - data.y_train.double()[:, None]) ** 2).mean(0)
    assert result.summary["binary_optimum"] == pytest.approx(float(mses.min()), rel=1e-12)
    assert result.summary["gap"] >= -1e-12 and result.history[-1]["train_loss"] < first["train_loss"]


def test_custom_loss_and_metrics() -> None:
    data = logistic_toy(6, 200, 50, seed=0)

    def hinge(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.relu(1 - (2 * y - 1) * out.squeeze(-1)).square().mean()

    def mae(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (torch.sigmoid(out.squeeze(-1)) - y).abs().mean()

    torch.manual_seed(0)
    model = nn.Linear(6, 1, bias=False)
    out = model(data.x_test).detach()
    result = qnnlab.fit(
        config({"name": "sgd", "lr": 0.1}, epochs=1), model=model, data=data, loss=hinge, metrics={"mae": mae}
    )
    first = result.history[0]
    assert first["test_loss"] == pytest.approx(float(hinge(out, data.y_test)), rel=1e-6)
    assert first["test_mae"] == pytest.approx(float(mae(out, data.y_test)), rel=1e-6)
    assert first["test_acc"] == pytest.approx(float(((out.squeeze(-1) > 0) == (data.y_test > 0.5)).float().mean()))
    assert {"q_train_mae", "q_test_mae"} <= first.keys()
    with pytest.raises(ValueError, match="'loss' is the objective's own name"):
        qnnlab.fit(config({"name": "sgd"}, epochs=1), data=data, metrics={"loss": mae})


def test_data_loaders_deal_the_batches(tmp_path) -> None:
    full = logistic_toy(6, 200, 50, seed=0)
    train = DataLoader(TensorDataset(full.x_train, full.y_train), batch_size=32, shuffle=True)
    test = DataLoader(TensorDataset(full.x_test, full.y_test), batch_size=16)
    data = Dataset.from_loaders(train, test, task="binary")
    torch.manual_seed(0)
    model = nn.Linear(6, 1, bias=False)
    w0 = model.weight.detach().clone()
    with RunStore(tmp_path) as store:
        result = qnnlab.fit(config({"name": "sgd", "lr": 0.5}, epochs=2), model=model, data=data, results=store)
        batches = store.series(result.run_id, "batch_loss")
    assert [len(batches[e]) for e in (1, 2)] == [7, 7]  # ceil(200 / 32): the loader's batch size, not the config's
    expected = F.binary_cross_entropy_with_logits((full.x_train @ w0.T).squeeze(1), full.y_train)
    assert result.history[0]["train_loss"] == pytest.approx(float(expected), rel=1e-6)
    assert "binary_optimum" not in result.summary  # loaders are not enumerated


def test_bad_data_and_a_named_model_without_outputs() -> None:
    with pytest.raises(TypeError, match=r"data must be a qnnlab\.data\.Dataset .* got tuple"):
        qnnlab.fit(config({"name": "sgd"}), data=(1, 2))
    loader = DataLoader(TensorDataset(torch.randn(8, 6), torch.zeros(8, dtype=torch.long)), batch_size=4)
    with pytest.raises(ValueError, match="model 'linear' needs the data's n_outputs"):
        qnnlab.fit(config({"name": "sgd"}, batch_size=4), data=Dataset.from_loaders(loader))


def test_the_ste_method_on_your_own_tiny_model_still_gets_its_optimum() -> None:
    """STE swaps quantized layers in place; the optimum is enumerated on a copy of the plain model."""
    data = logistic_toy(6, 200, 50, seed=0)
    torch.manual_seed(0)
    result = qnnlab.fit(config({"name": "ste", "lr": 0.1}, epochs=2), model=nn.Linear(6, 1, bias=False), data=data)
    truth = binary_minimum(logistic_losses(data.x_train, data.y_train), 6)[0]
    assert result.summary["binary_optimum"] == pytest.approx(truth, rel=1e-12) and result.summary["gap"] >= -1e-12


def test_a_dict_config_with_your_data_is_not_checked_against_the_default_data_set() -> None:
    """Full-batch GD on 7000 rows of your own: the default data set (6000 rows) does not get in the way."""
    data = logistic_toy(3, 7000, 10, seed=0)
    result = qnnlab.fit({"epochs": 1, "batch_size": 7000, "method": {"name": "sgd"}}, data=data)
    assert result.config.data is None and len(result.history) == 2
    with pytest.raises(ValueError, match=r"batch_size \(7000\) must be <= data.n_train \(6000\)"):
        qnnlab.fit({"epochs": 1, "batch_size": 7000, "method": {"name": "sgd"}})
    with pytest.raises(ValueError, match="names no data set"):
        qnnlab.fit(result.config)


def test_train_epoch_calls_an_optimizers_own_zero_grad_and_clears_torchs_itself() -> None:
    """An optimizer that overrides ``zero_grad`` gets it called every batch; torch's own is replaced by
    ``p.grad = None`` on every parameter of its groups: no gradient accumulates across batches."""
    from qnnlab.train.loop import train_epoch

    class Counting(torch.optim.SGD):
        calls = 0

        def zero_grad(self, set_to_none: bool = True) -> None:
            Counting.calls += 1
            super().zero_grad(set_to_none)

    x, y = torch.randn(6, 2), torch.rand(6)
    for kind in (Counting, torch.optim.SGD):
        model = nn.Linear(2, 1)
        opt = kind(model.parameters(), lr=0.0)  # no step: each batch's gradient is its own
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 1.0)
        train_epoch(model, opt, sched, [(x[:3], y[:3]), (x[3:], y[3:])], qnnlab.train.evaluate.loss_fn, lambda _: None)
        last = [p.grad.clone() for p in model.parameters()]
        model.zero_grad()
        F.binary_cross_entropy_with_logits(model(x[3:]).squeeze(-1), y[3:]).backward()
        assert all(torch.equal(a, p.grad) for a, p in zip(last, model.parameters(), strict=True))
    assert Counting.calls == 2
