"""NumPy code as it is written: functions using ``import numpy as np`` (np.sin, np.sum(axis=...),
np.stack, np.dot, M @ x, ...) are differentiable unchanged through NumPy's __array_ufunc__ and
__array_function__ protocols. Each function is written once against a module ``np`` and run as
NumPy code under gpuad and as jax.numpy code under JAX (x64), the oracle; every refusal is
checked with its message."""

from __future__ import annotations

import math

import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp
from gpuad.numpy import _numpy_protocols as protocols

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402

RNG = np.random.default_rng(22)
W1 = RNG.normal(size=(4, 3))
B1 = RNG.normal(size=4)
W2 = RNG.normal(size=(4, 2))
M = RNG.normal(size=(3, 3))
C = RNG.normal(size=3)


# ---------------------------------------------------------------------------------------------
# Realistic functions, each written once against a module ``np`` (numpy or jax.numpy)
# ---------------------------------------------------------------------------------------------


def seed(np):
    """The seed notes' f = ln x1 + x1 x2 - sin x2."""
    return lambda x: np.log(x[0]) + x[0] * x[1] - np.sin(x[1])


def softmax_loss(np):
    """Cross-entropy of a softmax over W1 @ x + B1 (NumPy arrays on the left of @ and +)."""

    def f(x):
        z = W1 @ x + B1
        z = z - np.max(z)
        p = np.exp(z) / np.sum(np.exp(z))
        return -np.log(p[2]) + 0.1 * np.mean(p**2)

    return f


def mlp_layer(np):
    """A two-layer perceptron with np.dot, @, np.tanh and a NumPy bias on the left."""

    def f(x):
        h = np.tanh(np.dot(W1, x) + B1)
        out = h @ W2
        return np.sum(out**2) + np.dot(h, h)

    return f


def manipulations(np):
    """np.stack, np.concatenate, np.where, np.sum(axis=...), np.transpose, np.reshape,
    np.clip, np.cumsum, np.einsum, np.linalg.norm, ufunc methods, and more."""

    def f(x):
        a = np.stack([x, x**2, np.sin(x)])  # (3, 3)
        b = np.concatenate([x, np.exp(-x)], axis=0)  # (6,)
        c = np.where(x > 0.5, x**3, -x)
        s = np.sum(a, axis=0) + np.sum(np.transpose(a) * M, axis=1)
        r = np.reshape(b, (2, 3))
        return (
            np.sum(s * c)
            + np.mean(r, axis=0) @ C
            + np.sum(np.clip(b, 0.3, 1.5))
            + np.sum(np.cumsum(r))
            + np.einsum("ij,j->", a, x)
            + np.linalg.norm(x)
            + np.sum(np.maximum.reduce(a, axis=1))
            + np.sum(np.add.accumulate(x))
            + np.sum(np.multiply.outer(x, C))
            + np.sum(np.arctan2(x, 2.0) + np.hypot(x, C) + np.exp2(x) + np.abs(x - 1.0))
            + np.prod(np.square(x)) + np.std(x) + np.var(r, axis=1)[0]
        )

    return f


FUNCTIONS = {
    "seed": (seed, np.asarray([2.0, 5.0])),
    "softmax_loss": (softmax_loss, np.asarray([0.3, -1.2, 0.8])),
    "mlp_layer": (mlp_layer, np.asarray([0.3, -1.2, 0.8])),
    "manipulations": (manipulations, np.asarray([0.3, 1.2, 0.8])),
}


def _close(got, want, rtol=1e-10):
    assert type(got) is np.ndarray or np.isscalar(got), type(got)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=rtol, atol=1e-12)


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_grad_and_jvp_match_jax(name):
    make, x = FUNCTIONS[name]
    ours, theirs = make(np), make(jnp)
    _close(gpuad.grad(ours)(x), jax.jit(jax.grad(theirs))(x))
    t = np.linspace(0.5, 1.5, x.shape[0])
    out, tan = gpuad.jvp(ours, (x,), (t,))
    want_out, want_tan = jax.jit(lambda x, t: jax.jvp(theirs, (x,), (t,)))(x, t)
    _close(out, want_out)
    _close(tan, want_tan)


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_hessian_matches_jax(name):
    make, x = FUNCTIONS[name]
    _close(gpuad.hessian(make(np))(x), jax.jit(jax.hessian(make(jnp)))(x), rtol=1e-9)


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_vmap_grad_and_jit_match_jax(name):
    make, x = FUNCTIONS[name]
    ours, theirs = make(np), make(jnp)
    xs = np.stack([x, x * 1.1, x * 0.9])
    _close(gpuad.vmap(gpuad.grad(ours))(xs), jax.jit(jax.vmap(jax.grad(theirs)))(xs))
    _close(gpuad.jit(gpuad.grad(ours))(x), jax.jit(jax.grad(theirs))(x))
    _close(gpuad.jit(ours)(x), theirs(x))


