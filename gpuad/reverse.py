"""Reverse mode: a tape of records (a Wengert list) and a backward sweep over it.

The forward sweep appends one record per primitive applied to a traced value: which primitive, which
nodes went in, which node came out, the parameters, and only the values its VJP rules read. The
backward sweep walks the list from the end in a plain loop, accumulates fan-out by addition, sums
each cotangent back over broadcast axes to its input's shape, and drops every record and cotangent
as soon as it has been used.
"""

from __future__ import annotations

from typing import Any, Sequence

from .cotangents import Cotangents
from .forward import JVPTrace, JVPTracer, push_tangents
from .primitives import Primitive, add
from .tracing import Aval, HigherOrderCall, PrimalTracer, Trace, Tracer, apply_below, open_trace
from .tree import tree_flatten, tree_unflatten

__all__ = ["ReverseTrace", "ReverseTracer", "Record", "backward", "CHECKPOINT"]


class ReverseTracer(PrimalTracer):
    """A value on a tape: its primal value (one level down) and the id of its node (None for a
    value that does not depend on the inputs)."""

    __slots__ = ("primal", "node", "shape", "dtype")  # shape and dtype: read often, stored once
    transform = "grad"

    def __init__(self, trace: "ReverseTrace", primal: Any, node: int | None):
        self._trace = trace
        self.primal = primal
        self.node = node
        self.shape = tuple(primal.shape)
        self.dtype = primal.dtype

    def is_differentiated(self) -> bool:
        return self.node is not None


class Record:
    """One line of the Wengert list."""

    __slots__ = ("prim", "in_nodes", "out_node", "args", "ans", "params", "in_avals", "out_aval")

    def __init__(self, prim: Primitive, in_nodes, out_node, args, ans, params, in_avals, out_aval=None):
        self.prim = prim
        self.in_nodes = in_nodes  # node id per input, None for constants
        self.out_node = out_node
        self.args = args  # kept inputs, or their Aval where the rules need no data
        self.ans = ans  # the output, or None where the rules do not read it
        self.params = params
        self.in_avals = in_avals  # (shape, dtype) of the traced inputs, to undo broadcasting
        self.out_aval = out_aval  # (shape, dtype) of the output, for replaying tangents forward

    def __repr__(self) -> str:
        ins = ", ".join("const" if n is None else f"v{n}" for n in self.in_nodes)
        outs = self.out_node if isinstance(self.out_node, tuple) else (self.out_node,)
        return f"{', '.join(f'v{n}' for n in outs)} = {self.prim.name}({ins})"


