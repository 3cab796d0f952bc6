"""Every row of the spec table against JAX (x64 on): values, VJPs, JVPs, Jacobians and second
derivatives, in float64 (tight) and float32 (loose), on NumPy and on array_api_strict's device1."""

from __future__ import annotations

import functools

import numpy as np
import pytest

import gpuad
from gpuad import numpy as gnp

from .conftest import all_backends
from .helpers import check, inputs, oracle, ours, same_dtype, theirs, tolerances
from .spec import SPECS, dtype_cases, spec_cases

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402

DTYPES = ["float64", pytest.param("float32", marks=pytest.mark.slow)]  # quick subset: float64

cases = pytest.mark.parametrize("spec", spec_cases(SPECS))
dtypes = pytest.mark.parametrize("dtype", DTYPES)


@cases
@dtypes
def test_first_order(spec, dtype):
    """Value (and its dtype: float32 stays float32), vjp with a random cotangent and jvp with
    random tangents equal JAX's, on every backend; on NumPy also evaluated on plain arrays.
    (JAX runs once per case, as one compiled program; the backends loop inside.)"""
    xs = inputs(spec, dtype)
    f = theirs(spec)
    out = jax.eval_shape(f, *xs)
    w = np.random.default_rng(1).standard_normal(out.shape).astype(out.dtype)
    ts = [np.random.default_rng(2 + i).standard_normal(x.shape).astype(dtype) for i, x in enumerate(xs)]

    def program(xs, w, ts):
        expected, pullback = jax.vjp(f, *xs)
        return expected, pullback(w), jax.jvp(f, tuple(xs), tuple(ts))[1]

    expected, want_ct, want_t = oracle(program)(xs, w, ts)
    tol = tolerances(spec, dtype)
    for backend in all_backends(spec):
        out, pullback = gpuad.vjp(ours(spec), *[backend.asarray(x) for x in xs])
        same_dtype(out, expected)
        check(out, expected, **tol)
        got = pullback(backend.asarray(w))
        assert isinstance(got, tuple) and len(got) == len(xs)
        for g, e, x in zip(got, want_ct, xs):
            assert gpuad.backend.dtype_name(g.dtype) == x.dtype.name  # cotangent in the input's dtype
            check(g, e, **tol)
        out_t, tan = gpuad.jvp(ours(spec), [backend.asarray(x) for x in xs], [backend.asarray(t) for t in ts])
        check(out_t, expected, **tol)
        same_dtype(tan, want_t)
        check(tan, want_t, **tol)
    plain = ours(spec)(*xs)
    same_dtype(plain, expected)
    check(plain, expected, **tol)


@pytest.mark.slow  # the Jacobian's rows are VJPs (test_first_order): not in the quick subset
@cases
def test_jacrev(spec):
    """The full Jacobian by reverse mode equals jax.jacrev (float64), on every backend."""
    xs = inputs(spec, "float64")
    argnums = tuple(range(len(xs)))
    want = oracle(jax.jacrev(theirs(spec), argnums=argnums))(*xs)
    for backend in all_backends(spec):
        got = gpuad.jacrev(ours(spec), argnums=argnums)(*[backend.asarray(x) for x in xs])
        for g, e in zip(got, want):
            check(g, e, **tolerances(spec, "float64"))


def _scalarized(f, w, xp):
    """x -> sum(w * f(x)): a scalar whose gradient is the VJP with cotangent w."""
    return lambda *a: xp.sum(f(*a) * w)


@pytest.mark.parametrize("spec, dtype", dtype_cases([s for s in SPECS if s.second_order]))
def test_second_order(spec, dtype):
    """Reverse-over-reverse and forward-over-reverse second derivatives equal JAX's.

    With h(x) = sum(w * f(x)), checks grad(x -> sum(v * grad(h)(x))) (a Hessian-vector product by
    reverse over reverse) and jvp(grad(h), x, v) (the same product, forward over reverse)."""
    xs = inputs(spec, dtype)
    argnums = tuple(range(len(xs)))
    e_out = jax.eval_shape(theirs(spec), *xs)
    rng = np.random.default_rng(3)
    w = rng.standard_normal(e_out.shape).astype(e_out.dtype)
    vs = [rng.standard_normal(x.shape).astype(dtype) for x in xs]

    def hvp_rr(f, xp, wv, vv, grad):
        h = _scalarized(f, wv, xp)

        def inner(*a):
            gs = grad(h, argnums=argnums)(*a)
            return functools.reduce(xp.add, [xp.sum(g * v) for g, v in zip(gs, vv)])

        return inner

    def grad_all(f, xp, wv, grad):
        return lambda *a: grad(_scalarized(f, wv, xp), argnums=argnums)(*a)

    def program(xs, w, vs):
        want = jax.grad(hvp_rr(theirs(spec), jnp, w, vs, jax.grad), argnums=argnums)(*xs)
        _, want_t = jax.jvp(grad_all(theirs(spec), jnp, w, jax.grad), tuple(xs), tuple(vs))
        return want, want_t

    want, want_t = oracle(program, spec)(xs, w, vs)
    tol = tolerances(spec, dtype)
    if dtype == "float32":
        tol = dict(rtol=tol["rtol"] * 10, atol=tol["atol"] * 10)
    for backend in all_backends(spec):
        bw, bvs = backend.asarray(w), [backend.asarray(v) for v in vs]
        bxs = [backend.asarray(x) for x in xs]
        got = gpuad.grad(hvp_rr(ours(spec), gnp, bw, bvs, gpuad.grad), argnums=argnums)(*bxs)
        for g, e in zip(got, want):
            check(g, e, **tol)
        _, got_t = gpuad.jvp(grad_all(ours(spec), gnp, bw, gpuad.grad), bxs, bvs)
        for g, e in zip(got_t, want_t):
            check(g, e, **tol)


@cases
def test_strict_matches_numpy(spec):
    """The stand-in GPU (strict device1) gives exactly NumPy's gradients: no hidden conversion."""
    import array_api_strict as xs_mod

    dev = xs_mod.Device("device1")
    xs = inputs(spec, "float64")
    f = ours(spec)
    if not spec.runs_on("strict"):
        # No special functions on that device, and no silent trip through the host: the error
        # names the library and the way out (gpuad.scipy.special's decision, README).
        with pytest.raises(TypeError, match=r"array_api_strict arrays are not supported: special functions .* gpuad.to_numpy"):
            gpuad.vjp(f, *[xs_mod.asarray(x, device=dev) for x in xs])
        return
    out, pull = gpuad.vjp(f, *xs)
    w = np.ones(np.shape(out))
    g_np = pull(w)
    out_s, pull_s = gpuad.vjp(f, *[xs_mod.asarray(x, device=dev) for x in xs])
    g_s = pull_s(xs_mod.asarray(w, device=dev))
    assert out_s.device == dev
    for a, b in zip(g_s, g_np):
        assert a.device == dev
        np.testing.assert_allclose(gpuad.to_numpy(a), b, rtol=1e-13, atol=1e-14)
