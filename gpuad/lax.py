"""Control flow as in ``jax.lax``: ``scan``, ``fori_loop``, ``while_loop``, ``cond``, ``switch``.

A loop traces its body once, into a *body*: the recorded program of one step (jit's recording,
see jit.py), run again for every step. Arrays of an enclosing transform that the body uses through
a closure become explicit operands of the loop ("captured"), so every transform sees them. Each
transform turns the loop into another loop one level down, by re-tracing the body under itself:

* forward mode: a loop over (primal, tangent) carries;
* reverse mode (scan only): a forward loop that also stacks the values the backward sweep of one
  step reads (its residuals), and one line on the tape whose VJP is a loop running the step's
  backward sweep in the opposite order, summing the cotangents of the captured operands; memory is
  O(steps x residuals of one step), and ``scan(gpuad.checkpoint(f), ...)`` keeps only the carries
  and recomputes each step;
* vmap: a loop over batched carries (a carry becomes batched when the body makes it depend on a
  batched value), batched xs scanned along their second axis;
* jit: one operation in the recording, which runs the loop again on replay.

Without any transform the loop runs the body's recording directly (one array operation per
primitive per step, without tracing), which is also what makes eager ``grad`` through a scan much
faster than a Python loop: the body is traced once, not once per step.

``cond`` and ``switch`` call the chosen branch when the predicate is a known value (eager mode,
inside grad/jvp); when it is not (under vmap with a batched predicate, under jit, inside a loop
body) both branches are evaluated and their results selected with ``where``, as JAX does under vmap.
"""

from __future__ import annotations

import operator
from typing import Any, Callable, Sequence

from . import backend
from . import numpy as gnp
from .batching import BatchTrace, BatchTracer
from .forward import JVPTrace, JVPTracer
from .jit import CALL_AGAIN, StagedTracer, StagingTrace, _Compiled, user_error_state
from .primitives import Primitive, add, axis_moved, broadcasted, filled_like
from .reverse import Record, ReverseTrace, ReverseTracer, backward
from .speedups import pooled_empty
from .tracing import HigherOrderCall, PrimalTracer, Tracer, bind, call_higher_order, context_namespace, current_pool, open_trace
from .tree import tree_flatten, tree_unflatten
from .uniform import Uniform, as_array

__all__ = ["scan", "fori_loop", "while_loop", "cond", "switch"]


# ---------------------------------------------------------------------------------------------
# Bodies: one step recorded once
# ---------------------------------------------------------------------------------------------


def _representative(v: Any) -> Any:
    """A plain array standing for ``v`` while a body is recorded: the value one point of it has
    (a tracer's primal, the first point of a batch, a recording's value now)."""
    if isinstance(v, PrimalTracer):
        return _representative(v.primal)
    if type(v) is BatchTracer:
        whole = _representative(v.val)
        if whole.shape[0] == 0:
            xp = backend.namespace_of(whole)
            return xp.zeros(tuple(whole.shape[1:]), dtype=whole.dtype, device=backend.device_of(whole))
        return whole[0, ...]
    if type(v) is StagedTracer:
        return v.value
    if isinstance(v, Tracer):
        raise TypeError(f"gpuad.lax: cannot record a loop body over a value of {type(v).__name__}")
    return v


class _BodyTrace(StagingTrace):
    """Records a body on representative values. A traced value of an enclosing transform met as an
    operand is captured: it becomes an input of the body (and an operand of the loop)."""

    who = "a gpuad.lax loop body (scan, fori_loop, while_loop)"
    advice = (
        "which differs from step to step: the body is traced once for all of them. Use "
        "gpuad.lax.cond or gnp.where(cond, a, b) instead of Python control flow on it"
    )

    def __init__(self, level: int, xp: Any, device: Any = None):
        super().__init__(level, xp, device)
        self.values: list[Any] = []  # the value of every variable while recording
        self.captured: list[Any] = []  # the enclosing transforms' values, in order
        self.captured_vars: list[int] = []
        self._by_id: dict[int, StagedTracer] = {}

    def new_var(self, value: Any) -> StagedTracer:
        self.values.append(value)
        return super().new_var(value)

    def operand(self, a: Any) -> tuple[Any, Any]:
        if isinstance(a, Tracer) and not (type(a) is StagedTracer and a._trace is self):
            a = self.capture(a)
        return super().operand(a)

    def capture(self, t: Any) -> StagedTracer:
        staged = self._by_id.get(id(t))
        if staged is None:
            staged = self._by_id[id(t)] = self.new_var(_representative(t))
            self.captured.append(t)  # kept alive here, so its id stays its own
            self.captured_vars.append(staged.var)
        return staged

    def process_call(self, call: HigherOrderCall) -> Any:
        # Nested loops, custom rules and checkpoints stay whole, so that transforms of the body
        # apply their rules; a call that cannot be replayed runs inline.
        try:
            call.again(list(call.leaves))
        except NotImplementedError:
            return call.run()
        return self.record_call(call)


class _Body:
    """A recorded step: operations over variables, input variables in order (the explicit inputs
    first, then captured ones), outputs (a variable, or a constant), and a representative value
    of every input (to record transformed versions of it)."""

    def __init__(self, xp: Any, device: Any, program: list, avals: list, in_vars: list[int], outputs: list[Any], reps: list[Any]):
        self.xp, self.device = xp, device
        self.program, self.avals, self.in_vars, self.outputs, self.reps = _live(program, outputs, in_vars), avals, in_vars, outputs, reps
        self.out_avals = [avals[o] if kind == "var" else (tuple(o.shape), o.dtype) for kind, o in outputs]
        self._compiled: _Compiled | None = None
        self._hoisted: tuple[int, _Compiled, _Compiled] | None = None
        # Bodies derived from this one by a transform (their recordings depend only on the body
        # and the flags): a recording called again (a jitted function under grad) reuses them.
        self.derived: dict[Any, Any] = {}

    def replay(self, args: Sequence[Any]) -> list[Any]:
        """The outputs for inputs ``args`` (of any transform): one bind per operation."""
        env: list[Any] = [None] * len(self.avals)
        for v, a in zip(self.in_vars, args):
            env[v] = a
        for prim, refs, params, out in self.program:
            vals = [env[r] if type(r) is int else r.value for r in refs]
            if prim is CALL_AGAIN:
                call = params["call"].again(vals)
                res = tuple(tree_flatten(call_higher_order(call, call.leaves))[0])
            else:
                res = bind(prim, *vals, **params)
            if type(out) is tuple:
                for v, o in zip(out, res):
                    env[v] = o
            else:
                env[out] = res
        return [env[o] if kind == "var" else o for kind, o in self.outputs]

    def run(self, arrays: Sequence[Any]) -> list[Any]:
        """The outputs for plain arrays, by jit's replay (fresh outputs, buffers reused)."""
        if self._compiled is None:
            self._compiled = _compile(self.xp, self.program, self.avals, self.in_vars, self.outputs)
        return self._compiled.replay_flat(arrays)

    def hoisted(self, n_variant: int) -> tuple[Any, Any]:
        """The body split for a loop whose inputs after the first ``n_variant`` stay the same at
        every step: a program computing, once, what depends only on those (a transposed weight
        matrix), and the per-step program that takes those values as extra inputs."""
        if self._hoisted is None or self._hoisted[0] != n_variant:
            fixed = set(self.in_vars[n_variant:])
            before, during = [], []
            for op in self.program:
                outs = op[3] if type(op[3]) is tuple else (op[3],)
                if op[0] is not CALL_AGAIN and all(type(r) is not int or r in fixed for r in op[1]):
                    before.append(op)
                    fixed.update(outs)
                else:
                    during.append(op)
            read = {r for op in during for r in op[1] if type(r) is int} | {o for k, o in self.outputs if k == "var"}
            passed = [v for op in before for v in (op[3] if type(op[3]) is tuple else (op[3],)) if v in read]
            pre = _compile(self.xp, before, self.avals, self.in_vars[n_variant:], [("var", v) for v in passed])
            loop = _compile(self.xp, during, self.avals, [*self.in_vars, *passed], self.outputs)
            self._hoisted = (n_variant, pre, loop)
        return self._hoisted[1], self._hoisted[2]


