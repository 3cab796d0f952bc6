"""vmap against jax.vmap: every spec row batched (all arguments, or only the first, or along the
last axis), composed with grad, jacrev and itself, in float64 and float32, on NumPy and strict."""

from __future__ import annotations

import functools

import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp

from .conftest import all_backends
from .helpers import batch_inputs, oracle, tolerances, vmap_cases
from .helpers import check_typed as check
from .spec import SPECS, GpuadNS, JaxNS, core

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402

GNS = GpuadNS()
JNS = JaxNS()
B = 3
SMALL = core([s for s in SPECS if all(int(np.prod(d.shape)) <= 12 for d in s.args)])


@pytest.mark.parametrize("spec, mode, dtype", vmap_cases(SPECS))
def test_vmap_value_and_per_point_gradient(spec, mode, dtype):
    """vmap(f) and vmap(grad(sum(w * f))) equal JAX's, with per-point shapes inside, on every
    backend (JAX runs once; the backends loop inside)."""
    xs, axes = batch_inputs(spec, dtype, mode)
    f = lambda *a: spec.fn(GNS, *a)
    jf = lambda *a: spec.fn(JNS, *a)
    out = jax.eval_shape(jax.vmap(jf, in_axes=axes), *xs)
    w = np.random.default_rng(5).standard_normal(out.shape[1:]).astype(out.dtype)
    argnums = tuple(range(len(xs)))
    jh = lambda *a: jnp.sum(jf(*a) * jnp.asarray(w))
    want, want_g = oracle(
        lambda *a: (jax.vmap(jf, in_axes=axes)(*a), jax.vmap(jax.grad(jh, argnums=argnums), in_axes=axes)(*a))
    )(*xs)
    for backend in all_backends(spec):
        bxs = [backend.asarray(x) for x in xs]
        check(gpuad.vmap(f, in_axes=axes)(*bxs), want, **tolerances(spec, dtype, loosen32=5))
        h = lambda *a, bw=backend.asarray(w): gnp.sum(f(*a) * bw)
        got = gpuad.vmap(gpuad.grad(h, argnums=argnums), in_axes=axes)(*bxs)
        for g, e in zip(got, want_g):
            check(g, e, **tolerances(spec, dtype, loosen32=5))


@pytest.mark.slow  # compositions: in the default run, not in the quick subset (-m "not slow")
@pytest.mark.parametrize("spec", SMALL, ids=str)
def test_vmap_of_jacrev_and_jacrev_of_vmap(spec):
    xs, axes = batch_inputs(spec, "float64", "all")
    f = lambda *a: spec.fn(GNS, *a)
    jf = lambda *a: spec.fn(JNS, *a)
    argnums = tuple(range(len(xs)))
    want_vj, want_jv = oracle(
        lambda *a: (jax.vmap(jax.jacrev(jf, argnums=argnums))(*a), jax.jacrev(jax.vmap(jf), argnums=argnums)(*a))
    )(*xs)
    got = gpuad.vmap(gpuad.jacrev(f, argnums=argnums))(*xs)
    for g, e in zip(got, want_vj):
        check(g, e, **tolerances(spec, "float64"))
    got = gpuad.jacrev(gpuad.vmap(f), argnums=argnums)(*xs)
    for g, e in zip(got, want_jv):
        check(g, e, **tolerances(spec, "float64"))


@pytest.mark.parametrize("spec", [s for s in SMALL if s.second_order], ids=str)
def test_vmap_of_second_derivatives(spec):
    """vmap(grad(grad-based hvp)) per point equals JAX's."""
    xs, axes = batch_inputs(spec, "float64", "all")
    rng = np.random.default_rng(11)
    out_shape = np.shape(spec.fn(GNS, *[x[0] for x in xs]))
    w = rng.standard_normal(out_shape)
    vs = [rng.standard_normal(x.shape[1:]) for x in xs]
    argnums = tuple(range(len(xs)))

    def hvp(ns, grad, wv, vv):
        h = lambda *a: ns.sum(spec.fn(ns, *a) * wv)
        return lambda *a: functools.reduce(ns.add, [ns.sum(g * v) for g, v in zip(grad(h, argnums=argnums)(*a), vv)])

    want = oracle(jax.vmap(jax.grad(hvp(JNS, jax.grad, jnp.asarray(w), [jnp.asarray(v) for v in vs]), argnums=argnums)))(
        *xs
    )
    for backend in all_backends(spec):
        got = gpuad.vmap(
            gpuad.grad(hvp(GNS, gpuad.grad, backend.asarray(w), [backend.asarray(v) for v in vs]), argnums=argnums)
        )(*[backend.asarray(x) for x in xs])
        for g, e in zip(got, want):
            check(g, e, rtol=1e-9, atol=1e-11)