def test_the_seed_notes_numbers_and_the_gpuad_numpy_twin():
    """Written with np, the seed function has the seed notes' gradient (5.5, 1.716...) at (2, 5)
    and the same derivatives as its gpuad.numpy twin."""
    x = np.asarray([2.0, 5.0])
    got = gpuad.grad(seed(np))(x)
    _close(got, [5.5, 2.0 - math.cos(5.0)])
    _close(got, gpuad.grad(seed(gnp))(x), rtol=0)
    _close(gpuad.hessian(seed(np))(x), gpuad.hessian(seed(gnp))(x), rtol=0)


def test_numpy_in_numpy_out():
    x = np.asarray([0.3, -1.2, 0.8], dtype=np.float32)
    g = gpuad.grad(lambda v: np.sum(np.sin(v) * v))(x)
    assert type(g) is np.ndarray and g.dtype == np.float32
    assert type(mlp_layer(np)(x.astype(np.float64))) is np.float64  # plain NumPy stays plain NumPy


# ---------------------------------------------------------------------------------------------
# Every mapped ufunc, through a traced value (vmap), against NumPy's value and JAX's derivative
# ---------------------------------------------------------------------------------------------

_INT = {"bitwise_and", "bitwise_or", "bitwise_xor", "invert", "left_shift", "right_shift"}
_BOOL = {"logical_and", "logical_or", "logical_xor", "logical_not"}
_NO_DERIVATIVE = _INT | _BOOL | {
    "equal", "not_equal", "less", "less_equal", "greater", "greater_equal", "isfinite", "isinf",
    "isnan", "signbit", "floor", "ceil", "trunc", "rint", "sign", "floor_divide", "nextafter",
}
_DOMAIN = {"arccosh": (1.2, 2.0), "arcsin": (-0.8, 0.8), "arccos": (-0.8, 0.8), "arctanh": (-0.8, 0.8)}
_GUFUNC_SHAPES = {"matmul": ((3, 3), (3,)), "vecdot": ((3,), (3,)), "matvec": ((3, 3), (3,)), "vecmat": ((3,), (3, 3))}


def _ufunc_inputs(name, nin, rng):
    if name in _INT:
        return [rng.integers(0, 5, size=(4, 3)) for _ in range(nin)]
    if name in _BOOL:
        return [rng.integers(0, 2, size=(4, 3)).astype(bool) for _ in range(nin)]
    lo, hi = _DOMAIN.get(name, (0.2, 1.7))
    shapes = _GUFUNC_SHAPES.get(name, ((3,), (3,)))
    return [rng.uniform(lo, hi, size=(4,) + shapes[i]) for i in range(nin)]


@pytest.mark.parametrize("name", sorted(n for n in protocols.UFUNCS if hasattr(np, n)))
def test_every_mapped_ufunc_gives_numpys_value(name):
    ufunc = getattr(np, name)
    xs = _ufunc_inputs(name, ufunc.nin, np.random.default_rng(len(name)))
    got = gpuad.vmap(lambda *a: ufunc(*a))(*xs)
    points = [ufunc(*(x[i] for x in xs)) for i in range(4)]  # NumPy point by point
    if ufunc.nout == 2:
        for g, w in zip(got, (np.stack(p) for p in zip(*points))):
            np.testing.assert_allclose(g, w, rtol=1e-14)
        return
    want = np.stack(points)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=0)


@pytest.mark.parametrize(
    "name",
    sorted(n for n in protocols.UFUNCS if hasattr(np, n) and n not in _NO_DERIVATIVE and getattr(np, n).nout == 1),
)
def test_every_differentiable_ufunc_has_jaxs_derivative(name):
    ufunc = getattr(np, name)
    xs = [x[0] for x in _ufunc_inputs(name, ufunc.nin, np.random.default_rng(len(name) + 1))]
    jfn = getattr(jnp, name)
    for i in range(ufunc.nin):
        got = gpuad.grad(lambda *a: np.sum(ufunc(*a)), argnums=i)(*xs)
        want = jax.grad(lambda *a: jnp.sum(jfn(*a)), argnums=i)(*xs)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14, err_msg=f"{name}, argument {i}")


