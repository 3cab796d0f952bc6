"""gpuad.numpy against the array API standard (2024.12): every name of the main namespace exists
(except the NOT_YET set, which only shrinks), and the standard's signatures, dtypes, errors and
edge cases, with array_api_strict (the reference implementation) as the oracle for integer
results and dtypes."""

from __future__ import annotations

import numpy as np
import pytest

import gpuad.numpy as gnp

# Every function and constant of the 2024.12 standard's main namespace, by category (the
# array-api repository's src/array_api_stubs/_2024_12, which array_api_strict implements; isin is
# 2025.12 and not listed). linalg and fft are the extensions' namespaces.
STANDARD_2024_12 = {
    # constants
    "e", "inf", "nan", "newaxis", "pi",
    # creation functions
    "arange", "asarray", "empty", "empty_like", "eye", "from_dlpack", "full", "full_like",
    "linspace", "meshgrid", "ones", "ones_like", "tril", "triu", "zeros", "zeros_like",
    # data type functions
    "astype", "can_cast", "finfo", "iinfo", "isdtype", "result_type",
    # data types
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float32", "float64", "complex64", "complex128",
    # elementwise functions
    "abs", "acos", "acosh", "add", "asin", "asinh", "atan", "atan2", "atanh", "bitwise_and",
    "bitwise_left_shift", "bitwise_invert", "bitwise_or", "bitwise_right_shift", "bitwise_xor",
    "ceil", "clip", "conj", "copysign", "cos", "cosh", "divide", "equal", "exp", "expm1",
    "floor", "floor_divide", "greater", "greater_equal", "hypot", "imag", "isfinite", "isinf",
    "isnan", "less", "less_equal", "log", "log1p", "log2", "log10", "logaddexp", "logical_and",
    "logical_not", "logical_or", "logical_xor", "maximum", "minimum", "multiply", "negative",
    "nextafter", "not_equal", "positive", "pow", "real", "reciprocal", "remainder", "round",
    "sign", "signbit", "sin", "sinh", "square", "sqrt", "subtract", "tan", "tanh", "trunc",
    # indexing functions
    "take", "take_along_axis",
    # inspection
    "__array_namespace_info__",
    # linear algebra functions
    "matmul", "matrix_transpose", "tensordot", "vecdot",
    # manipulation functions
    "broadcast_arrays", "broadcast_to", "concat", "expand_dims", "flip", "moveaxis",
    "permute_dims", "repeat", "reshape", "roll", "squeeze", "stack", "tile", "unstack",
    # searching functions
    "argmax", "argmin", "count_nonzero", "nonzero", "searchsorted", "where",
    # set functions
    "unique_all", "unique_counts", "unique_inverse", "unique_values",
    # sorting functions
    "argsort", "sort",
    # statistical functions
    "cumulative_prod", "cumulative_sum", "diff", "max", "mean", "min", "prod", "std", "sum", "var",
    # utility functions
    "all", "any",
    # the version, and the extensions
    "__array_api_version__", "linalg", "fft",
}

# Names gpuad.numpy does not have yet, each with what will bring it. This set only shrinks: the
# test below also fails on an entry that gpuad.numpy now has.
NOT_YET: set[str] = set()


def test_the_list_is_the_standard():
    """Every listed name is in array_api_strict, which has every name of the 2024.12 standard
    (plus 2025.12's isin and broadcast_shapes, and its own flags and device class)."""
    strict = pytest.importorskip("array_api_strict")
    assert sorted(n for n in STANDARD_2024_12 if not hasattr(strict, n)) == []
    extra = {n for n in strict.__all__ if not n.startswith("_")} - STANDARD_2024_12
    assert extra <= {"isin", "broadcast_shapes", "Device", "ArrayAPIStrictFlags", "get_array_api_strict_flags",
                     "set_array_api_strict_flags", "reset_array_api_strict_flags"}


def test_every_standard_name_exists():
    missing = sorted(n for n in STANDARD_2024_12 - NOT_YET if not hasattr(gnp, n))
    assert not missing, f"gpuad.numpy lacks these names of the 2024.12 standard: {missing}"


FFT_2024_12 = {
    "fft", "ifft", "fftn", "ifftn", "rfft", "irfft", "rfftn", "irfftn", "hfft", "ihfft",
    "fftfreq", "rfftfreq", "fftshift", "ifftshift",
}


def test_the_fft_extension_is_complete():
    import array_api_strict

    assert FFT_2024_12 == set(array_api_strict.fft.__all__)
    missing = sorted(n for n in FFT_2024_12 if not callable(getattr(gnp.fft, n, None)))
    assert not missing, f"gpuad.numpy.fft lacks {missing}"


