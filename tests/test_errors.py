"""Bad input gives a clear error: the right exception type, a message naming the argument and
saying what to do. Plus the non-errors users worry about: NaN/inf inputs, constant functions, and
gpuad never writing into the caller's arrays."""

from __future__ import annotations

import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp

X3 = np.asarray([1.0, 2.0, 3.0])
M23 = np.arange(1.0, 7.0).reshape(2, 3)


def _sum_of(f):
    """A scalar function: the sum of ``f``'s output."""
    return lambda v: gnp.sum(f(v))


# ------------------------------------------------------------------------------------------------
# What grad accepts as inputs
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8, np.bool_])
def test_grad_rejects_integer_and_boolean_arrays(backend, dtype, jax_x64):
    """Integer or boolean inputs to grad raise TypeError naming the argument and its dtype and
    saying how to fix it, as JAX raises TypeError for them."""
    x = backend.asarray(np.asarray([1, 0, 1]).astype(dtype))
    with pytest.raises(TypeError, match=r"floating-point inputs.*argument 0 \(x\) has dtype .*astype"):
        gpuad.grad(lambda x: gnp.sum(x))(x)
    with pytest.raises(TypeError):
        jax_x64.grad(lambda x: x.sum())(jax_x64.numpy.asarray(np.asarray([1, 0, 1]).astype(dtype)))


@pytest.mark.parametrize(
    "transform",
    [
        lambda f, x: gpuad.grad(_sum_of(f))(x),
        lambda f, x: gpuad.value_and_grad(_sum_of(f))(x),
        lambda f, x: gpuad.jacrev(f)(x),
        lambda f, x: gpuad.vjp(f, x),
        lambda f, x: gpuad.jacfwd(f)(x),
        lambda f, x: gpuad.hessian(_sum_of(f))(x),
    ],
    ids=["grad", "value_and_grad", "jacrev", "vjp", "jacfwd", "hessian"],
)
def test_every_transform_rejects_integer_inputs(backend, transform):
    """Every transform refuses integer inputs with the same clear TypeError."""
    x = backend.asarray(np.arange(3))
    with pytest.raises(TypeError, match=r"requires floating-point inputs.*int"):
        transform(lambda v: v * 2, x)


def test_jvp_integer_primal_needs_a_none_tangent(backend):
    """An integer primal has no derivative: jvp wants None as its tangent (JAX's float0) and says
    so when given a float or integer tangent; with None it computes."""
    x = backend.asarray(np.arange(3))
    for t in (backend.asarray(np.ones(3)), x):
        with pytest.raises(TypeError, match=r"argument 0 \(v\) has an integer or boolean dtype.*tangent must be None.*float0"):
            gpuad.jvp(lambda v: v * 2, (x,), (t,))
    out, tan = gpuad.jvp(lambda v, w: gnp.astype(v, w.dtype) * w, (x, backend.asarray(np.ones(3))), (None, backend.asarray(np.ones(3))))
    np.testing.assert_array_equal(gpuad.to_numpy(tan), [0.0, 1.0, 2.0])


@pytest.mark.parametrize("value, suggestion", [(3, "3.0"), (0, "0.0"), (True, "1.0")])
def test_grad_rejects_python_int_and_bool(value, suggestion):
    """A Python int or bool to grad raises TypeError naming the argument, the value, and the float
    to pass instead (a Python float works)."""
    f = gpuad.grad(lambda x: x * x)
    with pytest.raises(TypeError, match=rf"argument 0 \(x\) is the Python {type(value).__name__} {value!r}"):
        f(value)
    with pytest.raises(TypeError, match=rf"pass a float \(e\.g\. {suggestion}\)"):
        f(value)
    assert float(f(3.0)) == 6.0


@pytest.mark.parametrize("value, shown", [("abc", "str"), (b"ab", "bytes"), (object(), "object")])
def test_grad_rejects_non_array_leaf(backend, value, shown):
    """A string (or other non-array) where grad expects an array raises TypeError naming the
    argument and the type received."""
    with pytest.raises(TypeError, match=rf"grad: argument 1 \(y\) must be an array.*got {shown}"):
        gpuad.grad(lambda x, y: gnp.sum(x * y), argnums=(0, 1))(backend.asarray(X3), value)


def test_grad_of_none_input():
    """None is an empty pytree (as in JAX), so grad calls the function with None and the first
    gpuad.numpy operation reports that it got None instead of an array."""
    with pytest.raises(TypeError, match=r"x must be an array, got NoneType \(None\)"):
        gpuad.grad(lambda x: gnp.sum(gnp.sin(x)))(None)


