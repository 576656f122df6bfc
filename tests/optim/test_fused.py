"""The fused step equals the eager one bit for bit, on every branch of every rule; builds, caches, falls back."""

import copy
import os
import stat
import threading
import warnings

import pytest
import torch

import qnnlab.optim._base as base
import qnnlab.optim._kernels as kernels
from qnnlab.methods import METHODS
from qnnlab.optim import ASkewSGD
from qnnlab.optim._kernels import Kernel, KernelUnavailable, Spec, c_source, load_library

# (method, hyperparameters): every rule, every static variant
CASES = {
    "askewsgd": ("askewsgd", {"eps": 0.1, "alpha": 1.0}),
    "askewsgd-4bit": ("askewsgd", {"eps": 0.01, "alpha": 1.0, "bits": 4}),
    "askewsgd-2bit": ("askewsgd", {"eps": 0.03, "alpha": 0.5, "bits": 2}),
    "constrained_gd": ("constrained_gd", {"eps": 0.1, "alpha": 2.0, "box": 1.2}),
    "primal_dual": ("primal_dual", {"eps": 0.1, "dual_lr": 0.5, "init_multiplier": 0.1}),
    "ste": ("ste", {"clip": True}),
    "proxquant": ("proxquant", {"bits": 1, "lam": 2.0}),
    "proxquant-frozen": ("proxquant", {"bits": 1, "lam": 2.0, "frozen": True}),
    "proxquant-ternary": ("proxquant", {"bits": 2, "lam": 2.0}),  # per-tensor threshold and scale
    "proxquant-4bit": ("proxquant", {"bits": 4, "lam": 0.5}),  # per-tensor max scale
    "binaryconnect": ("binaryconnect", {"glorot_scale": True}),
    "binaryconnect-stochastic": ("binaryconnect", {"stochastic": True}),
    "adaste": ("adaste", {"alpha": 0.01, "beta": 10.0, "theta_init": 0.5}),  # αβ < 1
    "adaste-saturated": ("adaste", {"alpha": 0.05, "beta": 30.0, "theta_init": 0.5}),  # αβ ≥ 1
    "bop": ("bop", {"gamma": 0.5, "threshold": 0.1}),
    "sgd": ("sgd", {}),
}
BASES = {"sgd": {}, "momentum+wd": {"momentum": 0.9, "weight_decay": 1e-2}, "adam": {"base": "adam"}}
# the branch points: 0, ±1, a subnormal (φ' subnormal: K overflows), feasible and infeasible points, beyond the box
SPECIAL = [0.0, 1.0, -1.0, 1e-45, -1e-45, 0.5, -0.5, 0.9, -0.95, 1.0005, -1.3, 2e-4, 0.3, -0.7]


def params(size: int = 1) -> list[torch.nn.Parameter]:
    """A weight with the special values, a zero-size one, a non-contiguous one, a second group's, a bias (``size``
    times as many rows each)."""
    torch.manual_seed(3)
    w = torch.rand(8 * size, 5) * 2.4 - 1.2
    w.view(-1)[: len(SPECIAL)] = torch.tensor(SPECIAL)
    transposed = (torch.rand(6 * size, 3) * 2 - 1).t()
    second, bias = torch.rand(3 * size, 3) - 0.5, torch.rand(5 * size)
    return [torch.nn.Parameter(t) for t in (w, torch.zeros(0, 4), transposed, second, bias)]