def test_every_unmapped_numpy_ufunc_is_refused_by_name():
    ufuncs = sorted({v.__name__ for v in vars(np).values() if isinstance(v, np.ufunc)} - set(protocols.UFUNCS))
    assert "cbrt" in ufuncs and "fmod" in ufuncs
    x = np.asarray([0.5, 1.5])
    for name in ufuncs:
        ufunc = getattr(np, name)

        def f(v, ufunc=ufunc):
            return ufunc(*([v] * ufunc.nin))

        with pytest.raises(TypeError, match=rf"np\.{name} is not differentiable in gpuad"):
            gpuad.grad(lambda v: gnp.sum(f(v)))(x)


def test_refused_ufuncs_name_the_gpuad_numpy_way():
    x = np.asarray([0.5, 1.5])
    cases = {
        np.cbrt: r"np\.cbrt .*gpuad\.numpy\.sign\(x\) \* gpuad\.numpy\.abs\(x\) \*\* \(1 / 3\)",
        np.fmod: r"np\.fmod .*function for this is remainder",
        np.fmax: r"np\.fmax .*gpuad\.numpy\.maximum",
    }
    for ufunc, message in cases.items():
        with pytest.raises(TypeError, match=message):
            gpuad.grad(lambda v: gnp.sum(ufunc(v, v) if ufunc.nin == 2 else ufunc(v)))(x)


def test_a_ufunc_of_another_library_is_refused():
    """A ufunc that is not NumPy's own (here made by np.frompyfunc) is not mistaken for one."""
    sin_like = np.frompyfunc(math.sin, 1, 1)
    with pytest.raises(TypeError, match="is not differentiable in gpuad"):
        gpuad.grad(lambda v: gnp.sum(sin_like(v)))(np.asarray([0.5]))


# ---------------------------------------------------------------------------------------------
# ufunc methods and arguments
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda np, x: np.add.reduce(x),
        lambda np, x: np.add.reduce(x, axis=1, keepdims=True),
        lambda np, x: np.add.reduce(x, axis=None),
        lambda np, x: np.multiply.reduce(x, 0),
        lambda np, x: np.maximum.reduce(x, axis=-1),
        lambda np, x: np.minimum.reduce(x),
        lambda np, x: np.add.accumulate(x),
        lambda np, x: np.add.accumulate(x, axis=1),
        lambda np, x: np.multiply.accumulate(x, axis=0),
        lambda np, x: np.add.outer(x, C),
        lambda np, x: np.subtract.outer(C[:2], x),
        lambda np, x: np.multiply.outer(x[0], x),
        lambda np, x: np.power(x, 2),
    ],
)
def test_ufunc_methods_match_jax(call):
    x = np.asarray([[0.3, 1.2, 0.8], [1.5, 0.4, 0.9]])
    got = gpuad.grad(lambda v: np.sum(np.sin(call(np, v))))(x)
    want = jax.grad(lambda v: jnp.sum(jnp.sin(call(jnp, v))))(x)
    _close(got, want)
    np.testing.assert_allclose(gpuad.vmap(lambda v: call(np, v))(x[None]), call(np, x)[None], rtol=1e-14)


def test_default_ufunc_keywords_are_accepted():
    x = np.asarray([0.3, 1.2])
    got = gpuad.grad(lambda v: np.sum(np.sin(v, where=True, casting="same_kind", order="K", subok=True)))(x)
    _close(got, np.cos(x))