@pytest.mark.parametrize(
    "call, pattern",
    [
        (lambda x: gnp.sin(None), r"x must be an array, got NoneType \(None\)"),
        (lambda x: gnp.sin("1.0"), r"x must be an array, got str \('1\.0'\)"),
        (lambda x: gnp.sum(None), r"x must be an array, got NoneType"),
        (lambda x: gnp.add(x, None), r"x2 must be an array, got NoneType"),
        (lambda x: gnp.multiply("2", x), r"x1 must be an array, got str"),
        (lambda x: gnp.matmul(None, x), r"x1 must be an array, got NoneType"),
        (lambda x: gnp.where(None, x, x), r"condition must be an array, got NoneType"),
        (lambda x: gnp.concat([x, None]), r"arrays\[1\] must be an array, got NoneType"),
        (lambda x: gnp.stack([x, "x"]), r"arrays\[1\] must be an array, got str"),
    ],
    ids=["sin-None", "sin-str", "sum-None", "add-None", "multiply-str", "matmul-None", "where-None",
         "concat-None", "stack-str"],
)
def test_numpy_functions_reject_none_and_strings(backend, call, pattern):
    """gpuad.numpy functions given None or a string raise TypeError naming the parameter, both on
    plain arrays and inside grad."""
    x = backend.asarray(X3)
    with pytest.raises(TypeError, match=pattern):
        call(x)
    with pytest.raises(TypeError, match=pattern):
        gpuad.grad(lambda v: gnp.sum(call(v)))(x)


# ------------------------------------------------------------------------------------------------
# argnums
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("argnums, needed", [(1, 2), ((0, 2), 3), (-2, 2)])
def test_argnums_out_of_range(backend, argnums, needed, jax_x64):
    """argnums beyond the arguments passed raises TypeError naming argnums and how many
    positional arguments it needs (JAX raises TypeError too)."""
    x = backend.asarray(X3)
    with pytest.raises(TypeError, match=rf"argnums={argnums!r}".replace("(", r"\(").replace(")", r"\)")) as info:
        gpuad.grad(lambda a, b=None: gnp.sum(a), argnums=argnums)(x)
    assert f"at least {needed} positional arguments" in str(info.value)
    # JAX: TypeError for too large argnums (its ValueError for too negative ones is not copied)
    with pytest.raises(TypeError if argnums != -2 else ValueError):
        jax_x64.grad(lambda a, b=None: a.sum(), argnums=argnums)(jax_x64.numpy.asarray(X3))


@pytest.mark.parametrize("argnums", ["0", 1.0, None, (), [], True, (0, "1"), (0, 1.5), {0: 1}])
@pytest.mark.parametrize("transform", [gpuad.grad, gpuad.value_and_grad, gpuad.jacrev])
def test_argnums_not_int_or_tuple(transform, argnums):
    """argnums that is not an int or a non-empty tuple of ints raises TypeError as soon as the
    transform is built, naming argnums and the value given."""
    with pytest.raises(TypeError, match=r"argnums must be an int or a (non-empty )?tuple of ints, got "):
        transform(lambda a, b: gnp.sum(a * b), argnums=argnums)


@pytest.mark.parametrize("argnums", [(0, 0), (1, 0, 1)])
def test_argnums_duplicated(argnums):
    """Repeated argnums raise ValueError naming argnums."""
    with pytest.raises(ValueError, match=r"argnums .* repeats an argument"):
        gpuad.grad(lambda a, b: gnp.sum(a * b), argnums=argnums)


# ------------------------------------------------------------------------------------------------
# What grad accepts as outputs; has_aux
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("transform", [gpuad.grad, gpuad.value_and_grad])
def test_grad_of_non_scalar_output(backend, transform):
    """grad of a vector output raises TypeError saying 'scalar', giving the shape, and pointing to
    jacrev/vjp."""
    with pytest.raises(TypeError, match=r"scalar-output functions\. Output had shape: \(2, 3\).*jacrev/vjp"):
        transform(lambda v: v * v)(backend.asarray(M23))


def test_grad_of_tuple_output_suggests_has_aux(backend):
    """grad of a function returning a pair, without has_aux, says to pass has_aux=True."""
    with pytest.raises(TypeError, match=r"single scalar array.*pass has_aux=True"):
        gpuad.grad(lambda v: (gnp.sum(v), v))(backend.asarray(X3))


@pytest.mark.parametrize(
    "fun",
    [lambda v: gnp.sum(gnp.astype(v, gnp.int64)), lambda v: gnp.any(v > 1), lambda v: 3],
    ids=["int64", "bool", "python-int"],
)
def test_grad_of_integer_output(backend, fun):
    """grad of an integer- or boolean-valued output raises TypeError naming the dtype."""
    with pytest.raises(TypeError, match=r"real-valued floating outputs.*output has dtype"):
        gpuad.grad(fun)(backend.asarray(X3))


