"""Forward-mode transforms: jvp, linearize, jacfwd (many tangents per pass), jacobian, hessian, hvp.

Vector mode is forward mode under a batch of tangents: the K directions of ``jacfwd`` travel as one
batched tangent (a ``BatchTracer`` with K on its leading axis), so every JVP rule runs once on all K
directions with broadcasting, while the primal is computed once.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, Sequence

from . import backend
from .batching import BatchTrace, BatchTracer, basis_rows
from .forward import JVPTrace, JVPTracer
from .primitives import axis_moved, broadcasted, cast, concat, filled_like, lone_scalar, reshaped, scalar_like
from .reverse import forward_sweep
from .tracing import Tracer, open_trace
from .transforms import (
    _argnums_transform, _as_input_array, _check_callable, _check_holomorphic, _check_like, _common_namespace, _input_labels,
    _jacobian_from_record, _Labels, _output_array, _ReverseResult, _split_aux, _strip, grad, jacrev,
)
from .tree import tree_flatten, tree_flatten_up_to, tree_structure, tree_unflatten

__all__ = ["jvp", "linearize", "jacfwd", "jacobian", "hessian", "hvp"]


def _tangents_for(
    fun: Callable[..., Any], primals: Sequence[Any], tangents: Sequence[Any], transform: str
) -> tuple[list[Any], list[Any], Any, list[str]]:
    """Checked primal leaves and their tangents (None = zero, and the only tangent an integer
    primal may have), the primal tree, and labels for messages."""
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise TypeError(
            f"{transform}: primals and tangents must be tuples (or lists) with one entry per argument of "
            f"fun, got {type(primals).__name__} and {type(tangents).__name__}"
        )
    p_flat, p_tree = tree_flatten(tuple(primals))
    try:
        t_flat = tree_flatten_up_to(p_tree, tuple(tangents))
    except ValueError as exc:
        raise TypeError(
            f"{transform}: primals have structure {p_tree} but tangents have structure "
            f"{tree_structure(tuple(tangents))} ({exc}); give one tangent (or None) per primal"
        ) from None
    labels = _input_labels(fun, primals, range(len(primals)))  # formatted only into an error
    tangent_labels = _Labels(lambda: [f"{transform}: the tangent of {s}" for s in labels.resolved()])
    inputs, tans = [], []
    for i, (p, t) in enumerate(zip(p_flat, t_flat)):
        is_array = isinstance(p, Tracer) or backend.is_array(p)
        if isinstance(p, bool) or isinstance(p, int) or (
            is_array and not backend.is_real_float(p.dtype) and not backend.is_complex_dtype(p.dtype)
        ):
            if t is not None and not backend.is_float0(t):
                raise TypeError(
                    f"{transform}: {labels[i]} has an integer or boolean dtype, so it has no derivative: its "
                    f"tangent must be None (JAX's float0), got {getattr(t, 'dtype', type(t).__name__)}"
                )
            inputs.append(p)
            tans.append(None)
            continue
        if not is_array:
            p = _as_input_array(p, labels[i], transform)
            if type(t) is float or type(t) is complex:  # a Python number primal takes one as tangent, as in JAX
                t = lone_scalar(t) if type(t) is complex else scalar_like(t, p)
        if t is not None:
            _check_like(t, p, tangent_labels[i], "the primal", TypeError)  # JAX: TypeError
        inputs.append(p)
        tans.append(t)
    return inputs, tans, p_tree, labels


def jvp(fun: Callable[..., Any], primals: Sequence[Any], tangents: Sequence[Any], has_aux: bool = False) -> Any:
    """``(fun(*primals), J @ tangents)`` by forward mode, as ``jax.jvp``. A tangent may be None (a
    zero tangent); integer primals take None.

    >>> import numpy as np, gpuad.numpy as gnp
    >>> y, t = jvp(gnp.sin, (np.asarray(0.0),), (np.asarray(2.0),))
    >>> float(y), float(t)
    (0.0, 2.0)
    """
    _check_callable(fun, "jvp")
    inputs, tans, p_tree, labels = _tangents_for(fun, primals, tangents, "jvp")
    picked = [i for i, a in enumerate(inputs) if isinstance(a, Tracer) or backend.is_array(a)]
    with_tangent = [i for i, t in enumerate(tans) if t is not None]
    names = _Labels(lambda: [str(labels[i]) for i in picked] + [f"the tangent of {labels[i]}" for i in with_tangent])
    xp, device = _common_namespace([inputs[i] for i in picked] + [tans[i] for i in with_tangent], names)
    with open_trace(JVPTrace, xp, device=device) as trace:
        # Every array input is traced, integer ones with a None (zero) tangent, so that operators
        # between inputs always dispatch to gpuad whatever library holds them.
        ins = [trace.new_input(p, t) if isinstance(p, Tracer) or backend.is_array(p) else p for p, t in zip(inputs, tans)]
        out, aux = _split_aux(fun(*tree_unflatten(p_tree, ins)), has_aux, "jvp")
    out_flat, out_tree = tree_flatten(out)
    primals_out, tangents_out = [], []
    for o in out_flat:
        if type(o) is JVPTracer and o._trace is trace:
            primals_out.append(o.primal)
            tangents_out.append(filled_like(o.primal, 0) if o.tangent is None else o.tangent)
        else:  # a constant (or a value of an outer transform closed over): a zero tangent
            o = _output_array(o, xp, device, "jvp")
            primals_out.append(o)
            tangents_out.append(filled_like(o, 0))
    result = (tree_unflatten(out_tree, primals_out), tree_unflatten(out_tree, tangents_out))
    return (*result, _strip(trace, aux)) if has_aux else result


def linearize(fun: Callable[..., Any], *primals: Any) -> tuple[Any, Callable[..., Any]]:
    """``(fun(*primals), f_jvp)`` as ``jax.linearize``: ``f_jvp(*tangents)`` applies the Jacobian at
    ``primals`` to new tangents without computing the primal again (it replays the recorded
    program's JVP rules on the values the recording kept). ``f_jvp`` composes with vmap.

    >>> import numpy as np, gpuad.numpy as gnp
    >>> y, f_jvp = linearize(lambda x: gnp.sin(x) * x, np.asarray(1.0))
    >>> round(float(f_jvp(np.asarray(1.0))), 6)
    1.381773
    """
    _check_callable(fun, "linearize")
    labels = _input_labels(fun, primals, range(len(primals)))
    rec = _ReverseResult(fun, primals, False, "linearize", labels)
    tape = rec.tape

    def f_jvp(*tangents: Any) -> Any:
        try:
            t_flat = tree_flatten_up_to(rec.in_tree, tuple(tangents))
        except ValueError as exc:
            raise TypeError(f"linearize's f_jvp: the tangents must have the structure of the primals: {exc}") from None
        seeds = {}
        for i, (node, t, a) in enumerate(zip(rec.in_nodes, t_flat, rec.inputs)):
            if t is not None:
                _check_like(t, a, f"f_jvp: the tangent of {labels[i]}", "the primal", TypeError)
                seeds[node] = t
        outs = forward_sweep(tape, seeds, rec.out_nodes)
        results = []
        for t, o in zip(outs, rec.out_primals):
            if t is None:
                results.append(filled_like(o, 0))
            else:
                results.append(backend.writable(t))
        return tree_unflatten(rec.out_tree, results)

    return tree_unflatten(rec.out_tree, rec.out_primals), f_jvp


# ---------------------------------------------------------------------------------------------
# Jacobians by forward mode
# ---------------------------------------------------------------------------------------------


def _basis_block(inputs: Sequence[Any], sizes: Sequence[int], start: int, stop: int, xp: Any, device: Any) -> list[Any]:
    """Rows start..stop of the identity over all input elements, split per input and shaped
    (rows, *input shape): the tangents of one forward pass, in the inputs' library."""
    total = sum(sizes)
    # Compared positions rather than eye(k=start): Dask's eye with an offset makes a broken graph.
    rows = xp.arange(start, stop, device=device)[:, None] == xp.arange(total, device=device)[None, :]
    blocks = []
    offset = 0
    for a, n in zip(inputs, sizes):
        part = cast(rows[:, offset : offset + n], a.dtype)
        blocks.append(reshaped(part, (stop - start,) + tuple(a.shape)))
        offset += n
    return blocks


def _push_tangents(fun, in_tree, inputs, blocks, k, xp, device, has_aux):
    """One forward pass carrying ``k`` tangent directions at once. Returns the primal outputs, each
    output's tangents as an array (k, *output shape), the output tree and aux."""
    with open_trace(BatchTrace, xp, device=device, size=k) as batch:
        with open_trace(JVPTrace, xp, device=device) as trace:
            ins = [trace.new_input(p, BatchTracer(batch, b)) for p, b in zip(inputs, blocks)]
            out, aux = _split_aux(fun(*tree_unflatten(in_tree, ins)), has_aux, "jacfwd")
    out_flat, out_tree = tree_flatten(out)
    primals, tangents = [], []
    for o in out_flat:
        if type(o) is JVPTracer and o._trace is trace:
            p, t = o.primal, o.tangent
        else:
            p, t = _output_array(o, xp, device, "jacfwd"), None
        shape = (k,) + tuple(p.shape)
        if type(t) is BatchTracer and t._trace is batch:
            t = t.val
        elif t is None:
            t = xp.zeros(shape, dtype=p.dtype, device=device)
        else:
            t = broadcasted(t, shape)
        primals.append(p)
        tangents.append(t)
    return primals, tangents, out_tree, (_strip(trace, aux) if has_aux else None)


def jacfwd(
    fun: Callable[..., Any],
    argnums: int | Sequence[int] = 0,
    has_aux: bool = False,
    holomorphic: bool = False,
    *,
    chunk_size: int | None = None,
) -> Callable[..., Any]:
    """The Jacobian by forward mode, as ``jax.jacfwd``: all n basis tangents in one pass (vector
    mode), or in passes of ``chunk_size`` tangents to bound memory. Output shape: output shape +
    input shape.

    >>> import numpy as np, gpuad.numpy as gnp
    >>> jacfwd(lambda x: x * x)(np.asarray([1.0, 2.0])).tolist()
    [[2.0, 0.0], [0.0, 4.0]]
    """
    transform = _argnums_transform(fun, argnums, "jacfwd")  # fun and argnums are checked first
    if chunk_size is not None and (not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size <= 0):
        raise ValueError(f"jacfwd: chunk_size must be a positive int or None, got {chunk_size!r}")
    return transform(functools.partial(_jacfwd, argnums=argnums, has_aux=has_aux, chunk_size=chunk_size, holomorphic=holomorphic))


def _jacfwd(
    diff: list[Any], labels: Any, partial_fun: Callable[..., Any], *, argnums: Any, has_aux: bool, chunk_size: int | None,
    holomorphic: bool = False,
) -> Any:
    """jacfwd's Jacobian of ``partial_fun`` at ``diff`` (the differentiated arguments, see
    _argnums_transform), the basis tangents pushed ``chunk_size`` at a time."""
    flat, in_tree = tree_flatten(tuple(diff))
    inputs = [_as_input_array(v, labels[i], "jacfwd", complex_ok=holomorphic) for i, v in enumerate(flat)]
    if holomorphic:
        _check_holomorphic(inputs, labels, "jacfwd", "inputs")
    xp, device = _common_namespace(inputs, labels)
    sizes = [math.prod(a.shape) for a in inputs]
    total = sum(sizes)
    step = chunk_size or max(total, 1)
    parts: list[list[Any]] = []
    for start in range(0, max(total, 1), step):
        stop = min(start + step, total)
        blocks = [basis_rows(b, a, xp) for b, a in zip(_basis_block(inputs, sizes, start, stop, xp, device), inputs)]
        primals, tangents, out_tree, aux = _push_tangents(
            partial_fun, in_tree, inputs, blocks, stop - start, xp, device, has_aux
        )
        parts.append(tangents)
        if holomorphic:
            _check_holomorphic(primals, labels, "jacfwd", "outputs")
    columns = [parts[0][i] if len(parts) == 1 else concat(*[p[i] for p in parts], axis=-parts[0][i].ndim) for i in range(len(primals))]
    per_output = []
    for p, cols in zip(primals, columns):
        leaves = []
        offset = 0
        for a, n in zip(inputs, sizes):
            block = cols[offset : offset + n, ...]
            block = axis_moved(block, 0, -1) if block.ndim > 1 else block
            leaves.append(reshaped(block, tuple(p.shape) + tuple(a.shape)))
            offset += n
        per_arg = tree_unflatten(in_tree, leaves)
        per_output.append(per_arg[0] if isinstance(argnums, int) else tuple(per_arg))
    jac = tree_unflatten(out_tree, per_output)
    return (jac, aux) if has_aux else jac


def jacobian(
    fun: Callable[..., Any], argnums: int | Sequence[int] = 0, has_aux: bool = False, *, mode: str = "auto"
) -> Callable[..., Any]:
    """The Jacobian, by forward mode when the inputs have fewer elements than the outputs and by
    reverse mode otherwise (the seed notes' rule: a pass of forward mode gives a column, one of
    reverse mode a row). ``mode="fwd"`` or ``"rev"`` forces one.

    >>> import numpy as np, gpuad.numpy as gnp
    >>> jacobian(lambda x: gnp.stack([x, 2 * x, 3 * x]))(np.asarray(1.0)).tolist()
    [1.0, 2.0, 3.0]
    """
    if mode not in ("auto", "fwd", "rev"):
        raise ValueError(f"jacobian: mode must be 'auto', 'fwd' or 'rev', got {mode!r}")
    _check_callable(fun, "jacobian")
    if mode == "fwd":
        return jacfwd(fun, argnums, has_aux)
    if mode == "rev":
        return jacrev(fun, argnums, has_aux)

    @_argnums_transform(fun, argnums, "jacobian")
    def jacobian_fun(diff: list[Any], labels: Any, partial_fun: Callable[..., Any]) -> Any:
        # Record once: reverse mode can use the recording; forward mode needs only the sizes.
        rec = _ReverseResult(partial_fun, diff, has_aux, "jacobian", labels)
        n_in = sum(math.prod(a.shape) for a in rec.inputs)
        n_out = sum(math.prod(o.shape) for o in rec.out_primals)
        if n_in < n_out:
            return _jacfwd(diff, labels, partial_fun, argnums=argnums, has_aux=has_aux, chunk_size=None)
        return _jacobian_from_record(rec, argnums, has_aux)

    return jacobian_fun


def hessian(fun: Callable[..., Any], argnums: int | Sequence[int] = 0, has_aux: bool = False, holomorphic: bool = False) -> Callable[..., Any]:
    """Second derivatives, forward over reverse (``jacfwd(jacrev(fun))``), as ``jax.hessian``: for an
    output of shape S and an input of shape T, an array of shape S + T + T.

    >>> import numpy as np, gpuad.numpy as gnp
    >>> hessian(lambda x: x[0] ** 2 * x[1])(np.asarray([1.0, 3.0])).tolist()
    [[6.0, 2.0], [2.0, 0.0]]
    """
    _check_callable(fun, "hessian")
    return jacfwd(jacrev(fun, argnums, has_aux, holomorphic), argnums, has_aux, holomorphic)


def hvp(fun: Callable[..., Any], primals: Sequence[Any], tangents: Sequence[Any]) -> Any:
    """The Hessian of a scalar function applied to ``tangents`` (forward over reverse), without
    forming the Hessian. With several arguments, the tangent of every argument counts and the
    result has one entry per argument.

    >>> import numpy as np, gpuad.numpy as gnp
    >>> hvp(lambda x: gnp.sum(x ** 3), (np.asarray([1.0, 2.0]),), (np.asarray([1.0, 0.0]),)).tolist()
    [6.0, 0.0]
    """
    _check_callable(fun, "hvp")
    if not isinstance(primals, (tuple, list)) or not primals:
        raise TypeError(f"hvp: primals must be a non-empty tuple with one entry per argument, got {primals!r:.60}")
    argnums = 0 if len(primals) == 1 else tuple(range(len(primals)))
    return jvp(grad(fun, argnums=argnums), tuple(primals), tuple(tangents))[1]