def test_not_yet_only_shrinks():
    present = sorted(n for n in NOT_YET if hasattr(gnp, n))
    assert not present, f"gpuad.numpy now has {present}: remove them from NOT_YET"
    assert NOT_YET <= STANDARD_2024_12


def test_version():
    assert gnp.__array_api_version__ == "2024.12"


# ---------------------------------------------------------------------------------------------
# The small fixes: reductions' dtype=, expand_dims, finfo/iinfo, the inspection namespace
# ---------------------------------------------------------------------------------------------

xps = pytest.importorskip("array_api_strict")
INTS = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "bool"]


def _name(dtype):
    return str(dtype).rsplit(".", 1)[-1].strip("'>")


@pytest.mark.parametrize("fn", ["sum", "prod", "cumulative_sum"])
@pytest.mark.parametrize("src", INTS + ["float32", "float64"])
@pytest.mark.parametrize("asked", [None, "uint8", "int16", "int64", "float32", "float64"])
def test_reductions_honour_dtype(fn, src, asked):
    """The result's dtype and values are array_api_strict's, with and without dtype=, including
    the wrap-around of a small integer type (250 + 10 in uint8 is 4)."""
    if asked is not None and src.startswith("float") and not asked.startswith("float"):
        pytest.skip("float to integer: the standard leaves it unspecified")
    if src == "bool" and asked is None and fn == "cumulative_sum":
        pytest.skip("cumulative_sum of bool without dtype: unspecified")
    values = [250, 10, 3] if src != "bool" else [1, 0, 1]
    if src.startswith("int") and src != "int64":
        values = [120, 10, 3]
    x = np.asarray(values, dtype=src)
    kw = {} if asked is None else {"dtype": getattr(gnp, asked)}
    ours = getattr(gnp, fn)(x, **kw)
    ref = xps
    if src == "bool":  # outside the standard (array_api_strict refuses it): NumPy's answer
        import array_api_compat.numpy as ref
    kws = {} if asked is None else {"dtype": getattr(ref, asked)}
    want = getattr(ref, fn)(ref.asarray(x), **kws)
    assert _name(ours.dtype) == _name(want.dtype)
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(want))


def test_sum_dtype_uint8_regression():
    """The issue's case: uint8 in, dtype=uint8 asked, uint8 out (was uint64)."""
    out = gnp.sum(np.asarray([200, 100], dtype=np.uint8), dtype=gnp.uint8)
    assert out.dtype == np.uint8 and int(out) == 44


def test_sum_dtype_differentiable():
    """dtype=float32 of a float64 input stays differentiable (the cotangent comes back float64)."""
    import gpuad

    g = gpuad.grad(lambda v: gnp.sum(v * v, dtype=gnp.float32))(np.asarray([1.0, 2.0]))
    assert g.dtype == np.float64 and g.tolist() == [2.0, 4.0]


def test_expand_dims_positional_and_range():
    x = np.ones((2, 3))
    assert gnp.expand_dims(x, 0).shape == (1, 2, 3)
    assert gnp.expand_dims(x, -1).shape == (2, 3, 1)
    assert gnp.expand_dims(x, axis=2).shape == (2, 3, 1)
    assert gnp.expand_dims(x, -3).shape == (1, 2, 3)
    for bad in (3, -4):
        with pytest.raises(IndexError, match=f"axis {bad} is out of range"):
            gnp.expand_dims(x, bad)
        with pytest.raises(IndexError):  # the reference agrees
            xps.expand_dims(xps.asarray(x), axis=bad)


def test_finfo_iinfo_are_python_numbers():
    for name in ("float32", "float64"):
        ours, want = gnp.finfo(getattr(gnp, name)), xps.finfo(getattr(xps, name))
        for field in ("bits", "eps", "max", "min", "smallest_normal"):
            got = getattr(ours, field)
            assert type(got) is (int if field == "bits" else float), field
            assert got == getattr(want, field)
        assert ours.dtype == getattr(gnp, name)
    assert type(gnp.finfo(np.ones(2, np.float32)).eps) is float  # an array's dtype
    for name in ("int8", "uint8", "int64", "uint64"):
        ours, want = gnp.iinfo(getattr(gnp, name)), xps.iinfo(getattr(xps, name))
        for field in ("bits", "max", "min"):
            assert type(getattr(ours, field)) is int and getattr(ours, field) == getattr(want, field)