@pytest.mark.parametrize(
    "call",
    [
        lambda f, x: gpuad.grad(f, has_aux=True)(x),
        lambda f, x: gpuad.value_and_grad(f, has_aux=True)(x),
        lambda f, x: gpuad.jacrev(f, has_aux=True)(x),
        lambda f, x: gpuad.vjp(f, x, has_aux=True),
        lambda f, x: gpuad.jvp(f, (x,), (x,), has_aux=True),
    ],
    ids=["grad", "value_and_grad", "jacrev", "vjp", "jvp"],
)
@pytest.mark.parametrize(
    "fun",
    [lambda v: gnp.sum(v), lambda v: (gnp.sum(v),), lambda v: (gnp.sum(v), v, v)],
    ids=["scalar", "1-tuple", "3-tuple"],
)
def test_has_aux_requires_a_pair(backend, call, fun):
    """has_aux=True with a function not returning a pair raises TypeError asking for
    (output, aux)."""
    with pytest.raises(TypeError, match=r"has_aux=True requires the function to return a pair \(output, aux\)"):
        call(fun, backend.asarray(X3))


# ------------------------------------------------------------------------------------------------
# Non-callables
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [3, "f", None, np.ones(2)])
@pytest.mark.parametrize(
    "make",
    [
        lambda f: gpuad.grad(f),
        lambda f: gpuad.value_and_grad(f),
        lambda f: gpuad.jacrev(f),
        lambda f: gpuad.vjp(f, X3),
        lambda f: gpuad.jvp(f, (X3,), (X3,)),
    ],
    ids=["grad", "value_and_grad", "jacrev", "vjp", "jvp"],
)
def test_non_callable_is_refused(make, bad):
    """Passing a non-function to a transform raises TypeError naming the transform and what it
    got, before anything is computed."""
    with pytest.raises(TypeError, match=rf"expected a function to transform, got {type(bad).__name__}"):
        make(bad)


# ------------------------------------------------------------------------------------------------
# jvp tangents, vjp cotangents
# ------------------------------------------------------------------------------------------------


def test_jvp_tangent_of_wrong_shape(backend):
    """A tangent whose shape differs from its primal raises ValueError naming the argument and
    both shapes."""
    pattern = r"tangent of argument 0 \(v\) has shape \(2, 3\) but the primal has shape \(3,\)"
    with pytest.raises(ValueError, match=pattern):
        gpuad.jvp(lambda v: v * v, (backend.asarray(X3),), (backend.asarray(M23),))


@pytest.mark.parametrize("t_dtype", [np.float32, np.int64])
def test_jvp_tangent_of_wrong_dtype(backend, t_dtype):
    """A tangent whose dtype differs from its primal raises TypeError naming the argument and both
    dtypes (tangents must have their primal's dtype)."""
    t = backend.asarray(np.ones(3, dtype=t_dtype))
    name = np.dtype(t_dtype).name
    pattern = rf"tangent of argument 0 \(v\) has dtype \S*\b{name}\b but the primal has dtype \S*float64.*primal's dtype"
    with pytest.raises(TypeError, match=pattern):
        gpuad.jvp(lambda v: v * v, (backend.asarray(X3),), (t,))


@pytest.mark.parametrize(
    "primals, tangents, pattern",
    [
        (lambda x: (x, x), lambda x: (x,), r"primals have structure \(\*, \*\) but tangents have structure \(\*,\)"),
        (lambda x: ((x, x),), lambda x: ([x, x],), r"primals have structure .* but tangents have structure"),
        (lambda x: ({"a": x},), lambda x: ({"b": x},), r"primals have structure .* but tangents have structure"),
        (lambda x: x, lambda x: x, r"primals and tangents must be tuples \(or lists\)"),
        (lambda x: (x,), lambda x: ("t",), r"tangent of argument 0 \(v\) must be an array, got str"),
    ],
    ids=["count", "tuple-vs-list", "dict-keys", "not-a-tuple", "string"],
)
def test_jvp_tangent_of_wrong_structure(backend, primals, tangents, pattern):
    """Tangents that do not mirror the primals' structure raise TypeError showing both structures."""
    x = backend.asarray(X3)
    with pytest.raises(TypeError, match=pattern):
        gpuad.jvp(lambda v, w=None: v, primals(x), tangents(x))


