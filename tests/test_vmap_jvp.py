"""jvp called inside a vmap. Every spec row against jax.vmap(jax.jvp), on every backend, in every
batching mode; the compositions that stress it (closures over batched values, aux outputs, constant
outputs, integer inputs, unbatched tangents, nested transforms, custom rules)."""

from __future__ import annotations

import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp

from .conftest import all_backends
from .spec import SPECS, GpuadNS, JaxNS
from .helpers import batch_inputs, oracle, tolerances, vmap_cases
from .helpers import check_typed as check

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402

GNS = GpuadNS()
JNS = JaxNS()


def _tangents_like(xs, axes, seed):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(x.shape).astype(x.dtype) if np.issubdtype(x.dtype, np.floating) else None for x in xs]


@pytest.mark.parametrize("spec, mode, dtype", vmap_cases(SPECS))
def test_vmap_of_jvp_matches_jax(spec, mode, dtype):
    xs, axes = batch_inputs(spec, dtype, mode)
    assert all(np.issubdtype(x.dtype, np.floating) for x in xs)  # a row with integer inputs needs None tangents here
    ts = _tangents_like(xs, axes, 11)
    f = lambda *a: spec.fn(GNS, *a)
    jf = lambda *a: spec.fn(JNS, *a)
    n = len(xs)

    def jpush(*pt):
        return jax.jvp(jf, tuple(pt[:n]), tuple(pt[n:]))

    want_p, want_t = oracle(jax.vmap(jpush, in_axes=axes + axes))(*xs, *ts)
    for backend in all_backends(spec):
        b = [backend.asarray(v) for v in xs + ts]
        got_p, got_t = gpuad.vmap(lambda *pt: gpuad.jvp(f, tuple(pt[:n]), tuple(pt[n:])), in_axes=axes + axes)(*b)
        check(got_p, want_p, **tolerances(spec, dtype, loosen32=5))
        check(got_t, want_t, **tolerances(spec, dtype, loosen32=5))


def test_closures_over_batched_values_and_unbatched_constants():
    """``fun`` uses a batched value of the vmap it did not receive (y), and an unbatched array (w):
    both are constants of the jvp, y per point."""
    rng = np.random.default_rng(1)
    X, Y, T = rng.standard_normal((6, 3)), rng.standard_normal((6, 3)), rng.standard_normal((6, 3))
    w = rng.standard_normal(3)

    def per_point(x, y, t):
        y2 = gnp.cos(y)  # computed at the vmap's level, outside the jvp
        return gpuad.jvp(lambda v: gnp.sum(v * y2 * w + gnp.sin(v * y)), (x,), (t,))

    got = gpuad.vmap(per_point)(X, Y, T)

    def jper(x, y, t):
        y2 = jnp.cos(y)
        return jax.jvp(lambda v: jnp.sum(v * y2 * w + jnp.sin(v * y)), (x,), (t,))

    want = jax.vmap(jper)(X, Y, T)
    for g, e in zip(got, want):
        np.testing.assert_allclose(g, e, rtol=1e-13, atol=1e-14)


def test_outputs_that_do_not_depend_on_the_input_and_aux():
    """Outputs: a closed-over batched value, an unbatched constant, a Python number, and an aux
    pair; their tangents are zeros of their shapes, batched where the output is."""
    rng = np.random.default_rng(2)
    X, Y, T = rng.standard_normal((4, 2)), rng.standard_normal((4, 2)), rng.standard_normal((4, 2))
    c = np.arange(3.0)

    def per_point(x, y, t):
        def fun(v):
            return (v * 2.0, y, c, 1.5), (gnp.sum(v), y)

        return gpuad.jvp(fun, (x,), (t,), has_aux=True)

    (p, tan, aux) = gpuad.vmap(per_point)(X, Y, T)
    np.testing.assert_allclose(p[0], 2 * X)
    np.testing.assert_allclose(tan[0], 2 * T)
    np.testing.assert_array_equal(p[1], Y)
    np.testing.assert_array_equal(tan[1], np.zeros_like(Y))
    np.testing.assert_array_equal(p[2], np.broadcast_to(c, (4, 3)))
    np.testing.assert_array_equal(tan[2], np.zeros((4, 3)))
    np.testing.assert_array_equal(p[3], np.full(4, 1.5))
    np.testing.assert_array_equal(tan[3], np.zeros(4))
    np.testing.assert_allclose(aux[0], X.sum(axis=1))
    np.testing.assert_array_equal(aux[1], Y)


