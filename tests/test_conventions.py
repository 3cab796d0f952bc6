"""The conventions of DESIGN.md, each against JAX where JAX defines it: choices at kinks, where's
NaN behaviour, dtype promotion (float32 stays float32), Python scalars, NumPy arrays on the left."""

from __future__ import annotations

import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402


def both(fn):
    """(gpuad gradient, JAX gradient) of sum(fn(xp, x)) at the same point."""

    def run(x):
        got = gpuad.grad(lambda v: gnp.sum(fn(gnp, v)))(x)
        want = jax.grad(lambda v: jnp.sum(fn(jnp, v)))(jnp.asarray(x))
        return gpuad.to_numpy(got), np.asarray(want)

    return run


KINKS = {
    "maximum_tie": (lambda xp, x: xp.maximum(x, 1.0), [1.0, 0.0, 2.0], [0.5, 0.0, 1.0]),
    "minimum_tie": (lambda xp, x: xp.minimum(x, 1.0), [1.0, 0.0, 2.0], [0.5, 1.0, 0.0]),
    "maximum_self": (lambda xp, x: xp.maximum(x, x), [1.0, -2.0], [1.0, 1.0]),
    "max_ties_share": (lambda xp, x: xp.max(x), [3.0, 1.0, 3.0, 3.0], [1 / 3, 0.0, 1 / 3, 1 / 3]),
    "min_ties_share": (lambda xp, x: xp.min(x), [0.0, 0.0, 1.0], [0.5, 0.5, 0.0]),
    "abs_at_zero": (lambda xp, x: xp.abs(x), [0.0, -1.0, 2.0], [1.0, -1.0, 1.0]),
    "sign": (lambda xp, x: xp.sign(x), [0.0, -1.0, 2.0], [0.0, 0.0, 0.0]),
    "clip_at_bounds": (lambda xp, x: xp.clip(x, 0.0, 1.0), [0.0, 1.0, 0.5, 2.0], [0.5, 0.5, 1.0, 0.0]),
    "sqrt_at_zero": (lambda xp, x: xp.sqrt(x), [0.0, 4.0], [np.inf, 0.25]),
    "relu_at_zero": (lambda xp, x: xp.relu(x) if xp is gnp else jax.nn.relu(x), [0.0, -1.0, 2.0], [0.0, 0.0, 1.0]),
    "pow_zero_base": (lambda xp, x: xp.pow(0.0 * x, x) + x, [2.0], [1.0]),
}


@pytest.mark.parametrize("name", sorted(KINKS))
def test_choices_at_kinks_match_jax(name):
    fn, x, expected = KINKS[name]
    got, want = both(fn)(np.asarray(x))
    np.testing.assert_array_equal(want, expected)  # the convention, as JAX 0.10 gives it
    np.testing.assert_array_equal(got, want)


def test_where_is_not_nan_safe_like_jax():
    """A NaN derivative in the branch not taken poisons the gradient (as JAX), and the
    double-where pattern avoids it."""
    x = np.asarray([0.0, 4.0])
    naive = lambda xp, v: xp.where(v > 0, xp.sqrt(v), 0.0)
    got, want = both(naive)(x)
    assert np.isnan(want[0]) and np.isnan(got[0])
    np.testing.assert_array_equal(got[1:], want[1:])

    def safe(xp, v):
        inner = xp.where(v > 0, v, 1.0)
        return xp.where(v > 0, xp.sqrt(inner), 0.0)

    got, want = both(safe)(x)
    np.testing.assert_array_equal(got, [0.0, 0.25])
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    "fn",
    [
        lambda x: gnp.sum(x * 2.0 + 1),
        lambda x: gnp.sum(gnp.where(x > 0, x, 0.5)),
        lambda x: gnp.sum(gnp.maximum(x, 0.1) + gnp.minimum(0.2, x)),
        lambda x: gnp.sum(gnp.clip(x, 0.0, 1.0)),
        lambda x: gnp.sum(x**2.5 + 2.0**x + gnp.pow(x, 2)),
        lambda x: gnp.sum(gnp.logaddexp(x, 0.0) + gnp.logsumexp(x)),
        lambda x: gnp.mean(gnp.softmax(x) * gnp.sigmoid(x)) + gnp.var(x) + gnp.std(x),
        lambda x: gnp.sum(x[::2] @ gnp.ones((2, 3), dtype=x.dtype)),
    ],
)
def test_float32_stays_float32(backend, fn):
    """float32 inputs give float32 values and gradients, with Python scalars in the mix."""
    x = backend.asarray(np.asarray([0.2, 0.7, 1.5, 0.3], dtype=np.float32))
    value, g = gpuad.value_and_grad(fn)(x)
    assert gpuad.backend.dtype_name(value.dtype) == "float32"
    assert gpuad.backend.dtype_name(g.dtype) == "float32"