def test_vjp_fn_cotangent_of_wrong_shape(backend):
    """vjp_fn with a cotangent of the wrong shape raises ValueError giving both shapes."""
    _, vjp_fn = gpuad.vjp(lambda v: v * v, backend.asarray(X3))
    with pytest.raises(ValueError, match=r"cotangent leaf 0 has shape \(2, 3\) but the output has shape \(3,\)"):
        vjp_fn(backend.asarray(M23))
    with pytest.raises(ValueError, match=r"cotangent leaf 0 has shape \(\) but the output has shape \(3,\)"):
        vjp_fn(backend.asarray(np.asarray(1.0)))


@pytest.mark.parametrize(
    "cotangent, pattern",
    [
        (lambda y: (y,), r"cotangent has structure \(\*,\) but the function's output has structure \(\*, \*\)"),
        (lambda y: [y, y], r"cotangent has structure \[\*, \*\] but the function's output has structure \(\*, \*\)"),
        (lambda y: y, r"cotangent has structure \* but the function's output has structure \(\*, \*\)"),
        (lambda y: None, r"cotangent has structure None"),
    ],
    ids=["too-few", "list-for-tuple", "leaf-for-tuple", "None"],
)
def test_vjp_fn_cotangent_of_wrong_structure(backend, cotangent, pattern):
    """vjp_fn with a cotangent whose structure differs from the output's raises ValueError showing
    both structures."""
    x = backend.asarray(X3)
    _, vjp_fn = gpuad.vjp(lambda v: (v * v, gnp.sin(v)), x)
    with pytest.raises(ValueError, match=pattern):
        vjp_fn(cotangent(x))


def test_vjp_fn_cotangent_not_an_array(backend):
    """vjp_fn with a Python number or string as a cotangent leaf raises TypeError naming the leaf."""
    _, vjp_fn = gpuad.vjp(lambda v: v * v, backend.asarray(X3))
    for bad, shown in [(1.0, "float"), ("ct", "str")]:
        with pytest.raises(TypeError, match=rf"cotangent leaf 0 must be an array, got {shown}"):
            vjp_fn(bad)


# ------------------------------------------------------------------------------------------------
# Shapes
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(4, 2), (4, -1), (-1, -1), (7,)])
def test_reshape_to_incompatible_shape(backend, shape):
    """reshape to a shape of another size raises ValueError giving both shapes, on plain arrays and
    inside grad."""
    pattern = r"reshape: .*shape \(6,\)" if shape.count(-1) < 2 else r"reshape: .*more than one -1"
    x = backend.asarray(np.arange(6.0))
    with pytest.raises(ValueError, match=pattern):
        gnp.reshape(x, shape)
    with pytest.raises(ValueError, match=pattern):
        gpuad.grad(_sum_of(lambda v: gnp.reshape(v, shape)))(x)


@pytest.mark.parametrize("use_operator", [False, True])
def test_matmul_of_misaligned_shapes(backend, use_operator):
    """matmul of (2, 3) by (2, 2) raises ValueError giving both shapes and the mismatch, whether
    called as gnp.matmul or with @, on a traced left or right operand."""
    x, w = backend.asarray(M23), backend.asarray(np.ones((2, 2)))
    pattern = r"matmul: shapes \(2, 3\) and \(2, 2\) do not align \(3 != 2\)"
    with pytest.raises(ValueError, match=pattern):
        gpuad.grad(_sum_of(lambda v: v @ w if use_operator else gnp.matmul(v, w)))(x)
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 2\) and \(3,\) do not align"):
        # (array_api_strict's own @ refuses a traced right operand, so the operator form uses
        # the traced value's reflected operator directly)
        mm = (lambda a, b: b.__rmatmul__(a)) if use_operator else gnp.matmul
        gpuad.grad(_sum_of(lambda v: mm(w, v)))(backend.asarray(X3))


def test_matmul_of_zero_d_operands(backend):
    """matmul with a 0-d operand raises ValueError giving the shapes and suggesting multiply."""
    x = backend.asarray(M23)
    pattern = r"matmul: operands must have at least 1 dimension, got shapes \(\) and \(2, 3\); use multiply"
    with pytest.raises(ValueError, match=pattern):
        gnp.matmul(backend.asarray(np.asarray(2.0)), x)
    with pytest.raises(ValueError, match=pattern):
        gpuad.grad(_sum_of(lambda v: gnp.matmul(v[0, 0], v)))(x)