def _compile(xp: Any, program: list, avals: list, in_vars: list[int], outputs: list[Any]) -> _Compiled:
    # A step replays its array operations: a compiled kernel per step costs more than NumPy's
    # calls on a step's small arrays (bench/lstm.py), and eager loops would lower every call.
    return _Compiled(xp, program, avals, in_vars, outputs, tree_flatten((0,) * len(outputs))[1], kernels=False)


def _live(program: list, outputs: list[Any], in_vars: list[int]) -> list:
    """The operations that the outputs need (dead ones dropped)."""
    needed = {o for kind, o in outputs if kind == "var"}
    kept = []
    for op in reversed(program):
        outs = op[3] if type(op[3]) is tuple else (op[3],)
        if any(o in needed for o in outs):
            kept.append(op)
            needed.update(r for r in op[1] if type(r) is int)
    missing = needed - set(in_vars) - {o for op in kept for o in (op[3] if type(op[3]) is tuple else (op[3],))}
    if missing:  # an internal invariant of the partition below, not user input
        raise AssertionError(f"loop body reads variables it does not define: {sorted(missing)}")
    return kept[::-1]


def _namespace_of_reps(reps: Sequence[Any]) -> tuple[Any, Any]:
    arrays = [r for r in reps if backend.is_array(r)]
    if arrays:
        return backend.namespace_of(*arrays), backend.device_of(arrays[0])
    ctx = context_namespace()
    if ctx is not None:
        return ctx
    return backend.namespace_of_backend(None), None


def _record(fun: Callable[[list[Any]], list[Any]], reps: Sequence[Any], where: str) -> tuple[_Body, list[Any]]:
    """Record ``fun`` (a list of inputs -> a list of outputs) on the representatives ``reps``:
    the body, and the enclosing transforms' values it captured (its inputs after ``reps``)."""
    xp, device = _namespace_of_reps(reps)
    with open_trace(_BodyTrace, xp, device=device) as trace:
        ins = [trace.new_var(r) for r in reps]
        outs = fun(ins)
        outputs = []
        for o in outs:
            if isinstance(o, Tracer) and not (type(o) is StagedTracer and o._trace is trace):
                o = trace.capture(o)
            if type(o) is StagedTracer:
                outputs.append(("var", o.var))
            elif backend.is_array(o):
                outputs.append(("const", o))
            else:
                raise TypeError(f"{where} returned {type(o).__name__} ({o!r}) where an array was expected")
    in_vars = [t.var for t in ins] + trace.captured_vars
    values = trace.values
    body = _Body(xp, device, trace.program, trace.avals, in_vars, outputs, [values[v] for v in in_vars])
    return body, trace.captured


def _retrace(body_fun: Callable[[list[Any]], list[Any]], reps: Sequence[Any], where: str) -> _Body:
    """Record a transformed version of a body (which captures nothing new: a body's operations
    read only its inputs and constants)."""
    body, captured = _record(body_fun, reps, where)
    if captured:
        raise TypeError(
            f"{where}: a custom_jvp, custom_vjp or checkpoint function inside the loop body uses a traced "
            "value from outside the loop through a closure; pass that value to it as an argument"
        )
    return body


def _zeros(aval: tuple[tuple[int, ...], Any], xp: Any, device: Any) -> Any:
    return xp.zeros(aval[0], dtype=aval[1], device=device)


# ---------------------------------------------------------------------------------------------
# scan
# ---------------------------------------------------------------------------------------------