def make(name: str, base_step: dict, fused: bool, ps: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
    method, hp = CASES[name]
    groups = [
        {"params": ps[:3]},
        {"params": [ps[3]], "lr": 0.3},  # a second constrained group with its own step size
        {"params": [ps[4]], "constrained": False},
    ]
    torch.manual_seed(5)  # stochastic BinaryConnect draws its first binary weights at construction
    return METHODS.get(method).optimizer(groups, lr=0.05, fused=fused, **hp, **base_step)


def grads(ps, step: int) -> None:
    gen = torch.Generator().manual_seed(step)
    for p in ps:
        g = torch.randn(p.shape, generator=gen) * 0.5
        g.view(-1)[::7] = 0.0  # exact zeros: singular products, ties of sign
        p.grad = g if p.is_contiguous() else g.t().contiguous().t()  # a non-contiguous gradient too


def special_values(opt: torch.optim.Optimizer, ps) -> None:
    """Put grid levels, midpoints and the hull's edges (in held steps Δ) and AdaSTE's regions into the state."""
    for p in ps[:3]:
        state = opt.state[p]
        if "grid_step" in state and p.numel() and p.is_contiguous():
            m = 2 ** (opt.param_groups[0]["bits"] - 1) - 1
            units = torch.tensor([0.0, 1.0, -1.0, 0.5, -0.5, 1.5, m, -m, m + 0.3, -(m + 2), 0.25, 0.7, -1.25, 2.5])
            p.data.view(-1)[: len(units)] = units * state["grid_step"]
        if "theta" in state and p.numel() and p.is_contiguous():
            # |θ| at the tolerance, inside and outside the knee κ = 1 − αβ, large, zero
            state["theta"].view(-1)[:8] = torch.tensor([1e-3, -1e-3, 0.05, -0.5, 0.95, -3.0, 0.0, 12.0])


def run(name: str, base_step: dict, fused: bool, steps: int = 4, size: int = 1):
    ps = params(size)
    opt = make(name, base_step, fused, ps)
    torch.manual_seed(7)
    for k in range(steps):
        grads(ps, k)
        opt.step()
        if k == 0:
            special_values(opt, ps)
    return ps, opt


def bits_of(t: torch.Tensor) -> torch.Tensor:
    return t.view({2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()]) if t.is_floating_point() else t


def assert_bitwise(a: torch.Tensor, b: torch.Tensor) -> None:
    assert a.dtype == b.dtype and a.shape == b.shape
    assert torch.equal(bits_of(a), bits_of(b)), f"{(bits_of(a) != bits_of(b)).sum()} entries differ"


def assert_same_run(ps_a, opt_a, ps_b, opt_b) -> None:
    for a, b in zip(ps_a, ps_b, strict=True):
        assert_bitwise(a.detach(), b.detach())
        assert opt_a.state[a].keys() == opt_b.state[b].keys()
        for key, value in opt_a.state[a].items():
            if torch.is_tensor(value):
                assert_bitwise(value, opt_b.state[b][key])


@pytest.mark.parametrize("base_step", BASES.values(), ids=BASES.keys())
@pytest.mark.parametrize("name", CASES)
def test_fused_equals_eager_bitwise(name: str, base_step: dict) -> None:
    assert_same_run(*run(name, base_step, fused=False), *run(name, base_step, fused=True))


@pytest.mark.parametrize("base_step", BASES.values(), ids=BASES.keys())
@pytest.mark.parametrize("name", CASES)
def test_calls_split_across_threads_equal_eager_bitwise(name: str, base_step: dict, monkeypatch) -> None:
    """Three OpenMP ranges per call, split inside tensors and across them (2,320 and 360 entries a group, split at
    multiples of 64): the eager path's bits, draws included (a draw's index is its index in its own tensor)."""
    monkeypatch.setattr(kernels, "PER_THREAD", 1)
    threads = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        split = run(name, base_step, fused=True, size=40)
    finally:
        torch.set_num_threads(threads)
    assert_same_run(*run(name, base_step, fused=False, size=40), *split)


def test_thread_parts_keep_per_thread_entries() -> None:
    per = kernels.PER_THREAD
    assert [kernels.thread_parts(n, 4) for n in (0, per - 1, per, 3 * per - 1, 3 * per, 10 * per)] == [1, 1, 1, 2, 3, 4]
    assert kernels.thread_parts(10 * per, 1) == 1


@pytest.mark.parametrize("base_step", [BASES["momentum+wd"], BASES["adam"]], ids=["momentum+wd", "adam"])
@pytest.mark.parametrize("name", ["askewsgd-4bit", "primal_dual", "binaryconnect-stochastic", "adaste"])
@pytest.mark.parametrize("first", [True, False], ids=["fused-then-eager", "eager-then-fused"])
def test_state_dict_moves_between_paths(name: str, base_step: dict, first: bool) -> None:
    straight = run(name, base_step, fused=first)
    ps, opt = run(name, base_step, fused=first, steps=2)
    rng = torch.get_rng_state()  # the last two steps draw what the straight run's drew
    moved_ps = [torch.nn.Parameter(p.detach().clone()) for p in ps]
    moved = make(name, base_step, not first, moved_ps)
    moved.load_state_dict(copy.deepcopy(opt.state_dict()))
    torch.set_rng_state(rng)
    for k in (2, 3):
        grads(moved_ps, k)
        moved.step()
    assert_same_run(*straight, moved_ps, moved)


def test_a_state_saved_before_the_fused_steps_loads() -> None:
    p = torch.nn.Parameter(torch.tensor([0.2, -0.4]))
    opt = ASkewSGD([p], lr=0.01, base="adam")
    p.grad = torch.tensor([0.1, 0.2])
    opt.step()
    state = opt.state_dict()
    state["state"][0]["step"] = 1  # as saved before the fused steps: a Python int, and no "fused" key
    del state["param_groups"][0]["fused"]
    opt.load_state_dict(state)
    opt.step()
    assert torch.is_tensor(opt.state[p]["step"]) and opt.state[p]["step"].item() == 2
    assert opt.param_groups[0]["fused"] is None


def test_bfloat16_falls_back_to_eager_with_one_warning(monkeypatch) -> None:
    monkeypatch.setattr(base, "_WARNED", set())
    ps = [torch.nn.Parameter(torch.tensor([0.5, -0.2, 0.0, 1.0], dtype=torch.bfloat16)) for _ in range(2)]
    runs = []
    for fused, p in zip([None, False], ps, strict=True):
        opt = ASkewSGD([p], lr=0.1, eps=0.1, fused=fused)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for _ in range(2):
                p.grad = torch.tensor([1.0, -0.5, 0.3, 0.2], dtype=torch.bfloat16)
                opt.step()
        runs.append(p.detach())
        if fused is None:
            reason = "the C kernels cover float32 and float64, not torch.bfloat16"
            assert [str(w.message) for w in caught] == [
                f"qnnlab: fused optimizer step unavailable ({reason}); using the eager path"
            ]
    assert_bitwise(*runs)
    with pytest.raises(RuntimeError, match="fused=True: the C kernels cover float32 and float64"):
        opt = ASkewSGD([ps[0]], lr=0.1, fused=True)
        opt.step()


def fresh_kernels(monkeypatch, tmp_path, cc: str | None) -> None:
    """A new cache directory, compiler and kernel table, as in a fresh process."""
    monkeypatch.setenv("QNNLAB_CACHE_DIR", str(tmp_path))
    if cc is not None:
        monkeypatch.setenv("CC", cc)
    kernels.compiler.cache_clear()
    base._kernel.cache_clear()
    monkeypatch.setattr(base, "_WARNED", set())


@pytest.fixture
def restore_kernels():
    yield
    kernels.compiler.cache_clear()
    base._kernel.cache_clear()


def test_no_compiler_falls_back_once_or_fails_when_insisted(monkeypatch, tmp_path, restore_kernels) -> None:
    fresh_kernels(monkeypatch, tmp_path, str(tmp_path / "no-such-cc"))
    p, q = (torch.nn.Parameter(torch.tensor([0.5, -0.2, 0.9])) for _ in range(2))
    auto, eager = ASkewSGD([p], lr=0.1, eps=0.1), ASkewSGD([q], lr=0.1, eps=0.1, fused=False)
    with pytest.warns(UserWarning, match=r"no C compiler found \(tried .*no-such-cc; set CC or install gcc\)"):
        for _ in range(3):
            p.grad, q.grad = torch.tensor([0.3, 0.1, -1.0]), torch.tensor([0.3, 0.1, -1.0])
            auto.step()
            eager.step()
    assert_bitwise(p.detach(), q.detach())
    with pytest.raises(RuntimeError, match="fused=True: no C compiler found"):
        ASkewSGD([p], lr=0.1, fused=True).step()


def test_new_hyperparameters_build_nothing(monkeypatch, tmp_path, restore_kernels) -> None:
    fresh_kernels(monkeypatch, tmp_path, None)
    p = torch.nn.Parameter(torch.tensor([0.5, -0.2, 0.9]))
    opt = ASkewSGD([p], lr=0.1, eps=0.5, fused=True)
    for lr, eps in [(0.1, 0.5), (0.05, 0.1), (0.01, 1e-3)]:
        opt.param_groups[0].update(lr=lr, eps=eps)
        p.grad = torch.tensor([0.3, 0.1, -1.0])
        opt.step()
    assert len(list((tmp_path / "kernels").glob("*.so"))) == 1
    assert base._kernel.cache_info().misses == 1


def test_concurrent_first_builds_compile_once(monkeypatch, tmp_path, restore_kernels) -> None:
    log = tmp_path / "calls"
    cc = tmp_path / "counting-cc"
    cc.write_text(
        f'#!/bin/sh\ncase "$1" in --version) ;; *) echo x >> {log} ;; esac\nexec {kernels.compiler()[0]} "$@"\n'
    )
    cc.chmod(cc.stat().st_mode | stat.S_IEXEC)
    fresh_kernels(monkeypatch, tmp_path, str(cc))
    source = c_source(lambda e, k: {"w": (e["w"] * k["a"]).clamp(-1.0, 1.0)}, Spec(("w",), ("w",), scalars=("a",)), "t")
    libs, errors = [], []

    def build() -> None:
        try:
            libs.append(load_library(source, "t"))
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=build) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(libs) == 4
    assert log.read_text().count("x") == 1
    assert [f.suffix for f in (tmp_path / "kernels").iterdir() if not f.name.endswith(".lock")] == [".so"]


