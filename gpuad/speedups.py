"""NumPy-specific speed-ups, beside backend: each makes a NumPy (host) computation faster without
changing its result, and leaves other libraries alone (CuPy has its own memory pool and fast
reductions; the standard's libraries get the plain path).

* memory layouts of Jacobian rows under vmap (``rows_outside`` and the ``*_in_layout_of`` buffers);
* short reductions rewritten as long ones (``reduce_short_rows``);
* ``out=`` writing into a given buffer (``ufunc_with_out``, for gpuad.jit's replay);
* a pool of large host buffers reused across the operations of a transformed call (``BufferPool``).
"""

from __future__ import annotations

import math
import sys
from typing import Any

import array_api_compat
import numpy  # host-ok: these speed-ups are for NumPy arrays

from .backend import device_of, is_numpy_namespace

__all__ = [
    "BufferPool",
    "empty_in_layout_of",
    "pooled_call",
    "reduce_short_rows",
    "repeat_rows_outside",
    "rows_outside",
    "ufunc_with_out",
    "zeros_in_layout_of",
]


# --- Memory layout of Jacobian rows under vmap (NumPy) ---
# A block of a few rows per point, stored point-major ((batch, rows) in C order), makes every elementwise loop
# of the backward sweep run over the few rows, with a per-row overhead that costs more than the arithmetic.
# Stored row-major ((rows, batch) in memory, viewed as (batch, rows)), the loops run over the batch: NumPy
# keeps an operand's layout in its results (order "K"). On a GPU the usual layout coalesces better.

ROWS_OUTSIDE_MAX = 16  # rows per point up to which the row-major layout pays for its seed array


def rows_outside(xp: Any, rows: int) -> bool:
    """Whether ``rows`` Jacobian rows per point should be laid out rows-outermost in memory."""
    return 1 < rows <= ROWS_OUTSIDE_MAX and is_numpy_namespace(xp)


def repeat_rows_outside(block: Any, n: int) -> Any:
    """``block`` (rows, *shape) repeated for ``n`` points: an (n, rows, *shape) NumPy array in
    Fortran order, the batch axis innermost in memory (so is it in every slice of it)."""
    out = numpy.empty((n,) + tuple(block.shape), dtype=block.dtype, order="F")  # host-ok: a NumPy-only path
    out[...] = block
    return out


def zeros_in_layout_of(xp: Any, shape: tuple[int, ...], like: Any) -> Any:
    """Zeros of ``shape`` in ``like``'s dtype, in Fortran order where ``like`` is a NumPy array in
    Fortran order (a block of rows laid out rows-outside), so that writing ``like``-shaped pieces
    into it runs over contiguous memory."""
    return _buffer_in_layout_of(xp, shape, like, "zeros")


def empty_in_layout_of(xp: Any, shape: tuple[int, ...], like: Any) -> Any:
    """As ``zeros_in_layout_of``, uninitialised: for a buffer whose every element is written
    before it is read (no pass over memory to fill it)."""
    return _buffer_in_layout_of(xp, shape, like, "empty")


def _buffer_in_layout_of(xp: Any, shape: tuple[int, ...], like: Any, make: str) -> Any:
    if type(like) is numpy.ndarray:
        fortran = like.ndim > 1 and like.flags.f_contiguous and not like.flags.c_contiguous
        return getattr(numpy, make)(shape, dtype=like.dtype, order="F" if fortran else "C")
    return getattr(xp, make)(shape, dtype=like.dtype, device=device_of(like))


# --- Reductions NumPy does slowly ---
# ``sum``/``max``/``min`` over a short last axis run one short inner loop per row, and ``sum`` over the leading
# axis of a (rows, few columns) array adds row by row, both 3-30x slower than the arithmetic. A matrix-vector
# product with ones (sums: BLAS, at least as accurate as NumPy's order here), or the reduction of the
# transposed rows over the long axis (max, min), does the same arithmetic in long vectorised runs.