class _ScanCall(HigherOrderCall):
    """A scan of ``body`` (inputs: carries, slices of xs, consts; outputs: carries, ys) over
    ``length`` steps; ``leaves`` = carries, xs (stacked), consts. ``remat``: reverse mode keeps
    only the carries and recomputes each step."""

    name = "scan"
    one_op = True

    def __init__(self, body: _Body, n_carry: int, n_x: int, length: int, reverse: bool, remat: bool, leaves: list[Any]):
        self.body, self.n_carry, self.n_x, self.length, self.backwards, self.remat = body, n_carry, n_x, length, reverse, remat
        self.leaves = list(leaves)

    def again(self, leaves: list[Any]) -> "_ScanCall":
        return _ScanCall(self.body, self.n_carry, self.n_x, self.length, self.backwards, self.remat, leaves)

    def _like(self, body: _Body, n_carry: int, n_x: int, leaves: list[Any], reverse: bool | None = None) -> Any:
        """A scan of another body one level down: its flat outputs."""
        call = _ScanCall(body, n_carry, n_x, self.length, self.backwards if reverse is None else reverse, self.remat, leaves)
        return call_higher_order(call, leaves)

    def run(self) -> tuple[Any, ...]:
        nc, nx = self.n_carry, self.n_x
        carry = self.leaves[:nc]
        xs = self.leaves[nc : nc + nx]
        consts = self.leaves[nc + nx :]
        body = self.body
        xp, device = body.xp, body.device
        if self.length == 0:
            ys = [xp.empty((0, *shape), dtype=dtype, device=device) for shape, dtype in body.out_avals[nc:]]
            return (*carry, *ys)
        if self.length == 1:  # one step (a jitted function called under a transform: gpuad.calls)
            with user_error_state():
                outs = body.run([*carry, *(x[0, ...] for x in xs), *consts])
            return (*(xp.asarray(c) for c in outs[:nc]), *(y[None, ...] for y in outs[nc:]))
        # The xs as lists of slices (no indexing per step and leaf); each step's ys written into
        # their stacks (from the call's buffer pool where there is one), so that the memory of a
        # step's outputs serves the next step's.
        slices = list(zip(*(xp.unstack(x) for x in xs))) if xs else [()] * self.length
        order = range(self.length - 1, -1, -1) if self.backwards else range(self.length)
        pool = current_pool()
        ys = [_empty_stack(pool, xp, (self.length, *shape), dtype, device) for shape, dtype in body.out_avals[nc:]]
        with user_error_state():
            pre, loop = body.hoisted(nc + len(xs))
            consts = [*consts, *pre.replay_flat(consts)]
            run = loop.replay_flat
            for t in order:
                outs = run([*carry, *slices[t], *consts])
                carry = outs[:nc]
                for buf, y in zip(ys, outs[nc:]):
                    buf[t, ...] = y
        return (*(xp.asarray(c) for c in carry), *ys)

    # -- forward mode ------------------------------------------------------------------------

    def jvp(self, trace: JVPTrace) -> Any:
        nc, nx = self.n_carry, self.n_x
        mine = [type(v) is JVPTracer and v._trace is trace for v in self.leaves]
        primals = [v.primal if m else v for v, m in zip(self.leaves, mine)]
        tangents = [v.tangent if m else None for v, m in zip(self.leaves, mine)]
        if all(t is None for t in tangents):
            return tuple(JVPTracer(trace, o, None) for o in self._like(self.body, nc, nx, primals))
        nz = [t is not None for t in tangents]
        while True:  # a carry gets a tangent once the body gives it one from another input
            jbody, out_nz = _jvp_body(self.body, nz, nc, nx)
            grown = [a or b for a, b in zip(nz[:nc], out_nz[:nc])]
            if grown == nz[:nc]:
                break
            nz[:nc] = grown
        full_t = [t if t is not None or not n else filled_like(p, 0) for p, t, n in zip(primals, tangents, nz)]
        groups = [(0, nc), (nc, nc + nx), (nc + nx, len(primals))]
        leaves = [x for a, b in groups for x in (*primals[a:b], *(t for t, n in zip(full_t[a:b], nz[a:b]) if n))]
        n_tc, n_tx = sum(nz[:nc]), sum(nz[nc : nc + nx])
        outs = list(self._like(jbody, nc + n_tc, nx + n_tx, leaves))
        carry_p, carry_t, ys = outs[:nc], outs[nc : nc + n_tc], outs[nc + n_tc :]
        ct = iter(carry_t)
        result = [JVPTracer(trace, p, next(ct) if n else None) for p, n in zip(carry_p, nz[:nc])]
        n_y = len(out_nz) - nc
        ys_p, ys_t = ys[:n_y], iter(ys[n_y:])
        result += [JVPTracer(trace, p, next(ys_t) if n else None) for p, n in zip(ys_p, out_nz[nc:])]
        return tuple(result)

    # -- vmap -------------------------------------------------------------------------------------

    def batch(self, trace: BatchTrace) -> Any:
        nc, nx = self.n_carry, self.n_x
        size = trace.size
        flags = [type(v) is BatchTracer and v._trace is trace for v in self.leaves]
        vals = [v.val if f else v for v, f in zip(self.leaves, flags)]
        while True:
            bbody, out_flags = _batch_body(self.body, flags, nc, size)
            grown = [a or b for a, b in zip(flags[:nc], out_flags[:nc])]
            if grown == flags[:nc]:
                break
            flags[:nc] = grown
        leaves = []
        for i, (v, f, was) in enumerate(zip(vals, flags, [type(v) is BatchTracer and v._trace is trace for v in self.leaves])):
            if f and not was:  # a carry the body makes batched: every point starts from the same value
                v = broadcasted(v, (size, *v.shape))
            elif f and nc <= i < nc + nx:  # xs are scanned along their first per-point axis
                v = axis_moved(v, 0, 1)
            leaves.append(v)
        outs = self._like(bbody, nc, nx, leaves)
        result = [BatchTracer(trace, o) if f else o for o, f in zip(outs[:nc], flags[:nc])]
        result += [BatchTracer(trace, axis_moved(o, 1, 0)) if f else o for o, f in zip(outs[nc:], out_flags[nc:])]
        return tuple(result)

    # -- reverse mode -----------------------------------------------------------------------------

    def reverse(self, trace: ReverseTrace) -> Any:
        nc, nx = self.n_carry, self.n_x
        mine = [type(v) is ReverseTracer and v._trace is trace for v in self.leaves]
        primals = [v.primal if m else v for v, m in zip(self.leaves, mine)]
        nodes = [v.node if m else None for v, m in zip(self.leaves, mine)]
        active = [n is not None for n in nodes]
        if not any(active):
            return tuple(ReverseTracer(trace, o, None) for o in self._like(self.body, nc, nx, primals))
        while True:  # a carry is differentiated once the body makes it depend on a differentiated input
            step = _vjp_step(self.body, active, nc, nx, self.remat)
            grown = [a or b for a, b in zip(active[:nc], step.out_active[:nc])]
            if grown == active[:nc]:
                break
            active[:nc] = grown
        xs_p = primals[nc : nc + nx]
        consts_p = primals[nc + nx :]
        outs = list(self._like(step.forward, nc, nx, primals))
        n_out = len(step.out_active)
        main, stacks = outs[:n_out], outs[n_out:]
        res_args = [*stacks, *(xs_p[i] for i in step.x_reads), *(consts_p[i] for i in step.const_reads)]
        out_nodes = tuple(trace.new_node() if a else -1 for a in step.out_active)
        in_avals = [None if n is None else (tuple(p.shape), p.dtype) for n, p in zip(nodes, primals)]
        params = {
            "step": step, "call": self, "primals": primals, "active": tuple(active), "xp": trace.xp, "device": trace.device,
            "out_avals": [(tuple(o.shape), o.dtype) for o in main], "length": self.length,
        }
        trace._append(Record(_SCAN_RECORD, nodes, out_nodes, res_args, None, params, in_avals), primals, main)
        return tuple(ReverseTracer(trace, o, n if n >= 0 else None) for o, n in zip(main, out_nodes))


def _empty_stack(pool: Any, xp: Any, shape: tuple[int, ...], dtype: Any, device: Any) -> Any:
    """An uninitialised array for a loop's stacked outputs: a buffer of the call's pool where
    there is one (NumPy: large stacks would otherwise fault in fresh pages every call)."""
    out = pooled_empty(pool, xp, shape, dtype)
    return out if out is not None else xp.empty(shape, dtype=dtype, device=device)


def _derived(body: _Body, key: tuple[Any, ...], make: Callable[[], Any]) -> Any:
    found = body.derived.get(key)
    if found is None:
        found = body.derived[key] = make()
    return found