def test_logical_reductions():
    x = np.asarray([[True, False], [True, True]])
    for call in (lambda v: np.logical_and.reduce(v), lambda v: np.logical_or.reduce(v, axis=1)):
        np.testing.assert_array_equal(gpuad.vmap(call)(x[None])[0], call(x))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda x: np.sin(x, out=np.zeros(2)), r"np\.sin: gpuad does not support out=\.\.\. .*immutable.*use the result"),
        (lambda x: np.add(x, 1.0, out=(np.zeros(2),)), r"np\.add: .*out=.*y = np\.add\(\.\.\.\)"),
        (lambda x: np.sin(x, where=np.asarray([True, False])), r"np\.sin: .*where=\.\.\..*np\.where"),
        (lambda x: np.sin(x, dtype=np.float32), r"np\.sin: .*dtype=.*astype"),
        (lambda x: np.matmul(x, x, axes=[(0,), (0,), ()]), r"np\.matmul: .*axes="),
        (lambda x: np.add.reduce(x, initial=1.0), r"np\.add\.reduce: .*initial=1\.0"),
        (lambda x: np.maximum.reduce(x, dtype=np.float32), r"np\.maximum\.reduce: .*dtype="),
        (lambda x: np.add.reduceat(x, [0]), r"np\.add\.reduceat is not supported.*np\.add\.reduce"),
        (lambda x: np.subtract.reduce(x), r"np\.subtract\.reduce is not supported.*np\.subtract\.outer"),
        (lambda x: np.maximum.accumulate(x), r"np\.maximum\.accumulate is not supported.*np\.maximum\.reduce"),
        (lambda x: np.add.at(x, [0], 1.0), r"np\.add\.at writes into .*a\.at\[idx\]\.add\(v\)"),
        (lambda x: np.maximum.at(np.zeros(2), [0], x[0]), r"np\.maximum\.at .*\.at\[idx\]\.max\(v\)"),
        (lambda x: np.subtract.at(x, [0], 1.0), r"np\.subtract\.at is not supported"),
    ],
)
def test_ufunc_refusals(call, message):
    with pytest.raises(TypeError, match=message):
        gpuad.grad(lambda v: gnp.sum(call(v)))(np.asarray([0.5, 1.5]))


def test_in_place_operator_on_a_numpy_array_is_refused():
    """``a += x`` with a NumPy array a would write a traced value into a: refused with the fix."""

    def f(x):
        a = np.zeros(2)
        a += x
        return np.sum(a)

    with pytest.raises(TypeError, match=r"np\.add: .*out=.*write a = a \+ x"):
        gpuad.grad(f)(np.asarray([0.5, 1.5]))

    def fixed(x):
        a = np.zeros(2)
        a = a + x
        return np.sum(a)

    _close(gpuad.grad(fixed)(np.asarray([0.5, 1.5])), [1.0, 1.0])


# ---------------------------------------------------------------------------------------------
# NumPy arrays and scalars on the left of every operator
# ---------------------------------------------------------------------------------------------

ARITHMETIC = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b, "/": lambda a, b: a / b,
    "**": lambda a, b: a**b, "@": lambda a, b: a @ b, "%": lambda a, b: a % b,
}
LEFT = {
    "array": np.asarray([[1.5, 2.0, 0.5], [0.7, 1.1, 2.5]]),
    "vector": np.asarray([1.5, 2.0, 0.5]),
    "float64": np.float64(1.5),
    "float32": np.float32(1.5),
    "int64": np.int64(2),
    "0-d": np.asarray(1.25),
}


@pytest.mark.parametrize("left", list(LEFT))
@pytest.mark.parametrize("op", list(ARITHMETIC))
def test_numpy_on_the_left_of_arithmetic(op, left):
    c = LEFT[left]
    if op == "@" and np.ndim(c) == 0:
        pytest.skip("@ needs an operand of at least 1 dimension")
    fn = ARITHMETIC[op]
    x = np.asarray([0.3, 1.2, 0.8])
    got = gpuad.grad(lambda v: np.sum(fn(c, v)))(x)
    want = jax.grad(lambda v: jnp.sum(fn(c, v)))(x)
    # float32 ** x: gpuad's pow rule takes log of the float32 base in float32 (as it does for
    # gnp.pow(np.float32(1.5), x) without NumPy's protocols), JAX in float64.
    _close(got, want, rtol=1e-7 if (left, op) == ("float32", "**") else 1e-10)
    value = gpuad.vmap(lambda v: fn(c, v))(x[None])[0]
    np.testing.assert_allclose(value, fn(c, x), rtol=1e-15)
    assert value.dtype == fn(c, x).dtype or left == "float32"  # NumPy scalars are weak in gpuad


COMPARISONS = {
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
}


