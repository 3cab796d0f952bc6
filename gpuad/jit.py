"""``jit``: record the array operations of a (transformed) function once, replay them on new inputs.

The first call with a given signature (the tree of the arguments, and the shape, dtype and library
of every array) runs the function under a *staging* trace at the bottom of the trace stack: every
primitive that reaches plain arrays derived from the inputs is computed as usual and also written
down (the primitive, where its operands come from, its parameters). Whatever the transforms above
it do (grad's backward sweep, vmap's batching, jacfwd's tangent blocks, the symbolic cotangents)
ends as such a list of array operations. Later calls with the same signature skip Python tracing
altogether and run the list: one table ``impl`` call per operation, releasing each intermediate
after its last use. That removes the per-operation cost of the transforms, which is what dominates
at small batch sizes.

As in JAX, shapes are static and values are not: Python control flow on a traced value inside a
jitted function is an error (use ``gnp.where``, or make the argument static with
``static_argnums``). Arrays the function closes over are constants of the recording (later changes
to them in place are seen, as with any NumPy array shared by reference).
"""

from __future__ import annotations

import functools
import os
from collections import OrderedDict
from typing import Any, Callable, Sequence

from . import backend
from .compiler import lowering, toolchain
from .speedups import ufunc_with_out
from .primitives import Primitive
from .tracing import ConcretizationError, HigherOrderCall, Trace, Tracer, bind, open_trace, reuses_buffers
from .tree import tree_flatten, tree_unflatten
from .uniform import Uniform

_FP = backend.numpy_error_state()  # NumPy's error-state swap (get, set, reset, ours); None on NumPy 1

__all__ = ["jit", "ConcretizationError", "CACHE_SIZE"]


class StagedTracer(Tracer):
    """A value inside a jit recording: its value now, and the variable that will hold it on replay."""

    __slots__ = ("value", "var")

    def __init__(self, trace: "StagingTrace", value: Any, var: int):
        self._trace, self.value, self.var = trace, value, var

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.value.shape)

    @property
    def dtype(self) -> Any:
        return self.value.dtype

    @property
    def device(self) -> Any:
        return self._trace.device

    def _refuse(self, what: str) -> Any:
        raise ConcretizationError(f"{self._trace.who}: {what} needs the value of a traced array, {self._trace.advice}")

    def __bool__(self) -> bool:
        return self._refuse("a Python truth test (if/while/and/or)")

    def __float__(self) -> float:
        return self._refuse("float()")  # host-ok: a refusal, no conversion

    def __int__(self) -> int:
        return self._refuse("int()")

    def __index__(self) -> int:
        return self._refuse("using an array as a Python index")


class _Const:
    """An operand that does not depend on the inputs: kept by reference in the program."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value


class StagingTrace(Trace):
    """The bottom trace of a jit recording: computes each primitive and writes it down."""

    # For the error a Python number or truth test of a recorded value gets.
    who = "jit"
    advice = (
        "which is only known when the recorded program runs. Use gnp.where(cond, a, b) (or "
        "gpuad.lax.cond) instead of Python control flow, or mark the argument static with "
        "jit(f, static_argnums=...)"
    )

    def __init__(self, level: int, xp: Any, device: Any = None):
        super().__init__(level, xp, device)
        self.program: list[tuple[Any, tuple[Any, ...], dict[str, Any], Any]] = []
        self.n_vars = 0
        self.avals: list[Any] = []  # (shape, dtype) of every variable

    def new_var(self, value: Any) -> StagedTracer:
        self.n_vars += 1
        self.avals.append((tuple(value.shape), value.dtype) if hasattr(value, "shape") else None)
        return StagedTracer(self, value, self.n_vars - 1)

    def operand(self, a: Any) -> tuple[Any, Any]:
        """An operand's value now, and what the program reads for it (a variable, or a constant)."""
        if type(a) is Uniform:  # a symbolic cotangent: the program keeps its array view
            a = a.view()
        if type(a) is StagedTracer and a._trace is self:
            return a.value, a.var
        return a, _Const(a)

    def process(self, prim: Any, args: tuple[Any, ...], params: dict[str, Any]) -> Any:
        vals, refs = [], []
        for a in args:
            v, r = self.operand(a)
            vals.append(v)
            refs.append(r)
        out = bind(prim, *vals, **params)
        if isinstance(out, tuple):  # higher-order records (checkpoint, custom rules) give several
            tracers = tuple(self.new_var(o) for o in out)
            self.program.append((prim, tuple(refs), params, tuple(t.var for t in tracers)))
            return tracers
        tracer = self.new_var(out)
        self.program.append((prim, tuple(refs), params, tracer.var))
        return tracer

    def process_call(self, call: HigherOrderCall) -> Any:
        """A loop (``call.one_op``) is written down as one operation that runs it again on replay
        (``call.again``), not as its unrolling; other calls (custom rules, checkpoints) run as
        they are, their operations recorded one by one."""
        return self.record_call(call) if call.one_op else call.run()

    def record_call(self, call: HigherOrderCall) -> Any:
        vals, refs = [], []
        for a in call.leaves:
            v, r = self.operand(a)
            vals.append(v)
            refs.append(r)
        out_flat, out_tree = tree_flatten(call.again(vals).run())
        if any(isinstance(o, Tracer) for o in out_flat):
            raise TypeError(
                f"{call.name}: a function it calls uses a traced value from outside through a "
                "closure; pass that value as an argument instead"
            )
        tracers = tuple(self.new_var(o) for o in out_flat)
        self.program.append((CALL_AGAIN, tuple(refs), {"call": call}, tuple(t.var for t in tracers)))
        return tree_unflatten(out_tree, tracers)


