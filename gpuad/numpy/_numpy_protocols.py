"""NumPy's own protocols on traced values: ``np.sin(x)``, ``np.sum(x, axis=0)``,
``np.stack([...])`` and ``M @ x`` (a NumPy array on the left) dispatch to gpuad.numpy through
``__array_ufunc__`` and ``__array_function__``, so a function written with ``import numpy as np``
is differentiable unchanged.

The mappings live in this module's tables, one entry per NumPy function: ``UFUNCS`` (elementwise
ufuncs, and the ufunc methods ``reduce``, ``accumulate`` and ``outer`` of some), ``FUNCTIONS``
(NumPy's other functions, each an adapter with NumPy's signature) and ``HINTS`` (what to write
instead of a NumPy function that has no faithful counterpart). A NumPy function not in the
tables raises a TypeError that names it; an argument gpuad cannot honour (``out=``, ``where=``
of a ufunc, ``order='F'``, ...) raises one that names the argument.

>>> import numpy as np, gpuad
>>> gpuad.grad(lambda x: np.sum(np.sin(x) * x))(np.zeros(2)).tolist()
[0.0, 0.0]
"""

from __future__ import annotations

import builtins
import math
import operator
from typing import Any, Callable

import numpy  # host-ok: NumPy's protocols name NumPy's functions; no array is converted here

from ..tracing import Tracer
from ._bitwise import NUMPY_NAMES
from ._bitwise import bitwise_and, bitwise_invert, bitwise_left_shift, bitwise_or, bitwise_right_shift, bitwise_xor
from ._composites import angle, vector_norm
from ._core import *  # noqa: F403  (the namespace's functions)
from ._core import _as_array, _normalize_axis
from ._einsum import einsum as _einsum
from ._indexing import getitem
from ._linalg import linalg as _linalg
from ._manipulation import (
    cumulative_prod, diff, meshgrid, repeat, roll, take, take_along_axis, tile, tril, triu, unstack,
)
from ._searching import argsort, count_nonzero, nonzero, searchsorted, sort, unique_values

__all__ = ["array_ufunc", "array_function", "install_numpy_protocols", "UFUNCS", "FUNCTIONS", "HINTS"]


class _Unset:
    """An argument the caller did not give (NumPy's ``np._NoValue``, for our adapters)."""

    def __repr__(self) -> str:
        return "<not given>"


_UNSET = _Unset()

# What to do instead of an argument gpuad cannot honour, by argument name.
_ARGUMENT_ADVICE = {
    "out": "traced values are immutable and a NumPy array cannot hold one: use the result instead "
    "(y = np.{name}(...) rather than np.{name}(..., out=y); for a += x with a NumPy array a, write "
    "a = a + x)",
    "where": "compute everywhere and choose with np.where(mask, result, other)",
    "initial": "combine the initial value with the result (np.maximum(np.max(x), initial))",
    "dtype": "cast first: x.astype(dtype)",
    "order": "gpuad arrays have no memory order (only order='C' is accepted)",
    "casting": "cast first: x.astype(dtype)",
    "subok": "gpuad arrays have no subclasses",
    "signature": "cast the inputs first: x.astype(dtype)",
    "axes": "move the axes first (np.moveaxis) and use the defaults",
    "axis": "move the axes first (np.moveaxis) and use the defaults",
    "keepdims": "reshape the result",
    "mode": "only mode='raise' is supported; clip or wrap the indices first",
    "sparse": "use the dense grids (sparse=False)",
    "kind": "gpuad sorts stably; leave kind out",
}


def _refuse_argument(name: str, arg: str, value: Any) -> Any:
    shown = repr(value)
    if len(shown) > 40 or hasattr(value, "shape") or isinstance(value, tuple):  # arrays: not their data
        shown = "..."
    advice = _ARGUMENT_ADVICE.get(arg, "leave it out").format(name=name.split(".")[0])
    raise TypeError(f"np.{name}: gpuad does not support {arg}={shown} on traced values; {advice}")


def _defaults(name: str, **given: Any) -> None:
    """Refuse each of ``given`` that is not at its default (None or not given)."""
    for arg, value in given.items():
        if value is not None and value is not _UNSET:
            _refuse_argument(name, arg, value)


# ---------------------------------------------------------------------------------------------
# Ufuncs: NumPy's name -> gpuad.numpy's function
# ---------------------------------------------------------------------------------------------


def _real_only(name: str, fn: Callable[[Any], Any], why: str) -> Callable[[Any], Any]:
    """``fn`` for real floating inputs, where NumPy's ``name`` is the same function."""

    def on_floats(x: Any, /) -> Any:
        x = _as_array(x)
        if not isdtype(x.dtype, "real floating"):
            raise TypeError(f"np.{name}: gpuad maps it to gpuad.numpy.{fn.__name__} on real floating arrays only ({why}); got dtype {x.dtype}")
        return fn(x)

    on_floats.__name__ = name
    return on_floats


def _matvec(x1: Any, x2: Any, /) -> Any:
    return getitem(matmul(x1, expand_dims(_as_array(x2), axis=-1)), (Ellipsis, 0))


def _vecmat(x1: Any, x2: Any, /) -> Any:
    return getitem(matmul(expand_dims(_as_array(x1), axis=-2), x2), (Ellipsis, 0, slice(None)))


