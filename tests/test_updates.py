"""Functional updates x.at[idx].set(v), .add, .subtract, .multiply, .min, .max, .get (the spec rows'
.at section checks their derivatives against JAX): results on plain arrays against NumPy's own
in-place operations on a copy, the input never written, repeated indices, per-point indices under
vmap against jax.vmap, JAX's conventions at ties, and every error path."""

from __future__ import annotations

import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp

from .helpers import check

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402

X = np.arange(20.0).reshape(4, 5) * 0.37 - 3.0
REPEATS = np.asarray([0, 3, 0, -1, 3, 3])  # row 0 twice, row 3 (= -1) four times

# NumPy's in-place operation for each method, applied to a copy (the expected result).
IN_PLACE = {
    "add": np.add.at,
    "subtract": np.subtract.at,
    "multiply": np.multiply.at,
    "min": np.minimum.at,
    "max": np.maximum.at,
}


def expected(method, x, key, v):
    out = x.copy()
    if method == "set":
        out[key] = v  # NumPy: the last of repeated indices wins
    else:
        IN_PLACE[method](out, key, v)
    return out


KEYS = {
    "int": (2, np.linspace(-1.0, 1.0, 5)),
    "negative_int": (-1, 2.5),
    "slice": ((slice(1, None, 2), slice(None, 3)), np.ones((2, 3)) * 4.0),
    "ellipsis_none": ((Ellipsis, None, 1), np.asarray([[7.0]])),
    "repeats": (REPEATS, np.arange(30.0).reshape(6, 5) - 12.0),
    "repeats_broadcast": (REPEATS, np.linspace(-5.0, 5.0, 6)[:, None]),
    "pairs": ((np.asarray([0, 2, 0]), np.asarray([1, -1, 1])), np.asarray([10.0, -20.0, 30.0])),
    "slice_and_array": ((slice(1, None), np.asarray([4, 0, 4])), np.asarray([1.5, -2.5, 3.5])),
    "int_and_array": ((1, np.asarray([[0, 2], [2, 2]])), np.asarray([[1.0, 2.0], [3.0, 4.0]])),
}


def _numpy_key(key):
    key = key if isinstance(key, tuple) else (key,)
    return tuple(k for k in key)


@pytest.mark.parametrize("method", ["set", "add", "subtract", "multiply", "min", "max"])
@pytest.mark.parametrize("case", list(KEYS))
def test_plain_arrays_match_numpy_in_place(backend, method, case):
    """gnp.at(x)[idx].<method>(v) on plain arrays equals NumPy's in-place operation on a copy
    (np.add.at, np.minimum.at, ...; x[idx] = v for set), on every backend, and x is not written."""
    key, v = KEYS[case]
    if case == "ellipsis_none":  # NumPy's ufunc.at takes no new axes; the same elements without it
        want = expected(method, X, (Ellipsis, 1), v[:, 0])
    else:
        want = expected(method, X, _numpy_key(key), v)
    xb = backend.asarray(X)
    keyb = tuple(backend.asarray(k) if isinstance(k, np.ndarray) else k for k in _numpy_key(key))
    got = getattr(gnp.at(xb)[keyb], method)(backend.asarray(v))
    check(got, want, rtol=1e-13, atol=1e-13)
    check(xb, X, rtol=0, atol=0)  # the input is unchanged
    if backend.name == "numpy":
        got[...] = 0.0  # and the result is a new array, not a view of it
        np.testing.assert_array_equal(xb, X)


def test_get_and_scalars(backend):
    """get is x[idx] (a new array); a Python number as v; x 0-d."""
    xb = backend.asarray(X)
    check(gnp.at(xb)[1, 2:].get(), X[1, 2:], rtol=0, atol=0)
    check(gnp.at(xb)[backend.asarray(REPEATS)].get(), X[REPEATS], rtol=0, atol=0)
    if backend.name == "numpy":
        got = gnp.at(xb)[1].get()
        got[...] = 0.0
        np.testing.assert_array_equal(xb, X)
    check(gnp.at(xb)[:, 0].set(3), expected("set", X, (slice(None), 0), 3.0), rtol=0, atol=0)
    check(gnp.at(backend.asarray(np.float64(2.0)))[()].add(1.5), 3.5, rtol=0, atol=0)


