"""The user-facing transforms, with JAX's signatures and semantics, built from the traces."""

from __future__ import annotations

import functools
import math
import inspect
import types
import uuid
from typing import Any, Callable, Sequence

from . import backend, dask_batches
from .batching import BatchTrace, BatchTracer, basis_rows
from .forward import JVPTracer
from .jit import jit as compiled_jit
from .reverse import ReverseTrace, ReverseTracer, backward
from .tracing import HigherOrderCall, Tracer, call_higher_order, open_trace, reuses_buffers
from .primitives import axis_moved, broadcasted, cast, concat, filled_like, lone_scalar, reshaped
from .tree import tree_flatten, tree_unflatten
from .uniform import Uniform

__all__ = ["grad", "value_and_grad", "vjp", "jacrev", "vmap", "checkpoint"]


# ---------------------------------------------------------------------------------------------
# Checking what the user passed
# ---------------------------------------------------------------------------------------------


def _check_callable(fun: Any, transform: str) -> None:
    if not callable(fun):
        raise TypeError(f"{transform}: expected a function to transform, got {type(fun).__name__} ({fun!r})")


def _normalize_argnums(argnums: Any, transform: str) -> tuple[int, ...]:
    items = (argnums,) if isinstance(argnums, int) else argnums
    if not isinstance(items, (tuple, list)) or not items:
        raise TypeError(f"{transform}: argnums must be an int or a non-empty tuple of ints, got {argnums!r}")
    for a in items:
        if not isinstance(a, int) or isinstance(a, bool):
            raise TypeError(f"{transform}: argnums must be an int or a tuple of ints, got {argnums!r}")
    if len(set(items)) != len(items):
        raise ValueError(f"{transform}: argnums {argnums!r} repeats an argument")
    return tuple(items)


def _resolve_argnums(argnums: tuple[int, ...], nargs: int, transform: str, given: Any) -> tuple[int, ...]:
    for a in argnums:
        if not -nargs <= a < nargs:
            raise TypeError(
                f"{transform}: differentiating with respect to argnums={given!r} requires at least "
                f"{(a if a >= 0 else -a - 1) + 1} positional arguments, but the function was called with {nargs}"
            )
    return tuple(a % nargs for a in argnums)


