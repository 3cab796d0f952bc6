"""THE table: one entry per primitive, holding how to compute it and how to differentiate it.

An entry holds
  * ``impl(xp, *arrays, **params)``: the computation with the array namespace ``xp`` only;
  * ``jvp``: per input, ``rule(t, ans, *args, **params)`` giving that input's contribution to the
    output tangent (contributions are summed), or one joint ``rule(tangents, ans, *args, **params)``;
  * ``vjp``: per input, ``rule(g, ans, *args, **params)`` giving the cotangent of that input, or one
    joint ``rule(g, ans, *args, **params)`` returning a tuple; ``None`` marks an input (or a whole
    primitive) without derivative;
  * ``reads_part`` (optional): ``rule(ans, *args, **params)`` giving the canonical basic index at
    which the output's cotangent lands in the (otherwise zero) cotangent of input 0, for an op that
    reads a part of its input (getitem). The engine then collects the parts an input receives and
    writes them all into one buffer with ``embed_add``, instead of one zero-filled array per read;
  * ``ufunc`` (optional): the name of the standard function ``impl`` is when called without
    parameters (an elementwise function, or matmul), so that a replay (gpuad.jit) or a buffer
    pool may write its result into a buffer that is no longer used, where the library's function
    takes ``out=`` (NumPy, CuPy);
  * ``standard`` (optional): "unary" or "binary" where ``impl`` is the array API's function of the
    entry's name on one or two arrays (given as ``_UNARY``/``_BINARY``): gpuad.numpy exports the
    entry under that name;
  * ``batch`` (optional): ``rule(vals, batched, bsize, /, **params)`` computing the primitive for a vmap
    batch (batch axis first on the batched values); without it, vmap aligns the operands' ranks and
    calls ``impl``'s primitive again, which every entry here supports;
  * ``residuals``: which values the rules read ("args" for all inputs, an input's position, "ans"
    for the output), so the tape keeps nothing else; an input it does not keep reaches the rules as
    an ``Aval`` (shape, dtype, device only).

Rules are written with the table's own entries (calling an entry applies it, differentiably) and
the whole-shape operations below, so differentiating a derivative needs no second set of rules.
The engine undoes broadcasting, so rules never do.

Conventions that keep one implementation good for batches: every axis parameter is negative and
every shape parameter names only the per-point (logical) dimensions, so extra leading dimensions
(a vmap batch, a block of tangents) pass through each ``impl`` untouched. The rules keep the same
promise: a transform below a vmap sees the batch axis as a real leading axis while the parameters
stay per point, so a rule that passes a per-point parameter on calls the primitive itself (which
works out the leading axes) rather than a whole-shape operation (which would read the parameter
against the full shape).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable

from .backend import NAMESPACE_BY_TYPE, assigns_items, backend_dtype, device_of, namespace_for_device, namespace_of
from .backend import namespace_of_backend, scatter_add, scatter_combine, special_functions
from .backend import default_float, dtype_name, finfo, is_complex_dtype, is_real_float, result_type, scalar_array
from .speedups import empty_in_layout_of, reduce_short_rows, zeros_in_layout_of
from .uniform import Uniform
from .tracing import Aval, PrimalTracer, Tracer, bind, context_namespace, eager  # the dispatcher (it knows traces, not ops); imports nothing of the table

__all__ = ["Primitive", "PRIMITIVES"]

Rule = Callable[..., Any]


@dataclass(frozen=True, eq=False)
class Primitive:
    """One operation of the table. See the module docstring for the meaning of each field."""

    name: str
    impl: Rule
    jvp: tuple[Rule | None, ...] | Rule | None = None
    vjp: tuple[Rule | None, ...] | Rule | None = None
    residuals: tuple[str | int, ...] = ("args", "ans")
    reads_part: Rule | None = None
    batch: Rule | None = None
    ufunc: str | None = None
    standard: str | None = None  # _UNARY/_BINARY: the array API's function of this name (see below)
    fresh: bool = False  # its results are new memory, never views of its operands (a compiled kernel)

    def __post_init__(self) -> None:
        # Precomputed so the tape decides what to keep with two attribute reads per operation.
        object.__setattr__(self, "keeps_ans", "ans" in self.residuals)
        object.__setattr__(self, "keeps_all_args", "args" in self.residuals)
        object.__setattr__(self, "kept_args", frozenset(r for r in self.residuals if isinstance(r, int)))

    def __repr__(self) -> str:
        return f"Primitive({self.name})"

    def __call__(self, *args: Any, **params: Any) -> Any:
        """Apply the entry (what rules and gpuad.numpy do). A Python number among the operands is
        a weak scalar (a 0-d array of a floating operand's dtype) and a Uniform its view, so a
        rule writes ``where(c, g, 0)``."""
        for a in args:
            if not isinstance(a, Tracer) and type(a) not in NAMESPACE_BY_TYPE:
                args = _operands(args)
                break
        return bind(self, *args, **params)


_TABLE: dict[str, Primitive] = {}


def _add(prim: Primitive) -> Primitive:
    if prim.name in _TABLE:
        raise RuntimeError(f"primitive {prim.name} defined twice")  # a bug in this file
    _TABLE[prim.name] = prim
    return prim


# An entry's impl given as _UNARY or _BINARY is the array API's function of the entry's name, on
# one or two arrays: the entry *is* that standard function, so gpuad.numpy exports it under the
# name (tests/test_spec_coverage.py checks), and a differentiable one may write into a given buffer
# through the library's ``out=`` (its ``ufunc``).
_UNARY, _BINARY = "unary", "binary"


def _standard_impl(name: str, kind: str) -> Rule:
    if kind == _UNARY:
        return lambda xp, x: getattr(xp, name)(x)
    return lambda xp, x, y: getattr(xp, name)(x, y)


def _elementwise(name: str, impl: Rule | str, *linear: Rule | None, residuals=("args", "ans")) -> Primitive:
    """An elementwise op: its Jacobian is diagonal, so one rule per input serves both modes."""
    rules = tuple(linear)
    if isinstance(impl, str):  # _UNARY or _BINARY: the standard function of this name
        return _add(Primitive(name, _standard_impl(name, impl), jvp=rules, vjp=rules, residuals=residuals, ufunc=name, standard=impl))
    return _add(Primitive(name, impl, jvp=rules, vjp=rules, residuals=residuals))


def _nondiff(name: str, impl: Rule | str) -> Primitive:
    """An op with zero (or no) derivative: comparisons, rounding, index results."""
    if isinstance(impl, str):
        return _add(Primitive(name, _standard_impl(name, impl), residuals=(), standard=impl))
    return _add(Primitive(name, impl, residuals=()))


# Binary operations between two arrays inside rules go through these, never through operators: the
# operands may sit at different levels (a raw array and a traced value), and not every library's
# array hands an unknown right operand back to Python (array_api_strict raises instead). They also
# know the symbolic Uniform cotangent (see uniform.py): multiplying by a Uniform 1 is free.
def mul(a: Any, b: Any) -> Any:
    # The common cases without the namespace's conversions: two traced values, or two plain arrays.
    if a is not b:
        if isinstance(a, Tracer):
            if isinstance(b, Tracer):
                return bind(multiply, a, b)
        elif type(a) in NAMESPACE_BY_TYPE and type(b) in NAMESPACE_BY_TYPE and not isinstance(b, Tracer):
            return eager(multiply, (a, b), {})
    if type(a) is Uniform:
        return _scaled(b, a)
    if type(b) is Uniform:
        return _scaled(a, b)
    return square(a) if a is b and isinstance(a, Tracer) else multiply(a, b)


def div(a: Any, b: Any) -> Any:
    if type(b) is Uniform:
        return _scaled(a, b.like(1.0 / b.value)) if type(a) is not Uniform else a.like(a.value / b.value)
    if type(a) is Uniform:
        if isinstance(b, (int, float)) and not isinstance(b, bool):
            return a.like(a.value / b)
        if b.dtype != a.dtype:
            dt = result_type(b.dtype, a.dtype)
            if b.dtype != dt:
                b = cast(b, dt)
        if a.value == 1:  # 1 / b (log's rule under grad): no scalar to turn into an array
            return _fit(reciprocal(b), a)
        return _fit(divide(a.value, b), a)  # value / b: one operation instead of two
    return divide(a, b)


def neg(x: Any) -> Any:
    """``-x``; a Uniform stays symbolic (of the opposite value)."""
    return x.like(-x.value) if type(x) is Uniform else negative(x)


def plus(a: Any, b: Any) -> Any:
    if isinstance(a, Tracer) and isinstance(b, Tracer):
        return bind(add, a, b)
    if type(a) is Uniform and type(b) is Uniform and a.shape == b.shape and a.dtype == b.dtype:
        return a.like(a.value + b.value)
    return add(a, b)


def minus(a: Any, b: Any) -> Any:
    if isinstance(a, Tracer) and isinstance(b, Tracer):
        return bind(subtract, a, b)
    if type(a) is Uniform and type(b) is Uniform and a.shape == b.shape and a.dtype == b.dtype:
        return a.like(a.value - b.value)
    return subtract(a, b)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


# ---------------------------------------------------------------------------------------------
# Array operations on whole shapes, for the rules, the engines and gpuad.numpy (which checks the
# user's arguments first): the table's entries with their no-op cases skipped and a Uniform kept
# symbolic where the result is one.
# ---------------------------------------------------------------------------------------------


def namespace_and_device(x: Any) -> tuple[Any, Any]:
    """``(xp, device)`` of a traced value or a plain array."""
    if isinstance(x, Tracer):
        v = x
        while isinstance(v, PrimalTracer):
            v = v.primal
        if isinstance(v, Tracer) or type(v) in NAMESPACE_BY_TYPE and NAMESPACE_BY_TYPE[type(v)] is x._trace.xp:
            return x._trace.xp, x.device
        # A value of another library than its trace's: a vmap over a Dask batch inside a gradient
        # with respect to in-memory parameters (gpuad/dask_batches.py) gives Dask values.
        return namespace_of(v), device_of(v)
    return namespace_of(x), device_of(x)


def scalar_like(value: Any, like: Any) -> Any:
    """A Python scalar as a 0-d array next to ``like``, weakly typed as in NumPy 2 and the
    standard: it takes the array's dtype when its kind fits."""
    xp, device = namespace_and_device(like)
    dtype = like.dtype
    if isinstance(value, complex):  # complex of the array's precision (complex128 beside integers)
        if not is_complex_dtype(dtype):
            dtype = xp.complex64 if dtype_name(dtype) == "float32" else xp.complex128
    elif isinstance(value, float) and not (is_real_float(dtype) or is_complex_dtype(dtype)):
        dtype = default_float(xp, device)
    elif isinstance(value, int) and not isinstance(value, bool) and dtype_name(dtype) == "bool":
        dtype = None
    elif not isinstance(value, (bool, int, float)):
        raise TypeError(f"unsupported scalar {value!r} of type {type(value).__name__}")
    return scalar_array(xp, value, dtype, device)


def creation_target(device: Any = None) -> tuple[Any, Any]:
    """Namespace and device for an array made from nothing: the innermost transform's when no
    device is given or it is that transform's device (``"cpu"`` names NumPy's and Dask's alike),
    else the given device's library, else the default backend."""
    ctx = context_namespace()
    if ctx is not None and (device is None or device is ctx[1] or _same_device(device, ctx[1])):
        return ctx[0], ctx[1] if device is None else device
    xp = namespace_for_device(device)
    if xp is not None:
        return xp, device
    if ctx is not None:
        return ctx[0], device
    return namespace_of_backend(None), device


def _same_device(a: Any, b: Any) -> bool:
    try:
        return bool(type(a) is type(b) and a == b)
    except Exception:  # devices of libraries that refuse the comparison
        return False


def lone_scalar(value: Any) -> Any:
    """A Python scalar with no array beside it as a 0-d array where the computation lives (a float
    in the default floating dtype)."""
    xp, device = creation_target(None)
    if isinstance(value, float):
        return xp.asarray(value, dtype=default_float(xp, device), device=device)
    return xp.asarray(value, device=device)


def _floating(dtype: Any) -> bool:
    return is_real_float(dtype) or is_complex_dtype(dtype)


_PYTHON_SCALARS = (bool, int, float, complex)  # exactly these types: NumPy's scalars are arrays here


def _operands(args: tuple[Any, ...]) -> tuple[Any, ...]:
    args = tuple(a.view() if type(a) is Uniform else a for a in args)
    arrays = [a for a in args if type(a) not in _PYTHON_SCALARS]
    like = next((a for a in arrays if _floating(a.dtype)), arrays[0] if arrays else None)
    if like is None:
        return args
    return tuple(scalar_like(a, like) if type(a) in _PYTHON_SCALARS else a for a in args)


def filled_like(x: Any, value: float) -> Any:
    """A constant array of ``x``'s shape, dtype and device (a value, or the tape's Aval of one)."""
    xp, device = (x.xp, x.device) if isinstance(x, Aval) else namespace_and_device(x)
    return xp.full(tuple(x.shape), value, dtype=x.dtype, device=device)


def broadcast_shapes(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    """The broadcast of several shapes (ValueError naming them when they do not broadcast)."""
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(-ndim, 0):
        size = 1
        for s in shapes:
            d = s[i] if -i <= len(s) else 1
            if d != 1:
                if size != 1 and d != size:
                    raise ValueError("shapes " + ", ".join(str(tuple(s)) for s in shapes) + " cannot be broadcast together")
                size = d
        out.append(size)
    return tuple(out)


def reshaped(x: Any, shape: tuple[int, ...]) -> Any:
    if type(x) is Uniform:
        return x.like(shape=tuple(shape))
    if tuple(shape) == tuple(x.shape):
        return x
    return reshape(x, shape=tuple(shape), in_ndim=x.ndim)


def broadcasted(x: Any, shape: tuple[int, ...]) -> Any:
    if type(x) is Uniform:
        return x.like(shape=tuple(shape))
    if tuple(shape) == tuple(x.shape):
        return x
    return broadcast_to(x, shape=tuple(shape), in_ndim=x.ndim)


def permuted(x: Any, axes: tuple[int, ...]) -> Any:
    if tuple(axes) == tuple(range(x.ndim)) and isinstance(x, Tracer):
        return x
    return permute_dims(x, axes=tuple(axes))


def axis_moved(x: Any, source: int, destination: int) -> Any:
    """``x`` with axis ``source`` moved to position ``destination`` (as the standard's moveaxis)."""
    order = list(range(x.ndim))
    order.insert(destination % x.ndim, order.pop(source % x.ndim))
    return permuted(x, tuple(order))


def transposed(x: Any) -> Any:
    """The matrix transpose (the last two axes swapped)."""
    n = x.ndim
    return permute_dims(x, axes=tuple(range(n - 2)) + (n - 1, n - 2))


def with_axis(x: Any, axis: int) -> Any:
    """``x`` with a new size-1 axis at the negative position ``axis`` of the result."""
    shape = list(x.shape)
    shape.insert(len(shape) + axis + 1, 1)
    return reshaped(x, tuple(shape))


def summed(x: Any, axis: tuple[int, ...], keepdims: bool = False) -> Any:
    """Sum over ``axis`` (distinct negative axes, sorted)."""
    if type(x) is Uniform:
        kept = tuple(1 if i - x.ndim in axis else d for i, d in enumerate(x.shape))
        shape = kept if keepdims else tuple(d for i, d in enumerate(x.shape) if i - x.ndim not in axis)
        return x.like(x.value * math.prod(x.shape[a] for a in axis), shape=shape)
    return sum_(x, axis=tuple(axis), keepdims=keepdims)


def cast(x: Any, dtype: Any) -> Any:
    """``x`` in ``dtype``: differentiable between floating dtypes (complex to real keeps the real
    part: the cotangent of a real value used in complex arithmetic, as JAX), no derivative otherwise."""
    if type(x) is Uniform and _floating(dtype):
        value = x.value.real if isinstance(x.value, complex) and is_real_float(dtype) else x.value
        return x.like(value, dtype=backend_dtype(x.xp, dtype))
    if dtype_name(dtype) == dtype_name(x.dtype) and isinstance(x, Tracer):
        return x
    if is_complex_dtype(x.dtype) and is_real_float(dtype):
        x = real(x)
        if dtype_name(dtype) == dtype_name(x.dtype):
            return x
    if _floating(dtype) and _floating(x.dtype):
        return astype(x, dtype=dtype)
    return convert(x, dtype=dtype)


# A Uniform's arithmetic (see uniform.py): a number scales the constant, anything else goes
# through the helpers above.
Uniform.__mul__ = Uniform.__rmul__ = lambda u, o: u.like(u.value * o) if _is_number(o) else mul(u, o)  # type: ignore[method-assign]
Uniform.__truediv__ = lambda u, o: u.like(u.value / o) if _is_number(o) else div(u, o)  # type: ignore[attr-defined]
Uniform.__rtruediv__ = lambda u, o: div(o, u)  # type: ignore[attr-defined]
Uniform.__add__ = Uniform.__radd__ = lambda u, o: plus(u, o)  # type: ignore[attr-defined]
Uniform.__sub__ = lambda u, o: minus(u, o)  # type: ignore[attr-defined]
Uniform.__rsub__ = lambda u, o: minus(o, u)  # type: ignore[attr-defined]


def _scaled(x: Any, u: Uniform) -> Any:
    """``x * u``: ``x`` itself when u is 1, else one scaling; in the product's dtype and shape."""
    if type(x) is Uniform:
        return x.like(x.value * u.value, broadcast_shapes(x.shape, u.shape), result_type(x.dtype, u.dtype))
    if isinstance(x, (int, float, complex)) and not isinstance(x, bool):
        if isinstance(x, complex) and not is_complex_dtype(u.dtype):
            return u.like(u.value * x, dtype=scalar_like(x, u.view()).dtype)
        return u.like(u.value * x)
    if x.dtype != u.dtype:  # promote before scaling, so a float32 operand loses nothing
        dt = result_type(x.dtype, u.dtype)
        if x.dtype != dt:
            x = cast(x, dt)
    v = u.value
    if v == -1:
        x = negative(x)
    elif v != 1:
        x = multiply(x, v)
    return _fit(x, u)


def _fit(x: Any, u: Uniform) -> Any:
    """``x`` combined with Uniform ``u`` has the broadcast shape of both: where ``u`` is larger,
    multiply by its (view of) ones, which makes a fresh array rather than a view of ``x``."""
    if tuple(x.shape) == u.shape or len(x.shape) > len(u.shape) and tuple(x.shape[len(x.shape) - len(u.shape):]) == u.shape:
        return x
    shape = broadcast_shapes(tuple(x.shape), u.shape)
    if shape == tuple(x.shape):
        return x
    return multiply(x, u.like(1.0, dtype=x.dtype).view())


_LN2 = math.log(2.0)
_LN10 = math.log(10.0)

# ---------------------------------------------------------------------------------------------
# Unary elementwise. The rule maps an incoming tangent/cotangent ``g`` through d(ans)/dx.
# Forms follow JAX's rules so that NaN/inf behaviour at singular points matches.
# ---------------------------------------------------------------------------------------------

negative = _elementwise("negative", _UNARY, lambda g, ans, x: neg(g), residuals=())
def _where_zero_to_one(x: Any) -> Any:
    return where(x == 0, 1, x)


def _abs_jvp(t: Any, ans: Any, x: Any) -> Any:
    if is_complex_dtype(x.dtype):  # d|z| = Re(conj(z) dz) / |z| (0 at z = 0, as JAX)
        return real(div(mul(t, conj(x)), _where_zero_to_one(cast(abs_(x), x.dtype))))
    return where(x >= 0, t, -t)


def _abs_vjp(g: Any, ans: Any, x: Any) -> Any:
    if is_complex_dtype(x.dtype):  # the transpose of the JVP: g conj(z) / |z|, a complex cotangent
        return div(mul(cast(g, x.dtype), conj(x)), _where_zero_to_one(cast(abs_(x), x.dtype)))
    return where(x >= 0, g, -g)


abs_ = _add(Primitive("abs", _standard_impl("abs", _UNARY), jvp=(_abs_jvp,), vjp=(_abs_vjp,), residuals=("args",), ufunc="abs", standard=_UNARY))
# Complex parts. JAX's conventions: a VJP is the transpose of the JVP under the pairing Re(a b)
# (no conjugation), so real's is the cotangent itself, imag's -1j times it, conj's its conjugate.
# On a real array, real and conj are the array and imag is zeros (the standard's numeric inputs).
real = _add(Primitive(
    "real", lambda xp, x: xp.real(x) if is_complex_dtype(x.dtype) else x,
    jvp=(lambda t, ans, x: real(t),), vjp=(lambda g, ans, x: g,), residuals=(), standard=_UNARY,
))
imag = _add(Primitive(
    "imag", lambda xp, x: xp.imag(x) if is_complex_dtype(x.dtype) else xp.zeros_like(x),
    jvp=(lambda t, ans, x: imag(t),),
    vjp=(lambda g, ans, x: mul(cast(g, x.dtype), -1j) if is_complex_dtype(x.dtype) else None,), residuals=(), standard=_UNARY,
))
conj = _add(Primitive(
    "conj", lambda xp, x: xp.conj(x) if is_complex_dtype(x.dtype) else x,
    jvp=(lambda t, ans, x: conj(t),), vjp=(lambda g, ans, x: conj(g),), residuals=(), standard=_UNARY,
))
exp = _elementwise("exp", _UNARY, lambda g, ans, x: mul(g, ans), residuals=("ans",))
expm1 = _elementwise("expm1", _UNARY, lambda g, ans, x: mul(g, ans + 1), residuals=("ans",))
log = _elementwise("log", _UNARY, lambda g, ans, x: div(g, x), residuals=("args",))
log1p = _elementwise("log1p", _UNARY, lambda g, ans, x: div(g, x + 1), residuals=("args",))
log2 = _elementwise("log2", _UNARY, lambda g, ans, x: div(g, x * _LN2), residuals=("args",))
log10 = _elementwise("log10", _UNARY, lambda g, ans, x: div(g, x * _LN10), residuals=("args",))
sqrt = _elementwise("sqrt", _UNARY, lambda g, ans, x: mul(g, 0.5 / ans), residuals=("ans",))
square = _elementwise("square", _UNARY, lambda g, ans, x: mul(g, 2 * x), residuals=("args",))
reciprocal = _elementwise(
    "reciprocal", _UNARY, lambda g, ans, x: neg(mul(g, ans * ans)), residuals=("ans",)
)
sin = _elementwise("sin", _UNARY, lambda g, ans, x: mul(g, cos(x)), residuals=("args",))
cos = _elementwise("cos", _UNARY, lambda g, ans, x: neg(mul(g, sin(x))), residuals=("args",))
tan = _elementwise("tan", _UNARY, lambda g, ans, x: mul(g, 1 + ans * ans), residuals=("ans",))
asin = _elementwise("asin", _UNARY, lambda g, ans, x: div(g, sqrt(1 - x * x)), residuals=("args",))
acos = _elementwise("acos", _UNARY, lambda g, ans, x: neg(div(g, sqrt(1 - x * x))), residuals=("args",))
atan = _elementwise("atan", _UNARY, lambda g, ans, x: div(g, 1 + x * x), residuals=("args",))
sinh = _elementwise("sinh", _UNARY, lambda g, ans, x: mul(g, cosh(x)), residuals=("args",))
cosh = _elementwise("cosh", _UNARY, lambda g, ans, x: mul(g, sinh(x)), residuals=("args",))
# (1 + a)(1 - a) rather than 1 - a*a: exact where tanh saturates near +-1.
tanh = _elementwise(
    "tanh", _UNARY, lambda g, ans, x: mul(g, (1 + ans) * (1 - ans)), residuals=("ans",)
)
asinh = _elementwise(
    "asinh", _UNARY, lambda g, ans, x: div(g, sqrt(x * x + 1)), residuals=("args",)
)
acosh = _elementwise(
    "acosh", _UNARY, lambda g, ans, x: div(g, sqrt((x - 1) * (x + 1))), residuals=("args",)
)
atanh = _elementwise(
    "atanh", _UNARY, lambda g, ans, x: div(g, (1 + x) * (1 - x)), residuals=("args",)
)


def _logistic_impl(xp: Any, x: Any) -> Any:
    # exp(-|x|) never overflows, and each branch keeps full relative precision in its own tail.
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


logistic = _elementwise("logistic", _logistic_impl, lambda g, ans, x: mul(g, ans * (1 - ans)), residuals=("ans",))
# JAX's jax.nn.relu: max(x, 0), so relu(nan) is nan, with derivative 0 at 0 (and at nan) by a
# choice rather than a product, so an inf derivative where x <= 0 gives 0. One pass forward,
# where a where(x > 0, x, 0) takes two.
relu = _elementwise(
    "relu", lambda xp, x: xp.maximum(x, 0), lambda g, ans, x: where(ans > 0, g, 0), residuals=("ans",)
)


def _integer_pow_impl(xp: Any, x: Any, *, n: int) -> Any:
    # Small integer powers by multiplication: exact like JAX's integer_pow, and far cheaper than pow.
    if n == 0:
        return xp.ones_like(x)
    if n == 1:
        return x
    if n == 2:
        return x * x
    if n == 3:
        return x * x * x
    if n == -1:
        return 1 / x
    if n == -2:
        return 1 / (x * x)
    return xp.pow(x, xp.asarray(float(n), dtype=x.dtype, device=device_of(x)))  # host-ok: n is a Python int parameter


def _integer_pow_rule(g: Any, ans: Any, x: Any, *, n: int) -> Any:
    if n == 0:
        return None  # x**0 is constant
    if n == 1:
        return g
    if n == 2:
        return mul(g, 2 * x)
    return mul(g, n * integer_pow(x, n=n - 1))


integer_pow = _elementwise("integer_pow", _integer_pow_impl, _integer_pow_rule, residuals=("args",))

# Zero-derivative elementwise ops (JAX gives 0 for these).
sign = _nondiff("sign", _UNARY)
floor = _nondiff("floor", _UNARY)
ceil = _nondiff("ceil", _UNARY)
round_ = _nondiff("round", _UNARY)
trunc = _nondiff("trunc", _UNARY)
isnan = _nondiff("isnan", _UNARY)
isinf = _nondiff("isinf", _UNARY)
isfinite = _nondiff("isfinite", _UNARY)
signbit = _nondiff("signbit", _UNARY)
logical_not = _nondiff("logical_not", _UNARY)
stop_gradient = _nondiff("stop_gradient", lambda xp, x: x)

# ---------------------------------------------------------------------------------------------
# Binary elementwise (the engine sums each cotangent back to its input's shape)
# ---------------------------------------------------------------------------------------------

add = _elementwise("add", _BINARY, lambda g, ans, x, y: g, lambda g, ans, x, y: g, residuals=())
subtract = _elementwise(
    "subtract", _BINARY, lambda g, ans, x, y: g, lambda g, ans, x, y: neg(g), residuals=()
)
multiply = _elementwise(
    "multiply",
    _BINARY,
    lambda g, ans, x, y: mul(g, y),
    lambda g, ans, x, y: mul(g, x),
    residuals=("args",),
)
divide = _elementwise(
    "divide",
    _BINARY,
    lambda g, ans, x, y: div(g, y),
    lambda g, ans, x, y: neg(div(mul(g, ans), y)),
)


pow_ = _elementwise(
    "pow",
    _BINARY,
    lambda g, ans, x, y: mul(g, mul(y, pow_(x, y - 1))),
    # log(0) is replaced by log(1) = 0, as JAX does, so 0**y has a finite y-derivative.
    lambda g, ans, x, y: mul(g, mul(log(_where_zero_to_one(x)), ans)),
)


def _balanced(g: Any, ans: Any, mine: Any, other: Any) -> Any:
    # JAX's rule: g times a share (1 where this input is the result, 0.5 at a tie, else 0), a
    # product rather than a choice, so that an inf or NaN derivative of the input not chosen
    # gives NaN in forward mode as it does in reverse mode (where the 0 meets it in that
    # input's own rule), as in JAX.
    half = scalar_like(0.5, ans)
    share = where(equal(other, ans), half, 1.0)
    return mul(g, where(equal(mine, ans), share, 0.0))


maximum = _elementwise(
    "maximum",
    _BINARY,
    lambda g, ans, x, y: _balanced(g, ans, x, y),
    lambda g, ans, x, y: _balanced(g, ans, y, x),
)
minimum = _elementwise(
    "minimum",
    _BINARY,
    lambda g, ans, x, y: _balanced(g, ans, x, y),
    lambda g, ans, x, y: _balanced(g, ans, y, x),
)
atan2 = _elementwise(
    "atan2",
    _BINARY,
    lambda g, ans, x, y: div(mul(g, y), plus(x * x, y * y)),
    lambda g, ans, x, y: neg(div(mul(g, x), plus(x * x, y * y))),
    residuals=("args",),
)


def _hypot_share(ans: Any, mine: Any) -> Any:
    # mine / ans, and 0.5 at hypot(0, 0) where JAX's max/min form shares a tie (not 0/0 = NaN);
    # the guarded divisor keeps the second derivative there 0 (as JAX's), not NaN.
    zero = equal(ans, 0)
    return where(zero, 0.5, div(mine, where(zero, 1.0, ans)))


hypot = _elementwise(
    "hypot",
    _BINARY,
    lambda g, ans, x, y: mul(g, _hypot_share(ans, x)),
    lambda g, ans, x, y: mul(g, _hypot_share(ans, y)),
)


def _posinf_to_zero(x: Any) -> Any:
    return where(x == math.inf, 0, x)


def _logaddexp_impl(xp: Any, x: Any, y: Any) -> Any:
    # max + log1p(exp(-|x - y|)): no overflow; NaN delta means equal infinities (or a NaN input).
    amax = xp.maximum(x, y)
    delta = x - y
    return xp.where(xp.isnan(delta), x + y, amax + xp.log1p(xp.exp(-xp.abs(delta))))


logaddexp = _elementwise(
    "logaddexp",
    _logaddexp_impl,
    lambda g, ans, x, y: mul(g, exp(minus(_posinf_to_zero(x), _posinf_to_zero(ans)))),
    lambda g, ans, x, y: mul(g, exp(minus(_posinf_to_zero(y), _posinf_to_zero(ans)))),
)


def _floor_quotient(ans: Any, x: Any, y: Any) -> Any:
    # floor(x / y), except where x / y is 0 but the remainder is not x (y infinite, or x / y too
    # small to be a float, with x and y of opposite signs): the result is x + y there, so the
    # quotient is -1, as JAX has it (its remainder adds y to fmod's result).
    q = floor(div(x, y))
    return where(logical_and(equal(q, 0), not_equal(ans, x)), -1.0, q)


remainder = _elementwise(
    "remainder",
    _BINARY,
    lambda g, ans, x, y: g,
    lambda g, ans, x, y: neg(mul(g, _floor_quotient(ans, x, y))),
)

equal = _nondiff("equal", _BINARY)
not_equal = _nondiff("not_equal", _BINARY)
less = _nondiff("less", _BINARY)
less_equal = _nondiff("less_equal", _BINARY)
greater = _nondiff("greater", _BINARY)
greater_equal = _nondiff("greater_equal", _BINARY)
logical_and = _nondiff("logical_and", _BINARY)
logical_or = _nondiff("logical_or", _BINARY)
logical_xor = _nondiff("logical_xor", _BINARY)
floor_divide = _nondiff("floor_divide", _BINARY)

# where(cond, x, y): not NaN-safe, as in JAX: the cotangent of the branch not taken is an exact 0,
# but a NaN produced by that branch's own rules still multiplies it.
where = _elementwise(
    "where",
    lambda xp, c, x, y: xp.where(c, x, y),
    None,
    lambda g, ans, c, x, y: where(c, g, 0),
    lambda g, ans, c, x, y: where(c, 0, g),
    residuals=(0,),
)

# ---------------------------------------------------------------------------------------------
# dtype conversion
# ---------------------------------------------------------------------------------------------

astype = _add(
    Primitive(
        "astype",
        lambda xp, x, *, dtype: xp.astype(x, backend_dtype(xp, dtype)),
        jvp=(lambda t, ans, x, *, dtype: cast(t, dtype),),
        vjp=(lambda g, ans, x, *, dtype: cast(g, x.dtype),),
        residuals=(),
    )
)
# Conversion to an integer or boolean dtype: no derivative.
convert = _nondiff("convert", lambda xp, x, *, dtype: xp.astype(x, backend_dtype(xp, dtype)))

# ---------------------------------------------------------------------------------------------
# Reductions. ``axis`` is a tuple of negative axes; ``keepdims`` as in the standard.
# ---------------------------------------------------------------------------------------------


def _kept_shape(shape: tuple[int, ...], axis: tuple[int, ...]) -> tuple[int, ...]:
    n = len(shape)
    return tuple(1 if (i - n) in axis else d for i, d in enumerate(shape))


def _expand_to_input(v: Any, x: Any, axis: tuple[int, ...], keepdims: bool) -> Any:
    """A reduced value reshaped so it broadcasts against the unreduced input ``x``."""
    return v if keepdims else reshaped(v, _kept_shape(x.shape, axis))


def _sum_vjp(g: Any, ans: Any, x: Any, *, axis: tuple[int, ...], keepdims: bool) -> Any:
    return broadcasted(_expand_to_input(g, x, axis, keepdims), x.shape)


def _reduce(xp: Any, op: str, x: Any, axis: tuple[int, ...], keepdims: bool) -> Any:
    out = reduce_short_rows(xp, op, x, axis, keepdims)  # a faster form for few elements per row
    return getattr(xp, op)(x, axis=axis, keepdims=keepdims) if out is None else out


sum_ = _add(
    Primitive(
        "sum",
        lambda xp, x, *, axis, keepdims: _reduce(xp, "sum", x, axis, keepdims),
        jvp=(lambda t, ans, x, *, axis, keepdims: summed(t, axis=axis, keepdims=keepdims),),
        vjp=(_sum_vjp,),
        residuals=(),
    )
)


def _hits(ans: Any, x: Any, axis: tuple[int, ...], keepdims: bool) -> tuple[Any, Any]:
    """Where x attains its max/min (ones), and how many places tie per reduced element (kept
    axes): ties share the derivative equally, as in JAX."""
    hits = cast(equal(x, _expand_to_input(ans, x, axis, keepdims)), x.dtype)
    return hits, summed(hits, axis=axis, keepdims=True)


def _chosen(ans: Any, x: Any, axis: tuple[int, ...], keepdims: bool) -> Any:
    hits, count = _hits(ans, x, axis, keepdims)
    return div(hits, count)


def _chooser(name: str, reduce: str) -> Primitive:
    def jvp(t: Any, ans: Any, x: Any, *, axis: tuple[int, ...], keepdims: bool) -> Any:
        return summed(mul(t, _chosen(ans, x, axis, keepdims)), axis=axis, keepdims=keepdims)

    def vjp(g: Any, ans: Any, x: Any, *, axis: tuple[int, ...], keepdims: bool) -> Any:
        # The share g / count is worked out on the reduced shape, then spread over the hits.
        hits, count = _hits(ans, x, axis, keepdims)
        return mul(hits, div(_expand_to_input(g, x, axis, keepdims), count))

    return _add(
        Primitive(
            name,
            lambda xp, x, *, axis, keepdims: _reduce(xp, reduce, x, axis, keepdims),
            jvp=(jvp,),
            vjp=(vjp,),
        )
    )


max_ = _chooser("max", "max")
min_ = _chooser("min", "min")


def _exclusive_cumprod(x: Any) -> Any:
    """Products of the elements before each position along the last axis (1 at the first), by a
    log-depth scan of multiplications, so that it differentiates like any other composite."""
    n = x.shape[-1]
    y = concat(filled_like(_slice_along(x, -1, 0, 1), 1), _slice_along(x, -1, 0, n - 1), axis=-1)
    shift = 1
    while shift < n:
        ones = filled_like(_slice_along(y, -1, 0, shift), 1)
        y = mul(y, concat(ones, _slice_along(y, -1, 0, n - shift), axis=-1))
        shift *= 2
    return y


def _prod_of_others(x: Any, axis: tuple[int, ...]) -> Any:
    """For each element, the product of the other elements on the reduced axes; exact with zeros
    (no division) and differentiable again (built from cumulative products)."""
    n = x.ndim
    kept = [i for i in range(n) if (i - n) not in axis]
    red = [i for i in range(n) if (i - n) in axis]
    moved = permuted(x, tuple(kept + red))
    # The reduced size spelled out, not -1: a reshape cannot infer it where a kept axis has size 0.
    flat_shape = tuple(x.shape[i] for i in kept) + (math.prod(x.shape[i] for i in red),)
    flat = reshaped(moved, flat_shape)
    left = _exclusive_cumprod(flat)
    right = flip(_exclusive_cumprod(flip(flat, axis=(-1,))), axis=(-1,))
    others = reshaped(mul(left, right), moved.shape)
    inverse = [0] * n
    for pos, src in enumerate(kept + red):
        inverse[src] = pos
    return permuted(others, tuple(inverse))


prod = _add(
    Primitive(
        "prod",
        lambda xp, x, *, axis, keepdims: xp.prod(x, axis=axis, keepdims=keepdims),
        jvp=(
            lambda t, ans, x, *, axis, keepdims: summed(
                mul(t, _prod_of_others(x, axis)), axis=axis, keepdims=keepdims
            ),
        ),
        vjp=(
            lambda g, ans, x, *, axis, keepdims: mul(
                _expand_to_input(g, x, axis, keepdims), _prod_of_others(x, axis)
            ),
        ),
        residuals=("args",),
    )
)


def _cumsum_vjp(g: Any, ans: Any, x: Any, *, axis: int, include_initial: bool) -> Any:
    if include_initial:
        g = _slice_along(g, axis, 1, None)
    backward = cumulative_sum(flip(g, axis=(axis,)), axis=axis, include_initial=False)
    return flip(backward, axis=(axis,))


cumulative_sum = _add(
    Primitive(
        "cumulative_sum",
        lambda xp, x, *, axis, include_initial: xp.cumulative_sum(x, axis=axis, include_initial=include_initial),
        jvp=(
            lambda t, ans, x, *, axis, include_initial: cumulative_sum(
                t, axis=axis, include_initial=include_initial
            ),
        ),
        vjp=(_cumsum_vjp,),
        residuals=(),
    )
)

argmax = _nondiff("argmax", lambda xp, x, *, axis, keepdims: xp.argmax(x, axis=axis, keepdims=keepdims))
argmin = _nondiff("argmin", lambda xp, x, *, axis, keepdims: xp.argmin(x, axis=axis, keepdims=keepdims))
all_ = _nondiff("all", lambda xp, x, *, axis, keepdims: xp.all(x, axis=axis, keepdims=keepdims))
any_ = _nondiff("any", lambda xp, x, *, axis, keepdims: xp.any(x, axis=axis, keepdims=keepdims))

# ---------------------------------------------------------------------------------------------
# Linear algebra: matmul with NumPy's semantics per point. ``vec=(va, vb)`` says which operand is a
# vector (per point 1-D) and is only passed when one is: the plain product of (stacks of) matrices
# takes no parameters, so that its impl is exactly the library's matmul (gpuad.jit and the buffer
# pool write its result with ``out=``). With vectors, leading axes must not turn a vector into a
# matrix, so the impl gives each vector its axis explicitly.
# ---------------------------------------------------------------------------------------------


def _matmul_impl(xp: Any, a: Any, b: Any, *, vec: tuple[bool, bool] = (False, False)) -> Any:
    va, vb = vec
    if va and not vb and b.ndim == 2:  # rows (..., k) times a shared (k, n): one product
        return xp.matmul(a, b)
    if vb and not va and a.ndim == 2:  # a shared (m, k) times columns (..., k): rows times a^T
        return xp.matmul(b, xp.matrix_transpose(a))
    if va:
        a = xp.expand_dims(a, axis=-2)
    if vb:
        b = xp.expand_dims(b, axis=-1)
    out = xp.matmul(a, b)
    if vb:
        out = out[..., 0]
    if va:
        out = out[..., 0, :] if not vb else out[..., 0]
    return out


def matmul_of(a: Any, b: Any, vec: tuple[bool, bool]) -> Any:
    """The matmul primitive, with ``vec`` passed only where an operand is a vector."""
    return matmul(a, b, vec=vec) if vec[0] or vec[1] else matmul(a, b)


def _outer(u: Any, v: Any) -> Any:
    """u[..., :, None] * v[..., None, :] per point."""
    return mul(with_axis(u, -1), with_axis(v, -2))


def _matmul_vjp_a(g: Any, ans: Any, a: Any, b: Any, *, vec: tuple[bool, bool] = (False, False)) -> Any:
    va, vb = vec
    if va and vb:  # a . b: g is a number per point
        return mul(with_axis(g, -1), b)
    if vb:  # (m, k) @ (k,): g is (..., m)
        return _outer(g, b)
    return matmul_of(g, transposed(b), (va, False))


def _matmul_vjp_b(g: Any, ans: Any, a: Any, b: Any, *, vec: tuple[bool, bool] = (False, False)) -> Any:
    va, vb = vec
    if va and vb:
        return mul(with_axis(g, -1), a)
    if va:  # (k,) @ (k, n): g is (..., n)
        return _outer(a, g)
    return matmul_of(transposed(a), g, (False, vb))


def _matmul_batch(vals: list[Any], batched: tuple[bool, ...], bsize: int, /, *, vec: tuple[bool, bool] = (False, False)) -> Any:
    """One big matrix product instead of a stack of small ones where a side is shared: per-point
    rows times a shared matrix merge the batch into the rows; a shared matrix times per-point
    columns goes through the transposes. Both per point: NumPy's stacked product."""
    a, b = vals
    va, vb = vec
    if (va or vb) and batched[0] != batched[1] and (b.ndim == 2 if batched[0] else a.ndim == 2):
        if va and batched[0] and not vb:  # per-point vectors times a shared matrix: one product
            return matmul(a, b)
        if vb and batched[1] and not va:  # a shared matrix times per-point vectors
            return matmul(b, transposed(a))
    if va or vb:
        # Give each vector its matrix axis at this level, line the batch axes up, and multiply
        # the stacks; then drop the axes again.
        if va:
            a = reshaped(a, tuple(a.shape[:-1]) + (1, a.shape[-1]))
        if vb:
            b = reshaped(b, tuple(b.shape) + (1,))
        out = _matmul_batch([a, b], batched, bsize)
        if va and vb:
            return reshaped(out, tuple(out.shape[:-2]))
        if vb:
            return reshaped(out, tuple(out.shape[:-1]))
        return reshaped(out, tuple(out.shape[:-2]) + tuple(out.shape[-1:]))
    if batched[0] and not batched[1] and b.ndim == 2:
        rows = 1
        for d in a.shape[:-1]:
            rows *= d
        out = matmul(reshaped(a, (rows, a.shape[-1])), b)
        return reshaped(out, tuple(a.shape[:-1]) + (b.shape[-1],))
    if batched[1] and not batched[0] and a.ndim == 2:
        k, n = b.shape[-2], b.shape[-1]
        lead = tuple(b.shape[:-2])
        bt = transposed(b) if n != 1 else reshaped(b, lead + (1, k))
        cols = 1
        for d in lead:
            cols *= d
        out = matmul(reshaped(bt, (cols * n, k)), transposed(a))  # (cols * n, m)
        out = reshaped(out, lead + (n, a.shape[0]))
        return transposed(out) if n != 1 else reshaped(out, lead + (a.shape[0], 1))
    return matmul(*align_ranks(vals, batched))


matmul = _add(
    Primitive(
        "matmul",
        _matmul_impl,
        jvp=(
            lambda t, ans, a, b, **params: matmul(t, b, **params),
            lambda t, ans, a, b, **params: matmul(a, t, **params),
        ),
        vjp=(_matmul_vjp_a, _matmul_vjp_b),
        residuals=("args",),
        batch=_matmul_batch,
        ufunc="matmul",  # when called without ``vec``: see above
    )
)

# ---------------------------------------------------------------------------------------------
# Structure. Shapes are per-point; ``lead`` is how many extra leading axes the operand carries.
# ---------------------------------------------------------------------------------------------


def _reshape_impl(xp: Any, x: Any, *, shape: tuple[int, ...], in_ndim: int) -> Any:
    lead = x.ndim - in_ndim
    return xp.reshape(x, tuple(x.shape[:lead]) + shape)


reshape = _add(
    Primitive(
        "reshape",
        _reshape_impl,
        jvp=(lambda t, ans, x, *, shape, in_ndim: reshape(t, shape=shape, in_ndim=in_ndim),),
        vjp=(lambda g, ans, x, *, shape, in_ndim: reshaped(g, x.shape),),
        residuals=(),
    )
)


def _permute_impl(xp: Any, x: Any, *, axes: tuple[int, ...]) -> Any:
    lead = x.ndim - len(axes)
    return xp.permute_dims(x, tuple(range(lead)) + tuple(lead + a for a in axes))


def _inverse_permutation(axes: tuple[int, ...]) -> tuple[int, ...]:
    inverse = [0] * len(axes)
    for pos, src in enumerate(axes):
        inverse[src] = pos
    return tuple(inverse)


permute_dims = _add(
    Primitive(
        "permute_dims",
        _permute_impl,
        jvp=(lambda t, ans, x, *, axes: permute_dims(t, axes=axes),),
        vjp=(lambda g, ans, x, *, axes: permute_dims(g, axes=_inverse_permutation(axes)),),
        residuals=(),
    )
)


def _broadcast_impl(xp: Any, x: Any, *, shape: tuple[int, ...], in_ndim: int) -> Any:
    lead = x.ndim - in_ndim
    front = tuple(x.shape[:lead])
    if in_ndim < len(shape):  # new logical axes go between the leading axes and the point's axes
        x = xp.reshape(x, front + (1,) * (len(shape) - in_ndim) + tuple(x.shape[lead:]))
    return xp.broadcast_to(x, front + shape)


def _broadcast_vjp(g: Any, ans: Any, x: Any, *, shape: tuple[int, ...], in_ndim: int) -> Any:
    # New per-point axes sit right after the leading axes (not in front, as NumPy would put
    # them), so the sum back to x's shape is done here rather than by the engine.
    lead = g.ndim - len(shape)
    new = len(shape) - in_ndim
    point = tuple(x.shape[len(x.shape) - in_ndim :])
    axes = [lead + i for i in range(new)]
    axes += [lead + new + i for i, d in enumerate(point) if d == 1 and shape[new + i] != 1]
    if not axes:
        return g
    return reshaped(summed(g, axis=tuple(a - g.ndim for a in axes), keepdims=True), tuple(x.shape))


broadcast_to = _add(
    Primitive(
        "broadcast_to",
        _broadcast_impl,
        jvp=(lambda t, ans, x, *, shape, in_ndim: broadcast_to(t, shape=shape, in_ndim=in_ndim),),
        vjp=(_broadcast_vjp,),
        residuals=(),
    )
)

flip = _add(
    Primitive(
        "flip",
        lambda xp, x, *, axis: xp.flip(x, axis=axis),
        jvp=(lambda t, ans, x, *, axis: flip(t, axis=axis),),
        vjp=(lambda g, ans, x, *, axis: flip(g, axis=axis),),
        residuals=(),
    )
)


def _concat_jvp(tangents: tuple[Any, ...], ans: Any, *xs: Any, axis: int) -> Any:
    parts = [filled_like(x, 0) if t is None else t for t, x in zip(tangents, xs)]
    return concat(*parts, axis=axis)


def _concat_vjp(g: Any, ans: Any, *xs: Any, axis: int) -> tuple[Any, ...]:
    out = []
    start = 0
    for x in xs:
        stop = start + x.shape[axis]
        out.append(_slice_along(g, axis, start, stop))
        start = stop
    return tuple(out)


def _batched(v: Any, batched: bool, size: int) -> Any:
    """``v`` with a batch axis in front: repeated over the batch (a view) when it has none."""
    return v if batched else broadcasted(v, (size,) + tuple(v.shape))


def _concat_batch(vals: list[Any], batched: tuple[bool, ...], bsize: int, /, *, axis: int) -> Any:
    # concat does not broadcast: every operand needs the batch axis.
    return concat(*[_batched(v, b, bsize) for v, b in zip(vals, batched)], axis=axis)


concat = _add(
    Primitive(
        "concat",
        lambda xp, *xs, axis: xp.concat(xs, axis=axis),
        jvp=_concat_jvp,
        vjp=_concat_vjp,
        residuals=(),
        batch=_concat_batch,
    )
)


def _index_ndim(index: tuple[Any, ...]) -> int:
    """Per-point rank of ``x[index]`` for a canonical basic index (Ellipsis first, then one item
    per axis of x, plus ``None`` for new axes)."""
    return sum(1 for item in index[1:] if item is None or isinstance(item, slice))


def _slice_along(x: Any, axis: int, start: int | None, stop: int | None) -> Any:
    """``x[..., start:stop, ...]`` on one (negative) axis, as a differentiable getitem."""
    items = [slice(None)] * x.ndim
    items[axis] = slice(start, stop)
    return getitem(x, index=(Ellipsis, *items))


def _embed_impl(xp: Any, g: Any, *, index: tuple[Any, ...], shape: tuple[int, ...]) -> Any:
    """Zeros of ``shape`` with ``g`` written at ``index``: the transpose of basic indexing."""
    lead = g.ndim - _index_ndim(index)
    g, key = _assignable(xp, g, index, lead)
    if not assigns_items(g):
        return _placed(xp, g, key, lead, shape)
    out = xp.zeros(tuple(g.shape[:lead]) + shape, dtype=g.dtype, device=device_of(g))
    out[key] = g
    return out


def _placed(xp: Any, g: Any, key: tuple[Any, ...], lead: int, shape: tuple[int, ...]) -> Any:
    """Zeros of ``shape`` (after ``lead`` leading axes) with ``g`` at the assignment ``key``, built
    without item assignment (for immutable arrays, JAX's): axis by axis, ``g`` with a slab of zeros
    appended is taken at the position each element of the axis comes from (the slab where none)."""
    device = device_of(g)
    for k, item in enumerate(key[1:]):
        axis, d = lead + k, shape[k]
        if isinstance(item, slice):
            start, stop, step = item.indices(d)
            n = len(range(start, stop, step))
        else:
            g = xp.expand_dims(g, axis=axis)
            start, step, n = item % d, 1, 1
        if (start, step, n) == (0, 1, d):
            continue
        offset = xp.arange(d, device=device) - start
        source = offset // step
        hit = (offset % step == 0) & (source >= 0) & (source < n)
        slab = list(g.shape)
        slab[axis] = 1
        padded = xp.concat([g, xp.zeros(tuple(slab), dtype=g.dtype, device=device)], axis=axis)
        g = xp.take(padded, xp.where(hit, source, n), axis=axis)
    return g


def _point_shape(x: Any, index: tuple[Any, ...]) -> tuple[int, ...]:
    """The per-point shape of the array indexed by the canonical ``index`` (one item per axis)."""
    n = sum(1 for item in index[1:] if item is not None)
    return tuple(x.shape[len(x.shape) - n :])


getitem = _add(
    Primitive(
        "getitem",
        lambda xp, x, *, index: x[index],
        jvp=(lambda t, ans, x, *, index: getitem(t, index=index),),
        vjp=(lambda g, ans, x, *, index: embed(g, index=index, shape=_point_shape(x, index)),),
        residuals=(),
        reads_part=lambda ans, x, *, index: index,
    )
)
embed = _add(
    Primitive(
        "embed",
        _embed_impl,
        jvp=(lambda t, ans, g, *, index, shape: embed(t, index=index, shape=shape),),
        vjp=(lambda c, ans, g, *, index, shape: getitem(c, index=index),),
        residuals=(),
    )
)


def _assignable(xp: Any, g: Any, index: tuple[Any, ...], lead: int) -> tuple[Any, tuple[Any, ...]]:
    """``g`` and the key that writes it at ``index``: assignment takes no new axes, so they are
    dropped from the index, and their size-1 axes from ``g``."""
    axis_items = [item for item in index[1:] if not isinstance(item, int)]
    if None in axis_items:
        kept = [d for d, item in zip(g.shape[lead:], axis_items) if item is not None]
        g = xp.reshape(g, tuple(g.shape[:lead]) + tuple(kept))
    return g, (Ellipsis, *[item for item in index[1:] if item is not None])


def _region(index: tuple[Any, ...], shape: tuple[int, ...]) -> tuple[int | None, ...] | None:
    """The elements a canonical basic ``index`` reads from a per-point ``shape``, when it is made of
    integers and whole-axis slices: per axis the integer (made non-negative) or None (the whole
    axis). None for any other index (a partial or strided slice)."""
    items = [item for item in index[1:] if item is not None]
    if len(items) != len(shape):
        return None
    region = []
    for item, d in zip(items, shape):
        if isinstance(item, slice):
            if item.indices(d) != (0, d, 1):
                return None
            region.append(None)
        else:
            region.append(item % d)
    return tuple(region)


_EMBED_PLAN_MIN_ELEMENTS = 1 << 15  # below this, working out the places costs more than it saves


def _embed_add_impl(xp: Any, *arrays: Any, indices: tuple[Any, ...], shape: tuple[int, ...], has_base: bool) -> Any:
    """``base`` (the first array, when ``has_base``) plus each piece ``g_i`` added at ``indices[i]``
    into zeros of ``shape``: the cotangent of an array read by several getitems, in one buffer."""
    pieces = arrays[1:] if has_base else arrays
    first = pieces[0]
    lead = first.ndim - _index_ndim(indices[0])
    full = tuple(first.shape[:lead]) + tuple(shape)
    if not assigns_items(first):
        out = arrays[0] if has_base else None
        for g, index in zip(pieces, indices):
            g_lead = g.ndim - _index_ndim(index)
            g, key = _assignable(xp, g, index, g_lead)
            g = _placed(xp, g, key, g_lead, shape)
            out = g if out is None else out + g
        return out
    if not has_base and math.prod(full) >= _EMBED_PLAN_MIN_ELEMENTS:
        out = _embed_places(xp, pieces, indices, shape, full, lead)
        if out is not None:
            return out
    if has_base and tuple(arrays[0].shape) == full:
        out = xp.asarray(arrays[0], copy=True)
    else:
        out = zeros_in_layout_of(xp, full, first)
        if has_base:
            out += arrays[0]
    for g, index in zip(pieces, indices):
        g, key = _assignable(xp, g, index, lead)
        out[key] += g  # a basic index never repeats an element, so += is exact
    return out


def _slices_key(indices: tuple[Any, ...]) -> Any:
    """A hashable form of canonical basic indices (slices are not hashable before Python 3.12)."""
    return tuple(tuple((it.start, it.stop, it.step) if isinstance(it, slice) else (it,) for it in index[1:]) for index in indices)


@functools.lru_cache(maxsize=512)
def _tiling(key: Any, shape: tuple[int, ...]) -> tuple[int, tuple[int, ...]] | None:
    """``(axis, order)`` when the places (``_slices_key``) are unit-step slices of one axis, whole
    along every other, that cover it exactly once in ``order``; else None."""
    axis, spans = None, []
    for items in key:
        if len(items) != len(shape) or any(len(it) != 3 for it in items):
            return None  # an integer, or a new axis
        cut = [k for k, (it, d) in enumerate(zip(items, shape)) if slice(*it).indices(d) != (0, d, 1)]
        if len(cut) != 1 or (axis is not None and cut[0] != axis):
            return None
        axis = cut[0]
        start, stop, step = slice(*items[axis]).indices(shape[axis])
        if step != 1:
            return None
        spans.append((start, stop))
    order = sorted(range(len(spans)), key=spans.__getitem__)
    end = 0
    for i in order:
        if spans[i][0] != end or spans[i][1] <= end:
            return None
        end = spans[i][1]
    return (axis - len(shape), tuple(order)) if axis is not None and end == shape[axis] else None


def _embed_places(xp: Any, pieces: tuple[Any, ...], indices: tuple[Any, ...], shape: tuple[int, ...], full: tuple[int, ...], lead: int) -> Any:
    """``_embed_add_impl`` without a base where the places cannot overlap unless they are equal
    (integers and whole axes, the integers on the same axes), else None. The first piece at each
    place is assigned rather than added, into an uninitialised buffer where the places cover it
    all (``x[..., 0]`` and ``x[..., 1]`` of a per-point shape (2,)), as a hand-written derivative
    fills its columns: no pass to zero the buffer, and it is read only where a place has several
    pieces."""
    regions = [_region(index, shape) for index in indices]
    if None in regions:
        return None
    distinct = set(regions)
    whole_axes = {tuple(item is None for item in region) for region in distinct}
    if len(whole_axes) != 1:
        return None
    picked = [d for d, whole in zip(shape, next(iter(whole_axes))) if not whole]
    covers = len(distinct) == math.prod(picked)
    out = (empty_in_layout_of if covers else zeros_in_layout_of)(xp, full, pieces[0])
    written = set()
    for g, index, region in zip(pieces, indices, regions):
        g, key = _assignable(xp, g, index, lead)
        if region in written:
            out[key] += g
        else:
            out[key] = g
            written.add(region)
    return out


def _embed_add_jvp(tangents: tuple[Any, ...], ans: Any, *arrays: Any, indices, shape, has_base) -> Any:
    base = tangents[0] if has_base else None
    parts = [(t, i) for t, i in zip(tangents[1:] if has_base else tangents, indices) if t is not None]
    if not parts:
        return base
    head = [] if base is None else [base]
    return embed_add(*head, *[t for t, _ in parts], indices=tuple(i for _, i in parts), shape=shape, has_base=base is not None)


def _embed_add_vjp(g: Any, ans: Any, *arrays: Any, indices, shape, has_base) -> tuple[Any, ...]:
    return ((g,) if has_base else ()) + tuple(getitem(g, index=i) for i in indices)


def _embed_add_batch(vals: list[Any], batched: tuple[bool, ...], bsize: int, /, **params: Any) -> Any:
    # Every operand gets the batch axis, so that the pieces and the buffer line up.
    return embed_add(*[_batched(v, b, bsize) for v, b in zip(vals, batched)], **params)


embed_add = _add(
    Primitive(
        "embed_add",
        _embed_add_impl,
        jvp=_embed_add_jvp,
        vjp=_embed_add_vjp,
        residuals=(),
        batch=_embed_add_batch,
    )
)


def _put_add_impl(xp: Any, g: Any, index: Any, *, axis: int, size: int) -> Any:
    """Zeros with ``size`` along ``axis`` into which ``g`` is added at ``index`` (repeats add up):
    the transpose of ``take``."""
    shape = list(g.shape)
    shape[axis] = size
    out = xp.zeros(tuple(shape), dtype=g.dtype, device=device_of(g))
    return scatter_add(xp, out, axis, index, g)


def _merge_with_batch(x: Any, axis: int) -> tuple[Any, tuple[int, ...], tuple[int, ...]]:
    """Batched ``x`` (batch axis 0) with its ``axis`` moved next to the batch axis and merged with
    it, so that per-point indices become indices into one axis. Returns the merged array, the
    permutation used and the shape of the remaining axes."""
    pos = x.ndim + axis
    perm = (0, pos) + tuple(i for i in range(1, x.ndim) if i != pos)
    moved = permuted(x, perm)
    rest = tuple(moved.shape[2:])
    return reshaped(moved, (moved.shape[0] * moved.shape[1],) + rest), perm, rest


def _split_from_batch(flat: Any, size: int, perm: tuple[int, ...], rest: tuple[int, ...]) -> Any:
    out = reshaped(flat, (size, -1) + rest)
    return permuted(out, _inverse_permutation(perm))


def _offset_indices(index: Any, bsize: int, n: int) -> Any:
    """Per-point indices (batch axis 0) into a merged (batch * n) axis, flattened."""
    xp, device = namespace_and_device(index)
    offsets = xp.arange(bsize, dtype=index.dtype, device=device) * n
    return reshaped(plus(index, reshaped(offsets, (bsize,) + (1,) * (index.ndim - 1))), (-1,))


def _take_batch(vals: list[Any], batched: tuple[bool, ...], bsize: int, /, *, axis: int) -> Any:
    x, index = vals
    if not batched[1]:
        return take(x, index, axis=axis)  # the batch axis leads and passes through
    x = _batched(x, batched[0], bsize)
    n = x.shape[axis]
    flat, perm, rest = _merge_with_batch(x, axis)
    got = take(flat, _offset_indices(index, bsize, n), axis=-len(rest) - 1)
    return _split_from_batch(got, bsize, perm, rest)


def _scatter_batch(prim_name: str) -> Rule:
    """The batch rule of a scatter along one axis (put_add, put_mul): with per-point indices, the
    batch axis and the scattered axis merge into one, indexed by offset per point."""

    def batch(vals: list[Any], batched: tuple[bool, ...], bsize: int, /, *, axis: int, size: int) -> Any:
        prim = PRIMITIVES[prim_name]
        v, index = vals
        if not batched[1]:
            return prim(v, index, axis=axis, size=size)
        v = _batched(v, batched[0], bsize)
        flat, perm, rest = _merge_with_batch(v, axis)
        out = prim(flat, _offset_indices(index, bsize, size), axis=-len(rest) - 1, size=bsize * size)
        return _split_from_batch(out, bsize, perm, rest)

    return batch


take = _add(
    Primitive(
        "take",
        lambda xp, x, index, *, axis: xp.take(x, index, axis=axis),
        jvp=(lambda t, ans, x, index, *, axis: take(t, index, axis=axis), None),
        vjp=(lambda g, ans, x, index, *, axis: put_add(g, index, axis=axis, size=x.shape[axis]), None),
        residuals=(1,),
        batch=_take_batch,
    )
)
put_add = _add(
    Primitive(
        "put_add",
        _put_add_impl,
        jvp=(lambda t, ans, g, index, *, axis, size: put_add(t, index, axis=axis, size=size), None),
        vjp=(lambda c, ans, g, index, *, axis, size: take(c, index, axis=axis), None),
        residuals=(1,),
        batch=_scatter_batch("put_add"),
    )
)

# ---------------------------------------------------------------------------------------------
# Functional updates (gpuad.numpy.at: x.at[idx].set(v), .add, .multiply, .min, .max): a basic
# part replaced (set_part), and updates combined along one axis at integer positions by min, max
# (put_min, put_max: base included) or product (put_mul, into ones). Adding along an axis is
# put_add; a scatter-set is a composite of put_max (the last update wins) and take.
# ---------------------------------------------------------------------------------------------

def _part_shape(index: tuple[Any, ...], point: tuple[int, ...]) -> tuple[int, ...]:
    """The per-point shape of ``x[index]`` for a canonical basic ``index`` and x's per-point shape."""
    out, k = [], 0
    for item in index[1:]:
        if item is None:
            out.append(1)
            continue
        if isinstance(item, slice):
            out.append(len(range(*item.indices(point[k]))))
        k += 1
    return tuple(out)


def _set_part_impl(xp: Any, x: Any, v: Any, *, index: tuple[Any, ...]) -> Any:
    """A copy of ``x`` with ``v`` (broadcast to ``x[index]``) written at the basic ``index``."""
    point = _point_shape(x, index)
    part = _part_shape(index, point)
    if v.ndim < len(part):
        v = xp.broadcast_to(v, part)
    v_lead = v.ndim - len(part)
    lead = broadcast_shapes(tuple(x.shape[: x.ndim - len(point)]), tuple(v.shape[:v_lead]))
    v, key = _assignable(xp, v, index, v_lead)
    if not assigns_items(x):  # immutable arrays (JAX's): select between x and v placed in zeros
        mask = _placed(xp, xp.ones(tuple(v.shape), dtype=xp.bool, device=device_of(v)), key, v_lead, point)
        return xp.where(mask, _placed(xp, v, key, v_lead, point), x)
    out = xp.asarray(xp.broadcast_to(x, lead + point), copy=True)
    out[key] = v
    return out


def _set_part_jvp(tangents: tuple[Any, ...], ans: Any, x: Any, v: Any, *, index: tuple[Any, ...]) -> Any:
    tx, tv = tangents
    if tv is None:
        return set_part(tx, 0.0, index=index)
    if tx is None:
        return embed(tv, index=index, shape=_point_shape(x, index))
    return set_part(tx, tv, index=index)


def _set_part_batch(vals: list[Any], batched: tuple[bool, ...], bsize: int, /, *, index: tuple[Any, ...]) -> Any:
    # A batched v (of x[index]'s full per-point rank) needs x batched too; an unbatched v (a
    # per-point array or a scalar) broadcasts into a batched x as it is.
    x, v = vals
    if batched[1]:
        x = _batched(x, batched[0], bsize)
    return set_part(x, v, index=index)


set_part = _add(
    Primitive(
        "set_part",
        _set_part_impl,
        jvp=_set_part_jvp,
        vjp=(
            lambda g, ans, x, v, *, index: set_part(g, 0.0, index=index),
            lambda g, ans, x, v, *, index: getitem(g, index=index),
        ),
        residuals=(),
        batch=_set_part_batch,
    )
)


def _common_lead(x: Any, v: Any, axis: int) -> tuple[Any, Any]:
    """``x`` and ``v`` broadcast to the same leading axes (those before the per-point ``axis``)."""
    lx, lv = tuple(x.shape[: x.ndim + axis]), tuple(v.shape[: v.ndim + axis])
    if lx == lv:
        return x, v
    lead = broadcast_shapes(lx, lv)
    return broadcasted(x, lead + tuple(x.shape[x.ndim + axis :])), broadcasted(v, lead + tuple(v.shape[v.ndim + axis :]))


def _along_batched_index(prim: Primitive, x: Any, v: Any, index: Any, bsize: int, axis: int, **params: Any) -> Any:
    """``prim(x, v, index)`` with a per-point ``index`` (batch axis 0 on all three): the batch axis
    merged with ``axis``, the indices offset into the merged axis."""
    x, v = _common_lead(x, v, axis)
    n = x.shape[axis]
    flat_x, perm, rest = _merge_with_batch(x, axis)
    flat_v = _merge_with_batch(v, axis)[0]
    out = prim(flat_x, flat_v, _offset_indices(index, bsize, n), axis=-len(rest) - 1, **params)
    return _split_from_batch(out, bsize, perm, rest)


def _put_extremal(how: str) -> Primitive:
    """``x`` with the updates ``v`` combined in by ``how`` ("min"/"max") at ``index`` along
    ``axis``, repeats included. As in JAX, the derivative goes to every element (of x and of v)
    equal to the result, shared equally among them."""

    def impl(xp: Any, x: Any, v: Any, index: Any, *, axis: int) -> Any:
        lead = broadcast_shapes(tuple(x.shape[: x.ndim + axis]), tuple(v.shape[: v.ndim + axis]))
        out = xp.asarray(xp.broadcast_to(x, lead + tuple(x.shape[x.ndim + axis :])), copy=True)
        return scatter_combine(xp, out, axis, index, v, how)

    def winners(ans: Any, x: Any, v: Any, index: Any, axis: int) -> tuple[Any, Any, Any]:
        n = x.shape[axis]
        hit_x = cast(equal(x, ans), ans.dtype)
        hit_v = cast(equal(v, take(ans, index, axis=axis)), ans.dtype)
        count = plus(hit_x, put_add(hit_v, index, axis=axis, size=n))
        return hit_x, hit_v, count

    def jvp(tangents: tuple[Any, ...], ans: Any, x: Any, v: Any, index: Any, *, axis: int) -> Any:
        tx, tv, _ = tangents
        hit_x, hit_v, count = winners(ans, x, v, index, axis)
        parts = []
        if tx is not None:
            parts.append(mul(tx, hit_x))
        if tv is not None:
            parts.append(put_add(mul(tv, hit_v), index, axis=axis, size=x.shape[axis]))
        total = parts[0] if len(parts) == 1 else plus(parts[0], parts[1])
        return div(total, count)

    def vjp(g: Any, ans: Any, x: Any, v: Any, index: Any, *, axis: int) -> tuple[Any, ...]:
        hit_x, hit_v, count = winners(ans, x, v, index, axis)
        share = div(g, count)
        return mul(share, hit_x), mul(take(share, index, axis=axis), hit_v), None

    def batch(vals: list[Any], batched: tuple[bool, ...], bsize: int, /, *, axis: int) -> Any:
        x, v, index = vals
        if not batched[2]:
            return prim(x, v, index, axis=axis)  # impl broadcasts the leading axes of x and v
        return _along_batched_index(prim, _batched(x, batched[0], bsize), _batched(v, batched[1], bsize), index, bsize, axis)

    prim = _add(Primitive(f"put_{how}", impl, jvp=jvp, vjp=vjp, batch=batch))
    return prim


put_min = _put_extremal("min")
put_max = _put_extremal("max")


def _put_mul_impl(xp: Any, v: Any, index: Any, *, axis: int, size: int) -> Any:
    """Ones with ``size`` along ``axis``, multiplied by ``v`` at ``index`` (repeats multiply)."""
    shape = list(v.shape)
    shape[axis] = size
    out = xp.ones(tuple(shape), dtype=v.dtype, device=device_of(v))
    return scatter_combine(xp, out, axis, index, v, "multiply")


def _product_of_others(v: Any, index: Any, axis: int, size: int) -> Any:
    """Per update, the product of the other updates at its position (its partial derivative),
    without dividing by zero: the product of the nonzero updates there, divided by the update
    itself where it is nonzero, times the product of the zero updates there (1 where none, so its
    own derivative reaches a lone zero update); for a zero update, the product of the nonzero ones
    where it is the only zero there, else 0. Exact in value; its derivative too, except between
    two updates that are both exactly zero at one position (there it is 0)."""
    zero = equal(v, 0.0)
    safe = where(zero, 1.0, v)
    nonzero_product = take(put_mul(safe, index, axis=axis, size=size), index, axis=axis)
    zero_product = take(put_mul(where(zero, v, 1.0), index, axis=axis, size=size), index, axis=axis)
    zeros_at = take(put_add(cast(zero, v.dtype), index, axis=axis, size=size), index, axis=axis)
    lone_zero = where(equal(zeros_at, 1.0), nonzero_product, 0.0)
    return where(zero, lone_zero, mul(div(nonzero_product, safe), zero_product))


put_mul = _add(
    Primitive(
        "put_mul",
        _put_mul_impl,
        jvp=(lambda t, ans, v, index, *, axis, size: put_add(mul(t, _product_of_others(v, index, axis, size)), index, axis=axis, size=size), None),
        vjp=(lambda g, ans, v, index, *, axis, size: mul(take(g, index, axis=axis), _product_of_others(v, index, axis, size)), None),
        residuals=("args",),
        batch=_scatter_batch("put_mul"),
    )
)

# The array API standard's remaining functions (issue 22): sorting, searching, copysign,
# nextafter and the bitwise functions. sort is gpuad.numpy's composite take_along_axis(x,
# argsort(x)), so its derivative is the gather by the argsort permutation.
# ---------------------------------------------------------------------------------------------

argsort = _nondiff(
    "argsort",
    lambda xp, x, *, axis, descending, stable: xp.argsort(x, axis=axis, descending=descending, stable=stable),
)


def _index_dtype(x: Any) -> Any:
    """The library's default indexing dtype where ``x`` lives (int64, or int32 without int64)."""
    xp, device = namespace_and_device(x)
    try:
        return xp.__array_namespace_info__().default_dtypes(device=device)["indexing"]
    except Exception:  # libraries without the inspection API  # noqa: BLE001
        return xp.int64


def _sorted_before(a: Any, v: Any, side: str) -> Any:
    """Whether the sorted element ``a`` lies before the insertion point of ``v`` (NaN sorts last,
    as the libraries sort it)."""
    if side == "left":
        return logical_or(less(a, v), logical_and(isnan(v), logical_not(isnan(a))))
    return logical_or(less_equal(a, v), isnan(v))


def _searchsorted_batch(vals: list[Any], batched: tuple[bool, ...], bsize: int, /, *, side: str) -> Any:
    x1, x2 = vals
    if not batched[0]:
        return searchsorted(x1, x2, side=side)  # one sorted array: x2's batch axis passes through
    # One sorted row per point: count the row's elements before each value (the libraries'
    # searchsorted takes a single 1-D array).
    x2 = _batched(x2, batched[1], bsize)
    row = reshaped(x1, (bsize,) + (1,) * (x2.ndim - 1) + (x1.shape[-1],))
    before = _sorted_before(row, with_axis(x2, -1), side)
    return summed(convert(before, dtype=_index_dtype(x1)), (-1,))


searchsorted = _add(
    Primitive(
        "searchsorted",
        lambda xp, x1, x2, *, side: xp.searchsorted(x1, x2, side=side),
        residuals=(),
        batch=_searchsorted_batch,
    )
)

# copysign(x1, x2) = |x1| with the sign of x2, differentiated as JAX's where(signbit(x2), -|x1|,
# |x1|): d/dx1 is +-1 (abs'(0) = 1, as JAX's), x2 only chooses a sign.
copysign = _elementwise(
    "copysign",
    _BINARY,
    lambda g, ans, x, y: where(equal(greater_equal(x, 0), signbit(y)), neg(g), g),
    None,
    residuals=("args",),
)
nextafter = _nondiff("nextafter", _BINARY)  # no derivative, as in JAX
bitwise_and = _nondiff("bitwise_and", lambda xp, x, y: xp.bitwise_and(x, y))
bitwise_or = _nondiff("bitwise_or", lambda xp, x, y: xp.bitwise_or(x, y))
bitwise_xor = _nondiff("bitwise_xor", lambda xp, x, y: xp.bitwise_xor(x, y))
bitwise_left_shift = _nondiff("bitwise_left_shift", lambda xp, x, y: xp.bitwise_left_shift(x, y))
bitwise_right_shift = _nondiff("bitwise_right_shift", lambda xp, x, y: xp.bitwise_right_shift(x, y))
bitwise_invert = _nondiff("bitwise_invert", lambda xp, x: xp.bitwise_invert(x))

# ---------------------------------------------------------------------------------------------
# Special functions (gpuad.scipy.special, issue 23), differentiated as JAX differentiates them
# (jax.lax's rules; values at poles and infinities as JAX's, tests/test_special.py). Those without
# an array-API form are computed by the array library's own module of special functions (SciPy
# for NumPy, cupyx.scipy.special for CuPy: backend.special_functions); xlogy, xlog1py and logit
# with ``xp`` alone, so they run on every library. ndtr and expit are gpuad.scipy.special's
# composites of these and logistic.
# ---------------------------------------------------------------------------------------------

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_HALF_SQRT_PI = 0.5 * math.sqrt(math.pi)
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _computed(xp: Any, function: str, *args: Any) -> Any:
    """``function`` of the library's special-function module, in the dtype of its last argument
    (SciPy computes some float32 inputs in float64)."""
    out = getattr(special_functions(xp, function), function)(*args)
    x = args[-1]
    return out if out.dtype == x.dtype else xp.astype(out, x.dtype)


def _filled(xp: Any, x: Any, value: float) -> Any:
    return xp.asarray(value, dtype=x.dtype, device=device_of(x))


def _at_poles(xp: Any, x: Any) -> Any:
    """Where the gamma function has a pole: 0, the negative integers and -inf."""
    return xp.logical_and(x <= 0, x == xp.floor(x))


def _special_unary(name: str) -> Rule:
    return lambda xp, x: _computed(xp, name, x)


def _gammaln_impl(xp: Any, x: Any) -> Any:
    # SciPy gives -inf at -inf; JAX (like every pole) inf.
    return xp.where(x == -math.inf, _filled(xp, x, math.inf), _computed(xp, "gammaln", x))


def _digamma_impl(xp: Any, x: Any) -> Any:
    # NaN at the poles as JAX (SciPy: -inf at +0, inf at -0), where the sign of the infinity
    # depends on the side one comes from.
    return xp.where(_at_poles(xp, x), _filled(xp, x, math.nan), _computed(xp, "digamma", x))


def _polygamma_impl(xp: Any, n: Any, x: Any) -> Any:
    # At the poles psi^(n) ~ (-1)^(n+1) n! / x^(n+1): +inf for odd n, NaN for even n (the sign
    # depends on the side), as JAX gives them (SciPy: -inf for even n >= 2).
    odd = xp.remainder(n, 2) == 1
    at_pole = xp.where(odd, _filled(xp, x, math.inf), _filled(xp, x, math.nan))
    return xp.where(_at_poles(xp, x), at_pole, _computed(xp, "polygamma", n, x))


def _xlogy_impl(xp: Any, x: Any, y: Any) -> Any:
    # x * log(y), and 0 where x is 0 (unless y is NaN), as SciPy and JAX; the log of the points
    # set to 0 is not computed (no NumPy warning about a value that is thrown away).
    zero = xp.logical_and(x == 0, xp.logical_not(xp.isnan(y)))
    out = x * xp.log(xp.where(zero, _filled(xp, y, 1.0), y))
    return xp.where(zero, _filled(xp, out, 0.0), out)  # +0 where x is -0, as JAX


def _xlog1py_impl(xp: Any, x: Any, y: Any) -> Any:
    zero = xp.logical_and(x == 0, xp.logical_not(xp.isnan(y)))
    out = x * xp.log1p(xp.where(zero, _filled(xp, y, 0.0), y))
    return xp.where(zero, _filled(xp, out, 0.0), out)


def _i1e_rule(g: Any, ans: Any, x: Any) -> Any:
    # JAX's: i0e(x) - i1e(x) (sign(x) + 1/x), and its limit 1/2 where |x| <= eps (1/x overflows).
    eps = float(finfo(x.dtype).eps)  # host-ok: a property of the dtype
    big = greater(abs_(x), eps)
    safe = where(big, x, eps)
    return mul(g, where(big, minus(i0e(safe), mul(ans, plus(sign(safe), reciprocal(safe)))), 0.5))


def _log_ndtr_rule(g: Any, ans: Any, x: Any) -> Any:
    # pdf(x) / ndtr(x) as exp(log pdf(x) - log_ndtr(x)): no underflow in either tail.
    log_pdf = minus(mul(square(x), -0.5), _HALF_LOG_2PI)
    return mul(g, exp(minus(log_pdf, ans)))


erf = _elementwise(
    "erf", _special_unary("erf"), lambda g, ans, x: mul(g, mul(exp(neg(square(x))), _TWO_OVER_SQRT_PI)), residuals=("args",)
)
erfc = _elementwise(
    "erfc", _special_unary("erfc"), lambda g, ans, x: mul(g, mul(exp(neg(square(x))), -_TWO_OVER_SQRT_PI)), residuals=("args",)
)
# erfinv(+-1) = +-inf, whose derivative exp(inf) is inf; NaN outside [-1, 1].
erfinv = _elementwise(
    "erfinv", _special_unary("erfinv"), lambda g, ans, x: mul(g, mul(exp(square(ans)), _HALF_SQRT_PI)), residuals=("ans",)
)
gammaln = _elementwise("gammaln", _gammaln_impl, lambda g, ans, x: mul(g, digamma(x)), residuals=("args",))
digamma = _elementwise("digamma", _digamma_impl, lambda g, ans, x: mul(g, polygamma(1.0, x)), residuals=("args",))
# polygamma(n, x): n (floating, of whole values; gpuad.scipy.special checks) has no derivative.
polygamma = _elementwise(
    "polygamma", _polygamma_impl, None, lambda g, ans, n, x: mul(g, polygamma(add(n, 1.0), x)), residuals=("args",)
)
i0e = _elementwise(
    "i0e", _special_unary("i0e"), lambda g, ans, x: mul(g, minus(i1e(x), mul(sign(x), ans)))
)
i1e = _elementwise("i1e", _special_unary("i1e"), _i1e_rule)
log_ndtr = _elementwise("log_ndtr", _special_unary("log_ndtr"), _log_ndtr_rule)
# xlogy and xlog1py differentiate as JAX's custom rules, term by term: d/dx log(y) (log 0 = -inf
# at x = 0, y = 0), d/dy x / y (0 / 0 = NaN there).
xlogy = _elementwise(
    "xlogy", _xlogy_impl, lambda g, ans, x, y: mul(g, log(y)), lambda g, ans, x, y: div(mul(g, x), y), residuals=("args",)
)
xlog1py = _elementwise(
    "xlog1py",
    _xlog1py_impl,
    lambda g, ans, x, y: mul(g, log1p(y)),
    lambda g, ans, x, y: div(mul(g, x), plus(y, 1.0)),
    residuals=("args",),
)
# JAX's value log(x / (1 - x)) and its rule 1 / (x (1 - x)) (inf at 0 and 1; a composite's would
# be NaN at 1).
logit = _elementwise(
    "logit", lambda xp, x: xp.log(x / (1 - x)), lambda g, ans, x: div(g, mul(x, minus(1.0, x))), residuals=("args",)
)

# ---------------------------------------------------------------------------------------------
# The discrete Fourier transform along one (negative) axis, unnormalised (NumPy's "backward"):
# gpuad.numpy.fft builds every function of the standard's fft extension from these three (norm,
# n, several axes). Each is linear; its VJP is the transpose (JAX's convention: no conjugation).
# ---------------------------------------------------------------------------------------------


def _fft_impl(xp: Any, x: Any, *, axis: int, inverse: bool) -> Any:
    return (xp.fft.ifft if inverse else xp.fft.fft)(x, axis=axis)


# F is symmetric, so the transpose of fft is fft (and of ifft, ifft).
fft_c2c = _add(Primitive(
    "fft_c2c", _fft_impl,
    jvp=(lambda t, ans, x, *, axis, inverse: fft_c2c(t, axis=axis, inverse=inverse),),
    vjp=(lambda g, ans, x, *, axis, inverse: fft_c2c(g, axis=axis, inverse=inverse),),
    residuals=(),
))


def _padded_along(g: Any, axis: int, n: int) -> Any:
    """``g`` with zeros appended along ``axis`` to length ``n`` (the transpose of keeping the
    first entries)."""
    shape = list(g.shape)
    m = shape[axis]
    if m == n:
        return g
    shape[axis] = n
    items = [slice(None)] * len(shape)
    items[axis] = slice(0, m)
    return embed(g, index=(Ellipsis, *items), shape=tuple(shape))


def _rfft_vjp(g: Any, ans: Any, x: Any, *, axis: int) -> Any:
    # rfft(x) keeps the first n // 2 + 1 entries of fft(x) of a real x: transposed, the cotangent
    # padded back to n, through fft, its real part.
    return real(fft_c2c(_padded_along(g, axis, x.shape[axis]), axis=axis, inverse=False))


rfft = _add(Primitive(
    "rfft", lambda xp, x, *, axis: xp.fft.rfft(x, axis=axis),
    jvp=(lambda t, ans, x, *, axis: rfft(t, axis=axis),), vjp=(_rfft_vjp,), residuals=(),
))


def _irfft_vjp(g: Any, ans: Any, y: Any, *, axis: int, n: int) -> Any:
    # JAX's transpose of irfft: conj(w * rfft(g) / n), w = 1 for the zero (and Nyquist, n even)
    # frequency, 2 for the others (each stands for itself and its mirror image).
    r = rfft(g, axis=axis)
    m = r.shape[axis]
    w = [2.0] * m
    w[0] = 1.0
    if n % 2 == 0:
        w[-1] = 1.0
    xp, device = namespace_and_device(r)
    weights = xp.asarray(w, dtype=xp.float32 if dtype_name(r.dtype) == "complex64" else xp.float64, device=device)
    weights = reshaped(weights, (m,) + (1,) * (-axis - 1))
    return conj(div(mul(r, weights), float(n)))  # host-ok: n is a Python int parameter


irfft = _add(Primitive(
    "irfft", lambda xp, y, *, axis, n: xp.fft.irfft(y, n=n, axis=axis),
    jvp=(lambda t, ans, y, *, axis, n: irfft(t, axis=axis, n=n),), vjp=(_irfft_vjp,), residuals=(),
))
# Linear algebra: inverses and factorizations of stacks of matrices (gpuad.numpy.linalg). Each
# impl calls ``xp.linalg``, which works on any leading axes, so vmap needs no batch rule. An entry
# has one output: the factorizations pack theirs into one array (eigh: [V | w]; svd: U over s over
# V; qr: Q over R; slogdet: [sign, logabsdet]) that gpuad.numpy.linalg unpacks. Rules follow JAX's
# (its JVPs, and VJPs that are their transposes), so values at degenerate points (repeated
# eigenvalues or singular values, singular matrices) are JAX's: see README, gpuad.numpy.linalg.
# Real matrices only: the rules transpose where complex ones would need the conjugate transpose.
# ---------------------------------------------------------------------------------------------


def _is_linalg_error(e: BaseException) -> bool:
    # NumPy's LinAlgError (also raised by array_api_strict and by CuPy's checked mode), named
    # rather than imported: the table imports no array library.
    return any(t.__name__ == "LinAlgError" for t in type(e).__mro__)


def _refused_as_nan(xp: Any, fn: Rule, a: Any, *rest: Any) -> Any:
    """``fn(a, *rest)`` on stacks of matrices, with NaN at each point the library refuses (NumPy
    raises LinAlgError for the whole stack when one matrix is singular, or not positive definite)
    instead of an error for the whole batch.

    The common path is the library's call alone (no check, no host sync). Only after the library
    has raised are the refused points found, by halving the batch: a half that the library
    accepts is done, a refused half is split again, and a refused single point gets NaN (the
    result of its shape for an identity matrix, times NaN). The other points' results are
    computed by the same library call, so they are exactly what an all-regular batch gives."""
    try:
        return fn(a, *rest)
    except Exception as e:
        if not _is_linalg_error(e):
            raise
    lead = broadcast_shapes(tuple(a.shape[:-2]), *(tuple(r.shape[:-2]) for r in rest))
    count = math.prod(lead)

    def flat(x: Any) -> Any:
        point = tuple(x.shape[-2:])
        return xp.reshape(xp.broadcast_to(x, lead + point), (count,) + point)

    a_flat, rest_flat = flat(a), [flat(r) for r in rest]
    stand_in = xp.eye(a.shape[-2], a.shape[-1], dtype=a.dtype, device=device_of(a))[None, ...]
    pieces: list[Any] = []

    def run(lo: int, hi: int, known_refused: bool) -> None:
        if not known_refused:
            try:
                pieces.append(fn(a_flat[lo:hi, ...], *[r[lo:hi, ...] for r in rest_flat]))
                return
            except Exception as e:
                if not _is_linalg_error(e):
                    raise
        if hi - lo == 1:
            pieces.append(fn(stand_in, *[r[lo:hi, ...] for r in rest_flat]) * math.nan)
            return
        mid = (lo + hi) // 2
        run(lo, mid, False)
        run(mid, hi, False)

    run(0, count, True)
    out = xp.concat(pieces, axis=0)
    return xp.reshape(out, lead + tuple(out.shape[1:]))


def _eye(like: Any, n: int) -> Any:
    """The n x n identity in ``like``'s dtype, next to it (a constant)."""
    xp, device = namespace_and_device(like)
    return xp.eye(n, dtype=like.dtype, device=device)


def _matrix_mask(like: Any, n: int, fill: Callable[[int, int], float]) -> Any:
    """A constant n x n matrix with entries fill(i, j), next to ``like``."""
    xp, device = namespace_and_device(like)
    rows = xp.reshape(xp.arange(n, device=device), (n, 1))
    cols = xp.reshape(xp.arange(n, device=device), (1, n))
    lower, diag = rows > cols, rows == cols
    values = [fill(1, 0), fill(0, 0), fill(0, 1)]  # below, on, above the diagonal
    one = xp.ones((n, n), dtype=like.dtype, device=device)
    return xp.where(lower, one * values[0], xp.where(diag, one * values[1], one * values[2]))


def _diagonal_of(x: Any) -> Any:
    """The main diagonal of square matrices (..., n, n) -> (..., n): a strided slice of the rows
    laid end to end (differentiable)."""
    n = x.shape[-1]
    flat = reshaped(x, tuple(x.shape[:-2]) + (n * n,))
    return getitem(flat, index=(Ellipsis, slice(0, n * n, n + 1)))


def _diag_matrix(v: Any) -> Any:
    """Square matrices with ``v`` (..., n) on the diagonal."""
    return mul(with_axis(v, -1), _eye(v, v.shape[-1]))


def _trace_of_product(a: Any, b: Any) -> Any:
    """trace(a @ b) per point, as sum(a^T * b) (no product of the matrices)."""
    return summed(mul(transposed(a), b), axis=(-2, -1))


def _last_parts(x: Any, sizes: tuple[int, ...], axis: int) -> list[Any]:
    """``x`` cut along ``axis`` into consecutive parts of the given sizes."""
    out, start = [], 0
    for s in sizes:
        out.append(_slice_along(x, axis, start, start + s))
        start += s
    return out


def _times_or_zero(f: Any, x: Any) -> Any:
    """``f * x`` for matrices (..., p, q), exactly 0 at a point where all of ``x`` is 0: a
    cotangent part that the function does not use (the eigenvectors or singular vectors of one
    that reads only the values) gives 0 there where ``f`` has infinities (equal eigenvalues), as
    JAX's symbolic zero does, instead of inf * 0 = NaN."""
    unused = all_(equal(x, 0), axis=(-2, -1), keepdims=True)
    return mul(where(unused, 0.0, f), x)


# inv: d(A^-1) = -A^-1 dA A^-1; singular points give NaN (see _refused_as_nan).
inv = _add(
    Primitive(
        "inv",
        lambda xp, a: _refused_as_nan(xp, xp.linalg.inv, a),
        jvp=(lambda t, ans, a: neg(matmul(matmul(ans, t), ans)),),
        vjp=(lambda g, ans, a: neg(matmul(matmul(transposed(ans), g), transposed(ans))),),
        residuals=("ans",),
    )
)


def _solve_impl(xp: Any, a: Any, b: Any) -> Any:
    # b is a stack of matrices (gpuad.numpy gives a vector its column axis); the leading axes are
    # broadcast here, as not every library's solve broadcasts them.
    lead = broadcast_shapes(tuple(a.shape[:-2]), tuple(b.shape[:-2]))
    if tuple(a.shape[:-2]) != lead:
        a = xp.broadcast_to(a, lead + tuple(a.shape[-2:]))
    if tuple(b.shape[:-2]) != lead:
        b = xp.broadcast_to(b, lead + tuple(b.shape[-2:]))
    return _refused_as_nan(xp, xp.linalg.solve, a, b)


def _solve_vjp(g: Any, ans: Any, a: Any, b: Any) -> tuple[Any, Any]:
    gb = solve(transposed(a), g)
    return neg(matmul(gb, transposed(ans))), gb


# solve(A, B) = A^-1 B: dX = A^-1 (dB - dA X); cotangents B' = A^-T G, A' = -B' X^T.
solve = _add(
    Primitive(
        "solve",
        _solve_impl,
        jvp=(
            lambda t, ans, a, b: neg(solve(a, matmul(t, ans))),
            lambda t, ans, a, b: solve(a, t),
        ),
        vjp=_solve_vjp,
        residuals=(0, "ans"),
    )
)

# det: d det = det * trace(A^-1 dA) (Giles 2008). At a singular matrix A^-1 is NaN, and so is the
# derivative (JAX's is the adjugate there: see README).
det = _add(
    Primitive(
        "det",
        lambda xp, a: xp.linalg.det(a),
        jvp=(lambda t, ans, a: mul(ans, _trace_of_product(inv(a), t)),),
        vjp=(lambda g, ans, a: mul(reshaped(mul(g, ans), tuple(ans.shape) + (1, 1)), transposed(inv(a))),),
        residuals=("args", "ans"),
    )
)


def _slogdet_impl(xp: Any, a: Any) -> Any:
    sign, logabsdet = xp.linalg.slogdet(a)
    return xp.stack([sign, logabsdet], axis=-1)


def _slogdet_jvp(t: Any, ans: Any, a: Any) -> Any:
    dl = with_axis(_trace_of_product(inv(a), t), -1)
    return concat(filled_like(dl, 0.0), dl, axis=-1)  # the sign has derivative 0


def _slogdet_vjp(g: Any, ans: Any, a: Any) -> Any:
    gl = _slice_along(g, -1, 1, 2)  # (..., 1): the logabsdet part
    return mul(reshaped(gl, tuple(gl.shape) + (1,)), transposed(inv(a)))


# slogdet, packed (..., 2) = [sign, log|det|]: d log|det| = trace(A^-1 dA); the sign is constant.
slogdet = _add(Primitive("slogdet", _slogdet_impl, jvp=(_slogdet_jvp,), vjp=(_slogdet_vjp,), residuals=("args",)))


def _cholesky_impl(xp: Any, a: Any) -> Any:
    factor = _refused_as_nan(xp, xp.linalg.cholesky, a)
    # A point whose factor has a diagonal entry that is not > 0 was refused by a library that
    # does not raise (LAPACK leaves the failing pivot there): NaN below and on the diagonal, 0
    # above, as JAX gives for a matrix that is not positive definite.
    n = a.shape[-1]
    ok = xp.all(xp.linalg.diagonal(factor) > 0, axis=-1)
    rows = xp.reshape(xp.arange(n, device=device_of(a)), (n, 1))
    cols = xp.reshape(xp.arange(n, device=device_of(a)), (1, n))
    nans = xp.full((n, n), math.nan, dtype=a.dtype, device=device_of(a))
    refused = xp.where(rows >= cols, nans, xp.zeros((n, n), dtype=a.dtype, device=device_of(a)))
    return xp.where(ok[..., None, None], factor, refused)


def _phi(like: Any, n: int) -> Any:
    """The mask of Murray's Phi: the lower triangle with the diagonal halved."""
    return _matrix_mask(like, n, lambda i, j: 1.0 if i > j else (0.5 if i == j else 0.0))


def _cholesky_jvp(t: Any, ans: Any, a: Any) -> Any:
    # Murray 2016 (and JAX): dL = L Phi(L^-1 dA L^-T) for a symmetric dA.
    li = inv(ans)
    inner = matmul(matmul(li, t), transposed(li))
    return matmul(ans, mul(inner, _phi(ans, ans.shape[-1])))


def _cholesky_vjp(g: Any, ans: Any, a: Any) -> Any:
    # The transpose of the JVP: A' = L^-T Phi(L^T G) L^-1 (gpuad.numpy symmetrizes it, as the
    # input: the factor is of (A + A^T) / 2, as in JAX).
    li = inv(ans)
    inner = mul(matmul(transposed(ans), g), _phi(ans, ans.shape[-1]))
    return matmul(matmul(transposed(li), inner), li)


cholesky = _add(Primitive("cholesky", _cholesky_impl, jvp=(_cholesky_jvp,), vjp=(_cholesky_vjp,), residuals=("ans",)))


def _eigh_impl(xp: Any, a: Any) -> Any:
    def packed(m: Any) -> Any:
        w, v = xp.linalg.eigh(m)
        return xp.concat([v, w[..., None]], axis=-1)

    return _refused_as_nan(xp, packed, a)


def _eigh_parts(ans: Any) -> tuple[Any, Any]:
    """(w, V) from the packed (..., n, n + 1)."""
    n = ans.shape[-2]
    v, w = _last_parts(ans, (n, 1), -1)
    return reshaped(w, tuple(w.shape[:-1])), v


def _reciprocal_gaps(d: Any) -> Any:
    """JAX's ``1 / (d + I) - I`` from the gaps d (..., n, n) (0 on the diagonal): 1 / d_ij off
    the diagonal, +inf where two eigenvalues (singular values) are equal, 0 on the diagonal;
    computed without dividing by 0."""
    n = d.shape[-1]
    zero = equal(d, 0)
    return where(zero, _matrix_mask(d, n, lambda i, j: 0.0 if i == j else math.inf), reciprocal(where(zero, 1.0, d)))


def _eigh_jvp(t: Any, ans: Any, a: Any) -> Any:
    w, v = _eigh_parts(ans)
    f = _reciprocal_gaps(minus(with_axis(w, -2), with_axis(w, -1)))
    m = matmul(matmul(transposed(v), t), v)
    dv = matmul(v, mul(f, m))
    return concat(dv, with_axis(_diagonal_of(m), -1), axis=-1)


def _eigh_vjp(g: Any, ans: Any, a: Any) -> Any:
    w, v = _eigh_parts(ans)
    gw, gv = _eigh_parts(g)
    f = _reciprocal_gaps(minus(with_axis(w, -2), with_axis(w, -1)))
    inner = plus(_diag_matrix(gw), _times_or_zero(f, matmul(transposed(v), gv)))
    return matmul(matmul(v, inner), transposed(v))


# eigh of a symmetric matrix, packed (..., n, n + 1) = [V | w]: dw = diag(V^T dA V),
# dV = V (F * (V^T dA V)) with F = 1 / (w_j - w_i) off the diagonal (JAX's rule).
eigh = _add(Primitive("eigh", _eigh_impl, jvp=(_eigh_jvp,), vjp=(_eigh_vjp,), residuals=("ans",)))


def _svd_impl(xp: Any, a: Any) -> Any:
    def packed(m: Any) -> Any:
        u, s, vh = xp.linalg.svd(m, full_matrices=False)
        return xp.concat([u, s[..., None, :], xp.linalg.matrix_transpose(vh)], axis=-2)

    return _refused_as_nan(xp, packed, a)


def _svd_parts(ans: Any, m: int) -> tuple[Any, Any, Any]:
    """(U, s, V) from the packed (..., m + 1 + n, k)."""
    total = ans.shape[-2]
    u, s, v = _last_parts(ans, (m, 1, total - m - 1), -2)
    return u, reshaped(s, tuple(s.shape[:-2]) + (s.shape[-1],)), v


def _svd_gaps(s: Any) -> Any:
    """JAX's F: 1 / (s_j^2 - s_i^2) off the diagonal, 0 on it."""
    row, col = with_axis(s, -2), with_axis(s, -1)
    return _reciprocal_gaps(mul(plus(row, col), minus(row, col)))


def _reciprocal_or_inf(s: Any) -> Any:
    """1 / s, inf where s is 0 (a rank-deficient matrix), without dividing by 0."""
    zero = equal(s, 0)
    return where(zero, math.inf, reciprocal(where(zero, 1.0, s)))


def _svd_jvp(t: Any, ans: Any, a: Any) -> Any:
    # JAX's svd_jvp_rule for real matrices (its term for the imaginary part of diag(U^T dA V) is
    # 0 for real ones).
    m, n = a.shape[-2], a.shape[-1]
    u, s, v = _svd_parts(ans, m)
    row, col = with_axis(s, -2), with_axis(s, -1)
    ds_mat = matmul(matmul(transposed(u), t), v)
    f = _svd_gaps(s)
    dss, sds = mul(row, ds_mat), mul(col, ds_mat)
    du = matmul(u, mul(f, plus(dss, transposed(dss))))
    dv = matmul(v, mul(f, plus(sds, transposed(sds))))
    if m > n:
        dav = matmul(t, v)
        du = plus(du, div(minus(dav, matmul(u, matmul(transposed(u), dav))), row))
    if n > m:
        dau = matmul(transposed(t), u)
        dv = plus(dv, div(minus(dau, matmul(v, matmul(transposed(v), dau))), row))
    return concat(du, with_axis(_diagonal_of(ds_mat), -2), dv, axis=-2)


def _svd_vjp(g: Any, ans: Any, a: Any) -> Any:
    # The transpose of the JVP above.
    m, n = a.shape[-2], a.shape[-1]
    u, s, v = _svd_parts(ans, m)
    gu, gs, gv = _svd_parts(g, m)
    row, col = with_axis(s, -2), with_axis(s, -1)
    f = _svd_gaps(s)
    p = _times_or_zero(f, matmul(transposed(u), gu))
    q = _times_or_zero(f, matmul(transposed(v), gv))
    inner = plus(_diag_matrix(gs), plus(mul(plus(p, transposed(p)), row), mul(col, plus(q, transposed(q)))))
    out = matmul(matmul(u, inner), transposed(v))
    if m > n:  # (I - U U^T) G_U diag(1/s) V^T
        rest = minus(gu, matmul(u, matmul(transposed(u), gu)))
        out = plus(out, matmul(_times_or_zero(_reciprocal_or_inf(row), rest), transposed(v)))
    if n > m:  # U diag(1/s) G_V^T (I - V V^T)
        rest = minus(gv, matmul(v, matmul(transposed(v), gv)))
        out = plus(out, matmul(u, transposed(_times_or_zero(_reciprocal_or_inf(row), rest))))
    return out


# svd (reduced), packed (..., m + 1 + n, k) = U over s over V (V = Vh^T), k = min(m, n).
svd = _add(Primitive("svd", _svd_impl, jvp=(_svd_jvp,), vjp=(_svd_vjp,), residuals=("ans",)))


def _qr_impl(xp: Any, a: Any) -> Any:
    def packed(m: Any) -> Any:
        q, r = xp.linalg.qr(m, mode="reduced")
        return xp.concat([q, r], axis=-2)

    return _refused_as_nan(xp, packed, a)


def _strict_lower(like: Any, n: int) -> Any:
    return _matrix_mask(like, n, lambda i, j: 1.0 if i > j else 0.0)


def _qr_jvp(t: Any, ans: Any, a: Any) -> Any:
    # JAX's qr_jvp_rule (Townsend's derivation) for m >= n: X = dA R^-1, Y = Q^T X,
    # O = tril(Y, -1) - tril(Y, -1)^T, dQ = Q (O - Y) + X, dR = (Y - O) R.
    m, n = a.shape[-2], a.shape[-1]
    q, r = _last_parts(ans, (m, n), -2)
    x = matmul(t, inv(r))
    y = matmul(transposed(q), x)
    low = mul(y, _strict_lower(y, n))
    o = minus(low, transposed(low))
    dq = plus(matmul(q, minus(o, y)), x)
    dr = matmul(minus(y, o), r)
    return concat(dq, dr, axis=-2)


def _qr_vjp(g: Any, ans: Any, a: Any) -> Any:
    # The transpose: M = R' R^T - Q^T Q', Y' = M - tril(M - M^T, -1), A' = (Q' + Q Y') R^-T.
    m, n = a.shape[-2], a.shape[-1]
    q, r = _last_parts(ans, (m, n), -2)
    gq, gr = _last_parts(g, (m, n), -2)
    mm = minus(matmul(gr, transposed(r)), matmul(transposed(q), gq))
    skew = minus(mm, transposed(mm))
    gy = minus(mm, mul(skew, _strict_lower(mm, n)))
    return matmul(plus(gq, matmul(q, gy)), transposed(inv(r)))


# qr (reduced) of a matrix with m >= n, packed (..., m + n, n) = Q over R. (gpuad.numpy makes the
# wide case from the square one.)
qr = _add(Primitive("qr", _qr_impl, jvp=(_qr_jvp,), vjp=(_qr_vjp,), residuals=("ans",)))


def _pinv_jvp(t: Any, ans: Any, a: Any, *, rtol: float) -> Any:
    # Golub and Pereyra 1973 (JAX's rule): dP = -P dA P + S (I - A P) + (I - P A) T with
    # S = P P^T dA^T and T = dA^T P^T P.
    p, tt = ans, transposed(t)
    s_ = matmul(matmul(p, transposed(p)), tt)
    t_ = matmul(tt, matmul(transposed(p), p))
    out = neg(matmul(matmul(p, t), p))
    out = plus(out, minus(s_, matmul(matmul(s_, a), p)))
    return plus(out, minus(t_, matmul(p, matmul(a, t_))))


def _pinv_vjp(g: Any, ans: Any, a: Any, *, rtol: float) -> Any:
    # The transpose: A' = -P^T G P^T + (I - A P) G^T P P^T + P^T P G^T (I - P A).
    p, pt, gt = ans, transposed(ans), transposed(g)
    k = matmul(gt, matmul(p, pt))
    j = matmul(matmul(pt, p), gt)
    out = neg(matmul(matmul(pt, g), pt))
    out = plus(out, minus(k, matmul(a, matmul(p, k))))
    return plus(out, minus(j, matmul(matmul(j, p), a)))


pinv = _add(
    Primitive(
        "pinv",
        lambda xp, a, *, rtol: _refused_as_nan(xp, lambda m: xp.linalg.pinv(m, rtol=rtol), a),
        jvp=(_pinv_jvp,),
        vjp=(_pinv_vjp,),
        residuals=("args", "ans"),
    )
)

# ---------------------------------------------------------------------------------------------

PRIMITIVES: MappingProxyType[str, Primitive] = MappingProxyType(_TABLE)
"""Every primitive by name; frozen once this module has loaded."""


# ---------------------------------------------------------------------------------------------
# Batching support shared by the batch rules above and vmap's trace (batching.py)
# ---------------------------------------------------------------------------------------------


def align_ranks(vals: list[Any], batched: list[bool] | tuple[bool, ...]) -> list[Any]:
    """Give each batched operand size-1 axes after its batch axis until all operands have the same
    per-point rank, so NumPy broadcasting pairs point with point (unbatched operands broadcast from
    the right as they are)."""
    if len(vals) == 2 and vals[0].ndim - batched[0] == vals[1].ndim - batched[1]:
        return vals  # a binary op on operands of one per-point rank: nothing to align
    ranks = [v.ndim - b for v, b in zip(vals, batched)]  # b is a bool: 1 for the batch axis
    top = max(ranks)
    for r, b in zip(ranks, batched):
        if b and r != top:
            break
    else:
        return vals  # every batched operand already has the full per-point rank
    out = []
    for v, b, r in zip(vals, batched, ranks):
        if b and r < top:
            shape = (v.shape[0],) + (1,) * (top - r) + tuple(v.shape[1:])
            if isinstance(v, Tracer) or type(v) is Uniform:
                v = reshaped(v, shape)
            else:  # a plain array (the bottom batch level): the table's reshape without the checks
                v = eager(reshape, (v,), {"shape": shape, "in_ndim": v.ndim})
        out.append(v)
    return out