def test_array_namespace_info():
    """The inspection namespace answers for the default backend's library (NumPy here), with
    gpuad.numpy's dtype objects, and says what gpuad can do inside its transforms."""
    import array_api_compat.numpy as xnp

    info = gnp.__array_namespace_info__()
    lib = xnp.__array_namespace_info__()
    assert info.capabilities() == {"boolean indexing": False, "data-dependent shapes": False, "max dimensions": 64}
    assert info.default_device() == lib.default_device()
    assert info.devices() == list(lib.devices())
    defaults = info.default_dtypes()
    assert defaults == {"real floating": gnp.float64, "complex floating": gnp.complex128,
                        "integral": gnp.int64, "indexing": gnp.int64}
    assert info.default_dtypes(device=info.default_device()) == defaults
    assert set(info.dtypes()) == set(xps.__array_namespace_info__().dtypes())
    assert info.dtypes(kind="real floating") == {"float32": gnp.float32, "float64": gnp.float64}
    assert set(info.dtypes(kind=("bool", "unsigned integer"))) == {"bool", "uint8", "uint16", "uint32", "uint64"}
    # The dtypes it names are ones gpuad.numpy takes.
    assert gnp.zeros(2, dtype=defaults["integral"]).dtype == np.int64


# ---------------------------------------------------------------------------------------------
# The new functions: integer results, dtypes, errors and edge cases, against array_api_strict
# (the derivatives are the spec rows' work: tests/spec.py, "array API functions")
# ---------------------------------------------------------------------------------------------

import inspect  # noqa: E402

import gpuad  # noqa: E402
from gpuad.tracing import ConcretizationError  # noqa: E402


def _strict(a):
    return xps.asarray(a) if isinstance(a, np.ndarray) else a


def same(ours, want):
    """Equal values, shape and dtype (NaNs equal), also for tuples of arrays."""
    if isinstance(want, (tuple, list)):
        assert isinstance(ours, tuple) and len(ours) == len(want)
        for o, w in zip(ours, want):
            same(o, w)
        return
    w = np.asarray(want)
    assert _name(ours.dtype) == _name(want.dtype), (ours.dtype, want.dtype)
    assert tuple(ours.shape) == w.shape
    np.testing.assert_array_equal(np.asarray(ours), w)


def both(fn, *arrays, **kw):
    """gpuad.numpy's and array_api_strict's results of the function named ``fn``, compared."""
    ours = getattr(gnp, fn)(*arrays, **kw)
    want = getattr(xps, fn)(*[_strict(a) for a in arrays], **{k: _strict(v) for k, v in kw.items()})
    same(ours, want)
    return ours


NEW = [
    "take", "take_along_axis", "tile", "repeat", "roll", "unstack", "tril", "triu", "meshgrid", "diff",
    "cumulative_prod", "sort", "argsort", "searchsorted", "count_nonzero", "nonzero", "copysign",
    "nextafter", "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_invert", "bitwise_left_shift",
    "bitwise_right_shift", "unique_all", "unique_counts", "unique_inverse", "unique_values",
    "from_dlpack", "expand_dims", "sum", "prod", "cumulative_sum",
]


@pytest.mark.parametrize("name", NEW)
def test_signature_is_the_standards(name):
    """Parameter names, kinds (positional-only, keyword-only) and defaults as array_api_strict."""
    ours = inspect.signature(getattr(gnp, name)).parameters
    want = inspect.signature(getattr(xps, name)).parameters
    assert [(p.name, p.kind) for p in ours.values()] == [(p.name, p.kind) for p in want.values()]
    for p in want.values():
        if name == "expand_dims" and p.name == "axis":
            assert ours[p.name].default == 0  # 2024.12 has no default; 0 keeps 2023.12 code working
        elif name == "from_dlpack":
            assert ours[p.name].default in (None, inspect.Parameter.empty)
        elif p.default is not inspect.Parameter.empty:
            assert ours[p.name].default == p.default, p.name


I64 = np.asarray([[3, 1, 2, 1], [0, -5, 7, 7], [4, 4, 4, 1]], dtype=np.int64)
F = np.asarray([[3.0, np.nan, -0.0, 1.0], [0.0, -2.5, 7.0, 7.0]])


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_sort_argsort_like_strict(descending, axis):
    """Stable with ties in their original order (also descending), NaN last."""
    for x in (I64, F, I64[0]):
        if x.ndim == 1 and axis == 1:
            continue
        both("sort", x, axis=axis, descending=descending)
        both("argsort", x, axis=axis, descending=descending)


def test_sort_empty_and_errors():
    both("sort", np.zeros((0, 3)), axis=0)
    both("argsort", np.zeros((2, 0)))
    for fn in (gnp.sort, gnp.argsort):
        with pytest.raises(ValueError, match="at least one dimension"):
            fn(np.asarray(1.0))
        with pytest.raises(ValueError, match="axis 2 is out of bounds"):
            fn(np.ones((2, 2)), axis=2)


