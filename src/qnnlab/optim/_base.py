"""Shared skeleton of qnnlab's optimizers: direction → base step → projection, fused into one pass.

Every method is a :class:`torch.optim.Optimizer` whose ``step`` does, per param group,

1. ``d = direction(w, g)``: the method's search direction (the plain gradient by default);
2. ``u = base(d)``: the base step, SGD (``d ← d + λw`` for weight decay, heavy-ball momentum
   ``b ← μb + d``, ``u = b``) or torch's own Adam (``torch.optim.adam.adam``, its fused kernel where
   torch has one for the device and dtype, else foreach);
3. ``w ← w − γc·u``: ``γ`` is the group's ``lr`` and ``c`` an optional per-tensor scale;
4. ``project``: the method's map back onto its domain (a box clip, a re-binarization, ...).

A method states steps 1 and 4 **once**, as an entry-wise :class:`EntryRule` (:meth:`QuantOptimizer._rule`).
:mod:`qnnlab.optim._kernels` runs the whole SGD/momentum step — direction, base step and
projection — as one pass over each parameter's memory: a C kernel on the CPU (float32/float64),
``torch.compile`` (Triton) on CUDA. With Adam the direction and the projection are each one pass,
around torch's fused Adam; so they are around torch's SGD when the projection reads per-tensor
statistics of the stepped weights (``EntryRule.project_stats``: ProxQuant's ternary and k-bit
grids). The eager path runs the same rule with torch operations and is the reference; the C
kernel equals it bit for bit (``tests/optim/test_fused.py``). ``fused`` chooses,
per group, as torch's ``foreach``/``fused`` flags do: ``None`` (default) takes the fused path where
it is available and otherwise the eager one, with one warning naming why (no C compiler, a dtype
the C kernels do not cover such as bfloat16, no Triton); ``True`` insists (an error where it is not
available); ``False`` runs eagerly. Groups with ``constrained = False`` (biases, norms) and groups
whose rule is trivial take torch's own ``sgd``/``adam`` (foreach or fused). No step reads a tensor
on the host.

:meth:`QuantOptimizer.quantize` gives the point ``Q(w)`` each weight is judged at and the
per-tensor scale of its grid (:mod:`qnnlab.quant.tensor_grids`); methods that train for a grid
of their own override :meth:`QuantOptimizer._grid`.

Adding a method, for example Bop (:mod:`qnnlab.optim.bop`; Helwegen et al., NeurIPS 2019: flip ``sign w``
where an exponential moving average ``m`` of the gradient exceeds a threshold ``τ`` and agrees in sign with ``w``):

1. write the entry-wise functions with torch operations (the ones :mod:`qnnlab.optim._kernels`
   lists; no branching on values): ``direction(w, g, *state, **hyper)`` returning ``d`` or
   ``(d, *state)``, and ``project(w, **hyper)`` returning ``w`` (or ``(w, param)`` when the parameter
   shows a function of a latent, as BinaryConnect's ``sign``). Hyperparameters and state buffers are
   keyword-only and passed by name. Bop::

       def bop_momentum(w, g, grad_avg, *, gamma):
           return 0 * w, grad_avg + gamma * (g - grad_avg)  # no gradient step; m⁺ = (1 − γ)m + γg

       def bop_flip(w, *, grad_avg, threshold):
           return torch.where(grad_avg * w > threshold, -w, w)  # |m| > τ and sign m = sign w, for w = ±1

2. subclass :class:`QuantOptimizer` and return the rule from ``_rule``, with the group's current
   hyperparameters in ``scalars`` (runtime arguments: a new value rebuilds nothing) and choices that
   change the formula in ``static``:
   ``EntryRule(direction=bop_momentum, project=bop_flip, scalars={"gamma": ..., "threshold": ...},
   state=("grad_avg",))`` (create ``state[p]["grad_avg"]`` in ``_rule`` if it is missing);
3. register it in :mod:`qnnlab.methods` and add it to ``CASES`` of ``tests/optim/test_fused.py``,
   which checks the fused path against the eager one, bit for bit, on every branch.

Non-entry-wise parts (a QP over all violated constraints, per-tensor statistics) go in
``EntryRule.direction_lists`` / ``project_lists``, which run eagerly on lists of tensors.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor
from torch.optim import Optimizer
from torch.optim.adam import adam as torch_adam
from torch.optim.optimizer import _global_optimizer_post_hooks, _global_optimizer_pre_hooks
from torch.optim.sgd import sgd as torch_sgd
from torch.utils.weak import WeakIdKeyDictionary

from qnnlab.optim._draws import stream_key
from qnnlab.optim._kernels import Kernel, KernelUnavailable, Spec
from qnnlab.quant.tensor_grids import default_grid

__all__ = [
    "BASES",
    "EntryRule",
    "QuantOptimizer",
    "check_nonnegative",
    "check_positive",
    "clip_unit",
    "flat_map",
]

BASES = ("sgd", "adam")


def check_positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"Invalid {name}: {value}; must be > 0")


def check_nonnegative(name: str, value: float) -> None:
    if not value >= 0:
        raise ValueError(f"Invalid {name}: {value}; must be >= 0")


def clip_unit(w: Tensor) -> Tensor:
    """``clip(w, −1, 1)`` entry-wise."""
    return w.clamp(-1.0, 1.0)


def flat_map(fn, *tensor_lists: list[Tensor]):
    """Apply an entry-wise ``fn`` to the concatenation of each list, split back to shapes.

    One flat tensor per group means a fixed number of kernels whatever the layer count.
    When ``fn`` returns a tuple of flat tensors, a tuple of lists comes back.
    """
    first = tensor_lists[0]
    sizes = [t.numel() for t in first]
    out = fn(*(torch.cat([t.reshape(-1) for t in ts]) for ts in tensor_lists))

    def unflatten(flat: Tensor) -> list[Tensor]:
        return [o.view_as(t) for o, t in zip(flat.split(sizes), first, strict=True)]

    return tuple(unflatten(o) for o in out) if isinstance(out, tuple) else unflatten(out)


def _hooks_when_listened(step: Callable[..., Any]) -> Callable[..., Any]:
    """``step`` wrapped as :meth:`torch.optim.Optimizer.profile_hook_step` wraps it (the step pre- and post-hooks,
    global and the optimizer's, and the profiler's ``Optimizer.step#...`` range), but only while a hook is
    registered or a profiler records: otherwise the plain call. torch opens that range on every step, which
    costs about a tenth of a small model's whole training step; marked ``hooked``, so torch does not wrap
    it again."""
    hooked = Optimizer.profile_hook_step(step)

    @functools.wraps(step)
    def wrapper(self: Optimizer, *args: Any, **kwargs: Any) -> Any:
        if (
            self._optimizer_step_pre_hooks
            or self._optimizer_step_post_hooks
            or _global_optimizer_pre_hooks
            or _global_optimizer_post_hooks
            or torch.autograd.profiler._is_profiler_enabled
        ):
            return hooked(self, *args, **kwargs)
        return step(self, *args, **kwargs)

    wrapper.hooked = True  # type: ignore[attr-defined]
    return wrapper


@dataclass(frozen=True)
class EntryRule:
    """A constrained group's update, entry-wise (see "Adding a method" in the module docstring).

    Attributes:
        direction: ``(w, g, *state, **hyper) -> d | (d, *state)``, or ``None`` for ``d = g``.
        project: ``(w, [u,] **hyper) -> w | (w, param)``, or ``None`` for no projection.
        scalars: runtime hyperparameters (Python floats), passed by keyword to the functions naming them.
        static: compile-time options (hashable), passed the same way; each value builds its own kernel.
        tensors: one 0-d tensor per parameter (e.g. a held grid step), passed by keyword.
        state: names of per-entry buffers in ``optimizer.state[p]`` that ``direction`` reads and returns.
        draws: ``project`` also receives ``u ∈ [0, 1)`` per entry, a counter-based draw
            (:mod:`qnnlab.optim._draws`) keyed by ``group["seed"]``, the tensor's position in the group and
            its number of draws so far (``state[p]["draws"]``): no generator state, the same on every path.
        param: ``project`` returns ``(target, param)``: the targets are latents, the parameters show a function of them.
        project_stats: per-tensor statistics of the targets after the base step, ``targets -> {name: [0-d
            tensor per target]}``, passed to ``project`` by name as ``tensors`` are (eager; the projection
            then is its own pass after the base step, e.g. ProxQuant's ternary threshold and scale).
        direction_lists: a non-entry-wise direction ``(targets, grads) -> dirs`` applied first (eager).
        project_lists: a non-entry-wise projection ``(params, targets) -> None`` applied last (eager).
    """

    direction: Callable[..., Any] | None = None
    project: Callable[..., Any] | None = None
    scalars: Mapping[str, float] = field(default_factory=dict)
    static: Mapping[str, Hashable] = field(default_factory=dict)
    tensors: Mapping[str, list[Tensor]] = field(default_factory=dict)
    state: tuple[str, ...] = ()
    draws: bool = False
    param: bool = False
    project_stats: Callable[[list[Tensor]], dict[str, list[Tensor]]] | None = None
    direction_lists: Callable[[list[Tensor], list[Tensor]], list[Tensor]] | None = None
    project_lists: Callable[[list[Tensor], list[Tensor]], None] | None = None


def _keywords(fn: Callable | None) -> tuple[str, ...]:
    if fn is None:
        return ()
    return tuple(n for n, p in inspect.signature(fn).parameters.items() if p.kind is p.KEYWORD_ONLY)


def _axpy(x: Tensor, y: Tensor, a: float | Tensor) -> Tensor:
    """``x + a·y``: one fused multiply-add as in torch's SGD; a product and a sum when ``a`` is a tensor (compiled)."""
    return x + a * y if isinstance(a, Tensor) else torch.add(x, y, alpha=a)


@functools.cache
def _kernel(
    direction: Callable | None,
    project: Callable | None,
    static: tuple[tuple[str, Hashable], ...],
    scalars: tuple[str, ...],
    tensors: tuple[str, ...],
    state: tuple[str, ...],
    draws: bool,
    param: bool,
    stage: str,
    momentum: bool,
    weight_decay: bool,
) -> Kernel:
    """The kernel of one rule at one stage: ``"step"`` (direction, SGD/momentum step, projection) or one part."""
    fixed = dict(static)
    direction_kw, project_kw = _keywords(direction), _keywords(project)

    def rule(e: dict, k: dict) -> dict:
        k = {**k, **fixed}
        out = {}
        w = e["w"]
        if stage != "project":
            d = e["g"]
            if direction is not None:
                r = direction(w, d, *(e[s] for s in state), **{n: k[n] for n in direction_kw})
                d, *new = r if isinstance(r, tuple) else (r,)
                out.update(zip(state, new, strict=True))
                k.update(zip(state, new, strict=True))
            if stage == "direction":
                return {**out, "d": d}
            # as torch.optim.SGD computes it, to the bit: fused multiply-adds for decay and step
            if weight_decay:
                d = _axpy(d, w, k["weight_decay"])
            if momentum:
                d = e["momentum_buffer"] * k["momentum"] + d
                out["momentum_buffer"] = d
            w = _axpy(w, d, -k["step"])
        else:
            k.update({s: e[s] for s in state})
        if project is not None:
            r = project(w, *([e["u"]] if draws else []), **{n: k[n] for n in project_kw})
            w, out["p"] = r if param else (r, None)
            if not param:
                del out["p"]
        return {**out, "w": w}

    base = ("momentum",) * momentum + ("weight_decay",) * weight_decay
    key = ("draw_key",) * draws
    if stage == "project":
        spec = Spec(("w", *state, *(("u",) * draws)), ("w", *(("p",) * param)), tensors, key, scalars, draws)
    elif stage == "direction":
        spec = Spec(("w", "g", *state), ("d", *state), tensors, (), scalars)
    else:
        inputs = ("w", "g", *(("momentum_buffer",) * momentum), *state, *(("u",) * draws))
        outputs = ("w", *(("momentum_buffer",) * momentum), *state, *(("p",) * param))
        spec = Spec(inputs, outputs, tensors, ("step", *key), scalars + base, draws)
    parts = [f.__name__ for f in (direction, project) if f is not None]
    name = "_".join([*parts, stage, *(("m",) * momentum), *(("wd",) * weight_decay)])
    return Kernel(rule, spec, "".join(c if c.isalnum() else "_" for c in name))


_WARNED: set[str] = set()


def _warn_once(reason: str) -> None:
    if reason not in _WARNED:
        _WARNED.add(reason)
        warnings.warn(f"qnnlab: fused optimizer step unavailable ({reason}); using the eager path", stacklevel=4)


def _has_triton(device: torch.device) -> bool:
    try:
        from torch.utils._triton import has_triton
    except ImportError:
        return False
    return device.type == "cuda" and has_triton()


class QuantOptimizer(Optimizer):
    """Base class; subclasses override :meth:`_rule`, and :meth:`_targets` when they train a latent."""

    #: the path of groups with ``fused=None``: ``None`` chooses (fused where available), ``True``/``False`` force it
    fused_default: ClassVar[bool | None] = None

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        method_defaults: dict[str, Any],
        *,
        lr: float,
        momentum: float,
        weight_decay: float,
        base: str,
        betas: tuple[float, float],
        adam_eps: float,
        fused: bool | None = None,
    ) -> None:
        """Validate the base-step hyperparameters and register them beside the method's own."""
        check_positive("learning rate", lr)
        check_nonnegative("momentum", momentum)
        check_nonnegative("weight_decay", weight_decay)
        if base not in BASES:
            raise ValueError(f"Invalid base: {base!r}; choose from: {', '.join(BASES)}")
        beta1, beta2 = betas
        if not (0 <= beta1 < 1 and 0 <= beta2 < 1):
            raise ValueError(f"Invalid betas: {betas}; each must be in [0, 1)")
        check_positive("adam_eps", adam_eps)
        if fused not in (None, True, False):
            raise ValueError(f"Invalid fused: {fused!r}; choose from: None, True, False")
        defaults = dict(
            lr=lr, momentum=momentum, weight_decay=weight_decay, base=base, betas=betas, adam_eps=adam_eps, fused=fused
        )
        super().__init__(params, {**defaults, "constrained": True, **method_defaults})
        self._scratch: WeakIdKeyDictionary = WeakIdKeyDictionary()

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("fused", None)
        self._scratch = WeakIdKeyDictionary()

    # -- hooks ------------------------------------------------------------------------
    def _targets(self, group: dict[str, Any], params: list[Tensor]) -> list[Tensor]:
        """The tensors the update is applied to (the parameters themselves by default)."""
        return params

    def _rule(self, group: dict[str, Any], params: list[Tensor], targets: list[Tensor]) -> EntryRule:
        """The update of a constrained group with these parameters and targets (trivial by default)."""
        return EntryRule()

    def _scales(self, group: dict[str, Any], params: list[Tensor]) -> list[float] | None:
        """Per-tensor learning-rate multipliers, or ``None`` for all ones."""
        return None

    def _grid(self, group: dict[str, Any], params: list[Tensor], bits: int) -> tuple[list[Tensor], Tensor]:
        """``(Q(w), s)`` of a constrained group's parameters (default: the ``default_grid`` of ``bits``)."""
        return default_grid([self.latent(p) for p in params], bits)

    def latent(self, p: Tensor) -> Tensor:
        """The continuous weight behind parameter ``p`` (``p`` itself by default)."""
        return p

    @torch.no_grad()
    def quantize(self, params: list[Tensor], bits: int) -> tuple[list[Tensor], Tensor]:
        """``(Q(w), s)``: the point each parameter's continuous weight is judged at, and its grid's scale.

        ``Q(w)/s`` is a level of ``get_grid(bits)`` (:mod:`qnnlab.quant.tensor_grids`); ``s`` has one
        entry per parameter. Each parameter is quantized as its param group's method prescribes.
        """
        wanted = {id(p): i for i, p in enumerate(params)}
        q: list[Tensor | None] = [None] * len(params)
        scales: list[Tensor | None] = [None] * len(params)
        for group in self.param_groups:
            mine = [p for p in group["params"] if id(p) in wanted]
            trained = group.get("bits")  # a method that trains for one grid is judged on that one only
            if mine and trained is not None and trained != bits:
                raise ValueError(
                    f"this {type(self).__name__} group trains for bits={trained}; it cannot be judged on bits={bits}"
                )
            if mine:
                qs, ss = self._grid(group, mine, bits)
                for p, qp, sp in zip(mine, qs, ss.unbind(), strict=True):
                    q[wanted[id(p)]], scales[wanted[id(p)]] = qp, sp
        if any(t is None for t in q):
            raise ValueError("quantize: every parameter must belong to one of the optimizer's param groups")
        return q, torch.stack(scales)

    # -- step ---------------------------------------------------------------------------
    @_hooks_when_listened
    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            steps = [group["lr"]] * len(params)
            if not group["constrained"]:
                self._torch_base(group, params, params, grads, steps)
                continue
            targets = self._targets(group, params)
            rule = self._rule(group, params, targets)
            scales = self._scales(group, params)
            if scales is not None:
                steps = [group["lr"] * c for c in scales]
            if rule.direction_lists is not None:
                grads = rule.direction_lists(targets, grads)
            entrywise = rule.direction is not None or rule.project is not None
            if group["base"] == "adam" or rule.project_stats is not None:
                if rule.direction is not None:
                    dirs = [self._scratch_for(p, g) for p, g in zip(params, grads, strict=True)]
                    self._entrywise(group, rule, "direction", params, {"w": targets, "g": grads, "d": dirs}, steps)
                    grads = dirs
                self._torch_base(group, params, targets, grads, steps)
                if rule.project is not None:
                    self._entrywise(group, rule, "project", params, {"w": targets}, steps)
            elif entrywise or scales is not None:
                self._entrywise(group, rule, "step", params, {"w": targets, "g": grads}, steps)
            else:
                self._torch_base(group, params, targets, grads, steps)
            if rule.project_lists is not None:
                rule.project_lists(params, targets)
        return loss

    def _project_now(self, group: dict[str, Any], params: list[Tensor], targets: list[Tensor]) -> None:
        """Apply the group's projection alone, eagerly (at construction and after loading a state)."""
        rule = self._rule(group, params, targets)
        if rule.project is not None:
            self._entrywise(group, rule, "project", params, {"w": targets}, [group["lr"]] * len(params), "eager")

    def _entrywise(
        self,
        group: dict[str, Any],
        rule: EntryRule,
        stage: str,
        params: list[Tensor],
        arrays: dict[str, list[Tensor]],
        steps: list[float],
        path: str | None = None,
    ) -> None:
        momentum = stage == "step" and group["momentum"] != 0
        decay = stage == "step" and group["weight_decay"] != 0
        tensors = rule.tensors
        if stage == "project" and rule.project_stats is not None:
            tensors = {**tensors, **rule.project_stats(arrays["w"])}
        kernel = _kernel(
            rule.direction if stage != "project" else None,
            rule.project if stage != "direction" else None,
            tuple(sorted(rule.static.items())),
            tuple(sorted(rule.scalars)),
            tuple(sorted(tensors)),
            rule.state,
            rule.draws and stage != "direction",
            rule.param and stage != "direction",
            stage,
            momentum,
            decay,
        )
        targets = arrays["w"]
        if momentum:
            arrays["momentum_buffer"] = [
                self._buffer(p, "momentum_buffer", t) for p, t in zip(params, targets, strict=True)
            ]
        for name in rule.state:
            arrays[name] = [self.state[p][name] for p in params]
        floats = {"step": steps}
        if kernel.spec.draws:
            floats["draw_key"] = self._draw_keys(group, params)
        if "p" in kernel.spec.outputs:
            arrays["p"] = params
        scalars = {**rule.scalars, "momentum": group["momentum"], "weight_decay": group["weight_decay"]}
        path = path or self._path(group, kernel, targets)
        kernel.run(arrays, tensors, floats, scalars, path)

    def _draw_keys(self, group: dict[str, Any], params: list[Tensor]) -> list[float]:
        """Each parameter's key of this step's draws (:func:`~qnnlab.optim._draws.stream_key`); counts the draw.

        The key depends on the group's seed, the parameter's position in the group and its draw count
        ``state[p]["draws"]`` only, so the same seed draws the same on every rank and a resumed run
        draws what the uninterrupted one did.
        """
        seed = group.setdefault("seed", torch.initial_seed())  # a group saved before seeds existed
        position = {id(p): j for j, p in enumerate(group["params"])}
        keys = []
        for p in params:
            state = self.state[p]
            count = state.get("draws", 0)
            keys.append(float(stream_key(seed, count, position[id(p)])))
            state["draws"] = count + 1
        return keys

    def _path(self, group: dict[str, Any], kernel: Kernel, tensors: list[Tensor]) -> str:
        """``"c"``, ``"compiled"`` or ``"eager"`` for this group (see the module docstring)."""
        fused = group["fused"] if group["fused"] is not None else self.fused_default
        if fused is False:
            return "eager"
        device, dtype = tensors[0].device, tensors[0].dtype
        if any(t.device != device or t.dtype != dtype for t in tensors):
            reason = "a param group mixes devices or dtypes"
        elif device.type == "cpu":
            if dtype not in (torch.float32, torch.float64):
                reason = f"the C kernels cover float32 and float64, not {dtype}"
            else:
                try:
                    kernel.c_functions()
                    return "c"
                except KernelUnavailable as err:
                    reason = str(err)
        elif _has_triton(device):
            return "compiled"
        else:
            reason = f"no Triton for torch.compile on {device.type}"
        if fused:
            raise RuntimeError(f"fused=True: {reason}")
        _warn_once(reason)
        return "eager"

    def _torch_base(
        self,
        group: dict[str, Any],
        params: list[Tensor],
        targets: list[Tensor],
        grads: list[Tensor],
        steps: list[float],
    ) -> None:
        """torch's own SGD (foreach) or Adam (fused where torch has it) on ``targets``, one call per step size."""
        for lr in dict.fromkeys(steps):
            idx = [i for i, s in enumerate(steps) if s == lr]
            ps, ts, gs = [params[i] for i in idx], [targets[i] for i in idx], [grads[i] for i in idx]
            if group["base"] == "adam":
                self._torch_adam(group, ps, ts, gs, lr)
            else:
                self._torch_sgd(group, ps, ts, gs, lr)

    def _torch_sgd(self, group: dict[str, Any], params: list[Tensor], targets, grads, lr: float) -> None:
        momentum = group["momentum"]
        if not momentum and not group["weight_decay"] and not any(g.is_sparse or g.is_complex() for g in grads):
            # what torch's foreach SGD runs here, without its grouping by device and dtype (half of a small step)
            torch._foreach_add_(targets, grads, alpha=-lr)
            return
        bufs = [self.state[p].get("momentum_buffer") for p in params] if momentum else [None] * len(params)
        torch_sgd(
            targets,
            grads,
            bufs,
            foreach=True,
            weight_decay=group["weight_decay"],
            momentum=momentum,
            lr=lr,
            dampening=0.0,
            nesterov=False,
            maximize=False,
        )
        if momentum:
            for p, b in zip(params, bufs, strict=True):
                self.state[p]["momentum_buffer"] = b

    def _torch_adam(self, group: dict[str, Any], params: list[Tensor], targets, grads, lr: float) -> None:
        beta1, beta2 = group["betas"]
        fused = all(t.is_floating_point() for t in targets)
        ms = [self._buffer(p, "exp_avg", t) for p, t in zip(params, targets, strict=True)]
        vs = [self._buffer(p, "exp_avg_sq", t) for p, t in zip(params, targets, strict=True)]
        torch_adam(
            targets,
            grads,
            ms,
            vs,
            [],
            [self._step_count(p, t) for p, t in zip(params, targets, strict=True)],
            foreach=None if fused else True,
            fused=fused or None,
            amsgrad=False,
            beta1=beta1,
            beta2=beta2,
            lr=lr,
            weight_decay=group["weight_decay"],
            eps=group["adam_eps"],
            maximize=False,
        )

    def _step_count(self, p: Tensor, like: Tensor) -> Tensor:
        """Adam's step count as torch keeps it: a float32 0-d tensor on the device (a Python int is converted)."""
        state = self.state[p]
        step = state.get("step", 0)
        if not torch.is_tensor(step) or step.device != like.device:
            state["step"] = torch.as_tensor(step, dtype=torch.float32).to(like.device)
        return state["step"]

    def _buffer(self, p: Tensor, name: str, like: Tensor | None = None) -> Tensor:
        state = self.state[p]
        if name not in state:
            state[name] = torch.zeros_like(p if like is None else like, memory_format=torch.preserve_format)
        return state[name]

    def _scratch_for(self, p: Tensor, like: Tensor) -> Tensor:
        """A buffer for the direction before torch's Adam, kept between steps (not optimizer state)."""
        buf = self._scratch.get(p)
        if buf is None or buf.shape != like.shape or buf.dtype != like.dtype or buf.device != like.device:
            buf = self._scratch[p] = torch.empty_like(like)
        return buf
