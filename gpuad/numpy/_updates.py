"""Functional updates, JAX's ``x.at[idx].set(v)``: ``x.at`` on traced values and ``gnp.at(x)``
for any array give a helper whose ``set``, ``add``, ``subtract``, ``multiply``, ``min``, ``max`` and
``get`` return a NEW array (the input is never written), differentiable in both modes and under vmap.

Semantics are JAX's: ``v`` is cast to x's dtype and broadcast to the shape of ``x[idx]``; repeated
integer-array indices accumulate in ``add``, multiply in ``multiply``, and ``min``/``max`` combine
them all (the derivative shared equally among the elements equal to the result, x's included).
With repeated indices in ``set`` the LAST update wins (as NumPy and JAX on the CPU do; JAX leaves
it unspecified), on every backend, and only the winner receives a derivative.

Out-of-range indices: by default they raise IndexError where the check costs no device sync (NumPy
arrays), as ``x[idx]`` does (JAX drops such updates instead); ``mode="clip"`` clamps them into
range as JAX does; ``mode="promise_in_bounds"`` is the default's check; "drop" and "fill" are
refused.
"""

from __future__ import annotations

import builtins
import math
from typing import Any

from .. import backend as _backend
from .. import primitives as _p
from ..tracing import Tracer
from ._core import *  # noqa: F403  (the namespace's functions)
from ._core import _as_array
from ._indexing import canonical_index, getitem, linear_index

__all__ = ["at"]

_MODES = (None, "promise_in_bounds", "clip")


def at(x: Any, /) -> "_IndexUpdateHelper":
    """The functional-update helper of ``x`` (what ``x.at`` is on a traced value): ``at(x)[idx]``
    followed by ``.set(v)``, ``.add(v)``, ``.subtract(v)``, ``.multiply(v)``, ``.min(v)``,
    ``.max(v)`` or ``.get()`` gives a new array; ``x`` itself is never written.

    >>> import numpy as np, gpuad.numpy as gnp
    >>> x = np.zeros(4)
    >>> gnp.at(x)[np.asarray([0, 2, 0])].add(1.0).tolist(), x.tolist()
    ([2.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0])
    """
    return _IndexUpdateHelper(_as_array(x))


class _IndexUpdateHelper:
    """``x.at``: indexing it names the elements to update."""

    __slots__ = ("array",)

    def __init__(self, array: Any) -> None:
        self.array = array

    def __getitem__(self, index: Any) -> "_IndexUpdateRef":
        return _IndexUpdateRef(self.array, index)

    def __repr__(self) -> str:
        return f"_IndexUpdateHelper({self.array!r})"