def _positional_names(fun: Callable[..., Any]) -> list[str] | None:
    """The names of ``fun``'s positional parameters. Plain functions (also behind functools.wraps)
    are read off their code object: inspect.signature costs more than a small gradient."""
    f = fun
    while getattr(f, "__wrapped__", None) is not None and not hasattr(f, "__signature__"):
        f = f.__wrapped__
    code = getattr(f, "__code__", None)
    if isinstance(f, types.FunctionType) and code is not None and not hasattr(f, "__signature__"):
        return list(code.co_varnames[: code.co_argcount])
    try:
        return [
            p.name
            for p in inspect.signature(fun).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        return None


def _param_name(fun: Callable[..., Any], pos: int) -> str:
    """The name of ``fun``'s positional parameter ``pos``: ``args2`` for the third of ``*args``,
    ``arg{pos}`` where the signature cannot be read."""
    params = _positional_names(fun)
    if params is not None and pos < len(params):
        return params[pos]
    try:
        var = [p.name for p in inspect.signature(fun).parameters.values() if p.kind == p.VAR_POSITIONAL]
    except (TypeError, ValueError):
        var = []
    return f"{var[0]}{pos - len(params or ())}" if var else f"arg{pos}"


def _arg_label(fun: Callable[..., Any], i: int) -> str:
    """'argument 0 (x)' using the function's own parameter names where they can be read."""
    params = _positional_names(fun)
    if params is not None and i < len(params):
        return f"argument {i} ({params[i]})"
    return f"argument {i}"


class _Label:
    """One flattened argument's label for error messages, worked out only when a message is written
    (reading parameter names and formatting tree paths on every call would cost more than a small
    gradient)."""

    __slots__ = ("_labels", "_i")

    def __init__(self, labels: "_Labels", i: int):
        self._labels, self._i = labels, i

    def __str__(self) -> str:
        return self._labels.resolved()[self._i]

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


class _Labels:
    """The labels of the flattened arguments, made by ``make`` when the first one is formatted."""

    __slots__ = ("_make", "_list")

    def __init__(self, make: Callable[[], list[str]]):
        self._make, self._list = make, None

    def resolved(self) -> list[str]:
        if self._list is None:
            self._list = self._make()
        return self._list

    def __getitem__(self, i: int) -> _Label:
        return _Label(self, i)


def _input_labels(
    fun: Callable[..., Any], args: Sequence[Any], positions: Sequence[int], kwargs: dict[str, Any] | None = None
) -> _Labels:
    """'argument 0 (x)', 'argument 1 (p), leaf 2 of (*, *, *)', 'keyword argument 'w'': a label per
    leaf of the arguments at ``positions`` and of ``kwargs``."""

    def make() -> list[str]:
        named = [(_arg_label(fun, pos), a) for pos, a in zip(positions, args)]
        named += [(f"keyword argument {k!r}", v) for k, v in (kwargs or {}).items()]
        labels = []
        for label, a in named:
            leaves, treedef = tree_flatten(a)
            if treedef.kind == "leaf":
                labels.append(label)
            else:
                labels.extend(f"{label}, leaf {j} of {treedef}" for j in range(len(leaves)))
        return labels

    return _Labels(make)


def _as_input_array(value: Any, label: str, transform: str, complex_ok: bool = True) -> Any:
    """A differentiable input: an array (or traced value, or Python float or complex) of a real or
    complex floating dtype (complex only where ``complex_ok``: jacfwd wants holomorphic=True)."""
    if isinstance(value, Tracer) or backend.is_array(value):
        arr = value
    elif isinstance(value, (float, complex)):
        arr = lone_scalar(value)
    elif isinstance(value, bool) or isinstance(value, int):
        raise TypeError(
            f"{transform} requires real floating-point inputs, but {label} is the Python "
            f"{type(value).__name__} {value!r}; pass a float (e.g. {float(value)!r}) or a float array"  # host-ok
        )
    else:
        raise TypeError(
            f"{transform}: {label} must be an array (NumPy, CuPy or any array-API array), got "
            f"{type(value).__name__}" + ("" if value is None else f" ({value!r})"[:120])
        )
    if backend.is_complex_dtype(arr.dtype):
        if not complex_ok:
            raise TypeError(
                f"{transform} requires real-valued inputs (float32 or float64), but {label} has dtype "
                f"{arr.dtype}. For holomorphic differentiation, pass holomorphic=True; for a function that "
                "is not holomorphic, use jacrev, grad or vjp (or its real and imaginary parts as two real inputs)"
            )
        return arr
    if not backend.is_real_float(arr.dtype):
        raise TypeError(
            f"{transform} requires floating-point inputs (float32, float64, complex64 or complex128), but "
            f"{label} has dtype {arr.dtype}. Convert it (x.astype(float)) or, if it is not differentiated, "
            "leave it out of argnums"
        )
    return arr


def _check_holomorphic(values: Sequence[Any], labels: Any, transform: str, what: str) -> None:
    """holomorphic=True: every input (``what`` = "inputs") or output is complex, as JAX requires."""
    for i, v in enumerate(values):
        if not backend.is_complex_dtype(v.dtype):
            name = labels[i] if what == "inputs" else f"output {i}"
            raise TypeError(
                f"{transform} with holomorphic=True requires {what} with a complex dtype, but {name} has "
                f"dtype {v.dtype}; convert it (x.astype(complex)) or drop holomorphic=True"
            )


def _common_namespace(arrays: Sequence[Any], labels: Sequence[str]) -> tuple[Any, Any]:
    """The one library and device of all differentiated inputs; a clear error otherwise."""
    xp = device = first = None
    for i, a in enumerate(arrays):
        if isinstance(a, Tracer):
            ns, dev = a._trace.xp, a.device
        elif type(a) in backend.FAST_ARRAY_TYPES and type(a) in backend.NAMESPACE_BY_TYPE:
            ns, dev = backend.NAMESPACE_BY_TYPE[type(a)], backend.device_of(a)  # a known type: no checks
        else:
            ns, dev = backend.namespace_of(a, names=[labels[i]]), backend.device_of(a)
        if xp is None:
            xp, device, first = ns, dev, i
            continue
        if ns is xp and dev == device:
            continue
        first, label = labels[first], labels[i]  # only an error needs the names
        if ns is not xp:
            raise TypeError(
                f"{first} is a {_lib(xp)} array but {label} is a {_lib(ns)} array; gpuad does not "
                "move data between libraries implicitly. Convert one with gpuad.asarray(x, backend=...)"
            )
        if dev != device:
            raise ValueError(
                f"{first} is on device {device} but {label} is on device {dev}; put all inputs on one "
                "device (e.g. with x.to_device(...))"
            )
    if xp is None:
        xp, device = backend.namespace_of_backend(None), None
    return xp, device


def _lib(xp: Any) -> str:
    return getattr(xp, "__name__", repr(xp)).replace("array_api_compat.", "")


def _split_aux(out: Any, has_aux: bool, transform: str) -> tuple[Any, Any]:
    """The function's output and aux (None without has_aux)."""
    if not has_aux:
        return out, None
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise TypeError(
            f"{transform} with has_aux=True requires the function to return a pair (output, aux), "
            f"got {type(out).__name__}"
        )
    return out[0], out[1]


def _strip(trace: Any, tree: Any) -> Any:
    """Replace this trace's tracers in ``tree`` by their primal values (aux outputs)."""
    leaves, treedef = tree_flatten(tree)
    cls = ReverseTracer if isinstance(trace, ReverseTrace) else JVPTracer
    return tree_unflatten(treedef, [x.primal if type(x) is cls and x._trace is trace else x for x in leaves])


def _output_array(value: Any, xp: Any, device: Any, transform: str) -> Any:
    if isinstance(value, Tracer) or backend.is_array(value):
        return value
    if isinstance(value, (bool, int, float)):
        return xp.asarray(value, device=device) if device is not None else lone_scalar(value)
    raise TypeError(f"{transform}: the function's outputs must be arrays, got {type(value).__name__}")


# ---------------------------------------------------------------------------------------------
# Reverse mode
# ---------------------------------------------------------------------------------------------


class _ReverseResult:
    """What one reverse-mode recording leaves: outputs, their nodes, the tape, the inputs."""

    def __init__(self, fun, primals, has_aux, transform, labels, holomorphic=False):
        flat, self.in_tree = tree_flatten(tuple(primals))
        # The common case (a traced or plain array of a real floating dtype) without the checks'
        # function calls; anything else gets them, and their messages.
        self.inputs = inputs = [
            v
            if (type(v) in backend.FAST_ARRAY_TYPES or isinstance(v, Tracer)) and backend.is_real_float(v.dtype)
            else _as_input_array(v, labels[i], transform)
            for i, v in enumerate(flat)
        ]
        if holomorphic:
            _check_holomorphic(inputs, labels, transform, "inputs")
        xp, device = _common_namespace(inputs, labels)
        with open_trace(ReverseTrace, xp, device=device) as trace:
            tracers = [trace.new_input(a) for a in inputs]
            out, aux = _split_aux(fun(*tree_unflatten(self.in_tree, tracers)), has_aux, transform)
        self.in_nodes = [t.node for t in tracers]
        self.aux = _strip(trace, aux) if has_aux else None
        out_flat, self.out_tree = tree_flatten(out)
        self.out_primals, self.out_nodes = [], []
        for o in out_flat:
            mine = type(o) is ReverseTracer and o._trace is trace
            self.out_primals.append(o.primal if mine else _output_array(o, xp, device, transform))
            self.out_nodes.append(o.node if mine else None)
        self.tape = trace.tape
        self.xp, self.device = xp, device
        if holomorphic:
            _check_holomorphic(self.out_primals, labels, transform, "outputs")

    def pull(self, cotangents: Sequence[Any], *, consume: bool) -> list[Any]:
        """Cotangents of the inputs (zeros where none arrived), for output cotangents in order."""
        seeds: dict[int, Any] = {}
        for node, c in zip(self.out_nodes, cotangents):
            if node is None or c is None:
                continue
            seeds[node] = seeds[node] + c if node in seeds else c
        grads = backward(self.tape, seeds, self.in_nodes, consume=consume, fresh=True)
        return [filled_like(a, 0) if g is None else backend.writable(g) for g, a in zip(grads, self.inputs)]


def vjp(fun: Callable[..., Any], *primals: Any, has_aux: bool = False) -> Any:
    """``(out, vjp_fn)`` or ``(out, vjp_fn, aux)``: ``vjp_fn(ct)`` returns the cotangents of the
    primals as a tuple, as ``jax.vjp``.

    >>> import numpy as np, gpuad.numpy as gnp
    >>> out, f_vjp = vjp(gnp.sin, np.asarray([0.0, 1.0]))
    >>> [round(v, 4) for v in f_vjp(np.ones(2))[0].tolist()]
    [1.0, 0.5403]
    """
    _check_callable(fun, "vjp")
    labels = _input_labels(fun, primals, range(len(primals)))
    rec = _ReverseResult(fun, primals, has_aux, "vjp", labels)
    out = tree_unflatten(rec.out_tree, rec.out_primals)

    def vjp_fn(ct: Any) -> tuple[Any, ...]:
        ct_flat, ct_tree = tree_flatten(ct)
        if ct_tree != rec.out_tree:
            raise ValueError(
                f"vjp_fn: the cotangent has structure {ct_tree} but the function's output has structure {rec.out_tree}"
            )
        for i, (c, o) in enumerate(zip(ct_flat, rec.out_primals)):
            _check_cotangent(c, o, i, rec.xp, rec.device)
        return tree_unflatten(rec.in_tree, rec.pull(ct_flat, consume=False))

    return (out, vjp_fn, rec.aux) if has_aux else (out, vjp_fn)


def _check_like(value: Any, ref: Any, what: Any, ref_what: str, dtype_error: type) -> None:
    """A tangent or cotangent must be an array with its reference's shape and dtype (``what``: a
    string or a lazy ``_Label``, formatted only into an error)."""
    if not (isinstance(value, Tracer) or backend.is_array(value)):
        raise TypeError(f"{what} must be an array, got {type(value).__name__}")
    if tuple(value.shape) != tuple(ref.shape):
        raise ValueError(f"{what} has shape {tuple(value.shape)} but {ref_what} has shape {tuple(ref.shape)}")
    if backend.dtype_name(value.dtype) != backend.dtype_name(ref.dtype):
        raise dtype_error(
            f"{what} has dtype {value.dtype} but {ref_what} has dtype {ref.dtype}; it must have {ref_what}'s dtype"
        )


def _check_cotangent(c: Any, out: Any, i: int, xp: Any, device: Any) -> None:
    """A cotangent must look like its output: an array of the same shape, dtype, library and device."""
    _check_like(c, out, f"vjp_fn: cotangent leaf {i}", "the output", ValueError)  # JAX: ValueError
    c_xp, c_dev = (c._trace.xp, c.device) if isinstance(c, Tracer) else (backend.namespace_of(c), backend.device_of(c))
    if c_xp is not xp:
        raise TypeError(
            f"vjp_fn: cotangent leaf {i} is {backend._a_library(c_xp)} array but the function's "
            f"inputs are {backend._a_library(xp)} arrays; convert the cotangent with gpuad.asarray"
        )
    if device is not None and c_dev != device:
        raise ValueError(
            f"vjp_fn: cotangent leaf {i} is on device {c_dev} but the inputs are on device {device}; "
            "move the cotangent there first"
        )


def value_and_grad(
    fun: Callable[..., Any], argnums: int | Sequence[int] = 0, has_aux: bool = False, holomorphic: bool = False
) -> Callable[..., Any]:
    """A function returning ``(fun(*args), gradient)`` (``((value, aux), gradient)`` with has_aux),
    as ``jax.value_and_grad``. ``fun`` must return a real scalar.

    >>> import numpy as np, gpuad.numpy as gnp
    >>> v, g = value_and_grad(lambda x: gnp.sum(x * x))(np.asarray([1.0, 2.0]))
    >>> float(v), g.tolist()
    (5.0, [2.0, 4.0])
    """
    return _value_and_grad(fun, argnums, has_aux, "value_and_grad", holomorphic)


def _argnums_transform(fun: Callable[..., Any], argnums: Any, transform: str) -> Callable[..., Any]:
    """Check ``fun`` and ``argnums``; return the decorator that makes ``body(diff, labels, partial_fun)``
    the transformed function: ``diff`` the arguments argnums picks, ``labels`` theirs, ``partial_fun``
    ``fun`` of them alone (the other arguments and the keyword arguments held fixed)."""
    _check_callable(fun, transform)
    nums = _normalize_argnums(argnums, transform)

    def decorate(body: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fun)
        def transformed(*args: Any, **kwargs: Any) -> Any:
            positions = _resolve_argnums(nums, len(args), transform, argnums)
            diff = [args[i] for i in positions]

            def partial_fun(*dargs: Any) -> Any:
                full = list(args)
                for i, v in zip(positions, dargs):
                    full[i] = v
                return fun(*full, **kwargs)

            return body(diff, _input_labels(fun, diff, positions), partial_fun)

        return reuses_buffers(transformed)

    return decorate


def _value_and_grad(fun: Callable[..., Any], argnums: Any, has_aux: bool, transform: str, holomorphic: bool) -> Callable[..., Any]:
    """value_and_grad's function, or grad's (``transform == "grad"``: the gradient alone)."""

    @_argnums_transform(fun, argnums, transform)
    def value_and_grad_fun(diff: list[Any], labels: _Labels, partial_fun: Callable[..., Any]) -> Any:
        rec = _ReverseResult(partial_fun, diff, has_aux, transform, labels, holomorphic)
        if rec.out_tree.kind != "leaf":
            raise TypeError(
                f"{transform}: the function must return a single scalar array, got a {rec.out_tree} structure"
                + ("; with an auxiliary output, pass has_aux=True" if rec.out_tree.kind in ("tuple", "list") else "")
            )
        out = rec.out_primals[0]
        _check_scalar_output(out, transform, holomorphic)
        # A symbolic ones seed: rules multiplying by it skip the multiplication (see uniform.py).
        grads = rec.pull([Uniform(1.0, tuple(out.shape), out.dtype, rec.xp, rec.device)], consume=True)
        per_arg = tree_unflatten(rec.in_tree, grads)
        g = per_arg[0] if isinstance(argnums, int) else tuple(per_arg)
        if transform == "grad":
            return (g, rec.aux) if has_aux else g
        return ((out, rec.aux) if has_aux else out), g

    return value_and_grad_fun


def _check_scalar_output(out: Any, transform: str, holomorphic: bool) -> None:
    if tuple(out.shape) != ():
        raise TypeError(
            f"{transform}: gradient only defined for scalar-output functions. Output had shape: "
            f"{tuple(out.shape)}. Sum or index it to a scalar, or use jacrev/vjp for vector outputs"
        )
    _check_real_outputs([out], transform, holomorphic)


def _check_real_outputs(outs: Sequence[Any], transform: str, holomorphic: bool) -> None:
    """grad and jacrev differentiate real-valued outputs (complex ones with holomorphic=True), as JAX."""
    for out in outs:
        if backend.is_complex_dtype(out.dtype) and not holomorphic:
            raise TypeError(
                f"{transform} requires real-valued outputs (float32 or float64), but the output has dtype "
                f"{out.dtype}. For holomorphic differentiation, pass holomorphic=True; for a function that is "
                "not holomorphic, use vjp directly (or differentiate its real and imaginary parts)"
            )
        if not (backend.is_real_float(out.dtype) or backend.is_complex_dtype(out.dtype)):
            raise TypeError(
                f"{transform} requires real-valued floating outputs (float32 or float64), but the "
                f"output has dtype {out.dtype}"
            )


def grad(fun: Callable[..., Any], argnums: int | Sequence[int] = 0, has_aux: bool = False, holomorphic: bool = False) -> Callable[..., Any]:
    """The gradient of a real scalar function, as ``jax.grad``. Of complex inputs it is JAX's
    (for f(z) = |z|**2 it gives 2 conj(z): conjugate it for the steepest-ascent direction); with
    ``holomorphic=True`` the complex derivative f'(z) of a complex-valued holomorphic function.

    >>> import numpy as np, gpuad.numpy as gnp
    >>> grad(lambda x: gnp.sum(gnp.sin(x)))(np.asarray([0.0])).tolist()
    [1.0]
    """
    return _value_and_grad(fun, argnums, has_aux, "grad", holomorphic)


def jacrev(fun: Callable[..., Any], argnums: int | Sequence[int] = 0, has_aux: bool = False, holomorphic: bool = False) -> Callable[..., Any]:
    """The Jacobian by reverse mode, as ``jax.jacrev``: for an output of shape ``S`` and an input of
    shape ``T``, an array of shape ``S + T`` (nested as output tree, then input tree).

    >>> import numpy as np, gpuad.numpy as gnp
    >>> jacrev(lambda x: x * x)(np.asarray([1.0, 2.0])).tolist()
    [[2.0, 0.0], [0.0, 4.0]]
    """

    @_argnums_transform(fun, argnums, "jacrev")
    def jacrev_fun(diff: list[Any], labels: _Labels, partial_fun: Callable[..., Any]) -> Any:
        rec = _ReverseResult(partial_fun, diff, has_aux, "jacrev", labels, holomorphic)
        _check_real_outputs(rec.out_primals, "jacrev", holomorphic)
        return _jacobian_from_record(rec, argnums, has_aux)

    return jacrev_fun


def _jacobian_from_record(rec: "_ReverseResult", argnums: Any, has_aux: bool) -> Any:
    """The Jacobian (output tree of input trees) of a recording, by one batched backward sweep."""
    rows = _pull_basis(rec)  # per input: (M, *input shape), M = all output elements
    per_output = []
    offset = 0
    for o in rec.out_primals:
        m = math.prod(o.shape)
        jac_leaves = [
            reshaped(r[offset : offset + m, ...], tuple(o.shape) + tuple(a.shape)) for r, a in zip(rows, rec.inputs)
        ]
        offset += m
        per_arg = tree_unflatten(rec.in_tree, jac_leaves)
        per_output.append(per_arg[0] if isinstance(argnums, int) else tuple(per_arg))
    jac = tree_unflatten(rec.out_tree, per_output)
    return (jac, rec.aux) if has_aux else jac


def _pull_basis(rec: "_ReverseResult") -> list[Any]:
    """All rows of the Jacobian in one backward sweep: the sweep runs under a batch of M one-hot
    cotangents (M = number of output elements), so each rule works on all rows at once."""
    sizes = [math.prod(o.shape) for o in rec.out_primals]
    total = sum(sizes)
    if total == 0:
        return [rec.xp.zeros((0,) + tuple(a.shape), dtype=a.dtype, device=rec.device) for a in rec.inputs]
    eye = rec.xp.eye(total, device=rec.device)  # in the inputs' library (a device alone may not say which)
    with open_trace(BatchTrace, rec.xp, device=rec.device, size=total) as trace:
        seeds = []
        offset = 0
        for o, m in zip(rec.out_primals, sizes):
            block = reshaped(cast(eye[:, offset : offset + m], o.dtype), (total,) + tuple(o.shape))
            seeds.append(BatchTracer(trace, basis_rows(block, o, rec.xp)))
            offset += m
        grads = rec.pull(seeds, consume=True)
    return [
        g.val if type(g) is BatchTracer and g._trace is trace else broadcasted(g, (total,) + tuple(g.shape))
        for g in grads
    ]


# ---------------------------------------------------------------------------------------------
# Batching
# ---------------------------------------------------------------------------------------------


def _axes_for_leaves(spec: Any, tree: Any, label: str, what: str) -> list[Any]:
    """Broadcast an axis specification (an int, None, or a tree prefix of ``tree``) to one entry
    per leaf of ``tree``, in flattening order."""
    leaves, treedef = tree_flatten(tree)
    if spec is None or (isinstance(spec, int) and not isinstance(spec, bool)):
        return [spec] * len(leaves)
    if isinstance(spec, (tuple, list)) and isinstance(tree, (tuple, list)) and len(spec) == len(tree):
        out: list[Any] = []
        for i, (s, t) in enumerate(zip(spec, tree)):
            out.extend(_axes_for_leaves(s, t, f"{label}[{i}]", what))
        return out
    if isinstance(spec, dict) and isinstance(tree, dict) and set(spec) == set(tree):
        out = []
        for k in sorted(tree):
            out.extend(_axes_for_leaves(spec[k], tree[k], f"{label}[{k!r}]", what))
        return out
    raise ValueError(
        f"vmap: {what} {spec!r} does not match the structure of {label} ({treedef}); give an int, "
        "None, or a tuple/list/dict with one entry per element"
    )


def _check_axes_spec(spec: Any, what: str) -> None:
    leaves = [spec] if not isinstance(spec, (tuple, list, dict)) else tree_flatten(spec)[0]
    for a in leaves:
        if a is not None and (not isinstance(a, int) or isinstance(a, bool)):
            raise TypeError(f"vmap: {what} entries must be ints or None, got {a!r}")


def vmap(
    fun: Callable[..., Any],
    in_axes: Any = 0,
    out_axes: Any = 0,
    *,
    chunk_size: int | None = None,
) -> Callable[..., Any]:
    """Vectorize ``fun`` over a batch axis, as ``jax.vmap``: ``fun`` is written for one point and
    the result holds every point's result along ``out_axes``. No Python loop runs over the points;
    with ``chunk_size`` the batch is evaluated ``chunk_size`` points at a time to bound memory.

    >>> import numpy as np, gpuad.numpy as gnp
    >>> vmap(lambda x: gnp.sum(x * x))(np.asarray([[1.0, 2.0], [3.0, 4.0]])).tolist()
    [5.0, 25.0]
    """
    _check_callable(fun, "vmap")
    _check_axes_spec(in_axes, "in_axes")
    _check_axes_spec(out_axes, "out_axes")
    if chunk_size is not None and (not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size <= 0):
        raise ValueError(f"vmap: chunk_size must be a positive int or None, got {chunk_size!r}")

    @functools.wraps(fun)
    def vmapped(*args: Any, **kwargs: Any) -> Any:
        if isinstance(in_axes, (tuple, list)) and len(in_axes) != len(args):
            raise ValueError(
                f"vmap: in_axes has {len(in_axes)} entries but the function was called with {len(args)} "
                "positional arguments; give one entry per argument (None for an argument that is not batched)"
            )
        specs = in_axes if isinstance(in_axes, (tuple, list)) else [in_axes] * len(args)
        leaves, axes = [], []
        simple = not kwargs  # every argument an array with an int or None axis: no tree work
        for i, (arg, spec) in enumerate(zip(args, specs)):
            if (spec is None or type(spec) is int) and arg is not None and not isinstance(arg, (tuple, list, dict)):
                leaves.append(arg)
                axes.append(spec)
                continue
            simple = False
            leaves.extend(tree_flatten(arg)[0])
            axes.extend(_axes_for_leaves(spec, arg, _arg_label(fun, i), "in_axes"))
        for v in kwargs.values():  # as in JAX, keyword arguments are mapped along axis 0
            kw_leaves = tree_flatten(v)[0]
            leaves.extend(kw_leaves)
            axes.extend([0] * len(kw_leaves))
        labels = _input_labels(fun, args, range(len(args)), kwargs)
        if dask_batches.wants_chunks(leaves, axes):
            return over_chunks(args, kwargs, jit=False)
        size, moved, mapped = _batch_inputs(leaves, axes, labels)
        picked = [i for i, m in enumerate(mapped) if m]
        picked_labels = _Labels(lambda: [labels.resolved()[i] for i in picked])
        xp, device = _common_namespace([moved[i] for i in picked], picked_labels)
        if simple:
            n_pos, args_tree = len(args), None
        else:
            flat_args, args_tree = tree_flatten(args)
            n_pos = len(flat_args)

        def call(batch_leaves: list[Any], n: int) -> tuple[list[Any], Any, list[Any]]:
            with open_trace(BatchTrace, xp, device=device, size=n) as trace:
                ins = [BatchTracer(trace, v) if m else v for v, m in zip(batch_leaves, mapped)]
                if simple:
                    out = fun(*ins)
                else:
                    pos = tree_unflatten(args_tree, ins[:n_pos])
                    kw_vals = ins[n_pos:]
                    kw = {}
                    for k in kwargs:
                        kw_leaves, kw_tree = tree_flatten(kwargs[k])
                        kw[k] = tree_unflatten(kw_tree, kw_vals[: len(kw_leaves)])
                        kw_vals = kw_vals[len(kw_leaves) :]
                    out = fun(*pos, **kw)
            return _unbatch_outputs(trace, out, out_axes, n, xp, device)

        if chunk_size is None or size <= chunk_size:
            results, out_tree, _ = call(moved, size)
            # The caller owns what vmap returns: never an argument, nor a view of one.
            return tree_unflatten(out_tree, backend.unaliased(results, leaves))
        return _chunked(call, moved, mapped, size, chunk_size, xp, device)

    made: dict[Any, _PerChunk] = {}

    def over_chunks(args: tuple[Any, ...], kwargs: dict[str, Any], jit: bool) -> Any:
        """Dask arrays mapped: one task per chunk of the batch (gpuad/dask_batches.py); with
        ``jit``, each task runs the compiled recording (``jit(vmap(f))`` on a Dask batch)."""
        specs = in_axes if isinstance(in_axes, (tuple, list)) else [in_axes] * len(args)
        leaves, axes = [], []
        for i, (arg, spec) in enumerate(zip(args, specs)):
            leaves.extend(tree_flatten(arg)[0])
            axes.extend(_axes_for_leaves(spec, arg, _arg_label(fun, i), "in_axes"))
        kw_trees = {}
        for k, v in kwargs.items():
            kw_leaves, kw_trees[k] = tree_flatten(v)
            leaves.extend(kw_leaves)
            axes.extend([0] * len(kw_leaves))
        arg_trees = [tree_flatten(a)[1] for a in args]
        key = (str(arg_trees), str(sorted(kw_trees.items())), jit)
        per_chunk = made.get(key)
        if per_chunk is None:  # one per call signature: its jit's recordings serve later calls
            per_chunk = made[key] = _PerChunk(fun, in_axes, out_axes, chunk_size, arg_trees, kw_trees, jit)
        return dask_batches.map_chunks(per_chunk, leaves, axes, _input_labels(fun, args, range(len(args)), kwargs))

    pooled = reuses_buffers(vmapped)
    pooled._gpuad_over_chunks = over_chunks  # type: ignore[attr-defined]  # jit(vmap(f)) on Dask arrays
    return pooled


class _PerChunk:
    """``vmap(fun)`` on one chunk's flat arguments: what each task of a vmap over a Dask batch
    runs. Picklable (Dask ships it to the workers); the vmapped (and jitted) function is made on
    first use where it runs and kept for the other chunks that share this object."""

    def __init__(self, fun, in_axes, out_axes, chunk_size, arg_trees, kw_trees, jit):
        self.fun, self.in_axes, self.out_axes, self.chunk_size = fun, in_axes, out_axes, chunk_size
        self.arg_trees, self.kw_trees, self.jit = arg_trees, kw_trees, jit
        self.token = uuid.uuid4().hex  # names this function on the workers that keep it
        self._made: dict[bool, Callable[..., Any]] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_made"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _made={})

    def __call__(self, leaves: list[Any], on_chunk: bool) -> tuple[list[Any], Any, list[Any]]:
        """The outputs' leaves, tree and batch axes. ``on_chunk``: a chunk's plain arrays (jit
        may compile); otherwise a probe of no points or a traced run."""
        compiled = on_chunk and self.jit
        f = self._made.get(compiled)
        if f is None:
            f = vmap(self.fun, self.in_axes, self.out_axes, chunk_size=self.chunk_size)
            self._made[compiled] = f = compiled_jit(f) if compiled else f
        it = iter(leaves)
        args = [tree_unflatten(t, [next(it) for _ in range(t.num_leaves)]) for t in self.arg_trees]
        kwargs = {k: tree_unflatten(t, [next(it) for _ in range(t.num_leaves)]) for k, t in self.kw_trees.items()}
        out = f(*args, **kwargs)
        out_flat, out_tree = tree_flatten(out)
        if self.out_axes is None or type(self.out_axes) is int:
            axes = [self.out_axes] * len(out_flat)
        else:
            axes = _axes_for_leaves(self.out_axes, out, "the output", "out_axes")
        return out_flat, out_tree, axes


def _batch_inputs(leaves: list[Any], axes: list[Any], labels: Any) -> tuple[int, list[Any], list[bool]]:
    """Check the mapped inputs, agree on the batch size, and move each batch axis to the front."""
    size = first_seen = None
    moved, mapped = [], []
    for i, (v, ax) in enumerate(zip(leaves, axes)):
        if ax is None:
            moved.append(v)
            mapped.append(False)
            continue
        if not (isinstance(v, Tracer) or backend.is_array(v)):
            raise TypeError(
                f"vmap: {labels[i]} is mapped along axis {ax} but is a {type(v).__name__}, not an array; "
                "pass an array, or None in in_axes for it"
            )
        ndim = len(v.shape)
        if not -ndim <= ax < ndim:
            raise ValueError(
                f"vmap: {labels[i]} is mapped along axis {ax}, but it has only {ndim} dimension(s) "
                f"(shape {tuple(v.shape)}); use an axis in [{-ndim}, {ndim})" if ndim else
                f"vmap: {labels[i]} is mapped along axis {ax}, but it is 0-dimensional; give it a batch axis "
                "or use None in in_axes"
            )
        ax = ax % ndim
        n = v.shape[ax]
        if size is None:
            size, first_seen = n, (i, n, ax)
        elif n != size:
            first, first_n, first_ax = first_seen
            raise ValueError(
                f"vmap got inconsistent sizes for the mapped axes: {labels[first]} has size {first_n} along "
                f"axis {first_ax}, but {labels[i]} has size {n} along axis {ax}"
            )
        moved.append(axis_moved(v, ax, 0) if ax != 0 else v)
        mapped.append(True)
    if size is None:
        raise ValueError("vmap needs at least one mapped argument: in_axes is None for every input")
    return size, moved, mapped


def _unbatch_outputs(trace: Any, out: Any, out_axes: Any, size: int, xp: Any, device: Any) -> tuple[list[Any], Any, list[Any]]:
    """Outputs with the batch axis where out_axes puts it (unbatched outputs are repeated)."""
    out_flat, out_tree = tree_flatten(out)
    if out_axes is None or type(out_axes) is int:
        axes = [out_axes] * len(out_flat)
    else:
        axes = _axes_for_leaves(out_axes, out, "the output", "out_axes")
    results = []
    for i, (o, ax) in enumerate(zip(out_flat, axes)):
        if type(o) is BatchTracer and o._trace is trace:
            if ax is None:
                raise ValueError(
                    f"vmap: output leaf {i} depends on the mapped inputs, but out_axes is None for it; "
                    "give it an int out_axes (or return something that does not vary per point)"
                )
            v = o.val
        else:
            o = _output_array(o, xp, device, "vmap")
            if ax is None:
                results.append(o)
                continue
            v = broadcasted(o, (size,) + tuple(o.shape))  # the same for every point, as JAX
        ndim = len(v.shape)
        if not -ndim <= ax < ndim:
            raise ValueError(
                f"vmap: out_axes {ax} is out of range for output leaf {i}, which has {ndim - 1} "
                f"dimension(s) per point; use an axis in [{-ndim}, {ndim})"
            )
        results.append(axis_moved(v, 0, ax % ndim) if ax % ndim != 0 else v)
    return results, out_tree, axes


def _chunked(call, moved, mapped, size, chunk_size, xp, device):
    """Evaluate the batch ``chunk_size`` points at a time and assemble the results: written into
    one preallocated array per output where the results are plain arrays, concatenated otherwise."""
    assembled = buffers = None
    for start in range(0, size, chunk_size):
        stop = min(start + chunk_size, size)
        results, out_tree, axes = call([v[start:stop, ...] if m else v for v, m in zip(moved, mapped)], stop - start)
        if assembled is None:
            assembled = [[] if ax is not None else r for r, ax in zip(results, axes)]
            buffers = [None] * len(results)
        for i, (r, ax) in enumerate(zip(results, axes)):
            if ax is None:
                continue
            if isinstance(r, Tracer) or not backend.is_writable(r):
                assembled[i].append(r)
                continue
            ax_n = ax % len(r.shape)
            if buffers[i] is None:
                shape = list(r.shape)
                shape[ax_n] = size
                buffers[i] = xp.empty(tuple(shape), dtype=r.dtype, device=device)  # in the inputs' library
            key = (slice(None),) * ax_n + (slice(start, stop), Ellipsis)  # strict arrays want every axis
            buffers[i][key] = r
            assembled[i] = buffers[i]
    final = [concat(*a, axis=ax % a[0].ndim - a[0].ndim) if ax is not None and isinstance(a, list) else a for a, ax in zip(assembled, axes)]
    return tree_unflatten(out_tree, final)


# ---------------------------------------------------------------------------------------------
# Rematerialization
# ---------------------------------------------------------------------------------------------


def checkpoint(fun: Callable[..., Any]) -> Callable[..., Any]:
    """``fun`` with rematerialization, as ``jax.checkpoint``: under reverse mode the tape keeps only
    its inputs and recomputes its inside during the backward sweep, trading compute for memory.
    Values being differentiated must reach ``fun`` as arguments, not through a closure. Under other
    transforms (jvp, vmap) it simply calls ``fun``.

    >>> import numpy as np, gpuad.numpy as gnp
    >>> layer = checkpoint(lambda x: gnp.tanh(x) * 2.0)
    >>> grad(lambda x: gnp.sum(layer(layer(x))))(np.asarray([0.5])).round(6).tolist()
    [1.479056]
    """
    _check_callable(fun, "checkpoint")

    @functools.wraps(fun)
    def checkpointed(*args: Any) -> Any:
        flat, in_tree = tree_flatten(args)
        return call_higher_order(_CheckpointCall(fun, args, flat, in_tree), flat)

    checkpointed._gpuad_checkpointed = fun  # type: ignore[attr-defined]  # scan recomputes its steps
    return checkpointed


class _CheckpointCall(HigherOrderCall):
    """A checkpointed function's call: reverse mode records it as one line that recomputes it
    (ReverseTrace.checkpoint_call); every other transform runs it as it is."""

    name = "checkpoint"

    def __init__(self, fun: Callable[..., Any], args: tuple[Any, ...], flat: list[Any], in_tree: Any):
        self.fun, self.args, self.flat, self.in_tree = fun, args, flat, in_tree
        self.leaves = flat

    def run(self) -> Any:
        return self.fun(*self.args)

    def again(self, leaves: list[Any]) -> "_CheckpointCall":
        return _CheckpointCall(self.fun, tree_unflatten(self.in_tree, leaves), leaves, self.in_tree)

    def reverse(self, trace: Any) -> Any:
        return trace.checkpoint_call(self.fun, self.flat, self.in_tree)
