"""gpuad.numpy's functions: where arrays come from, elementwise functions, axes and shapes,
reductions, linear algebra, creation and dtypes. Indexing, the composites with custom rules and
the operators of traced values are the modules beside this one (see __init__)."""

from __future__ import annotations

import builtins
import math
import operator
from typing import Any, Sequence
from typing import NamedTuple as _NamedTuple

from .. import backend as _backend
from .. import primitives as _p
from ..tracing import Tracer, bind, eager
from ..uniform import Uniform

__array_api_version__ = "2024.12"

# dtypes: NumPy's dtype objects are the vocabulary; other libraries' dtypes are accepted by name.
bool = _backend.named_dtype("bool")  # noqa: A001  (the standard's name)
int8 = _backend.named_dtype("int8")
int16 = _backend.named_dtype("int16")
int32 = _backend.named_dtype("int32")
int64 = _backend.named_dtype("int64")
uint8 = _backend.named_dtype("uint8")
uint16 = _backend.named_dtype("uint16")
uint32 = _backend.named_dtype("uint32")
uint64 = _backend.named_dtype("uint64")
float32 = _backend.named_dtype("float32")
float64 = _backend.named_dtype("float64")
complex64 = _backend.named_dtype("complex64")
complex128 = _backend.named_dtype("complex128")

e = math.e
pi = math.pi
inf = math.inf
nan = math.nan
newaxis = None

_SCALARS = (builtins.bool, int, float, complex)

# ---------------------------------------------------------------------------------------------
# Where arrays come from, and Python scalars made into arrays
# ---------------------------------------------------------------------------------------------


def _is_arraylike(x: Any) -> builtins.bool:
    return isinstance(x, Tracer) or _backend.is_array(x)


def _as_array(x: Any, name: str = "x") -> Any:
    if _is_arraylike(x):
        return x
    if type(x) is Uniform:
        return x.view()
    if isinstance(x, _SCALARS):
        return _p.lone_scalar(x)
    if isinstance(x, (list, tuple)):
        return asarray(x)
    if x is None or isinstance(x, (str, bytes)):
        raise TypeError(f"{name} must be an array, got {type(x).__name__} ({x!r})")
    return asarray(x)


def _operands(*args: Any, names: Sequence[str] | None = None) -> list[Any]:
    """Arrays for an elementwise op: scalars become 0-d arrays typed after the first array."""
    if builtins.any(type(a) is Uniform for a in args):
        args = tuple(a.view() if type(a) is Uniform else a for a in args)
    like = next((a for a in args if _is_arraylike(a)), None)
    out = []
    for i, a in enumerate(args):
        if _is_arraylike(a):
            out.append(a)
        elif isinstance(a, _SCALARS):
            out.append(_p.scalar_like(a, like) if like is not None else _p.lone_scalar(a))
        else:
            out.append(_as_array(a, names[i] if names else f"x{i + 1}"))
    return out


# ---------------------------------------------------------------------------------------------
# Elementwise functions
# ---------------------------------------------------------------------------------------------


def _unary(prim: _p.Primitive, name: str) -> Any:
    label = f"{name}: x"

    def fn(x: Any, /) -> Any:
        if isinstance(x, Tracer):
            return bind(prim, x)
        if type(x) in _backend.NAMESPACE_BY_TYPE:  # a plain array (a rule's arithmetic): no trace to ask
            return eager(prim, (x,), {})
        return bind(prim, _as_array(x, label))

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"Elementwise ``{name}`` of the array API, differentiable in gpuad."
    return fn


def _binary(prim: _p.Primitive, name: str) -> Any:
    labels = [f"{name}: x1", f"{name}: x2"]

    def fn(x1: Any, x2: Any, /) -> Any:
        # Two traced values, or two arrays of a type already seen (a rule's arithmetic on plain
        # arrays): nothing to convert.
        traced1, traced2 = isinstance(x1, Tracer), isinstance(x2, Tracer)
        if traced1 or traced2:
            if (traced1 or type(x1) in _backend.NAMESPACE_BY_TYPE) and (traced2 or type(x2) in _backend.NAMESPACE_BY_TYPE):
                return bind(prim, x1, x2)
        elif type(x1) in _backend.NAMESPACE_BY_TYPE and type(x2) in _backend.NAMESPACE_BY_TYPE:
            return eager(prim, (x1, x2), {})  # two plain arrays: no trace to ask
        a, b = _operands(x1, x2, names=labels)
        return bind(prim, a, b)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"Elementwise ``{name}`` of the array API (Python scalars allowed), differentiable."
    return fn


