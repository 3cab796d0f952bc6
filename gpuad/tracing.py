"""Traces and tracers: how one primitive call finds the transform that must see it.

Every transform call (grad, jvp, vmap, ...) opens a *trace* with its own level on a thread-local
stack. Its inputs become *tracers* of that trace. ``bind`` sends a primitive to the highest-level
trace among its arguments; that trace computes the primitive on the values one level down (by
binding again) and adds what its transform needs. A value from an outer level is a constant to an
inner one, which is what makes nested derivatives right (no perturbation confusion). With no tracer
among the arguments, ``bind`` evaluates the table entry on the raw arrays.
"""

from __future__ import annotations

import functools
import math
import threading
from typing import TYPE_CHECKING, Any, Callable, Iterator

from .backend import NAMESPACE_BY_TYPE, device_of, namespace_of, numpy_error_state
from .backend import to_numpy as backend_to_numpy
from .speedups import _CAN_POOL, BufferPool, pooled_call
from .uniform import Uniform

if TYPE_CHECKING:
    from .primitives import Primitive

__all__ = [
    "Aval", "Trace", "Tracer", "PrimalTracer", "bind", "top_trace", "to_numpy", "HigherOrderCall", "call_higher_order", "eager", "open_trace", "current_pool", "context_namespace", "innermost_trace", "LeakedTracerError", "ConcretizationError", "reuses_buffers",
]


class LeakedTracerError(RuntimeError):
    """A traced value was used after the transform that created it had returned."""


class ConcretizationError(TypeError):
    """A Python number (``float()``, ``if``, ...) was asked of a traced value that cannot give one
    faithfully: under jit its value is unknown until replay; under grad or jvp the number would
    silently drop the derivative that flows through it."""


def refuse_python_number(transform: str, what: str) -> Any:
    """Raise the error for ``float(x)`` (``what``) of a value that ``transform`` differentiates."""
    raise ConcretizationError(
        f"{what} of a value that {transform} is differentiating would turn it into a constant and "
        "silently drop its derivative. Keep it an array and use gpuad.numpy operations on it, or "
        f"write {what.replace('x', 'gpuad.stop_gradient(x)', 1)} if a constant is what you want"
    )


class Aval:
    """Shape, dtype and device of a value, without the value: what a rule may ask of an input
    whose data the tape chose not to keep."""

    __slots__ = ("shape", "dtype", "device", "xp")

    def __init__(self, shape: tuple[int, ...], dtype: Any, device: Any, xp: Any):
        self.shape = shape if type(shape) is tuple else tuple(shape)
        self.dtype = dtype
        self.device = device
        self.xp = xp

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @classmethod
    def of(cls, x: Any) -> "Aval":
        if isinstance(x, Tracer):
            return cls(x.shape, x.dtype, x.device, x._trace.xp)
        return cls(x.shape, x.dtype, device_of(x), namespace_of(x))

    def __repr__(self) -> str:
        return f"Aval({self.shape}, {self.dtype})"


class Trace:
    """One transform call. Subclasses implement ``process(prim, args, params)``."""

    def __init__(self, level: int, xp: Any, device: Any = None):
        self.level = level
        self.xp = xp
        self.device = device
        self.alive = True

    def process(self, prim: "Primitive", args: tuple[Any, ...], params: dict[str, Any]) -> Any:
        raise NotImplementedError

    def process_call(self, call: "HigherOrderCall") -> Any:
        """A call of a function with rules of its own (custom_jvp, custom_vjp) or a checkpoint:
        what this transform makes of it (see HigherOrderCall). By default the function runs as it
        is and its operations come to this trace one by one."""
        return call.run()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(level={self.level})"


