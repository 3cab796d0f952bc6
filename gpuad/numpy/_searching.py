"""The array API's sorting, searching and set functions: sort (differentiable: a gather by the
argsort permutation), argsort, searchsorted and count_nonzero (integer results), and nonzero and
unique_* (data-dependent shapes: plain arrays only)."""

from __future__ import annotations

import builtins
from typing import Any

from .. import backend as _backend
from .. import primitives as _p
from ..tracing import ConcretizationError, Tracer
from ._core import *  # noqa: F403  (the namespace's functions)
from ._core import _as_array, _normalize_axes, _normalize_axis, _operands
from ._manipulation import take, take_along_axis

__all__ = [
    "sort", "argsort", "searchsorted", "count_nonzero", "nonzero",
    "unique_all", "unique_counts", "unique_inverse", "unique_values",
]


def argsort(x: Any, /, *, axis: int = -1, descending: builtins.bool = False, stable: builtins.bool = True) -> Any:
    """The indices that sort ``x`` along ``axis`` (ties in their original order when ``stable``,
    also when ``descending``). No derivative (an integer result).

    >>> import numpy as np
    >>> argsort(np.asarray([3.0, 1.0, 2.0])).tolist()
    [1, 2, 0]
    """
    x = _as_array(x)
    if x.ndim == 0:
        raise ValueError("argsort: x must have at least one dimension")
    ax = _normalize_axis(axis, x.ndim)
    return _p.argsort(x, axis=ax, descending=builtins.bool(descending), stable=builtins.bool(stable))


def sort(x: Any, /, *, axis: int = -1, descending: builtins.bool = False, stable: builtins.bool = True) -> Any:
    """``x`` sorted along ``axis`` (NaN last). Its derivative follows the elements: a gather by
    the stable ascending permutation (reversed for ``descending``), as JAX's, which decides
    which of tied elements receives which part of the derivative.

    >>> import numpy as np, gpuad
    >>> gpuad.grad(lambda v: sort(v)[0])(np.asarray([3.0, 1.0, 2.0])).tolist()
    [0.0, 1.0, 0.0]
    """
    x = _as_array(x)
    if x.ndim == 0:
        raise ValueError("sort: x must have at least one dimension")
    ax = _normalize_axis(axis, x.ndim)
    if not isinstance(x, Tracer):
        return _backend.namespace_of(x).sort(x, axis=ax, descending=descending, stable=stable)
    out = take_along_axis(x, _p.argsort(x, axis=ax, descending=False, stable=True), axis=ax)
    return flip(out, axis=ax) if descending else out


def searchsorted(x1: Any, x2: Any, /, *, side: str = "left", sorter: Any = None) -> Any:
    """Where the values ``x2`` would go in the sorted 1-D ``x1`` (``sorter`` sorts it, as the
    indices argsort gives): before equal elements for ``side="left"``, after them for
    ``"right"``. No derivative (an integer result).

    >>> import numpy as np
    >>> searchsorted(np.asarray([1.0, 2.0, 3.0]), np.asarray([2.0, 2.5])).tolist()
    [1, 2]
    """
    if side not in ("left", "right"):
        raise ValueError(f"searchsorted: side must be 'left' or 'right', got {side!r}")
    a = _as_array(x1, "x1")
    if a.ndim != 1:
        raise ValueError(f"searchsorted: x1 must be one-dimensional, got shape {tuple(a.shape)}")
    if sorter is not None:
        a = take(a, sorter)
    a, v = _operands(a, x2, names=["x1", "x2"])
    return _p.searchsorted(a, v, side=side)


def count_nonzero(x: Any, /, *, axis: Any = None, keepdims: builtins.bool = False) -> Any:
    """How many elements of ``x`` along ``axis`` are not zero, in the default integer dtype.

    >>> import numpy as np
    >>> int(count_nonzero(np.asarray([0.0, 2.0, -1.0])))
    2
    """
    x = _as_array(x)
    axes = _normalize_axes(axis, x.ndim)
    xp, device = _p.namespace_and_device(x)
    try:
        dtype = xp.__array_namespace_info__().default_dtypes(device=device)["integral"]
    except Exception:  # libraries without the inspection API  # noqa: BLE001
        dtype = int64
    hits = not_equal(x, False) if isdtype(x.dtype, "bool") else not_equal(x, 0)
    return sum(astype(hits, dtype), axis=axes, keepdims=keepdims)


def _data_dependent(name: str, x: Any) -> Any:
    """``x`` as a plain array, or the error for a traced one: the shape of ``name``'s result
    depends on the values, which a transform does not know (vmap) or must not use (grad)."""
    if isinstance(x, Tracer):
        raise ConcretizationError(
            f"{name}: the shape of its result depends on the values of x, so it cannot run on a "
            f"traced value (inside grad, vjp, jvp, vmap or jit); call it on a plain array outside the "
            f"transformed function, or use where(...) to keep a fixed shape"
        )
    return _as_array(x)


def nonzero(x: Any, /) -> tuple[Any, ...]:
    """The indices of the elements of ``x`` that are not zero, one array per axis. Plain arrays
    only: inside a transform the result's shape would depend on the data.

    >>> import numpy as np
    >>> [i.tolist() for i in nonzero(np.asarray([0.0, 2.0, 3.0]))]
    [[1, 2]]
    """
    x = _data_dependent("nonzero", x)
    if x.ndim == 0:
        raise ValueError("nonzero: x must have at least one dimension (a 0-d array has no indices)")
    return tuple(_backend.namespace_of(x).nonzero(x))


def _unique(name: str) -> Any:
    def fn(x: Any, /) -> Any:
        x = _data_dependent(name, x)
        return getattr(_backend.namespace_of(x), name)(x)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = (
        f"The array API's ``{name}``, computed by the array's library. Plain arrays only: inside a "
        "transform the result's shape would depend on the data."
    )
    return fn


unique_all = _unique("unique_all")
unique_counts = _unique("unique_counts")
unique_inverse = _unique("unique_inverse")
unique_values = _unique("unique_values")