def _call_again(xp: Any, *leaves: Any, call: HigherOrderCall) -> tuple[Any, ...]:
    return tuple(tree_flatten(call.again(list(leaves)).run())[0])


# A recorded call of a loop or other higher-order function (see StagingTrace.process_call): on
# replay, the same call on the new operands.
CALL_AGAIN = Primitive("higher_order_call", _call_again, residuals=())


# The root standing for memory the program does not own: arrays it closes over (constants).
_CONST_ROOT = -1


class _Compiled:
    """A recorded program: operations, where the inputs go, what the outputs are.

    Ownership (what a replay may write, what it hands out): a replay writes only into buffers it
    allocated itself in this call, and only after their last reader, never into an input, a
    constant, or anything an output is or views. Every array it returns is the caller's: fresh
    memory of this call, or a copy where an output would otherwise be (or view) an input or a
    constant of the recording. So no later call writes into an earlier call's results, and writing
    into a result changes neither the inputs nor what later calls return.
    """

    def __init__(self, xp: Any, program: list, avals: list, in_vars: list[int], outputs: list[Any], out_tree: Any, kernels: bool = True):
        self.xp = xp
        self.out_tree = out_tree
        if kernels:
            program, self.report = _compiled_kernels(xp, program, avals, in_vars, outputs)
        else:  # a loop's step (gpuad.lax)
            self.report = lowering.CompileReport("replay", len(program), reason="a loop body")
        self.n_vars = len(avals)
        self.in_vars = in_vars
        # Aliasing: an elementwise result is a fresh buffer of its own (a "root"); any other
        # operation's result may be a view of its operands (reshape, getitem, broadcast_to...), so
        # it shares their roots. Inputs are roots of their own; constants share _CONST_ROOT.
        roots: list[frozenset[int]] = [frozenset() for _ in avals]
        for v in in_vars:
            roots[v] = frozenset((v,))
        for prim, refs, _, out in program:
            outs = out if type(out) is tuple else (out,)
            if prim.fresh:  # a compiled kernel's outputs: new arrays
                for o in outs:
                    roots[o] = frozenset((o,))
            elif prim.ufunc is not None:
                roots[out] = frozenset((out,))
            else:
                shared = frozenset().union(*(roots[r] if type(r) is int else (_CONST_ROOT,) for r in refs))
                for o in outs:
                    roots[o] = shared
        # An output that is or views an input or a constant is copied on every call; anything
        # else it views is kept from reuse.
        owned_elsewhere = set(in_vars) | {_CONST_ROOT}
        self.outputs = [("copy" if kind == "var" and roots[o] & owned_elsewhere else kind, o) for kind, o in outputs]
        kept = set(in_vars)
        for kind, o in self.outputs:
            if kind != "const":
                kept |= {o} | roots[o]
        last_use: dict[int, int] = {}  # variable or root -> index of the last operation reading it
        for k, (_, refs, _, _) in enumerate(program):
            for r in refs:
                if type(r) is int:
                    last_use[r] = k
                    for root in roots[r]:
                        last_use[root] = k
        # The replay is generated as one Python function, a line per operation with its operands
        # in local variables (``v3 = f2(v1, c2_1)``): no interpretation left per operation.
        names: dict[str, Any] = {"xp": xp}
        lines = ["def replay(arrays):"]
        if in_vars:
            lines.append(f"    {''.join(f'v{v}, ' for v in in_vars)}= arrays")
        for k, (prim, refs, params, out) in enumerate(program):
            into = self._dead_buffer(prim, refs, params, out, k, avals, roots, last_use, kept)
            frees = sorted({r for r in refs if type(r) is int and last_use.get(r) == k and r not in kept} | ({into} if into is not None else set()))
            args = []
            for j, r in enumerate(refs):
                if type(r) is int:
                    args.append(f"v{r}")
                else:
                    names[f"c{k}_{j}"] = r.value
                    args.append(f"c{k}_{j}")
            if into is not None:  # a dead intermediate's buffer holds the result: no allocation
                names[f"f{k}"] = ufunc_with_out(xp, prim.ufunc)
                call = f"f{k}({', '.join(args)}, out=v{into})"
            elif prim.standard is not None and not params:  # the library's own function, called directly
                names[f"f{k}"] = getattr(xp, prim.name)
                call = f"f{k}({', '.join(args)})"
            else:
                names[f"f{k}"] = functools.partial(prim.impl, xp, **params)
                call = f"f{k}({', '.join(args)})"
            target = "".join(f"v{o}, " for o in out) if type(out) is tuple else f"v{out}"
            lines.append(f"    {target or '_'} = {call}")
            if frees:
                lines.append(f"    del {', '.join(f'v{r}' for r in frees)}")
        results = []
        for j, (kind, o) in enumerate(self.outputs):
            if kind == "var":
                results.append(f"v{o}")
            elif kind == "copy":
                results.append(f"xp.asarray(v{o}, copy=True)")
            else:
                names[f"out{j}"] = o
                # a constant output: the caller's own copy on every call
                results.append(f"xp.asarray(out{j}, copy=True)" if backend.is_array(o) else f"out{j}")
        lines.append(f"    return [{', '.join(results)}]")
        # Named as a file of gpuad's own, so that warnings skip it for the caller's line (backend.user_frame).
        where = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"<jit replay of {len(program)} operations>")
        exec(compile("\n".join(lines), where, "exec"), names)  # noqa: S102
        self.replay_flat = names["replay"]
        self.n_ops = len(program)

    def _dead_buffer(self, prim, refs, params, out, k, avals, roots, last_use, kept) -> int | None:
        """An operand whose buffer can hold this elementwise result: a fresh intermediate (a root)
        that nothing reads after this operation, of the result's shape and dtype."""
        if prim.ufunc is None or params or type(out) is tuple or ufunc_with_out(self.xp, prim.ufunc) is None:
            return None
        for r in refs:
            if type(r) is not int or r in kept or roots[r] != frozenset((r,)) or last_use.get(r) != k:
                continue
            if avals[r] != avals[out] or not avals[r][0]:  # 0-d results may be library scalars
                continue
            # Another operand viewing the same memory in another layout would be overwritten.
            if any(type(q) is int and q != r and r in roots[q] for q in refs):
                continue
            return r
        return None

    def __call__(self, arrays: Sequence[Any]) -> Any:
        with user_error_state():
            return self._replay(arrays)

    def _replay(self, arrays: Sequence[Any]) -> Any:
        return tree_unflatten(self.out_tree, self.replay_flat(arrays))


