"""Published numbers that the presets' rows can be compared with, each with its source.

Keys are ``(preset, row label)``; values are the number as published, converted to test
accuracy in % where the paper gives an error rate (accuracy = 100 − error), with the
setting it was obtained in. Tags follow ``shared/research/algorithms.md``: **[code]** read
in the authors' repository, **[recall]** recalled from the paper and not checked against
its text (verify before treating it as a target). A row is matched by its label, an untuned
row's ``*`` aside (``"adaste*"`` gets ``"adaste"``'s number). Each number carries the setting it
was obtained in where it differs from the preset's (a pretrained start, more epochs, another loss,
the best validation epoch), printed beside it, so that a reader does not compare unlike with unlike.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PUBLISHED", "Published", "published"]


@dataclass(frozen=True)
class Published:
    value: str  # as printed in the table, e.g. "98.71 ± 0.08"
    metric: str  # what the value measures
    source: str  # where it comes from, with its provenance tag
    setting: str = ""  # how the published run differs from the preset's, e.g. "pretrained start, 300 epochs"

    def cell(self) -> str:
        setting = f"; {self.setting}" if self.setting else ""
        return f"{self.metric} {self.value} ({self.source}{setting})"


_BC = "Courbariaux et al. 2015, Tbl 2 [recall]"
_PQ = "Bai et al. 2019, Tbl 1 [recall]"
_MOONS = "ASkewSGD 2-moons notebook [code]"
# BinaryConnect's runs: squared hinge loss, 50k/10k split, the test error at the best validation epoch
_BC_MNIST = "squared hinge loss, 50k/10k split, best-validation epoch"
_BC_CIFAR = "squared hinge loss, GCN + ZCA, 45k/5k split, best-validation epoch"
# ProxQuant's binary ResNet-20s start from a trained full-precision network
_PQ_BINARY = "pretrained full-precision start, 300 epochs"

PUBLISHED: dict[tuple[str, str], Published] = {
    # ASkewSGD authors' 2-moons notebook, cell 20: 5 runs × 100 epochs; its "after binarization" accuracy is in
    # fact the full-precision network's, and its test BCE was divided by 200 twice (≈ 0.438 once undone)
    ("two-moons", "sgd (full precision)"): Published("88.0 ± 0.7", "acc %", _MOONS, "100 epochs"),
    ("two-moons", "adaste"): Published("≈ 0.438", "test BCE", _MOONS, "100 epochs"),
    # BinaryConnect, permutation-invariant MNIST, MLP 3×2048, 250 epochs (test error 1.30 / 1.29 / 1.18 %)
    ("mnist-mlp", "sgd (full precision)"): Published("98.70 ± 0.04", "acc %", _BC, _BC_MNIST),
    ("mnist-mlp", "binaryconnect"): Published("98.71 ± 0.08", "acc %", _BC, _BC_MNIST),
    ("mnist-mlp", "binaryconnect (stoch.)"): Published("98.82 ± 0.04", "acc % (real weights)", _BC, _BC_MNIST),
    # BinaryConnect, CIFAR-10, 6 conv + 2 FC, GCN + ZCA, 500 epochs (test error 10.64 / 9.90 / 8.27 %)
    ("cifar10-vgg", "sgd (full precision)"): Published("89.36", "acc %", _BC, _BC_CIFAR),
    ("cifar10-vgg", "binaryconnect"): Published("90.10", "acc %", _BC, _BC_CIFAR),
    ("cifar10-vgg", "binaryconnect (stoch.)"): Published(
        "91.73", "acc % (real weights)", "BC README + " + _BC, _BC_CIFAR
    ),
    # ProxQuant, CIFAR-10 ResNet-20 from a full-precision start, 4 runs (top-1 error 8.06 / 9.54 / 9.35 %)
    ("cifar10-resnet20", "sgd (full precision)"): Published("91.94", "acc %", _PQ),
    ("cifar10-resnet20", "binaryconnect"): Published("90.46 ± 0.03", "acc %", _PQ, _PQ_BINARY),
    ("cifar10-resnet20", "proxquant"): Published("90.65 ± 0.13", "acc %", _PQ, _PQ_BINARY),
}


def published(preset: str, label: str) -> Published | None:
    """The published number for row ``label`` of ``preset`` (an untuned row's trailing ``*`` ignored)."""
    return PUBLISHED.get((preset, label.removesuffix("*")))
