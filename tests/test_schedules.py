import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from qnnlab.schedules import EpochScheduler, annealed_eps, constant, inverse_power, lr_scheduler, step_decay


def test_constant() -> None:
    s = constant(0.3)
    assert [s(k) for k in (0, 1, 10_000)] == [0.3, 0.3, 0.3]


def test_step_decay_multiplies_at_each_milestone() -> None:
    s = step_decay(2.0, milestones=[30, 10], factor=0.5)
    assert [s(k) for k in (0, 9, 10, 29, 30, 100)] == [2.0, 2.0, 1.0, 1.0, 0.5, 0.5]


@pytest.mark.parametrize(
    ("power", "k", "expected"),
    [(1.0, 0, 0.1), (1.0, 100, 0.05), (1.0, 300, 0.025), (0.5, 300, 0.05), (0.5, 800, 0.1 / 3), (0.0, 50, 0.1)],
)
def test_inverse_power(power: float, k: int, expected: float) -> None:
    assert inverse_power(0.1, tau=100, power=power)(k) == pytest.approx(expected)


def test_annealed_eps_holds_then_decays_to_floor() -> None:
    s = annealed_eps(1.0, hold=2, decay=0.5, floor=0.1)
    assert [s(e) for e in range(7)] == [1.0, 1.0, 1.0, 0.5, 0.25, 0.125, 0.1]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: constant(0.0), "Invalid init: 0.0"),
        (lambda: step_decay(1.0, [5], 0.0), "Invalid factor: 0.0"),
        (lambda: step_decay(1.0, [-1], 0.5), r"Invalid milestones: \[-1\]"),
        (lambda: inverse_power(1.0, tau=0.0, power=1.0), "Invalid tau: 0.0"),
        (lambda: inverse_power(1.0, tau=1.0, power=-1.0), "Invalid power: -1.0"),
        (lambda: annealed_eps(1.0, 0, decay=1.5), r"Invalid decay: 1.5; must be in \(0, 1\]"),
        (lambda: annealed_eps(-1.0, 0, decay=0.5), "Invalid init: -1.0"),
    ],
)
def test_invalid_schedules(make, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_lr_scheduler_drives_groups_per_iteration() -> None:
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [p]}, {"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.4}], lr=0.2)
    sched = lr_scheduler(opt, inverse_power(0.2, tau=1, power=1))
    seen = []
    for _ in range(3):
        seen.extend(g["lr"] for g in opt.param_groups)
        opt.step()
        sched.step()
    assert seen == pytest.approx([0.2, 0.4, 0.1, 0.2, 0.2 / 3, 0.4 / 3])


def _groups() -> torch.optim.Optimizer:
    from qnnlab.optim import ASkewSGD

    w, b = torch.nn.Parameter(torch.zeros(2, 2)), torch.nn.Parameter(torch.zeros(2))
    return ASkewSGD([{"params": [w]}, {"params": [b], "constrained": False}], lr=0.1, eps=1.0)


def test_epoch_scheduler_writes_the_constrained_groups() -> None:
    opt = _groups()
    sched = EpochScheduler(opt, eps=annealed_eps(1.0, hold=1, decay=0.5, floor=0.2))
    seen = [opt.param_groups[0]["eps"]]
    for _ in range(4):
        sched.step()
        seen.append(opt.param_groups[0]["eps"])
    assert seen == [1.0, 1.0, 0.5, 0.25, 0.2]  # ε_e = 1 for e < 1, then max(0.5^(e−1), 0.2)
    assert opt.param_groups[1]["eps"] == 1.0  # the full-precision group keeps its value
    assert sched.get_last_values() == {"eps": 0.2} and sched.state_dict() == {"last_epoch": 4}
    sched.step(1)  # jump to an epoch
    assert opt.param_groups[0]["eps"] == 1.0 and sched.last_epoch == 1


@settings(max_examples=25)
@given(st.integers(0, 30), st.integers(0, 5), st.floats(0.05, 1.0))
def test_epoch_scheduler_state_round_trip(epochs: int, hold: int, decay: float) -> None:
    schedule = annealed_eps(1.0, hold, decay, 1e-4)
    opt, fresh = _groups(), _groups()
    sched = EpochScheduler(opt, eps=schedule)
    for _ in range(epochs):
        sched.step()
    again = EpochScheduler(fresh, eps=schedule)  # writes ε_0 ...
    again.load_state_dict(sched.state_dict())  # ... then the loaded epoch's value
    assert fresh.param_groups[0]["eps"] == opt.param_groups[0]["eps"] == schedule(epochs)
    sched.step()
    again.step()
    assert fresh.param_groups[0]["eps"] == opt.param_groups[0]["eps"]


def test_epoch_scheduler_refuses_a_key_the_optimizer_lacks() -> None:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ValueError, match="SGD has no hyperparameter 'eps' to schedule; its groups have: lr, momentum"):
        EpochScheduler(opt, eps=constant(0.1))