@pytest.mark.parametrize("left", list(LEFT))
@pytest.mark.parametrize("op", list(COMPARISONS))
def test_numpy_on_the_left_of_comparisons(op, left):
    c, fn = LEFT[left], COMPARISONS[op]
    x = np.asarray([1.5, 1.2, 0.5])
    np.testing.assert_array_equal(gpuad.vmap(lambda v: fn(c, v))(x[None])[0], fn(c, x))
    got = gpuad.grad(lambda v: np.sum(np.where(fn(c, v), v**2, -v)))(x)
    want = np.where(fn(c, x), 2 * x, -1.0)
    np.testing.assert_array_equal(got, want.reshape(-1, 3).sum(axis=0))


BITWISE = {
    "&": lambda a, b: a & b, "|": lambda a, b: a | b, "^": lambda a, b: a ^ b,
    "<<": lambda a, b: a << b, ">>": lambda a, b: a >> b, "//": lambda a, b: a // b,
}


@pytest.mark.parametrize("left", ["array", "scalar"])
@pytest.mark.parametrize("op", list(BITWISE))
def test_numpy_on_the_left_of_integer_operators(op, left):
    c = np.asarray([5, 6, 7]) if left == "array" else np.int64(6)
    k = np.asarray([[1, 2, 3], [3, 1, 2]])
    fn = BITWISE[op]
    np.testing.assert_array_equal(gpuad.vmap(lambda v: fn(c, v))(k), fn(c, k))


def test_numpy_booleans_on_the_left_of_logical_operators():
    m = np.asarray([True, False, True])
    b = np.asarray([[True, True, False], [False, False, True]])
    for fn in (BITWISE["&"], BITWISE["|"], BITWISE["^"]):
        np.testing.assert_array_equal(gpuad.vmap(lambda v: fn(m, v))(b), fn(m, b))


def test_divmod_with_numpy_on_the_left():
    c = np.asarray([5.0, 7.5])
    q, r = gpuad.vmap(lambda v: np.divmod(c, v))(np.asarray([[2.0, 2.5]]))
    np.testing.assert_array_equal(q[0], [2.0, 3.0])
    np.testing.assert_array_equal(r[0], [1.0, 0.0])


# ---------------------------------------------------------------------------------------------
# NumPy's other functions, against jax.numpy's of the same name
# ---------------------------------------------------------------------------------------------

X2 = np.asarray([[0.3, 1.2, 0.8], [1.5, -0.4, 0.9]])

