"""The torch optimizer contract, checked for every registered method."""

import copy

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook
from torch.testing import assert_close

from qnnlab.methods import METHODS, build_optimizer
from qnnlab.nn.models import param_groups

# hyperparameters that make every branch of each method active
HPARAMS = {
    "sgd": {"lr": 0.05},
    "binaryconnect": {"lr": 0.05, "stochastic": True, "glorot_scale": True},
    "askewsgd": {"lr": 0.05, "eps": 0.05, "alpha": 1.0},
    "constrained_gd": {"lr": 0.05, "eps": 0.05, "alpha": 1.0},
    "primal_dual": {"lr": 0.05, "eps": 0.05, "dual_lr": 0.5, "init_multiplier": 0.1},
    "ste": {"lr": 0.05, "clip": True},
    # τ = lr·λ = 0.1: every region of the binary prox
    "proxquant": {"lr": 0.05, "bits": 1, "lam": 2.0},
    # αβ = 0.1 < 1 and |θ₀| = 0.5 < κ = 0.9: both sides of the wells' knee are visited
    "adaste": {"lr": 0.05, "alpha": 0.01, "beta": 10.0, "theta_init": 0.5},
    # |m| crosses τ within a few steps: flips and holds both occur
    "bop": {"lr": 0.05, "gamma": 0.1, "threshold": 1e-3},
}
# every method, plus the variants that take another code path: (method, hyperparameters)
CASES = {
    **{name: (name, hp) for name, hp in HPARAMS.items()},
    # r_ε ≈ 0.11 of a bin at ε = 0.01: corrective steps, clamped ones and plain ones all occur
    "askewsgd-4bit": ("askewsgd", {"lr": 0.05, "eps": 0.01, "alpha": 1.0, "bits": 4}),
    "askewsgd-2bit": ("askewsgd", {"lr": 0.05, "eps": 0.01, "alpha": 1.0, "bits": 2, "base": "adam"}),
    "proxquant-ternary": ("proxquant", {"lr": 0.05, "bits": 2, "lam": 2.0}),
}
# k-bit ASkewSGD clamps to its grid's hull [−mΔ, mΔ] from the first step with an active constraint,
# whatever the lr: the initialization has weights beyond SAWB's clip
HULL_ON_FIRST_STEP = ("askewsgd-4bit", "askewsgd-2bit")
# cases whose constraint level ε starts the annealing with the constraint inactive
ANNEALED = ("askewsgd", "constrained_gd", "primal_dual", "askewsgd-4bit", "askewsgd-2bit")
BASES = [{"base": "sgd"}, {"base": "sgd", "momentum": 0.9, "weight_decay": 1e-3}, {"base": "adam"}]


def test_every_method_is_covered() -> None:
    assert set(HPARAMS) == set(METHODS.names())


def make(name: str, model: torch.nn.Module, **extra) -> torch.optim.Optimizer:
    return make_for(name, param_groups(model), **extra)


def make_for(name: str, groups: list[dict], **extra) -> torch.optim.Optimizer:
    method, hp = CASES[name]
    return METHODS.get(method).optimizer(groups, **{**hp, **extra})


def model_and_batch() -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 1))
    x = torch.randn(32, 6)
    y = (x[:, :1] > 0).float()
    return model, x, y


