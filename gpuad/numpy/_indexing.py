"""Indexing of traced values (``x[key]``): basic indexing as one primitive, integer and boolean
arrays through take and where."""

from __future__ import annotations

import builtins
import math
from typing import Any

from .. import backend as _backend
from .. import primitives as _p
from ..tracing import Tracer
from ._core import *  # noqa: F403  (the namespace's functions)
from ._core import _as_array

__all__ = ["getitem"]

# ---------------------------------------------------------------------------------------------
# Indexing
# ---------------------------------------------------------------------------------------------


def _index_error_bool() -> IndexError:
    return IndexError(
        "boolean mask indexing gives a data-dependent shape and is not supported by gpuad's "
        "transforms; use gnp.where(mask, x, 0), or select the indices before differentiating"
    )


def getitem(x: Any, key: Any) -> Any:
    """``x[key]`` with basic indexing (ints, slices, None, Ellipsis) and integer-array indexing
    (the arrays, and any ints among them, must be adjacent, as NumPy then keeps them in place)."""
    x = _as_array(x)
    # The common per-point patterns x[i] and x[..., i] skip the general normalisation below.
    if type(key) is int:
        shape = x.shape
        if shape and -shape[0] <= key < shape[0]:
            return _p.getitem(x, index=(Ellipsis, key % shape[0]) + (slice(None),) * (len(shape) - 1))
    elif type(key) is tuple and len(key) == 2 and key[0] is Ellipsis and type(key[1]) is int:
        shape = x.shape
        k = key[1]
        if shape and -shape[-1] <= k < shape[-1]:
            return _p.getitem(x, index=(Ellipsis,) + (slice(None),) * (len(shape) - 1) + (k % shape[-1],))
    items, has_array = canonical_index(x, key)
    if not has_array:
        return _p.getitem(x, index=(Ellipsis, *items))
    return _advanced_getitem(x, items)


def canonical_index(x: Any, key: Any, where: str = "", clip: builtins.bool = False) -> tuple[list[Any], builtins.bool]:
    """``key`` as one item per axis of ``x`` (integers made non-negative, index arrays checked),
    plus None for new axes; and whether an integer array is among them. ``where`` starts the
    messages (``x.at[idx].set: ``); ``clip`` clips integers into range instead of refusing them."""
    if not isinstance(key, tuple):
        key = (key,)
    items: list[Any] = []
    has_array = False
    for k in key:
        if k is None or k is Ellipsis or isinstance(k, slice):
            if isinstance(k, slice) and k.step == 0:
                raise ValueError(f"{where}slice step cannot be zero")
            items.append(k)
        elif isinstance(k, builtins.bool):
            raise _index_error_bool()
        elif isinstance(k, int):
            items.append(k)
        else:
            if isinstance(k, Tracer):
                concrete = k._concrete()
                if concrete is None:  # a batched (per-point) index: gathered per point
                    items.append(_checked_index_array(k, where))
                    has_array = True
                    continue
                k = concrete
            if isinstance(k, (list, tuple)):
                k = _index_array_like(x, k)
            elif not _backend.is_array(k) and hasattr(k, "__index__"):
                items.append(operator.index(k))
                continue
            elif not _backend.is_array(k):
                raise TypeError(
                    f"{where}index of type {type(k).__name__} is not supported; use ints, slices, None, "
                    "Ellipsis or integer arrays"
                )
            _checked_index_array(k, where)
            k_xp, x_xp = _backend.namespace_of(k), _p.namespace_and_device(x)[0]
            if k_xp is not x_xp:
                raise TypeError(
                    f"{where}the index array is {_backend._a_library(k_xp)} array but the indexed array is "
                    f"{_backend._a_library(x_xp)} array; make the index with the same library "
                    "(e.g. gnp.asarray(index, device=x.device))"
                )
            items.append(k)
            has_array = True
    if builtins.sum(1 for k in items if k is Ellipsis) > 1:
        raise IndexError(f"{where}an index can only have a single ellipsis ('...')")
    consuming = builtins.sum(1 for k in items if k is not None and k is not Ellipsis)
    if consuming > x.ndim:
        raise IndexError(f"{where}too many indices for array: array is {x.ndim}-dimensional, but {consuming} were indexed")
    fill = [slice(None)] * (x.ndim - consuming)
    pos = next((i for i, k in enumerate(items) if k is Ellipsis), None)
    items = items[:pos] + fill + items[pos + 1 :] if pos is not None else items + fill
    # Bounds of integer indices, checked here where the shape is known (NumPy's message).
    axis = 0
    for i, k in enumerate(items):
        if k is None:
            continue
        if isinstance(k, int):
            n = x.shape[axis]
            if clip:
                k = builtins.min(builtins.max(k + n if k < 0 else k, 0), n - 1)
            elif not -n <= k < n:
                raise IndexError(f"{where}index {k} is out of bounds for axis {axis} with size {n}")
            items[i] = k + n if k < 0 else k
        axis += 1
    return items, has_array


