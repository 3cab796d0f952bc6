"""Forward mode: dual values (primal, tangent) pushed through the JVP rules of the table."""

from __future__ import annotations

from typing import Any

from .primitives import Primitive, broadcasted, cast, plus
from .tracing import HigherOrderCall, PrimalTracer, Trace, Tracer, apply_below

__all__ = ["JVPTrace", "JVPTracer", "push_tangents"]


class JVPTracer(PrimalTracer):
    """A dual value: the primal (one level down) and its tangent (None for a zero tangent)."""

    __slots__ = ("primal", "tangent", "shape", "dtype")  # shape and dtype: read often, stored once
    transform = "jvp"

    def __init__(self, trace: "JVPTrace", primal: Any, tangent: Any):
        self._trace = trace
        self.primal = primal
        self.tangent = tangent
        self.shape = tuple(primal.shape)
        self.dtype = primal.dtype

    def is_differentiated(self) -> bool:
        return self.tangent is not None


class JVPTrace(Trace):
    """One forward-mode transform call."""

    def __init__(self, level: int, xp: Any, device: Any = None):
        super().__init__(level, xp, device)

    def new_input(self, primal: Any, tangent: Any) -> JVPTracer:
        return JVPTracer(self, primal, tangent)

    def process_call(self, call: HigherOrderCall) -> Any:
        return call.jvp(self)

    def process(self, prim: Primitive, args: tuple[Any, ...], params: dict[str, Any]) -> Any:
        primals = []
        tangents = []
        active = False
        below = None  # the highest trace one level down, as in ReverseTrace.process
        for a in args:
            if type(a) is JVPTracer and a._trace is self:
                p = a.primal
                primals.append(p)
                tangents.append(a.tangent)
                active = active or a.tangent is not None
            else:
                p = a
                primals.append(a)
                tangents.append(None)
            if isinstance(p, Tracer):
                t = p._trace
                if below is None or t.level > below.level:
                    below = t
        out = apply_below(below, prim, primals, params)
        if not active or prim.jvp is None:
            return JVPTracer(self, out, None)  # zero tangent; still a tracer (see ReverseTrace)
        return JVPTracer(self, out, push_tangents(prim, tangents, out, primals, params))


def push_tangents(prim: Primitive, tangents: list[Any], out: Any, primals: list[Any], params: dict[str, Any]) -> Any:
    """The tangent of ``prim``'s output ``out`` (None: zero) from its inputs' tangents (None: zero),
    by the table's JVP rules."""
    rules = prim.jvp
    if callable(rules):
        t_out = rules(tuple(tangents), out, *primals, **params)
    else:
        t_out = None
        for t, rule in zip(tangents, rules):
            if t is None or rule is None:
                continue
            c = rule(t, out, *primals, **params)
            if c is not None:
                t_out = c if t_out is None else plus(t_out, c)
    return None if t_out is None else _fit_tangent(t_out, out)


def _fit_tangent(t: Any, out: Any) -> Any:
    """A tangent in its primal's shape and dtype (a contribution from a broadcast input may be
    smaller; a float64 constant may have promoted it)."""
    t = broadcasted(t, tuple(out.shape))
    return t if t.dtype == out.dtype else cast(t, out.dtype)