class _IndexUpdateRef:
    """``x.at[idx]``: its methods return x updated at idx (JAX's keyword arguments accepted)."""

    __slots__ = ("array", "index")

    def __init__(self, array: Any, index: Any) -> None:
        self.array = array
        self.index = index

    def __repr__(self) -> str:
        return f"_IndexUpdateRef({self.array!r}, {self.index!r})"

    def get(self, *, indices_are_sorted: Any = False, unique_indices: Any = False, mode: Any = None, fill_value: Any = None) -> Any:
        """``x[idx]`` (a new array)."""
        _check_mode("get", mode)
        if fill_value is not None:
            raise ValueError("x.at[idx].get: fill_value is only used with mode='fill', which gpuad does not support")
        if mode == "clip":
            return _fresh(_update(self.array, self.index, None, "get", mode), self.array)
        return _fresh(getitem(self.array, self.index), self.array)

    def set(self, values: Any, *, indices_are_sorted: Any = False, unique_indices: Any = False, mode: Any = None) -> Any:
        """x with ``x[idx] = values`` (repeated indices: the last update wins)."""
        return _update(self.array, self.index, values, "set", mode)

    def add(self, values: Any, *, indices_are_sorted: Any = False, unique_indices: Any = False, mode: Any = None) -> Any:
        """x with ``x[idx] += values`` (repeated indices accumulate)."""
        return _update(self.array, self.index, values, "add", mode)

    def subtract(self, values: Any, *, indices_are_sorted: Any = False, unique_indices: Any = False, mode: Any = None) -> Any:
        """x with ``x[idx] -= values`` (repeated indices accumulate)."""
        return _update(self.array, self.index, values, "subtract", mode)

    def multiply(self, values: Any, *, indices_are_sorted: Any = False, unique_indices: Any = False, mode: Any = None) -> Any:
        """x with ``x[idx] *= values`` (repeated indices multiply each)."""
        return _update(self.array, self.index, values, "multiply", mode)

    mul = multiply  # JAX's alias

    def min(self, values: Any, *, indices_are_sorted: Any = False, unique_indices: Any = False, mode: Any = None) -> Any:
        """x with ``x[idx] = minimum(x[idx], values)`` (repeated indices: the minimum of all)."""
        return _update(self.array, self.index, values, "min", mode)

    def max(self, values: Any, *, indices_are_sorted: Any = False, unique_indices: Any = False, mode: Any = None) -> Any:
        """x with ``x[idx] = maximum(x[idx], values)`` (repeated indices: the maximum of all)."""
        return _update(self.array, self.index, values, "max", mode)


def _check_mode(method: str, mode: Any) -> None:
    if mode not in _MODES:
        raise ValueError(
            f"x.at[idx].{method}: mode={mode!r} is not supported; use mode=None or 'promise_in_bounds' "
            "(out-of-range indices raise IndexError on NumPy arrays) or 'clip' (they are clamped into "
            "range); for 'drop', mask the update instead, e.g. x.at[idx].add(gnp.where(ok, v, 0))"
        )


def _fresh(out: Any, x: Any) -> Any:
    """``out``, copied where it is ``x`` or a view of it: the result never aliases the input."""
    if isinstance(out, Tracer) or isinstance(x, Tracer):
        return out
    return _backend.unaliased([out], [x])[0]


# ---------------------------------------------------------------------------------------------
# The updates
# ---------------------------------------------------------------------------------------------


def _values(x: Any, v: Any, shape: tuple[int, ...], method: str) -> Any:
    """``v`` in x's dtype, broadcast to ``shape`` (that of ``x[idx]``), as JAX takes it."""
    xp, device = _p.namespace_and_device(x)
    if isinstance(v, (builtins.bool, int, float)) or isinstance(v, (list, tuple)):
        v = xp.asarray(v, dtype=_backend.backend_dtype(xp, x.dtype), device=device)
    elif not (isinstance(v, Tracer) or _backend.is_array(v)):
        raise TypeError(f"x.at[idx].{method}: values must be an array or a Python number, got {type(v).__name__}")
    elif _backend.dtype_name(v.dtype) != _backend.dtype_name(x.dtype):
        v = astype(v, x.dtype)
    if tuple(v.shape) != shape:
        ok = len(shape) >= v.ndim and builtins.all(d in (1, e) for d, e in zip(reversed(tuple(v.shape)), reversed(shape)))
        if not ok:
            raise ValueError(
                f"x.at[idx].{method}: values of shape {tuple(v.shape)} do not broadcast to the shape "
                f"{shape} of x[idx]; give values that shape, or one that broadcasts to it"
            )
        v = broadcast_to(v, shape)
    return v


def _combine(method: str, part: Any, v: Any) -> Any:
    """The new value of a part of x (basic indices: no element repeats)."""
    if method == "set":
        return v
    if method == "add":
        return add(part, v)
    if method == "subtract":
        return subtract(part, v)
    if method == "multiply":
        return multiply(part, v)
    return minimum(part, v) if method == "min" else maximum(part, v)  # ties share 0.5, as in JAX