SHORT_REDUCTION_MAX = 64  # reduced elements per row up to which the trailing-axes rewrite pays
LEADING_SUM_MAX_KEPT = 4096  # kept elements up to which a sum over leading axes goes to BLAS


def reduce_short_rows(xp: Any, op: str, x: Any, axis: tuple[int, ...], keepdims: bool) -> Any:
    """``op`` ("sum", "max" or "min") of ``x`` over ``axis`` (negative axes), for a C-ordered
    NumPy float array with more rows than SHORT_REDUCTION_MAX: over its trailing axes when they
    hold at most SHORT_REDUCTION_MAX elements per row, or (sum) over its leading axes when at most
    LEADING_SUM_MAX_KEPT elements are kept. None otherwise: the caller reduces as usual."""
    if type(x) is not numpy.ndarray or x.dtype.kind != "f" or not x.flags.c_contiguous:
        return None
    n, r = x.ndim, len(axis)
    if r == 0 or r >= n:
        return None
    axes = set(axis)
    if axes == set(range(-r, 0)):  # trailing axes
        k = math.prod(x.shape[n - r :])
        rows = x.size // k if k else 0
        if not 1 < k <= SHORT_REDUCTION_MAX or rows <= SHORT_REDUCTION_MAX:
            return None
        flat = x.reshape(rows, k)
        if op == "sum":
            out = numpy.matmul(flat, numpy.ones(k, dtype=x.dtype))  # host-ok: a NumPy-only path
        else:
            out = getattr(numpy, op)(numpy.ascontiguousarray(flat.T), axis=0)  # host-ok: a NumPy-only path
        return out.reshape(x.shape[: n - r] + ((1,) * r if keepdims else ()))
    if op == "sum" and axes == set(range(-n, -n + r)):  # leading axes
        rows = math.prod(x.shape[:r])
        kept = x.size // rows if rows else 0
        if rows <= SHORT_REDUCTION_MAX or not 0 < kept <= LEADING_SUM_MAX_KEPT:
            return None
        out = numpy.matmul(numpy.ones(rows, dtype=x.dtype), x.reshape(rows, kept))  # host-ok: a NumPy-only path
        return out.reshape(((1,) * r if keepdims else ()) + x.shape[r:])
    return None


# --- Writing into a given buffer (what gpuad.jit's replay uses to reuse dead intermediates) ---

_CLASSIC_UFUNC_NAMES = {
    "asin": "arcsin", "acos": "arccos", "atan": "arctan", "asinh": "arcsinh", "acosh": "arccosh",
    "atanh": "arctanh", "atan2": "arctan2", "pow": "power",
}


def ufunc_with_out(xp: Any, name: str) -> Any | None:
    """The library's elementwise function ``name`` when it accepts ``out=`` (NumPy and CuPy
    ufuncs), else None (the standard has no ``out=``)."""
    name = _CLASSIC_UFUNC_NAMES.get(name, name)
    if array_api_compat.is_numpy_namespace(xp):
        f = getattr(numpy, name, None)
        return f if isinstance(f, numpy.ufunc) else None
    if array_api_compat.is_cupy_namespace(xp):
        import cupy  # host-ok: CuPy's ufuncs, only for CuPy arrays

        f = getattr(cupy, name, None)
        return f if isinstance(f, cupy.ufunc) else None
    return None


# --- Reusing large host buffers (NumPy) ---
# A fresh array of tens of MB costs more in page faults than the arithmetic that fills it. CuPy has a memory
# pool of its own and needs none of this.

_getrefcount = sys.getrefcount


def _references_in_scan(buffers: list[Any]) -> int:
    for buf in buffers:
        return _getrefcount(buf)
    return 0


# What ``getrefcount`` reports inside a ``for buf in buffers`` loop for an array that only the
# list holds (the list, the loop variable, the argument): calibrated, not assumed, so that the test
# stays right whatever the interpreter's own accounting.
_FREE_REFS = _references_in_scan([numpy.empty(0)])  # host-ok: a NumPy-only path