class HigherOrderCall:
    """A call that transforms may treat as a whole rather than operation by operation: a
    custom_jvp or custom_vjp function, or a checkpointed one. Each transform's trace picks the
    method for it in ``process_call`` (forward mode ``jvp``, reverse mode ``reverse``, vmap
    ``batch``); each defaults to ``run``, the plain call. ``name`` is the name of the record reverse
    mode writes for it (a higher-order primitive: custom_jvp_call, custom_vjp_call, checkpoint)."""

    name = ""
    leaves: list[Any]  # the call's array operands, flat: what decides which trace sees it
    # Whether a recording (jit, a loop body) writes the call down as one operation that runs it
    # again on replay (loops), rather than recording its operations one by one.
    one_op = False

    def run(self) -> Any:
        raise NotImplementedError

    def again(self, leaves: list[Any]) -> "HigherOrderCall":
        """The same call on other operands (of the same shapes): what a recorded call replays."""
        raise NotImplementedError(f"{type(self).__name__} cannot be recorded as one operation")

    def jvp(self, trace: Trace) -> Any:
        return self.run()

    reverse = batch = jvp


def call_higher_order(call: HigherOrderCall, leaves: Any) -> Any:
    """Hand ``call`` to the innermost live trace among its arguments ``leaves`` (none: run it)."""
    top = top_trace(leaves)
    if top is None or not top.alive:
        return call.run()  # a leaked tracer among the arguments: the first operation says so
    return top.process_call(call)


class _TraceStack(threading.local):
    """The active transforms of this thread, innermost last, and the buffer pool of the outermost
    transformed function being called (see :func:`reuses_buffers`). The only mutable state of
    gpuad."""

    def __init__(self) -> None:
        self.traces: list[Trace] = []
        self.pool: BufferPool | None = None

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        # A transformed function pickled by value (Dask ships it to its workers) refers to the
        # stack: the unpickled one uses its own process's.
        return (_trace_stack, ())


def _trace_stack() -> _TraceStack:
    return _STACK


_STACK = _TraceStack()
_POOL_MIN_BYTES = BufferPool.MIN_BYTES


class open_trace:  # noqa: N801  (used as a function: ``with open_trace(...) as trace``)
    """Push a new trace of ``trace_cls`` for the duration of a transform call. (A class rather
    than a generator-based context manager: it is entered twice per transformed call.)"""

    __slots__ = ("trace", "stack")

    def __init__(self, trace_cls: type, xp: Any, **kwargs: Any):
        self.stack = _STACK.traces
        self.trace = trace_cls(len(self.stack), xp, **kwargs)

    def __enter__(self) -> Any:
        self.stack.append(self.trace)
        return self.trace

    def __exit__(self, *exc: Any) -> None:
        popped = self.stack.pop()
        assert popped is self.trace, "trace stack out of order"  # internal invariant, not user input
        self.trace.alive = False


def current_pool() -> BufferPool | None:
    """The buffer pool of the transformed function being called on this thread (None outside one)."""
    return _STACK.pool


def to_numpy(x: Any) -> Any:
    """A NumPy copy (or view) of any array (``backend.to_numpy``); a traced value is refused with
    a message that says where to call it."""
    if isinstance(x, Tracer):
        raise TypeError(
            "to_numpy() got a traced value; call it on the results of a transform, not inside "
            "the function being differentiated"
        )
    return backend_to_numpy(x)


def context_namespace() -> tuple[Any, Any] | None:
    """``(xp, device)`` of the innermost active transform, if any: where creation functions
    called inside a differentiated function put their arrays."""
    stack = _STACK.traces
    return (stack[-1].xp, stack[-1].device) if stack else None


def innermost_trace() -> "Trace | None":
    """The innermost active transform of this thread (None: none is active)."""
    stack = _STACK.traces
    return stack[-1] if stack else None


def top_trace(values: Any) -> "Trace | None":
    """The innermost trace among the traced ``values`` (None: all plain)."""
    top = None
    for a in values:
        if isinstance(a, Tracer):
            t = a._trace
            if top is None or t.level > top.level:
                top = t
    return top


def bind(prim: "Primitive", *args: Any, **params: Any) -> Any:
    """Apply ``prim`` to ``args``: through the innermost trace that owns one of them, or eagerly."""
    top = top_trace(args)
    if top is None:
        return eager(prim, args, params)
    if not top.alive:
        raise LeakedTracerError(
            f"{prim.name}: a traced value escaped from the transform ({top!r}) that created it, "
            "e.g. stored in a global or returned through a side channel. Return it from the "
            "function instead, or use gpuad.stop_gradient on it."
        )
    return top.process(prim, args, params)


