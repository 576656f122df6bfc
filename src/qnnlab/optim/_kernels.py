"""Entry-wise update rules, run three ways: eagerly (torch ops), as a C kernel (CPU), compiled (GPU).

An *entry-wise rule* is a Python function ``fn(e, k) -> dict`` of the entries ``e[name]`` of a few
same-shaped tensors and of hyperparameters ``k[name]``, written with torch's entry-wise operations
only: ``+ − × /``, comparisons, ``& | ~`` on masks, ``torch.where``, ``abs``, ``square``, ``sqrt``,
``reciprocal``, ``sign``, ``floor``, ``round``, ``clamp``/``clamp_min``/``clamp_max``,
``torch.minimum``/``maximum``, ``torch.isfinite``. It must not branch on a value (use
``torch.where``; a choice fixed for a whole run is a *static* option). A :class:`Kernel` runs it

- **eagerly**: ``fn`` is called on each tensor of the lists in turn; this is the reference;
- **as a C kernel** (CPU, float32/float64): ``fn`` is traced once with symbolic values
  (:class:`Sym`, through ``__torch_function__``) into straight-line C, one loop over each tensor's
  memory, compiled by the system C compiler into a shared library called on ``data_ptr()``; the
  loop has no branches (selects only) and distinct (``restrict``, ``ivdep``) arrays, so ``-O3
  -march=native`` vectorizes it for the machine's widest vectors (AVX2 with FMA on x86-64; gcc's
  ``-fopt-info-vec`` reports every kernel vectorized) with a scalar tail, and the library is
  cached per CPU (its flags are in the cache key); the argument arrays (pointers, sizes, floats)
  are allocated once per kernel and tensor sizes and refilled only when they change. The entries
  of a call (its tensors laid end to end) are cut into ranges for ``torch.get_num_threads()``
  threads, at least :data:`PER_THREAD` entries each, by an OpenMP loop: built with ``-fopenmp``,
  the library binds to the ``libgomp`` torch has loaded (one soname), so kernels and torch's own
  operations share one thread pool (and share its fork caveat: do not fork a process after it
  ran parallel work; with a torch on another threading runtime the system's ``libgomp`` keeps a
  pool of its own). Entries are independent, so every split gives the same bits;
- **compiled** (CUDA and other devices): ``torch.compile`` of the eager loop (Triton kernels).

Bitwise agreement. The C code does what torch does, operation by operation: each operation is
rounded to the tensor's dtype, a Python number meets a tensor as a value of the tensor's dtype,
arithmetic among Python numbers is double, ``clamp``/``minimum``/``maximum`` propagate NaN (a NaN bound too), ``round``
ties to even, ``sign(NaN) = 0``; ``torch.add(a, b, alpha=c)`` is one fused multiply-add, as
in torch's CPU kernels (so the SGD step ``torch.add(w, d, alpha=−γ)`` is torch's own to the bit);
otherwise the compiler may not contract ``a·b + c`` (``-ffp-contract=off``), and there is no
fast-math (vectorized, each lane does the same IEEE operations). So the C kernel equals the
eager path bit for bit; ``tests/optim/test_fused.py`` checks it on every branch of every rule.
(``lerp`` and ``addcmul`` are not covered.) The compiled path is not bitwise: inductor may
contract other multiply-adds, so it agrees to a few ulps of the dtype.

Random draws (stochastic BinaryConnect) are a slot ``u`` computed, not read: a counter-based hash of
a per-tensor key and the entry's index (:mod:`qnnlab.optim._draws`), the same function in torch
int64 operations on the eager path and in C.

Hyperparameters are runtime arguments of the kernel (and unspecialized floats under
``torch.compile``), so a new ``lr`` or ``ε`` never rebuilds anything; the arithmetic among them is
done once per call (per tensor where it involves a per-tensor value), outside the loop over entries.

Build and cache. A library is built once per source, compiler and platform, in
``$QNNLAB_CACHE_DIR`` (default ``$XDG_CACHE_HOME/qnnlab``, i.e. ``~/.cache/qnnlab``), under
``kernels/<name>-<hash>.so``; the hash covers the C source, the compiler's version line and flags,
the machine's CPU flags and torch's version. Concurrent first builds (pytest-xdist workers, several
runs) take a file lock and install the library by atomic rename, so none sees a half-written file.
The compiler is ``$CC``, else ``cc`` or ``gcc`` on the ``PATH``; without one the optimizers fall
back to the eager path with one warning (:mod:`qnnlab.optim._base`). A build of one method's
library takes about a second (``make bench`` measures it).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock
from torch import Tensor

from qnnlab.optim._draws import C_UNIFORM, uniform

__all__ = [
    "CFLAGS",
    "COMPILE_BACKEND",
    "Kernel",
    "KernelUnavailable",
    "Sym",
    "c_source",
    "compiler",
    "kernel_dir",
    "load_library",
]

CFLAGS = ("-O3", "-march=native", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math", "-fPIC", "-shared")
_C_TYPES = {torch.float32: "float", torch.float64: "double"}
COMPILE_BACKEND = "inductor"  # torch.compile's backend for the compiled path (Triton kernels on CUDA)
_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}
OPENMP = "-fopenmp"  # added to CFLAGS where the compiler has it (else each call runs in one thread)
PER_THREAD = 1 << 15  # entries per thread at least (torch's own grain size): a smaller step runs in one thread
ALIGN = 64  # split points are multiples of this many entries (no two threads write one cache line)


class KernelUnavailable(RuntimeError):
    """No C kernel here: no compiler, a failed build, or a dtype the kernels do not cover."""


# -- symbolic tracing ---------------------------------------------------------------------------------
# levels: 0 group scalar (double), 1 per-tensor scalar (double), 2 per-tensor tensor value (T), 3 entry (T)
_program: ContextVar[_Program] = ContextVar("qnnlab_kernel_program")


class _Program:
    def __init__(self) -> None:
        self.lines: list[list[str]] = [[], [], [], []]
        self.count = 0

    def emit(self, ctype: str, expr: str, level: int) -> Sym:
        name = f"v{self.count}"
        self.count += 1
        self.lines[level].append(f"{ctype} {name} = {expr};")
        return Sym(name, level, ctype)


def _const(x: Any) -> Sym:
    if isinstance(x, Sym):
        return x
    if isinstance(x, bool | int | float):
        v = float(x)
        if v != v:
            return Sym("NAN", 0, "double")
        return Sym(v.hex() if abs(v) != float("inf") else ("INFINITY" if v > 0 else "(-INFINITY)"), 0, "double")
    raise TypeError(f"an entry-wise rule used an unsupported value {x!r} ({type(x).__name__})")


def _literal(x: Sym) -> bool:
    """A number written into the source (the traced values are named ``x0``, ``t0``, ``f0``, ``s0``, ``v0`` …)."""
    return x.level == 0 and re.fullmatch(r"[a-z]\d+", x.name) is None


def _opaque(bound: Sym) -> Sym:
    """A group-level clamp bound as a value of the dtype the compiler cannot see through: with two constant bounds
    gcc threads one select into the other (seven vector instructions); opaque ones become ``max`` and ``min``."""
    if bound.level > 0:
        return bound
    return _program.get().emit("T", f"opaque_T((T){bound.name})", 0)


def _join(*xs: Sym) -> tuple[int, str]:
    """Level and C type of an arithmetic result: the tensor dtype ``T`` as soon as one operand has it."""
    level = max(x.level for x in xs)
    ctype = "T" if any(x.ctype == "T" for x in xs) else "double"
    return level, ctype


def _cast(x: Sym, ctype: str) -> str:
    return x.name if x.ctype == ctype else f"(({ctype}){x.name})"


class Sym:
    """A symbolic entry (or hyperparameter) of a traced rule: operations append C statements to the program."""

    __slots__ = ("ctype", "level", "name")
    dtype = None  # every value of a kernel has the tensors' dtype; ``x.to(x.dtype)`` is the identity

    def __init__(self, name: str, level: int, ctype: str) -> None:
        self.name, self.level, self.ctype = name, level, ctype

    # -- helpers
    def _arith(self, other: Any, op: str, reflected: bool = False) -> Sym:
        a, b = (_const(other), self) if reflected else (self, _const(other))
        level, ctype = _join(a, b)
        return _program.get().emit(ctype, f"{_cast(a, ctype)} {op} {_cast(b, ctype)}", level)

    def _compare(self, other: Any, op: str) -> Sym:
        a, b = self, _const(other)
        level, ctype = _join(a, b)
        if a.ctype == b.ctype == "int":
            ctype = "int"
        return _program.get().emit("int", f"{_cast(a, ctype)} {op} {_cast(b, ctype)}", level)

    def _logic(self, other: Any, op: str) -> Sym:
        b = _const(other)
        if self.ctype != "int" or b.ctype != "int":
            raise TypeError("& and | in an entry-wise rule combine masks (comparison results) only")
        return _program.get().emit("int", f"{self.name} {op} {b.name}", max(self.level, b.level))

    def _call(self, fn: str) -> Sym:
        _, ctype = _join(self)
        return _program.get().emit(ctype, f"{fn}_{ctype}({_cast(self, ctype)})", self.level)

    def _inplace(self, result: Sym) -> Sym:
        self.name, self.level, self.ctype = result.name, result.level, result.ctype
        return self

    def __bool__(self) -> bool:
        raise TypeError(
            "an entry-wise rule may not branch on a traced value: use torch.where, or make the choice a static option"
        )

    # -- operators
    def __add__(self, o: Any) -> Sym:
        return self._arith(o, "+")

    def __radd__(self, o: Any) -> Sym:
        return self._arith(o, "+", True)

    def __sub__(self, o: Any) -> Sym:
        return self._arith(o, "-")

    def __rsub__(self, o: Any) -> Sym:
        return self._arith(o, "-", True)

    def __mul__(self, o: Any) -> Sym:
        return self._arith(o, "*")

    def __rmul__(self, o: Any) -> Sym:
        return self._arith(o, "*", True)

    def __truediv__(self, o: Any) -> Sym:
        return self._arith(o, "/")

    def __rtruediv__(self, o: Any) -> Sym:
        return self._arith(o, "/", True)

    def __neg__(self) -> Sym:
        _, ctype = _join(self)
        return _program.get().emit(ctype, f"-{_cast(self, ctype)}", self.level)

    def __lt__(self, o: Any) -> Sym:
        return self._compare(o, "<")

    def __le__(self, o: Any) -> Sym:
        return self._compare(o, "<=")

    def __gt__(self, o: Any) -> Sym:
        return self._compare(o, ">")

    def __ge__(self, o: Any) -> Sym:
        return self._compare(o, ">=")

    def __eq__(self, o: Any) -> Sym:  # type: ignore[override]
        return self._compare(o, "==")

    def __ne__(self, o: Any) -> Sym:  # type: ignore[override]
        return self._compare(o, "!=")

    __hash__ = None  # type: ignore[assignment]

    def __and__(self, o: Any) -> Sym:
        return self._logic(o, "&")

    def __or__(self, o: Any) -> Sym:
        return self._logic(o, "|")

    def __invert__(self) -> Sym:
        if self.ctype != "int":
            raise TypeError("~ in an entry-wise rule negates a mask (a comparison result) only")
        return _program.get().emit("int", f"!{self.name}", self.level)

    # -- tensor methods
    def abs(self) -> Sym:
        return self._call("abs")

    __abs__ = abs

    def square(self) -> Sym:
        return self * self

    def sqrt(self) -> Sym:
        return self._call("sqrt")

    def reciprocal(self) -> Sym:
        return 1.0 / self if self.ctype == "double" else _const(1.0)._arith(self, "/")

    def floor(self) -> Sym:
        return self._call("floor")

    def round(self) -> Sym:
        return self._call("round")

    def sign(self) -> Sym:
        return self._call("sign")

    def isfinite(self) -> Sym:
        _, ctype = _join(self)
        return _program.get().emit("int", f"isfinite_{ctype}({self.name})", self.level)

    def clamp(self, min: Any = None, max: Any = None) -> Sym:
        bounds = [(_const(b), op) for b, op in ((min, "<"), (max, ">")) if b is not None]
        x = self
        # torch makes every entry NaN where a bound is NaN: x − z with z = NaN there and +0 otherwise (x − 0 is x,
        # −0 included), z computed once outside the loop; a literal bound is never NaN, an entry-wise one is a select
        held = [b for b, _ in bounds if b.level < 3 and not _literal(b)]
        if held:
            prog = _program.get()
            nan = prog.emit("int", " || ".join(f"{b.name} != {b.name}" for b in held), _join(*held)[0])
            x = x - prog.emit("T", f"{nan.name} ? (T)NAN : (T)0", nan.level)
        for b, op in bounds:
            entrywise = torch.maximum if op == "<" else torch.minimum
            x = entrywise(x, b) if b.level == 3 else x._select(_opaque(b), op)
        return x

    def _select(self, bound: Sym, op: str) -> Sym:
        # clamp as torch: NaN stays NaN (the comparison is false), the bound is cast to the dtype
        level, ctype = _join(self, bound)
        x, b = _cast(self, ctype), _cast(bound, ctype)
        return _program.get().emit(ctype, f"({x} {op} {b}) ? {b} : {x}", level)

    def clamp_min(self, min: Any) -> Sym:
        return self.clamp(min=min)

    def clamp_max(self, max: Any) -> Sym:
        return self.clamp(max=max)

    def clamp_(self, min: Any = None, max: Any = None) -> Sym:
        return self._inplace(self.clamp(min, max))

    def clamp_min_(self, min: Any) -> Sym:
        return self._inplace(self.clamp(min=min))

    def add_(self, o: Any) -> Sym:
        return self._inplace(self + o)

    def mul_(self, o: Any) -> Sym:
        return self._inplace(self * o)

    def sub_(self, o: Any) -> Sym:
        return self._inplace(self - o)

    def add(self, other: Any, *, alpha: Any = 1) -> Sym:
        """``self + alpha·other`` as torch computes it: one fused multiply-add (``alpha = 1``: a plain add)."""
        if isinstance(alpha, int | float) and alpha == 1:
            return self + other
        a, b, c = self, _const(other), _const(alpha)
        level, ctype = _join(a, b, c)
        return _program.get().emit(
            ctype, f"fma_{ctype}({_cast(c, ctype)}, {_cast(b, ctype)}, {_cast(a, ctype)})", level
        )

    def to(self, *args: Any, **kwargs: Any) -> Sym:
        return self  # every value of a kernel is of the tensors' dtype already

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.where:
            cond, a, b = (_const(x) for x in args)
            level, ctype = _join(cond, a, b)
            if level == 3 and ctype == "double":
                # torch.where of two Python numbers over a mask is a tensor of the default dtype (float32)
                a, b = (Sym(f"((float){x.name})", x.level, "float") for x in (a, b))
                ctype = "T"
            return _program.get().emit(ctype, f"{cond.name} ? {_cast(a, ctype)} : {_cast(b, ctype)}", level)
        if func is torch.add:
            return _const(args[0]).add(*args[1:], **kwargs)
        if func in (torch.minimum, torch.maximum):
            a, b = (_const(x) for x in args)
            level, ctype = _join(a, b)
            fn = "min" if func is torch.minimum else "max"
            return _program.get().emit(ctype, f"q{fn}_{ctype}({_cast(a, ctype)}, {_cast(b, ctype)})", level)
        unary = {
            torch.abs: Sym.abs,
            torch.sign: Sym.sign,
            torch.floor: Sym.floor,
            torch.round: Sym.round,
            torch.sqrt: Sym.sqrt,
            torch.isfinite: Sym.isfinite,
            torch.clamp: Sym.clamp,
            torch.square: Sym.square,
        }
        if func in unary:
            return unary[func](_const(args[0]), *args[1:], **kwargs)
        raise TypeError(f"an entry-wise rule used {getattr(func, '__name__', func)}, which the C kernels do not cover")


# -- C source --------------------------------------------------------------------------------------
_PRELUDE = f"""\
#include <float.h>
#include <math.h>
#include <stdint.h>
static inline int64_t split_point(int64_t total, int64_t k, int64_t parts) {{
  return k >= parts ? total : total * k / parts / {ALIGN} * {ALIGN};
}}
"""

_HELPERS = """\
static inline T abs_T(T x) { return FABS(x); }
static inline T sqrt_T(T x) { return SQRT(x); }
static inline T floor_T(T x) { return FLOOR(x); }
static inline T round_T(T x) { return NEARBYINT(x); }
static inline T sign_T(T x) { return x > 0 ? (T)1 : (x < 0 ? (T)-1 : (T)0); }  /* selects: foldable */
static inline int isfinite_T(T x) { return FABS(x) <= TMAX; }
static inline T fma_T(T a, T b, T c) { return FMA(a, b, c); }
static inline T opaque_T(T x) { volatile T v = x; return v; }
static inline T qmin_T(T a, T b) { return a != a ? a : (b != b ? b : (b < a ? b : a)); }
static inline T qmax_T(T a, T b) { return a != a ? a : (b != b ? b : (a < b ? b : a)); }
"""

_MATH = {
    torch.float32: {
        "FABS": "fabsf",
        "SQRT": "sqrtf",
        "FLOOR": "floorf",
        "NEARBYINT": "nearbyintf",
        "FMA": "fmaf",
        "TMAX": "FLT_MAX",
    },
    torch.float64: {
        "FABS": "fabs",
        "SQRT": "sqrt",
        "FLOOR": "floor",
        "NEARBYINT": "nearbyint",
        "FMA": "fma",
        "TMAX": "DBL_MAX",
    },
}


@dataclass(frozen=True)
class Spec:
    """The slots of a kernel: entry arrays read and written, per-tensor values, group scalars."""

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    tensors: tuple[str, ...] = ()  # one 0-d tensor of the dtype per tensor (e.g. a held grid step)
    floats: tuple[str, ...] = ()  # one Python float per tensor (e.g. the step size lr·c)
    scalars: tuple[str, ...] = ()  # one Python float per call
    draws: bool = False  # input "u" is not an array but drawn per entry under the float "draw_key"

    @property
    def arrays(self) -> tuple[str, ...]:
        """The slots that are arrays in memory: the inputs (but a drawn ``u``) and the outputs."""
        inputs = tuple(n for n in self.inputs if not (self.draws and n == "u"))
        return inputs + tuple(o for o in self.outputs if o not in self.inputs)


def _trace(fn: Callable, spec: Spec) -> tuple[list[list[str]], dict[str, Sym]]:
    prog = _Program()
    token = _program.set(prog)
    try:
        e = {n: Sym(f"x{j}", 3, "T") for j, n in enumerate(spec.inputs)}
        k = {n: Sym(f"t{j}", 2, "T") for j, n in enumerate(spec.tensors)}
        k |= {n: Sym(f"f{j}", 1, "double") for j, n in enumerate(spec.floats)}
        k |= {n: Sym(f"s{j}", 0, "double") for j, n in enumerate(spec.scalars)}
        out = fn(e, k)
    finally:
        _program.reset(token)
    if set(out) != set(spec.outputs):
        raise ValueError(f"rule returned {sorted(out)}, its spec declares {sorted(spec.outputs)}")
    return prog.lines, {n: _const(v) for n, v in out.items()}


def c_source(fn: Callable, spec: Spec, name: str) -> str:
    """The C source of ``fn``: one function ``<name>_f32`` and one ``<name>_f64``.

    ``void f(int64_t nt, const int64_t *numel, void *const *arrays, const void *const *tensors,
    const double *floats, const double *scalars, int64_t parts)``: ``arrays[t·A + j]`` points at
    tensor ``t``'s entries of array ``spec.arrays[j]``, ``tensors[t·K + j]`` at its 0-d value
    ``spec.tensors[j]``, ``floats[t·F + j]`` is its ``spec.floats[j]``. The ``nt`` tensors' entries,
    laid end to end, are cut into ``parts`` ranges (at multiples of ``ALIGN`` entries), one per OpenMP thread; an
    entry's draw index stays its index in its own tensor, so every split gives the same bits.
    """
    lines, out = _trace(fn, spec)
    arrays = spec.arrays
    pieces = [_PRELUDE]
    functions = []
    for dtype in (torch.float32, torch.float64):
        sub = {"T": _C_TYPES[dtype], **_MATH[dtype]}

        def typed(text: str, sub: dict[str, str] = sub) -> str:
            text = re.sub(r"\b(NEARBYINT|FLOOR|FABS|SQRT|FMA|TMAX)\b", lambda m: sub[m.group(1)], text)
            return re.sub(r"_T\b", f"_{sub['T']}", re.sub(r"\bT\b", sub["T"], text))

        fname = f"{name}_{_SUFFIX[dtype]}"
        signature = "(int64_t nt, const int64_t *numel, void *const *arrays, const void *const *tensors,"
        # not inlined into OpenMP's outlined loop, where gcc spills a vector register in it
        body = [f"static __attribute__((noinline)) void {fname}_range{signature}"]
        body.append("    const double *floats, const double *scalars,")
        body.append("    int64_t lo, int64_t hi) {")
        body += [f"  const double s{j} = scalars[{j}];" for j in range(len(spec.scalars))]
        body += [f"  {x}" for x in lines[0]]
        body.append("  int64_t base = 0;")  # entries [lo, hi) of the tensors laid end to end
        body.append("  for (int64_t t = 0; t < nt; ++t) {")
        body.append("    const int64_t start = lo > base ? lo - base : 0;")
        body.append("    const int64_t stop = hi - base < numel[t] ? hi - base : numel[t];")
        body.append("    base += numel[t];")
        body.append("    if (start >= stop) continue;")
        body += [f"    const double f{j} = floats[t * {len(spec.floats)} + {j}];" for j in range(len(spec.floats))]
        body += [
            f"    const T t{j} = *(const T *)tensors[t * {len(spec.tensors)} + {j}];" for j in range(len(spec.tensors))
        ]
        body += [f"    {x}" for x in lines[1] + lines[2]]
        for j, a in enumerate(arrays):
            const = "" if a in spec.outputs else "const "
            body.append(f"    {const}T *restrict a{j} = ({const}T *)arrays[t * {len(arrays)} + {j}];")
        body.append("    #pragma GCC ivdep")  # distinct arrays (restrict): vectorized without a runtime alias check
        body.append("    for (int64_t i = start; i < stop; ++i) {")
        for j, n in enumerate(spec.inputs):
            if spec.draws and n == "u":
                body.append(f"      const T x{j} = uniform_T((uint32_t)f{spec.floats.index('draw_key')}, i);")
            else:
                body.append(f"      const T x{j} = a{arrays.index(n)}[i];")
        body += [f"      {x}" for x in lines[3]]
        body += [f"      a{arrays.index(o)}[i] = {_cast(out[o], 'T')};" for o in spec.outputs]
        body += ["    }", "  }", "}", ""]
        body += [f"void {fname}{signature}", "    const double *floats, const double *scalars, int64_t parts) {"]
        body.append("  int64_t total = 0;")
        body.append("  for (int64_t t = 0; t < nt; ++t) total += numel[t];")
        body.append("  #pragma omp parallel for num_threads((int)parts) schedule(static, 1) if (parts > 1)")
        body.append("  for (int64_t k = 0; k < parts; ++k)")
        body.append(f"    {fname}_range(nt, numel, arrays, tensors, floats, scalars,")
        body.append("        split_point(total, k, parts), split_point(total, k + 1, parts));")
        body += ["}", ""]
        pieces.append(typed(_HELPERS + C_UNIFORM))  # the double helpers also serve the hyperparameters' arithmetic
        functions.append(typed("\n".join(body)))
    return "\n".join(pieces + functions)


# -- build and cache -------------------------------------------------------------------------------------
def kernel_dir() -> Path:
    """Where built kernels live: ``$QNNLAB_CACHE_DIR/kernels``, else ``$XDG_CACHE_HOME/qnnlab/kernels``."""
    root = os.environ.get("QNNLAB_CACHE_DIR")
    if root is None:
        root = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "qnnlab")
    return Path(root) / "kernels"


@functools.cache
def compiler() -> tuple[str, str]:
    """``(path, version line)`` of the C compiler (``$CC``, else ``cc``/``gcc``), or :class:`KernelUnavailable`."""
    names = [os.environ["CC"]] if os.environ.get("CC") else ["cc", "gcc"]
    for name in names:
        path = shutil.which(name)
        if path is None:
            continue
        try:
            version = subprocess.run([path, "--version"], capture_output=True, text=True, check=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            continue
        return path, version.stdout.splitlines()[0] if version.stdout else name
    raise KernelUnavailable(f"no C compiler found (tried {', '.join(names)}; set CC or install gcc)")


@functools.cache
def _machine() -> str:
    """The CPU's identity for ``-march=native``: its flags on Linux, the processor string elsewhere."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return f"{platform.machine()} {platform.processor()}"