# NumPy ufunc name -> gpuad.numpy function with the same semantics (on real values).
UFUNCS: dict[str, Callable[..., Any]] = {
    # arithmetic
    "add": add, "subtract": subtract, "multiply": multiply, "divide": divide,
    "floor_divide": floor_divide, "remainder": remainder, "power": pow, "negative": negative,
    "positive": positive, "absolute": abs, "square": square, "sqrt": sqrt, "reciprocal": reciprocal,
    "sign": sign, "copysign": copysign, "nextafter": nextafter, "signbit": signbit,
    "maximum": maximum, "minimum": minimum, "hypot": hypot,
    "divmod": lambda x1, x2, /: (floor_divide(x1, x2), remainder(x1, x2)),
    "fabs": _real_only("fabs", abs, "np.fabs of integers gives floats"),
    "rint": _real_only("rint", round, "np.rint of integers gives floats"),
    "conjugate": conj, "conj": conj,
    # exponentials, logarithms, trigonometry
    "exp": exp, "expm1": expm1, "log": log, "log1p": log1p, "log2": log2, "log10": log10,
    "logaddexp": logaddexp, "exp2": lambda x, /: pow(2.0, x),
    "sin": sin, "cos": cos, "tan": tan, "arcsin": asin, "arccos": acos, "arctan": atan,
    "arctan2": atan2, "sinh": sinh, "cosh": cosh, "tanh": tanh, "arcsinh": asinh,
    "arccosh": acosh, "arctanh": atanh,
    "deg2rad": lambda x, /: multiply(x, math.pi / 180), "radians": lambda x, /: multiply(x, math.pi / 180),
    "rad2deg": lambda x, /: multiply(x, 180 / math.pi), "degrees": lambda x, /: multiply(x, 180 / math.pi),
    # rounding
    "floor": floor, "ceil": ceil, "trunc": trunc,
    # comparisons and logic (no derivative)
    "equal": equal, "not_equal": not_equal, "less": less, "less_equal": less_equal,
    "greater": greater, "greater_equal": greater_equal, "isfinite": isfinite, "isinf": isinf,
    "isnan": isnan, "logical_and": logical_and, "logical_or": logical_or,
    "logical_xor": logical_xor, "logical_not": logical_not,
    "bitwise_and": bitwise_and, "bitwise_or": bitwise_or, "bitwise_xor": bitwise_xor,
    "invert": bitwise_invert, "left_shift": bitwise_left_shift, "right_shift": bitwise_right_shift,
    # linear algebra (generalized ufuncs)
    "matmul": matmul, "vecdot": vecdot, "matvec": _matvec, "vecmat": _vecmat,
}

# ufunc name -> gpuad.numpy reduction for ``ufunc.reduce`` (axis=0 by default, as NumPy's).
_REDUCE = {"add": sum, "multiply": prod, "maximum": max, "minimum": min, "logical_and": all, "logical_or": any}
_REDUCE_TAKES_DTYPE = {"add", "multiply"}
# ufunc name -> gpuad.numpy running reduction for ``ufunc.accumulate``.
_ACCUMULATE = {"add": cumulative_sum, "multiply": cumulative_prod}
# The ``x.at[idx]`` method that does what ``ufunc.at`` does in place.
_AT = {"add": "add", "multiply": "multiply", "maximum": "max", "minimum": "min"}
# Keyword arguments of a ufunc call that are fine at these values (NumPy's defaults).
_UFUNC_DEFAULTS = {"where": True, "casting": "same_kind", "order": "K", "subok": True}


def _check_ufunc_kwargs(label: str, kwargs: dict[str, Any], allowed: tuple[str, ...] = ()) -> None:
    for arg, value in kwargs.items():
        if arg in allowed:
            continue
        if arg in _UFUNC_DEFAULTS and value is _UFUNC_DEFAULTS[arg]:
            continue
        if arg in _UFUNC_DEFAULTS and isinstance(value, str) and value == _UFUNC_DEFAULTS[arg]:
            continue
        _refuse_argument(label, arg, value)


def _unknown_ufunc(ufunc: Any) -> TypeError:
    name = ufunc.__name__
    return TypeError(
        f"np.{name} is not differentiable in gpuad: gpuad.numpy has no function with its semantics"
        f"{_hint(name)}. Write it with gpuad.numpy's functions (import gpuad.numpy as gnp), or call it "
        "on plain arrays outside the transformed function"
    )


