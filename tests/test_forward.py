"""Forward mode against JAX: jacfwd in vector mode (K tangents per pass, K in {1, 3, 16}),
linearize, hessian, hvp, and their composition with vmap, over the spec table."""

from __future__ import annotations

import math

import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp

from . import helpers
from .conftest import all_backends
from .helpers import check, oracle
from .spec import SPECS, GpuadNS, JaxNS, core, dtype_cases

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402

GNS = GpuadNS()
JNS = JaxNS()
SMALL = core([s for s in SPECS if all(int(np.prod(d.shape)) <= 12 for d in s.args)])


def inputs(spec, dtype="float64", seed=0):
    """This file's sample of the row's arguments (its own seeds: 31 on from the oracle tests')."""
    return helpers.inputs(spec, dtype, seed=31 + seed)


@pytest.mark.parametrize("spec, dtype", dtype_cases(SPECS))
def test_jacfwd_any_chunk_size_matches_jax(spec, dtype):
    """jacfwd with 1, 3 or 16 tangents per pass (and all at once) equals jax.jacfwd, on every
    backend."""
    xs = inputs(spec, dtype)
    argnums = tuple(range(len(xs)))
    f = lambda *a: spec.fn(GNS, *a)
    want = oracle(jax.jacfwd(lambda *a: spec.fn(JNS, *a), argnums=argnums))(*xs)
    for backend in all_backends(spec):
        bxs = [backend.asarray(x) for x in xs]
        for chunk in (None, 1, 3, 16):
            got = gpuad.jacfwd(f, argnums=argnums, chunk_size=chunk)(*bxs)
            for g, e in zip(got, want):
                check(g, e, **helpers.tolerances(spec, dtype, loosen32=5))
                assert gpuad.backend.dtype_name(g.dtype) == np.dtype(e.dtype).name


@pytest.mark.slow  # a composition: in the default run, not in the quick subset (-m "not slow")
@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_linearize_replays_the_jvp(spec):
    """linearize's f_jvp gives jax.jvp's tangent for several tangents, also under vmap."""
    xs = inputs(spec)
    f = lambda *a: spec.fn(GNS, *a)
    rng = np.random.default_rng(4)
    many = [np.stack([rng.standard_normal(x.shape) for _ in range(3)]) for x in xs]
    want = oracle(lambda xs, many: jax.vmap(lambda *t: jax.jvp(lambda *a: spec.fn(JNS, *a), tuple(xs), t)[1])(*many))(xs, many)
    for backend in all_backends(spec):
        out, f_jvp = gpuad.linearize(f, *[backend.asarray(x) for x in xs])
        for k in range(3):
            check(f_jvp(*[backend.asarray(m[k]) for m in many]), want[k], **helpers.tolerances(spec, "float64"))
        check(gpuad.vmap(f_jvp)(*[backend.asarray(m) for m in many]), want, **helpers.tolerances(spec, "float64"))


@pytest.mark.parametrize("spec", [s for s in SMALL if s.second_order], ids=str)
def test_hessian_matches_jax(spec):
    """hessian (forward over reverse) of sum(w * f) equals jax.hessian, argument by argument."""
    xs = inputs(spec)
    argnums = tuple(range(len(xs)))
    w = np.random.default_rng(2).standard_normal(np.shape(spec.fn(GNS, *xs)))
    want = oracle(jax.hessian(lambda *a: jnp.sum(spec.fn(JNS, *a) * jnp.asarray(w)), argnums=argnums))(*xs)
    for backend in all_backends(spec):
        got = gpuad.hessian(lambda *a, bw=backend.asarray(w): gnp.sum(spec.fn(GNS, *a) * bw), argnums=argnums)(
            *[backend.asarray(x) for x in xs]
        )
        for gi, ei in zip(got, want):
            for g, e in zip(gi, ei):
                check(g, e, rtol=1e-9, atol=1e-11)


