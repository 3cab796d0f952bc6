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

from . import primitives as _p
from .backend import SEEN_ARRAY_TYPES as _PLAIN_TYPES
from .backend import repeat_rows_outside, rows_outside
from .primitives import Primitive, gnp
from .tracing import _STACK, Trace, Tracer, bind, eager
from .uniform import Uniform

__all__ = ["BatchTrace", "BatchTracer", "OnVmapArrays", "PerPoint", "Unfusable", "align_ranks", "basis_rows", "under_bottom_vmap"]


class Unfusable(BaseException):
    """Internal: a transform recording on a vmap's batched arrays (batched_reverse.py,
    batched_forward.py) met something it does not handle (a custom rule, a checkpoint): record
    again the general way. (A BaseException, so that a user's ``except Exception`` around the call does not
    swallow it.)"""


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
        raise TypeError("a batched value has one number per point; float() needs a single number")

    __int__ = __index__ = __float__  # type: ignore[assignment]


class PerPoint:
    """A tracer mixin for the values of a transform recording on a vmap's batched arrays (see
    OnVmapArrays): ``primal`` holds every point, batch axis first; ``shape`` is one point's; Python
    control flow on them is refused as on any batched value (a vmap is what the user wrote)."""

    __slots__ = ()

    @property
    def ndim(self) -> int:
        return self.primal.ndim - 1  # type: ignore[attr-defined]

    def _concrete(self) -> Any:
        return None  # a value per point: never one concrete array

    __bool__ = BatchTracer.__bool__
    __float__ = BatchTracer.__float__
    __int__ = BatchTracer.__int__
    __index__ = BatchTracer.__index__


class BatchTrace(Trace):
    """One vmap call: ``size`` points."""

    def __init__(self, level: int, xp: Any, device: Any = None, size: int = 0, twin: "BatchTrace | None" = None):
        super().__init__(level, xp, device)
        self.size = size
        # The vmap this one stands in for, above a transform that works on that vmap's plain arrays
        # (see ``under_bottom_vmap``): the twin's values are this trace's own batched values.
        self.twin = twin

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
                elif ta is BatchTracer and tb in _PLAIN_TYPES and a._trace is self and not isinstance(b, Tracer):
                    va = a.val
                    if type(va) in _PLAIN_TYPES and not isinstance(va, Tracer) and va.ndim > b.ndim:
                        return BatchTracer(self, eager(prim, (va, b), params))
                elif tb is BatchTracer and ta in _PLAIN_TYPES and b._trace is self and not isinstance(a, Tracer):
                    vb = b.val
                    if type(vb) in _PLAIN_TYPES and not isinstance(vb, Tracer) and vb.ndim > a.ndim:
                        return BatchTracer(self, eager(prim, (a, vb), params))
        vals = []
        batched = []
        plain = True  # every value a plain array: the bottom level, computed here directly
        twin = self.twin
        for a in args:
            if type(a) is BatchTracer and (a._trace is self or (twin is not None and a._trace is twin)):
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


def under_bottom_vmap(values: list[Any]) -> "BatchTrace | None":
    """The vmap whose values these all are, when it is the only active transform (so that they hold
    plain arrays), else None. A transform called there on such values may run on the plain arrays
    instead, with a stand-in vmap above it (``BatchTrace(twin=...)``): the same result, with the
    transform's rules applied to plain arrays rather than each through the batch trace."""
    stack = _STACK.traces
    if len(stack) != 1:
        return None
    top = stack[0]
    if type(top) is not BatchTrace or not values:
        return None
    for v in values:
        if type(v) is not BatchTracer or v._trace is not top or isinstance(v.val, Tracer):
            return None
    return top