def _jvp_body(body: _Body, nz: list[bool], nc: int, nx: int) -> tuple[_Body, list[bool]]:
    return _derived(body, ("jvp", tuple(nz), nc, nx), lambda: _make_jvp_body(body, nz, nc, nx))


def _batch_body(body: _Body, flags: list[bool], nc: int, size: int) -> tuple[_Body, list[bool]]:
    return _derived(body, ("batch", tuple(flags), nc, size), lambda: _make_batch_body(body, flags, nc, size))


def _vjp_step(body: _Body, active: list[bool], nc: int, nx: int, remat: bool) -> "_VJPStep":
    return _derived(body, ("vjp", tuple(active), nc, nx, remat), lambda: _VJPStep(body, active, nc, nx, remat))


def _make_jvp_body(body: _Body, nz: list[bool], nc: int, nx: int) -> tuple[_Body, list[bool]]:
    """The body of the forward-mode loop: inputs and outputs (carries, xs / ys, consts) each
    followed by the tangents of those that have one; and which outputs got a tangent."""
    n_in = len(body.in_vars)
    groups = [(0, nc), (nc, nc + nx), (nc + nx, n_in)]
    order = [i for a, b in groups for i in (*range(a, b), *(j for j in range(a, b) if nz[j]))]
    is_tangent: list[bool] = []
    for a, b in groups:
        is_tangent += [False] * (b - a) + [True] * sum(nz[a:b])
    reps = [body.reps[i] if not t else body.xp.zeros_like(body.reps[i]) for i, t in zip(order, is_tangent)]
    out_nz: list[bool] = []

    def step(ins: list[Any]) -> list[Any]:
        prim_in: list[Any] = [None] * n_in
        tan_in: list[Any] = [None] * n_in
        for i, t, v in zip(order, is_tangent, ins):
            if t:
                tan_in[i] = v
            else:
                prim_in[i] = v
        with open_trace(JVPTrace, body.xp, device=body.device) as jt:
            outs = body.replay([JVPTracer(jt, p, t) if t is not None else p for p, t in zip(prim_in, tan_in)])
        ps = [o.primal if type(o) is JVPTracer and o._trace is jt else o for o in outs]
        ts = [o.tangent if type(o) is JVPTracer and o._trace is jt else None for o in outs]
        out_nz[:] = [t is not None for t in ts]
        for j in range(nc):  # a carry with a tangent keeps one at every step, zero or not
            if nz[j] and ts[j] is None:
                out_nz[j] = True
                ts[j] = filled_like(ps[j], 0)
        return [*ps[:nc], *(t for t, n in zip(ts[:nc], out_nz[:nc]) if n), *ps[nc:], *(t for t, n in zip(ts[nc:], out_nz[nc:]) if n)]

    jbody = _retrace(step, reps, "scan")
    return jbody, list(out_nz)


def _make_batch_body(body: _Body, flags: list[bool], nc: int, size: int) -> tuple[_Body, list[bool]]:
    """The body of the batched loop (batched inputs carry the batch axis first); and which outputs
    are batched. A carry batched on input is batched on output (broadcast where the body gives
    every point the same value)."""
    xp = body.xp
    reps = [xp.broadcast_to(r[None, ...], (size, *r.shape)) if f else r for r, f in zip(body.reps, flags)]
    out_flags: list[bool] = []

    def step(ins: list[Any]) -> list[Any]:
        with open_trace(BatchTrace, xp, device=body.device, size=size) as bt:
            outs = body.replay([BatchTracer(bt, v) if f else v for v, f in zip(ins, flags)])
        vals = []
        out_flags[:] = []
        for j, o in enumerate(outs):
            batched = type(o) is BatchTracer and o._trace is bt
            if batched:
                o = o.val
            elif j < nc and flags[j]:
                o = broadcasted(o, (size, *o.shape))
                batched = True
            vals.append(o)
            out_flags.append(batched)
        return vals

    return _retrace(step, reps, "scan"), list(out_flags)


class _VJPStep:
    """One step's forward and backward sweep, recorded once and split in two bodies:

    * ``forward``: (carries, x slices, consts) -> (carries, ys, then the step's residuals: the
      values of the forward part that the backward part reads, stacked over steps by the scan);
    * ``backward``: (cotangents of the carries out, running sums of the consts' cotangents;
      residual slices, the x slices it reads, the cotangents of ys; the consts it reads) ->
      (cotangents of the carries in, the sums; the cotangents of the x slices).

    Only differentiated inputs (``active``) get cotangents. With ``remat`` the forward body keeps
    only the carries and the backward body recomputes the step.
    """

    def __init__(self, body: _Body, active: list[bool], nc: int, nx: int, remat: bool):
        xp, device = body.xp, body.device
        self.nc, self.nx, self.active = nc, nx, list(active)
        n_in = len(body.in_vars)
        with open_trace(_BodyTrace, xp, device=device) as rec:
            ins = [rec.new_var(r) for r in body.reps]
            with open_trace(ReverseTrace, xp, device=device) as tape:
                tins = [tape.new_input(s) if a else s for s, a in zip(ins, active)]
                outs = body.replay(tins)
            split = len(rec.program)
            out_nodes = [o.node if type(o) is ReverseTracer and o._trace is tape else None for o in outs]
            main = [o.primal if type(o) is ReverseTracer and o._trace is tape else o for o in outs]
            self.out_active = [n is not None for n in out_nodes]
            # cotangent inputs: one per differentiated carry (zero where the output got none) and per differentiated y
            ct_carry = [rec.new_var(xp.zeros_like(body.reps[j])) if active[j] else None for j in range(nc)]
            ct_y = [rec.new_var(_zeros((tuple(m.shape), m.dtype), xp, device)) if a else None
                    for m, a in zip(main[nc:], self.out_active[nc:])]
            seeds: dict[int, Any] = {}
            for n, g in zip(out_nodes, [*ct_carry, *ct_y]):
                if n is not None and g is not None:
                    seeds[n] = add(seeds[n], g) if n in seeds else g
            wanted = [t.node for t, a in zip(tins, active) if a]
            got = iter(backward(tape.tape, seeds, wanted, consume=True))
            cts = [_as_array_or_none(next(got)) if a else None for a in active]
            const_idx = [i for i in range(nc + nx, n_in) if active[i]]
            acc_in = [rec.new_var(xp.zeros_like(body.reps[i])) for i in const_idx]
            acc_out = [a if cts[i] is None else add(a, cts[i]) for a, i in zip(acc_in, const_idx)]
        avals, values = rec.avals, rec.values
        var = lambda o: ("var", o.var) if type(o) is StagedTracer else ("const", o)  # noqa: E731
        in_vars = [s.var for s in ins]
        carry_in, x_in, const_in = in_vars[:nc], in_vars[nc : nc + nx], in_vars[nc + nx :]
        defined_fwd = {o for op in rec.program[:split] for o in (op[3] if type(op[3]) is tuple else (op[3],))}
        bwd_ops = rec.program[split:]
        bwd_outputs = [*(var(cts[j]) if cts[j] is not None else ("const", _zeros(avals[carry_in[j]], xp, device))
                         for j in range(nc) if active[j]), *(var(a) for a in acc_out),
                       *(var(cts[i]) if cts[i] is not None else ("const", _zeros(avals[in_vars[i]], xp, device))
                         for i in range(nc, nc + nx) if active[i])]
        if remat:  # recompute the whole step in the backward body: its forward part too
            bwd_ops = rec.program
            defined_fwd = set()
        reads = {r for op in bwd_ops for r in op[1] if type(r) is int} | {o for k, o in bwd_outputs if k == "var"}
        if remat:
            reads |= set(carry_in)
        stacked = sorted(r for r in reads if r in defined_fwd) + [v for v in carry_in if v in reads]
        self.x_reads = [i for i, v in enumerate(x_in) if v in reads]
        self.const_reads = [i for i, v in enumerate(const_in) if v in reads]
        fwd_outputs = [var(m) for m in main] + [("var", v) for v in stacked]
        self.forward = _Body(xp, device, rec.program[:split], avals, in_vars, fwd_outputs, list(body.reps))
        b_in = ([g.var for g in ct_carry if g is not None] + [a.var for a in acc_in]
                + stacked + [x_in[i] for i in self.x_reads] + [g.var for g in ct_y if g is not None]
                + [const_in[i] for i in self.const_reads])
        self.n_bwd_carry = sum(1 for g in ct_carry if g is not None) + len(acc_in)
        self.n_bwd_x = len(stacked) + len(self.x_reads) + sum(self.out_active[nc:])
        self.backward = _Body(xp, device, bwd_ops, avals, b_in, bwd_outputs, [values[v] for v in b_in])
        self.const_idx = const_idx