@pytest.mark.parametrize(
    "other, axis, pattern",
    [
        ((3, 3), 1, r"arrays\[1\] has shape \(3, 3\), which does not match arrays\[0\] \(2, 3\) outside axis 1"),
        ((2, 2), 0, r"arrays\[1\] has shape \(2, 2\), which does not match arrays\[0\] \(2, 3\) outside axis 0"),
        ((3,), 0, r"arrays\[1\] has shape \(3,\), which does not match arrays\[0\] \(2, 3\)"),
    ],
)
def test_concat_of_mismatched_shapes(backend, other, axis, pattern):
    """concat of arrays that differ outside the joining axis (or in rank) raises ValueError naming
    the offending array and both shapes."""
    x, y = backend.asarray(M23), backend.asarray(np.ones(other))
    with pytest.raises(ValueError, match=pattern):
        gpuad.grad(_sum_of(lambda v: gnp.concat([v, y], axis=axis)))(x)


def test_concat_that_is_valid_is_not_refused(backend):
    """Control: shapes that differ only along the joining axis concatenate fine."""
    x, y = backend.asarray(M23), backend.asarray(np.ones((3, 3)))
    g = gpuad.grad(_sum_of(lambda v: gnp.concat([v, y], axis=0)))(x)
    np.testing.assert_array_equal(backend.to_numpy(g), np.ones((2, 3)))


@pytest.mark.parametrize(
    "shape, pattern",
    [
        ((3, 3), r"broadcast_to: cannot broadcast an array of shape \(2, 3\) to shape \(3, 3\)"),
        ((3,), r"broadcast_to: cannot broadcast an array of shape \(2, 3\) to shape \(3,\)"),
        ((4, 2, 4), r"broadcast_to: cannot broadcast an array of shape \(2, 3\) to shape \(4, 2, 4\)"),
    ],
)
def test_broadcast_to_impossible_shape(backend, shape, pattern):
    """broadcast_to a shape the input cannot broadcast to raises ValueError giving both shapes."""
    x = backend.asarray(M23)
    with pytest.raises(ValueError, match=pattern):
        gnp.broadcast_to(x, shape)
    with pytest.raises(ValueError, match=pattern):
        gpuad.grad(_sum_of(lambda v: gnp.broadcast_to(v, shape)))(x)


@pytest.mark.parametrize(
    "op",
    [
        lambda v, a: gnp.sum(v, axis=a),
        lambda v, a: gnp.flip(v, axis=a),
        lambda v, a: gnp.squeeze(v, axis=a),
        lambda v, a: gnp.sum(v, axis=(0, a)),
    ],
    ids=["sum", "flip", "squeeze", "sum-tuple"],
)
@pytest.mark.parametrize("axis", [2, -3, 7])
def test_axis_out_of_range(backend, op, axis):
    """An axis outside [-ndim, ndim) raises ValueError (as NumPy's AxisError, a ValueError) naming
    the axis and the rank."""
    x = backend.asarray(M23)
    pattern = rf"axis {axis} is out of bounds for an array of dimension 2"
    with pytest.raises(ValueError, match=pattern):
        op(x, axis)
    with pytest.raises(ValueError, match=pattern):
        gpuad.grad(_sum_of(lambda v: op(v, axis)))(x)


@pytest.mark.parametrize("axis", [0, 1, -1, (0, 1)])
def test_squeeze_of_axis_not_of_size_one(backend, axis):
    """squeeze of an axis whose size is not 1 raises ValueError giving the size and the shape."""
    x = backend.asarray(M23)
    with pytest.raises(ValueError, match=r"squeeze: axis -?\d has size [23], not 1 \(shape \(2, 3\)\)"):
        gpuad.grad(_sum_of(lambda v: gnp.squeeze(v, axis=axis)))(x)


# ------------------------------------------------------------------------------------------------
# Indexing and mutation of traced values
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "index",
    [
        lambda v: v > 2.0,
        lambda v: (v > 2.0)[0, ...],
        lambda v: gnp.isfinite(v),
    ],
    ids=["mask", "row-mask", "isfinite"],
)
def test_boolean_mask_of_traced_value(backend, index):
    """Boolean-mask indexing of a traced value raises IndexError suggesting gnp.where, in reverse
    and forward mode."""
    x = backend.asarray(M23)
    with pytest.raises(IndexError, match=r"boolean mask indexing .* use gnp\.where\(mask, x, 0\)"):
        gpuad.grad(lambda v: gnp.sum(v[index(v)]))(x)
    with pytest.raises(IndexError, match=r"gnp\.where"):
        gpuad.jvp(lambda v: v[index(v)], (x,), (x,))


def test_boolean_python_index_of_traced_value(backend):
    """x[True] (a Python bool as index) raises the same IndexError suggesting where."""
    with pytest.raises(IndexError, match=r"gnp\.where"):
        gpuad.grad(lambda v: gnp.sum(v[True]))(backend.asarray(X3))



