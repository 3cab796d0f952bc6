"""The array API's manipulation functions (tile, repeat, roll, unstack), creation functions that
take an array (tril, triu, meshgrid, from_dlpack), indexing functions (take, take_along_axis) and
the statistical diff and cumulative_prod, built from gpuad.numpy's differentiable functions: they
need no derivative rules of their own."""

from __future__ import annotations

import builtins
import math
import operator
from typing import Any, Sequence

from .. import backend as _backend
from .. import primitives as _p
from ..tracing import ConcretizationError, Tracer
from ._core import *  # noqa: F403  (the namespace's functions)
from ._core import _as_array, _in_dtype, _normalize_axis
from ._indexing import getitem

__all__ = [
    "take", "take_along_axis", "tile", "repeat", "roll", "unstack", "tril", "triu", "meshgrid",
    "diff", "cumulative_prod", "from_dlpack",
]


def _int(value: Any, name: str) -> int:
    """A Python int argument (TypeError naming it otherwise)."""
    try:
        if isinstance(value, builtins.bool):
            raise TypeError
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int, got {type(value).__name__} ({value!r})") from None


def _fresh(out: Any, x: Any) -> Any:
    """``out``, or a copy of the plain array ``x`` where ``out`` is ``x`` itself (the standard's
    functions return new arrays; a traced value is immutable and needs none)."""
    if out is x and not isinstance(x, Tracer):
        return _backend.namespace_of(x).asarray(x, copy=True)
    return out


def _along(axis: int, ndim: int, item: Any) -> tuple[Any, ...]:
    """The index that applies ``item`` to the negative ``axis`` (of ``ndim`` axes)."""
    return (Ellipsis, item) + (slice(None),) * (-axis - 1)


def _integer_array(a: Any, name: str, fn: str) -> Any:
    a = _as_array(a, name)
    if not isdtype(a.dtype, "integral"):
        raise TypeError(f"{fn}: {name} must be an array of an integer dtype, got dtype {a.dtype}")
    return a


# ---------------------------------------------------------------------------------------------
# Indexing functions
# ---------------------------------------------------------------------------------------------


def _nonnegative(index: Any, n: int, axis: int) -> Any:
    """Indices with the negative ones counted from the end (as NumPy's take has them), bounds
    checked where they are a plain NumPy array (NumPy's IndexError; on a device the check would
    be a hidden sync)."""
    if not isinstance(index, Tracer):
        _backend.check_index_bounds(_backend.namespace_of(index), index, n, axis)
    return where(less(index, 0), add(index, n), index)


def take(x: Any, indices: Any, /, *, axis: int | None = None) -> Any:
    """The elements of ``x`` at ``indices`` (1-D, integer) along ``axis`` (optional for a 1-D
    ``x``); negative indices count from the end. Differentiable in ``x``.

    >>> import numpy as np
    >>> take(np.asarray([10.0, 20.0, 30.0]), np.asarray([2, 0, -1])).tolist()
    [30.0, 10.0, 30.0]
    """
    x = _as_array(x)
    indices = _integer_array(indices, "indices", "take")
    if indices.ndim != 1:
        raise ValueError(f"take: indices must be one-dimensional, got shape {tuple(indices.shape)}")
    if axis is None:
        if x.ndim != 1:
            raise ValueError(f"take: axis is required for a {x.ndim}-d array (it may be left out only for 1-D)")
        axis = 0
    ax = _normalize_axis(axis, x.ndim)
    return _p.take(x, _nonnegative(indices, x.shape[ax], x.ndim + ax), axis=ax)