def _as_array_or_none(c: Any) -> Any:
    return None if c is None else as_array(c)  # a symbolic Uniform cotangent: its array view


def _scan_vjp(gs, ans, *res_args, step: _VJPStep, call: _ScanCall, primals, active, xp, device, out_avals, length):
    """The backward loop of a scan: the step's backward body over the steps in the opposite order."""
    nc, nx = step.nc, step.nx
    def full(g, aval):
        if g is None:
            return _zeros(aval, xp, device)
        return g.full() if type(g) is Uniform else g
    ct_carry = [full(gs[j], out_avals[j]) for j in range(nc) if active[j]]
    acc = [filled_like(primals[i], 0) for i in step.const_idx]
    n_stacks = len(res_args) - len(step.x_reads) - len(step.const_reads)
    stacks = list(res_args[:n_stacks])
    k = n_stacks
    xs_read = list(res_args[k : k + len(step.x_reads)])
    k += len(step.x_reads)
    consts_read = list(res_args[k:])
    ct_ys = [full(gs[j], out_avals[j]) for j in range(nc, len(out_avals)) if step.out_active[j]]
    leaves = [*ct_carry, *acc, *stacks, *xs_read, *ct_ys, *consts_read]
    bwd = _ScanCall(step.backward, step.n_bwd_carry, step.n_bwd_x, call.length, not call.backwards, call.remat, leaves)
    outs = list(call_higher_order(bwd, leaves))
    n_ac = sum(active[:nc])
    ct_init, ct_consts, ct_xs = iter(outs[:n_ac]), iter(outs[n_ac : n_ac + len(acc)]), iter(outs[n_ac + len(acc) :])
    result = []
    for i, a in enumerate(active):
        if not a:
            result.append(None)
        elif i < nc:
            result.append(next(ct_init))
        elif i < nc + nx:
            result.append(next(ct_xs))
        else:
            result.append(next(ct_consts))
    return tuple(result)


def _scan_linear_jvp(tangents, ans, *res_args, step, call, primals, active, xp, device, **_):
    """Tangents of a recorded scan's outputs (linearize's replay): forward mode through it."""
    with open_trace(JVPTrace, xp, device=device) as jt:
        leaves = [jt.new_input(p, t) if t is not None else p for p, t in zip(primals, tangents)]
        outs = call_higher_order(call.again(leaves), leaves)
    return tuple(o.tangent if type(o) is JVPTracer and o._trace is jt else None for o in outs)


def _scan_record_impl(xp: Any, *args: Any, call: _ScanCall, **_: Any) -> tuple[Any, ...]:
    return call.run()


# The tape's line for a scan (a higher-order record, like checkpoint's: it lives here, not in the table).
_SCAN_RECORD = Primitive("scan", _scan_record_impl, jvp=_scan_linear_jvp, vjp=_scan_vjp, residuals=("args",))


def _as_operand(v: Any, what: str) -> Any:
    if isinstance(v, Tracer) or backend.is_array(v):
        return v
    if isinstance(v, (bool, int, float)):
        xp, device = context_namespace() or (backend.namespace_of_backend(None), None)
        return xp.asarray(v, device=device)
    raise TypeError(f"{what} must be an array or a Python number, got {type(v).__name__} ({v!r})")


