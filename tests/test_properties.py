"""Properties (Hypothesis): linearity of derivatives, forward and reverse mode agreeing on the
Jacobian, and broadcasting of random shapes against JAX."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gpuad
import gpuad.numpy as gnp

from .helpers import oracle
from .spec import SPECS, GpuadNS

GNS = GpuadNS()
SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)
SMALL = [s for s in SPECS if all(int(np.prod(d.shape)) <= 24 for d in s.args)]


def sample(spec, seed):
    rng = np.random.default_rng(seed)
    return [d.sample(rng, "float64") for d in spec.args], rng


@SETTINGS
@given(spec=st.sampled_from(SPECS), seed=st.integers(0, 2**31), a=st.floats(-3, 3), b=st.floats(-3, 3))
def test_jvp_is_linear_in_the_tangent(spec, seed, a, b):
    xs, rng = sample(spec, seed)
    f = lambda *v: spec.fn(GNS, *v)
    t1 = [rng.standard_normal(x.shape) for x in xs]
    t2 = [rng.standard_normal(x.shape) for x in xs]
    _, j1 = gpuad.jvp(f, xs, t1)
    _, j2 = gpuad.jvp(f, xs, t2)
    _, j12 = gpuad.jvp(f, xs, [a * u + b * v for u, v in zip(t1, t2)])
    tol = max(1e-9, spec.extra.get("rtol64", 0.0))  # astype through float32 is linear only to its rounding
    np.testing.assert_allclose(j12, a * np.asarray(j1) + b * np.asarray(j2), rtol=tol, atol=tol)


@SETTINGS
@given(spec=st.sampled_from(SPECS), seed=st.integers(0, 2**31), a=st.floats(-3, 3))
def test_vjp_is_linear_in_the_cotangent(spec, seed, a):
    xs, rng = sample(spec, seed)
    out, pull = gpuad.vjp(lambda *v: spec.fn(GNS, *v), *xs)
    w1 = rng.standard_normal(np.shape(out))
    w2 = rng.standard_normal(np.shape(out))
    tol = max(1e-9, spec.extra.get("rtol64", 0.0))
    for g12, g1, g2 in zip(pull(a * w1 + w2), pull(w1), pull(w2)):
        np.testing.assert_allclose(g12, a * g1 + g2, rtol=tol, atol=tol)


# A float32 round trip rounds the tangent in forward mode and the cotangent in reverse mode (as in
# JAX), so the two modes agree only to float32 there.
SAME_PRECISION_BOTH_MODES = [s for s in SMALL if s.name != "astype_roundtrip"]


@settings(max_examples=25, deadline=None, derandomize=True)
@given(spec=st.sampled_from(SAME_PRECISION_BOTH_MODES), seed=st.integers(0, 2**31))
def test_jacrev_columns_equal_jvps_of_basis_vectors(spec, seed):
    """Reverse mode (rows) and forward mode (columns) give the same Jacobian."""
    xs, _ = sample(spec, seed)
    f = lambda *v: spec.fn(GNS, *v)
    argnums = tuple(range(len(xs)))
    jac = gpuad.jacrev(f, argnums=argnums)(*xs)
    for i, x in enumerate(xs):
        for j in range(x.size):
            tangents = [np.zeros_like(v) for v in xs]
            tangents[i].reshape(-1)[j] = 1.0
            _, col = gpuad.jvp(f, xs, tangents)
            expected = np.asarray(jac[i]).reshape(np.shape(col) + (x.size,))[..., j]
            np.testing.assert_allclose(col, expected, rtol=1e-12, atol=1e-14)


@st.composite
def broadcastable_pair(draw):
    ndim = draw(st.integers(0, 3))
    full = draw(st.lists(st.integers(1, 4), min_size=ndim, max_size=ndim))
    shapes = []
    for _ in range(2):
        keep = draw(st.integers(0, ndim))
        shape = [d if draw(st.booleans()) else 1 for d in full[ndim - keep :]]
        shapes.append(tuple(shape))
    return shapes


@settings(max_examples=40, deadline=None, derandomize=True)
@given(data=st.data(), op=st.sampled_from(["add", "subtract", "multiply", "divide", "maximum", "atan2", "hypot", "logaddexp"]))
def test_broadcasting_gradients_match_jax(data, op):
    """Random broadcastable shapes: each gradient has its own input's shape and equals JAX's."""
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    sa, sb = data.draw(broadcastable_pair())
    rng = np.random.default_rng(0)
    a = rng.uniform(0.5, 2.0, size=sa)
    b = rng.uniform(0.5, 2.0, size=sb) * rng.choice([-1.0, 1.0], size=sb)
    got = gpuad.grad(lambda u, v: gnp.sum(getattr(gnp, op)(u, v) ** 2), argnums=(0, 1))(a, b)
    want = oracle(jax.grad(lambda u, v: jnp.sum(getattr(jnp, op)(u, v) ** 2), argnums=(0, 1)))(a, b)
    for g, w, x in zip(got, want, (a, b)):
        assert np.shape(g) == np.shape(x)
        np.testing.assert_allclose(g, w, rtol=1e-12)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(spec=st.sampled_from(SPECS), seed=st.integers(0, 2**31), n=st.integers(1, 4), mapped=st.lists(st.booleans(), min_size=3, max_size=3))
def test_vmap_equals_stacking_per_point_results(spec, seed, n, mapped):
    """vmap(f)(X) equals stacking f(X[i]) for i in range(n), for any choice of mapped arguments,
    and so does vmap(grad(sum f))."""
    rng = np.random.default_rng(seed)
    flags = [m for m, _ in zip(mapped, spec.args)]
    if not any(flags):
        flags[0] = True
    xs = [np.stack([d.sample(rng, "float64") for _ in range(n)]) if m else d.sample(rng, "float64") for d, m in zip(spec.args, flags)]
    axes = tuple(0 if m else None for m in flags)
    f = lambda *a: spec.fn(GNS, *a)
    point = lambda i: [x[i] if m else x for x, m in zip(xs, flags)]
    np.testing.assert_allclose(
        gpuad.vmap(f, in_axes=axes)(*xs), np.stack([np.asarray(f(*point(i))) for i in range(n)]), rtol=1e-13, atol=1e-14
    )
    g = gpuad.grad(lambda *a: gnp.sum(f(*a)))
    got = gpuad.vmap(g, in_axes=axes)(*xs)
    want = np.stack([np.asarray(g(*point(i))) for i in range(n)])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(spec=st.sampled_from(SMALL), seed=st.integers(0, 2**31), chunk=st.sampled_from([None, 1, 2, 5]))
def test_jacfwd_equals_jacrev(spec, seed, chunk):
    """Forward mode in vector mode (any chunking) and reverse mode give the same Jacobian."""
    xs, _ = sample(spec, seed)
    f = lambda *v: spec.fn(GNS, *v)
    argnums = tuple(range(len(xs)))
    fwd = gpuad.jacfwd(f, argnums=argnums, chunk_size=chunk)(*xs)
    rev = gpuad.jacrev(f, argnums=argnums)(*xs)
    tol = spec.extra.get("rtol64", 1e-12)  # through a float32 cast the two agree to its rounding
    for a, b in zip(fwd, rev):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol / 10)