@pytest.mark.parametrize(
    "case",
    ["unbatched tangent", "unbatched primal", "zero tangent", "inside grad", "nested jvp"],
)
def test_compositions_agree_with_jax(case):
    rng = np.random.default_rng(3)
    X, T = rng.uniform(-1, 1, (5, 3)), rng.uniform(-1, 1, (5, 3))
    t1, x1 = T[0], X[0]
    f, jf = (lambda v: gnp.sum(gnp.tanh(v) * v)), (lambda v: jnp.sum(jnp.tanh(v) * v))
    if case == "unbatched tangent":
        got = gpuad.vmap(lambda x, t: gpuad.jvp(f, (x,), (t,)), in_axes=(0, None))(X, t1)
        want = jax.vmap(lambda x, t: jax.jvp(jf, (x,), (t,)), in_axes=(0, None))(X, t1)
    elif case == "unbatched primal":
        got = gpuad.vmap(lambda x, t: gpuad.jvp(f, (x,), (t,)), in_axes=(None, 0))(x1, T)
        want = jax.vmap(lambda x, t: jax.jvp(jf, (x,), (t,)), in_axes=(None, 0))(x1, T)
    elif case == "zero tangent":
        g2 = lambda a, b: gnp.sum(gnp.sin(a) * b)
        got = gpuad.vmap(lambda x, t: gpuad.jvp(g2, (x, x), (t, None)))(X, T)
        want = jax.vmap(lambda x, t: jax.jvp(lambda a, b: jnp.sum(jnp.sin(a) * b), (x, x), (t, jnp.zeros_like(t))))(X, T)
    elif case == "inside grad":
        h = lambda x: gnp.sum(gpuad.vmap(lambda p, t: gpuad.jvp(f, (p,), (t,))[1])(x, T))
        got = (gpuad.grad(h)(X),)
        want = (jax.grad(lambda x: jnp.sum(jax.vmap(lambda p, t: jax.jvp(jf, (p,), (t,))[1])(x, T)))(X),)
    else:  # jvp of jvp under one vmap: the outer one swaps, the inner one (under it) does not
        inner = lambda v, t: gpuad.jvp(f, (v,), (t,))[1]
        got = gpuad.vmap(lambda x, t: gpuad.jvp(lambda v: inner(v, t), (x,), (t,)))(X, T)
        jinner = lambda v, t: jax.jvp(jf, (v,), (t,))[1]
        want = jax.vmap(lambda x, t: jax.jvp(lambda v: jinner(v, t), (x,), (t,)))(X, T)
    for g, e in zip(got, want):
        np.testing.assert_allclose(g, e, rtol=1e-13, atol=1e-14)


def test_errors_inside_are_the_usual_ones():
    """Control flow on a batched value inside a vmapped jvp fails as it does in vmap."""
    X = np.ones((3, 2))

    def f(v):
        if v[0] > 0:
            return v
        return -v

    with pytest.raises(TypeError, match="the truth value of a batched value"):
        gpuad.vmap(lambda x, t: gpuad.jvp(f, (x,), (t,)))(X, X)



def test_custom_rules_stay_in_force_per_point():
    """A custom_jvp rule stays in force per point, closing over a value of the vmap (the function
    runs once); a custom_vjp function is refused in forward mode as anywhere else."""
    rng = np.random.default_rng(8)
    X, Y, T = rng.uniform(-1, 1, (5, 3)), rng.uniform(-1, 1, (5, 3)), rng.uniform(-1, 1, (5, 3))
    op = gpuad.custom_jvp(lambda v: gnp.sin(v))
    op.defjvp(lambda p, t: (gnp.sin(p[0]), 3.0 * t[0]))  # deliberately not cos: the rule is used
    runs = {"n": 0}

    def per_point(x, y, t):
        def fun(v):
            runs["n"] += 1
            u = op(v * 1.0)
            return gnp.sum(u * y)

        return gpuad.jvp(fun, (x,), (t,))

    value, tangent = gpuad.vmap(per_point)(X, Y, T)
    assert runs["n"] == 1
    np.testing.assert_allclose(value, np.sum(np.sin(X) * Y, axis=1), rtol=1e-14)
    np.testing.assert_allclose(tangent, np.sum(3.0 * T * Y, axis=1), rtol=1e-14)

    cv = gpuad.custom_vjp(lambda v: gnp.sin(v))
    cv.defvjp(lambda v: (gnp.sin(v), v), lambda v, g: (g,))
    with pytest.raises(TypeError, match="can't apply forward-mode differentiation"):
        gpuad.vmap(lambda x, t: gpuad.jvp(lambda v: gnp.sum(cv(v)), (x,), (t,)))(X, T)


def test_a_leaked_dual_value_is_refused():
    kept = []

    def leaky(v):
        kept.append(v * 2.0)
        return gnp.sum(v)

    X = np.ones((2, 3))
    gpuad.vmap(lambda x, t: gpuad.jvp(leaky, (x,), (t,)))(X, X)
    with pytest.raises(gpuad.LeakedTracerError, match=r"escaped from the transform.*Return it from the function"):
        gnp.sin(kept[0])