@pytest.mark.parametrize("key", [(0, 0, 0), (0, ..., 1, 2), (None, 0, 1, 2)], ids=["3-ints", "ellipsis", "newaxis"])
def test_too_many_indices(backend, key):
    """More indices than axes raises IndexError giving the rank and the count."""
    with pytest.raises(IndexError, match=r"too many indices for array: array is 2-dimensional, but 3 were indexed"):
        gpuad.grad(lambda v: gnp.sum(v[key]))(backend.asarray(M23))


@pytest.mark.parametrize(
    "key, pattern",
    [
        (lambda b: 2, r"index 2 is out of bounds for axis 0 with size 2"),
        (lambda b: -3, r"index -3 is out of bounds for axis 0 with size 2"),
        (lambda b: (slice(None), 3), r"index 3 is out of bounds for axis 1 with size 3"),
        (lambda b: (0, -4), r"index -4 is out of bounds for axis 1 with size 3"),
        (lambda b: (slice(None), b.asarray(np.asarray([0, 5]))), r"index 5 is out of bounds"),
        (lambda b: (slice(None), [0, 4]), r"index 4 is out of bounds"),
        (lambda b: (slice(None), b.asarray(np.asarray([0, -7]))), r"is out of bounds for axis 1 with size 3"),
    ],
    ids=["int", "negative", "axis1", "negative-axis1", "int-array", "list", "very-negative-int-array"],
)
def test_out_of_bounds_index(backend, key, pattern):
    """An integer (or integer-array) index out of bounds raises IndexError giving the index, the
    axis and its size."""
    k = key(backend)
    with pytest.raises(IndexError, match=pattern):
        gpuad.grad(lambda v: gnp.sum(v[k]))(backend.asarray(M23))


@pytest.mark.parametrize(
    "key, pattern",
    [
        (lambda: (slice(None), np.asarray([0, -7])), r"index -7 is out of bounds for axis 1 with size 3"),
        (lambda: (slice(None), np.asarray([0, -4])), r"index -4 is out of bounds for axis 1 with size 3"),
        (lambda: (slice(None), [0, -4]), r"index -4 is out of bounds"),
        (lambda: (np.asarray([2, 0]), slice(None)), r"index 2 is out of bounds for axis 0 with size 2"),
    ],
    ids=["very-negative", "negative", "negative-list", "axis0"],
)
def test_out_of_bounds_index_array_on_host(key, pattern):
    """Integer-array indices of host (NumPy) arrays are bounds-checked with NumPy's message, also
    negative ones beyond -size. (On a device the check would be a hidden sync, so there, as in JAX,
    no check is made.)"""
    k = key()
    with pytest.raises(IndexError, match=pattern):
        gpuad.grad(lambda v: gnp.sum(v[k]))(M23)


@pytest.mark.parametrize("key", [0, slice(0, 2), (0, 1), ...])
def test_setitem_on_traced_value(backend, key):
    """Assigning into a traced value raises TypeError saying traced arrays are immutable and
    pointing to x.at[idx].set(v) (and where/concat/stack)."""

    def f(v):
        v[key] = 0.0
        return gnp.sum(v)

    with pytest.raises(TypeError, match=r"immutable inside a transform: use x\.at\[idx\]\.set\(v\).*where, concat or stack"):
        gpuad.grad(f)(backend.asarray(M23))
    with pytest.raises(TypeError, match=r"immutable"):
        gpuad.jvp(f, (backend.asarray(M23),), (backend.asarray(M23),))


@pytest.mark.parametrize("convert", [np.asarray, np.array, lambda v: np.asarray(v, dtype=np.float64)])
def test_numpy_conversion_of_traced_value(backend, convert):
    """np.asarray on a traced value inside grad or jvp raises TypeError pointing to gpuad.numpy and
    stop_gradient (instead of silently dropping the derivative)."""
    pattern = r"traced value cannot be converted to a NumPy array.*gpuad\.numpy.*stop_gradient"
    with pytest.raises(TypeError, match=pattern):
        gpuad.grad(lambda v: gnp.sum(convert(v)))(backend.asarray(X3))
    with pytest.raises(TypeError, match=pattern):
        gpuad.jvp(lambda v: convert(v), (backend.asarray(X3),), (backend.asarray(X3),))