def load_library(source: str, name: str) -> ctypes.CDLL:
    """Build ``source`` once (cached, locked, installed atomically) and load it."""
    cc, version = compiler()
    flags = " ".join([*CFLAGS, OPENMP])
    key = "\n".join([source, cc, version, flags, _machine(), torch.__version__, platform.platform()])
    directory = kernel_dir()
    path = directory / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:20]}.so"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path) + ".lock"):
            if not path.exists():
                _build(cc, source, path)
    return ctypes.CDLL(str(path))


def _build(cc: str, source: str, path: Path) -> None:
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        src, lib = Path(tmp) / "kernel.c", Path(tmp) / "kernel.so"
        src.write_text(source)
        for flags in ([*CFLAGS, OPENMP], list(CFLAGS)):  # without OpenMP the pragma is ignored: one thread
            done = subprocess.run([cc, *flags, "-o", str(lib), str(src), "-lm"], capture_output=True, text=True)
            if done.returncode == 0:
                break
        if done.returncode != 0:
            first = (done.stderr.strip().splitlines() or ["(no output)"])[0]
            raise KernelUnavailable(f"building {path.name} with {cc} failed: {first}")
        os.replace(lib, path)


# -- running ------------------------------------------------------------------------------------------
_PTR = ctypes.c_void_p
_ARGTYPES = [ctypes.c_int64, _PTR, _PTR, _PTR, _PTR, _PTR, ctypes.c_int64]