def _checked_index_array(k: Any, where: str) -> Any:
    if isdtype(k.dtype, "bool"):
        raise _index_error_bool()
    if not isdtype(k.dtype, "integral"):
        raise IndexError(f"{where}index arrays must be integers, got dtype {k.dtype}")
    return k


def _index_array_like(x: Any, k: Any) -> Any:
    xp, device = _p.namespace_and_device(x)
    return xp.asarray(k, device=device)


def _is_index_array(k: Any) -> builtins.bool:
    return isinstance(k, Tracer) or _backend.is_array(k)


def linear_index(
    x: Any, items: list[Any], adv: list[int], dims: tuple[int, ...], start: int, clip_mode: builtins.bool = False
) -> tuple[Any, tuple[int, ...]]:
    """The integer indices at positions ``adv`` of the canonical ``items`` (reading the axes of
    sizes ``dims`` from axis ``start`` on) as one flat index into those axes merged row-major, and
    the indices' broadcast shape. ``clip_mode`` clips index arrays into range instead of checking
    them (``.at[...]``'s mode="clip")."""
    xp = _p.namespace_and_device(x)[0]
    idx = []
    for pos, d in zip(adv, dims):
        k = items[pos]  # ints are already in range and non-negative
        if not isinstance(k, int):
            if not isinstance(k, Tracer) and not clip_mode:
                _backend.check_index_bounds(xp, k, d, start + len(idx))
            k = where(k < 0, k + d, k)
            if clip_mode:
                k = clip(k, 0, d - 1)
        idx.append(k)
    idx_shape = _p.broadcast_shapes(*(() if isinstance(i, int) else tuple(i.shape) for i in idx))
    terms = []
    stride = 1
    for i, d in zip(reversed(idx), reversed(dims)):
        terms.append(i * stride if stride != 1 else i)
        stride *= d
    arrays = [t for t in terms if not isinstance(t, int)]
    linear = arrays[0]
    for t in arrays[1:]:
        linear = add(linear, t)
    offset = builtins.sum(t for t in terms if isinstance(t, int))
    if offset:
        linear = linear + offset
    return reshape(broadcast_to(linear, idx_shape), (-1,)), idx_shape


def _advanced_getitem(x: Any, items: list[Any]) -> Any:
    adv = [i for i, k in enumerate(items) if isinstance(k, int) or _is_index_array(k)]
    if adv != list(range(adv[0], adv[-1] + 1)):
        raise IndexError(
            "integer-array indices separated by a slice or None are not supported (NumPy would move "
            "the indexed axes to the front); index in two steps, e.g. x[:, i][j]"
        )
    # Basic part first (the advanced positions become full slices), then one gather.
    basic = [slice(None) if i in adv else k for i, k in enumerate(items)]
    y = _p.getitem(x, index=(Ellipsis, *basic)) if builtins.any(
        k is None or (isinstance(k, slice) and k != slice(None)) for k in basic
    ) else x
    start = builtins.sum(1 for k in items[: adv[0]] if k is None or isinstance(k, slice))
    dims = tuple(y.shape[start : start + len(adv)])
    linear, idx_shape = linear_index(x, items, adv, dims, start)
    before, after = tuple(y.shape[:start]), tuple(y.shape[start + len(adv) :])
    flat = reshape(y, before + (math.prod(dims),) + after) if len(adv) > 1 else y
    out = _p.take(flat, linear, axis=len(before) - flat.ndim)
    return reshape(out, before + idx_shape + after)