@pytest.mark.parametrize(
    "record",
    [
        lambda f, x: gpuad.grad(f)(x),
        lambda f, x: gpuad.vjp(f, x),
        lambda f, x: gpuad.jacrev(f)(x),
        lambda f, x: gpuad.jvp(f, (x,), (x,)),
    ],
    ids=["grad", "vjp", "jacrev", "jvp"],
)
@pytest.mark.parametrize(
    "use",
    [
        lambda t, x: gnp.sin(t),
        lambda t, x: t * 2.0,
        lambda t, x: t[0],
        lambda t, x: gpuad.grad(lambda y: gnp.sum(y * t))(x),
    ],
    ids=["sin", "operator", "index", "in-new-grad"],
)
def test_leaked_tracer(backend, record, use):
    """A traced value kept past the end of its transform raises LeakedTracerError when used,
    explaining that it escaped and what to do instead."""
    leaked = []

    def f(v):
        leaked.append(v)
        return gnp.sum(v * v)

    x = backend.asarray(X3)
    record(f, x)
    assert len(leaked) == 1
    with pytest.raises(gpuad.LeakedTracerError, match=r"escaped from the transform.*Return it from the function"):
        use(leaked[0], x)


@pytest.mark.parametrize("cond_dtype", [np.float64, np.int64, np.float32])
def test_where_with_non_boolean_condition(backend, cond_dtype):
    """where() with a non-boolean condition raises TypeError giving the dtype and suggesting a
    comparison, on plain arrays and inside grad (the traced value itself as condition, too)."""
    x = backend.asarray(X3)
    cond = backend.asarray(np.asarray([1, 0, 1]).astype(cond_dtype))
    pattern = r"where: condition must be a boolean array, got dtype .*; compare first"
    with pytest.raises(TypeError, match=pattern):
        gnp.where(cond, x, 0.0)
    with pytest.raises(TypeError, match=pattern):
        gpuad.grad(_sum_of(lambda v: gnp.where(cond, v, 0.0)))(x)
    with pytest.raises(TypeError, match=pattern):
        gpuad.grad(_sum_of(lambda v: gnp.where(v, v, 0.0)))(x)


# ------------------------------------------------------------------------------------------------
# NaN and inf inputs
# ------------------------------------------------------------------------------------------------


def test_nan_and_inf_inputs_propagate(backend, jax_x64):
    """grad of sum(x*x) at inputs holding nan/inf gives nan/inf at those points (2x, as JAX) and
    finite values elsewhere; jvp and vjp too. Nothing raises."""
    data = np.asarray([1.0, np.nan, np.inf, -np.inf, 2.0, -0.5])
    finite = np.isfinite(data)
    x = backend.asarray(data)
    with np.errstate(all="raise"):  # also: no floating-point warning is needed to get there
        g = backend.to_numpy(gpuad.grad(lambda v: gnp.sum(v * v))(x))
    np.testing.assert_array_equal(g, 2 * data)
    assert np.isnan(g[1]) and g[2] == np.inf and g[3] == -np.inf
    assert np.all(np.isfinite(g[finite]))
    np.testing.assert_array_equal(g, np.asarray(jax_x64.grad(lambda v: (v * v).sum())(data)))

    y, t = gpuad.jvp(lambda v: v * v, (x,), (backend.asarray(np.ones_like(data)),))
    np.testing.assert_array_equal(backend.to_numpy(y), data * data)
    np.testing.assert_array_equal(backend.to_numpy(t), 2 * data)
    _, vjp_fn = gpuad.vjp(lambda v: v * v, x)
    np.testing.assert_array_equal(backend.to_numpy(vjp_fn(backend.asarray(np.ones_like(data)))[0]), 2 * data)


# ------------------------------------------------------------------------------------------------
# Functions whose output does not depend on the input
# ------------------------------------------------------------------------------------------------


def _constant_functions(backend):
    c = backend.asarray(np.asarray([1.0, 2.0, 3.0]))
    return {
        "python-float": lambda v: 3.0,
        "constant-array": lambda v: gnp.sum(c),
        "stop_gradient": lambda v: gnp.sum(gpuad.stop_gradient(v) * 2.0),
        "integer-cast": lambda v: gnp.sum(gnp.astype(gnp.astype(v, gnp.int64), gnp.float64)),
    }


