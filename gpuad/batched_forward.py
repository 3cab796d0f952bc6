"""Forward mode on a vmap's batched arrays: ``vmap(lambda x, t: jvp(f, (x,), (t,)))`` as one trace.

The forward-mode twin of batched_reverse.py. ``jvp`` called inside a vmap over plain arrays, on the
vmap's own values, would stack two transforms (each operation of ``f`` through the vmap, then the
dual numbers). Points are independent, so the same tangents come from one forward trace whose dual
values (:class:`PointDual`) hold every point's primal and tangent as plain batched arrays and show
``f`` one point. Most operations are then the table's ``impl`` and JVP rules applied to the batched
arrays with per-point parameters; those that need the vmap (a batching rule, ranks to line up) are
done on the batched views (see ``batching.OnVmapArrays``). A custom_jvp rule met on these values
raises ``Unfusable``: jvp starts again the general way.
"""

from __future__ import annotations

from typing import Any

from .batching import OnVmapArrays, PerPoint
from .forward import JVPTrace, JVPTracer, push_tangents
from .primitives import Primitive

__all__ = ["BatchedJVPTrace", "PointDual"]


class PointDual(PerPoint, JVPTracer):
    """A dual value on a batched forward trace, seen per point: ``primal`` and ``tangent`` (None: zero)
    hold every point, batch axis first; ``shape`` is one point's."""

    __slots__ = ()

    def __init__(self, trace: "BatchedJVPTrace", primal: Any, tangent: Any):
        self._trace = trace
        self.primal = primal
        self.tangent = tangent
        self.shape = tuple(primal.shape[1:])
        self.dtype = primal.dtype


class BatchedJVPTrace(OnVmapArrays, JVPTrace):
    """A forward trace on the batched arrays of ``vmap`` (the only transform below it), whose values
    are seen per point by the function being pushed forward."""

    point_type = PointDual
    view_type = JVPTracer
    extra = "tangent"

    def new_input(self, primal: Any, tangent: Any) -> PointDual:
        return PointDual(self, primal, tangent)

    def view_type_process(self, prim: Primitive, args: tuple[Any, ...], params: dict[str, Any]) -> Any:
        return JVPTrace.process(self, prim, args, params)

    def finish(self, prim: Primitive, vals: list[Any], tangents: list[Any], out: Any, params: dict[str, Any]) -> Any:
        if prim.jvp is None:
            return PointDual(self, out, None)
        return PointDual(self, out, push_tangents(prim, tangents, out, vals, params))