@pytest.mark.slow  # compositions: in the default run, not in the quick subset (-m "not slow")
@pytest.mark.parametrize("spec", [s for s in SMALL if s.second_order], ids=str)
def test_per_point_jacfwd_hessian_and_hvp_under_vmap(spec):
    """vmap(jacfwd), vmap(hessian) and vmap(hvp) give every point's result in one pass."""
    rng = np.random.default_rng(5)
    B = 3
    xs = [np.stack([d.sample(rng, "float64") for _ in range(B)]) for d in spec.args]
    vs = [rng.standard_normal(x.shape) for x in xs]
    argnums = tuple(range(len(xs)))
    f = lambda *a: spec.fn(GNS, *a)
    jf = lambda *a: spec.fn(JNS, *a)
    s = lambda ns, fn: (lambda *a: ns.sum(fn(*a)))

    def program(xs, vs):
        want_j = jax.vmap(jax.jacfwd(jf, argnums=argnums))(*xs)
        want_h = jax.vmap(jax.hessian(s(jnp, jf), argnums=argnums))(*xs)
        want_v = jax.vmap(lambda *pv: jax.jvp(jax.grad(s(jnp, jf), argnums=argnums), pv[: len(xs)], pv[len(xs) :])[1])(
            *xs, *vs
        )
        return want_j, want_h, want_v

    want_j, want_h, want_v = oracle(program)(xs, vs)
    for backend in all_backends(spec):
        bx = [backend.asarray(x) for x in xs]
        for g, e in zip(gpuad.vmap(gpuad.jacfwd(f, argnums=argnums))(*bx), want_j):
            check(g, e, rtol=1e-10, atol=1e-12)
        got_h = gpuad.vmap(gpuad.hessian(s(gnp, f), argnums=argnums))(*bx)
        for gi, ei in zip(got_h, want_h):
            for g, e in zip(gi, ei):
                check(g, e, rtol=1e-9, atol=1e-11)
        got_v = gpuad.vmap(lambda *pv: gpuad.hvp(s(gnp, f), pv[: len(xs)], pv[len(xs) :]))(*bx, *[backend.asarray(v) for v in vs])
        got_v = got_v if isinstance(got_v, tuple) else (got_v,)
        for g, e in zip(got_v, want_v):
            check(g, e, rtol=1e-9, atol=1e-11)


def test_jacobian_mode_choice():
    """mode='auto' follows the seed notes: forward when inputs are fewer than outputs."""
    calls = []

    def f(x):
        calls.append(type(x).__name__)
        return gnp.concat([gnp.sin(x), x * x, x])

    x = np.asarray([0.1, 0.2])
    full = gpuad.jacobian(f)(x)
    assert "JVPTracer" in calls  # 2 inputs < 6 outputs: forward mode
    np.testing.assert_allclose(full, jax.jacfwd(lambda x: jnp.concatenate([jnp.sin(x), x * x, x]))(jnp.asarray(x)), rtol=1e-14)
    calls.clear()
    g = gpuad.jacobian(lambda x: gnp.sum(f(x)))(np.arange(5.0))
    assert "JVPTracer" not in calls and g.shape == (5,)
    for mode in ("fwd", "rev"):
        np.testing.assert_allclose(gpuad.jacobian(f, mode=mode)(x), full, rtol=1e-14)
    with pytest.raises(ValueError, match=r"mode must be 'auto', 'fwd' or 'rev', got 'sideways'"):
        gpuad.jacobian(f, mode="sideways")


def test_third_derivatives_and_mixed_nesting():
    """jacfwd(jacrev(jacfwd(f))) and jvp-of-jvp match the exact third derivative."""
    f = lambda x: gnp.sin(x) * x
    x = np.asarray(0.7)
    d3 = gpuad.jacfwd(gpuad.jacrev(gpuad.jacfwd(f)))(x)
    exact = -3 * np.sin(0.7) - 0.7 * np.cos(0.7)
    assert float(d3) == pytest.approx(exact, rel=1e-13)
    one = np.asarray(1.0)
    jj = gpuad.jvp(lambda y: gpuad.jvp(f, (y,), (one,))[1], (x,), (one,))[1]
    assert float(jj) == pytest.approx(2 * np.cos(0.7) - 0.7 * np.sin(0.7), rel=1e-13)
    gj = gpuad.grad(lambda y: gpuad.jvp(lambda z: gpuad.grad(f)(z), (y,), (one,))[1])(x)
    assert float(gj) == pytest.approx(exact, rel=1e-13)