def test_float32_with_float64_promotes_like_numpy():
    """float32 combined with a float64 array gives float64 (as NumPy); each gradient keeps its
    input's dtype."""
    a = np.asarray([1.0, 2.0], dtype=np.float32)
    b = np.asarray([3.0, 4.0], dtype=np.float64)
    value, (ga, gb) = gpuad.value_and_grad(lambda a, b: gnp.sum(a * b), argnums=(0, 1))(a, b)
    assert value.dtype == np.float64 and ga.dtype == np.float32 and gb.dtype == np.float64
    np.testing.assert_array_equal(ga, [3.0, 4.0])
    np.testing.assert_array_equal(gb, [1.0, 2.0])


def test_float64_by_default():
    """Unlike JAX, float64 works without any flag, and Python floats become float64."""
    g = gpuad.grad(lambda x: gnp.sum(gnp.sin(x) * 0.1))(np.asarray([1.0, 2.0]))
    assert g.dtype == np.float64
    assert gnp.asarray([1.0, 2.0]).dtype == np.float64


def test_python_scalars_where_the_standard_accepts_them():
    x = np.asarray([-1.0, 0.5, 2.0])
    checks = {
        "where": (lambda xp, v: xp.where(v > 0, v, 0.0), None),
        "maximum": (lambda xp, v: xp.maximum(v, 0.25), None),
        "minimum": (lambda xp, v: xp.minimum(1.0, v), None),
        "clip": (lambda xp, v: xp.clip(v, -0.5, 1.5), None),
        "pow": (lambda xp, v: xp.pow(2.0, v) + xp.pow(v, 2), None),
        "logaddexp": (lambda xp, v: xp.logaddexp(v, 1.0) + xp.logaddexp(0.5, v), None),
        "operators": (lambda xp, v: 1.0 - v * 2 + 3 / (v + 4) + v**3 - (-v) % 2.0, None),
    }
    for name, (fn, _) in checks.items():
        got, want = both(fn)(x)
        np.testing.assert_allclose(got, want, rtol=1e-14, err_msg=name)


def test_numpy_array_on_the_left_of_operators():
    """M @ x, c * x, c - x, c / x with NumPy arrays on the left use gpuad's reflected operators."""
    M = np.asarray([[1.0, 2.0], [3.0, 4.0]])
    c = np.asarray([2.0, -1.0])

    def f(xp, x):
        return (M @ x) * (c * x) + (c - x) / (c + x * x)

    got, want = both(f)(np.asarray([0.5, 1.5]))
    np.testing.assert_allclose(got, want, rtol=1e-14)


def test_traced_values_offer_the_array_api_namespace():
    """Code written against array_namespace(x) is differentiable unchanged."""
    from array_api_compat import array_namespace

    def f(x):
        xp = array_namespace(x)
        return xp.sum(xp.exp(x) * xp.asarray(2.0, dtype=x.dtype, device=x.device))

    g = gpuad.grad(f)(np.asarray([0.0, 1.0]))
    np.testing.assert_allclose(g, 2 * np.exp([0.0, 1.0]), rtol=1e-15)


def test_traced_value_attributes():
    seen = {}

    def f(x):
        seen.update(shape=x.shape, ndim=x.ndim, dtype=x.dtype, device=x.device, size=x.size, T=x.T.shape, mT=x.mT.shape)
        return gnp.sum(x)

    gpuad.grad(f)(np.ones((2, 3)))
    assert seen == dict(shape=(2, 3), ndim=2, dtype=np.float64, device="cpu", size=6, T=(3, 2), mT=(3, 2))


def test_results_are_arrays_of_the_input_library(backend):
    x = backend.asarray(np.asarray([1.0, 2.0]))
    value, g = gpuad.value_and_grad(lambda v: gnp.sum(v * v))(x)
    assert type(g) is type(x)
    assert gpuad.to_numpy(value).shape == ()


def test_gradient_results_are_writable():
    """A gradient that is a broadcast inside the sweep comes back as an ordinary array."""
    g = gpuad.grad(lambda v: gnp.sum(v))(np.ones(3))
    g *= 2
    np.testing.assert_array_equal(g, [2.0, 2.0, 2.0])
