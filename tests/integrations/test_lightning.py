"""The Lightning callback with a real ``lightning.Trainer`` on the CPU: fit, then resume from its checkpoint."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import qnnlab
from qnnlab.nn import param_groups
from qnnlab.optim import ASkewSGD
from qnnlab.store import RunStore

pl = pytest.importorskip("lightning.pytorch", reason="the lightning extra (in dev)")
from qnnlab.integrations.lightning import QuantCallback  # noqa: E402

pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.filterwarnings("ignore:.*LeafSpec"),  # lightning's own use of torch's pytree
    pytest.mark.filterwarnings("ignore:Be aware that when using `ckpt_path`"),  # the resumed fit saves no checkpoint
]
EPS = qnnlab.annealed_eps(1.0, hold=0, decay=0.5)


class Net(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(4, 2)
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):
        return {"loss": F.cross_entropy(self(batch[0]), batch[1])}

    def validation_step(self, batch, batch_idx):
        self.seen.append(self.net.weight.detach().clone())  # what validation runs at

    def configure_optimizers(self):
        return ASkewSGD(param_groups(self), lr=0.1, eps=1.0)


def trainer(root: Path, epochs: int, *callbacks) -> "pl.Trainer":
    checkpoints = any(isinstance(c, pl.callbacks.ModelCheckpoint) for c in callbacks)
    return pl.Trainer(
        max_epochs=epochs,
        callbacks=list(callbacks),
        enable_checkpointing=checkpoints,
        default_root_dir=root,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        accelerator="cpu",
    )


def test_fit_then_resume_from_the_checkpoint(tmp_path: Path) -> None:
    torch.manual_seed(0)
    x = torch.randn(100, 4)
    y = (x[:, 0] > 0).long()
    data = qnnlab.Dataset.from_tensors(x[:80], y[:80], x[80:], y[80:])
    train = DataLoader(TensorDataset(data.x_train, data.y_train), batch_size=20, shuffle=True)
    val = DataLoader(TensorDataset(data.x_test, data.y_test), batch_size=20)
    ckpt = pl.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    results = tmp_path / "results"

    first = QuantCallback(results, "lit", data=data, schedules={"eps": EPS})
    module = Net()
    run = trainer(tmp_path, 2, first, ckpt)
    run.fit(module, train, val)
    assert run.optimizers[0].param_groups[0]["eps"] == EPS(1)
    assert all(set(w.unique().tolist()) <= {-1.0, 1.0} for w in module.seen)  # validated at Q(w) ...
    assert not set(module.net.weight.detach().unique().tolist()) <= {-1.0, 1.0}  # ... and w restored

    again = QuantCallback(results, "lit", data=data, schedules={"eps": EPS})
    resumed = trainer(tmp_path, 4, again)
    resumed.fit(Net(), train, val, ckpt_path=tmp_path / "ckpt" / "last.ckpt")
    assert resumed.optimizers[0].param_groups[0]["eps"] == EPS(3)  # ε went on from epoch 2, not from ε₀
    with RunStore(results) as store:
        (record,) = store.runs("lit")  # the resumed fit appended to the same run
        history = store.history(record["id"])
        batches = store.series(record["id"], "batch_loss")
    assert record["status"] == "done" and sorted(history) == [0, 1, 2, 3, 4]
    assert [history[e]["eps"] for e in range(5)] == [EPS(0), EPS(0), EPS(1), EPS(2), EPS(3)]
    assert [len(batches[e]) for e in range(5)] == [0, 4, 4, 4, 4]
    assert {"q_test_acc", "stationarity", "feasible"} <= history[4].keys()


def test_recording_needs_data() -> None:
    with pytest.raises(ValueError, match="needs data= to evaluate w and Q"):
        QuantCallback("results")