@pytest.mark.parametrize("descending", [False, True])
def test_sort_gradient_with_ties_is_jaxs(descending):
    """Which of tied elements gets which part of the derivative: JAX's (a stable gather,
    reversed for descending), in reverse and forward mode and under vmap."""
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    x = np.asarray([2.0, 1.0, 2.0, 0.5, 2.0, 1.0])
    w = np.arange(1.0, 7.0)
    want = jax.grad(lambda v: jnp.sum(jnp.sort(v, descending=descending) * w))(x)
    got = gpuad.grad(lambda v: gnp.sum(gnp.sort(v, descending=descending) * w))(x)
    np.testing.assert_array_equal(got, np.asarray(want))
    t = np.arange(6.0) ** 2
    want_t = jax.jvp(lambda v: jnp.sort(v, descending=descending), (x,), (t,))[1]
    got_t = gpuad.jvp(lambda v: gnp.sort(v, descending=descending), (x,), (t,))[1]
    np.testing.assert_array_equal(got_t, np.asarray(want_t))
    batch = np.stack([x, x[::-1]])
    got_v = gpuad.vmap(gpuad.grad(lambda v: gnp.sum(gnp.sort(v, descending=descending) * w)))(batch)
    want_v = jax.vmap(jax.grad(lambda v: jnp.sum(jnp.sort(v, descending=descending) * w)))(batch)
    np.testing.assert_array_equal(got_v, np.asarray(want_v))


@pytest.mark.parametrize("side", ["left", "right"])
def test_searchsorted_like_strict(side):
    a = np.asarray([1.0, 2.0, 2.0, 3.0, np.nan])
    v = np.asarray([[0.5, 2.0], [3.0, np.nan]])
    both("searchsorted", a, v, side=side)
    both("searchsorted", a, 2.0, side=side)  # a Python scalar
    perm = np.asarray([3, 0, 4, 2, 1])
    shuffled = a[np.argsort(perm)]
    np.testing.assert_array_equal(shuffled[perm], a)
    both("searchsorted", shuffled, v, side=side, sorter=perm)
    both("searchsorted", np.asarray([1, 3, 5]), np.asarray([3, 4]), side=side)
    both("searchsorted", np.zeros(0), np.asarray([1.0]), side=side)


@pytest.mark.parametrize("side", ["left", "right"])
def test_searchsorted_under_vmap_one_row_per_point(side):
    """A batched sorted array (one row per point, the batch rule's counting path) and a batched
    value array each give what the library gives point by point."""
    rows = np.asarray([[1.0, 2.0, 2.0, np.nan], [0.0, 0.0, 5.0, 6.0], [-1.0, 1.0, 1.0, 1.0]])
    vals = np.asarray([[2.0, 0.0, np.nan], [5.0, 0.0, 7.0], [1.0, -3.0, 0.5]])
    got = gpuad.vmap(lambda a, v: gnp.searchsorted(a, v, side=side))(rows, vals)
    want = np.stack([np.searchsorted(r, v, side=side) for r, v in zip(rows, vals)])
    same(got, want)
    got = gpuad.vmap(lambda a: gnp.searchsorted(a, vals[0], side=side))(rows)
    same(got, np.stack([np.searchsorted(r, vals[0], side=side) for r in rows]))
    got = gpuad.vmap(lambda v: gnp.searchsorted(rows[0], v, side=side))(vals)
    same(got, np.stack([np.searchsorted(rows[0], v, side=side) for v in vals]))


def test_searchsorted_errors():
    with pytest.raises(ValueError, match="side must be 'left' or 'right'"):
        gnp.searchsorted(np.ones(3), np.ones(2), side="middle")
    with pytest.raises(ValueError, match="x1 must be one-dimensional"):
        gnp.searchsorted(np.ones((2, 3)), np.ones(2))


def test_count_nonzero_like_strict():
    for x in (I64, F, np.asarray([[True, False], [True, True]])):
        both("count_nonzero", x)
        both("count_nonzero", x, axis=0)
        both("count_nonzero", x, axis=(0, 1), keepdims=True)
        both("count_nonzero", x, axis=-1, keepdims=True)
    both("count_nonzero", np.zeros((0, 2)), axis=0)
    both("count_nonzero", np.asarray(3.0))