def scan(
    f: Callable[[Any, Any], tuple[Any, Any]],
    init: Any,
    xs: Any = None,
    length: int | None = None,
    reverse: bool = False,
    unroll: int | bool = 1,
) -> tuple[Any, Any]:
    """Loop ``f`` over the leading axis of ``xs`` while carrying a state, as ``jax.lax.scan``::

        def scan(f, init, xs, length=None):
            carry, ys = init, []
            for x in xs:
                carry, y = f(carry, x)
                ys.append(y)
            return carry, stack(ys)

    ``f(carry, x) -> (carry, y)``; ``init``, ``xs`` and ``y`` may be pytrees (``xs=None`` with a
    ``length``: ``f`` gets ``x=None``). The carry ``f`` returns must have ``init``'s structure,
    shapes and dtypes. ``f`` is traced once; every transform applies to the loop as a whole
    (module docstring). ``unroll`` is accepted for JAX compatibility and changes nothing.

    >>> import numpy as np, gpuad, gpuad.numpy as gnp
    >>> def f(c, x):
    ...     c = c * x
    ...     return c, gnp.sin(c)
    >>> carry, ys = scan(f, np.asarray(1.0), np.asarray([1.0, 2.0, 3.0]))
    >>> float(carry), ys.shape
    (6.0, (3,))
    >>> float(gpuad.grad(lambda x: scan(f, np.asarray(1.0), x)[0])(np.asarray([1.0, 2.0, 3.0]))[1])
    3.0
    """
    if not callable(f):
        raise TypeError(f"scan: f must be a function (carry, x) -> (carry, y), got {type(f).__name__}")
    if not isinstance(unroll, bool) and (not isinstance(unroll, int) or unroll < 1):
        raise ValueError(f"scan: unroll must be a positive int or a bool, got {unroll!r}")
    remat = False
    fun = f
    if getattr(f, "_gpuad_checkpointed", None) is not None:  # scan(gpuad.checkpoint(f)): recompute steps
        fun, remat = f._gpuad_checkpointed, True
    init_flat, carry_tree = tree_flatten(init)
    init_flat = [_as_operand(v, f"scan: init leaf {i}") for i, v in enumerate(init_flat)]
    xs_flat, xs_tree = tree_flatten(xs)
    xs_flat = [_as_operand(v, f"scan: xs leaf {i}") for i, v in enumerate(xs_flat)]
    for i, x in enumerate(xs_flat):
        if x.ndim == 0:
            raise ValueError(f"scan: xs leaf {i} is 0-d; every leaf of xs needs a leading axis to scan over")
    lengths = sorted({x.shape[0] for x in xs_flat})
    if len(lengths) > 1:
        raise ValueError(
            f"scan: the leaves of xs have different leading axis sizes {[tuple(x.shape) for x in xs_flat]}; "
            "all must have the same length"
        )
    if length is not None:
        length = operator.index(length)
        if lengths and lengths[0] != length:
            raise ValueError(f"scan: length={length} but xs have leading axis size {lengths[0]}")
        if length < 0:
            raise ValueError(f"scan: length must be >= 0, got {length}")
    elif not lengths:
        raise ValueError("scan: got no xs (or xs without leaves) and no length; give length= to loop that many times")
    else:
        length = lengths[0]

    x_reps = []
    for x in xs_flat:
        r = _representative(x)
        x_reps.append(r[0, ...] if length > 0 else backend.namespace_of(r).zeros(tuple(r.shape[1:]), dtype=r.dtype, device=backend.device_of(r)))
    nc, nx = len(init_flat), len(xs_flat)
    trees: dict[str, Any] = {}

    def step(ins: list[Any]) -> list[Any]:
        out = fun(tree_unflatten(carry_tree, ins[:nc]), tree_unflatten(xs_tree, ins[nc:]))
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise TypeError(f"scan: f must return a pair (carry, y), got {type(out).__name__}")
        c_flat, c_tree = tree_flatten(out[0])
        if c_tree != carry_tree:
            raise TypeError(
                f"scan: f returned a carry of structure {c_tree}, but init has structure {carry_tree}; "
                "the carry must keep its structure from step to step"
            )
        c_flat = [_as_operand(c, "scan: a carry leaf f returned") for c in c_flat]
        for i, (c, c0) in enumerate(zip(c_flat, ins[:nc])):
            if tuple(c.shape) != tuple(c0.shape) or backend.dtype_name(c.dtype) != backend.dtype_name(c0.dtype):
                raise TypeError(
                    f"scan: carry leaf {i} enters f as {backend.dtype_name(c0.dtype)}{list(c0.shape)} but f "
                    f"returns {backend.dtype_name(c.dtype)}{list(c.shape)}; the carry must keep its shape and "
                    "dtype (give init the dtype the body computes in, or cast with astype in f)"
                )
        y_flat, trees["y"] = tree_flatten(out[1])
        return [*c_flat, *(_as_operand(y, "scan: a leaf of the y f returned") for y in y_flat)]

    body, captured = _record(step, [*(_representative(c) for c in init_flat), *x_reps], "scan: f")
    leaves = [*init_flat, *xs_flat, *captured]
    outs = call_higher_order(_ScanCall(body, nc, nx, length, bool(reverse), remat, leaves), leaves)
    return tree_unflatten(carry_tree, list(outs[:nc])), tree_unflatten(trees["y"], list(outs[nc:]))


# ---------------------------------------------------------------------------------------------
# fori_loop and while_loop
# ---------------------------------------------------------------------------------------------