def _compiled_kernels(xp: Any, program: list, avals: list, in_vars: list[int], outputs: list[Any]) -> tuple[list, Any]:
    """The program with its per-point runs compiled into kernels (gpuad.compiler), as GPUAD_JIT
    says: "replay" never compiles, "compile" raises where it cannot, unset compiles where it can
    and otherwise warns once (at the user's line) and replays."""
    mode = lowering.jit_mode()
    if mode == "replay":
        return program, lowering.CompileReport("replay", len(program), reason=f"{lowering.JIT_ENV}=replay")
    try:
        new_program, report = lowering.compile_program(xp, program, avals, in_vars, outputs)
    except Exception as e:  # noqa: BLE001  (a missing compiler, or a compiler bug: the replay is always right)
        if mode == "compile":
            raise
        why = str(e) if isinstance(e, toolchain.CompileError) else f"internal compiler error, please report: {type(e).__name__}: {e}"
        new_program, report = program, lowering.CompileReport("replay", len(program), reason=why)
        report.warn = True
    if not report.kernels and mode == "compile":
        raise toolchain.CompileError(f"jit: {lowering.JIT_ENV}=compile, but nothing in this recording compiles: {report.reason}")
    if report.warn:
        backend.warn_at_user_line(
            f"jit: replaying the recorded array operations instead of compiling them: {report.reason} "
            f"(set {lowering.JIT_ENV}=replay to choose the replay and silence this)",
            lowering.CompileWarning,
        )
    return new_program, report


