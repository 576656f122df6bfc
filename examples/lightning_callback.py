"""A LightningModule trained with ASkewSGD; qnnlab's callback anneals ε, validates at Q(w) and records the run.

pip install 'qnnlab[lightning]'
python examples/lightning_callback.py [RESULTS_DIR]     # then: qnnlab report RESULTS_DIR
"""

import sys

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import qnnlab
from qnnlab.integrations.lightning import QuantCallback
from qnnlab.nn import param_groups
from qnnlab.optim import ASkewSGD


class DigitsMLP(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 128, bias=False), nn.BatchNorm1d(128), nn.ReLU(), nn.Linear(128, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(self(x), y)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self.log("val_acc", (self(x).argmax(-1) == y).float().mean())  # at Q(w): the callback swaps it in

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return ASkewSGD(param_groups(self), lr=1e-2, base="adam", eps=1.0)


def main(results: str = "results") -> None:
    pl.seed_everything(0, verbose=False)
    x, y = load_digits(return_X_y=True)
    x, y = torch.tensor(x / 16, dtype=torch.float32), torch.tensor(y)
    data = qnnlab.Dataset.from_tensors(x[:1400], y[:1400], x[1400:], y[1400:])
    train = DataLoader(TensorDataset(data.x_train, data.y_train), batch_size=64, shuffle=True)
    val = DataLoader(TensorDataset(data.x_test, data.y_test), batch_size=500)
    eps = qnnlab.annealed_eps(1.0, hold=2, decay=0.4, floor=1e-4)
    callback = QuantCallback(results, "lightning", data=data, schedules={"eps": eps}, config={"label": "askewsgd"})
    trainer = pl.Trainer(
        max_epochs=8,
        callbacks=[callback],
        default_root_dir=results,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(DigitsMLP(), train, val)
    print(f"validation accuracy at Q(w) {float(trainer.callback_metrics['val_acc']):.1%}")


if __name__ == "__main__":
    main(*sys.argv[1:])