class Kernel:
    """An entry-wise rule ``fn(e, k) -> dict`` over the slots of ``spec``, runnable eagerly, in C or compiled."""

    def __init__(self, fn: Callable[[dict, dict], dict], spec: Spec, name: str) -> None:
        self.fn, self.spec, self.name = fn, spec, name
        self._c: dict[torch.dtype, Callable] | None = None
        self._compiled: Callable | None = None
        self._slots: dict[tuple, Tensor] = {}
        self._calls: dict[tuple, _Call] = {}

    def run(
        self,
        arrays: Mapping[str, Sequence[Tensor]],
        tensors: Mapping[str, Sequence[Tensor]],
        floats: Mapping[str, Sequence[float]],
        scalars: Mapping[str, float],
        path: str,
    ) -> None:
        """Apply the rule to every tensor; ``path`` is ``"eager"``, ``"c"`` or ``"compiled"``."""
        if path == "c":
            self._run_c(arrays, tensors, floats, scalars)
        elif path == "compiled":
            self._run_compiled(arrays, tensors, floats, scalars)
        else:
            self._run_eager(arrays, tensors, floats, scalars)

    def _run_compiled(self, arrays, tensors, floats, scalars) -> None:
        # hyperparameters ride in 0-d float64 tensors on the device, refilled in place each call (a kernel launch
        # with the value as argument, no host sync): torch.compile then never specializes on a value
        device = arrays[self.spec.inputs[0]][0].device
        if self._compiled is None:
            self._compiled = torch.compile(self._run_eager, fullgraph=True, backend=COMPILE_BACKEND)
        hyper = {n: self._slot(device, n).fill_(v) for n, v in scalars.items()}
        per_tensor = {n: [self._slot(device, n, i).fill_(v) for i, v in enumerate(vs)] for n, vs in floats.items()}
        self._compiled(dict(arrays), dict(tensors), per_tensor, hyper)

    def _slot(self, device: torch.device, name: str, index: int = -1) -> Tensor:
        key = (device, name, index)
        if key not in self._slots:
            self._slots[key] = torch.zeros((), dtype=torch.float64, device=device)
        return self._slots[key]

    def _run_eager(self, arrays, tensors, floats, scalars) -> None:
        spec = self.spec
        for i in range(len(arrays[spec.inputs[0]])):
            e = {n: arrays[n][i] for n in spec.arrays if n in spec.inputs}
            if spec.draws:
                e["u"] = uniform(floats["draw_key"][i], e["w"])
            k = {**scalars, **{n: tensors[n][i] for n in spec.tensors}, **{n: floats[n][i] for n in spec.floats}}
            out = self.fn(e, k)
            for n in spec.outputs:
                arrays[n][i].copy_(out[n])

    def c_functions(self) -> dict[torch.dtype, Callable]:
        """The built C functions by dtype (built on first use; :class:`KernelUnavailable` if it cannot be)."""
        if self._c is None:
            lib = load_library(c_source(self.fn, self.spec, self.name), self.name)
            fns = {}
            for dtype, suffix in _SUFFIX.items():
                f = getattr(lib, f"{self.name}_{suffix}")
                f.argtypes, f.restype = _ARGTYPES, None
                fns[dtype] = f
            self._c = fns
        return self._c

    def _run_c(self, arrays, tensors, floats, scalars) -> None:
        spec = self.spec
        rows = list(zip(*(arrays[n] for n in spec.arrays), strict=True))  # one row of arrays per tensor
        back = []
        if not all(t.is_contiguous() for row in rows for t in row):
            dense = [tuple(t.contiguous() for t in row) for row in rows]
            outputs = [j for j, n in enumerate(spec.arrays) if n in spec.outputs]
            back = [(row[j], d[j]) for row, d in zip(rows, dense, strict=True) for j in outputs if d[j] is not row[j]]
            rows = dense
        ptrs = [t.data_ptr() for row in rows for t in row]
        ptrs += [tensors[n][i].data_ptr() for i in range(len(rows)) for n in spec.tensors]
        key = (rows[0][0].dtype, *(row[0].numel() for row in rows))
        call = self._calls.get(key)
        if call is None:
            if len(self._calls) >= _CALLS_KEPT:
                self._calls.clear()
            fn = self.c_functions()[rows[0][0].dtype]
            call = self._calls[key] = _Call(fn, key[1:], len(rows[0]), len(spec.tensors), spec)
        call(
            ptrs,
            [float(floats[n][i]) for i in range(len(rows)) for n in spec.floats],
            [float(scalars[n]) for n in spec.scalars],
        )
        for t, d in back:
            t.copy_(d)