class user_error_state:  # noqa: N801  (a context manager, used as a function)
    """NumPy's floating-point warnings name the caller's line, as in eager mode (tracing.eager):
    one swap of the error state around a whole replay."""

    __slots__ = ("token",)

    def __enter__(self) -> None:
        self.token = None
        if _FP is not None:
            state = _FP[0]()
            ours = _FP[3](state)
            if ours is not state:
                self.token = _FP[1](ours)

    def __exit__(self, *exc: Any) -> None:
        if self.token is not None:
            _FP[2](self.token)


CACHE_SIZE = 64  # recordings a jitted function keeps (least recently used dropped first)


def _signature_of(leaf: Any) -> Any:
    if isinstance(leaf, Tracer):
        return None
    if backend.is_array(leaf):
        return ("array", type(leaf), tuple(leaf.shape), backend.dtype_name(leaf.dtype), str(backend.device_of(leaf)))
    if type(leaf) is float:  # traced, as JAX traces Python scalars: one recording for every value
        return ("float",)
    try:
        hash(leaf)
    except TypeError:
        raise TypeError(
            f"jit: an argument of type {type(leaf).__name__} is neither an array nor hashable; pass "
            "arrays, Python scalars, or pytrees (tuples, lists, dicts) of them"
        ) from None
    return ("static", type(leaf), _static_key(leaf))


def _static_key(value: Any) -> Any:
    """A cache key equal exactly when two static values give the same program: floats by their
    bits (NaN == NaN, 0.0 != -0.0, where == says otherwise)."""
    if isinstance(value, float):
        return value.hex()
    if isinstance(value, complex):
        return (value.real.hex(), value.imag.hex())
    return value


def jit(fun: Callable[..., Any], static_argnums: int | Sequence[int] = ()) -> Callable[..., Any]:
    """``fun`` recorded once per input signature and replayed afterwards, as ``jax.jit``: a call
    costs one array operation per primitive instead of the transforms' Python work per primitive.
    Composes with every transform (``jit(vmap(grad(f)))``).

    The signature is the tree of the arguments, the shape, dtype, library and device of every
    array, and the values of the static arguments. Python floats are traced, as in JAX: one
    recording serves every value (a float becomes a 0-d array of the arguments' widest floating
    dtype, float64 where there is none, as a weakly typed scalar would combine with them); Python
    control flow on them is an error unless they are in ``static_argnums``. Python ints, bools
    and other hashable values are static (they often give shapes, axes or loop counts). At most
    ``CACHE_SIZE`` (64) recordings are kept, the least recently used dropped first.

    Every array a call returns belongs to the caller: no later call writes into it, and writing
    into it changes neither the arguments nor later results (see ``_Compiled``).

    >>> import numpy as np, gpuad, gpuad.numpy as gnp
    >>> f = gpuad.jit(gpuad.vmap(gpuad.grad(lambda x: gnp.sin(x[0]) * x[1])))
    >>> f(np.asarray([[0.0, 2.0], [0.0, 3.0]])).tolist()
    [[2.0, 0.0], [3.0, 0.0]]
    """
    if not callable(fun):
        raise TypeError(f"jit: expected a function to transform, got {type(fun).__name__} ({fun!r})")
    statics = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)
    for s in statics:
        if not isinstance(s, int) or isinstance(s, bool):
            raise TypeError(f"jit: static_argnums must be ints, got {static_argnums!r}")
    cache: OrderedDict[Any, tuple[_Compiled, tuple[Any, Any, Any]]] = OrderedDict()

    # The signatures of calls whose arguments are all NumPy arrays, straight to their cache key:
    # a compiled call on one point costs microseconds, and building the general key is several.
    plain_keys: dict[Any, Any] = {}

    @functools.wraps(fun)
    def jitted(*args: Any, **kwargs: Any) -> Any:
        if not kwargs and not statics:
            try:
                plain = tuple((a.shape, a.dtype) for a in args if type(a) in backend.FAST_ARRAY_TYPES)
            except AttributeError:
                plain = ()
            if len(plain) == len(args):
                key = plain_keys.get(plain)
                entry = cache.get(key) if key is not None else None
                if entry is not None:
                    cache.move_to_end(key)
                    return entry[0](list(args))
        static_pos = {s % len(args) for s in statics if -len(args) <= s < len(args)}
        dynamic = [a for i, a in enumerate(args) if i not in static_pos]
        leaves, treedef = tree_flatten((dynamic, kwargs))
        sigs = [_signature_of(leaf) for leaf in leaves]
        if any(s is None for s in sigs):  # under another transform: trace through, as JAX does
            return fun(*args, **kwargs)
        try:
            key = (treedef, tuple(sigs), tuple((i, type(args[i]), _static_key(args[i])) for i in sorted(static_pos)))
            hash(key)
        except TypeError:
            raise TypeError("jit: static arguments must be hashable") from None
        entry = cache.get(key)
        if entry is None:
            compiled, scalars, result = _stage(fun, args, kwargs, static_pos, leaves, sigs, treedef)
            cache[key] = (compiled, scalars)
            if len(cache) > CACHE_SIZE:
                cache.popitem(last=False)
            if not kwargs and not statics and all(type(a) in backend.FAST_ARRAY_TYPES for a in args):
                if len(plain_keys) > 4 * CACHE_SIZE:  # keys of evicted recordings
                    plain_keys.clear()
                plain_keys[tuple((a.shape, a.dtype) for a in args)] = key
            return result
        cache.move_to_end(key)
        compiled, (xp, dtype, device) = entry
        arrays = [
            leaf if s[0] == "array" else backend.scalar_array(xp, leaf, dtype, device)
            for leaf, s in zip(leaves, sigs) if s[0] != "static"
        ]
        return compiled(arrays)

    jitted.cache_size = lambda: len(cache)  # type: ignore[attr-defined]
    # What was compiled (or why not), one report per recording kept: README "Speed".
    jitted.reports = lambda: [entry[0].report for entry in cache.values()]  # type: ignore[attr-defined]
    # A buffer pool per jitted function, as for the transforms: loops (gpuad.lax) take their stacked
    # outputs from it rather than fresh pages every call.
    return reuses_buffers(jitted)