def test_nonzero_and_unique_eager_only():
    both("nonzero", I64)
    both("nonzero", np.asarray([0.0, -0.0, np.nan]))
    with pytest.raises(ValueError, match="at least one dimension"):
        gnp.nonzero(np.asarray(1.0))
    x = np.asarray([3.0, 1.0, 3.0, 2.0])
    both("unique_values", x)
    for fn in ("unique_all", "unique_counts", "unique_inverse"):
        ours, want = getattr(gnp, fn)(x), getattr(xps, fn)(xps.asarray(x))
        same(tuple(ours), tuple(want))
    for fn in ("nonzero", "unique_values", "unique_all"):
        f = getattr(gnp, fn)
        with pytest.raises(ConcretizationError, match=f"{fn}: the shape of its result depends on the values"):
            gpuad.grad(lambda v: gnp.sum(v * f(v)[0]))(x)
        with pytest.raises(ConcretizationError, match="depends on the values"):
            gpuad.vmap(lambda v: f(v)[0])(np.ones((2, 3)))


INT_DTYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]


@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_bitwise_like_strict(dtype):
    a = np.asarray([0, 1, 5, 12, 127], dtype=dtype)
    b = np.asarray([3, 3, 6, 1, 2], dtype=dtype)
    for fn in ("bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_left_shift", "bitwise_right_shift"):
        both(fn, a, b)
        both(fn, a, 2)  # a Python int takes the array's dtype
    both("bitwise_invert", a)
    both("bitwise_and", np.asarray([1, 2], dtype=dtype), np.asarray([3, 3], dtype="int64" if dtype != "uint64" else "uint8"))


def test_bitwise_booleans_and_errors():
    t = np.asarray([True, False, True])
    f = np.asarray([True, True, False])
    for fn in ("bitwise_and", "bitwise_or", "bitwise_xor"):
        both(fn, t, f)
    both("bitwise_invert", t)
    with pytest.raises(TypeError, match="bitwise_and: x1 must be an integer or boolean array"):
        gnp.bitwise_and(np.ones(2), np.ones(2, dtype=np.int64))
    with pytest.raises(TypeError, match="bitwise_left_shift: x2 must be an integer array"):
        gnp.bitwise_left_shift(np.ones(2, dtype=np.int64), t[:2])
    with pytest.raises(TypeError, match="bitwise_invert: x must be an integer or boolean array"):
        gnp.bitwise_invert(np.ones(2))
    with pytest.raises(TypeError, match="x2 must be an integer or boolean array"):
        gnp.bitwise_or(np.ones(2, dtype=np.int64), 1.5)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_copysign_nextafter_like_strict(dtype):
    a = np.asarray([1.0, -2.0, 0.0, -0.0, np.inf, np.nan, 3.0], dtype=dtype)
    b = np.asarray([-0.0, 0.0, -1.0, 2.0, -np.inf, -1.0, np.nan], dtype=dtype)
    for fn in ("copysign", "nextafter"):
        both(fn, a, b)
        both(fn, a, -1.0)
        ours = getattr(gnp, fn)(a, b)
        np.testing.assert_array_equal(np.signbit(ours), np.signbit(np.asarray(getattr(xps, fn)(xps.asarray(a), xps.asarray(b)))))


def test_copysign_derivative_at_zero_is_jaxs():
    """d/dx1 copysign(x1, x2) = +-1 with abs'(0) = 1, and no derivative in x2, as JAX."""
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    x = np.asarray([0.0, -0.0, 1.0, -1.0, 0.0, -0.0])
    y = np.asarray([1.0, 1.0, -1.0, -2.0, -0.0, -3.0])
    got = gpuad.grad(lambda a, b: gnp.sum(gnp.copysign(a, b)), argnums=(0, 1))(x, y)
    want = jax.grad(lambda a, b: jax.numpy.sum(jax.numpy.copysign(a, b)), argnums=(0, 1))(x, y)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, np.asarray(w))


def test_take_like_strict_and_errors():
    both("take", I64, np.asarray([2, 0, 2]), axis=1)
    both("take", I64[0], np.asarray([3, 0]))
    both("take", I64, np.zeros(0, dtype=np.int64), axis=0)
    np.testing.assert_array_equal(gnp.take(I64[0], np.asarray([-1, -4])), I64[0][[-1, -4]])
    with pytest.raises(ValueError, match="take: axis is required for a 2-d array"):
        gnp.take(I64, np.asarray([0]))
    with pytest.raises(TypeError, match="take: indices must be an array of an integer dtype"):
        gnp.take(I64[0], np.asarray([0.0]))
    with pytest.raises(ValueError, match="take: indices must be one-dimensional"):
        gnp.take(I64[0], np.asarray([[0]]))