FUNCTION_CASES = {
    "sum": lambda np, x: np.sum(x, axis=0, keepdims=True),
    "sum_all": lambda np, x: np.sum(x),
    "prod": lambda np, x: np.prod(x, axis=1),
    "max": lambda np, x: np.max(x, axis=1),
    "amin": lambda np, x: np.amin(x, 0, keepdims=True),
    "mean": lambda np, x: np.mean(x, axis=-1),
    "var": lambda np, x: np.var(x, axis=0, ddof=1),
    "std": lambda np, x: np.std(x),
    "average": lambda np, x: np.average(x, axis=1, weights=np.asarray([1.0, 2.0, 3.0])),
    "average_plain": lambda np, x: np.average(x, axis=0),
    "cumsum": lambda np, x: np.cumsum(x),
    "cumsum_axis": lambda np, x: np.cumsum(x, axis=1),
    "cumprod": lambda np, x: np.cumprod(x, axis=0),
    "cumulative_sum": lambda np, x: np.cumulative_sum(x, axis=1, include_initial=True),
    "diff": lambda np, x: np.diff(x, axis=1),
    "reshape": lambda np, x: np.reshape(x, (3, 2)) @ np.asarray([1.0, 2.0]),
    "ravel": lambda np, x: np.ravel(x) * np.arange(6.0),
    "transpose": lambda np, x: np.transpose(x) * np.arange(6.0).reshape(3, 2),
    "transpose_axes": lambda np, x: np.transpose(x[None], axes=(2, 0, 1)) * np.arange(6.0).reshape(3, 1, 2),
    "swapaxes": lambda np, x: np.swapaxes(x, 0, 1) * np.arange(6.0).reshape(3, 2),
    "moveaxis": lambda np, x: np.moveaxis(x[None], 0, -1) * np.arange(6.0).reshape(2, 3, 1),
    "expand_squeeze": lambda np, x: np.squeeze(np.expand_dims(x, 1), axis=1) * 2.0,
    "broadcast_to": lambda np, x: np.broadcast_to(x[0], (4, 3)) * np.arange(12.0).reshape(4, 3),
    "atleast_2d": lambda np, x: np.atleast_2d(x[0]) * np.atleast_3d(x),
    "stack": lambda np, x: np.stack([x, x**2], axis=1),
    "concatenate": lambda np, x: np.concatenate([x, x**2], axis=1),
    "concatenate_none": lambda np, x: np.concatenate([x, x**2], axis=None),
    "hstack": lambda np, x: np.hstack([x[0], x[1] ** 2]),
    "vstack": lambda np, x: np.vstack([x[0], x]),
    "column_stack": lambda np, x: np.column_stack([x[0], x[1] ** 2]),
    "split": lambda np, x: np.split(x, 3, axis=1)[1] + np.split(x, [1], axis=1)[1][:, :1],
    "flip": lambda np, x: np.flip(x, axis=1) * np.arange(6.0).reshape(2, 3),
    "fliplr": lambda np, x: np.fliplr(x) * np.arange(6.0).reshape(2, 3),
    "roll": lambda np, x: np.roll(x, 1, axis=1) * np.arange(6.0).reshape(2, 3),
    "tile": lambda np, x: np.tile(x, 2) * np.arange(12.0).reshape(2, 6),
    "repeat": lambda np, x: np.repeat(x, 2, axis=0) * np.arange(12.0).reshape(4, 3),
    "tril": lambda np, x: np.tril(x @ x.T, k=0),
    "take": lambda np, x: np.take(x, np.asarray([[2, 0], [1, 1]]), axis=1),
    "take_flat": lambda np, x: np.take(x, np.asarray([5, 0, 2])),
    "take_along_axis": lambda np, x: np.take_along_axis(x, np.asarray([[2, 0], [1, 1]]), axis=1),
    "where": lambda np, x: np.where(x > 0.5, x**2, 1.0 - x),
    "clip": lambda np, x: np.clip(x, 0.0, 1.0),
    "clip_keywords": lambda np, x: np.clip(x, min=0.5),
    "sort": lambda np, x: np.sort(x, axis=1) * np.arange(6.0).reshape(2, 3),
    "dot_matrix_vector": lambda np, x: np.dot(x, np.asarray([1.0, 2.0, 3.0])),
    "dot_matrices": lambda np, x: np.dot(x, x.T),
    "dot_vectors": lambda np, x: np.dot(x[0], x[1]),
    "dot_scalar": lambda np, x: np.dot(2.0, x),
    "dot_nd": lambda np, x: np.dot(np.stack([x, x]), np.ones((3, 4))),
    "vdot": lambda np, x: np.vdot(x, x[::-1]),
    "inner": lambda np, x: np.inner(x, x),
    "outer": lambda np, x: np.outer(x[0], x),
    "tensordot": lambda np, x: np.tensordot(x, np.ones((3, 2)), axes=(1, 0)),
    "tensordot_int": lambda np, x: np.tensordot(x, x, axes=2),
    "einsum": lambda np, x: np.einsum("ij,kj->ik", x, x),
    "trace": lambda np, x: np.trace(x @ x.T),
    "norm": lambda np, x: np.linalg.norm(x),
    "norm_vector_axis": lambda np, x: np.linalg.norm(x, axis=1),
    "norm_ord1": lambda np, x: np.linalg.norm(x[0], ord=1),
    "norm_matrix_inf": lambda np, x: np.linalg.norm(x, ord=np.inf),
    "norm_matrix_1": lambda np, x: np.linalg.norm(x, ord=1),
    "norm_fro_axes": lambda np, x: np.linalg.norm(x[None], axis=(1, 2)),
    "vector_norm": lambda np, x: np.linalg.vector_norm(x, axis=0),
    "linalg_vecdot": lambda np, x: np.linalg.vecdot(x, x),
    "linalg_det_inv_solve": lambda np, x: np.linalg.det(x @ x.T + np.eye(2)) * np.linalg.inv(x @ x.T + np.eye(2))
    + np.linalg.solve(x @ x.T + np.eye(2), x[:, 0]) + np.linalg.slogdet(x @ x.T + np.eye(2))[1],
    "linalg_matrix_power": lambda np, x: np.linalg.matrix_power(x @ x.T, 3),
    "linalg_svdvals_norm": lambda np, x: np.linalg.svdvals(x) + np.linalg.matrix_norm(x, ord="nuc"),
    "linalg_trace_diagonal": lambda np, x: np.linalg.trace(x, offset=1) * np.linalg.diagonal(x)[:1],
    "linalg_outer_cross": lambda np, x: np.linalg.outer(x[0], x[1]) + np.linalg.cross(x[0], x[1]),
    "matmul_function": lambda np, x: np.matmul(x, x.T),
    "vecdot_ufunc": lambda np, x: np.vecdot(x, x),
    "matvec": lambda np, x: np.matvec(x.T @ x, x[0]),
    "conj": lambda np, x: np.conj(x) * x,
    "round": lambda np, x: np.round(x) + x,
    "zeros_like": lambda np, x: np.zeros_like(x) + np.ones_like(x) * x + np.full_like(x, 2.0) * x,
    "copy": lambda np, x: np.copy(x) * 3.0,
}


