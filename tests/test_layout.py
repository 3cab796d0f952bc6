"""Jacobian rows under vmap on NumPy are laid out with the batch innermost (see
``gpuad.speedups.rows_outside``): the per-point Jacobians, Hessians and JVP blocks must be exactly
JAX's whatever the layout, with and without pooled buffers, and the layout must be the one
intended (it is what makes the sweeps run over contiguous memory)."""

from __future__ import annotations

import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp
from gpuad.speedups import ROWS_OUTSIDE_MAX

from .helpers import oracle
from .spec import GpuadNS, JaxNS

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
from bench.workloads import ba_fn as camera  # noqa: E402  (bundle adjustment's residual, 15 -> 2)


def mixed(ns):
    """Three outputs from reductions, a matrix product, a concatenation and a maximum."""
    M = np.linspace(-1.0, 1.0, 12).reshape(4, 3)

    def f(x):
        h = ns.tanh(ns.matmul(M, x[:3]) + x[3])  # (4,)
        top = ns.max(h * x[:4])
        both = ns.concat([h[:2] * x[1], ns.reshape(top, (1,))])
        return ns.sum(ns.exp(both) * x[2]) + ns.maximum(x[0], x[1])

    return f


def camera_data(n, rng):
    z = rng.standard_normal((n, 15)) * 0.3
    z[:, 6] = rng.uniform(0.5, 1.5, n)
    z[:, 13] = 6.0 + 0.5 * rng.standard_normal(n)
    z[:, 14] = rng.uniform(0.5, 1.5, n)
    return z, 0.3 * rng.standard_normal((n, 2))


# Small, and large enough for pooled buffers: at 10_000 points jacfwd's (n, 15) float64 tangents
# are 1.2 MB, above the pool's threshold (BufferPool.MIN_BYTES, 1 MiB); the same 262 allocations
# come from the pool as at 30_000 (the size this test used to take), none at 6_000.
@pytest.mark.parametrize("n", [7, 10_000])
def test_vmap_jacrev_and_jacfwd_of_the_camera_match_jax(n):
    z, feat = camera_data(n, np.random.default_rng(n))
    G, J = camera(GpuadNS()), camera(JaxNS())
    want = np.asarray(oracle(jax.vmap(jax.jacrev(J)))(z, feat))
    rev = gpuad.vmap(gpuad.jacrev(G))
    fwd = gpuad.vmap(gpuad.jacfwd(G))
    for _ in range(2):  # the second call runs on the first call's buffers
        np.testing.assert_allclose(rev(z, feat), want, rtol=1e-11, atol=1e-12)
        np.testing.assert_allclose(fwd(z, feat), want, rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("n", [5, 20_000])
def test_vmap_hessian_and_jacobians_of_a_mixed_function_match_jax(n):
    x = np.random.default_rng(1).uniform(-1.5, 1.5, size=(n, 5))
    G, J = mixed(GpuadNS()), mixed(JaxNS())
    transforms = [
        (gpuad.hessian, jax.hessian),
        (lambda f: gpuad.jacrev(gpuad.jacrev(f)), lambda f: jax.jacrev(jax.jacrev(f))),
        (lambda f: gpuad.jacfwd(gpuad.jacfwd(f)), lambda f: jax.jacfwd(jax.jacfwd(f))),
    ]
    wants = oracle(lambda x: [jax.vmap(theirs(J))(x) for _, theirs in transforms])(x)  # JAX's side, one program
    for (transform, _), want in zip(transforms, wants):
        got = gpuad.vmap(transform(G))(x)
        np.testing.assert_allclose(got, np.asarray(want), rtol=1e-11, atol=1e-12)


def test_rows_run_batch_innermost_on_numpy():
    """The one-hot seeds of a vmapped jacrev and the tangents of a vmapped jacfwd are laid out
    with the batch innermost: the Jacobian comes out in Fortran order, and a value computed from
    the rows inside the function is Fortran-ordered too."""
    z, feat = camera_data(1000, np.random.default_rng(3))
    seen = []
    J = gpuad.vmap(gpuad.jacrev(camera(gnp)))(z, feat)
    assert J.shape == (1000, 2, 15) and J.flags.f_contiguous and not J.flags.c_contiguous

    def tangent_layout(x):
        y = gnp.sin(x) * 2.0
        seen.append(y)
        return y

    # At a size with pooled results (small results take whatever layout NumPy's order "K" picks,
    # which may give up the layout where a broadcast operand is C-ordered).
    gpuad.vmap(gpuad.jacfwd(tangent_layout))(np.ones((20_000, 3)))
    tangent_block = seen[-1].tangent.val.val  # jvp's tangent: a (batch, rows, 3) NumPy array
    assert tangent_block.shape == (20_000, 3, 3) and tangent_block.flags.f_contiguous


def test_many_rows_keep_the_shared_layout():
    """Above ROWS_OUTSIDE_MAX rows per point the rows stay one shared block, broadcast against
    the batch (the seed array would cost more than it saves)."""
    n_out = ROWS_OUTSIDE_MAX + 1
    x = np.random.default_rng(4).standard_normal((50, 3))
    w = np.linspace(0.5, 2.0, 3 * n_out).reshape(n_out, 3)
    got = gpuad.vmap(gpuad.jacrev(lambda v: gnp.sin(gnp.matmul(w, v))))(x)
    assert got.flags.c_contiguous
    want = np.cos(x @ w.T)[:, :, None] * w[None]
    np.testing.assert_allclose(got, want, rtol=1e-13)


def test_strict_device_gets_the_shared_layout():
    import array_api_strict as xs

    z, feat = camera_data(40, np.random.default_rng(5))
    dev = xs.Device("device1")
    got = gpuad.vmap(gpuad.jacrev(camera(GpuadNS())))(xs.asarray(z, device=dev), xs.asarray(feat, device=dev))
    want = np.asarray(oracle(jax.vmap(jax.jacrev(camera(JaxNS()))))(z, feat))
    np.testing.assert_allclose(gpuad.to_numpy(got), want, rtol=1e-11, atol=1e-12)