class ReverseTrace(Trace):
    """One reverse-mode transform call and its tape."""

    def __init__(self, level: int, xp: Any, device: Any = None):
        super().__init__(level, xp, device)
        self.tape: list[Record | None] = []
        self._nodes = 0

    def new_node(self) -> int:
        self._nodes += 1
        return self._nodes - 1

    def new_input(self, value: Any) -> ReverseTracer:
        return ReverseTracer(self, value, self.new_node())

    def process_call(self, call: HigherOrderCall) -> Any:
        return call.reverse(self)

    def process(self, prim: Primitive, args: tuple[Any, ...], params: dict[str, Any]) -> Any:
        primals = []
        in_nodes = []
        active = False
        below = None  # the highest trace among the values one level down (None: plain arrays)
        for a in args:
            if type(a) is ReverseTracer and a._trace is self:
                p = a.primal
                n = a.node
                if n is not None:
                    active = True
            else:
                p = a
                n = None
            if isinstance(p, Tracer):
                t = p._trace
                if below is None or t.level > below.level:
                    below = t
            primals.append(p)
            in_nodes.append(n)
        # The bottom trace computes on plain arrays directly; above it the values one level down
        # are tracers of the enclosing transforms: the highest of those traces takes the op (what
        # ``bind`` would find, without searching again).
        out = apply_below(below, prim, primals, params)
        if not active or prim.vjp is None:
            # A constant at this level. It stays a tracer (without a node) so that operators on it
            # keep dispatching to gpuad, whatever library sits underneath.
            return ReverseTracer(self, out, None)
        return ReverseTracer(self, out, self._record_op(prim, primals, in_nodes, out, params))

    def _record_op(self, prim: Primitive, primals: list[Any], in_nodes: list[Any], out: Any, params: dict[str, Any]) -> int:
        """Put one operation on the tape (what its rule needs of the inputs kept, the rest as
        shapes): the node of its output."""
        if prim.keeps_all_args:
            args_kept = primals
            in_avals = [(p.shape, p.dtype) for p in primals]
        else:
            kept = prim.kept_args
            device, xp = self.device, self.xp
            args_kept = []
            in_avals = []
            for i, p in enumerate(primals):
                shape, dtype = p.shape, p.dtype
                in_avals.append((shape, dtype))
                args_kept.append(p if i in kept else Aval(shape, dtype, device, xp))
        node = self._nodes
        self._nodes = node + 1
        self._append(
            Record(prim, in_nodes, node, args_kept, out if prim.keeps_ans else None, params, in_avals, (out.shape, out.dtype)),
            primals,
            out,
        )
        return node

    def _append(self, record: Record, inputs: list[Any], outputs: Any) -> None:
        """Put a line on the tape. ``inputs`` are all its input values and ``outputs`` its output
        value (a list for a record with several outputs): what a recording that keeps every value
        (gpuad.make_tape) overrides this to see."""
        self.tape.append(record)

    def checkpoint_call(self, fun: Any, flat_args: list[Any], in_tree: Any) -> Any:
        """Run ``fun`` one level down, so none of its intermediate values lands on this tape, and
        record one line that recomputes it during the backward sweep."""
        primals = [a.primal if type(a) is ReverseTracer and a._trace is self else a for a in flat_args]
        in_nodes = [a.node if type(a) is ReverseTracer and a._trace is self else None for a in flat_args]
        out = fun(*tree_unflatten(in_tree, primals))
        out_flat, out_tree = tree_flatten(out)
        if any(type(o) is ReverseTracer and o._trace is self for o in out_flat):
            raise ValueError(
                "checkpoint: the function uses a value that is being differentiated without receiving "
                "it as an argument (a closure); pass every differentiated value as an argument"
            )
        active = tuple(n is not None for n in in_nodes)
        arrays = [isinstance(o, Tracer) or hasattr(o, "shape") for o in out_flat]
        if not any(active):
            return tree_unflatten(out_tree, [ReverseTracer(self, o, None) if a else o for o, a in zip(out_flat, arrays)])
        nodes = tuple(self.new_node() if a else -1 for a in arrays)
        in_avals = [None if n is None else (tuple(p.shape), p.dtype) for n, p in zip(in_nodes, primals)]
        params = {"fun": fun, "in_tree": in_tree, "active": active, "xp": self.xp, "device": self.device}
        self._append(Record(CHECKPOINT, in_nodes, nodes, primals, None, params, in_avals), primals, list(out_flat))
        return tree_unflatten(
            out_tree, [ReverseTracer(self, o, n) if a else o for o, n, a in zip(out_flat, nodes, arrays)]
        )


def _checkpoint_impl(xp: Any, *args: Any, fun: Any, in_tree: Any, active: Any, **_: Any) -> Any:
    return tuple(tree_flatten(fun(*tree_unflatten(in_tree, list(args))))[0])


def _checkpoint_vjp(gs, ans, *args, fun, in_tree, active, xp, device):
    """Recompute the segment's forward from its saved inputs on a fresh tape, then sweep back."""
    with open_trace(ReverseTrace, xp, device=device) as trace:
        ins = [trace.new_input(a) if act else a for a, act in zip(args, active)]
        out_flat = tree_flatten(fun(*tree_unflatten(in_tree, ins)))[0]
    seeds: dict[int, Any] = {}
    for o, g in zip(out_flat, gs):
        if g is None or not (type(o) is ReverseTracer and o._trace is trace and o.node is not None):
            continue
        seeds[o.node] = add(seeds[o.node], g) if o.node in seeds else g
    wanted = [i.node for i, act in zip(ins, active) if act]
    grads = iter(backward(trace.tape, seeds, wanted, consume=True))
    return tuple(next(grads) if act else None for act in active)