def _static_int(v: Any) -> int | None:
    """``v`` as a Python int when its value is known now (a Python int, or an integer array that
    no jit or vmap is tracing), else None."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    plain = v._concrete() if isinstance(v, Tracer) else v
    if plain is not None and backend.is_array(plain) and plain.ndim == 0 and backend.dtype_name(plain.dtype).startswith(("int", "uint")):
        return int(plain)
    return None


def fori_loop(lower: Any, upper: Any, body_fun: Callable[[Any, Any], Any], init_val: Any) -> Any:
    """``body_fun(i, val)`` for ``i`` from ``lower`` to ``upper - 1``, as ``jax.lax.fori_loop``::

        val = init_val
        for i in range(lower, upper):
            val = body_fun(i, val)

    With bounds known when called (Python ints, or integer arrays outside jit and vmap) it is a
    ``scan`` (every transform, reverse mode included); with traced bounds a ``while_loop`` (forward
    mode only, as in JAX). ``i`` is a 0-d integer array.

    >>> import numpy as np, gpuad
    >>> float(gpuad.grad(lambda x: fori_loop(0, 3, lambda i, v: v * x, np.asarray(1.0)))(np.asarray(2.0)))
    12.0
    """
    if not callable(body_fun):
        raise TypeError(f"fori_loop: body_fun must be a function (i, val) -> val, got {type(body_fun).__name__}")
    lo, hi = _static_int(lower), _static_int(upper)
    if lo is not None and hi is not None:
        xp, device = context_namespace() or (backend.namespace_of_backend(None), None)
        i0 = xp.asarray(lo, device=device) if not backend.is_array(lower) else lower

        def step(carry: Any, _: Any) -> tuple[Any, None]:
            i, val = carry
            return (i + 1, body_fun(i, val)), None

        (_, val), _ = scan(step, (i0, init_val), None, length=max(hi - lo, 0))
        return val
    for name, v in (("lower", lower), ("upper", upper)):
        if not (isinstance(v, Tracer) or backend.is_array(v) or isinstance(v, int)) or isinstance(v, bool):
            raise TypeError(f"fori_loop: {name} must be an int or an integer array, got {type(v).__name__} ({v!r})")

    def cond_fun(carry: Any) -> Any:
        return carry[0] < carry[1]

    def body(carry: Any) -> Any:
        i, hi_, val = carry
        return i + 1, hi_, body_fun(i, val)

    return while_loop(cond_fun, body, (lower, upper, init_val))[2]


class _WhileCall(HigherOrderCall):
    """``while cond(carry): carry = body(carry)``; ``leaves`` = carries, the cond's consts, the
    body's consts."""

    name = "while_loop"
    one_op = True

    def __init__(self, cond_body: _Body, body: _Body, n_carry: int, n_cond: int, leaves: list[Any]):
        self.cond_body, self.body, self.n_carry, self.n_cond = cond_body, body, n_carry, n_cond
        self.leaves = list(leaves)

    def again(self, leaves: list[Any]) -> "_WhileCall":
        return _WhileCall(self.cond_body, self.body, self.n_carry, self.n_cond, leaves)

    def _parts(self, leaves: list[Any]) -> tuple[list[Any], list[Any], list[Any]]:
        nc, nk = self.n_carry, self.n_cond
        return leaves[:nc], leaves[nc : nc + nk], leaves[nc + nk :]

    def run(self) -> tuple[Any, ...]:
        carry, cconsts, bconsts = self._parts(self.leaves)
        xp = self.body.xp
        with user_error_state():
            # The predicate decides on the host whether to go on: one device sync per step on a GPU.
            while bool(self.cond_body.run([*carry, *cconsts])[0]):  # host-ok: the loop must know whether to go on
                carry = self.body.run([*carry, *bconsts])
        return tuple(xp.asarray(c) for c in carry)

    def reverse(self, trace: ReverseTrace) -> Any:
        if any(type(v) is ReverseTracer and v._trace is trace and v.node is not None for v in self.leaves):
            raise TypeError(
                "while_loop: reverse-mode differentiation (grad, vjp, jacrev) does not work through a "
                "while_loop, whose number of steps is known only when it ends (as in JAX). Use scan or "
                "fori_loop with bounds known in advance, or forward mode (jvp, jacfwd)"
            )
        below = [v.primal if type(v) is ReverseTracer and v._trace is trace else v for v in self.leaves]
        return tuple(ReverseTracer(trace, o, None) for o in call_higher_order(self.again(below), below))

    def jvp(self, trace: JVPTrace) -> Any:
        nc = self.n_carry
        mine = [type(v) is JVPTracer and v._trace is trace for v in self.leaves]
        primals = [v.primal if m else v for v, m in zip(self.leaves, mine)]
        tangents = [v.tangent if m else None for v, m in zip(self.leaves, mine)]
        carry_p, cconsts, bconsts = self._parts(primals)
        _, _, bconst_t = self._parts(tangents)
        nz = [t is not None for t in tangents[:nc]]
        bnz = [t is not None for t in bconst_t]
        if not any(nz) and not any(bnz):
            return tuple(JVPTracer(trace, o, None) for o in call_higher_order(self.again(primals), primals))
        while True:  # as scan's: a carry with a tangent in some step has one in every step
            jbody, out_nz = _jvp_body(self.body, [*nz, *bnz], nc, 0)
            grown = [a or b for a, b in zip(nz, out_nz)]
            if grown == nz:
                break
            nz = grown
        n_t = sum(nz)
        # The predicate reads the primal carries only; the tangents ride along.
        cond = _retrace(lambda ins: self.cond_body.replay([*ins[:nc], *ins[nc + n_t :]]),
                        [*self.cond_body.reps[:nc], *(r for r, n in zip(self.body.reps[:nc], nz) if n), *self.cond_body.reps[nc:]],
                        "while_loop")
        tan_c = [t if t is not None else filled_like(p, 0) for p, t, n in zip(carry_p, tangents[:nc], nz) if n]
        leaves = [*carry_p, *tan_c, *cconsts, *bconsts, *(t for t in bconst_t if t is not None)]
        outs = call_higher_order(_WhileCall(cond, jbody, nc + n_t, len(cconsts), leaves), leaves)
        ts = iter(outs[nc:])
        return tuple(JVPTracer(trace, p, next(ts) if n else None) for p, n in zip(outs[:nc], nz))

    def batch(self, trace: BatchTrace) -> Any:
        nc, nk = self.n_carry, self.n_cond
        size = trace.size
        was = [type(v) is BatchTracer and v._trace is trace for v in self.leaves]
        flags = list(was)
        while True:
            cond_flags = [*flags[:nc], *flags[nc : nc + nk]]
            pred_body, pred_flag = _batch_body(self.cond_body, cond_flags, 0, size)
            if pred_flag[0]:  # points stop at different steps: every carry is batched
                flags[:nc] = [True] * nc
            bbody, out_flags = _batch_body(self.body, [*flags[:nc], *flags[nc + nk :]], nc, size)
            grown = [a or b for a, b in zip(flags[:nc], out_flags)]
            if grown == flags[:nc] and (not pred_flag[0] or all(flags[:nc])):
                break
            flags[:nc] = grown
        vals = [v.val if w else (broadcasted(v, (size, *v.shape)) if f else v) for v, w, f in zip(self.leaves, was, flags)]
        if pred_flag[0]:
            # A batched predicate: go on while any point's holds, and keep the carries of the points
            # whose predicate no longer holds (as JAX does).
            cond, bbody = _any_and_select(pred_body, bbody, nc, nk, size)
        else:
            cond = pred_body
        outs = call_higher_order(_WhileCall(cond, bbody, nc, nk, vals), vals)
        return tuple(BatchTracer(trace, o) if f else o for o, f in zip(outs, flags[:nc]))


def _any_and_select(pred_body: _Body, body: _Body, nc: int, nk: int, size: int) -> tuple[_Body, _Body]:
    """Bodies for a while loop whose batched predicate says per point whether to go on: the
    predicate "any point goes on", and a body that advances only the points whose predicate
    holds (its inputs: carries, the predicate's consts, the body's consts)."""
    cond = _retrace(lambda ins: [gnp.any(pred_body.replay(ins)[0])], pred_body.reps, "while_loop")

    def step(ins: list[Any]) -> list[Any]:
        carry = ins[:nc]
        pred = pred_body.replay([*carry, *ins[nc : nc + nk]])[0]
        new = body.replay([*carry, *ins[nc + nk :]])
        return [gnp.where(gnp.reshape(pred, (size,) + (1,) * (c.ndim - 1)), n, c) for n, c in zip(new, carry)]

    reps = [*body.reps[:nc], *pred_body.reps[nc:], *body.reps[nc:]]
    return cond, _retrace(step, reps, "while_loop")