def take_along_axis(x: Any, indices: Any, /, *, axis: int = -1) -> Any:
    """``out[..., j, ...] = x[..., indices[..., j, ...], ...]`` along ``axis``: ``indices`` has
    ``x``'s rank and broadcasts with it on the other axes. One gather on the flattened array, so
    its derivative is one scatter-add.

    >>> import numpy as np
    >>> x = np.asarray([[3.0, 1.0, 2.0]])
    >>> take_along_axis(x, np.asarray([[1, 2, 0]]), axis=1).tolist()
    [[1.0, 2.0, 3.0]]
    """
    x = _as_array(x)
    indices = _integer_array(indices, "indices", "take_along_axis")
    if indices.ndim != x.ndim:
        raise ValueError(
            f"take_along_axis: indices must have the rank of x ({x.ndim}), got shape {tuple(indices.shape)}"
        )
    if x.ndim == 0:
        raise ValueError("take_along_axis: x must have at least one dimension")
    ax = _normalize_axis(axis, x.ndim)
    n, m = x.shape[ax], indices.shape[ax]
    others = [list(x.shape), list(indices.shape)]
    for s in others:
        s[ax] = 1
    lead = broadcast_shapes(*others)
    x_shape, i_shape = list(lead), list(lead)
    x_shape[ax], i_shape[ax] = n, m
    indices = _nonnegative(indices, n, x.ndim + ax)
    xm = moveaxis(broadcast_to(x, tuple(x_shape)), ax, -1)
    im = moveaxis(broadcast_to(indices, tuple(i_shape)), ax, -1)
    rows = math.prod(xm.shape[:-1])
    xp, device = _p.namespace_and_device(indices)
    offsets = xp.reshape(xp.arange(rows, dtype=indices.dtype, device=device) * n, (rows, 1))
    flat = reshape(add(reshape(im, (rows, m)), offsets), (-1,))
    got = _p.take(reshape(xm, (-1,)), flat, axis=-1)
    return moveaxis(reshape(got, tuple(im.shape)), -1, ax)


# ---------------------------------------------------------------------------------------------
# Manipulation functions
# ---------------------------------------------------------------------------------------------


def tile(x: Any, repetitions: Sequence[int], /) -> Any:
    """``x`` repeated ``repetitions[i]`` times along each axis (ones are prepended to the shorter
    of ``x.shape`` and ``repetitions``). A broadcast and a reshape: its derivative is a sum.

    >>> import numpy as np
    >>> tile(np.asarray([1.0, 2.0]), (2,)).tolist()
    [1.0, 2.0, 1.0, 2.0]
    """
    x = _as_array(x)
    if not isinstance(repetitions, (tuple, list)):
        raise TypeError(f"tile: repetitions must be a tuple of ints, got {type(repetitions).__name__}")
    reps = tuple(_int(r, "tile: repetitions[i]") for r in repetitions)
    if builtins.any(r < 0 for r in reps):
        raise ValueError(f"tile: repetitions must be non-negative, got {reps}")
    n = builtins.max(x.ndim, len(reps))
    reps = (1,) * (n - len(reps)) + reps
    shape = (1,) * (n - x.ndim) + tuple(x.shape)
    spread = reshape(x, tuple(d for s in shape for d in (1, s)))
    out = broadcast_to(spread, tuple(d for r, s in zip(reps, shape) for d in (r, s)))
    return _fresh(reshape(out, tuple(r * s for r, s in zip(reps, shape))), x)


