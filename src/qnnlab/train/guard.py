"""The divergence guard: is everything a run carries into the next epoch finite?

:func:`check_finite` is called once per epoch, at its end: the mini-batch losses (kept on the
device by the recorder), every parameter and every floating-point tensor of the optimizer's
state are reduced to one flag each on the device, and the flags are read back in a single
host sync (none per step). A non-finite value raises :class:`Diverged`, naming the epoch, the
first mini-batch whose loss was not finite (when one was) and the first parameter (or
optimizer state) holding a NaN or an infinity. An optimizer step that overflows outright (a
hyperparameter beyond the parameters' dtype, ``lr = 1e300`` in float32, which torch refuses
with a ``RuntimeError``) becomes the same one-line :class:`Diverged` (:func:`overflow`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.optim import Optimizer

__all__ = ["Diverged", "check_finite", "overflow"]


class Diverged(ArithmeticError):
    """A run whose loss, weights or optimizer state stopped being finite; ``str()`` is one line; ``run_id``: its
    run in the store (``None`` until :func:`qnnlab.fit` knows it)."""

    def __init__(self, message: str, run_id: int | None = None) -> None:
        super().__init__(message)
        self.run_id = run_id


def check_finite(model: nn.Module, optimizer: Optimizer, losses: Sequence[Tensor], epoch: int) -> None:
    """Raise :class:`Diverged` unless ``losses`` (the epoch's mini-batch losses), ``model``'s parameters and
    ``optimizer``'s floating-point state are all finite."""
    names = {id(p): n for n, p in model.named_parameters()}
    where: list[str] = []
    flags: list[Tensor] = []
    for name, p in model.named_parameters():
        where.append(f"parameter {name!r}")
        flags.append(torch.isfinite(p.detach()).all())
    for p, state in optimizer.state.items():
        for key, value in state.items():
            if isinstance(value, Tensor) and value.is_floating_point():
                where.append(f"optimizer state {key!r} of parameter {names.get(id(p), '?')!r}")
                flags.append(torch.isfinite(value).all().to(flags[0].device if flags else value.device))
    if losses:
        finite = torch.isfinite(torch.stack([x.detach().reshape(()) for x in losses]))
        # the index of the first non-finite loss, or len(losses): argmax finds the first True
        bad = torch.cat([~finite, torch.ones(1, dtype=torch.bool, device=finite.device)]).int().argmax()
        flags.append(bad.to(flags[0].device) if flags else bad)
    values = torch.stack([f.int() for f in flags]).tolist() if flags else []  # the one sync
    first_bad_loss = values.pop() if losses else 0
    broken = [w for w, ok in zip(where, values, strict=True) if not ok]
    if not broken and first_bad_loss == len(losses):
        return
    step = f", step {first_bad_loss + 1} of {len(losses)}" if first_bad_loss < len(losses) else ""
    what = broken[0] if broken else "the mini-batch loss"
    more = f" (and {len(broken) - 1} more)" if len(broken) > 1 else ""
    raise Diverged(f"diverged at epoch {epoch}{step}: {what} is not finite{more}")


def overflow(err: RuntimeError, model: nn.Module, optimizer: Optimizer, epoch: int, step: int) -> Diverged | None:
    """:class:`Diverged` for a ``RuntimeError`` of torch's float conversion overflowing in an optimizer step, naming
    the first parameter whose group has a hyperparameter beyond its dtype's range; ``None`` for any other error."""
    if "overflow" not in str(err):
        return None
    names = {id(p): n for n, p in model.named_parameters()}
    what = "a value overflowed in the optimizer step"
    for group in optimizer.param_groups:
        first = group["params"][0]
        big = [k for k, v in group.items() if isinstance(v, float) and abs(v) > torch.finfo(first.dtype).max]
        if big:
            name = names.get(id(first), "?")
            what = f"{big[0]} = {group[big[0]]:g} overflows {first.dtype} in the step of parameter {name!r}"
            break
    return Diverged(f"diverged at epoch {epoch}, step {step}: {what}")