def _checkpoint_jvp(tangents, ans, *args, fun, in_tree, active, xp, device):
    """Tangents of the segment's outputs (for linearize's replay): forward mode through it."""
    with open_trace(JVPTrace, xp, device=device) as trace:
        ins = [trace.new_input(a, t) if act else a for a, t, act in zip(args, tangents, active)]
        out_flat = tree_flatten(fun(*tree_unflatten(in_tree, ins)))[0]
    return tuple(o.tangent if type(o) is JVPTracer and o._trace is trace else None for o in out_flat)


# A higher-order record rather than an array operation: it lives with the tape, not in the table.
CHECKPOINT = Primitive(
    "checkpoint", _checkpoint_impl, jvp=_checkpoint_jvp, vjp=_checkpoint_vjp, residuals=("args",)
)


def forward_sweep(tape: list[Record | None], tangents: dict[int, Any], wanted: Sequence[int | None]) -> list[Any]:
    """Push input tangents (node -> tangent) forward through a recorded tape with the JVP rules and
    the values the records kept: ``linearize``'s replay, with no primal recomputed."""
    tan: dict[int, Any] = dict(tangents)
    for rec in tape:
        if rec is None:
            continue
        ts = [None if n is None else tan.get(n) for n in rec.in_nodes]
        if all(t is None for t in ts):
            continue
        if isinstance(rec.out_node, tuple):  # a higher-order record: one joint rule, a tuple out
            for n, t in zip(rec.out_node, rec.prim.jvp(tuple(ts), rec.ans, *rec.args, **rec.params)):
                if t is not None and n >= 0:
                    tan[n] = t
            continue
        # The rules read the output only where the record kept it; elsewhere its shape will do.
        ans = rec.ans if rec.ans is not None else Aval(*rec.out_aval, None, None)
        t = push_tangents(rec.prim, ts, ans, rec.args, rec.params)
        if t is not None:
            tan[rec.out_node] = t
    return [None if n is None else tan.get(n) for n in wanted]


def backward(
    tape: list[Record | None], seeds: dict[int, Any], wanted: Sequence[int], *, consume: bool, fresh: bool = False
) -> list[Any]:
    """Propagate cotangents ``seeds`` (node -> cotangent) back through ``tape``.

    Returns the cotangent of each node in ``wanted`` (None where it is zero). With ``consume`` the
    records are dropped as the sweep passes them, releasing the forward values they held. With
    ``fresh`` the results are the caller's to keep and write into (see cotangents.py).
    """
    cts = Cotangents(seeds)
    for i in range(len(tape) - 1, -1, -1):
        rec = tape[i]
        if consume:
            tape[i] = None
        if rec is None:
            continue
        g, g_borrowed = cts.pop(rec.out_node)
        if g is None:
            continue
        prim, args = rec.prim, rec.args
        vjp, place = prim.vjp, prim.reads_part
        if place is not None:  # a read of part of input 0: its cotangent joins that input's parts
            if rec.in_nodes[0] is not None:
                cts.add_part(rec.in_nodes[0], place(rec.ans, *args, **rec.params), g, rec.in_avals[0])
            del g, rec, args
            continue
        joint = vjp(g, rec.ans, *args, **rec.params) if callable(vjp) else None
        for j, (node, aval) in enumerate(zip(rec.in_nodes, rec.in_avals)):
            if node is None:
                continue
            c = joint[j] if joint is not None else (None if vjp[j] is None else vjp[j](g, rec.ans, *args, **rec.params))
            if c is not None:
                cts.add(node, c, aval, g, g_borrowed, rec)
        del g, joint, rec, args
    return [cts.result(n, fresh) for n in wanted]