def repeat(x: Any, repeats: Any, /, *, axis: int | None = None) -> Any:
    """Each element of ``x`` repeated ``repeats`` times along ``axis`` (``x`` flattened when
    ``axis`` is None). ``repeats`` is an int, or an integer array of one count per element (or
    one for all): the result's shape then depends on its values, so it must be a constant, not a
    traced value (the library works out the positions, which on a GPU waits for the counts).

    >>> import numpy as np
    >>> repeat(np.asarray([1.0, 2.0]), 2).tolist()
    [1.0, 1.0, 2.0, 2.0]
    >>> repeat(np.asarray([1.0, 2.0]), np.asarray([1, 3])).tolist()
    [1.0, 2.0, 2.0, 2.0]
    """
    x = _as_array(x)
    if axis is None:
        x = reshape(x, (-1,))
        axis = 0
    ax = _normalize_axis(axis, x.ndim)
    pos = x.ndim + ax
    shape = tuple(x.shape)
    if isinstance(repeats, int) and not isinstance(repeats, builtins.bool):
        if repeats < 0:
            raise ValueError(f"repeat: repeats must be non-negative, got {repeats}")
        spread = reshape(x, shape[: pos + 1] + (1,) + shape[pos + 1 :])
        out = broadcast_to(spread, shape[: pos + 1] + (repeats,) + shape[pos + 1 :])
        return _fresh(reshape(out, shape[:pos] + (shape[pos] * repeats,) + shape[pos + 1 :]), x)
    if isinstance(repeats, Tracer):
        raise ConcretizationError(
            "repeat: repeats is a traced value, but the result's shape depends on its values; pass "
            "an int or a constant array (gpuad.stop_gradient does not make it one: compute it outside "
            "the transformed function)"
        )
    if isinstance(repeats, builtins.bool) or not _backend.is_array(repeats):
        raise TypeError(f"repeat: repeats must be an int or an integer array, got {type(repeats).__name__}")
    if not isdtype(repeats.dtype, "integral"):
        raise TypeError(f"repeat: repeats must have an integer dtype, got {repeats.dtype}")
    if repeats.ndim > 1 or (repeats.ndim == 1 and repeats.shape[0] not in (1, shape[pos])):
        raise ValueError(
            f"repeat: repeats must have shape (1,) or ({shape[pos]},) (one count per element along "
            f"axis {axis}), got {tuple(repeats.shape)}"
        )
    rxp = _backend.namespace_of(repeats)
    counts = rxp.reshape(repeats, (-1,))
    if counts.shape[0] == 1:
        counts = rxp.broadcast_to(counts, (shape[pos],))
    positions = rxp.repeat(rxp.arange(shape[pos], device=_backend.device_of(repeats)), counts)
    return _p.take(x, positions, axis=ax)


def roll(x: Any, /, shift: int | tuple[int, ...], *, axis: int | tuple[int, ...] | None = None) -> Any:
    """Elements shifted by ``shift`` along ``axis`` (toward larger indices for a positive shift),
    those past the end coming back at the start; ``axis=None`` rolls the flattened array.

    >>> import numpy as np
    >>> roll(np.asarray([1.0, 2.0, 3.0]), -1).tolist()
    [2.0, 3.0, 1.0]
    """
    x = _as_array(x)
    if axis is None:
        flat = reshape(x, (-1,))
        return _fresh(reshape(_roll_axis(flat, _int(shift, "roll: shift"), -1), tuple(x.shape)), x)
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    if isinstance(shift, (tuple, list)):
        shifts = tuple(_int(s, "roll: shift[i]") for s in shift)
        if len(shifts) != len(axes):
            raise ValueError(f"roll: shift {tuple(shift)} and axis {axis} must have the same length")
    else:
        shifts = (_int(shift, "roll: shift"),) * len(axes)
    out = x
    for s, a in zip(shifts, axes):
        out = _roll_axis(out, s, _normalize_axis(a, x.ndim))
    return _fresh(out, x)


def _roll_axis(x: Any, shift: int, axis: int) -> Any:
    n = x.shape[axis]
    if n == 0 or shift % n == 0:
        return x
    cut = n - shift % n
    tail = getitem(x, _along(axis, x.ndim, slice(cut, None)))
    head = getitem(x, _along(axis, x.ndim, slice(0, cut)))
    return concat([tail, head], axis=axis)


def unstack(x: Any, /, *, axis: int = 0) -> tuple[Any, ...]:
    """The slices of ``x`` along ``axis``, as a tuple.

    >>> import numpy as np
    >>> [a.tolist() for a in unstack(np.asarray([[1.0, 2.0], [3.0, 4.0]]), axis=1)]
    [[1.0, 3.0], [2.0, 4.0]]
    """
    x = _as_array(x)
    if x.ndim == 0:
        raise ValueError("unstack: x must have at least one dimension")
    ax = _normalize_axis(axis, x.ndim)
    return tuple(getitem(x, _along(ax, x.ndim, i)) for i in range(x.shape[ax]))


