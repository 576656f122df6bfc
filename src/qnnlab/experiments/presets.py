"""Named presets: the list of runs (one per method variant) that a comparison trains.

Each preset is a function of the training seed returning validated :class:`RunConfig` s;
the data seed stays fixed, so every method and seed sees the same data set, unless the runs
are asked for over several problems (:func:`preset_runs` with ``problems = N``: data seeds
``0..N−1``, a new split or a new draw of the synthetic set each). A preset is a :class:`Grid`:
settings shared by its runs plus one row per method variant, so adding a method is one
line: ``row("ste", {"name": "ste", "lr": 1e-3, "base": "adam"})``, and the seeds and problems a
comparison of it runs by default (5 seeds of one problem; breast cancer: 5 problems of one seed).

The GPU presets (``cifar10-*``, ``imagenet-resnet18``) default to the CPU like every run;
pass ``--device cuda``. Their data come from local folders (``--data-dir`` or
``$QNNLAB_DATA``); nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from qnnlab.config import RunConfig, validate_config
from qnnlab.registry import Registry

__all__ = ["PRESETS", "Grid", "preset_runs", "row", "select_runs", "spread"]

Preset = Callable[[int], list[RunConfig]]
PRESETS: Registry[Preset] = Registry("preset")


def row(label: str, method: dict[str, Any], **run: Any) -> dict[str, Any]:
    """One method variant of a preset: its table label, method table, and run settings it overrides."""
    return {"label": label, "method": method, **run}


@dataclass(frozen=True)
class Grid:
    """A preset training every row with ``common`` settings (a row's keys win) for one seed; a comparison of it
    runs ``seeds`` training seeds over ``problems`` problems unless told otherwise (:func:`spread`)."""

    common: Mapping[str, Any]
    rows: Sequence[Mapping[str, Any]]
    seeds: int = 5
    problems: int | None = None  # None: the preset's own data seed

    def __call__(self, seed: int) -> list[RunConfig]:
        return [validate_config({**self.common, **r, "seed": seed}) for r in self.rows]


def spread(name: str) -> tuple[int, int | None]:
    """``(seeds, problems)`` a comparison of preset ``name`` runs by default: a :class:`Grid`'s, else ``(5, None)``."""
    preset = PRESETS.get(name)
    return getattr(preset, "seeds", 5), getattr(preset, "problems", None)


def _eps(hold: int, decay: float, floor: float = 1e-4) -> dict[str, Any]:
    """ASkewSGD's ε: 1 (constraint inactive, clipped steps) for ``hold`` epochs, then × ``decay`` per epoch."""
    return {"init": 1.0, "hold": hold, "decay": decay, "floor": floor}


def _logistic(w_scale: float) -> Preset:
    """Experiment I (ASkewSGD §1.4a) on ``w* = s·{±1}^10``, mean logistic loss.

    The settings below are hand-picked, and ``configs/sweeps/logistic-preset.toml`` (a grid per
    row around them on a stratified 20 % validation split) kept every one: all its 54 trials'
    Q(w) reach the binary optimum, so they tie on ``q_val_loss`` and the first trial (the setting
    here) is selected (``docs/sweeps/logistic-preset-sweep.sweep.json``).

    Steps are for the *mean* loss (the notebook divided by n = 6000 with lr = 2 and batch
    100, i.e. lr ≈ 0.033 on the mean loss; its runs were too short to converge). ASkewSGD
    holds ε = 1 (the constraint is inactive: clipped SGD) for 10 epochs, then multiplies ε
    by 0.75 per epoch down to 1e-4, so the annealing happens inside the 50-epoch run.

    ProxQuant: Adam with lr 0.01 as in the paper, and ``λ_e = 0.01·e`` so that the prox step
    ``τ = lr·λ_e`` overtakes Adam's step (≈ lr) around epoch 10 and pins every weight on ±1 well
    before the end. AdaSTE: the authors' α = 0.01, β = 100 (``αβ = 1``: the forward weights
    are exactly ``sign θ``), ``|θ₀| = 1`` instead of their 10 (from 10 the latent needs
    hundreds of steps to reach its first sign change), plain GD with lr 1 on the full batch
    for 100 epochs. With mini-batches of 100 its estimator does not settle on this toy: it
    boosts the steps that shrink ``|θ|`` and zeroes those that grow it, and at the binary
    optimum the mean gradient is near zero (``w*`` is also the continuous optimum), so the
    noise ratchets correct weights back across 0 (seen in 3 of 4 seeds at lr 0.5: one or two
    wrong signs at the last epoch).

    Bop: γ = 1e-3, τ = 1e-6, picked on a stratified 20 % validation split (seed 0, training
    seed 0, ``q_val_loss``): every (γ, τ) in {1e-4, 1e-3, 1e-2} × {1e-6, 1e-4, 1e-3, 1e-2} reached
    the binary optimum at ``s = 1``; at ``s = 0.8`` all of {1e-4, 1e-3, 1e-2} × {1e-6, 1e-3} tied
    but (1e-4, 1e-3), whose flips stop too early (q_val_loss 0.611 against 0.533).
    """
    data: dict[str, Any] = {"name": "logistic", "d": 10, "n_train": 6000, "n_test": 1000, "w_scale": w_scale, "seed": 0}
    return Grid({"epochs": 50, "batch_size": 100, "data": data}, _linear_rows(6000))


def _linear_rows(n_train: int) -> list[dict[str, Any]]:
    """The rows of the linear presets (batch 100, 50 epochs unless a row says otherwise); full batch = ``n_train``.

    ``ste`` takes Yin et al.'s clipped straight-through gradient ``1{|w| ≤ 1}`` without
    clipping the latent weights; with the identity gradient it would be deterministic BinaryConnect
    less the clip (:mod:`qnnlab.optim.ste`). On these convex problems its ``Q(w)`` still equals
    BinaryConnect's: at lr 0.1 on breast-cancer problems 0-2 (no latent weight left ``[−1, 1]`` on
    problem 0), and at lr 1 the ones that do are those the gradient keeps pushing outward, whose
    sign neither BinaryConnect's clip nor the clipped gradient's freeze changes (same gaps, 1.77 %
    mean on problems 0-2). The rows differ in their continuous weights ("train loss w": the latent
    for BinaryConnect, ``sign w`` for STE) and on networks.
    """
    eps = _eps(10, 0.75)
    return [
        {"label": "gd (full batch)", "epochs": 300, "batch_size": n_train, "method": {"name": "sgd", "lr": 10.0}},
        {"label": "minibatch sgd", "method": {"name": "sgd", "lr": 1.0}},
        {
            "label": "sgd (b=1, 1/k steps)",
            "epochs": 5,
            "batch_size": 1,
            "method": {"name": "sgd", "lr": 0.5},
            "schedule": {"kind": "inverse_power", "tau": 1000.0, "power": 1.0},
        },
        {"label": "binaryconnect", "method": {"name": "binaryconnect", "lr": 0.1}},
        {"label": "binaryconnect (stoch.)", "method": {"name": "binaryconnect", "lr": 0.1, "stochastic": True}},
        {"label": "askewsgd", "method": {"name": "askewsgd", "lr": 1.0, "alpha": 1.0, "eps": eps}},
        {
            "label": "askewsgd (1/√k steps)",
            "method": {"name": "askewsgd", "lr": 2.0, "alpha": 1.0, "eps": eps},
            "schedule": {"kind": "inverse_power", "tau": 300.0, "power": 0.5},
        },
        # the general Muehlebach–Jordan solver (autograd Jacobian + dual QP) on the same constraint
        {"label": "constrained_gd (qp)", "method": {"name": "constrained_gd", "lr": 1.0, "solver": "qp", "eps": eps}},
        {"label": "primal_dual", "method": {"name": "primal_dual", "lr": 1.0, "dual_lr": 1.0, "eps": eps}},
        {"label": "ste", "method": {"name": "ste", "lr": 0.1, "estimator": "clipped"}},
        {"label": "proxquant", "method": {"name": "proxquant", "lr": 0.01, "lam": 0.01}},
        {
            "label": "adaste (full batch)",
            "epochs": 100,
            "batch_size": n_train,
            "method": {"name": "adaste", "lr": 1.0, "alpha": 0.01, "beta": 100.0, "theta_init": 1.0},
        },
        {"label": "bop", "method": {"name": "bop", "gamma": 1e-3, "threshold": 1e-6}},
    ]


PRESETS.register("logistic", _logistic(1.0))
PRESETS.register("logistic-0.8", _logistic(0.8))


def _breast_cancer() -> Preset:
    """A real problem that separates the methods: breast cancer (455 train / 114 test), 10 binary weights.

    scikit-learn's bundled Wisconsin set, its 10 "mean" features standardized on the training
    split, a stratified split per data seed (by default 5 problems, data seeds 0-4, of one training
    seed; ``--problems N``: seeds 0..N−1); a linear model
    without bias and the mean logistic loss, so the 2¹⁰ sign vectors are enumerated and every
    gap is exact. Radius, perimeter and area are correlated above 0.99: the continuous optimum
    has large weights of both signs, and rounding it lands far from the binary optimum. The rows
    are Experiment I's (:func:`_linear_rows`, with full batch = 455) plus the full-precision
    optimum rounded: the ill-conditioned loss (its minimizer's weights are large) needs heavy-ball
    momentum, lr 10 and μ = 0.98 on the full batch for 300 epochs, whose signs equal those of
    SciPy's L-BFGS-B minimizer on problems 0-2 (Adam at lr 0.1 for 300 epochs, or μ = 0.95, missed
    one or two signs).
    """
    n_train = 455
    rounded = {
        "label": "round(fp optimum)",
        "epochs": 300,
        "batch_size": n_train,
        "method": {"name": "sgd", "lr": 10.0, "momentum": 0.98},
    }
    common = {"epochs": 50, "batch_size": 100, "data": {"name": "breast_cancer", "n_test": 569 - n_train}}
    return Grid(common, [rounded, *_linear_rows(n_train)], seeds=1, problems=5)  # the problems are the point


PRESETS.register("breast-cancer", _breast_cancer())


def _untuned_rows(
    *, adam_lr: float, sgd_lr: float, eps: dict[str, Any], epochs: int, **run: Any
) -> list[dict[str, Any]]:
    """Rows for the methods not yet tuned on a preset, derived from its ASkewSGD row (marked ``*``).

    ``constrained_gd*`` and ``primal_dual*`` take ASkewSGD's Adam step and ε schedule; ``ste*``
    the baselines' step; ``proxquant*`` Adam at ASkewSGD's step with λ growing so that the prox
    strength τ = lr·λ·epoch reaches 0.5 in the last epoch; ``adaste*`` the authors' α, β with
    |θ₀| = 1 at ASkewSGD's step, Adam included: with plain SGD at that lr (the row before
    2026-12-03) no sign can flip within a two-moons run — the batch-normalized network's gradients
    are ≈ 0.01 and AdaSTE's factor is capped at ½, so θ travels at most 0.1·½·0.01·1000 ≈ 0.5 of
    the 1 to zero — and a seed whose initial signs were bad stayed at them (2 of 5 seeds at 16 %).
    Untuned: tables show them, results.md says so.
    """
    adam = {"lr": adam_lr, "base": "adam"}
    return [
        row("constrained_gd*", {"name": "constrained_gd", **adam, "alpha": 1.0, "eps": eps}, **run),
        row("primal_dual*", {"name": "primal_dual", **adam, "dual_lr": 1.0, "eps": eps}, **run),
        row("ste*", {"name": "ste", "lr": sgd_lr, "base": "adam"}),
        row("proxquant*", {"name": "proxquant", **adam, "lam": 0.5 / (adam_lr * epochs)}, **run),
        row("adaste*", {"name": "adaste", **adam, "alpha": 0.01, "beta": 100.0, "theta_init": 1.0}, **run),
    ]


def _two_moons() -> Preset:
    """The non-convex toy (ASkewSGD §1.4b): two moons, 2000/200 points, noise 0.1; MLP 2→3→1 with BN, no biases.

    As in the authors' notebook: batch 100, 50 epochs; all 9 weights are binary, so the binary
    optimum is found by enumerating the 512 sign vectors. Every row but Bop's (below) was tuned by
    ``configs/sweeps/two-moons.toml`` on validation data (the loss of Q(w) on a stratified 20 %
    of the training points, mean over training seeds 0-2; ``docs/sweeps/two-moons-sweep.sweep.json``),
    a grid per row around the former settings (the notebook's SGD lr 0.1 for the baselines, Adam
    lr 0.1 and α = 1 for ASkewSGD, the ``*`` rows derived from it); BinaryConnect and the notebook-ε
    row kept theirs. ``askewsgd`` holds ε = 1 for 10 epochs and then multiplies it by 0.9 per
    epoch, to ≈ 1.5e-2 in epoch 50; ``askewsgd (notebook ε)`` keeps the notebook's schedule, 1 for
    20 epochs then × 0.99, which ends at ε ≈ 0.75 (|w| only ≥ 0.37).

    Bop (the BN parameters: SGD with lr 0.1, BinaryConnect's): γ = 1e-3, τ = 1e-4, the best
    ``q_val_loss`` (0.432, mean of seeds 0, 1) on a stratified 20 % validation split over
    γ ∈ {1e-4, 1e-3, 1e-2} × τ ∈ {1e-6, 1e-4, 1e-2}; τ = 1e-2 stops every flip at γ ≤ 1e-3
    (chance level), γ = 1e-2 with τ ≤ 1e-4 keeps flipping (0.75-1.02).
    """
    common = {"epochs": 50, "batch_size": 100, "data": {"name": "two_moons"}, "model": {"name": "moons_mlp"}}
    adam = {"base": "adam", "alpha": 1.0}
    return Grid(
        common,
        [
            row("sgd (full precision)", {"name": "sgd", "lr": 1.0}),
            row("binaryconnect", {"name": "binaryconnect", "lr": 0.1}),
            row("binaryconnect (stoch.)", {"name": "binaryconnect", "lr": 0.03, "stochastic": True}),
            row("askewsgd", {"name": "askewsgd", "lr": 0.03, **adam, "eps": _eps(10, 0.9)}),
            row("askewsgd (notebook ε)", {"name": "askewsgd", "lr": 0.1, **adam, "eps": _eps(20, 0.99)}),
            row("bop", {"name": "bop", "lr": 0.1, "gamma": 1e-3, "threshold": 1e-4}),
            row("constrained_gd", {"name": "constrained_gd", "lr": 0.1, **adam, "eps": _eps(20, 0.8)}),
            row(
                "primal_dual", {"name": "primal_dual", "lr": 0.1, "base": "adam", "dual_lr": 0.1, "eps": _eps(10, 0.8)}
            ),
            row("ste", {"name": "ste", "lr": 0.01, "base": "adam"}),
            row("proxquant", {"name": "proxquant", "lr": 0.1, "base": "adam", "lam": 0.03}),
            row("adaste", {"name": "adaste", "lr": 0.03, "alpha": 0.01, "beta": 100.0, "theta_init": 0.1}),
        ],
    )


def _digits() -> Preset:
    """scikit-learn's 8×8 digits (1437 train / 360 test, stratified): MLP 64→256→256→10 with BN, no biases.

    Batch 64, 40 epochs, Adam with the lr decaying exponentially to 1e-5 (BinaryConnect with its
    Glorot step scale), and to 1e-3 for the constrained methods, ProxQuant and AdaSTE: their weights
    start at PyTorch's small initialization and must travel to ±1 once ε shrinks. Every row but
    Bop's (below) was tuned by ``configs/sweeps/digits.toml`` on validation data (the loss of Q(w) on a stratified
    20 % of the training images, training seed 0; ``docs/sweeps/digits-sweep.sweep.json``), a grid
    per row around the former settings (Adam lr 1e-3 for the baselines, 3e-2 for ASkewSGD, the
    ``*`` rows derived from it); AdaSTE kept its lr 3e-2, and no lr of its grid trained it.
    ASkewSGD holds ε = 1 for 5 epochs, then × 0.7 per epoch (floor 1e-4 from epoch 31).
    Stochastic BinaryConnect is left out: with batch norm and this initialization its
    rounded network stayed below 50 % (every lr tried, with and without the Glorot scale).

    Bop (the BN parameters: Adam with lr 1e-3, the baselines' former step): γ = 1e-3, τ = 1e-6, the best ``q_val_loss``
    (0.297, seed 0) on a stratified 20 % validation split over γ ∈ {1e-4, 1e-3, 1e-2} ×
    τ ∈ {1e-8, 1e-6, 1e-4}; (1e-4, 1e-6) had the best validation accuracy (98.3 % against 97.9 %).
    """
    common = {
        "epochs": 40,
        "batch_size": 64,
        "data": {"name": "digits"},
        "model": {"name": "mlp", "width": 256, "depth": 2},
        "schedule": {"kind": "exponential", "final_lr": 1e-5},
    }
    adam = {"base": "adam"}
    to_1e3 = {"schedule": {"kind": "exponential", "final_lr": 1e-3}}
    eps = _eps(10, 0.7)
    return Grid(
        common,
        [
            row("sgd (full precision)", {"name": "sgd", "lr": 3e-3, **adam}),
            row("binaryconnect", {"name": "binaryconnect", "lr": 3e-3, **adam, "glorot_scale": True}),
            row("askewsgd", {"name": "askewsgd", "lr": 0.1, **adam, "alpha": 1.0, "eps": _eps(5, 0.7)}, **to_1e3),
            row("bop", {"name": "bop", "lr": 1e-3, **adam, "gamma": 1e-3, "threshold": 1e-6}),
            row("constrained_gd", {"name": "constrained_gd", "lr": 0.1, **adam, "alpha": 1.0, "eps": eps}, **to_1e3),
            row("primal_dual", {"name": "primal_dual", "lr": 0.1, **adam, "dual_lr": 1.0, "eps": eps}, **to_1e3),
            row("ste", {"name": "ste", "lr": 3e-3, **adam}),
            row("proxquant", {"name": "proxquant", "lr": 1e-2, **adam, "lam": 4.0}, **to_1e3),
            row("adaste", {"name": "adaste", "lr": 3e-2, "alpha": 0.01, "beta": 100.0, "theta_init": 1.0}, **to_1e3),
        ],
    )


def _digits_kbit(bits: int) -> Preset:
    """The digits MLP of :func:`_digits` with every weight on a ``bits``-bit grid scaled per tensor.

    Full precision (Adam, lr 1e-3 → 1e-5) is judged on the SAWB-scaled grid of its weights, k-bit
    ASkewSGD trains on that grid (same steps; ε = 1/16, inactive, for 10 epochs, then × 0.7 per
    epoch to 1e-5, with each tensor's step held from epoch 10), ProxQuant on its max-scaled
    (``bits ≥ 3``) or ternary (2) grid with λ = 10 (λ = 1, 10, 100 gave 95.3, 95.3, 95.6 % at
    2 bits, seed 0; the default 1e-4 leaves the weights off the grid).
    """
    common = {
        "epochs": 40,
        "batch_size": 64,
        "bits": bits,
        "data": {"name": "digits"},
        "model": {"name": "mlp", "width": 256, "depth": 2},
        "schedule": {"kind": "exponential", "final_lr": 1e-5},
    }
    adam = {"lr": 1e-3, "base": "adam"}
    eps = {"init": 1 / 16, "hold": 10, "decay": 0.7, "floor": 1e-5}
    return Grid(
        common,
        [
            row("sgd (full precision)", {"name": "sgd", **adam}),
            row("askewsgd", {"name": "askewsgd", "bits": bits, **adam, "alpha": 1.0, "eps": eps}),
            row("proxquant", {"name": "proxquant", "bits": bits, "lr": 1e-3, "lam": 10.0}),
        ],
    )


def _fashion_mlp() -> Preset:
    """Full Fashion-MNIST (60k/10k): MLP 784→512→512→10 with BN, no biases, all weights quantized.

    Batch 100, 10 epochs, Adam with lr 1e-3 decaying exponentially to 1e-5; BinaryConnect
    with its Glorot step scale. ASkewSGD takes Adam with lr 1e-2 decaying to 1e-3, so that its
    weights can travel from their small initialization to ±1 once ε shrinks (with the
    baselines' steps none ended within 0.05 of the grid and the rounded network scored 60 %;
    lr 3e-2 → 1e-3 gave 88.2 %, 1e-2 → 1e-3 88.5 %, seed 0). It holds ε = 1 for 2 epochs,
    then × 0.35 per epoch (ε ≈ 6.4e-4 in the last epoch: feasible weights have |w| ≥ 0.987).
    Train metrics use a fixed 10k subset of the training set. ``bop*`` takes the digits preset's
    γ = 1e-3, τ = 1e-6 and the baselines' Adam step for the BN parameters (untuned here).
    """
    common = {
        "epochs": 10,
        "batch_size": 100,
        "eval_train": 10_000,
        "data": {"name": "fashion_mnist"},
        "model": {"name": "mlp", "width": 512, "depth": 2},
        "schedule": {"kind": "exponential", "final_lr": 1e-5},
    }
    adam = {"lr": 1e-3, "base": "adam"}
    return Grid(
        common,
        [
            row("sgd (full precision)", {"name": "sgd", **adam}),
            row("binaryconnect", {"name": "binaryconnect", **adam, "glorot_scale": True}),
            row(
                "askewsgd",
                {"name": "askewsgd", "lr": 1e-2, "base": "adam", "alpha": 1.0, "eps": _eps(2, 0.35)},
                schedule={"kind": "exponential", "final_lr": 1e-3},
            ),
            row("bop*", {"name": "bop", **adam, "gamma": 1e-3, "threshold": 1e-6}),
            *_untuned_rows(
                adam_lr=1e-2,
                sgd_lr=1e-3,
                eps=_eps(2, 0.35),
                epochs=10,
                schedule={"kind": "exponential", "final_lr": 1e-3},
            ),
        ],
    )


def _mnist_mlp() -> Preset:
    """BinaryConnect's permutation-invariant MNIST setting: MLP 784→3×2048→10 with BN, batch 100, 250 epochs.

    Adam with lr 1e-3 decaying exponentially to 3e-6 (BinaryConnect's LR_start → LR_fin),
    Glorot step scale for BinaryConnect. Differences from the paper: cross-entropy instead
    of the squared hinge loss, all 60k training images (no 50k/10k validation split, no
    early stopping). ASkewSGD holds ε = 1 for 50 epochs, then × 0.95 per epoch (floor 1e-4
    from epoch ≈ 230). Needs the four MNIST IDX files (``--data-dir`` or ``$QNNLAB_DATA/mnist``).
    """
    common = {
        "epochs": 250,
        "batch_size": 100,
        "eval_train": 10_000,
        "data": {"name": "mnist"},
        "model": {"name": "mlp", "width": 2048, "depth": 3},
        "schedule": {"kind": "exponential", "final_lr": 3e-6},
    }
    adam = {"lr": 1e-3, "base": "adam"}
    return Grid(
        common,
        [
            row("sgd (full precision)", {"name": "sgd", **adam}),
            row("binaryconnect", {"name": "binaryconnect", **adam, "glorot_scale": True}),
            row("binaryconnect (stoch.)", {"name": "binaryconnect", **adam, "glorot_scale": True, "stochastic": True}),
            row("askewsgd", {"name": "askewsgd", **adam, "alpha": 1.0, "eps": _eps(50, 0.95)}),
        ],
    )


def _cifar10_vgg() -> Preset:
    """BinaryConnect's CIFAR-10 setting (GPU): 2×128C3–MP2–2×256C3–MP2–2×512C3–MP2–2×1024FC–10, batch 50, 500 epochs.

    Adam with lr 3e-3 decaying exponentially to 2e-6, Glorot step scale for BinaryConnect.
    Inputs are standardized per channel (the paper used global contrast normalization and
    ZCA whitening) without augmentation, on all 50k training images (no 45k/5k split).
    ASkewSGD holds ε = 1 for 100 epochs, then × 0.97 per epoch (floor 1e-4 from epoch ≈ 400).
    """
    common = {
        "epochs": 500,
        "batch_size": 50,
        "eval_train": 10_000,
        "data": {"name": "cifar10"},
        "model": {"name": "bc_vgg"},
        "schedule": {"kind": "exponential", "final_lr": 2e-6},
    }
    adam = {"lr": 3e-3, "base": "adam"}
    return Grid(
        common,
        [
            row("sgd (full precision)", {"name": "sgd", **adam}),
            row("binaryconnect", {"name": "binaryconnect", **adam, "glorot_scale": True}),
            row("binaryconnect (stoch.)", {"name": "binaryconnect", **adam, "glorot_scale": True, "stochastic": True}),
            row("askewsgd", {"name": "askewsgd", **adam, "alpha": 1.0, "eps": _eps(100, 0.97)}),
        ],
    )


def _cifar10_resnet20() -> Preset:
    """ProxQuant's CIFAR-10 ResNet-20 setting (GPU): batch 128, 200 epochs, random crops and flips.

    Full precision: SGD with momentum 0.9, weight decay 1e-4, lr 0.1 × 0.1 at epochs 100
    and 150. Binary methods: Adam with lr 1e-2 × 0.1 at epochs 81 and 122 (ProxQuant's
    BinaryConnect recipe). Every weight but the BN parameters and the final bias is binary.
    Unlike the paper, binary runs start from scratch rather than from a trained
    full-precision network. ASkewSGD holds ε = 1 for 80 epochs, then × 0.93 per epoch
    (ε ≈ 1.6e-4 by epoch 200). ProxQuant: the same Adam steps with the package's default
    λ = 1e-4 growing per epoch (not run here: the preset needs a GPU), the row its published
    number (from a pretrained start, 300 epochs) is shown beside.
    """
    common = {
        "epochs": 200,
        "batch_size": 128,
        "eval_train": 10_000,
        "data": {"name": "cifar10", "augment": True},
        "model": {"name": "resnet20"},
        "schedule": {"kind": "step", "milestones": [81, 122], "factor": 0.1},
    }
    adam = {"lr": 1e-2, "base": "adam"}
    return Grid(
        common,
        [
            row(
                "sgd (full precision)",
                {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4},
                schedule={"kind": "step", "milestones": [100, 150], "factor": 0.1},
            ),
            row("binaryconnect", {"name": "binaryconnect", **adam}),
            row("askewsgd", {"name": "askewsgd", **adam, "alpha": 1.0, "eps": _eps(80, 0.93)}),
            row("proxquant", {"name": "proxquant", **adam, "lam": 1e-4}),
        ],
    )


def _imagenet_resnet18() -> Preset:
    """ImageNet ResNet-18 in the ASkewSGD code's regime (GPU): batch 256, 90 epochs.

    SGD with momentum 0.9, weight decay 1e-4, lr 0.1 × 0.1 at epochs 30, 60 and 80; crops
    of 224 from images resized to 256 (random + flips for training, centre for evaluation).
    As in that code, the stem convolution, the 1×1 downsampling convolutions, BN and the
    final layer stay in full precision; here the other weights are *binary* (the paper's
    run was 4-bit with SAWB scales, which qnnlab's binary ASkewSGD does not cover). ASkewSGD
    holds ε = 1 for 30 epochs, then × 0.85 per epoch (floor 1e-4 from epoch ≈ 87).
    Train metrics use a fixed 10k-image subset.
    """
    common = {
        "epochs": 90,
        "batch_size": 256,
        "eval_train": 10_000,
        "eval_batch_size": 256,
        "data": {"name": "imagenet", "workers": 8},
        "model": {"name": "resnet18", "keep_fp": ["first", "last", "downsample", "biases", "norms"]},
        "schedule": {"kind": "step", "milestones": [30, 60, 80], "factor": 0.1},
    }
    sgd = {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4}
    return Grid(
        common,
        [
            row("sgd (full precision)", {"name": "sgd", **sgd}),
            row("binaryconnect", {"name": "binaryconnect", **sgd}),
            row("askewsgd", {"name": "askewsgd", **sgd, "alpha": 1.0, "eps": _eps(30, 0.85)}),
        ],
    )


for _name, _preset in (
    ("two-moons", _two_moons()),
    ("digits", _digits()),
    ("digits-2bit", _digits_kbit(2)),
    ("digits-4bit", _digits_kbit(4)),
    ("fashion-mlp", _fashion_mlp()),
    ("mnist-mlp", _mnist_mlp()),
    ("cifar10-vgg", _cifar10_vgg()),
    ("cifar10-resnet20", _cifar10_resnet20()),
    ("imagenet-resnet18", _imagenet_resnet18()),
):
    PRESETS.register(_name, _preset)


def preset_runs(name: str, seeds: int, seed_start: int = 0, problems: int | None = None) -> list[RunConfig]:
    """Every run of preset ``name`` for training seeds ``seed_start .. seed_start + seeds − 1``, validated up front.

    ``problems = N``: each of them on data seeds ``0 .. N − 1`` (problem by problem); ``None`` keeps the
    preset's own data seed.
    """
    if seeds < 1:
        raise ValueError(f"Invalid seeds: {seeds}; must be >= 1")
    if seed_start < 0:
        raise ValueError(f"Invalid seed_start: {seed_start}; must be >= 0")
    if problems is not None and problems < 1:
        raise ValueError(f"Invalid problems: {problems}; must be >= 1")
    build = PRESETS.get(name)
    runs = [cfg for seed in range(seed_start, seed_start + seeds) for cfg in build(seed)]
    if problems is None:
        return runs
    if any(cfg.data is None for cfg in runs):
        raise ValueError(f"Invalid problems: {problems}; preset {name!r} names no data set to draw problems from")
    return [cfg.with_(**{"data.seed": p}) for p in range(problems) for cfg in runs]


def select_runs(configs: Sequence[RunConfig], names: Iterable[str]) -> list[RunConfig]:
    """The runs of ``configs`` that ``names`` pick, in their order: a row label picks the rows of that label,
    any other name the rows of that method (``"sgd"``: every full-precision row).

    An unknown name raises :class:`KeyError` listing the labels and method names there are.
    """
    picked: set[str] = set()
    for name in names:
        match = {cfg.label for cfg in configs if cfg.label == name} or {
            cfg.label for cfg in configs if cfg.method.name == name
        }
        if not match:
            methods = dict.fromkeys(cfg.method.name for cfg in configs)
            raise KeyError(
                f"no row {name!r}; choose a label ({', '.join(dict.fromkeys(c.label for c in configs))}) "
                f"or a method ({', '.join(methods)})"
            )
        picked |= match
    return [cfg for cfg in configs if cfg.label in picked]