@pytest.mark.parametrize("case", list(FUNCTION_CASES))
def test_numpy_functions_match_jax(case):
    fn = FUNCTION_CASES[case]
    got = gpuad.grad(lambda v: np.sum(np.sin(fn(np, v))))(X2)
    want = jax.grad(lambda v: jnp.sum(jnp.sin(fn(jnp, v))))(X2)
    _close(got, want)
    value = gpuad.vmap(lambda v: fn(np, v))(X2[None])[0]
    np.testing.assert_allclose(value, fn(np, X2), rtol=1e-14, atol=1e-15)


def test_functions_with_integer_and_structural_results():
    """shape, ndim, size, argmax, argsort, searchsorted, all/any, count_nonzero, result_type,
    meshgrid, unstack, broadcast_arrays: NumPy's answers on traced values."""
    x = X2

    def probe(v):
        assert np.shape(v) == (2, 3) and np.ndim(v) == 2 and np.size(v) == 6 and np.size(v, 1) == 3
        assert np.result_type(v, np.float32) == np.float64 and not np.iscomplexobj(v) and np.isrealobj(v)
        a, b = np.broadcast_arrays(v[0], v[:, :1])
        assert a.shape == b.shape == (2, 3)
        g1, g2 = np.meshgrid(v[0], v[1, :2])
        assert g1.shape == g2.shape == (2, 3)
        assert len(np.unstack(v, axis=1)) == 3
        return np.sum(a * b) + np.sum(g1 * g2)

    got = gpuad.grad(probe)(x)
    want = jax.grad(lambda v: jnp.sum(jnp.broadcast_arrays(v[0], v[:, :1])[0] * v[:, :1])
                    + jnp.sum(jnp.meshgrid(v[0], v[1, :2])[0] * jnp.meshgrid(v[0], v[1, :2])[1]))(x)
    _close(got, want)
    calls = {
        "argmax": lambda v: np.argmax(v, axis=1),
        "argmin": lambda v: np.argmin(v),
        "argsort": lambda v: np.argsort(v, axis=None),
        "searchsorted": lambda v: np.searchsorted(np.asarray([0.0, 1.0]), v),
        "all": lambda v: np.all(v > 0, axis=0),
        "any": lambda v: np.any(v),
        "count_nonzero": lambda v: np.count_nonzero(v > 1.0, axis=1),
    }
    for name, call in calls.items():
        np.testing.assert_array_equal(gpuad.vmap(call)(x[None])[0], call(x), err_msg=name)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda x: np.sum(x, out=np.zeros(())), TypeError, r"np\.sum: gpuad does not support out=\.\.\..*use the result"),
        (lambda x: np.sum(x, where=x > 0), TypeError, r"np\.sum: .*where="),
        (lambda x: np.max(x, initial=0.0), TypeError, r"np\.max: .*initial=0\.0"),
        (lambda x: np.reshape(x, (3, 2), order="F"), TypeError, r"np\.reshape: .*order='F'"),
        (lambda x: np.take(x, [0], mode="wrap"), TypeError, r"np\.take: .*mode='wrap'"),
        (lambda x: np.round(x, 2), TypeError, r"np\.round: .*decimals=0.*np\.round\(x \* 10\*\*d\)"),
        (lambda x: np.linalg.norm(x, ord=2), TypeError, r"np\.linalg\.norm: ord=2 of a matrix.*'fro'"),
        (lambda x: np.linalg.svd(x), TypeError, r"np\.linalg\.svd is not differentiable in gpuad"),
        (lambda x: np.linalg.cholesky(x @ x.T), TypeError, r"np\.linalg\.cholesky is not differentiable in gpuad.*gpuad\.numpy\.linalg\.cholesky.*lower triangle"),
        (lambda x: np.median(x), TypeError, r"np\.median is not differentiable in gpuad.*gpuad\.numpy\.sort"),
        (lambda x: np.isclose(x, 1.0), TypeError, r"np\.isclose .*abs\(a - b\) <= atol"),
        (lambda x: np.diagonal(x), TypeError, r"np\.diagonal .*einsum\('\.\.\.ii->\.\.\.i', x\)"),
        (lambda x: np.unique(x, return_counts=True), TypeError, r"np\.unique: only the values"),
        (lambda x: np.unique(x), gpuad.ConcretizationError, r"unique_values: the shape of its result depends"),
        (lambda x: np.meshgrid(x[0], x[1], sparse=True), TypeError, r"np\.meshgrid: .*sparse=True"),
        (lambda x: np.sort(x, order="a"), TypeError, r"np\.sort: .*order='a'"),
        (lambda x: np.trace(x, offset=1), TypeError, r"np\.trace: gpuad supports offset=0 only"),
        (lambda x: np.einsum("ij->", x, dtype=np.float32), TypeError, r"np\.einsum: .*dtype="),
        (lambda x: np.stack([x, x], out=np.zeros((2, 2, 3))), TypeError, r"np\.stack: .*out="),
        (lambda x: np.where(x > 0, x), ValueError, r"np\.where: either both or neither"),
        (lambda x: np.split(x, 2, axis=1), ValueError, r"array split does not result in an equal division"),
    ],
)
def test_function_refusals(call, error, message):
    with pytest.raises(error, match=message):
        gpuad.grad(lambda v: gnp.sum(call(v)))(X2)