# The table's standard elementwise entries (impl _UNARY or _BINARY in primitives.py) are gpuad.numpy's
# functions of their names: adding one to the table exports it (multiply and pow get wrappers below).
for _prim in _p.PRIMITIVES.values():
    if _prim.standard is not None:
        globals()[_prim.name] = (_unary if _prim.standard == "unary" else _binary)(_prim, _prim.name)
del _prim

logaddexp = _binary(_p.logaddexp, "logaddexp")  # standard, with an impl of gpuad's own (see the table)
_multiply = _binary(_p.multiply, "multiply")


def multiply(x1: Any, x2: Any, /) -> Any:
    """Elementwise ``x1 * x2`` (Python scalars allowed), differentiable. ``x * x`` is computed as
    ``square(x)``: one tangent product instead of two plus a sum in forward mode."""
    if x1 is x2 and isinstance(x1, Tracer):
        return square(x1)
    return _multiply(x1, x2)


def positive(x: Any, /) -> Any:
    """``+x``: the value itself (traced values are immutable, so no copy is needed)."""
    x = _as_array(x)
    if isinstance(x, Tracer):
        return x
    return _p.namespace_and_device(x)[0].positive(x)


def pow(x1: Any, x2: Any, /) -> Any:  # noqa: A001
    """``x1 ** x2``. A Python int exponent uses exact repeated multiplication (JAX's integer_pow).

    >>> import numpy as np
    >>> pow(np.asarray([2.0, 3.0]), 2).tolist()
    [4.0, 9.0]
    """
    if isinstance(x2, int) and not isinstance(x2, builtins.bool) and _is_arraylike(x1):
        if isdtype(x1.dtype, "real floating"):
            return _p.integer_pow(x1, n=x2)
    a, b = _operands(x1, x2)
    return _p.pow_(a, b)


def stop_gradient(x: Any) -> Any:
    """``x`` as a constant: no derivative flows through it, in any mode or nesting level.

    >>> import gpuad, numpy as np
    >>> float(gpuad.grad(lambda x: x * stop_gradient(x))(np.asarray(3.0)))
    3.0
    """
    x = _as_array(x)
    return _p.stop_gradient(x) if isinstance(x, Tracer) else x


def where(condition: Any, x1: Any, x2: Any, /) -> Any:
    """Elementwise choice; not NaN-safe, as in JAX (see DESIGN.md).

    >>> import numpy as np
    >>> where(np.asarray([True, False]), 1.0, np.asarray([5.0, 6.0])).tolist()
    [1.0, 6.0]
    """
    if isinstance(condition, builtins.bool):
        condition = _p.lone_scalar(condition)
    a, b = _operands(x1, x2, names=["x1", "x2"])
    cond = _as_array(condition, "condition")
    if not isdtype(cond.dtype, "bool"):
        raise TypeError(f"where: condition must be a boolean array, got dtype {cond.dtype}; compare first (x > 0)")
    return _p.where(cond, a, b)


def clip(x: Any, /, min: Any = None, max: Any = None) -> Any:  # noqa: A002
    """Clamp to [min, max] as ``minimum(maximum(x, min), max)``, like JAX: at a bound the
    derivative is 0.5.

    >>> import numpy as np
    >>> clip(np.asarray([-2.0, 0.5, 3.0]), 0.0, 1.0).tolist()
    [0.0, 0.5, 1.0]
    """
    x = _as_array(x)
    if min is not None:
        x = maximum(min, x) if not isinstance(min, _SCALARS) else maximum(x, min)
    if max is not None:
        x = minimum(max, x) if not isinstance(max, _SCALARS) else minimum(x, max)
    return x


def astype(x: Any, dtype: Any, /, *, copy: builtins.bool = True, device: Any = None) -> Any:
    """Convert to ``dtype``. Float-to-float conversion is differentiable (the cotangent converts
    back); conversion to an integer or boolean dtype has no derivative."""
    if type(x) is not Uniform:
        x = _as_array(x)
        if not isinstance(x, Tracer):
            xp = _backend.namespace_of(x)
            return xp.astype(x, _backend.backend_dtype(xp, dtype), copy=copy)
    return _p.cast(x, dtype)