_CALLS_KEPT = 16  # argument sets kept per kernel (one per dtype and tensor sizes)


class _Call:
    """The argument arrays of one kernel for one list of tensor sizes, allocated once and refilled in place.

    A call compares its pointers and floats with the previous call's and rewrites only what changed
    (a parameter replaced, a new ``.grad``, a new ``lr``), so a step allocates nothing.
    """

    __slots__ = ("args", "fn", "last", "split", "total")

    def __init__(self, fn: Callable, numel: tuple[int, ...], per_row: int, held: int, spec: Spec) -> None:
        nt = len(numel)
        self.fn, self.split, self.last, self.total = fn, nt * per_row, None, sum(numel)
        self.args = (
            nt,
            (ctypes.c_int64 * max(1, nt))(*numel),
            (_PTR * max(1, nt * per_row))(),
            (_PTR * max(1, nt * held))(),
            (ctypes.c_double * max(1, nt * len(spec.floats)))(),
            (ctypes.c_double * max(1, len(spec.scalars)))(),
        )

    def __call__(self, ptrs: list[int], floats: list[float], scalars: list[float]) -> None:
        if self.last != (ptrs, floats, scalars):
            _, _, arrays, held, f, s = self.args
            arrays[: self.split], held[: len(ptrs) - self.split] = ptrs[: self.split], ptrs[self.split :]
            f[: len(floats)], s[: len(scalars)] = floats, scalars
            self.last = (ptrs, floats, scalars)
        self.fn(*self.args, thread_parts(self.total, torch.get_num_threads()))


def thread_parts(total: int, threads: int) -> int:
    """How many ranges a call over ``total`` entries is cut into: at most one per thread, each ≥ ``PER_THREAD``."""
    return max(1, min(threads, total // PER_THREAD))