def test_another_librarys_arrays_are_left_to_it():
    """__array_function__ answers NotImplemented when an argument is of a library it does not
    know, so that library (or NumPy's TypeError) decides."""

    class Other:
        def __array_function__(self, func, types, args, kwargs):
            return "other"

    def f(v):
        assert protocols.array_function(v, np.stack, (type(v), Other), ([v, Other()],), {}) is NotImplemented
        return gnp.sum(v)

    gpuad.grad(f)(X2)


def test_every_table_entry_names_a_numpy_function():
    """A misspelt name in the tables would silently map nothing (names NumPy 1.26 lacks are allowed)."""
    newer = {"concat", "permute_dims", "matrix_transpose", "cumulative_sum", "cumulative_prod", "unstack",
             "linalg.vector_norm", "linalg.matmul", "linalg.vecdot", "linalg.tensordot", "linalg.matrix_transpose",
             "linalg.svdvals", "linalg.outer", "linalg.cross", "linalg.diagonal", "linalg.trace", "linalg.matrix_norm"}
    for name in protocols.FUNCTIONS:
        assert protocols._numpy_object(name) is not None or name in newer, name
    for name in protocols.UFUNCS:
        assert isinstance(getattr(np, name, None), np.ufunc) or name in {"vecdot", "matvec", "vecmat"}, name
    for name in protocols.HINTS:
        assert protocols._numpy_object(name) is not None, name


def test_gpuad_numpy_functions_with_numpys_name_are_mapped_or_refused_on_purpose():
    """Each gpuad.numpy function that shares a name with a NumPy function is either in the tables
    or deliberately left out (its NumPy form differs and has no adapter yet)."""
    deliberately_left_out = {
        "asarray", "arange", "linspace", "eye", "zeros", "ones", "empty", "full",  # creation: no traced argument
        "isdtype", "can_cast", "finfo", "iinfo", "broadcast_shapes", "from_dlpack", "astype",
        "logsumexp", "softmax", "log_softmax", "sigmoid", "softplus", "relu", "stop_gradient", "getitem", "at",
        "unique_all", "unique_counts", "unique_inverse", "unique_values",
    }
    for name in dir(gnp):
        ours = getattr(gnp, name)
        theirs = getattr(np, name, None)
        if name.startswith("_") or not callable(ours) or not callable(theirs) or isinstance(ours, type):
            continue
        if name in deliberately_left_out or isinstance(theirs, type):
            continue
        mapped = (getattr(theirs, "__name__", name) in protocols.UFUNCS if isinstance(theirs, np.ufunc)
                  else name in protocols.FUNCTIONS)
        assert mapped, f"np.{name} has a gpuad.numpy namesake but no mapping"