def test_dtypes_follow_x():
    """v is cast to x's dtype, as JAX does: float32 stays float32, an int array takes ints."""
    x32 = X.astype(np.float32)
    got = gnp.at(x32)[0].add(np.ones(5))
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, np.asarray(jnp.asarray(x32).at[0].add(jnp.ones(5))))
    xi = np.arange(6)
    got = gnp.at(xi)[np.asarray([1, 1, 4])].add(np.asarray([2, 3, 4]))
    assert got.dtype == xi.dtype
    np.testing.assert_array_equal(got, [0, 6, 2, 3, 8, 5])
    got = gnp.at(xi)[2].set(7.9)
    np.testing.assert_array_equal(got, np.asarray(jnp.asarray(xi).at[2].set(7.9)))


def test_traced_values_have_at():
    """x.at on a traced value is gnp.at(x); its result is traced and differentiable."""
    g = gpuad.grad(lambda x: gnp.sum(x.at[1].set(x[0] * 3.0) ** 2))(X)
    want = jax.grad(lambda x: jnp.sum(x.at[1].set(x[0] * 3.0) ** 2))(jnp.asarray(X))
    check(g, want, rtol=1e-13, atol=1e-13)
    out = gpuad.jit(lambda x: x.at[REPEATS].add(1.0))(X)
    check(out, expected("add", X, (REPEATS,), 1.0), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("mode", [None, "promise_in_bounds", "clip"])
def test_modes_match_jax(mode):
    """mode='clip' clamps out-of-range indices into range (after making negatives positive), as
    JAX does; in-range indices give the same result in every accepted mode."""
    idx = np.asarray([-7, 1, 9, 1]) if mode == "clip" else np.asarray([-3, 1, 3, 1])
    v = np.asarray([1.0, 2.0, 3.0, 4.0])[:, None]
    for method in ["set", "add", "multiply", "min", "max"]:
        got = getattr(gnp.at(X)[idx], method)(v, mode=mode)
        want = getattr(jnp.asarray(X).at[idx], method)(v, mode=mode)
        check(got, want, rtol=1e-13, atol=1e-13)
    check(gnp.at(X)[idx, 7 if mode == "clip" else 2].get(mode=mode), jnp.asarray(X).at[idx, 7 if mode == "clip" else 2].get(mode=mode), rtol=0, atol=0)
    if mode == "clip":
        check(gnp.at(X)[-9, 9].set(0.0, mode="clip"), jnp.asarray(X).at[-9, 9].set(0.0, mode="clip"), rtol=0, atol=0)


# ---------------------------------------------------------------------------------------------
# Derivatives with repeated indices and ties: JAX's conventions
# ---------------------------------------------------------------------------------------------


def test_set_repeats_last_wins_and_only_it_gets_a_gradient():
    """set with repeated indices: the last update wins (as NumPy and JAX on the CPU), and the
    losers' gradient is 0, as JAX's."""
    v = np.arange(30.0).reshape(6, 5)
    w = np.linspace(-1.0, 2.0, 20).reshape(4, 5)

    def f(xp):
        return lambda x, v: xp.sum(x.at[REPEATS].set(v) * w)

    got = gpuad.grad(lambda x, v: f(gnp)(x, v), argnums=(0, 1))(X, v)
    want = jax.grad(f(jnp), argnums=(0, 1))(jnp.asarray(X), jnp.asarray(v))
    for g, e in zip(got, want):
        check(g, e, rtol=1e-13, atol=1e-13)
    np.testing.assert_array_equal(got[1][[0, 1, 3, 4]], 0.0)
    check(gnp.at(X)[REPEATS].set(v), jnp.asarray(X).at[REPEATS].set(v), rtol=0, atol=0)


@pytest.mark.parametrize("method", ["min", "max"])
def test_min_max_ties_share_like_jax(method):
    """At ties, the derivative of min/max is shared equally by all the elements (of x and of the
    updates) equal to the result, as in JAX (1/3 each for three); in both modes."""
    x = np.asarray([1.0, 2.0, 3.0, 4.0])
    idx = np.asarray([0, 0, 1, 3])
    v = np.asarray([1.0, 1.0, 2.0, 0.0 if method == "max" else 9.0])
    tx, tv = np.asarray([1.0, 10.0, 100.0, 1e3]), np.asarray([1e4, 1e5, 1e6, 1e7])

    def f(xp):
        return lambda x, v: getattr(x.at[idx], method)(v)

    got = gpuad.grad(lambda x, v: gnp.sum(f(gnp)(x, v) * x), argnums=(0, 1))(x, v)
    want = jax.grad(lambda x, v: jnp.sum(f(jnp)(x, v) * x), argnums=(0, 1))(jnp.asarray(x), jnp.asarray(v))
    for g, e in zip(got, want):
        check(g, e, rtol=1e-13, atol=1e-13)
    _, got_t = gpuad.jvp(f(gnp), (x, v), (tx, tv))
    _, want_t = jax.jvp(f(jnp), (jnp.asarray(x), jnp.asarray(v)), (jnp.asarray(tx), jnp.asarray(tv)))
    check(got_t, want_t, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("v", [[1.5, -2.0, 3.0, 0.5], [1.5, 0.0, 3.0, 0.5], [0.0, 0.0, 3.0, 0.5]])
def test_multiply_repeats_derivative_in_the_updates(v):
    """multiply with repeated indices: the derivative in an update is x times the product of the
    other updates at its position (zeros among them included); JAX refuses this one, so the
    oracle is the exact formula, and forward mode agrees with reverse mode."""
    v = np.asarray(v)
    x = np.asarray([2.0, -3.0, 5.0])
    idx = np.asarray([0, 0, 2, 0])
    w = np.asarray([1.0, 7.0, -0.5])
    f = lambda v: gnp.sum(gnp.at(x)[idx].multiply(v) * w)  # noqa: E731
    want = np.zeros(4)
    for i in range(4):
        others = np.prod([v[j] for j in range(4) if j != i and idx[j] == idx[i]])
        want[i] = w[idx[i]] * x[idx[i]] * others
    check(gpuad.grad(f)(v), want, rtol=1e-14, atol=1e-14)
    check(gpuad.jacfwd(f)(v), want, rtol=1e-14, atol=1e-14)
    # The second derivative, against central differences of the exact gradient formula (except
    # between two updates that are both exactly zero at one position, where gpuad gives 0).
    h = gpuad.hessian(f)(v)
    g = lambda v: np.asarray([w[idx[i]] * x[idx[i]] * np.prod([v[j] for j in range(4) if j != i and idx[j] == idx[i]]) for i in range(4)])  # noqa: E731
    for k in range(4):
        e = np.zeros(4)
        e[k] = 1e-6
        fd = (g(v + e) - g(v - e)) / 2e-6
        rows = [i for i in range(4) if not (v[i] == 0 and v[k] == 0 and i != k)]
        check(h[rows, k], fd[rows], rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# vmap with a per-point index
# ---------------------------------------------------------------------------------------------

PER_POINT = np.asarray([[0, 1, 1], [4, -1, 2], [3, 3, 3], [2, 0, -5]])  # one row of indices per point


@pytest.mark.parametrize("method", ["set", "add", "subtract", "multiply", "min", "max", "get"])
def test_vmap_per_point_index_matches_jax(backend, method):
    """vmap over points, each with its own (repeating) index array: values, per-point gradients
    (reverse) and Jacobians (forward) equal jax.vmap's, on every backend."""
    v = np.asarray([[0.5, -1.0, 2.0], [1.5, 0.25, -2.0], [3.0, -3.0, 0.75], [-0.5, 1.25, 1.0]])

    def f(xp):
        def point(x, i, v):
            ref = x.at[i]
            # JAX differentiates a multiply in x only: its updates stay constant there
            out = ref.get() if method == "get" else getattr(ref, method)(v if method == "multiply" else v * x[0])
            return xp.sum(xp.sin(out) * (1.0 + xp.arange(out.shape[0], dtype=out.dtype)))

        return point

    def g(xp):
        return lambda x, i, v: (x.at[i].get() if method == "get" else getattr(x.at[i], method)(v)) * 2.0

    jx, ji, jv = jnp.asarray(X), jnp.asarray(PER_POINT), jnp.asarray(v)
    bx, bi, bv = backend.asarray(X), backend.asarray(PER_POINT), backend.asarray(v)
    check(gpuad.vmap(g(gnp))(bx, bi, bv), jax.vmap(g(jnp))(jx, ji, jv), rtol=1e-13, atol=1e-13)
    argnums = (0,) if method == "multiply" else (0, 2)
    for ours, theirs in [(gpuad.grad, jax.grad), (gpuad.jacfwd, jax.jacfwd)]:
        got = gpuad.vmap(ours(f(gnp), argnums=argnums))(bx, bi, bv)
        want = jax.vmap(theirs(f(jnp), argnums=argnums))(jx, ji, jv)
        for a, b in zip(got, want):
            check(a, b, rtol=1e-12, atol=1e-12)


def test_vmap_per_point_index_unbatched_x():
    """A shared x updated at per-point indices with per-point values (x not batched)."""
    v = np.asarray([1.0, 2.0, 3.0, 4.0])
    i = np.asarray([1, 1, 3, 0])
    for method in ["set", "add", "multiply", "min", "max"]:
        got = gpuad.vmap(lambda i, v: getattr(gnp.at(X[0])[i], method)(v), in_axes=(0, 0))(i, v)
        want = jax.vmap(lambda i, v: getattr(jnp.asarray(X[0]).at[i], method)(v))(i, v)
        check(got, want, rtol=1e-13, atol=1e-13)
        g = gpuad.grad(lambda x: gnp.sum(gpuad.vmap(lambda i, v: getattr(x.at[i], method)(v))(i, v) ** 2))(X[0])
        e = jax.grad(lambda x: jnp.sum(jax.vmap(lambda i, v: getattr(x.at[i], method)(v))(i, v) ** 2))(jnp.asarray(X[0]))
        check(g, e, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key, error, pattern",
    [
        (5, IndexError, r"index 5 is out of bounds for axis 0 with size 4"),
        ((0, -6), IndexError, r"index -6 is out of bounds for axis 1 with size 5"),
        (np.asarray([0, 4]), IndexError, r"index 4 is out of bounds for axis 0 with size 4"),
        ((0, 1, 2), IndexError, r"too many indices for array: array is 2-dimensional, but 3 were indexed"),
        ((Ellipsis, 0, Ellipsis), IndexError, r"single ellipsis"),
        (np.asarray([0.0, 1.0]), IndexError, r"index arrays must be integers, got dtype float64"),
        (np.asarray([True, False, True, False]), IndexError, r"boolean mask indexing .* gnp.where"),
        (True, IndexError, r"boolean mask indexing"),
        (slice(0, 3, 0), ValueError, r"slice step cannot be zero"),
        ("a", TypeError, r"index of type str is not supported; use ints, slices"),
        ((np.asarray([0, 1]), None, np.asarray([0, 1])), IndexError, r"separated by a slice .* two steps"),
    ],
)
def test_bad_index(key, error, pattern):
    """Each bad index raises the error x[idx] raises, with a message that says what to do."""
    with pytest.raises(error, match=pattern):
        gnp.at(X)[key].set(1.0)
    with pytest.raises(error, match=pattern):
        gpuad.grad(lambda x: gnp.sum(x.at[key].add(1.0)))(X)


def test_index_of_another_library():
    import array_api_strict as xs

    with pytest.raises(TypeError, match=r"x\.at\[idx\]\.set: the index array is an array_api_strict array but the indexed array is a numpy array; make the index with the same library"):
        gnp.at(X)[xs.asarray([0, 1])].set(1.0)


@pytest.mark.parametrize("method", ["set", "add", "multiply", "min", "max"])
@pytest.mark.parametrize("key, v", [(0, np.ones(4)), (slice(1, 3), np.ones((3, 5))), (REPEATS, np.ones((5, 5))), (0, np.ones((1, 5)))])
def test_values_that_do_not_broadcast(method, key, v):
    """v must broadcast to x[idx]'s shape (JAX's rule: no extra axes, even of size 1)."""
    with pytest.raises(ValueError, match=r"values of shape .* do not broadcast to the shape .* of x\[idx\]"):
        getattr(gnp.at(X)[key], method)(v)
    with pytest.raises(ValueError, match=r"do not broadcast"):
        gpuad.grad(lambda x: gnp.sum(getattr(x.at[key], method)(v)))(X)


def test_values_of_a_bad_type():
    with pytest.raises(TypeError, match=r"values must be an array or a Python number, got str"):
        gnp.at(X)[0].set("1")


@pytest.mark.parametrize("mode", ["drop", "fill", "wrap"])
@pytest.mark.parametrize("method", ["set", "add", "get"])
def test_unknown_mode(method, mode):
    args = () if method == "get" else (1.0,)
    with pytest.raises(ValueError, match=rf"mode='{mode}' is not supported; use mode=None or 'promise_in_bounds'.*'clip'"):
        getattr(gnp.at(X)[0], method)(*args, mode=mode)


def test_fill_value_refused():
    with pytest.raises(ValueError, match=r"fill_value is only used with mode='fill'"):
        gnp.at(X)[0].get(fill_value=0.0)


def test_hints_are_accepted():
    """JAX's indices_are_sorted / unique_indices are hints: accepted, the result unchanged."""
    got = gnp.at(X)[REPEATS].add(1.0, indices_are_sorted=True, unique_indices=False)
    check(got, expected("add", X, (REPEATS,), 1.0), rtol=0, atol=0)


def test_item_assignment_points_to_at():
    """x[idx] = v on a traced value keeps its TypeError, which now names x.at[idx].set(v)."""

    def f(x):
        x[0] = 1.0
        return gnp.sum(x)

    with pytest.raises(TypeError, match=r"immutable inside a transform: use x\.at\[idx\]\.set\(v\)"):
        gpuad.grad(f)(X)


def test_vmap_multiply_derivative_in_per_point_updates():
    """vmap of the derivative of a multiply in its updates, at per-point repeating indices, equals
    the same derivative point by point (JAX has none to compare with)."""
    v = np.asarray([[0.5, -1.0, 2.0], [1.5, 0.0, -2.0], [3.0, -3.0, 0.75], [-0.5, 1.25, 1.0]])

    def f(x, i, v):
        return gnp.sum(gnp.sin(x.at[i].multiply(v)))

    got = gpuad.vmap(gpuad.grad(f, argnums=(0, 2)))(X, PER_POINT, v)
    got_t = gpuad.vmap(gpuad.jacfwd(f, argnums=(0, 2)))(X, PER_POINT, v)
    for p in range(4):
        want = gpuad.grad(f, argnums=(0, 2))(X[p], PER_POINT[p], v[p])
        for a, b, c in zip(got, got_t, want):
            check(a[p], c, rtol=1e-13, atol=1e-13)
            check(b[p], c, rtol=1e-13, atol=1e-13)