def test_a_failed_build_is_reported_in_one_line(monkeypatch, tmp_path, restore_kernels) -> None:
    fresh_kernels(monkeypatch, tmp_path, None)
    with pytest.raises(KernelUnavailable, match=r"building broken-\w+\.so with .* failed: .*error"):
        load_library("this is not C", "broken")


CLAMPS = {
    "tensor bounds": lambda e, k: {"w": e["w"].clamp(-k["top"], k["top"])},
    "scalar bound": lambda e, k: {"w": e["w"].clamp(min=k["s"])},
    "entry-wise bound": lambda e, k: {"w": e["w"].clamp(e["b"], k["top"])},
    "literal bounds": lambda e, k: {"w": e["w"].clamp(-1.0, 1.0)},
}


@pytest.mark.parametrize("nan_bound", [False, True], ids=["finite", "nan"])
@pytest.mark.parametrize("name", CLAMPS)
def test_clamp_matches_torch_bitwise_with_nan_and_signed_zero(name: str, nan_bound: bool) -> None:
    """As torch: a NaN entry (or entry-wise bound) gives NaN, a NaN bound makes every entry NaN, −0 stays −0."""
    nan = float("nan")
    w = torch.tensor([0.5, -0.0, 0.0, nan, float("inf"), -float("inf"), 2.0, -3.0, 1.0, -1.0] * 7)
    b = torch.linspace(-2, 0.5, len(w))
    b[::9] = nan
    top, s = (nan, nan) if nan_bound else (1.5, 0.25)
    spec = Spec(("w", "b"), ("w",), tensors=("top",), scalars=("s",))
    rule = CLAMPS[name]
    kernel = Kernel(rule, spec, f"clamp{list(CLAMPS).index(name)}")
    out = {}
    for path in ("eager", "c"):
        arrays = {"w": [w.clone()], "b": [b]}
        kernel.run(arrays, {"top": [torch.tensor(top)]}, {}, {"s": s}, path)
        out[path] = arrays["w"][0]
    reference = rule({"w": w, "b": b}, {"top": torch.tensor(top), "s": s})["w"]
    for got in out.values():  # NaN where torch has NaN (its payload aside), the same bits elsewhere
        assert torch.equal(got.isnan(), reference.isnan())
        assert_bitwise(got[~reference.isnan()], reference[~reference.isnan()])
    assert bool(reference.isnan().all()) == (nan_bound and name != "literal bounds")