# ---------------------------------------------------------------------------------------------
# Creation functions that take arrays
# ---------------------------------------------------------------------------------------------


def _triangle(x: Any, k: int, name: str, lower: builtins.bool) -> Any:
    x = _as_array(x)
    k = _int(k, f"{name}: k")
    if x.ndim < 2:
        raise ValueError(f"{name}: x must have at least 2 dimensions, got shape {tuple(x.shape)}")
    rows, cols = x.shape[-2:]
    xp, device = _p.namespace_and_device(x)
    offset = xp.arange(cols, device=device)[None, :] - xp.arange(rows, device=device)[:, None]
    keep = offset <= k if lower else offset >= k
    return where(keep, x, zeros_like(x))


def tril(x: Any, /, *, k: int = 0) -> Any:
    """The lower triangle of the matrices of ``x`` (on and below diagonal ``k``), zeros above.

    >>> import numpy as np
    >>> tril(np.ones((2, 2))).tolist()
    [[1.0, 0.0], [1.0, 1.0]]
    """
    return _triangle(x, k, "tril", lower=True)


def triu(x: Any, /, *, k: int = 0) -> Any:
    """The upper triangle of the matrices of ``x`` (on and above diagonal ``k``), zeros below."""
    return _triangle(x, k, "triu", lower=False)


def meshgrid(*arrays: Any, indexing: str = "xy") -> tuple[Any, ...]:
    """Coordinate grids from 1-D arrays: with ``indexing="xy"`` (Cartesian) the first two axes
    of the grids are swapped relative to ``"ij"`` (matrix). Broadcasts, so differentiable.

    >>> import numpy as np
    >>> X, Y = meshgrid(np.asarray([1.0, 2.0, 3.0]), np.asarray([4.0, 5.0]))
    >>> X.shape
    (2, 3)
    """
    if indexing not in ("xy", "ij"):
        raise ValueError(f"meshgrid: indexing must be 'xy' or 'ij', got {indexing!r}")
    arrays = tuple(_as_array(a, f"arrays[{i}]") for i, a in enumerate(arrays))
    for i, a in enumerate(arrays):
        if a.ndim != 1:
            raise ValueError(f"meshgrid: arrays[{i}] must be one-dimensional, got shape {tuple(a.shape)}")
    n = len(arrays)
    place = list(range(n))
    if indexing == "xy" and n >= 2:
        place[0], place[1] = 1, 0
    shape = [0] * n
    for i, a in enumerate(arrays):
        shape[place[i]] = a.shape[0]
    out = []
    for i, a in enumerate(arrays):
        alone = [1] * n
        alone[place[i]] = a.shape[0]
        out.append(broadcast_to(reshape(a, tuple(alone)), tuple(shape)))
    return tuple(out)


def from_dlpack(x: Any, /, *, device: Any = None, copy: Any = None) -> Any:
    """An array of the default backend's library from any object with ``__dlpack__``."""
    xp = _backend.namespace_of_backend(None)
    kwargs = {k: v for k, v in (("device", device), ("copy", copy)) if v is not None}
    return xp.from_dlpack(x, **kwargs)


# ---------------------------------------------------------------------------------------------
# Statistical functions
# ---------------------------------------------------------------------------------------------