def array_ufunc(self: Any, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
    """``Tracer.__array_ufunc__``: a NumPy ufunc applied to a traced value (``np.sin(x)``, and
    ``M @ x``, ``c * x``, ``M < x`` with a NumPy array or scalar on the left) is gpuad.numpy's
    function of the same meaning (``UFUNCS``); ``np.add.reduce``, ``np.add.accumulate`` and
    ``np.multiply.outer`` (and their kin) are the reductions and broadcasts they stand for."""
    name = ufunc.__name__
    if getattr(numpy, name, None) is not ufunc or name not in UFUNCS:
        raise _unknown_ufunc(ufunc)
    fn = UFUNCS[name]
    if method == "__call__":
        _check_ufunc_kwargs(name, kwargs)
        return fn(*inputs)
    label = f"{name}.{method}"
    if method == "reduce" and name in _REDUCE:
        _check_ufunc_kwargs(label, kwargs, ("axis", "keepdims") + (("dtype",) if name in _REDUCE_TAKES_DTYPE else ()))
        kw = {"axis": kwargs.get("axis", 0), "keepdims": builtins.bool(kwargs.get("keepdims", False))}
        if kwargs.get("dtype") is not None:
            kw["dtype"] = kwargs["dtype"]
        return _REDUCE[name](inputs[0], **kw)
    if method == "accumulate" and name in _ACCUMULATE:
        _check_ufunc_kwargs(label, kwargs, ("axis", "dtype"))
        return _ACCUMULATE[name](inputs[0], axis=kwargs.get("axis", 0), dtype=kwargs.get("dtype"))
    if method == "outer" and ufunc.nin == 2:
        _check_ufunc_kwargs(label, kwargs)
        a, b = (_as_array(v, f"np.{label}: operand") for v in inputs)
        return fn(reshape(a, tuple(a.shape) + (1,) * b.ndim), b)
    if method == "at" and name in _AT:
        raise TypeError(
            f"np.{label} writes into its first operand in place, and traced values are immutable: "
            f"use the functional update y = a.at[idx].{_AT[name]}(v) (gpuad.numpy.at(a)[idx].{_AT[name]}(v) "
            "for a NumPy array a), which returns the updated array"
        )
    supported = [m for m, table in (("reduce", _REDUCE), ("accumulate", _ACCUMULATE)) if name in table]
    if ufunc.nin == 2:
        supported.append("outer")
    raise TypeError(
        f"np.{label} is not supported on traced values; gpuad maps np.{name}.__call__"
        + "".join(f", np.{name}.{m}" for m in supported)
        + " (np.add.reduce is gpuad.numpy.sum, np.maximum.reduce max, np.add.accumulate cumulative_sum); "
        "write the rest with gpuad.numpy's reductions and x.at[idx] updates"
    )


# ---------------------------------------------------------------------------------------------
# NumPy's other functions: adapters with NumPy's signatures
# ---------------------------------------------------------------------------------------------


def _flat(x: Any) -> Any:
    return reshape(x, (-1,))


def _reduction(fn: Callable[..., Any], name: str, dtype_ok: builtins.bool = True) -> Callable[..., Any]:
    """np.sum / np.prod: (a, axis=None, dtype=None, out=None, keepdims=False, initial, where)."""

    def adapter(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, keepdims: Any = False,
                initial: Any = _UNSET, where: Any = _UNSET) -> Any:
        _defaults(name, out=out, initial=initial, where=where)
        return fn(a, axis=axis, dtype=dtype, keepdims=builtins.bool(keepdims))

    adapter.__name__ = name
    return adapter


def _chooser(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    """np.max / np.min / np.amax / np.amin: (a, axis=None, out=None, keepdims=False, initial, where)."""

    def adapter(a: Any, axis: Any = None, out: Any = None, keepdims: Any = False,
                initial: Any = _UNSET, where: Any = _UNSET) -> Any:
        _defaults(name, out=out, initial=initial, where=where)
        return fn(a, axis=axis, keepdims=builtins.bool(keepdims))

    adapter.__name__ = name
    return adapter


def _truth(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    """np.all / np.any: (a, axis=None, out=None, keepdims=False, *, where)."""

    def adapter(a: Any, axis: Any = None, out: Any = None, keepdims: Any = False, *, where: Any = _UNSET) -> Any:
        _defaults(name, out=out, where=where)
        a = _as_array(a)
        return fn(a if isdtype(a.dtype, "bool") else not_equal(a, 0), axis=axis, keepdims=builtins.bool(keepdims))

    adapter.__name__ = name
    return adapter


def _mean(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, keepdims: Any = False, *, where: Any = _UNSET) -> Any:
    _defaults("mean", out=out, where=where)
    a = _as_array(a)
    return mean(a if dtype is None else astype(a, dtype), axis=axis, keepdims=builtins.bool(keepdims))


def _spread(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    """np.var / np.std: (a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where, mean, correction)."""

    def adapter(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, ddof: Any = 0, keepdims: Any = False,
                *, where: Any = _UNSET, mean: Any = _UNSET, correction: Any = _UNSET) -> Any:
        _defaults(name, out=out, where=where, mean=mean)
        if correction is not _UNSET and ddof != 0:
            raise ValueError(f"np.{name}: ddof and correction cannot both be given")
        a = _as_array(a)
        return fn(a if dtype is None else astype(a, dtype), axis=axis, keepdims=builtins.bool(keepdims),
                  correction=ddof if correction is _UNSET else correction)

    adapter.__name__ = name
    return adapter


def _arg(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    """np.argmax / np.argmin: (a, axis=None, out=None, *, keepdims=False)."""

    def adapter(a: Any, axis: Any = None, out: Any = None, *, keepdims: Any = False) -> Any:
        _defaults(name, out=out)
        return fn(a, axis=axis, keepdims=builtins.bool(keepdims))

    adapter.__name__ = name
    return adapter


def _running(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    """np.cumsum / np.cumprod: (a, axis=None, dtype=None, out=None); axis=None flattens."""

    def adapter(a: Any, axis: Any = None, dtype: Any = None, out: Any = None) -> Any:
        _defaults(name, out=out)
        a = _as_array(a)
        if axis is None:
            a, axis = _flat(a), 0
        return fn(a, axis=axis, dtype=dtype)

    adapter.__name__ = name
    return adapter


def _cumulative(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    """np.cumulative_sum / np.cumulative_prod (NumPy 2.1): the standard's, with out=."""

    def adapter(x: Any, /, *, axis: Any = None, dtype: Any = None, out: Any = None, include_initial: Any = False) -> Any:
        _defaults(name, out=out)
        return fn(x, axis=axis, dtype=dtype, include_initial=include_initial)

    adapter.__name__ = name
    return adapter


def _average(a: Any, axis: Any = None, weights: Any = None, returned: Any = False, *, keepdims: Any = False) -> Any:
    a = _as_array(a)
    keep = builtins.bool(keepdims)
    if weights is None:
        avg = mean(a, axis=axis, keepdims=keep)
        scale = astype(full_like(avg, math.prod(a.shape) // builtins.max(math.prod(avg.shape), 1)), avg.dtype)
    else:
        w = _as_array(weights, "np.average: weights")
        if w.ndim != a.ndim:
            if axis is None or not isinstance(axis, int) or w.ndim != 1:
                raise TypeError("np.average: weights of another shape than a need axis= (one int) and must be 1-D")
            ax = _normalize_axis(axis, a.ndim)
            if w.shape[0] != a.shape[ax]:
                raise ValueError(f"np.average: weights has length {w.shape[0]}, axis {axis} of a has {a.shape[ax]}")
            w = reshape(w, (w.shape[0],) + (1,) * (-ax - 1))
        scale = sum(broadcast_to(w, broadcast_shapes(tuple(w.shape), tuple(a.shape))), axis=axis, keepdims=keep)
        avg = sum(multiply(a, w), axis=axis, keepdims=keep) / scale
    if returned:
        return avg, broadcast_to(scale, tuple(avg.shape))
    return avg


def _reshape(a: Any, /, shape: Any = None, order: Any = "C", *, newshape: Any = None, copy: Any = None) -> Any:
    if order != "C":
        _refuse_argument("reshape", "order", order)
    if shape is None:
        shape = newshape
    return reshape(a, shape)


def _ravel(a: Any, order: Any = "C") -> Any:
    if order not in ("C", "K", "A"):
        _refuse_argument("ravel", "order", order)
    return _flat(_as_array(a))


def _transpose(a: Any, axes: Any = None) -> Any:
    a = _as_array(a)
    return permute_dims(a, tuple(range(a.ndim - 1, -1, -1)) if axes is None else tuple(axes))


def _swapaxes(a: Any, axis1: int, axis2: int) -> Any:
    a = _as_array(a)
    order = list(range(a.ndim))
    i, j = _normalize_axis(axis1, a.ndim, "axis1") + a.ndim, _normalize_axis(axis2, a.ndim, "axis2") + a.ndim
    order[i], order[j] = order[j], order[i]
    return permute_dims(a, tuple(order))


def _atleast(ndim: int, name: str) -> Callable[..., Any]:
    """np.atleast_1d/2d/3d: NumPy's placement of the new axes."""

    def one(x: Any) -> Any:
        x = _as_array(x)
        if x.ndim >= ndim:
            return x
        if x.ndim == 0:
            return reshape(x, (1,) * ndim)
        if ndim == 2 or x.ndim == 2:  # (N,) -> (1, N); for 3-d, (M, N) -> (M, N, 1)
            return reshape(x, (1,) + tuple(x.shape) if ndim == 2 else tuple(x.shape) + (1,))
        return reshape(x, (1,) + tuple(x.shape) + (1,))  # 3-d of (N,): (1, N, 1)

    def adapter(*arys: Any) -> Any:
        out = tuple(one(a) for a in arys)
        return out[0] if len(out) == 1 else out

    adapter.__name__ = name
    return adapter


_atleast_1d, _atleast_2d, _atleast_3d = _atleast(1, "atleast_1d"), _atleast(2, "atleast_2d"), _atleast(3, "atleast_3d")


def _joined(name: str, arrays: Any, dtype: Any, casting: Any) -> list[Any]:
    if casting not in ("same_kind", None):
        _refuse_argument(name, "casting", casting)
    arrays = [_as_array(a, f"np.{name}: arrays[{i}]") for i, a in enumerate(arrays)]
    return arrays if dtype is None else [astype(a, dtype) for a in arrays]


def _stack(arrays: Any, axis: int = 0, out: Any = None, *, dtype: Any = None, casting: Any = "same_kind") -> Any:
    _defaults("stack", out=out)
    return stack(_joined("stack", arrays, dtype, casting), axis=axis)


def _concatenate(arrays: Any, axis: Any = 0, out: Any = None, *, dtype: Any = None, casting: Any = "same_kind") -> Any:
    _defaults("concatenate", out=out)
    return concat(_joined("concatenate", arrays, dtype, casting), axis=axis)


def _hstack(tup: Any, *, dtype: Any = None, casting: Any = "same_kind") -> Any:
    arrays = [_atleast_1d(a) for a in _joined("hstack", tup, dtype, casting)]
    return concat(arrays, axis=0 if arrays and arrays[0].ndim == 1 else 1)


def _vstack(tup: Any, *, dtype: Any = None, casting: Any = "same_kind") -> Any:
    return concat([_atleast_2d(a) for a in _joined("vstack", tup, dtype, casting)], axis=0)


def _dstack(tup: Any) -> Any:
    return concat([_atleast_3d(a) for a in _joined("dstack", tup, None, None)], axis=2)


def _column_stack(tup: Any) -> Any:
    arrays = _joined("column_stack", tup, None, None)
    return concat([reshape(a, (-1, 1)) if a.ndim < 2 else a for a in arrays], axis=1)


def _split(ary: Any, indices_or_sections: Any, axis: int = 0) -> list[Any]:
    a = _as_array(ary)
    ax = _normalize_axis(axis, a.ndim)
    n = a.shape[ax]
    if isinstance(indices_or_sections, int):
        if indices_or_sections <= 0 or n % indices_or_sections:
            raise ValueError("array split does not result in an equal division")
        step = n // indices_or_sections
        bounds = list(range(0, n + 1, step))
    else:
        bounds = [0] + [operator.index(i) for i in indices_or_sections] + [n]
    lead = (slice(None),) * (a.ndim + ax)
    return [getitem(a, lead + (slice(lo, hi),)) for lo, hi in zip(bounds[:-1], bounds[1:])]


def _take(a: Any, indices: Any, axis: Any = None, out: Any = None, mode: Any = "raise") -> Any:
    _defaults("take", out=out)
    if mode != "raise":
        _refuse_argument("take", "mode", mode)
    a = _as_array(a)
    if axis is None:
        a, axis = _flat(a), 0
    idx = _as_array(indices, "np.take: indices")
    ax = _normalize_axis(axis, a.ndim) + a.ndim
    got = take(a, _flat(idx), axis=ax)
    return reshape(got, tuple(a.shape[:ax]) + tuple(idx.shape) + tuple(a.shape[ax + 1:]))


def _take_along_axis(arr: Any, indices: Any, axis: Any = -1) -> Any:
    if axis is None:
        return take_along_axis(_flat(_as_array(arr)), indices, axis=0)
    return take_along_axis(arr, indices, axis=axis)


def _where(condition: Any, x: Any = _UNSET, y: Any = _UNSET) -> Any:
    if x is _UNSET and y is _UNSET:
        return nonzero(condition)
    if x is _UNSET or y is _UNSET:
        raise ValueError("np.where: either both or neither of x and y should be given")
    cond = _as_array(condition, "np.where: condition")
    if not isdtype(cond.dtype, "bool"):
        cond = not_equal(cond, 0)
    return where(cond, x, y)


def _clip(a: Any, a_min: Any = _UNSET, a_max: Any = _UNSET, out: Any = None, *, min: Any = _UNSET, max: Any = _UNSET,  # noqa: A002
          **kwargs: Any) -> Any:
    _defaults("clip", out=out)
    _check_ufunc_kwargs("clip", kwargs)
    lo = a_min if a_min is not _UNSET else min
    hi = a_max if a_max is not _UNSET else max
    return clip(a, None if lo is _UNSET else lo, None if hi is _UNSET else hi)


def _round(a: Any, decimals: int = 0, out: Any = None) -> Any:
    _defaults("round", out=out)
    if decimals != 0:
        raise TypeError(f"np.round: gpuad rounds to integers only (decimals=0), got decimals={decimals}; "
                        "scale first: np.round(x * 10**d) / 10**d")
    return round(_as_array(a))


def _sorter(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    """np.sort / np.argsort: (a, axis=-1, kind=None, order=None, *, stable=None); axis=None flattens."""

    def adapter(a: Any, axis: Any = -1, kind: Any = None, order: Any = None, *, stable: Any = None) -> Any:
        _defaults(name, order=order)
        a = _as_array(a)
        if axis is None:
            a, axis = _flat(a), -1
        return fn(a, axis=axis, stable=True)  # a stable order is one NumPy's sort kinds may give

    adapter.__name__ = name
    return adapter


def _unique(ar: Any, return_index: Any = False, return_inverse: Any = False, return_counts: Any = False,
            axis: Any = None, *, equal_nan: Any = True, sorted: Any = True) -> Any:  # noqa: A002
    if return_index or return_inverse or return_counts or axis is not None:
        raise TypeError("np.unique: only the values are supported (gpuad.numpy.unique_values); use "
                        "gpuad.numpy.unique_all, unique_counts or unique_inverse on plain arrays")
    return unique_values(ar)


def _dot(a: Any, b: Any, out: Any = None) -> Any:
    _defaults("dot", out=out)
    a, b = _as_array(a, "np.dot: a"), _as_array(b, "np.dot: b")
    if a.ndim == 0 or b.ndim == 0:
        return multiply(a, b)
    if b.ndim == 1:
        return matmul(a, b)  # sum over the last axis of a and the only axis of b
    return tensordot(a, b, axes=((a.ndim - 1,), (b.ndim - 2,)))


def _vdot(a: Any, b: Any, /) -> Any:
    a, b = _as_array(a, "np.vdot: a"), _as_array(b, "np.vdot: b")
    return vecdot(_flat(a), _flat(b))  # vecdot conjugates its first argument


def _inner(a: Any, b: Any, /) -> Any:
    a, b = _as_array(a, "np.inner: a"), _as_array(b, "np.inner: b")
    if a.ndim == 0 or b.ndim == 0:
        return multiply(a, b)
    return tensordot(a, b, axes=((a.ndim - 1,), (b.ndim - 1,)))


def _outer(a: Any, b: Any, out: Any = None) -> Any:
    _defaults("outer", out=out)
    a, b = _flat(_as_array(a, "np.outer: a")), _flat(_as_array(b, "np.outer: b"))
    return multiply(expand_dims(a, axis=1), b)


def _tensordot(a: Any, b: Any, axes: Any = 2) -> Any:
    if not isinstance(axes, int):
        first, second = axes
        axes = (tuple([first] if isinstance(first, int) else first), tuple([second] if isinstance(second, int) else second))
    return tensordot(a, b, axes=axes)


def _einsum_adapter(*operands: Any, out: Any = None, optimize: Any = False, **kwargs: Any) -> Any:
    _defaults("einsum", out=out)
    for arg in ("dtype", "order", "casting"):
        if kwargs.get(arg) not in (None, "K", "safe"):
            _refuse_argument("einsum", arg, kwargs[arg])
    return _einsum(*operands, optimize=optimize)


def _trace(a: Any, offset: int = 0, axis1: int = 0, axis2: int = 1, dtype: Any = None, out: Any = None) -> Any:
    _defaults("trace", out=out)
    if offset != 0:
        raise TypeError(f"np.trace: gpuad supports offset=0 only, got offset={offset}; take the diagonal with an index")
    a = _as_array(a)
    moved = moveaxis(a, (axis1, axis2), (-2, -1))
    return _einsum("...ii->...", moved if dtype is None else astype(moved, dtype))


def _norm(x: Any, ord: Any = None, axis: Any = None, keepdims: Any = False) -> Any:  # noqa: A002
    """np.linalg.norm: vector norms (any ord vector_norm takes), and the Frobenius, 1, -1, inf
    and -inf norms of matrices; the spectral and nuclear norms are refused."""
    x = _as_array(x)
    keep = builtins.bool(keepdims)
    if axis is None:
        if ord is None or (ord == "fro" and x.ndim == 2):
            return vector_norm(x, axis=None, keepdims=keep)
        if x.ndim == 1:
            return vector_norm(x, axis=0, keepdims=keep, ord=ord)
        if x.ndim != 2:
            raise ValueError("np.linalg.norm: improper number of dimensions to norm (give axis= for more than 2)")
        axis = (0, 1)
    if isinstance(axis, int) or len(axis) == 1:
        if isinstance(ord, str):
            raise ValueError(f"np.linalg.norm: invalid norm order {ord!r} for vectors")
        return vector_norm(x, axis=axis, keepdims=keep, ord=2 if ord is None else ord)
    rows, cols = (_normalize_axis(a, x.ndim) for a in axis)
    if ord is None or ord == "fro":
        return vector_norm(x, axis=(rows, cols), keepdims=keep)
    if ord in (1, -1, math.inf, -math.inf):
        summed_over, kept_axis = (rows, cols) if ord in (1, -1) else (cols, rows)
        sums = sum(abs(x), axis=summed_over, keepdims=True)
        pick = max if ord > 0 else min
        out = pick(sums, axis=kept_axis, keepdims=True)
        return out if keep else squeeze(out, axis=(rows, cols))
    raise TypeError(
        f"np.linalg.norm: ord={ord!r} of a matrix (a spectral or nuclear norm) needs singular values, "
        "which gpuad does not differentiate yet; use 'fro', 1, -1, inf or -inf"
    )


def _like(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    """np.zeros_like / ones_like / empty_like: (a, dtype=None, order='K', subok=True, shape=None, *, device=None)."""

    def adapter(a: Any, dtype: Any = None, order: Any = "K", subok: Any = True, shape: Any = None, *, device: Any = None) -> Any:
        _defaults(name, shape=shape)
        return fn(a, dtype=dtype, device=device)

    adapter.__name__ = name
    return adapter


def _full_like(a: Any, fill_value: Any, dtype: Any = None, order: Any = "K", subok: Any = True, shape: Any = None,
               *, device: Any = None) -> Any:
    _defaults("full_like", shape=shape)
    return full_like(a, fill_value, dtype=dtype, device=device)


def _size(a: Any, axis: Any = None) -> int:
    return math.prod(a.shape) if axis is None else a.shape[axis]


def _meshgrid(*xi: Any, copy: Any = True, sparse: Any = False, indexing: str = "xy") -> tuple[Any, ...]:
    if sparse:
        _refuse_argument("meshgrid", "sparse", sparse)
    return tuple(meshgrid(*xi, indexing=indexing))


def _diff(a: Any, n: int = 1, axis: int = -1, prepend: Any = None, append: Any = None) -> Any:
    return diff(a, n=n, axis=axis, prepend=prepend, append=append)


def _tile(A: Any, reps: Any) -> Any:  # noqa: N803  (NumPy's name)
    return tile(A, (reps,) if isinstance(reps, int) else tuple(reps))


def _copy(a: Any, order: Any = "K", subok: Any = False) -> Any:
    return _as_array(a)  # traced values are immutable: the value is its own copy


# NumPy function (its name under numpy; "linalg.norm" under numpy.linalg) -> gpuad's adapter with
# NumPy's signature. Elementwise NumPy functions are ufuncs: see UFUNCS.
FUNCTIONS: dict[str, Callable[..., Any]] = {
    # reductions
    "sum": _reduction(sum, "sum"), "prod": _reduction(prod, "prod"),
    "max": _chooser(max, "max"), "min": _chooser(min, "min"), "amax": _chooser(max, "amax"), "amin": _chooser(min, "amin"),
    "all": _truth(all, "all"), "any": _truth(any, "any"),
    "mean": _mean, "var": _spread(var, "var"), "std": _spread(std, "std"), "average": _average,
    "argmax": _arg(argmax, "argmax"), "argmin": _arg(argmin, "argmin"),
    "cumsum": _running(cumulative_sum, "cumsum"), "cumprod": _running(cumulative_prod, "cumprod"),
    "cumulative_sum": _cumulative(cumulative_sum, "cumulative_sum"),
    "cumulative_prod": _cumulative(cumulative_prod, "cumulative_prod"),
    "count_nonzero": lambda a, axis=None, *, keepdims=False: count_nonzero(a, axis=axis, keepdims=keepdims),
    "diff": _diff,
    # shapes and axes
    "shape": lambda a: tuple(a.shape), "ndim": lambda a: a.ndim, "size": _size,
    "reshape": _reshape, "ravel": _ravel, "transpose": _transpose, "permute_dims": _transpose,
    "matrix_transpose": lambda x, /: matrix_transpose(x), "swapaxes": _swapaxes,
    "moveaxis": lambda a, source, destination: moveaxis(a, source, destination),
    "expand_dims": lambda a, axis: expand_dims(a, axis=axis),
    "squeeze": lambda a, axis=None: squeeze(a, axis=axis),
    "broadcast_to": lambda array, shape, subok=False: broadcast_to(array, shape),
    "broadcast_arrays": lambda *args, subok=False: tuple(broadcast_arrays(*args)),
    "atleast_1d": _atleast_1d, "atleast_2d": _atleast_2d, "atleast_3d": _atleast_3d,
    "flip": lambda m, axis=None: flip(m, axis=axis),
    "fliplr": lambda m: flip(m, axis=1), "flipud": lambda m: flip(m, axis=0),
    "roll": lambda a, shift, axis=None: roll(a, shift, axis=axis),
    "tile": _tile, "repeat": lambda a, repeats, axis=None: repeat(a, repeats, axis=axis),
    "tril": lambda m, k=0: tril(m, k=k), "triu": lambda m, k=0: triu(m, k=k),
    "copy": _copy,
    # joining and splitting
    "stack": _stack, "concatenate": _concatenate, "concat": _concatenate, "hstack": _hstack,
    "vstack": _vstack, "dstack": _dstack, "column_stack": _column_stack, "split": _split,
    "unstack": lambda x, /, *, axis=0: unstack(x, axis=axis), "meshgrid": _meshgrid,
    # indexing, choosing, sorting, searching
    "take": _take, "take_along_axis": _take_along_axis, "where": _where, "clip": _clip,
    "round": _round, "around": _round, "sort": _sorter(sort, "sort"), "argsort": _sorter(argsort, "argsort"),
    "searchsorted": lambda a, v, side="left", sorter=None: searchsorted(a, v, side=side, sorter=sorter),
    "nonzero": lambda a: nonzero(a), "unique": _unique,
    # linear algebra
    "dot": _dot, "vdot": _vdot, "inner": _inner, "outer": _outer, "tensordot": _tensordot,
    "einsum": _einsum_adapter, "trace": _trace,
    "linalg.norm": _norm,
    "linalg.vector_norm": lambda x, /, *, axis=None, keepdims=False, ord=2: vector_norm(x, axis=axis, keepdims=keepdims, ord=ord),
    "linalg.matmul": lambda x1, x2, /: matmul(x1, x2),
    "linalg.vecdot": lambda x1, x2, /, *, axis=-1: vecdot(x1, x2, axis=axis),
    "linalg.tensordot": _tensordot,
    "linalg.matrix_transpose": lambda x, /: matrix_transpose(x),
    # the standard's linalg functions whose NumPy signature and meaning are the same
    "linalg.det": lambda a: _linalg.det(a), "linalg.slogdet": lambda a: _linalg.slogdet(a),
    "linalg.inv": lambda a: _linalg.inv(a), "linalg.solve": lambda a, b: _linalg.solve(a, b),
    "linalg.matrix_power": lambda a, n: _linalg.matrix_power(a, n),
    "linalg.svdvals": lambda x, /: _linalg.svdvals(x),
    "linalg.outer": lambda x1, x2, /: _linalg.outer(x1, x2),
    "linalg.cross": lambda x1, x2, /, *, axis=-1: _linalg.cross(x1, x2, axis=axis),
    "linalg.diagonal": lambda x, /, *, offset=0: _linalg.diagonal(x, offset=offset),
    "linalg.trace": lambda x, /, *, offset=0, dtype=None: _linalg.trace(x, offset=offset, dtype=dtype),
    "linalg.matrix_norm": lambda x, /, *, keepdims=False, ord="fro": _linalg.matrix_norm(x, keepdims=keepdims, ord=ord),
    # creation from an array, dtypes
    "zeros_like": _like(zeros_like, "zeros_like"), "ones_like": _like(ones_like, "ones_like"),
    "empty_like": _like(empty_like, "empty_like"), "full_like": _full_like,
    "result_type": lambda *arrays_and_dtypes: result_type(*arrays_and_dtypes),
    "real": lambda val: real(val), "imag": lambda val: imag(val), "angle": lambda z, deg=False: angle(z, deg=deg),
    "iscomplexobj": lambda x: isdtype(x.dtype, "complex floating"),
    "isrealobj": lambda x: not isdtype(x.dtype, "complex floating"),
}

# What to write instead of a NumPy function (or ufunc) gpuad does not map.
HINTS = {
    "float_power": "gpuad.numpy.pow(gpuad.numpy.astype(x1, float64), x2)",
    "cbrt": "gpuad.numpy.sign(x) * gpuad.numpy.abs(x) ** (1 / 3)",
    "fmax": "gpuad.numpy.maximum (which propagates NaN, where np.fmax ignores it)",
    "fmin": "gpuad.numpy.minimum (which propagates NaN, where np.fmin ignores it)",
    "logaddexp2": "gpuad.numpy.logaddexp(x1 * log(2), x2 * log(2)) / log(2)",
    "heaviside": "gpuad.numpy.where(x1 > 0, 1.0, gpuad.numpy.where(x1 == 0, x2, 0.0))",
    "allclose": "gpuad.numpy.all(abs(a - b) <= atol + rtol * abs(b)) (a comparison: no derivative)",
    "linalg.cholesky": "gpuad.numpy.linalg.cholesky(a, upper=...) (it factors (a + a^T) / 2 as JAX; NumPy reads the lower triangle)",
    "linalg.eigh": "gpuad.numpy.linalg.eigh(a) (it factors (a + a^T) / 2 as JAX; NumPy reads one triangle, UPLO)",
    "linalg.eigvalsh": "gpuad.numpy.linalg.eigvalsh(a) (of (a + a^T) / 2, as JAX)",
    "linalg.svd": "gpuad.numpy.linalg.svd(a, full_matrices=False) (no compute_uv, no hermitian)",
    "linalg.qr": "gpuad.numpy.linalg.qr(a) (modes 'reduced' and 'complete' where it is the reduced one)",
    "linalg.pinv": "gpuad.numpy.linalg.pinv(a, rtol=...) (JAX's default cutoff, not NumPy's rcond=1e-15)",
    "linalg.matrix_rank": "gpuad.numpy.linalg.matrix_rank(a, rtol=...) (relative tolerance, no hermitian)",
    "median": "gpuad.numpy.sort along the axis and the middle element(s)",
    "diagonal": "gpuad.numpy.einsum('...ii->...i', x) for the main diagonal",
}


def _hint(name: str) -> str:
    if name in HINTS:
        return f"; instead: {HINTS[name]}"
    if name in NUMPY_NAMES:
        return f"; gpuad.numpy's function for this is {NUMPY_NAMES[name]}"
    return ""


def _numpy_object(name: str) -> Any:
    obj: Any = numpy
    for part in name.split("."):
        obj = getattr(obj, part, None)
    return obj


# NumPy's function objects -> adapters (names this NumPy lacks, e.g. np.concat before 2.0, are skipped).
_BY_FUNCTION = {_numpy_object(n): fn for n, fn in FUNCTIONS.items() if _numpy_object(n) is not None}
_OUR_TYPES = (Tracer, numpy.ndarray)


def _function_name(func: Any) -> str:
    module = getattr(func, "__module__", "") or ""
    sub = module[len("numpy."):] + "." if module.startswith("numpy.") else ""
    return sub + getattr(func, "__name__", repr(func))


def array_function(self: Any, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
    """``Tracer.__array_function__``: a NumPy function called on traced values (``np.sum``,
    ``np.stack``, ``np.dot``, ``np.linalg.norm``, ...) is its adapter in ``FUNCTIONS``, which
    calls gpuad.numpy with NumPy's meaning of each argument."""
    if not builtins.all(issubclass(t, _OUR_TYPES) for t in types):
        return NotImplemented  # another library's arrays among the arguments: let it (or NumPy) decide
    fn = _BY_FUNCTION.get(func)
    if fn is None:
        name = _function_name(func)
        raise TypeError(
            f"np.{name} is not differentiable in gpuad: gpuad.numpy has no function with its "
            f"semantics{_hint(name)}. Write it with gpuad.numpy's functions (import gpuad.numpy as "
            "gnp), or call it on plain arrays outside the transformed function"
        )
    return fn(*args, **kwargs)


def install_numpy_protocols(cls: type) -> None:
    """Give traced values NumPy's dispatch protocols (replacing Tracer's opt-out)."""
    cls.__array_ufunc__ = array_ufunc  # type: ignore[attr-defined]
    cls.__array_function__ = array_function  # type: ignore[attr-defined]