def loss_of(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.binary_cross_entropy_with_logits(model(x), y)


def train(model, opt, x, y, steps: int, seed: int) -> None:
    torch.manual_seed(seed)
    for _ in range(steps):
        opt.zero_grad()
        loss_of(model, x, y).backward()
        opt.step()


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("base", BASES, ids=["sgd", "momentum+wd", "adam"])
def test_state_dict_round_trip_resumes_identically(name: str, base: dict) -> None:
    model, x, y = model_and_batch()
    opt = make(name, model, **base)
    train(model, opt, x, y, 3, seed=1)
    clone = copy.deepcopy(model)
    resumed = make(name, clone, **base)
    resumed.load_state_dict(copy.deepcopy(opt.state_dict()))
    train(model, opt, x, y, 4, seed=2)
    train(clone, resumed, x, y, 4, seed=2)
    for a, b in zip(model.parameters(), clone.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("name", CASES)
def test_tiny_lr_group_is_untouched(name: str) -> None:
    # the group's continuous weights stay put (stochastic BC still redraws its binary weights)
    if name == "bop":
        pytest.skip("Bop's lr steps its full-precision groups only; its flips follow γ and τ")
    model, x, y = model_and_batch()
    groups = param_groups(model)
    groups[0]["lr"] = 1e-30
    opt = make_for(name, groups)
    latent = getattr(opt, "latent", lambda p: p)
    if name in HULL_ON_FIRST_STEP:
        train(model, opt, x, y, 1, seed=0)
    before = [latent(p).clone() for p in groups[0]["params"]]
    others = [p.detach().clone() for p in groups[1]["params"]]
    train(model, opt, x, y, 3, seed=0)
    for p, b in zip(groups[0]["params"], before, strict=True):
        assert torch.equal(latent(p), b)
    assert any(not torch.equal(p, o) for p, o in zip(groups[1]["params"], others, strict=True))


@pytest.mark.parametrize("name", CASES)
def test_loss_goes_down(name: str) -> None:
    model, x, y = model_and_batch()
    # ASkewSGD starts its annealing with the constraint inactive (ε = 1); the active regime
    # is covered by test_askewsgd.py and the logistic end-to-end test
    # stochastic BC's loss at a single draw is too noisy to compare two points; judge the sign
    extra = {"eps": 1.0} if name in ANNEALED else {"binaryconnect": {"stochastic": False}}.get(name, {})
    opt = make(name, model, base="adam", lr=0.02, **extra)
    start = loss_of(model, x, y).item()
    train(model, opt, x, y, 60, seed=0)
    assert loss_of(model, x, y).item() < start


@pytest.mark.parametrize("name", CASES)
def test_works_under_torch_lr_scheduler(name: str) -> None:
    model, x, y = model_and_batch()
    opt = make(name, model)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    lrs = []
    for _ in range(5):
        opt.zero_grad()
        loss_of(model, x, y).backward()
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs == pytest.approx([0.05, 0.025, 0.025, 0.0125, 0.0125])


@pytest.mark.parametrize("name", CASES)
def test_step_hooks_and_the_profiler_range_work_as_on_torch_optimizers(name: str) -> None:
    model, x, y = model_and_batch()
    opt = make(name, model)
    assert "step" not in vars(type(opt))  # torch did not wrap our (hooked) step in its own wrapper again
    calls: list[str] = []
    handles = [
        opt.register_step_pre_hook(lambda o, args, kwargs: calls.append("pre")),
        opt.register_step_post_hook(lambda o, args, kwargs: calls.append("post")),
        register_optimizer_step_pre_hook(lambda o, args, kwargs: calls.append("global pre")),
        register_optimizer_step_post_hook(lambda o, args, kwargs: calls.append("global post")),
    ]
    loss_of(model, x, y).backward()
    try:
        opt.step()
    finally:
        for handle in handles:
            handle.remove()
    assert calls == ["global pre", "pre", "post", "global post"]  # torch's order
    opt.step()
    assert len(calls) == 4  # removed: not called again
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        opt.step()
    assert f"Optimizer.step#{type(opt).__name__}.step" in {e.name for e in prof.events()}


@pytest.mark.parametrize("name", CASES)
def test_no_grad_parameters_are_skipped(name: str) -> None:
    model, x, y = model_and_batch()
    opt = make(name, model)
    model[2].weight.requires_grad_(False)
    frozen = model[2].weight.detach().clone()
    train(model, opt, x, y, 2, seed=0)
    assert torch.equal(model[2].weight, frozen)


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("base", BASES, ids=["sgd", "momentum+wd", "adam"])
def test_step_never_reads_a_tensor_on_the_host(name: str, base: dict, monkeypatch) -> None:
    # every way a tensor's value reaches Python is a device sync on a GPU
    model, x, y = model_and_batch()
    opt = make(name, model, **base)
    train(model, opt, x, y, 1, seed=0)
    loss_of(model, x, y).backward()

    def sync(*args, **kwargs):
        raise AssertionError("host sync inside step()")

    for attr in ("item", "tolist", "__bool__", "__float__", "__int__", "__index__", "numpy"):
        monkeypatch.setattr(torch.Tensor, attr, sync)
    opt.step()


@pytest.mark.parametrize("name", METHODS.names())
def test_repr_and_config_build(name: str) -> None:
    model, _, _ = model_and_batch()
    cfg = METHODS.get(name).config(lr=0.05)
    opt = build_optimizer(cfg, param_groups(model))
    assert type(opt).__name__ in repr(opt)


@pytest.mark.parametrize("name", METHODS.names())
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lr": 0.0}, "Invalid learning rate: 0.0"),
        ({"lr": -1.0}, "Invalid learning rate: -1.0"),
        ({"momentum": -0.1}, "Invalid momentum: -0.1"),
        ({"weight_decay": -1.0}, "Invalid weight_decay: -1.0"),
        ({"base": "rmsprop"}, "Invalid base: 'rmsprop'; choose from: sgd, adam"),
        ({"betas": (1.0, 0.9)}, r"Invalid betas: \(1.0, 0.9\)"),
        ({"adam_eps": 0.0}, "Invalid adam_eps: 0.0"),
    ],
)
def test_invalid_hyperparameters(name: str, kwargs: dict, message: str) -> None:
    model, _, _ = model_and_batch()
    with pytest.raises(ValueError, match=message):
        make(name, model, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"), [({"eps": 0.0}, "Invalid eps: 0.0"), ({"alpha": -1.0}, "Invalid alpha")]
)
def test_invalid_askewsgd_hyperparameters(kwargs: dict, message: str) -> None:
    model, _, _ = model_and_batch()
    with pytest.raises(ValueError, match=message):
        make("askewsgd", model, **kwargs)