def test_rules_that_branch_on_values_are_refused() -> None:
    def branching(e, k):
        return {"w": e["w"] if k["a"] > 0 else -e["w"]}

    with pytest.raises(TypeError, match="may not branch on a traced value"):
        c_source(branching, Spec(("w",), ("w",), scalars=("a",)), "b")


def test_compiled_path_one_graph_for_every_hyperparameter(monkeypatch) -> None:
    # the torch.compile path (CUDA's) captured on the CPU; the default backend (inductor) is exercised by make bench
    torch._dynamo.reset()
    monkeypatch.setattr(kernels, "COMPILE_BACKEND", "eager")
    rule = base._kernel(None, base.clip_unit, (), (), (), (), False, False, "step", True, False)
    kernel = Kernel(rule.fn, rule.spec, "compiled_test")
    ws = [torch.tensor([0.5, -0.9, 0.2]), torch.tensor([[0.1, 1.0], [-0.3, 0.0]])]
    eager = [w.clone() for w in ws]
    bufs, eager_bufs = [torch.zeros_like(w) for w in ws], [torch.zeros_like(w) for w in ws]
    gs = [torch.randn_like(w) for w in ws]
    from torch._dynamo.utils import counters

    counters.clear()
    for lr, mu in [(0.1, 0.9), (0.3, 0.5), (0.02, 0.0)]:
        k = {"momentum": mu}
        kernel.run({"w": ws, "g": gs, "momentum_buffer": bufs}, {}, {"step": [lr, lr]}, k, "compiled")
        kernel.run({"w": eager, "g": gs, "momentum_buffer": eager_bufs}, {}, {"step": [lr, lr]}, k, "eager")
    assert counters["stats"]["unique_graphs"] == 1
    for a, b in zip(ws, eager, strict=True):  # a product and a sum instead of torch's FMA: one rounding apart
        torch.testing.assert_close(a, b, rtol=2 * torch.finfo(a.dtype).eps, atol=1e-7)