def while_loop(cond_fun: Callable[[Any], Any], body_fun: Callable[[Any], Any], init_val: Any) -> Any:
    """``body_fun`` applied while ``cond_fun`` holds, as ``jax.lax.while_loop``::

        val = init_val
        while cond_fun(val):
            val = body_fun(val)

    ``cond_fun`` returns a boolean scalar; ``body_fun`` returns a value of ``init_val``'s structure,
    shapes and dtypes. Forward mode (jvp, jacfwd) and vmap go through it; reverse mode does not
    (as in JAX: use scan or fori_loop with known bounds). Under vmap a batched predicate runs the
    loop until every point is done, each point keeping its own last value. On a GPU every step
    reads the predicate on the host.

    >>> import numpy as np
    >>> int(while_loop(lambda v: v < 100, lambda v: v * 3, np.asarray(1)))
    243
    """
    if not callable(cond_fun) or not callable(body_fun):
        raise TypeError("while_loop: cond_fun and body_fun must be functions of the loop value")
    flat, tree = tree_flatten(init_val)
    flat = [_as_operand(v, f"while_loop: init_val leaf {i}") for i, v in enumerate(flat)]
    nc = len(flat)
    reps = [_representative(v) for v in flat]

    def pred(ins: list[Any]) -> list[Any]:
        p = _as_operand(cond_fun(tree_unflatten(tree, ins)), "while_loop: what cond_fun returned")
        if tuple(p.shape) != () or backend.dtype_name(p.dtype) != "bool":
            raise TypeError(
                f"while_loop: cond_fun must return a boolean scalar, got {backend.dtype_name(p.dtype)}{list(p.shape)}"
            )
        return [p]

    def step(ins: list[Any]) -> list[Any]:
        out_flat, out_tree = tree_flatten(body_fun(tree_unflatten(tree, ins)))
        if out_tree != tree:
            raise TypeError(
                f"while_loop: body_fun returned a value of structure {out_tree}, but init_val has structure {tree}"
            )
        out_flat = [_as_operand(o, "while_loop: a leaf body_fun returned") for o in out_flat]
        for i, (o, v) in enumerate(zip(out_flat, ins)):
            if tuple(o.shape) != tuple(v.shape) or backend.dtype_name(o.dtype) != backend.dtype_name(v.dtype):
                raise TypeError(
                    f"while_loop: leaf {i} of the loop value enters body_fun as {backend.dtype_name(v.dtype)}"
                    f"{list(v.shape)} but body_fun returns {backend.dtype_name(o.dtype)}{list(o.shape)}; it must "
                    "keep its shape and dtype"
                )
        return out_flat

    cond_body, cond_captured = _record(pred, reps, "while_loop: cond_fun")
    body, body_captured = _record(step, reps, "while_loop: body_fun")
    leaves = [*flat, *cond_captured, *body_captured]
    outs = call_higher_order(_WhileCall(cond_body, body, nc, len(cond_captured), leaves), leaves)
    return tree_unflatten(tree, list(outs))


# ---------------------------------------------------------------------------------------------
# cond and switch
# ---------------------------------------------------------------------------------------------


def _known(v: Any) -> Any:
    """The plain value of ``v`` when it is known now (a plain array or number, or a value of
    grad/jvp over one), else None (under vmap, jit, or inside a loop body)."""
    if isinstance(v, Tracer):
        return v._concrete()
    return v


def _select(masks: list[Any], outs: list[Any], where: str, names: Sequence[str]) -> Any:
    """``outs[k]`` where ``masks[k]`` holds (the first that holds; the last output where none
    does), element by element: how a choice that is not known now is made, every branch computed."""
    flats = [tree_flatten(o) for o in outs]
    tree0 = flats[0][1]
    for k, (leaves, tree) in enumerate(flats[1:], 1):
        if tree != tree0:
            raise TypeError(f"{where}: {names[0]} returns a value of structure {tree0} but {names[k]} returns {tree}; they must match")
        for i, (a, b) in enumerate(zip(flats[0][0], leaves)):
            a, b = _as_operand(a, f"{where}: a branch's output"), _as_operand(b, f"{where}: a branch's output")
            if tuple(a.shape) != tuple(b.shape) or backend.dtype_name(a.dtype) != backend.dtype_name(b.dtype):
                raise TypeError(
                    f"{where}: output leaf {i} is {backend.dtype_name(a.dtype)}{list(a.shape)} in {names[0]} but "
                    f"{backend.dtype_name(b.dtype)}{list(b.shape)} in {names[k]}; the branches must agree"
                )
    result = []
    for i in range(len(flats[0][0])):
        acc = flats[-1][0][i]
        for k in range(len(outs) - 2, -1, -1):
            acc = gnp.where(masks[k], flats[k][0][i], acc)
        result.append(acc)
    return tree_unflatten(tree0, result)


def cond(pred: Any, true_fun: Callable[..., Any], false_fun: Callable[..., Any], *operands: Any) -> Any:
    """``true_fun(*operands)`` if ``pred`` else ``false_fun(*operands)``, as ``jax.lax.cond``.

    When ``pred`` is known (eager mode, and inside grad or jvp) only the chosen branch runs. When
    it is not (a batched predicate under vmap, under jit, inside a loop body) both branches run and
    their results are selected element by element with ``where`` (as JAX does under vmap): both
    must then be safe to evaluate, and as with ``where`` a NaN in the branch not taken can still
    reach a gradient.

    >>> import numpy as np, gpuad
    >>> f = lambda x: cond(x > 0, lambda v: v * v, lambda v: -v, x)
    >>> float(gpuad.grad(f)(np.asarray(3.0))), gpuad.vmap(gpuad.grad(f))(np.asarray([3.0, -1.0])).tolist()
    (6.0, [6.0, -1.0])
    """
    if not callable(true_fun) or not callable(false_fun):
        raise TypeError("cond: true_fun and false_fun must be functions of the operands")
    p = _as_operand(pred, "cond: pred")
    if tuple(p.shape) != ():
        raise TypeError(f"cond: pred must be a scalar (a boolean or a number), got shape {tuple(p.shape)}; use gnp.where for arrays of choices")
    known = _known(p)
    if known is not None:
        return true_fun(*operands) if bool(known) else false_fun(*operands)
    mask = p if backend.dtype_name(p.dtype) == "bool" else p != 0
    return _select([mask], [true_fun(*operands), false_fun(*operands)], "cond", ["true_fun", "false_fun"])


def switch(index: Any, branches: Sequence[Callable[..., Any]], *operands: Any) -> Any:
    """``branches[index](*operands)``, with ``index`` clamped to the branches, as
    ``jax.lax.switch``; an unknown index (vmap, jit, loop bodies) runs every branch and selects,
    as :func:`cond` does.

    >>> import numpy as np
    >>> float(switch(5, [lambda x: x + 1, lambda x: x * 10], np.asarray(2.0)))
    20.0
    """
    branches = list(branches)
    if not branches or not all(callable(b) for b in branches):
        raise TypeError("switch: branches must be a non-empty sequence of functions of the operands")
    i = _as_operand(index, "switch: index")
    if tuple(i.shape) != () or not backend.dtype_name(i.dtype).startswith(("int", "uint")):
        raise TypeError(f"switch: index must be an integer scalar, got {backend.dtype_name(i.dtype)}{list(i.shape)}")
    known = _known(i)
    if known is not None:
        return branches[min(max(int(known), 0), len(branches) - 1)](*operands)
    i = gnp.clip(i, 0, len(branches) - 1)
    return _select([i == k for k in range(len(branches) - 1)], [b(*operands) for b in branches], "switch", [f"branch {k}" for k in range(len(branches))])