def test_adam_base_matches_torch_adam() -> None:
    # with the constraint inactive (ε = 1 on [−1, 1]) ASkewSGD+Adam is torch's Adam then a clip
    torch.manual_seed(0)
    w0 = torch.rand(20) * 1.6 - 0.8
    p, q = torch.nn.Parameter(w0.clone()), torch.nn.Parameter(w0.clone())
    ours = METHODS.get("askewsgd").optimizer([p], lr=1e-3, eps=1.0, base="adam")
    ref = torch.optim.Adam([q], lr=1e-3)
    for _ in range(5):
        g = torch.randn(20)
        p.grad, q.grad = g.clone(), g.clone()
        ours.step()
        ref.step()
    assert_close(p.detach(), q.detach())


def test_momentum_base_matches_torch_sgd() -> None:
    torch.manual_seed(0)
    w0 = torch.randn(20)
    p, q = torch.nn.Parameter(w0.clone()), torch.nn.Parameter(w0.clone())
    ours = METHODS.get("sgd").optimizer([p], lr=0.1, momentum=0.9, weight_decay=0.01)
    ref = torch.optim.SGD([q], lr=0.1, momentum=0.9, weight_decay=0.01)
    for _ in range(5):
        g = torch.randn(20)
        p.grad, q.grad = g.clone(), g.clone()
        ours.step()
        ref.step()
    assert_close(p.detach(), q.detach())


@pytest.mark.parametrize(("momentum", "weight_decay"), [(0.0, 0.0), (0.9, 0.0), (0.0, 0.01), (0.9, 0.01)])
def test_sgd_base_is_torch_foreach_sgd_bitwise(momentum: float, weight_decay: float) -> None:
    # the plain step calls torch._foreach_add_ itself; every branch must stay torch's to the bit, mixed dtypes included
    torch.manual_seed(0)
    w0 = [torch.randn(7, 3), torch.randn(5, dtype=torch.float64), torch.randn(0)]
    ps, qs = ([torch.nn.Parameter(w.clone()) for w in w0] for _ in "pq")
    ours = METHODS.get("sgd").optimizer(ps, lr=0.3, momentum=momentum, weight_decay=weight_decay)
    ref = torch.optim.SGD(qs, lr=0.3, momentum=momentum, weight_decay=weight_decay, foreach=True)
    for _ in range(4):
        for p, q in zip(ps, qs, strict=True):
            p.grad = torch.randn_like(p)
            q.grad = p.grad.clone()
        ours.step()
        ref.step()
    assert all(torch.equal(p, q) for p, q in zip(ps, qs, strict=True))