def test_take_along_axis_like_strict_and_errors():
    idx = np.asarray([[1, 0, 3, 3], [2, 2, 0, 1], [0, 0, 0, 0]])
    both("take_along_axis", I64, idx, axis=1)
    both("take_along_axis", I64, idx[:2] % 3, axis=0)
    both("take_along_axis", I64, np.argsort(I64, axis=0), axis=0)
    both("take_along_axis", I64, idx[:, :0], axis=1)  # no indices: empty along the axis
    # Broadcasting on the other axes (NumPy's rule; array_api_strict asks for equal shapes).
    np.testing.assert_array_equal(gnp.take_along_axis(I64, idx[:1], axis=1), np.take_along_axis(I64, np.broadcast_to(idx[:1], (3, 4)), axis=1))
    np.testing.assert_array_equal(gnp.take_along_axis(I64, np.asarray([[-1]]), axis=1), I64[:, -1:])
    with pytest.raises(IndexError, match="index 3 is out of bounds for axis 0 with size 3"):
        gnp.take_along_axis(I64, idx[:2], axis=0)
    with pytest.raises(IndexError, match="index -5 is out of bounds for axis 1 with size 4"):
        gnp.take(I64, np.asarray([0, -5]), axis=1)
    with pytest.raises(ValueError, match="indices must have the rank of x"):
        gnp.take_along_axis(I64, idx[0], axis=1)
    with pytest.raises(TypeError, match="integer dtype"):
        gnp.take_along_axis(I64, idx * 1.0, axis=1)


def test_tile_repeat_like_strict():
    x = I64[:2, :3]
    for reps in [(2,), (2, 3), (1, 2, 2), (0, 2), ()]:
        both("tile", x, reps)
    both("tile", np.asarray(5), (3,))  # 0-d
    both("repeat", x, 2)
    both("repeat", x, 2, axis=0)
    both("repeat", x, 0, axis=1)
    both("repeat", x, np.asarray([1, 0, 3]), axis=1)
    both("repeat", x, np.asarray([2]), axis=0)
    both("repeat", x, np.asarray([1, 0, 3, 1, 1, 2]))
    both("repeat", np.zeros((0, 2)), 3, axis=0)


def test_tile_repeat_errors():
    with pytest.raises(ValueError, match="repetitions must be non-negative"):
        gnp.tile(np.ones(2), (-1,))
    with pytest.raises(TypeError, match="repetitions must be a tuple of ints"):
        gnp.tile(np.ones(2), 2)
    with pytest.raises(TypeError, match=r"repetitions\[i\] must be an int"):
        gnp.tile(np.ones(2), (1.5,))
    with pytest.raises(ValueError, match="repeats must be non-negative"):
        gnp.repeat(np.ones(2), -1)
    with pytest.raises(ValueError, match=r"repeats must have shape \(1,\) or \(3,\)"):
        gnp.repeat(np.ones((2, 3)), np.asarray([1, 2]), axis=1)
    with pytest.raises(TypeError, match="repeats must have an integer dtype"):
        gnp.repeat(np.ones(2), np.asarray([1.0, 2.0]))
    with pytest.raises(ConcretizationError, match="repeat: repeats is a traced value"):
        gpuad.grad(lambda r: gnp.sum(gnp.repeat(np.ones(2), gnp.astype(r, gnp.int64))))(np.ones(2))


def test_repeat_with_counts_differentiates():
    g = gpuad.grad(lambda v: gnp.sum(gnp.repeat(v, np.asarray([2, 0, 3])) ** 2))(np.asarray([2.0, 2.0, 3.0]))
    np.testing.assert_allclose(g, [8.0, 0.0, 18.0])  # 2 * v per copy: 2 copies of 2, 3 of 3


def test_roll_like_strict():
    x = I64
    both("roll", x, 1)
    both("roll", x, -7)
    both("roll", x, 2, axis=1)
    both("roll", x, -1, axis=-2)
    both("roll", x, (1, -3), axis=(0, 1))
    both("roll", x, 1, axis=(0, 1))
    both("roll", x, 0, axis=0)
    both("roll", np.zeros((0, 3)), 2, axis=0)
    out = gnp.roll(x, 4, axis=1)  # a whole turn: a new array all the same
    assert out is not x and not np.shares_memory(out, x)
    with pytest.raises(ValueError, match="must have the same length"):
        gnp.roll(x, (1, 2), axis=0)
    with pytest.raises(TypeError, match="roll: shift must be an int"):
        gnp.roll(x, 1.5)