def apply_below(below: Trace | None, prim: "Primitive", args: list[Any], params: dict[str, Any]) -> Any:
    """Apply ``prim`` one level down, where ``below`` is the highest trace among ``args`` (None:
    plain arrays): what ``bind`` would do, for a trace that has already looked at every argument."""
    if below is None:
        return eager(prim, args, params)
    if below.alive:
        return below.process(prim, args, params)
    return bind(prim, *args, **params)  # a leaked tracer: bind says what went wrong


def eager(prim: "Primitive", args: tuple[Any, ...] | list[Any], params: dict[str, Any]) -> Any:
    """Apply the table entry to plain arrays (a symbolic Uniform cotangent becomes its view)."""
    # The common case inline (every primitive applied to plain arrays passes here): array types
    # already seen, all of one library. Anything else goes through the checking lookup.
    xp = None
    for a in args:
        ns = NAMESPACE_BY_TYPE.get(type(a))
        if ns is None or (xp is not None and ns is not xp):
            xp = None
            break
        xp = ns
    if xp is None:
        if any(type(a) is Uniform for a in args):
            args = tuple(a.view() if type(a) is Uniform else a for a in args)
        xp = namespace_of(*args, op=prim.name)
    # NumPy's floating-point warnings name the user's line, not the impl's (backend.numpy_error_state):
    # compute under the error state derived from the user's current one (memoised; one swap of a
    # context variable per operation, none when the user warns of nothing or it is already ours).
    global _FP_STATES
    state = _FP_GET()
    known = _FP_STATES
    if state is known[0] or state is known[1]:
        ours = known[1]
    else:
        ours = _fp_ours(state)
        _FP_STATES = (state, ours)
    token = _FP_SET(ours) if ours is not state else None
    stack = _STACK
    try:
        if prim.ufunc is not None and not params and stack.pool is not None:
            for a in args:  # only large results are worth a pool buffer
                if getattr(a, "nbytes", 0) >= _POOL_MIN_BYTES:
                    out = pooled_call(stack.pool, xp, prim.ufunc, args)
                    if out is not None:
                        return out
                    break
        return prim.impl(xp, *args, **params)
    finally:
        if token is not None:
            _FP_RESET(token)


_FP = numpy_error_state()
if _FP is None:  # NumPy 1: no swap (the state is always None, and "ours" is it)
    _FP_GET, _FP_SET, _FP_RESET, _fp_ours = (lambda: None), None, None, (lambda state: state)
else:
    _FP_GET, _FP_SET, _FP_RESET, _fp_ours = _FP
# NumPy's error state last met by ``eager`` and the one it computes under: a memo, not state (any
# thread may replace it; both answers are right for the state they name).
_FP_STATES: tuple[Any, Any] = (None, None)


def reuses_buffers(transformed: Callable[..., Any]) -> Callable[..., Any]:
    """Give a transformed function a :class:`gpuad.speedups.BufferPool`: while it is called from
    outside any transform, the large NumPy results of elementwise operations and matrix products
    are written into buffers that earlier operations (of this call or of earlier calls) no longer
    use, instead of fresh memory. Nested calls use the outermost call's pool. A pool serves one
    call at a time; concurrent callers (threads) each take their own. The buffers go back to the
    system with the function object, or with ``release_buffers()``."""
    if not _CAN_POOL:
        return transformed
    idle: list[BufferPool] = []  # pools not in use by a call; list.pop/append are atomic

    @functools.wraps(transformed)
    def with_pool(*args: Any, **kwargs: Any) -> Any:
        stack = _STACK
        if stack.pool is not None or stack.traces:
            return transformed(*args, **kwargs)
        try:
            pool = idle.pop()
        except IndexError:
            pool = BufferPool()
        stack.pool = pool
        try:
            return transformed(*args, **kwargs)
        finally:
            stack.pool = None
            if not idle:  # one pool kept per function: concurrent extras are dropped
                idle.append(pool)

    def release_buffers() -> None:
        for pool in list(idle):
            pool.clear()

    def pool_stats() -> dict[str, int]:
        """Allocations made and saved by the kept pool (for tests and benchmarks)."""
        pools = list(idle)
        return {"fresh": sum(p.fresh for p in pools), "reused": sum(p.reused for p in pools),
                "bytes": sum(p.total for p in pools)}

    with_pool.release_buffers = release_buffers  # type: ignore[attr-defined]
    with_pool.buffer_stats = pool_stats  # type: ignore[attr-defined]
    return with_pool