def test_perturbation_confusion_in_vector_mode():
    """d/dx [x * d/dy (x + y)] = 1 also through jacfwd and hessian, and with closures over the
    outer traced value."""
    f = lambda x: x * gpuad.jacfwd(lambda y: x + y)(np.asarray(2.0))
    assert float(gpuad.jacfwd(f)(np.asarray(3.0))) == 1.0
    g = lambda x: gnp.sum(x * gpuad.grad(lambda y: gnp.sum(x * y * y))(np.asarray([1.0, 2.0])))
    np.testing.assert_allclose(gpuad.hessian(g)(np.asarray([0.5, 0.25])), [[4.0, 0.0], [0.0, 8.0]], rtol=1e-14)


def test_jacfwd_result_does_not_depend_on_chunks_at_kinks():
    """At points where maximum, abs and where switch branch, any chunking gives the same result."""
    x = np.asarray([0.0, 1.0, -1.0, 1.0, 0.5])

    def f(v):
        return gnp.maximum(v, 1.0) + gnp.abs(v) + gnp.where(v > 0.5, v * v, -v) + gnp.max(v) * v

    ref = gpuad.jacfwd(f)(x)
    for chunk in (1, 2, 3, 4, 16):
        np.testing.assert_array_equal(gpuad.jacfwd(f, chunk_size=chunk)(x), ref)
    np.testing.assert_array_equal(ref, gpuad.jacrev(f)(x))
    np.testing.assert_allclose(
        ref,
        jax.jacfwd(lambda v: jnp.maximum(v, 1.0) + jnp.abs(v) + jnp.where(v > 0.5, v * v, -v) + jnp.max(v) * v)(jnp.asarray(x)),
        rtol=1e-15,
    )


def test_jacfwd_has_aux_and_pytrees():
    def f(p):
        return {"y": gnp.sin(p["a"]) * p["b"]}, p["b"] * 2.0

    p = {"a": np.asarray([0.1, 0.2]), "b": np.asarray(3.0)}
    jac, aux = gpuad.jacfwd(f, has_aux=True)(p)
    jjac, jaux = jax.jacfwd(lambda p: ({"y": jnp.sin(p["a"]) * p["b"]}, p["b"] * 2.0), has_aux=True)(
        jax.tree_util.tree_map(jnp.asarray, p)
    )
    check(jac["y"]["a"], jjac["y"]["a"], rtol=1e-14)
    check(jac["y"]["b"], jjac["y"]["b"], rtol=1e-14)
    assert float(aux) == 6.0


def test_forward_bad_input():
    with pytest.raises(ValueError, match=r"jacfwd: chunk_size must be a positive int or None, got 0"):
        gpuad.jacfwd(gnp.sin, chunk_size=0)
    with pytest.raises(TypeError, match=r"hvp: primals must be a non-empty tuple"):
        gpuad.hvp(gnp.sin, np.ones(2), (np.ones(2),))
    _, f_jvp = gpuad.linearize(gnp.sin, np.ones(3))
    with pytest.raises(ValueError, match=r"f_jvp: the tangent of argument 0 .* has shape \(2,\) but the primal has shape \(3,\)"):
        f_jvp(np.ones(2))
    with pytest.raises(TypeError, match=r"tangent of argument 0 .* has dtype float32 but the primal has dtype float64"):
        f_jvp(np.ones(3, dtype=np.float32))


def test_jvp_takes_a_python_float_tangent_for_a_python_float_primal():
    y, t = gpuad.jvp(gnp.sin, (0.5,), (2.0,))
    np.testing.assert_allclose([float(y), float(t)], [math.sin(0.5), 2.0 * math.cos(0.5)], rtol=1e-15)
    with pytest.raises(TypeError, match=r"the tangent of argument 0 \(x\) must be an array, got int"):
        gpuad.jvp(gnp.sin, (0.5,), (2,))