# Only CPython with a GIL gives exact reference counts; elsewhere buffers are never reused.
_CAN_POOL = sys.implementation.name == "cpython" and getattr(sys, "_is_gil_enabled", lambda: True)()


class BufferPool:
    """The large result buffers of one transformed function, reused by its later operations and
    calls instead of fresh allocations.

    A buffer is free exactly when nothing but the pool refers to it: every NumPy view holds a
    reference to the array that owns its memory, so a buffer whose reference count is the pool's
    own is read by nobody and can be overwritten. The pool never holds more bytes (in use plus
    free) than the most its function ever had in use at once, so reuse does not raise the peak
    memory of a call; it only stops the memory from going back to the system between operations
    and calls. Buffers handed out last longer than the pool only as ordinary arrays.

    One pool serves one thread at a time (see :func:`gpuad.tracing.reuses_buffers`).
    """

    # Below this malloc does better: glibc serves such blocks from its heap (its mmap threshold
    # rises to the largest block freed, up to 32 MiB), last freed first, so a fresh temporary
    # usually lands in memory the operation before just left in cache, whereas a pool buffer is
    # whichever free one fits. Measured against the pool at 128 KiB (bench workloads, one core):
    # the MLP at B = 1e3 (256-512 KiB arrays) 10-15% faster in float32; at 4 MiB the MLP at B = 1e4
    # (2.5 MiB arrays) 25% slower. Larger arrays come from mmap'd pages: faulting those in each
    # call is what the pool saves.
    MIN_BYTES = 1 << 20
    MAX_TRACKED = 64  # buffers the pool follows; results a caller keeps stop being followed

    __slots__ = ("buffers", "total", "high_water", "fresh", "reused")

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return (BufferPool, ())  # pickled (a function shipped to Dask's workers): an empty pool

    def __init__(self) -> None:
        self.buffers: list[Any] = []  # flat uint8 arrays, oldest first
        self.total = 0  # bytes of all buffers followed
        self.high_water = 0  # the most bytes in use at once so far
        self.fresh = 0  # allocations made (statistics, for tests and benchmarks)
        self.reused = 0  # allocations saved

    def empty(self, shape: tuple[int, ...], dtype: Any, fortran: bool = False) -> Any:
        """An uninitialised NumPy array of ``shape`` and ``dtype`` (in Fortran order if asked),
        from a free buffer when one fits (at most 25% larger than needed), else newly allocated."""
        nbytes = dtype.itemsize * math.prod(shape)
        buffers = self.buffers
        best, best_n = -1, 0
        # Newest first: the buffer used last is the likeliest to be in cache; an exact fit ends
        # the search. (``buf`` is one reference, as the loop variable of the calibration was.)
        for i in range(len(buffers) - 1, -1, -1):
            buf = buffers[i]
            if _getrefcount(buf) == _FREE_REFS:
                n = buf.nbytes
                if n == nbytes:
                    best = i
                    break
                if nbytes < n <= nbytes + (nbytes >> 2) and (best < 0 or n < best_n):
                    best, best_n = i, n
        buf = None  # a local reference would count as a use of that buffer
        if best >= 0:
            buffers.append(buffers.pop(best))  # the most recently used last
            self.reused += 1
            buf = buffers[-1][:nbytes]
        else:
            self._make_room(nbytes)
            buf = numpy.empty(nbytes, dtype=numpy.uint8)  # host-ok: a NumPy-only path
            self.buffers.append(buf)
            self.total += nbytes
            self.fresh += 1
        if fortran:
            return buf.view(dtype).reshape(shape[::-1]).T
        return buf.view(dtype).reshape(shape)

    def _make_room(self, nbytes: int) -> None:
        """Before allocating ``nbytes``: release free buffers (oldest first) so that the pool stays
        within the high-water mark of bytes in use, and stop following the oldest buffers still in
        use when too many are followed."""
        free_bytes = sum(b.nbytes for b in self.buffers if _getrefcount(b) == _FREE_REFS)
        in_use = self.total - free_bytes + nbytes
        if in_use > self.high_water:
            self.high_water = in_use
        excess = self.total + nbytes - self.high_water
        over = len(self.buffers) + 1 - self.MAX_TRACKED
        if excess <= 0 and over <= 0:
            return
        kept = []
        for buf in self.buffers:
            if excess > 0 and _getrefcount(buf) == _FREE_REFS:
                excess -= buf.nbytes
                self.total -= buf.nbytes
                continue
            kept.append(buf)
        while len(kept) + 1 > self.MAX_TRACKED:
            self.total -= kept.pop(0).nbytes
        self.buffers = kept

    def clear(self) -> None:
        """Forget every buffer (free ones go back to the system)."""
        self.buffers = []
        self.total = 0


