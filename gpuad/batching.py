"""vmap's trace: a batched value is one array whose axis 0 is the batch.

Every primitive's implementation accepts extra leading axes (axes are negative, shapes per point; see
primitives.py), so batching a primitive is mostly bookkeeping: move each batched operand's batch axis
to the front (done once, on entry), give batched operands of lower rank size-1 axes right after the
batch axis so that broadcasting lines up per point, and call the same primitive one level down. The
few primitives for which that is not enough (concat, and gathers/scatters with per-point indices)
carry their own ``batch`` rule in the table.
"""

from __future__ import annotations

from typing import Any

from .backend import NAMESPACE_BY_TYPE
from .speedups import repeat_rows_outside, rows_outside
from .primitives import Primitive, align_ranks
from .tracing import HigherOrderCall, Trace, Tracer, bind, eager

__all__ = ["BatchTrace", "BatchTracer", "align_ranks", "basis_rows"]


class BatchTracer(Tracer):
    """A batched value: ``val`` holds all points, batch axis first; ``shape`` is one point's."""

    # shape and dtype are read several times per operation (the tape records them, the sweep
    # compares against them): stored once rather than derived on every read.
    __slots__ = ("val", "shape", "dtype")

    def __init__(self, trace: "BatchTrace", val: Any):
        self._trace = trace
        self.val = val
        self.shape = tuple(val.shape[1:])
        self.dtype = val.dtype

    @property
    def ndim(self) -> int:
        return self.val.ndim - 1  # without building the shape tuple (align_ranks asks on every op)

    @property
    def device(self) -> Any:
        return self._trace.device

    def __bool__(self) -> bool:
        raise TypeError(
            "the truth value of a batched value is different for each point: use gnp.where(cond, a, b) "
            "instead of Python control flow inside vmap"
        )

    def __float__(self) -> float:
        raise TypeError("a batched value has one number per point; float() needs a single number")  # host-ok: a message

    __int__ = __index__ = __float__  # type: ignore[assignment]


class BatchTrace(Trace):
    """One vmap call: ``size`` points."""

    def __init__(self, level: int, xp: Any, device: Any = None, size: int = 0):
        super().__init__(level, xp, device)
        self.size = size

    def process_call(self, call: HigherOrderCall) -> Any:
        return call.batch(self)

    def process(self, prim: Primitive, args: tuple[Any, ...], params: dict[str, Any]) -> Any:
        if prim.batch is None:
            n = len(args)
            if n == 1:
                # A unary op (the commonest case): its one argument is this trace's, as bind found.
                v = args[0].val
                return BatchTracer(self, bind(prim, v, **params) if isinstance(v, Tracer) else eager(prim, (v,), params))
            if n == 2:
                # A binary op on two values of this trace of one per-point rank (the next commonest:
                # most tangent and cotangent arithmetic): nothing to align, no operand lists.
                a, b = args
                ta, tb = type(a), type(b)
                if ta is BatchTracer and tb is BatchTracer and a._trace is self and b._trace is self:
                    va = a.val
                    vb = b.val
                    if va.ndim == vb.ndim:
                        if isinstance(va, Tracer) or isinstance(vb, Tracer):
                            return BatchTracer(self, bind(prim, va, vb, **params))
                        return BatchTracer(self, eager(prim, (va, vb), params))
                # One batched operand and one plain array of no higher per-point rank (a bias, a
                # scalar): the plain one broadcasts from the right as it is.
                elif ta is BatchTracer and tb in NAMESPACE_BY_TYPE and a._trace is self and not isinstance(b, Tracer):
                    va = a.val
                    if type(va) in NAMESPACE_BY_TYPE and not isinstance(va, Tracer) and va.ndim > b.ndim:
                        return BatchTracer(self, eager(prim, (va, b), params))
                elif tb is BatchTracer and ta in NAMESPACE_BY_TYPE and b._trace is self and not isinstance(a, Tracer):
                    vb = b.val
                    if type(vb) in NAMESPACE_BY_TYPE and not isinstance(vb, Tracer) and vb.ndim > a.ndim:
                        return BatchTracer(self, eager(prim, (a, vb), params))
        vals = []
        batched = []
        plain = True  # every value a plain array: the bottom level, computed here directly
        for a in args:
            if type(a) is BatchTracer and a._trace is self:
                v = a.val
                vals.append(v)
                batched.append(True)
            else:
                v = a
                vals.append(a)
                batched.append(False)
            if plain and isinstance(v, Tracer):
                plain = False
        rule = prim.batch
        if rule is not None:
            out = rule(vals, tuple(batched), self.size, **params)  # bsize is positional-only
        else:
            if len(vals) > 1:
                vals = align_ranks(vals, batched)
            out = eager(prim, vals, params) if plain else bind(prim, *vals, **params)
        return BatchTracer(self, out)


def basis_rows(block: Any, like: Any, xp: Any) -> Any:
    """The rows of a basis (jacrev's one-hot cotangents, jacfwd's tangents), ``block`` of shape
    (rows, *shape), for a value ``like`` of that shape. Under a vmap over plain arrays, and where
    the backend prefers it (see ``speedups.rows_outside``), the rows are repeated for every point in
    a layout with the batch innermost, so that the whole sweep works in long contiguous runs;
    otherwise ``block`` as it is (shared by all points, broadcast by the operations)."""
    if type(like) is BatchTracer and not isinstance(like.val, Tracer) and rows_outside(xp, block.shape[0]):
        return BatchTracer(like._trace, repeat_rows_outside(block, like.val.shape[0]))
    return block
