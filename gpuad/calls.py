"""``jit`` everywhere a user puts it: a jitted function called under ``grad``, ``vmap``, ``jvp``
(``grad(jit(f))``, an inner solver jitted inside an outer gradient).

Called on plain arrays, ``jit(f)`` runs f's compiled recording (gpuad/jit.py). Called on the values
of enclosing transforms, f is recorded once per signature into a body like a loop's (gpuad/lax.py)
and called as one operation: each transform works on that recording (forward mode, batching,
reverse mode: the same rules as a loop of one step), so f's Python runs once per signature rather
than once per call, and the transformed recordings are kept with it for the next call. Inside
another recording (a jit, a loop body) f is simply traced into it.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from typing import Any, Callable, Sequence

from . import backend
from .dask_batches import is_dask_array
from .jit import CACHE_SIZE, StagedTracer, StagingTrace, _signature_of, _static_key
from .jit import jit as _compiled_jit
from .lax import _as_operand, _record, _representative, _ScanCall
from .primitives import reshaped
from .tracing import Tracer, call_higher_order, innermost_trace
from .tree import tree_flatten, tree_unflatten

__all__ = ["jit"]


def jit(fun: Callable[..., Any], static_argnums: int | Sequence[int] = ()) -> Callable[..., Any]:
    compiled = _compiled_jit(fun, static_argnums)  # checks fun and static_argnums
    statics = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)
    recordings: OrderedDict[Any, tuple[Any, Any]] = OrderedDict()

    @functools.wraps(fun)
    def jitted(*args: Any, **kwargs: Any) -> Any:
        inner = innermost_trace()
        over_chunks = getattr(fun, "_gpuad_over_chunks", None)
        if inner is None and over_chunks is not None and any(is_dask_array(leaf) for leaf in tree_flatten((args, kwargs))[0]):
            return over_chunks(args, kwargs, jit=True)  # jit(vmap(f)) on a Dask batch: compiled per chunk
        if inner is None:  # no transform active: the compiled recording
            return compiled(*args, **kwargs)
        leaves = tree_flatten((args, kwargs))[0]
        if isinstance(inner, StagingTrace) or any(type(leaf) is StagedTracer for leaf in leaves):
            return fun(*args, **kwargs)  # inside another recording (a jit, a loop body): part of it
        # Under grad, vmap, jvp... (with traced arguments, or plain ones while f may close over
        # a traced value): f's recording, called as one operation.
        return _call(fun, args, kwargs, statics, recordings)

    for name in ("cache_size", "reports", "release_buffers", "buffer_stats"):
        if hasattr(compiled, name):
            setattr(jitted, name, getattr(compiled, name))
    jitted.__doc__ = fun.__doc__
    return jitted


jit.__doc__ = _compiled_jit.__doc__


def _call(fun: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], statics: tuple[int, ...], recordings: OrderedDict) -> Any:
    static_pos = {s % len(args) for s in statics if -len(args) <= s < len(args)}
    dynamic = [a for i, a in enumerate(args) if i not in static_pos]
    leaves, treedef = tree_flatten((dynamic, kwargs))
    # Arrays, traced values and Python floats are the call's operands; ints, bools and other
    # hashable leaves are static, as in jit's own signature.
    is_operand = [isinstance(leaf, Tracer) or backend.is_array(leaf) or type(leaf) is float for leaf in leaves]
    operands = [_as_operand(leaf, f"jit: argument leaf {i}") for i, (leaf, op) in enumerate(zip(leaves, is_operand)) if op]
    key = (
        treedef,
        tuple(("operand", tuple(x.shape), backend.dtype_name(x.dtype)) for x in operands),
        tuple(_signature_of(leaf) for leaf, op in zip(leaves, is_operand) if not op),
        tuple((i, type(args[i]), _static_key(args[i])) for i in sorted(static_pos)),
    )
    entry = recordings.get(key)
    if entry is None:
        out_trees: list[Any] = []

        def body(ins: list[Any]) -> list[Any]:
            it = iter(ins)
            full = [next(it) if op else leaf for leaf, op in zip(leaves, is_operand)]
            dyn, kw = tree_unflatten(treedef, full)
            it_dyn = iter(dyn)
            out = fun(*[args[i] if i in static_pos else next(it_dyn) for i in range(len(args))], **kw)
            out_flat, out_tree = tree_flatten(out)
            out_trees.append(out_tree)
            return [_as_operand(o, "jit: a leaf of the result") for o in out_flat]

        recorded, captured = _record(body, [_representative(x) for x in operands], "jit: f")
        entry = (recorded, out_trees[0])
        if not captured:  # a recording that closes over a traced value holds it: not reusable
            recordings[key] = entry
            if len(recordings) > CACHE_SIZE:
                recordings.popitem(last=False)
    else:
        recordings.move_to_end(key)
        captured = []
    recorded, out_tree = entry
    # One call = a loop of one step over the operands (each given a leading axis of 1).
    stacked = [reshaped(x, (1, *x.shape)) for x in operands]
    call_leaves = [*stacked, *captured]
    outs = call_higher_order(_ScanCall(recorded, 0, len(stacked), 1, False, False, call_leaves), call_leaves)
    return tree_unflatten(out_tree, [reshaped(o, tuple(o.shape[1:])) for o in outs])