class Tracer:
    """A value seen by a transform. Behaves like an array of the array API: ``shape``, ``dtype``,
    ``device``, operators, indexing and ``__array_namespace__`` (which gives ``gpuad.numpy``).

    Operators are installed by :mod:`gpuad.numpy`, next to the functions they call.
    """

    __slots__ = ("_trace",)

    # Until gpuad.numpy installs NumPy's protocols (gpuad/numpy/_numpy_protocols.py: np.sin(x),
    # np.sum(x) and ``M @ x`` with a NumPy array on the left become gpuad.numpy's functions), opt
    # out of NumPy's operator dispatch, so that NumPy never converts a traced value element by element.
    __array_ufunc__ = None
    __array_priority__ = 1000

    # Subclasses provide these.
    shape: tuple[int, ...]
    dtype: Any
    device: Any

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d traced array")
        return self.shape[0]

    def __iter__(self) -> Iterator[Any]:
        if not self.shape:
            raise TypeError("iteration over a 0-d traced array")
        return (self[i] for i in range(self.shape[0]))

    def _concrete(self) -> Any:
        """The plain array under this tracer when it is a plain value one level down all the way
        (as for integer and boolean results inside grad/jvp), else None."""
        return None

    def __array__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            "a traced value cannot be converted to a NumPy array inside a transform: use "
            "gpuad.numpy (or the array's __array_namespace__) for every operation on it, or "
            "gpuad.stop_gradient if the value is a constant"
        )

    def __setitem__(self, key: Any, value: Any) -> None:
        raise TypeError(
            "traced arrays are immutable inside a transform: use x.at[idx].set(v) (or .add, "
            ".multiply, .min, .max), which returns the updated array, instead of x[idx] = v; "
            "gpuad.numpy.where, concat or stack also build a result"
        )

    __hash__ = None  # type: ignore[assignment]  # == is elementwise, as for arrays

    def __repr__(self) -> str:
        return f"{type(self).__name__}<{self.dtype}{list(self.shape)}>(level={self._trace.level})"


class PrimalTracer(Tracer):
    """A value of a differentiating transform (forward.JVPTracer, reverse.ReverseTracer): its
    ``primal`` one level down, and what the transform adds to it. Control flow and ``int()`` see
    the primal, as in JAX's eager mode (the branch taken is part of what is differentiated);
    ``float``/``complex`` of a value being differentiated would silently drop its derivative
    and are refused."""

    __slots__ = ()
    transform = ""  # the transform's name, for messages

    def is_differentiated(self) -> bool:
        raise NotImplementedError

    @property
    def device(self) -> Any:
        return self._trace.device

    def _concrete(self) -> Any:
        p = self.primal  # type: ignore[attr-defined]
        return p._concrete() if isinstance(p, Tracer) else p

    def __bool__(self) -> bool:
        return bool(self.primal)  # type: ignore[attr-defined]

    def __float__(self) -> float:
        if self.is_differentiated():
            refuse_python_number(self.transform, "float(x)")  # host-ok: a refusal, no conversion
        return float(self.primal)  # type: ignore[attr-defined]  # host-ok: a Python number of a constant

    def __complex__(self) -> complex:
        if self.is_differentiated():
            refuse_python_number(self.transform, "complex(x)")
        return complex(self.primal)  # type: ignore[attr-defined]  # host-ok: as above

    def __int__(self) -> int:
        return int(self.primal)  # type: ignore[attr-defined]

    def __index__(self) -> int:
        return self.primal.__index__()  # type: ignore[attr-defined]
