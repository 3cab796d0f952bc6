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
per-point parameters, exactly as a tape below a vmap records it; the few that need more (a batching
rule, operands of different per-point rank to line up) are worked out on the tape's *batched view*
of the same values: plain :class:`ReverseTracer` s of this trace, whose shape includes the batch
axis, so that those operations are recorded as the batch-level operations they turn into.

A user's custom rule (custom_jvp, custom_vjp) or a checkpoint met on this tape's values raises
``batching.Unfusable``: the recording starts again as a tape above the vmap, where those are handled
(their per-point bodies may close over the vmap's values, which a batch-level replay could not
place). The function runs twice up to that point, as under any tracing transform it may be run
more than once.
"""

from __future__ import annotations

from typing import Any

from .batching import OnVmapArrays, PerPoint, Unfusable
from .primitives import Primitive
from .reverse import ReverseTrace, ReverseTracer

__all__ = ["BatchedReverseTrace", "PointTracer"]


class PointTracer(PerPoint, ReverseTracer):
    """A value on a batched tape, seen per point: ``primal`` holds every point (batch axis first),
    ``shape`` is one point's."""

    __slots__ = ()

    def __init__(self, trace: "BatchedReverseTrace", primal: Any, node: int | None):
        self._trace = trace
        self.primal = primal
        self.node = node
        self.shape = tuple(primal.shape[1:])
        self.dtype = primal.dtype


class BatchedReverseTrace(OnVmapArrays, ReverseTrace):
    """A tape on the batched arrays of ``vmap`` (the only transform below it), whose values are seen
    per point by the function being differentiated."""

    point_type = PointTracer
    view_type = ReverseTracer
    extra = "node"

    def new_input(self, value: Any) -> PointTracer:
        return PointTracer(self, value, self.new_node())

    def checkpoint_call(self, fun: Any, flat_args: list[Any], in_tree: Any) -> Any:
        raise Unfusable("checkpoint")

    def view_type_process(self, prim: Primitive, args: tuple[Any, ...], params: dict[str, Any]) -> Any:
        return ReverseTrace.process(self, prim, args, params)

    def finish(self, prim: Primitive, vals: list[Any], nodes: list[Any], out: Any, params: dict[str, Any]) -> Any:
        if prim.vjp is None:
            return PointTracer(self, out, None)
        return PointTracer(self, out, self._record_op(prim, vals, nodes, out, params))