def test_cache_directory_follows_the_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("QNNLAB_CACHE_DIR", str(tmp_path / "q"))
    assert kernels.kernel_dir() == tmp_path / "q" / "kernels"
    monkeypatch.delenv("QNNLAB_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert kernels.kernel_dir() == tmp_path / "xdg" / "qnnlab" / "kernels"
    assert os.path.basename(kernels.kernel_dir()) == "kernels"


def bop_direction(w, g, m, *, gamma):
    return 0 * g, m + gamma * (g - m)


def bop_flip(w, *, exp_avg, threshold):
    flip = (exp_avg.abs() > threshold) & (torch.sign(exp_avg) == torch.sign(w))
    return torch.where(flip, -w, w)


class Bop(base.QuantOptimizer):
    """The example of ``qnnlab.optim._base``'s docstring, as written there."""

    def __init__(self, params, lr=1.0, *, gamma=0.5, threshold=0.1, fused=None):
        super().__init__(
            params,
            {"gamma": gamma, "threshold": threshold},
            lr=lr,
            momentum=0.0,
            weight_decay=0.0,
            base="sgd",
            betas=(0.9, 0.999),
            adam_eps=1e-8,
            fused=fused,
        )

    def _rule(self, group, params, targets):
        for p in params:
            self._buffer(p, "exp_avg")
        scalars = {"gamma": group["gamma"], "threshold": group["threshold"]}
        return base.EntryRule(direction=bop_direction, project=bop_flip, scalars=scalars, state=("exp_avg",))


@pytest.mark.parametrize("fused", [False, True])
def test_the_documented_bop_example_flips_by_hand(fused: bool) -> None:
    # γ = 0.5: m⁺ = g/2 = (0.3, 0.3, −0.04, −0.3); |m⁺| > 0.1 and sign m⁺ = sign w flips the first and last
    p = torch.nn.Parameter(torch.tensor([1.0, -1.0, -1.0, -1.0]))
    p.grad = torch.tensor([0.6, 0.6, -0.08, -0.6])
    opt = Bop([p], fused=fused)
    opt.step()
    assert torch.equal(p.detach(), torch.tensor([-1.0, -1.0, -1.0, 1.0]))
    assert torch.equal(opt.state[p]["exp_avg"], torch.tensor([0.3, 0.3, -0.04, -0.3]))


def test_tensors_replaced_between_steps_are_followed() -> None:
    # the C call keeps its argument arrays between steps: a parameter's new storage and new grads must be seen
    runs = []
    for fused in (True, False):
        p = torch.nn.Parameter(torch.tensor([0.5, -0.2, 0.9, 0.1]))
        opt = ASkewSGD([p], lr=0.1, eps=0.1, fused=fused)
        for k in range(3):
            p.grad = torch.tensor([0.3, 0.1, -1.0, 0.2]) * (k + 1)
            opt.step()
            p.data = p.data.clone() * 0.5  # new storage, same parameter
        runs.append(p.detach())
    assert_bitwise(*runs)