def _stage(fun, args, kwargs, static_pos, leaves, sigs, treedef) -> tuple[_Compiled, Any, Any]:
    """Run ``fun`` once under a staging trace; return the program, how Python floats become
    arrays on replay (namespace, dtype, device), and this call's result."""
    arrays = [leaf for leaf, s in zip(leaves, sigs) if s[0] == "array"]
    if arrays:
        xp = backend.namespace_of(*arrays, names=[f"array argument {i}" for i in range(len(arrays))])
        device = backend.device_of(arrays[0])
    else:
        xp, device = backend.namespace_of_backend(None), None
    floats = [a.dtype for a in arrays if xp.isdtype(a.dtype, "real floating")]
    dtype = backend.backend_dtype(xp, backend.result_type(*floats)) if floats else backend.default_float(xp, device)
    scalars = (xp, dtype, device)
    with open_trace(StagingTrace, xp, device=device) as trace:
        staged = [
            leaf if s[0] == "static"
            else trace.new_var(leaf if s[0] == "array" else backend.scalar_array(xp, leaf, dtype, device))
            for leaf, s in zip(leaves, sigs)
        ]
        in_vars = [t.var for t in staged if type(t) is StagedTracer]
        dynamic, kw = tree_unflatten(treedef, staged)
        it = iter(dynamic)
        full = [args[i] if i in static_pos else next(it) for i in range(len(args))]
        out = fun(*full, **kw)
    out_leaves, out_tree = tree_flatten(out)
    outputs, values = [], []
    for o in out_leaves:
        if type(o) is StagedTracer and o._trace is trace:
            # A read-only view (a broadcast) is returned as a fresh copy, as the eager transforms do.
            outputs.append(("var" if backend.is_writable(o.value) else "copy", o.var))
            values.append(o.value)
        elif isinstance(o, Tracer):
            raise TypeError("jit: the function returned a value of an enclosing transform; return arrays")
        else:
            outputs.append(("const", o))
            values.append(o)
    compiled = _Compiled(xp, trace.program, trace.avals, in_vars, outputs, out_tree)
    # This call's results follow the replay's ownership rules.
    now = [
        xp.asarray(v, copy=True) if kind == "copy" or (kind == "const" and backend.is_array(v)) else v
        for (kind, _), v in zip(compiled.outputs, values)
    ]
    return compiled, scalars, tree_unflatten(out_tree, now)
