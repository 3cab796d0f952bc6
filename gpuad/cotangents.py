"""The cotangents of one backward sweep: who holds what, and how a contribution joins it.

The sweep (reverse.backward) asks three things of it: the whole cotangent of a record's output
(``pop``), add a rule's contribution to an input (``add``), or hand over a part (``add_part``, for
reads of part of an array). What this class keeps track of to make those cheap:

* **ownership**: a buffer this sweep allocated itself (``owned``) may be summed into in place; a
  cotangent that is (or may view) a seed or a value of the computation (``borrowed``: ``add``
  passes ``g`` on, ``mul(g, y)`` is ``y`` for a Uniform one) is never written into, and is copied
  before it is handed out when the caller asked for ``fresh`` results;
* **parts**: the cotangents of several reads of parts of one array (getitem) are collected as
  ``_Parts`` and written into one buffer when the whole is needed, instead of one zero-filled array
  per read.
"""

from __future__ import annotations

from typing import Any

from .backend import is_writable, namespace_of
from .primitives import _assignable, _index_ndim, _region, _slices_key, _tiling, add, broadcasted, cast, concat, embed_add, plus, reshaped, summed
from .tracing import Tracer
from .uniform import Uniform, as_array, reduced_to

__all__ = ["Cotangents"]


class Cotangents:
    """node -> pending cotangent (an array, a Uniform or _Parts) for one sweep."""

    __slots__ = ("values", "owned", "borrowed")

    def __init__(self, seeds: dict[int, Any]):
        self.values: dict[int, Any] = dict(seeds)
        self.owned: set[int] = set()
        self.borrowed: set[int] = {n for n, c in seeds.items() if type(c) is not Uniform}

    def pop(self, out_node: Any) -> tuple[Any, bool]:
        """The whole cotangent of a record's output (a tuple of them for a record with several
        outputs; None where nothing arrived), and whether it is borrowed; the node is done with."""
        values, owned, borrowed = self.values, self.owned, self.borrowed
        if type(out_node) is tuple:
            g = tuple(_whole(values.pop(n, None)) for n in out_node)
            is_borrowed = any(n in borrowed for n in out_node)
            owned.difference_update(out_node)
            borrowed.difference_update(out_node)
            return (None if all(x is None for x in g) else g), is_borrowed
        g = values.pop(out_node, None)
        if g is None:
            return None, False
        if type(g) is _Parts:
            g = g.join()[0]
        owned.discard(out_node)
        if out_node in borrowed:
            borrowed.discard(out_node)
            return g, True
        return g, False

    def add(self, node: int, c: Any, aval: Any, g: Any, g_borrowed: bool, rec: Any) -> None:
        """Add a rule's contribution ``c`` for the input ``node`` of shape and dtype ``aval``, summed
        back over broadcast axes; ``g`` and ``rec`` are the rule's cotangent and record (``c`` may
        be one of their values: then it is borrowed)."""
        if type(c) is Uniform:
            is_borrowed = False
            if c.shape != aval[0] or c.dtype != aval[1]:
                c = reduced_to(c, aval[0], aval[1])
        else:
            is_borrowed = g_borrowed or c is g or c is rec.ans or any(a is c for a in rec.args)
            if c.shape != aval[0] or c.dtype != aval[1]:
                c = _unbroadcast(c, aval[0], aval[1])
        values = self.values
        prev = values.get(node)
        if prev is None:
            values[node] = c
            if is_borrowed:
                self.borrowed.add(node)
        elif type(prev) is _Parts:  # a whole contribution to an array read in parts: the base
            prev.add(c)
        elif node in self.owned and not isinstance(c, Tracer):
            prev += c.value if type(c) is Uniform else c  # into this sweep's own buffer
        else:
            total = values[node] = plus(prev, c)  # two Uniforms of one shape make a Uniform
            self.borrowed.discard(node)
            if not isinstance(total, Tracer) and type(total) is not Uniform and is_writable(total):
                self.owned.add(node)

    def add_part(self, node: int, index: tuple[Any, ...], g: Any, aval: Any) -> None:
        """The cotangent ``g`` of a read of part ``index`` (canonical, basic) of the input ``node``."""
        values = self.values
        prev = values.get(node)
        if type(prev) is not _Parts:
            # The index covers the per-point axes only (leading ones pass through "...").
            n = sum(1 for item in index[1:] if item is not None)
            prev = values[node] = _Parts(aval[0][len(aval[0]) - n :], aval[1], prev, node in self.owned)
            self.owned.discard(node)
            self.borrowed.discard(node)
        if type(g) is Uniform:
            g = g if g.dtype == aval[1] else g.like(dtype=aval[1])
        elif g.dtype != aval[1]:
            g = cast(g, aval[1])
        prev.parts.append((index, g))

    def result(self, node: int, fresh: bool) -> Any:
        """The node's cotangent when the sweep is over (None: zero); with ``fresh``, one the caller
        may keep and write into."""
        c = self.values.get(node)
        is_borrowed = node in self.borrowed
        if type(c) is _Parts:
            c, is_owned = c.join()
            is_borrowed = is_borrowed and not is_owned
        if not fresh:
            return c
        if type(c) is Uniform:
            return c.full()
        if is_borrowed and c is not None and not isinstance(c, Tracer):
            return namespace_of(c).asarray(c, copy=True)
        return c


