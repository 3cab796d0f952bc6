"""Reverse mode on a vmap's batched arrays: ``vmap(grad(f))`` as one tape, one level.

``grad`` (or ``value_and_grad``) called inside a vmap over plain arrays, on the vmap's own batched
values, would stack two transforms: every operation of ``f`` would go through the tape and then
through the vmap, and every operation of every derivative rule through the vmap again. Points are
independent under vmap, so the same derivatives come from a single tape recorded on the batched
arrays themselves: that is this trace. Its tracers (:class:`PointTracer`) show ``f`` one point
(``shape`` without the batch axis, Python control flow refused as under vmap) and hold every point
in ``primal``; the tape holds plain batched arrays, so the backward sweep's rules compute on plain
arrays, one operation each.

Most primitives compute per point with the batch as an extra leading axis (see primitives.py), so
an operation on such values is the table's ``impl`` on the batched arrays, recorded with the same
per-point parameters, exactly as a tape below a vmap records it. The few that need more (a batching
rule, operands of different per-point rank to line up) are worked out on the tape's *batched view*
of the same values: plain :class:`ReverseTracer` s of this trace, whose shape includes the batch
axis, so that those operations are recorded as the batch-level operations they turn into.

A user's custom rule (custom_jvp, custom_vjp) or a checkpoint met on this tape's values raises
:class:`Unfusable`: the recording starts again as a tape above the vmap, where those are handled
(their per-point bodies may close over the vmap's values, which a batch-level replay could not
place). The function runs twice up to that point, as under any tracing transform it may be run
more than once.
"""

from __future__ import annotations

from typing import Any

from .batching import BatchTrace, BatchTracer, align_ranks
from .primitives import Primitive
from .reverse import ReverseTrace, ReverseTracer
from .tracing import Tracer, bind, eager

__all__ = ["BatchedReverseTrace", "PointTracer", "Unfusable"]


class Unfusable(BaseException):
    """Internal: this recording meets something the batched tape does not handle; record again the
    general way. (A BaseException, so that a user's ``except Exception`` around the call does not
    swallow it.)"""


class PointTracer(ReverseTracer):
    """A value on a batched tape, seen per point: ``primal`` holds every point (batch axis first),
    ``shape`` is one point's."""

    __slots__ = ()

    def __init__(self, trace: "BatchedReverseTrace", primal: Any, node: int | None):
        self._trace = trace
        self.primal = primal
        self.node = node
        self.shape = tuple(primal.shape[1:])
        self.dtype = primal.dtype

    @property
    def ndim(self) -> int:
        return self.primal.ndim - 1

    def _concrete(self) -> Any:
        return None  # a value per point: never one concrete array

    # The same refusals as any batched value (a vmap is what the user wrote).
    __bool__ = BatchTracer.__bool__
    __float__ = BatchTracer.__float__
    __int__ = BatchTracer.__int__
    __index__ = BatchTracer.__index__

    def batched_view(self) -> Any:
        """The same value as the tape's batch-level value (a plain array where it is a constant)."""
        return self.primal if self.node is None else ReverseTracer(self._trace, self.primal, self.node)


class BatchedReverseTrace(ReverseTrace):
    """A tape on the batched arrays of ``vmap`` (the only transform below it), whose values are seen
    per point by the function being differentiated."""

    def __init__(self, level: int, xp: Any, device: Any = None, vmap: BatchTrace | None = None):
        super().__init__(level, xp, device)
        self.vmap = vmap
        self.size = vmap.size if vmap is not None else 0

    def new_input(self, value: Any) -> PointTracer:
        return PointTracer(self, value, self.new_node())

    def checkpoint_call(self, fun: Any, flat_args: list[Any], in_tree: Any) -> Any:
        raise Unfusable("checkpoint")

    def lift(self, v: Any) -> Any:
        """A value of this trace as the vmap's value (what the user gets back)."""
        if type(v) is PointTracer and v._trace is self:
            return BatchTracer(self.vmap, v.primal)
        return v

    def per_point(self, v: Any) -> Any:
        """A batch-level result (a batched view, or a plain batched array) seen per point again."""
        if type(v) is ReverseTracer and v._trace is self:
            return PointTracer(self, v.primal, v.node)
        if isinstance(v, Tracer):
            raise AssertionError(f"a batch-level operation returned {v!r}")  # internal invariant
        return PointTracer(self, v, None)

    def unwrap(self, v: Any) -> tuple[Any, bool]:
        """``(batch-level value, batched?)`` of an argument of a per-point operation."""
        t = type(v)
        if t is PointTracer and v._trace is self:
            return v.batched_view(), True
        if t is BatchTracer and v._trace is self.vmap:
            return v.val, True
        return v, False

    def process(self, prim: Primitive, args: tuple[Any, ...], params: dict[str, Any]) -> Any:
        vals = []
        nodes = []
        active = False
        per_point = False
        top = -1  # the highest per-point rank among the operands
        batched_ranks = []
        vmap = self.vmap
        for a in args:
            t = type(a)
            if t is PointTracer and a._trace is self:
                v = a.primal
                n = a.node
                if n is not None:
                    active = True
                per_point = True
                r = v.ndim - 1
                batched_ranks.append(r)
            elif t is BatchTracer and a._trace is vmap:
                v = a.val
                n = None
                r = v.ndim - 1
                batched_ranks.append(r)
            else:
                if isinstance(a, Tracer):
                    if t is ReverseTracer and a._trace is self:
                        # The batched view (inside a batching rule, alignment or custom call): the
                        # tape of a plain reverse-mode transform on the batched arrays.
                        return ReverseTrace.process(self, prim, args, params)
                    if not a._trace.alive:
                        return bind(prim, a)  # a leaked tracer: bind says what went wrong
                    raise AssertionError(f"{prim.name}: unexpected {a!r} below a batched tape")  # internal
                v = a
                n = None
                r = v.ndim
            if r > top:
                top = r
            vals.append(v)
            nodes.append(n)
        if not per_point:  # only the vmap's own values (a closure): the vmap computes it
            return bind(prim, *[self.unwrap(x)[0] for x in args], **params)
        if prim.batch is not None or any(r != top for r in batched_ranks):
            return self._at_batch_level(prim, args, params)
        out = eager(prim, vals, params)
        if not active or prim.vjp is None:
            return PointTracer(self, out, None)
        return PointTracer(self, out, self._record_op(prim, vals, nodes, out, params))

    def _at_batch_level(self, prim: Primitive, args: tuple[Any, ...], params: dict[str, Any]) -> Any:
        """What the vmap would do with the operation, done on the batched views: a batching rule,
        or the operands' ranks lined up first; every operation recorded at the batch level."""
        vals, batched = [], []
        for a in args:
            v, b = self.unwrap(a)
            vals.append(v)
            batched.append(b)
        if prim.batch is not None:
            out = prim.batch(vals, tuple(batched), self.size, **params)
        else:
            out = bind(prim, *align_ranks(vals, batched), **params)
        return self.per_point(out)