class OnVmapArrays:
    """A transform recording on the batched arrays of ``vmap`` (the only transform below it), whose
    values the transformed function sees per point: the shared part of BatchedReverseTrace (one
    tape for ``vmap(grad(f))``) and BatchedJVPTrace (one forward trace for ``vmap(jvp)``).

    Its per-point values (``point_type``: a tracer of the transform holding every point, batch axis
    first, with ``extra`` its node or tangent) and the vmap's own values (closures) enter an
    operation as their batched arrays: most primitives compute per point with the batch as an extra
    leading axis (see primitives.py), so the operation is the table's ``impl`` on those arrays with
    the per-point parameters, and the transform's rule on top (``finish``). An operation that needs
    the vmap's help (a batching rule, or operands of different per-point rank to line up) is worked
    out on the transform's *batched views* of its values (its plain tracers, ``view_type``, batch
    axis included), so the operations it turns into are transformed at the batch level."""

    point_type: type
    view_type: type
    extra: str  # the attribute the point and view types share besides ``primal``

    def __init__(self, level: int, xp: Any, device: Any = None, vmap: "BatchTrace | None" = None):
        super().__init__(level, xp, device)  # type: ignore[call-arg]  (the transform's own trace)
        self.vmap = vmap
        self.size = vmap.size if vmap is not None else 0

    def finish(self, prim: Primitive, vals: list[Any], extras: list[Any], out: Any, params: dict[str, Any]) -> Any:
        """The transform's part of an operation on per-point values, some with a node (a tangent):
        its result seen per point (``out``: the batched result)."""
        raise NotImplementedError

    def lift(self, v: Any) -> Any:
        """A value of this trace as the vmap's value (what the user gets back)."""
        if type(v) is self.point_type and v._trace is self:
            return BatchTracer(self.vmap, v.primal)
        return v

    def per_point(self, v: Any) -> Any:
        """A batch-level result (a batched view, or a plain batched array) seen per point again."""
        if type(v) is self.view_type and v._trace is self:
            return self.point_type(self, v.primal, getattr(v, self.extra))
        if isinstance(v, Tracer):
            raise AssertionError(f"a batch-level operation returned {v!r}")  # internal invariant
        return self.point_type(self, v, None)

    def unwrap(self, v: Any) -> tuple[Any, bool]:
        """``(batch-level value, batched?)`` of an argument of a per-point operation."""
        t = type(v)
        if t is self.point_type and v._trace is self:
            return self.view_type(self, v.primal, getattr(v, self.extra)), True
        if t is BatchTracer and v._trace is self.vmap:
            return v.val, True
        return v, False

    def process(self, prim: Primitive, args: tuple[Any, ...], params: dict[str, Any]) -> Any:
        vals = []
        extras = []
        active = False  # some operand has a node (a tangent)
        per_point = False
        top = -1  # the highest per-point rank among the operands
        low = 1 << 30  # the lowest per-point rank of a batched operand
        vmap, point_type, extra = self.vmap, self.point_type, self.extra
        for a in args:
            t = type(a)
            if t is point_type and a._trace is self:
                v = a.primal
                e = getattr(a, extra)
                if e is not None:
                    active = True
                per_point = True
                r = v.ndim - 1
                if r < low:
                    low = r
            elif t is BatchTracer and a._trace is vmap:
                v = a.val
                e = None
                r = v.ndim - 1
                if r < low:
                    low = r
            else:
                if isinstance(a, Tracer):
                    if t is self.view_type and a._trace is self:
                        # A batched view (inside a batching rule or an alignment): the plain
                        # transform on the batched arrays.
                        return self.view_type_process(prim, args, params)
                    if not a._trace.alive:
                        return bind(prim, a)  # a leaked tracer: bind says what went wrong
                    raise AssertionError(f"{prim.name}: unexpected {a!r} below {self!r}")  # internal
                v = a
                e = None
                r = v.ndim
            if r > top:
                top = r
            vals.append(v)
            extras.append(e)
        if not per_point:  # only the vmap's own values (a closure): the vmap computes it
            return bind(prim, *[self.unwrap(x)[0] for x in args], **params)
        if prim.batch is not None or low != top:  # some batched operand is below the top rank
            return self._at_batch_level(prim, args, params)
        out = eager(prim, vals, params)
        if not active:
            return self.point_type(self, out, None)
        return self.finish(prim, vals, extras, out, params)

    def view_type_process(self, prim: Primitive, args: tuple[Any, ...], params: dict[str, Any]) -> Any:
        raise NotImplementedError

    def _at_batch_level(self, prim: Primitive, args: tuple[Any, ...], params: dict[str, Any]) -> Any:
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


def align_ranks(vals: list[Any], batched: list[bool] | tuple[bool, ...]) -> list[Any]:
    """Give each batched operand size-1 axes after its batch axis until all operands have the same
    per-point rank, so NumPy broadcasting pairs point with point (unbatched operands broadcast from
    the right as they are)."""
    if len(vals) == 2 and vals[0].ndim - batched[0] == vals[1].ndim - batched[1]:
        return vals  # a binary op on operands of one per-point rank: nothing to align
    ranks = [v.ndim - b for v, b in zip(vals, batched)]  # b is a bool: 1 for the batch axis
    top = max(ranks)
    for r, b in zip(ranks, batched):
        if b and r != top:
            break
    else:
        return vals  # every batched operand already has the full per-point rank
    out = []
    for v, b, r in zip(vals, batched, ranks):
        if b and r < top:
            shape = (v.shape[0],) + (1,) * (top - r) + tuple(v.shape[1:])
            if isinstance(v, Tracer) or type(v) is Uniform:
                v = gnp.reshape(v, shape)
            else:  # a plain array (the bottom batch level): the table's reshape without the checks
                v = eager(_p.reshape, (v,), {"shape": shape, "in_ndim": v.ndim})
        out.append(v)
    return out


def basis_rows(block: Any, like: Any, xp: Any) -> Any:
    """The rows of a basis (jacrev's one-hot cotangents, jacfwd's tangents), ``block`` of shape
    (rows, *shape), for a value ``like`` of that shape. Under a vmap over plain arrays, and where
    the backend prefers it (see ``backend.rows_outside``), the rows are repeated for every point in
    a layout with the batch innermost, so that the whole sweep works in long contiguous runs;
    otherwise ``block`` as it is (shared by all points, broadcast by the operations)."""
    if type(like) is BatchTracer and not isinstance(like.val, Tracer) and rows_outside(xp, block.shape[0]):
        return BatchTracer(like._trace, repeat_rows_outside(block, like.val.shape[0]))
    return block