@pytest.mark.parametrize("kind", ["python-float", "constant-array", "stop_gradient", "integer-cast"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_constant_function_has_zero_gradient(backend, jax_x64, kind, dtype):
    """grad of a function that ignores its input returns zeros of the input's shape, dtype,
    library and device, matching jax.grad's shape and dtype (x64 on)."""
    jnp = jax_x64.numpy
    data = np.arange(6.0).reshape(2, 3).astype(dtype)
    x = backend.asarray(data)
    g = gpuad.grad(_constant_functions(backend)[kind])(x)
    assert type(g) is type(x)
    if backend.name == "strict":
        assert g.device == x.device
    expected = jax_x64.grad(lambda v: 3.0)(jnp.asarray(data))
    g_np = backend.to_numpy(g)
    assert g_np.shape == expected.shape == data.shape
    assert g_np.dtype == np.dtype(expected.dtype) == dtype
    np.testing.assert_array_equal(g_np, np.zeros_like(data))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unused_argument_has_zero_gradient(backend, jax_x64, dtype):
    """With argnums=(0, 1) and the second argument unused, its gradient is zeros of its own shape
    and dtype (as JAX), while the first is right."""
    a = backend.asarray(np.asarray([1.0, 2.0], dtype=dtype))
    b = backend.asarray(np.ones((3, 1), dtype=dtype))
    ga, gb = gpuad.grad(lambda a, b: gnp.sum(a * a), argnums=(0, 1))(a, b)
    ja, jb = jax_x64.grad(lambda a, b: (a * a).sum(), argnums=(0, 1))(
        jax_x64.numpy.asarray(np.asarray([1.0, 2.0], dtype=dtype)), jax_x64.numpy.ones((3, 1), dtype=dtype)
    )
    np.testing.assert_array_equal(backend.to_numpy(ga), [2.0, 4.0])
    gb_np = backend.to_numpy(gb)
    assert gb_np.shape == jb.shape == (3, 1) and gb_np.dtype == np.dtype(jb.dtype) == dtype
    np.testing.assert_array_equal(gb_np, 0.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_constant_function_in_other_transforms(backend, dtype):
    """vjp, jacrev and jvp of a constant function give zeros of the right shape and dtype."""
    data = np.asarray([1.0, 2.0, 3.0], dtype=dtype)
    x = backend.asarray(data)
    c = backend.asarray(np.asarray([5.0, 6.0], dtype=dtype))
    (ct,) = gpuad.vjp(lambda v: c, x)[1](c)
    jac = gpuad.jacrev(lambda v: c)(x)
    _, t = gpuad.jvp(lambda v: c, (x,), (x,))
    for value, shape in [(ct, (3,)), (jac, (2, 3)), (t, (2,))]:
        v = backend.to_numpy(value)
        assert v.shape == shape and v.dtype == dtype
        np.testing.assert_array_equal(v, 0.0)


# ------------------------------------------------------------------------------------------------
# gpuad never writes into the caller's arrays
# ------------------------------------------------------------------------------------------------


def _functions(idx):
    return {
        "basic-index": lambda v: gnp.concat([v[1:, ::-1][0], v[0, :2], v[..., -1]]) * v[0, 0],
        "int-array-index": lambda v: v[:, idx] * v[1, idx],
        "where": lambda v: gnp.where(v > 2.5, v * v, gnp.sin(v)),
        "concat": lambda v: gnp.concat([v, v * 2.0, v[:1]], axis=0),
    }


@pytest.mark.parametrize("name", ["basic-index", "int-array-index", "where", "concat"])
@pytest.mark.parametrize("transform", ["grad", "vjp", "jvp", "jacrev"])
def test_inputs_are_never_written(backend, rng, name, transform):
    """grad/vjp/jvp/jacrev on functions with basic and integer-array indexing (repeated and
    negative indices), where and concat leave the inputs, index arrays, tangents and cotangents
    unchanged. NumPy inputs are also made read-only, so any write would raise at once."""
    data = rng.uniform(0.5, 4.0, size=(2, 3))
    idx_data = np.asarray([2, 0, 2, -1])
    x = backend.asarray(data)
    idx = backend.asarray(idx_data)
    f = _functions(idx)[name]
    out_shape = tuple(gpuad.vjp(f, x)[0].shape)  # through gpuad: strict's own indexing is narrower
    tangent = backend.asarray(rng.standard_normal(data.shape))
    cotangent = backend.asarray(rng.standard_normal(out_shape))
    watched = [x, idx, tangent, cotangent]
    before = [backend.to_numpy(a).copy() for a in watched]
    if backend.name == "numpy":
        for a in watched:
            a.flags.writeable = False

    if transform == "grad":
        gpuad.grad(lambda v: gnp.sum(f(v) * cotangent))(x)
    elif transform == "vjp":
        _, vjp_fn = gpuad.vjp(f, x)
        vjp_fn(cotangent)
        vjp_fn(cotangent)  # twice: the tape is reusable and still writes nothing back
    elif transform == "jvp":
        gpuad.jvp(f, (x,), (tangent,))
    else:
        gpuad.jacrev(f)(x)

    for a, b in zip(watched, before):
        after = backend.to_numpy(a)
        assert after.dtype == b.dtype and after.shape == b.shape
        np.testing.assert_array_equal(after, b)