@pytest.mark.slow  # a composition: in the default run, not in the quick subset (-m "not slow")
@pytest.mark.parametrize("spec", SMALL, ids=str)
def test_vmap_of_vmap(spec):
    rng = np.random.default_rng(3)
    xs = [np.stack([np.stack([d.sample(rng, "float64") for _ in range(2)]) for _ in range(B)]) for d in spec.args]
    f = lambda *a: spec.fn(GNS, *a)
    want = oracle(jax.vmap(jax.vmap(lambda *a: spec.fn(JNS, *a))))(*xs)
    for backend in all_backends(spec):
        got = gpuad.vmap(gpuad.vmap(f))(*[backend.asarray(x) for x in xs])
        check(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("chunk", [1, 2, 5])
def test_chunked_equals_unchunked(chunk, backend):
    """chunk_size changes memory use, never results (also for mapped and unmapped outputs)."""
    rng = np.random.default_rng(0)
    X = rng.uniform(1, 3, size=(7, 2))
    W = rng.standard_normal(2)

    def f(x, w):
        v = gnp.log(x[0]) + x[0] * x[1] - gnp.sin(x[1])
        return {"v": v, "g": gpuad.grad(lambda y: gnp.sum(y * w) * v)(x), "w": w}

    whole = gpuad.vmap(f, in_axes=(0, None), out_axes={"v": 0, "g": 1, "w": None})(backend.asarray(X), backend.asarray(W))
    parts = gpuad.vmap(f, in_axes=(0, None), out_axes={"v": 0, "g": 1, "w": None}, chunk_size=chunk)(
        backend.asarray(X), backend.asarray(W)
    )
    for k in whole:
        np.testing.assert_array_equal(gpuad.to_numpy(parts[k]), gpuad.to_numpy(whole[k]))
    assert gpuad.to_numpy(parts["g"]).shape == (2, 7)


def test_out_axes_and_unbatched_outputs_match_jax():
    X = np.arange(12.0).reshape(3, 4)
    f = lambda x, c: (x * 2.0, c + 1.0, gnp.sum(x))
    jf = lambda x, c: (x * 2.0, c + 1.0, jnp.sum(x))
    c = np.asarray([1.0, 2.0])
    for out_axes in [0, -1, (1, None, 0), (-2, None, -1)]:
        got = gpuad.vmap(f, in_axes=(0, None), out_axes=out_axes)(X, c)
        want = jax.vmap(jf, in_axes=(0, None), out_axes=out_axes)(jnp.asarray(X), jnp.asarray(c))
        for g, e in zip(got, want):
            check(g, e)


def test_pytree_in_axes_match_jax():
    params = {"w": np.asarray([[1.0, 2.0], [3.0, 4.0]]), "b": np.arange(6.0).reshape(3, 2)}
    xs = [np.asarray([0.5, -1.0]), np.arange(6.0).reshape(2, 3)]
    in_axes = ({"w": None, "b": 0}, [None, 1])
    f = lambda p, x, xp: xp.tanh(p["w"] @ x[0] + p["b"]) * xp.sum(x[1])
    got = gpuad.vmap(lambda p, x: f(p, x, gnp), in_axes=in_axes)(params, xs)
    want = jax.vmap(lambda p, x: f(p, x, jnp), in_axes=in_axes)(
        jax.tree_util.tree_map(jnp.asarray, params), [jnp.asarray(v) for v in xs]
    )
    check(got, want, rtol=1e-14)


def test_per_point_code_sees_per_point_shapes():
    seen = []

    def f(x, M):
        seen.append((x.shape, x.ndim, M.shape))
        return M @ x + x[::-1] * gnp.sum(x, axis=0) + gnp.reshape(x, (2, 1))[:, 0]

    X = np.arange(8.0).reshape(4, 2)
    Ms = np.arange(16.0).reshape(4, 2, 2)
    got = gpuad.vmap(f)(X, Ms)
    assert seen[0] == ((2,), 1, (2, 2))
    want = np.stack([Ms[i] @ X[i] + X[i][::-1] * X[i].sum() + X[i] for i in range(4)])
    np.testing.assert_allclose(got, want, rtol=1e-14)


def test_shared_parameters_gradient_through_vmap():
    """grad(lambda p: sum(vmap(loss, (None, 0))(p, X))) equals JAX's."""
    rng = np.random.default_rng(1)
    p = rng.standard_normal(3)
    X = rng.standard_normal((5, 3))

    def loss(p, x, xp):
        return xp.sin(xp.sum(p * x)) ** 2

    got = gpuad.grad(lambda p: gnp.sum(gpuad.vmap(lambda p, x: loss(p, x, gnp), in_axes=(None, 0))(p, X)))(p)
    want = jax.grad(lambda p: jnp.sum(jax.vmap(lambda p, x: loss(p, x, jnp), in_axes=(None, 0))(p, jnp.asarray(X))))(
        jnp.asarray(p)
    )
    check(got, want, rtol=1e-13)


def test_batched_integer_indices_gather_per_point():
    """x[i] with a per-point integer i (a label) gathers each point's own element, and the
    gradient scatters back to it."""
    X = np.arange(12.0).reshape(4, 3) / 10
    labels = np.asarray([2, 0, 1, 2])
    f = lambda x, y: x[y] ** 2 + x[y - 1]
    got = gpuad.vmap(gpuad.grad(f))(X, labels)
    want = jax.vmap(jax.grad(lambda x, y: x[y] ** 2 + x[y - 1]))(jnp.asarray(X), jnp.asarray(labels))
    check(got, want, rtol=1e-14)
    check(gpuad.vmap(f)(X, labels), jax.vmap(lambda x, y: x[y] ** 2 + x[y - 1])(jnp.asarray(X), jnp.asarray(labels)))


def test_vmap_of_value_and_grad_and_vjp():
    X = np.linspace(0.1, 1.0, 6).reshape(3, 2)
    f = lambda x: gnp.sum(gnp.exp(x) * x)
    v, g = gpuad.vmap(gpuad.value_and_grad(f))(X)
    jv, jg = jax.vmap(jax.value_and_grad(lambda x: jnp.sum(jnp.exp(x) * x)))(jnp.asarray(X))
    check(v, jv, rtol=1e-14)
    check(g, jg, rtol=1e-14)
    out, pull = gpuad.vjp(lambda x: gnp.sin(x) * x, X[0])
    cts = np.eye(2)
    rows = gpuad.vmap(pull)(cts)[0]
    jout, jpull = jax.vjp(lambda x: jnp.sin(x) * x, jnp.asarray(X[0]))
    check(rows, jax.vmap(jpull)(jnp.asarray(cts))[0], rtol=1e-14)