def test_triangles_like_strict():
    x = np.arange(24).reshape(2, 3, 4)
    for k in (-2, -1, 0, 1, 5):
        both("tril", x, k=k)
        both("triu", x, k=k)
    both("tril", np.asarray([[True, True], [True, True]]))
    both("triu", np.zeros((0, 3)))
    with pytest.raises(ValueError, match="tril: x must have at least 2 dimensions"):
        gnp.tril(np.ones(3))
    with pytest.raises(TypeError, match="triu: k must be an int"):
        gnp.triu(np.ones((2, 2)), k=0.5)


def test_diff_like_strict():
    for n in (0, 1, 2, 5):
        both("diff", I64, n=n)
        both("diff", I64, axis=0, n=n)
    both("diff", I64, prepend=I64[:, :2], append=I64[:, :1])
    b = np.asarray([True, False, False, True])  # not_equal, as NumPy (the standard: numeric only)
    same(gnp.diff(b), np.diff(b))
    both("diff", np.zeros((2, 0)))
    np.testing.assert_array_equal(gnp.diff(np.asarray([1.0, 3.0]), prepend=0.0), [1.0, 2.0])  # NumPy's scalar
    with pytest.raises(ValueError, match="diff: n must be non-negative"):
        gnp.diff(np.ones(3), n=-1)
    with pytest.raises(ValueError, match="diff: x must have at least one dimension"):
        gnp.diff(np.asarray(1.0))


def test_unstack_meshgrid_like_strict():
    both("unstack", I64)
    both("unstack", I64, axis=1)
    both("unstack", I64, axis=-1)
    both("unstack", np.zeros((0, 2)))
    a, b, c = np.asarray([1, 2, 3]), np.asarray([4, 5]), np.asarray([6, 7, 8, 9])
    for indexing in ("xy", "ij"):
        both("meshgrid", a, b, indexing=indexing)
        both("meshgrid", a, b, c, indexing=indexing)
        both("meshgrid", a, indexing=indexing)
        both("meshgrid", a, np.zeros(0, dtype=a.dtype), indexing=indexing)
    assert gnp.meshgrid() == ()
    with pytest.raises(ValueError, match="indexing must be 'xy' or 'ij'"):
        gnp.meshgrid(a, indexing="xx")
    with pytest.raises(ValueError, match=r"arrays\[1\] must be one-dimensional"):
        gnp.meshgrid(a, I64)
    with pytest.raises(ValueError, match="unstack: x must have at least one dimension"):
        gnp.unstack(np.asarray(1.0))


@pytest.mark.parametrize("dtype", [None, "int64", "float32", "uint8"])
def test_cumulative_prod_like_strict(dtype):
    kw = {} if dtype is None else {"dtype": getattr(gnp, dtype)}
    kws = {} if dtype is None else {"dtype": getattr(xps, dtype)}
    for x, axis in ((np.asarray([3, 2, 0, 5, 7], dtype=np.uint8), None), (I64, 1), (I64 * 1.5, 0)):
        for initial in (False, True):
            ours = gnp.cumulative_prod(x, axis=axis, include_initial=initial, **kw)
            want = xps.cumulative_prod(xps.asarray(x), axis=axis, include_initial=initial, **kws)
            same(ours, want)
    with pytest.raises(ValueError, match="cumulative_prod: axis is required for a 2-d array"):
        gnp.cumulative_prod(I64)


def test_cumulative_prod_traced_matches_eager_and_jax_at_zeros():
    """The scan under a transform gives the library's values, and at zeros JAX's derivative (no
    division: exact where elements are 0), first and second order."""
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    x = np.asarray([[2.0, 0.0, 3.0, 0.0, 1.5, -1.0, 4.0], [1.0, 2.0, 0.0, 3.0, 0.5, 2.0, 1.0]])
    w = np.arange(1.0, 8.0)
    for initial in (False, True):
        wi = np.arange(1.0, 9.0) if initial else w
        f_ours = lambda v: gnp.sum(gnp.cumulative_prod(v, axis=1, include_initial=initial) * wi)
        f_jax = lambda v: jnp.sum(jnp.cumulative_prod(v, axis=1, include_initial=initial) * wi)
        np.testing.assert_allclose(gpuad.grad(f_ours)(x), jax.grad(f_jax)(x), rtol=1e-14)
        np.testing.assert_allclose(gpuad.hessian(f_ours)(x), jax.hessian(f_jax)(x), rtol=1e-14, atol=1e-14)
        out = gpuad.vmap(lambda v: gnp.cumulative_prod(v, include_initial=initial))(x)
        np.testing.assert_allclose(out, np.cumulative_prod(x, axis=1, include_initial=initial), rtol=1e-15)


