import pytest
import torch

from qnnlab.schedules import annealed_eps, constant, inverse_power, lr_scheduler, step_decay


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