def _update(x: Any, key: Any, v: Any, method: str, mode: Any) -> Any:
    _check_mode(method, mode)
    items, has_array = canonical_index(x, key, f"x.at[idx].{method}: ", clip=mode == "clip")
    if not has_array:
        index = (Ellipsis, *items)
        if method == "get":
            return _p.getitem(x, index=index)
        shape = _p._part_shape(index, tuple(x.shape))
        v = _values(x, v, shape, method)
        new = _combine(method, None if method == "set" else _p.getitem(x, index=index), v)
        return _p.set_part(x, new, index=index)
    return _update_at_arrays(x, items, v, method, mode == "clip")


def _update_at_arrays(x: Any, items: list[Any], v: Any, method: str, clip_mode: builtins.bool) -> Any:
    """Integer-array indices: the basic part of the index first (its part of x), the indexed axes
    merged into one (row-major, as x[idx] gathers them), the updates combined along it, and the
    part written back."""
    adv = [i for i, k in enumerate(items) if isinstance(k, int) or isinstance(k, Tracer) or _backend.is_array(k)]
    if adv != list(range(adv[0], adv[-1] + 1)):
        raise IndexError(
            "integer-array indices separated by a slice or None are not supported (NumPy would move "
            "the indexed axes to the front); update in two steps, e.g. x.at[:, i].set(x[:, i].at[j].set(v))"
        )
    basic = [slice(None) if i in adv else k for i, k in enumerate(items)]
    basic_index = (Ellipsis, *basic)
    partial = builtins.any(k is None or (isinstance(k, slice) and k != slice(None)) for k in basic)
    inner = _p.getitem(x, index=basic_index) if partial else x
    start = builtins.sum(1 for k in items[: adv[0]] if k is None or isinstance(k, slice))
    dims = tuple(inner.shape[start : start + len(adv)])
    linear, idx_shape = linear_index(x, items, adv, dims, start, clip_mode)
    before, after = tuple(inner.shape[:start]), tuple(inner.shape[start + len(adv) :])
    n, m = math.prod(dims), math.prod(idx_shape)
    flat = reshape(inner, before + (n,) + after)
    axis = len(before) - flat.ndim
    if method == "get":
        return reshape(_p.take(flat, linear, axis=axis), before + idx_shape + after)
    v = _values(x, v, before + idx_shape + after, method)
    if m == 0:
        return _fresh(x, x) if not isinstance(x, Tracer) else x
    v = reshape(v, before + (m,) + after)
    if method == "set":
        new = _scatter_set(flat, v, linear, axis, n, m, after)
    elif method in ("add", "subtract"):
        new = (add if method == "add" else subtract)(flat, _p.put_add(v, linear, axis=axis, size=n))
    elif method == "multiply":
        new = multiply(flat, _p.put_mul(v, linear, axis=axis, size=n))
    else:
        new = (_p.put_min if method == "min" else _p.put_max)(flat, v, linear, axis=axis)
    new = reshape(new, tuple(inner.shape))
    return _p.set_part(x, new, index=basic_index) if partial else new


def _scatter_set(flat: Any, v: Any, linear: Any, axis: int, n: int, m: int, after: tuple[int, ...]) -> Any:
    """``flat`` with ``v`` written at ``linear`` along ``axis``, the last of repeated updates
    winning: which update wins each position is found from the indices alone (the largest update
    number there, -1 where none), so the values are only gathered, deterministically on every
    backend, and the derivative reaches the winners only."""
    xp, device = _p.namespace_and_device(linear)
    dtype = linear.dtype
    none = xp.full((n,), -1, dtype=_backend.backend_dtype(xp, dtype), device=device)
    numbers = xp.arange(m, dtype=_backend.backend_dtype(xp, dtype), device=device)
    winner = _p.put_max(none, numbers, linear, axis=-1)
    picked = _p.take(v, where(winner < 0, 0, winner), axis=axis)
    hit = reshape(winner >= 0, (n,) + (1,) * len(after))
    return where(hit, picked, flat)