def test_new_functions_on_strict_device1():
    """Plain arrays of another library stay there (no NumPy arrays mixed in): array_api_strict's
    device1 refuses NumPy conversion and device mixing."""
    dev = xps.Device("device1")
    x = xps.asarray(I64 * 1.0, device=dev)
    idx = xps.asarray([[1, 0, 3, 3]], device=dev)
    checks = [
        gnp.tril(x), gnp.triu(x, k=1), gnp.take_along_axis(x, idx, axis=1), gnp.sort(x), gnp.argsort(x),
        gnp.roll(x, 1), gnp.tile(x, (2,)), gnp.repeat(x, 2), gnp.repeat(x, xps.asarray([1, 2, 0], device=dev), axis=0),
        gnp.diff(x), gnp.cumulative_prod(x, axis=0), gnp.count_nonzero(x), gnp.searchsorted(x[0, :], x[1, :]),
        gnp.take(x, xps.asarray([0, 2], device=dev), axis=0), *gnp.unstack(x), *gnp.meshgrid(x[0, :], x[1, :]),
    ]
    for out in checks:
        assert out.device == dev
    g = gpuad.grad(lambda v: gnp.sum(gnp.sort(gnp.tril(v)) * gnp.roll(v, 1, axis=1)))(x)
    assert g.device == dev


def test_numpy_spellings():
    """Aliases where NumPy's (and JAX's) semantics are the standard's; an AttributeError naming
    the standard's function where they differ."""
    assert gnp.concatenate is gnp.concat and gnp.power is gnp.pow and gnp.arctan2 is gnp.atan2
    assert gnp.absolute is gnp.abs and gnp.invert is gnp.bitwise_invert and gnp.mod is gnp.remainder
    x = np.asarray([1.0, 2.0])
    np.testing.assert_array_equal(gnp.concatenate([x, x]), [1.0, 2.0, 1.0, 2.0])
    with pytest.raises(AttributeError, match="no 'cumsum': it follows the array API standard .* cumulative_sum"):
        gnp.cumsum
    with pytest.raises(AttributeError, match="no 'transpose'.*permute_dims"):
        gnp.transpose
    assert not hasattr(gnp, "amax")
    with pytest.raises(AttributeError, match="has no attribute 'no_such_function'"):
        gnp.no_such_function


def test_from_dlpack():
    out = gnp.from_dlpack(np.arange(3.0))
    same(out, np.arange(3.0))


def test_bitwise_operators_of_traced_values():
    """``&``, ``|``, ``^``, ``~``, ``<<``, ``>>`` of traced integer arrays are the bitwise
    functions (of booleans the logical ones), inside a transform as on plain arrays."""
    x = np.asarray([1.0, 2.0, 3.0])
    i = np.asarray([5, 6, 12])

    def f(v):
        k = gnp.astype(v, gnp.int64) + i
        m = v > 1.5
        bits = (k & 6) | (3 ^ k) ^ (~k) | (k << 2) >> (1 << gnp.astype(m, gnp.int64)) | (7 & k) | (1 | k)
        mask = (~m) | (m & True) ^ (m | m)
        return v * gnp.astype(bits, v.dtype) + gnp.astype(mask, v.dtype)

    k, m = i + x.astype(np.int64), x > 1.5
    bits = (k & 6) | (3 ^ k) ^ (~k) | (k << 2) >> (1 << m.astype(np.int64)) | (7 & k) | (1 | k)
    want = bits.astype(float)
    np.testing.assert_array_equal(gpuad.grad(lambda v: gnp.sum(f(v)))(x), want)
    np.testing.assert_array_equal(f(x), x * want + ((~m) | (m & True) ^ (m | m)))


def test_the_namespace_holds_only_its_own_names():
    """Every public name of gpuad.numpy is one of its functions or classes, a dtype, a constant or
    ``newaxis``: nothing its modules import for themselves (``math``, ``Tracer``, ``bind``, typing's
    names) leaks through the star imports."""
    import types

    constants = {"e", "pi", "inf", "nan", "newaxis"}
    strays = []
    for name, value in vars(gnp).items():
        if name.startswith("_") or name in constants:
            continue
        if isinstance(value, types.ModuleType):
            if not (name == "fft" and value.__name__ == "gpuad.numpy.fft"):  # the fft extension's namespace
                strays.append(name)
        elif callable(value) and not isinstance(value, np.dtype) and not getattr(value, "__module__", "").startswith("gpuad.numpy"):
            strays.append(name)
        elif not callable(value) and not isinstance(value, np.dtype) and name != "linalg":
            strays.append(name)
    assert strays == [], f"names that are not gpuad.numpy's own: {sorted(strays)}"
    with pytest.raises(AttributeError, match="has no attribute 'math'"):
        gnp.math  # noqa: B018