# ---------------------------------------------------------------------------------------------
# Axes and shapes
# ---------------------------------------------------------------------------------------------


def _normalize_axis(axis: int, ndim: int, name: str = "axis") -> int:
    """One axis as a negative number, with NumPy's error for an axis out of range."""
    if not isinstance(axis, int) or isinstance(axis, builtins.bool):
        raise TypeError(f"{name} must be an int, got {type(axis).__name__}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{name} {axis} is out of bounds for an array of dimension {ndim}")
    return axis - ndim if axis >= 0 else axis


def _normalize_axes(axis: Any, ndim: int, name: str = "axis") -> tuple[int, ...]:
    """``None``, an int or a tuple of ints as a sorted tuple of distinct negative axes."""
    if axis is None:
        return tuple(range(-ndim, 0))
    if isinstance(axis, int):
        return (_normalize_axis(axis, ndim, name),)
    axes = tuple(_normalize_axis(a, ndim, name) for a in axis)
    if len(set(axes)) != len(axes):
        raise ValueError(f"{name}={axis!r} repeats an axis")
    return tuple(sorted(axes))


def broadcast_shapes(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    """The broadcast of several shapes (ValueError naming them when they do not broadcast)."""
    return _p.broadcast_shapes(*(tuple(s) for s in shapes))


def reshape(x: Any, /, shape: Any, *, copy: Any = None) -> Any:
    """Reshape; one entry of ``shape`` may be -1.

    >>> import numpy as np
    >>> reshape(np.arange(6.0), (2, -1)).shape
    (2, 3)
    """
    if type(x) is not Uniform:
        x = _as_array(x)
    if isinstance(shape, int):
        shape = (shape,)
    shape = tuple(operator.index(d) for d in shape)
    size = math.prod(x.shape)
    if shape.count(-1) > 1:
        raise ValueError(f"reshape: shape {shape} has more than one -1")
    if -1 in shape:
        known = math.prod(d for d in shape if d != -1)
        if known == 0 or size % known:
            raise ValueError(f"reshape: cannot reshape an array of shape {tuple(x.shape)} into shape {shape}")
        shape = tuple(size // known if d == -1 else d for d in shape)
    if math.prod(shape) != size or builtins.any(d < 0 for d in shape):
        raise ValueError(f"reshape: cannot reshape an array of shape {tuple(x.shape)} into shape {shape}")
    return _p.reshaped(x, shape)


def permute_dims(x: Any, /, axes: Sequence[int]) -> Any:
    """Permute the axes (``axes`` must be a permutation of ``range(x.ndim)``)."""
    x = _as_array(x)
    n = x.ndim
    perm = tuple(a + n if isinstance(a, int) and a < 0 else a for a in axes)
    if sorted(perm) != list(range(n)):
        raise ValueError(f"permute_dims: axes={tuple(axes)} is not a permutation of the {n} axes of the array")
    return _p.permuted(x, perm)


def matrix_transpose(x: Any, /) -> Any:
    """Swap the last two axes."""
    x = _as_array(x)
    if x.ndim < 2:
        raise ValueError(f"matrix_transpose needs at least 2 dimensions, got shape {tuple(x.shape)}")
    n = x.ndim
    return permute_dims(x, tuple(range(n - 2)) + (n - 1, n - 2))


def expand_dims(x: Any, /, axis: Any = 0) -> Any:
    """Insert a size-1 axis at ``axis`` (counted in the result; a tuple inserts several, as
    NumPy). An axis outside [-N-1, N] raises IndexError, as the standard says.

    >>> import numpy as np
    >>> expand_dims(np.ones(3), -1).shape
    (3, 1)
    """
    x = _as_array(x)
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out_ndim = x.ndim + len(axes)
    for a in axes:
        if isinstance(a, int) and not isinstance(a, builtins.bool) and not -out_ndim <= a < out_ndim:
            raise IndexError(
                f"expand_dims: axis {a} is out of range for an array of dimension {x.ndim} (valid: "
                f"{-out_ndim} to {out_ndim - 1})"
            )
    positions = sorted(_normalize_axis(a, out_ndim) + out_ndim for a in axes)
    if len(set(positions)) != len(positions):
        raise ValueError(f"expand_dims: axis={axis!r} repeats an axis")
    shape = list(x.shape)
    for p in positions:
        shape.insert(p, 1)
    return reshape(x, tuple(shape))


def squeeze(x: Any, /, axis: Any = None) -> Any:
    """Remove size-1 axes (all of them when ``axis`` is None)."""
    x = _as_array(x)
    if axis is None:
        axes = tuple(i - x.ndim for i, d in enumerate(x.shape) if d == 1)
    else:
        axes = _normalize_axes(axis, x.ndim)
        for given in (axis,) if isinstance(axis, int) else tuple(axis):
            size = x.shape[_normalize_axis(given, x.ndim)]
            if size != 1:
                raise ValueError(
                    f"squeeze: axis {given} has size {size}, not 1 (shape {tuple(x.shape)}); only "
                    "size-1 axes can be removed"
                )
    shape = tuple(d for i, d in enumerate(x.shape) if (i - x.ndim) not in axes)
    return reshape(x, shape)


def broadcast_to(x: Any, /, shape: Any) -> Any:
    """Broadcast to ``shape`` (NumPy rules)."""
    if type(x) is not Uniform:
        x = _as_array(x)
    shape = (shape,) if isinstance(shape, int) else tuple(operator.index(d) for d in shape)
    ok = len(shape) >= x.ndim and builtins.all(d in (1, e) for d, e in zip(reversed(tuple(x.shape)), reversed(shape)))
    if not ok:
        raise ValueError(
            f"broadcast_to: cannot broadcast an array of shape {tuple(x.shape)} to shape {shape}; "
            "each axis must be 1 or equal to the target size (axes are matched from the right)"
        )
    return _p.broadcasted(x, shape)


def broadcast_arrays(*arrays: Any) -> list[Any]:
    """Broadcast several arrays against each other."""
    arrays = [_as_array(a) for a in arrays]
    shape = _p.broadcast_shapes(*(tuple(a.shape) for a in arrays))
    return [broadcast_to(a, shape) for a in arrays]


def concat(arrays: Sequence[Any], /, *, axis: int | None = 0) -> Any:
    """Join arrays along an existing axis (``axis=None`` flattens them first)."""
    arrays = [_as_array(a, f"arrays[{i}]") for i, a in enumerate(arrays)]
    if not arrays:
        raise ValueError("concat needs at least one array")
    if axis is None:
        arrays = [reshape(a, (-1,)) for a in arrays]
        axis = 0
    ndim = arrays[0].ndim
    if ndim == 0:
        raise ValueError("concat: 0-d arrays cannot be concatenated; use stack")
    ax = _normalize_axis(axis, ndim)
    for i, a in enumerate(arrays):
        if a.ndim != ndim or builtins.any(
            d != e for j, (d, e) in enumerate(zip(a.shape, arrays[0].shape)) if j - ndim != ax
        ):
            raise ValueError(
                f"concat: arrays[{i}] has shape {tuple(a.shape)}, which does not match arrays[0] "
                f"{tuple(arrays[0].shape)} outside axis {axis}"
            )
    if len(arrays) == 1 and isinstance(arrays[0], Tracer):
        return arrays[0]
    return _p.concat(*arrays, axis=ax)


def stack(arrays: Sequence[Any], /, *, axis: int = 0) -> Any:
    """Join arrays along a new axis."""
    arrays = [_as_array(a, f"arrays[{i}]") for i, a in enumerate(arrays)]
    if not arrays:
        raise ValueError("stack needs at least one array")
    shape = tuple(arrays[0].shape)
    for i, a in enumerate(arrays):
        if tuple(a.shape) != shape:
            raise ValueError(f"stack: arrays[{i}] has shape {tuple(a.shape)} but arrays[0] has {shape}")
    return concat([expand_dims(a, axis=axis) for a in arrays], axis=axis)


def flip(x: Any, /, *, axis: Any = None) -> Any:
    """Reverse the order of elements along ``axis`` (all axes by default)."""
    x = _as_array(x)
    return _p.flip(x, axis=_normalize_axes(axis, x.ndim))


def moveaxis(x: Any, source: Any, destination: Any, /) -> Any:
    """Move axes to new positions (as NumPy's moveaxis)."""
    x = _as_array(x)
    n = x.ndim
    src = [_normalize_axis(a, n, "source") + n for a in ((source,) if isinstance(source, int) else source)]
    dst = [
        _normalize_axis(a, n, "destination") + n
        for a in ((destination,) if isinstance(destination, int) else destination)
    ]
    if len(src) != len(dst):
        raise ValueError("moveaxis: source and destination must have the same number of axes")
    order = [a for a in range(n) if a not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return permute_dims(x, tuple(order))


# ---------------------------------------------------------------------------------------------
# Reductions
# ---------------------------------------------------------------------------------------------


def sum(x: Any, /, *, axis: Any = None, dtype: Any = None, keepdims: builtins.bool = False) -> Any:  # noqa: A001
    """Sum over ``axis`` (all axes by default).

    >>> import numpy as np
    >>> sum(np.ones((2, 3)), axis=1).tolist()
    [3.0, 3.0]
    """
    if type(x) is not Uniform:
        x = _as_array(x)
    if dtype is not None:
        x = astype(x, dtype)
    return _in_dtype(_p.summed(x, _normalize_axes(axis, x.ndim), keepdims), dtype)


def _in_dtype(out: Any, dtype: Any) -> Any:
    """A reduction's result in the ``dtype`` the user asked for: the library may widen a small
    integer type (NumPy's sum of uint8 is uint64); the standard says the result has ``dtype``.
    The input was cast to ``dtype`` first, so for integers the narrowing is the same wrap-around
    (sums and products modulo 2**bits) the reduction in ``dtype`` would give."""
    if dtype is None or _backend.dtype_name(out.dtype) == _backend.dtype_name(dtype):
        return out
    return astype(out, dtype)


def prod(x: Any, /, *, axis: Any = None, dtype: Any = None, keepdims: builtins.bool = False) -> Any:
    """Product over ``axis``; its derivative is exact where elements are zero."""
    x = _as_array(x)
    if dtype is not None:
        x = astype(x, dtype)
    return _in_dtype(_p.prod(x, axis=_normalize_axes(axis, x.ndim), keepdims=keepdims), dtype)


def _reduced_count(x: Any, axes: tuple[int, ...]) -> int:
    return math.prod(x.shape[a] for a in axes)


def mean(x: Any, /, *, axis: Any = None, keepdims: builtins.bool = False) -> Any:
    """Arithmetic mean over ``axis``."""
    x = _as_array(x)
    axes = _normalize_axes(axis, x.ndim)
    return sum(x, axis=axes, keepdims=keepdims) / _reduced_count(x, axes)


def var(x: Any, /, *, axis: Any = None, correction: float = 0.0, keepdims: builtins.bool = False) -> Any:
    """Variance over ``axis`` with ``correction`` degrees of freedom removed."""
    x = _as_array(x)
    axes = _normalize_axes(axis, x.ndim)
    d = x - mean(x, axis=axes, keepdims=True)
    # The standard: NaN where N - correction <= 0 (the division would give -0.0, or a negative
    # variance, there).
    dof = _reduced_count(x, axes) - correction
    return sum(d * d, axis=axes, keepdims=keepdims) / (dof if dof > 0 else math.nan)


def std(x: Any, /, *, axis: Any = None, correction: float = 0.0, keepdims: builtins.bool = False) -> Any:
    """Standard deviation: ``sqrt(var(...))`` (its derivative is infinite where var is 0)."""
    return sqrt(var(x, axis=axis, correction=correction, keepdims=keepdims))


def _chooser(prim: _p.Primitive, name: str) -> Any:
    def fn(x: Any, /, *, axis: Any = None, keepdims: builtins.bool = False) -> Any:
        x = _as_array(x)
        axes = _normalize_axes(axis, x.ndim)
        if builtins.any(x.shape[a] == 0 for a in axes):
            raise ValueError(f"{name}: zero-size reduction along axis {axis} (shape {tuple(x.shape)}) has no identity")
        return prim(x, axis=axes, keepdims=keepdims)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"``{name}`` over ``axis``; ties share the derivative equally (as JAX)."
    return fn


max = _chooser(_p.max_, "max")  # noqa: A001
min = _chooser(_p.min_, "min")  # noqa: A001


def _arg_chooser(prim: _p.Primitive, name: str) -> Any:
    def fn(x: Any, /, *, axis: int | None = None, keepdims: builtins.bool = False) -> Any:
        x = _as_array(x)
        if axis is None:
            out = prim(reshape(x, (-1,)), axis=-1, keepdims=False)
            return reshape(out, (1,) * x.ndim) if keepdims else out
        return prim(x, axis=_normalize_axis(axis, x.ndim), keepdims=keepdims)

    fn.__name__ = fn.__qualname__ = name
    return fn


argmax = _arg_chooser(_p.argmax, "argmax")
argmin = _arg_chooser(_p.argmin, "argmin")


def all(x: Any, /, *, axis: Any = None, keepdims: builtins.bool = False) -> Any:  # noqa: A001
    """True where every element on ``axis`` is true."""
    x = _as_array(x)
    return _p.all_(x, axis=_normalize_axes(axis, x.ndim), keepdims=keepdims)


def any(x: Any, /, *, axis: Any = None, keepdims: builtins.bool = False) -> Any:  # noqa: A001
    """True where some element on ``axis`` is true."""
    x = _as_array(x)
    return _p.any_(x, axis=_normalize_axes(axis, x.ndim), keepdims=keepdims)


def cumulative_sum(
    x: Any, /, *, axis: int | None = None, dtype: Any = None, include_initial: builtins.bool = False
) -> Any:
    """Running sum along ``axis`` (required unless ``x`` is 1-D)."""
    x = _as_array(x)
    if axis is None:
        if x.ndim != 1:
            raise ValueError(f"cumulative_sum: axis is required for a {x.ndim}-d array")
        axis = 0
    if dtype is not None:
        x = astype(x, dtype)
    out = _p.cumulative_sum(x, axis=_normalize_axis(axis, x.ndim), include_initial=include_initial)
    return _in_dtype(out, dtype)


# ---------------------------------------------------------------------------------------------
# Linear algebra
# ---------------------------------------------------------------------------------------------


def matmul(x1: Any, x2: Any, /) -> Any:
    """Matrix product with NumPy's rules for 1-D operands and broadcast stacks.

    >>> import numpy as np
    >>> matmul(np.eye(2), np.asarray([1.0, 2.0])).tolist()
    [1.0, 2.0]
    """
    a, b = _as_array(x1, "x1"), _as_array(x2, "x2")
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(
            f"matmul: operands must have at least 1 dimension, got shapes {tuple(a.shape)} and "
            f"{tuple(b.shape)}; use multiply for scalars"
        )
    vec = (a.ndim == 1, b.ndim == 1)
    k_a = a.shape[-1]
    k_b = b.shape[0] if vec[1] else b.shape[-2]
    if k_a != k_b:
        raise ValueError(
            f"matmul: shapes {tuple(x1.shape)} and {tuple(x2.shape)} do not align ({k_a} != {k_b})"
        )
    _p.broadcast_shapes(tuple(a.shape[:-2]), tuple(b.shape[:-2]))
    return _p.matmul_of(a, b, vec)


def tensordot(x1: Any, x2: Any, /, *, axes: Any = 2) -> Any:
    """Contract ``axes`` of ``x1`` with ``axes`` of ``x2`` (as the array API's tensordot)."""
    a, b = _as_array(x1, "x1"), _as_array(x2, "x2")
    if isinstance(axes, int):
        if axes < 0 or axes > builtins.min(a.ndim, b.ndim):
            raise ValueError(f"tensordot: axes={axes} is out of range for shapes {tuple(a.shape)}, {tuple(b.shape)}")
        a_axes = list(range(a.ndim - axes, a.ndim))
        b_axes = list(range(axes))
    else:
        a_axes = [_normalize_axis(i, a.ndim) + a.ndim for i in axes[0]]
        b_axes = [_normalize_axis(i, b.ndim) + b.ndim for i in axes[1]]
    if len(a_axes) != len(b_axes):
        raise ValueError("tensordot: the two axes sequences must have the same length")
    for i, j in zip(a_axes, b_axes):
        if a.shape[i] != b.shape[j]:
            raise ValueError(
                f"tensordot: axis {i} of x1 (size {a.shape[i]}) does not match axis {j} of x2 (size {b.shape[j]})"
            )
    free_a = [i for i in range(a.ndim) if i not in a_axes]
    free_b = [i for i in range(b.ndim) if i not in b_axes]
    k = math.prod(a.shape[i] for i in a_axes)
    am = reshape(permute_dims(a, tuple(free_a + a_axes)), (math.prod(a.shape[i] for i in free_a), k))
    bm = reshape(permute_dims(b, tuple(b_axes + free_b)), (k, math.prod(b.shape[i] for i in free_b)))
    out = _p.matmul(am, bm)
    return reshape(out, tuple(a.shape[i] for i in free_a) + tuple(b.shape[i] for i in free_b))


def vecdot(x1: Any, x2: Any, /, *, axis: int = -1) -> Any:
    """Dot product along ``axis`` after broadcasting: ``sum(conj(x1) * x2, axis=axis)``."""
    a, b = _operands(x1, x2)
    if _backend.is_complex_dtype(a.dtype):
        a = _p.conj(a)
    shape = _p.broadcast_shapes(tuple(a.shape), tuple(b.shape))
    ax = _normalize_axis(axis, len(shape))
    if a.ndim < -ax or b.ndim < -ax or a.shape[ax] != b.shape[ax]:
        raise ValueError(f"vecdot: x1 {tuple(a.shape)} and x2 {tuple(b.shape)} must both have axis {axis}, of equal size")
    return sum(a * b, axis=ax)


# ---------------------------------------------------------------------------------------------
# Creation (no derivative): the arrays land where the current computation lives
# ---------------------------------------------------------------------------------------------


def asarray(obj: Any, /, *, dtype: Any = None, device: Any = None, copy: Any = None) -> Any:
    """An array from ``obj``; a (nested) list holding traced values is stacked differentiably."""
    if isinstance(obj, Tracer):
        return obj if dtype is None else astype(obj, dtype)
    if _backend.is_array(obj):
        xp = _backend.namespace_of(obj)
        return xp.asarray(obj, dtype=_backend.backend_dtype(xp, dtype), device=device, copy=copy)
    if isinstance(obj, (list, tuple)) and _contains_tracer(obj):
        out = stack([asarray(o) for o in obj])
        return out if dtype is None else astype(out, dtype)
    xp, device = _p.creation_target(device)
    if dtype is None and _all_floats(obj):
        dtype = _backend.default_float(xp, device)
    return xp.asarray(obj, dtype=_backend.backend_dtype(xp, dtype), device=device, copy=copy)


def _contains_tracer(obj: Any) -> builtins.bool:
    if isinstance(obj, Tracer):
        return True
    if isinstance(obj, (list, tuple)):
        return builtins.any(_contains_tracer(o) for o in obj)
    return False


def _all_floats(obj: Any) -> builtins.bool:
    if isinstance(obj, float):
        return True
    if isinstance(obj, (list, tuple)) and obj:
        return builtins.any(_all_floats(o) for o in obj)
    return False


def _creator(name: str) -> Any:
    def fn(shape: Any, *, dtype: Any = None, device: Any = None) -> Any:
        xp, device = _p.creation_target(device)
        return getattr(xp, name)(shape, dtype=_backend.backend_dtype(xp, dtype), device=device)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"``{name}`` of the array API, on the device of the current computation."
    return fn


zeros = _creator("zeros")
ones = _creator("ones")
empty = _creator("empty")


def full(shape: Any, fill_value: Any, *, dtype: Any = None, device: Any = None) -> Any:
    """An array of ``shape`` filled with ``fill_value``."""
    xp, device = _p.creation_target(device)
    return xp.full(shape, fill_value, dtype=_backend.backend_dtype(xp, dtype), device=device)


def _like_creator(name: str) -> Any:
    def fn(x: Any, /, *, dtype: Any = None, device: Any = None) -> Any:
        x = _as_array(x)
        xp, dev = _p.namespace_and_device(x)
        dt = _backend.backend_dtype(xp, dtype if dtype is not None else x.dtype)
        return getattr(xp, name)(tuple(x.shape), dtype=dt, device=device if device is not None else dev)

    fn.__name__ = fn.__qualname__ = name + "_like"
    fn.__doc__ = f"``{name}_like`` (a constant: no derivative flows through it)."
    return fn


zeros_like = _like_creator("zeros")
ones_like = _like_creator("ones")
empty_like = _like_creator("empty")


def full_like(x: Any, /, fill_value: Any, *, dtype: Any = None, device: Any = None) -> Any:
    """An array shaped like ``x`` filled with ``fill_value`` (a constant)."""
    x = _as_array(x)
    xp, dev = _p.namespace_and_device(x)
    dt = _backend.backend_dtype(xp, dtype if dtype is not None else x.dtype)
    return xp.full(tuple(x.shape), fill_value, dtype=dt, device=device if device is not None else dev)


def arange(start: Any, /, stop: Any = None, step: Any = 1, *, dtype: Any = None, device: Any = None) -> Any:
    """Evenly spaced values in [start, stop)."""
    xp, device = _p.creation_target(device)
    return xp.arange(start, stop, step, dtype=_backend.backend_dtype(xp, dtype), device=device)


def linspace(
    start: Any, stop: Any, /, num: int, *, dtype: Any = None, device: Any = None, endpoint: builtins.bool = True
) -> Any:
    """``num`` evenly spaced values from start to stop."""
    xp, device = _p.creation_target(device)
    return xp.linspace(start, stop, num, dtype=_backend.backend_dtype(xp, dtype), device=device, endpoint=endpoint)


def eye(n_rows: int, n_cols: int | None = None, /, *, k: int = 0, dtype: Any = None, device: Any = None) -> Any:
    """Identity-like matrix."""
    xp, device = _p.creation_target(device)
    return xp.eye(n_rows, n_cols, k=k, dtype=_backend.backend_dtype(xp, dtype), device=device)


# ---------------------------------------------------------------------------------------------
# dtype functions
# ---------------------------------------------------------------------------------------------

_KINDS = {
    "bool": {"bool"},
    "signed integer": {"int8", "int16", "int32", "int64"},
    "unsigned integer": {"uint8", "uint16", "uint32", "uint64"},
    "real floating": {"float16", "float32", "float64"},
    "complex floating": {"complex64", "complex128"},
}
_KINDS["integral"] = _KINDS["signed integer"] | _KINDS["unsigned integer"]
_KINDS["numeric"] = _KINDS["integral"] | _KINDS["real floating"] | _KINDS["complex floating"]


# (dtype's type, dtype, kind name) -> answer: asked on every transformed call; a cache, not state.
# The type leads the key so that dtypes of two libraries are never compared with each other.
_ISDTYPE_MEMO: dict[tuple[Any, Any, str], builtins.bool] = {}


def isdtype(dtype: Any, kind: Any) -> builtins.bool:
    """Whether ``dtype`` (of any library) is of ``kind`` (a kind name, a dtype, or a tuple)."""
    if type(kind) is str:
        key = (type(dtype), dtype, kind)
        try:
            return _ISDTYPE_MEMO[key]
        except KeyError:
            answer = _ISDTYPE_MEMO[key] = _isdtype(dtype, kind)
            return answer
        except TypeError:  # an unhashable dtype object
            pass
    return _isdtype(dtype, kind)


def _isdtype(dtype: Any, kind: Any) -> builtins.bool:
    name = _backend.dtype_name(dtype)
    if isinstance(kind, tuple):
        return builtins.any(_isdtype(dtype, k) for k in kind)
    if isinstance(kind, str) and kind in _KINDS:
        return name in _KINDS[kind]
    return name == _backend.dtype_name(kind)


def result_type(*arrays_and_dtypes: Any) -> Any:
    """The dtype NumPy's promotion gives (Python scalars are weak, as in NumPy 2)."""
    return _backend.result_type(*arrays_and_dtypes)


def can_cast(from_: Any, to: Any, /) -> builtins.bool:
    """Whether ``from_`` casts to ``to`` under the standard's safe rules."""
    src = from_.dtype if hasattr(from_, "dtype") else from_
    return _backend.can_cast(src, to)


class finfo_object(_NamedTuple):
    """The standard's finfo: Python numbers, and the dtype as gpuad.numpy names it."""

    bits: int
    eps: float
    max: float
    min: float
    smallest_normal: float
    dtype: Any


class iinfo_object(_NamedTuple):
    """The standard's iinfo: Python ints, and the dtype as gpuad.numpy names it."""

    bits: int
    max: int
    min: int
    dtype: Any


def finfo(type: Any, /) -> finfo_object:  # noqa: A002
    """Machine limits of a floating dtype (or of an array's), as Python floats.

    >>> finfo(float32).eps
    1.1920928955078125e-07
    """
    src = type.dtype if hasattr(type, "dtype") else type
    f = _backend.finfo(src)
    return finfo_object(
        int(f.bits), float(f.eps), float(f.max), float(f.min), float(f.smallest_normal),  # host-ok: machine limits are host numbers
        _backend.named_dtype(_backend.dtype_name(src)),
    )


def iinfo(type: Any, /) -> iinfo_object:  # noqa: A002
    """Machine limits of an integer dtype (or of an array's), as Python ints."""
    src = type.dtype if hasattr(type, "dtype") else type
    i = _backend.iinfo(src)
    return iinfo_object(int(i.bits), int(i.max), int(i.min), _backend.named_dtype(_backend.dtype_name(src)))