def diff(
    x: Any, /, *, axis: int = -1, n: int = 1, prepend: Any = None, append: Any = None
) -> Any:
    """The ``n``-th forward difference along ``axis`` (``not_equal`` for booleans, as NumPy), with
    ``prepend``/``append`` joined to ``x`` first.

    >>> import numpy as np
    >>> diff(np.asarray([1.0, 4.0, 9.0])).tolist()
    [3.0, 5.0]
    """
    x = _as_array(x)
    if x.ndim == 0:
        raise ValueError("diff: x must have at least one dimension")
    ax = _normalize_axis(axis, x.ndim)
    n = _int(n, "diff: n")
    if n < 0:
        raise ValueError(f"diff: n must be non-negative, got {n}")
    parts = []
    for name, extra in (("prepend", prepend), (None, x), ("append", append)):
        if extra is None:
            continue
        if name is not None and not hasattr(extra, "shape"):  # a Python scalar: one slice of it
            shape = list(x.shape)
            shape[ax] = 1
            extra = broadcast_to(asarray(extra, dtype=x.dtype, device=_p.namespace_and_device(x)[1]), tuple(shape))
        parts.append(_as_array(extra, name or "x"))
    out = concat(parts, axis=ax) if len(parts) > 1 else x
    step = not_equal if isdtype(out.dtype, "bool") else subtract
    for _ in range(n):
        out = step(getitem(out, _along(ax, out.ndim, slice(1, None))), getitem(out, _along(ax, out.ndim, slice(None, -1))))
    return _fresh(out, x)


def _product_dtype(x: Any) -> Any:
    """The dtype the standard gives a product of ``x`` with no ``dtype=``, where it is not
    ``x.dtype``: a signed integer narrower than the default integer becomes the default integer,
    an unsigned one the unsigned integer of the default integer's width (booleans, which the
    standard leaves open, the default integer, as NumPy). None where ``x.dtype`` stays."""
    name = _backend.dtype_name(x.dtype)
    if name != "bool" and not name.startswith(("int", "uint")):
        return None
    xp, device = _p.namespace_and_device(x)
    try:
        default = _backend.dtype_name(xp.__array_namespace_info__().default_dtypes(device=device)["integral"])
    except Exception:  # libraries without the inspection namespace
        default = "int64"
    bits = int(default[3:])
    if name != "bool" and iinfo(x.dtype).bits >= bits:
        return None
    return _backend.named_dtype(f"uint{bits}" if name.startswith("uint") else default)


def cumulative_prod(
    x: Any, /, *, axis: int | None = None, dtype: Any = None, include_initial: builtins.bool = False
) -> Any:
    """Running product along ``axis`` (required unless ``x`` is 1-D). Plain arrays go to the
    library's function; traced values to a log-depth scan of multiplications (as JAX's derivative
    of cumprod), exact where elements are zero (no division) and differentiable again.

    >>> import numpy as np
    >>> cumulative_prod(np.asarray([1.0, 2.0, 3.0])).tolist()
    [1.0, 2.0, 6.0]
    """
    x = _as_array(x)
    if axis is None:
        if x.ndim != 1:
            raise ValueError(f"cumulative_prod: axis is required for a {x.ndim}-d array")
        axis = 0
    ax = _normalize_axis(axis, x.ndim)
    if dtype is not None:
        x = astype(x, dtype)
    if not isinstance(x, Tracer):
        xp = _backend.namespace_of(x)
        return _in_dtype(xp.cumulative_prod(x, axis=ax, include_initial=include_initial), dtype)
    if dtype is None:
        wide = _product_dtype(x)
        if wide is not None:
            x = astype(x, wide)
    n = x.shape[ax]
    y = x
    shift = 1
    while shift < n:
        head = ones_like(getitem(y, _along(ax, y.ndim, slice(0, shift))))
        y = multiply(y, concat([head, getitem(y, _along(ax, y.ndim, slice(0, n - shift)))], axis=ax))
        shift *= 2
    if include_initial:
        shape = list(x.shape)
        shape[ax] = 1
        xp, device = _p.namespace_and_device(x)
        y = concat([xp.ones(tuple(shape), dtype=_backend.backend_dtype(xp, x.dtype), device=device), y], axis=ax)
    return _in_dtype(y, dtype)