def pooled_empty(pool: BufferPool | None, xp: Any, shape: tuple[int, ...], dtype: Any) -> Any | None:
    """An uninitialised array from ``pool`` when there is one, the library is NumPy and the array
    is large enough to come from fresh pages; else None."""
    if pool is None or not array_api_compat.is_numpy_namespace(xp):
        return None
    if numpy.dtype(dtype).itemsize * math.prod(shape) < BufferPool.MIN_BYTES:
        return None
    return pool.empty(tuple(shape), numpy.dtype(dtype))


_UFUNC_OUT_CACHE: dict[tuple[Any, str], Any] = {}


def _broadcast_pair(s: tuple[int, ...], t: tuple[int, ...]) -> tuple[int, ...]:
    """NumPy's broadcast of two shapes (ValueError where they do not broadcast)."""
    if len(s) < len(t):
        s, t = t, s
    out = list(s)
    off = len(s) - len(t)
    for i, d in enumerate(t):
        e = out[off + i]
        if d != e:
            if e == 1:
                out[off + i] = d
            elif d != 1:
                raise ValueError(f"shapes {s} and {t} do not broadcast")
    return tuple(out)


def pooled_call(pool: BufferPool, xp: Any, name: str, args: Any) -> Any:
    """``name(*args)`` with its result written into a pool buffer, or None where that does not apply
    (not NumPy, small, mixed dtypes, a function without ``out=``): the caller then computes it the
    usual way. ``name`` is the table's ``ufunc`` of the primitive."""
    key = (xp, name)
    fn = _UFUNC_OUT_CACHE.get(key, False)
    if fn is False:
        fn = _UFUNC_OUT_CACHE[key] = ufunc_with_out(xp, name) if array_api_compat.is_numpy_namespace(xp) else None
    if fn is None:
        return None
    dtype = getattr(args[0], "dtype", None)
    for a in args:  # NumPy arrays of one dtype only
        if type(a) is not numpy.ndarray or a.dtype != dtype:
            return None
    if dtype.kind != "f":
        return None
    signature = fn.signature
    try:
        if signature is None:  # elementwise: the broadcast shape
            shape = args[0].shape
            for a in args[1:]:
                if a.shape != shape:
                    shape = _broadcast_pair(shape, a.shape)
        elif signature == "(n?,k),(k,m?)->(n?,m?)" and args[0].ndim >= 2 and args[1].ndim >= 2:  # matmul
            a, b = args
            shape = numpy.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (a.shape[-2], b.shape[-1])  # host-ok: a NumPy-only path
        else:
            return None
    except ValueError:  # shapes that do not fit: the usual call raises the library's own error
        return None
    if dtype.itemsize * math.prod(shape) < pool.MIN_BYTES:
        return None
    # The layout NumPy would give the result (order "K"), for the two layouts gpuad makes: an
    # operand of the result's shape in Fortran order (rows laid out outside) asks for Fortran.
    fortran = signature is None and any(
        a.shape == shape and a.flags.f_contiguous and not a.flags.c_contiguous for a in args
    )
    return fn(*args, out=pool.empty(shape, dtype, fortran))