class _Parts:
    """The pending cotangent of an array that getitems read parts of: the parts (index, cotangent)
    and a ``base`` from other uses, written into one buffer when the sweep needs the whole."""

    __slots__ = ("shape", "dtype", "base", "base_owned", "parts")

    def __init__(self, shape: tuple[int, ...], dtype: Any, base: Any, base_owned: bool):
        self.shape = shape
        self.dtype = dtype
        self.base = base
        # Written into only where the library updates arrays in place (a Dask ``+=`` rebinds).
        self.base_owned = base_owned and is_writable(base)
        self.parts: list[tuple[Any, Any]] = []

    def add(self, c: Any) -> None:
        """Another whole contribution: into the base."""
        base = self.base
        if base is None:
            self.base, self.base_owned = c, False
        elif self.base_owned and not isinstance(c, Tracer):
            base += c.value if type(c) is Uniform else c
        else:
            total = self.base = plus(base, c)
            self.base_owned = not isinstance(total, Tracer) and type(total) is not Uniform and is_writable(total)

    def join(self) -> tuple[Any, bool]:
        """The whole cotangent, and whether the sweep owns it (a buffer it made)."""
        base, parts = self.base, self.parts
        if type(base) is Uniform:
            base = base.view()
        if base is not None and len(parts) == 1 and not (self.base_owned and not isinstance(parts[0][1], Tracer)):
            index, g = parts[0]
            if _covers_whole(index, self.shape):
                # One read of every element (``m[..., 0]`` of a per-point shape (1,)): the part,
                # reshaped, is the whole; one addition joins the base to it and makes a fresh array.
                g = as_array(g)
                lead = g.ndim - _index_ndim(index)
                whole = reshaped(g, tuple(g.shape[:lead]) + self.shape)
                out = add(base, whole)
                return out, not isinstance(out, Tracer) and is_writable(out)
        if base is None and len(parts) > 1:
            tiling = _tiling(_slices_key(tuple(i for i, _ in parts)), self.shape)
            if tiling is not None:  # the parts side by side along one axis (z[:, :h], z[:, h:]...): one concat
                axis, order = tiling
                out = concat(*(as_array(parts[i][1]) for i in order), axis=axis)
                return out, not isinstance(out, Tracer) and is_writable(out)
        plain = not any(isinstance(g, Tracer) for _, g in parts)
        if self.base_owned and plain:  # write the parts straight into the sweep's own buffer
            xp = namespace_of(base)
            for index, g in parts:
                g = as_array(g)
                g, key = _assignable(xp, g, index, g.ndim - _index_ndim(index))
                base[key] += g
            return base, True
        head = [] if base is None else [base]
        out = embed_add(
            *head, *[as_array(g) for _, g in parts], indices=tuple(i for i, _ in parts), shape=self.shape, has_base=base is not None
        )
        return out, not isinstance(out, Tracer) and is_writable(out)


def _covers_whole(index: tuple[Any, ...], shape: tuple[int, ...]) -> bool:
    """Whether the canonical basic ``index`` (Ellipsis, one item per axis, None for new axes) reads
    every element of a per-point ``shape`` once and in order: integers on axes of size 1, full
    slices elsewhere."""
    region = _region(index, shape)
    return region is not None and all(item is None or d == 1 for item, d in zip(region, shape))


def _unbroadcast(c: Any, shape: tuple[int, ...], dtype: Any) -> Any:
    """Sum a cotangent back to the shape of the input it belongs to, in that input's dtype."""
    cshape = tuple(c.shape)
    if cshape != shape:
        extra = len(cshape) - len(shape)
        if extra >= 0:
            axes = tuple(range(extra)) + tuple(
                extra + i for i, d in enumerate(shape) if d == 1 and cshape[extra + i] != 1
            )
            if axes:
                c = reshaped(summed(c, tuple(a - len(cshape) for a in axes), keepdims=True), shape)
        if tuple(c.shape) != shape:  # a rule returned something smaller than its input
            c = broadcasted(c, shape)
    if c.dtype != dtype:
        c = cast(c, dtype)
    return c


def _whole(c: Any) -> Any:
    if type(c) is _Parts:
        return c.join()[0]
    return c
