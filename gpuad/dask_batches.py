"""``vmap`` over a Dask array's batch axis: one task per chunk (issue 24).

A Dask array mapped by ``vmap`` is not traced operation by operation: each chunk of its batch axis
becomes one task that runs the vmapped function on the chunk in the chunk's own library (NumPy on
CPU workers, CuPy on GPU workers), and each output is a lazy Dask array assembled from the tasks'
results. gpuad computes nothing here: the graph runs when the user computes it, on whatever
scheduler Dask is given (threads, processes, a ``dask.distributed`` cluster).

Under ``grad``/``vjp`` or ``jvp`` with respect to in-memory values the vmapped function closes over
(a model's parameters), the mapping is one line of the tape (or one forward-mode step): the
backward sweep builds one task per chunk that recomputes the chunk's values and pulls its
cotangent chunk back (as ``checkpoint`` does), and the parameters' gradients are summed over the
chunks by a tree reduction. No chunk of the batch is gathered in one place.

Dask is imported only here, only when a Dask array has been met (it is an optional extra).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

from . import backend
from .forward import JVPTrace, JVPTracer
from .primitives import Primitive
from .reverse import Record, ReverseTrace, ReverseTracer, _checkpoint_vjp
from .tracing import HigherOrderCall, PrimalTracer, Tracer, call_higher_order, open_trace
from .tree import tree_flatten, tree_unflatten
from .uniform import Uniform

__all__ = ["is_dask_array", "wants_chunks", "map_chunks"]

# How many partial gradients one task of the tree reduction adds up.
SPLIT_EVERY = 8


def is_dask_array(x: Any) -> bool:
    return type(x).__module__.startswith("dask.array") and hasattr(x, "chunks") and hasattr(x, "_meta")


def _innermost(x: Any) -> Any:
    while isinstance(x, PrimalTracer):
        x = x.primal
    return x


def wants_chunks(leaves: Sequence[Any], axes: Sequence[Any]) -> bool:
    """Whether a vmap call takes the per-chunk path: a mapped argument is a Dask array, and no
    argument is a Dask array behind a traced value or unmapped (those are traced operation by
    operation on the Dask arrays, as any other library's)."""
    mapped_dask = False
    for leaf, ax in zip(leaves, axes):
        if isinstance(leaf, Tracer):
            if is_dask_array(_innermost(leaf)):
                return False
        elif is_dask_array(leaf):
            if ax is None:
                return False
            mapped_dask = True
    return mapped_dask


# ---------------------------------------------------------------------------------------------
# Checks and layout
# ---------------------------------------------------------------------------------------------


def _library(x: Any) -> str:
    return type(x).__module__.split(".")[0]


def _check(leaves: Sequence[Any], axes: Sequence[Any], labels: Any) -> tuple[int, tuple[int, ...], Any]:
    """The batch size, the batch axis's chunks (those of the first mapped Dask array) and the
    chunks' meta array; clear errors for what cannot be split into per-chunk tasks."""
    first = size = chunks = meta = None
    for i, (leaf, ax) in enumerate(zip(leaves, axes)):
        if ax is None or not is_dask_array(leaf):
            continue
        ndim = leaf.ndim
        if not -ndim <= ax < ndim:
            raise ValueError(
                f"vmap: {labels[i]} is mapped along axis {ax}, but it has only {ndim} dimension(s) "
                f"(shape {tuple(leaf.shape)}); use an axis in [{-ndim}, {ndim})"
            )
        ax %= ndim
        if any(math.isnan(c) for c in leaf.chunks[ax]) or math.isnan(leaf.shape[ax]):
            raise ValueError(
                f"vmap: {labels[i]} is a Dask array whose chunk sizes along its batch axis {ax} are unknown "
                "(NaN, e.g. after boolean indexing); call .compute_chunk_sizes() on it (or rechunk to known "
                "sizes) before mapping over it"
            )
        if first is None:
            first, size, chunks, meta = i, leaf.shape[ax], tuple(leaf.chunks[ax]), leaf._meta
            continue
        if leaf.shape[ax] != size:
            raise ValueError(
                f"vmap got inconsistent sizes for the mapped axes: {labels[first]} has size {size} along its "
                f"batch axis, but {labels[i]} has size {leaf.shape[ax]}"
            )
        if _library(leaf._meta) != _library(meta):
            raise TypeError(
                f"vmap: the chunks of {labels[first]} are {_library(meta)} arrays but those of {labels[i]} are "
                f"{_library(leaf._meta)} arrays; give every mapped Dask array chunks of one library "
                "(x.map_blocks(cupy.asarray) moves NumPy chunks to the GPU)"
            )
    for i, (leaf, ax) in enumerate(zip(leaves, axes)):
        value = _innermost(leaf)
        if ax is not None and not is_dask_array(value):
            raise TypeError(
                f"vmap: {labels[first]} is a Dask array mapped along its batch axis, but {labels[i]} is an "
                f"in-memory {_library(value)} array mapped along it too; make it a Dask array with the same "
                f"chunks (dask.array.from_array(x, chunks=...)) or pass it unmapped (in_axes None)"
            )
        if ax is None and not isinstance(value, Tracer) and backend.is_array(value) and _library(value) != _library(meta):
            raise TypeError(
                f"vmap: {labels[i]} is a {_library(value)} array, but the chunks of the Dask batch "
                f"{labels[first]} are {_library(meta)} arrays; each chunk's task computes in the chunks' "
                f"library, so pass {labels[i]} as a {_library(meta)} array"
            )
    return size, chunks, meta


def _blocks(leaf: Any, ax: int, chunks: tuple[int, ...]) -> list[Any]:
    """The chunks of ``leaf`` along its batch axis ``ax`` (rechunked to ``chunks`` and whole along
    every other axis: a point's values must be in one task), as Dask delayed values."""
    ax %= leaf.ndim
    want = tuple(chunks if a == ax else (leaf.shape[a],) for a in range(leaf.ndim))
    if tuple(leaf.chunks) != want:
        leaf = leaf.rechunk(want)
    parts = leaf.to_delayed(optimize_graph=False)
    return [parts[(0,) * ax + (i,) + (0,) * (leaf.ndim - ax - 1)] for i in range(len(chunks))]


class _Layout:
    """How a vmap call's flat arguments split into per-chunk tasks: the mapped Dask arrays' blocks,
    the unmapped values (one graph key each, shared by every task)."""

    def __init__(self, leaves: Sequence[Any], axes: Sequence[Any], chunks: tuple[int, ...], meta: Any):
        import dask

        self.dask = dask
        self.axes = list(axes)
        self.chunks, self.meta = chunks, meta
        self.xp = backend.namespace_of(meta)
        self.mapped = [ax is not None for ax in axes]
        self.blocks = [_blocks(v, ax, chunks) if m else None for v, ax, m in zip(leaves, axes, self.mapped)]
        # Unmapped arrays enter the graph once (not hashed: a parameter array may be big).
        self.shared = [None if m else (dask.delayed(v, pure=False) if backend.is_array(v) else v) for v, m in zip(leaves, self.mapped)]

    def shared_function(self, chunk_fn: Callable[..., Any]) -> Any:
        """The per-chunk function as one value of the graph that every task reads: a worker
        process gets it once, so what it makes on first use (a jit's recording and compiled
        kernels) serves all the chunks it computes; shipped inside each task it would be unpickled
        anew per task and a jit would record every chunk again."""
        return self.dask.delayed(chunk_fn, pure=False)

    def task_args(self, i: int) -> list[Any]:
        return [b[i] if m else s for b, s, m in zip(self.blocks, self.shared, self.mapped)]

    def probe_args(self, leaves: Sequence[Any]) -> list[Any]:
        """The arguments of a batch of no points: what tells the outputs' per-point shapes and dtypes
        without computing anything."""
        out = []
        for v, ax in zip(leaves, self.axes):
            if ax is None:
                out.append(v)
                continue
            shape = list(v.shape)
            shape[ax % v.ndim] = 0
            out.append(self.xp.zeros(tuple(shape), dtype=v.dtype))
        return out

    def assemble(self, parts: list[Any], k: int, per_point: tuple[int, ...], dtype: Any, ax: int) -> Any:
        """Output ``k`` of every task (``parts``: delayed tuples), as one Dask array with the batch
        along ``ax``."""
        import dask.array as da

        ndim = len(per_point) + 1
        ax %= ndim
        meta = self.xp.zeros((0,) * ndim, dtype=dtype)
        pieces = []
        for part, n in zip(parts, self.chunks):
            shape = per_point[:ax] + (n,) + per_point[ax:]
            pieces.append(da.from_delayed(part[k], shape=shape, dtype=dtype, meta=meta))
        return pieces[0] if len(pieces) == 1 else da.concatenate(pieces, axis=ax)

    def tree_sum(self, parts: list[Any], k: int, like: Any) -> Any:
        """The sum over the tasks of their output ``k`` (shaped as ``like``), by a tree reduction."""
        import dask.array as da

        meta = self.xp.zeros((0,) * len(like.shape), dtype=like.dtype)
        pieces = [da.from_delayed(p[k], shape=tuple(like.shape), dtype=like.dtype, meta=meta) for p in parts]
        return da.stack(pieces).sum(axis=0, split_every=SPLIT_EVERY, dtype=like.dtype)


# ---------------------------------------------------------------------------------------------
# The tasks (they run where Dask runs them: plain chunks in, plain chunks out)
# ---------------------------------------------------------------------------------------------


# Per-chunk functions a distributed worker keeps for later computes (its recordings and kernels).
WORKER_KEEPS = 16


def _kept(chunk_fn: Any) -> Any:
    """On a ``dask.distributed`` worker, the copy of ``chunk_fn`` this worker already holds (made
    by an earlier task or compute of the same vmap), so that a jit records and compiles once per
    worker rather than once per compute. Kept by the worker object, the most recent few."""
    token = getattr(chunk_fn, "token", None)
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return chunk_fn  # a local scheduler: the graph holds the one object itself
    if token is None:
        return chunk_fn
    kept = worker.__dict__.setdefault("_gpuad_chunk_functions", {})
    if token not in kept:
        kept[token] = chunk_fn
        while len(kept) > WORKER_KEEPS:
            kept.pop(next(iter(kept)))
    return kept[token]


def _run_chunk(chunk_fn: Callable[..., Any], *args: Any) -> tuple[Any, ...]:
    return tuple(_kept(chunk_fn)(list(args), True)[0])


def _vjp_chunk(chunk_fn: Callable[..., Any], active: tuple[bool, ...], n_out: int, *args: Any) -> tuple[Any, ...]:
    """The chunk's cotangents for its active arguments: its values recomputed, then swept back."""
    chunk_fn = _kept(chunk_fn)
    cts, ins = list(args[:n_out]), list(args[n_out:])
    xp = backend.namespace_of(*[a for a in ins if backend.is_array(a)])
    _, in_tree = tree_flatten(tuple(ins))
    grads = _checkpoint_vjp(cts, None, *ins, fun=lambda *ls: tuple(chunk_fn(list(ls), False)[0]), in_tree=in_tree, active=active, xp=xp, device=None)
    return tuple(g for g, a in zip(grads, active) if a)


def _jvp_chunk(chunk_fn: Callable[..., Any], active: tuple[bool, ...], n_in: int, *args: Any) -> tuple[Any, ...]:
    """The chunk's outputs and their tangents (zeros where none arrives), one forward pass."""
    chunk_fn = _kept(chunk_fn)
    ins, tangents = list(args[:n_in]), iter(args[n_in:])
    xp = backend.namespace_of(*[a for a in ins if backend.is_array(a)])
    with open_trace(JVPTrace, xp, device=None) as trace:
        traced = [JVPTracer(trace, v, next(tangents)) if a else v for v, a in zip(ins, active)]
        outs = chunk_fn(traced, False)[0]
    values, tans = [], []
    for o in outs:
        mine = type(o) is JVPTracer and o._trace is trace
        v = o.primal if mine else o
        values.append(v)
        t = o.tangent if mine else None
        tans.append(xp.zeros_like(v) if t is None else t)
    return (*values, *tans)


# ---------------------------------------------------------------------------------------------
# The mapping, plain and under the transforms
# ---------------------------------------------------------------------------------------------


def _outputs_of(chunk_fn: Callable[..., Any], layout: _Layout, leaves: Sequence[Any]) -> tuple[Any, list[tuple[tuple[int, ...], Any, int]]]:
    """The output tree, and each output leaf's per-point shape, dtype and batch axis, from a
    batch of no points."""
    outs, out_tree, out_axes = chunk_fn(layout.probe_args(leaves), False)
    specs = []
    for i, (o, ax) in enumerate(zip(outs, out_axes)):
        if ax is None:
            raise ValueError(
                f"vmap over a Dask batch: out_axes is None for output leaf {i}; every output of a per-chunk "
                "task has the batch axis (give it an int out_axes)"
            )
        ax %= len(o.shape)
        specs.append((tuple(o.shape[:ax]) + tuple(o.shape[ax + 1 :]), o.dtype, ax))
    return out_tree, specs


def _map(chunk_fn: Callable[..., Any], leaves: Sequence[Any], layout: _Layout) -> tuple[list[Any], Any]:
    out_tree, specs = _outputs_of(chunk_fn, layout, leaves)
    delayed = layout.dask.delayed
    fn = layout.shared_function(chunk_fn)
    parts = [delayed(_run_chunk, pure=True)(fn, *layout.task_args(i)) for i in range(len(layout.chunks))]
    return [layout.assemble(parts, k, pp, dt, ax) for k, (pp, dt, ax) in enumerate(specs)], out_tree


def _dask_map_vjp(gs: Sequence[Any], ans: Any, *args: Any, chunk_fn: Any, axes: Any, active: Any, chunks: Any, meta: Any, specs: Any) -> tuple[Any, ...]:
    import dask.array as da

    if any(isinstance(g, Tracer) for g in gs):
        raise NotImplementedError(
            "vmap over a Dask batch: its cotangents are being traced (jacrev, hessian, or a vjp under "
            "another transform); take gradients of scalar losses over a Dask batch with grad/vjp only"
        )
    layout = _Layout(args, axes, chunks, meta)
    ct_blocks = []
    for g, (pp, dt, ax) in zip(gs, specs):
        shapes = [pp[:ax] + (n,) + pp[ax:] for n in chunks]
        if g is None:  # no cotangent reached this output
            ct_blocks.append([None] * len(chunks))
        elif type(g) is Uniform:  # a constant (the cotangent of a sum or mean): made in each task
            ct_blocks.append([Uniform(g.value, s, g.dtype, layout.xp, None) for s in shapes])
        else:
            if not is_dask_array(g):
                g = da.from_array(g, chunks=tuple(chunks if a == ax else (s,) for a, s in enumerate(g.shape)), asarray=False)
            ct_blocks.append(_blocks(g, ax, chunks))
    delayed = layout.dask.delayed
    fn = layout.shared_function(chunk_fn)
    parts = [
        delayed(_vjp_chunk, pure=True)(fn, active, len(gs), *[b[i] for b in ct_blocks], *layout.task_args(i))
        for i in range(len(chunks))
    ]
    # Only unmapped values are differentiated here (a traced Dask batch is traced op by op).
    grads, k = [], 0
    for v, a in zip(args, active):
        grads.append(layout.tree_sum(parts, k, v) if a else None)
        k += a
    return tuple(grads)


def _dask_map_impl(xp: Any, *args: Any, **params: Any) -> Any:
    raise NotImplementedError("a vmap over a Dask batch is not replayed: it builds its tasks when called")


# A higher-order record of the tape, as checkpoint's: it lives here, not in the primitive table.
DASK_MAP = Primitive("dask_map", _dask_map_impl, vjp=_dask_map_vjp, residuals=("args",))


class _DaskMapCall(HigherOrderCall):
    """A vmap over a Dask batch that reads values being differentiated (a model's parameters): one
    tape line under reverse mode, one forward pass per chunk under forward mode."""

    name = "vmap over a Dask batch"

    def __init__(self, chunk_fn: Callable[..., Any], leaves: list[Any], axes: list[Any], chunks: tuple[int, ...], meta: Any):
        self.chunk_fn, self.leaves, self.axes, self.chunks, self.meta = chunk_fn, leaves, axes, chunks, meta

    def _plain(self, trace: Any) -> tuple[list[Any], list[Any]]:
        """This trace's values one level down, and which of them it differentiates."""
        values, mine = [], []
        for v in self.leaves:
            own = isinstance(v, PrimalTracer) and v._trace is trace
            values.append(v.primal if own else v)
            mine.append(own)
        if any(isinstance(v, Tracer) for v in values):
            self.run()
        return values, mine

    def run(self) -> Any:
        # Reached with traced values that no grad/vjp/jvp took: a jit recording, an outer vmap.
        raise NotImplementedError(
            "vmap over a Dask batch under nested transforms (a grad of a grad, a vmap or a jit around "
            "the grad) is not supported: differentiate once, with grad/vjp or jvp, around the vmap"
        )

    def batch(self, trace: Any) -> Any:
        return self.run()

    def reverse(self, trace: ReverseTrace) -> Any:
        values, mine = self._plain(trace)
        layout = _Layout(values, self.axes, self.chunks, self.meta)
        outs, out_tree = _map(self.chunk_fn, values, layout)
        active = tuple(m and self.leaves[i].node is not None for i, m in enumerate(mine))
        if not any(active):
            return tree_unflatten(out_tree, [ReverseTracer(trace, o, None) for o in outs])
        _, specs = _outputs_of(self.chunk_fn, layout, values)
        in_nodes = [v.node if a else None for v, a in zip(self.leaves, active)]
        in_avals = [(tuple(v.shape), v.dtype) if a else None for v, a in zip(values, active)]
        nodes = tuple(trace.new_node() for _ in outs)
        params = {"chunk_fn": self.chunk_fn, "axes": self.axes, "active": active, "chunks": self.chunks, "meta": self.meta, "specs": specs}
        trace._append(Record(DASK_MAP, in_nodes, nodes, values, None, params, in_avals), values, list(outs))
        return tree_unflatten(out_tree, [ReverseTracer(trace, o, n) for o, n in zip(outs, nodes)])

    def jvp(self, trace: JVPTrace) -> Any:
        values, mine = self._plain(trace)
        active = tuple(m and self.leaves[i].tangent is not None for i, m in enumerate(mine))
        layout = _Layout(values, self.axes, self.chunks, self.meta)
        out_tree, specs = _outputs_of(self.chunk_fn, layout, values)
        if not any(active):
            outs, _ = _map(self.chunk_fn, values, layout)
            return tree_unflatten(out_tree, [JVPTracer(trace, o, None) for o in outs])
        # Only unmapped values carry tangents here (a traced Dask batch is traced op by op); each
        # enters the graph once.
        tangents = []
        for v, a in zip(self.leaves, active):
            if a:
                t = v.tangent
                tangents.append(layout.dask.delayed(t, pure=False) if backend.is_array(t) else t)
        delayed = layout.dask.delayed
        fn = layout.shared_function(self.chunk_fn)
        parts = [
            delayed(_jvp_chunk, pure=True)(fn, active, len(values), *layout.task_args(i), *tangents)
            for i in range(len(self.chunks))
        ]
        n_out = len(specs)
        primals = [layout.assemble(parts, k, pp, dt, ax) for k, (pp, dt, ax) in enumerate(specs)]
        tangents = [layout.assemble(parts, n_out + k, pp, dt, ax) for k, (pp, dt, ax) in enumerate(specs)]
        return tree_unflatten(out_tree, [JVPTracer(trace, p, t) for p, t in zip(primals, tangents)])


def map_chunks(chunk_fn: Callable[..., Any], leaves: list[Any], axes: list[Any], labels: Any) -> Any:
    """``vmap`` of a function over Dask arrays' batch axis, one task per chunk. ``chunk_fn(leaves,
    jit)`` runs the vmapped function on one chunk's flat arguments and returns ``(output leaves,
    output tree, output axes)``; ``leaves``/``axes`` are the call's flat arguments and their batch
    axes (None: unmapped)."""
    _, chunks, meta = _check(leaves, axes, labels)
    if any(isinstance(v, Tracer) for v in leaves):
        return call_higher_order(_DaskMapCall(chunk_fn, list(leaves), list(axes), chunks, meta), [v for v in leaves if isinstance(v, Tracer)])
    outs, out_tree = _map(chunk_fn, leaves, _Layout(leaves, axes, chunks, meta))
    return tree_unflatten(out_tree, outs)
