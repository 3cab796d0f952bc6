"""Negations on every path a cotangent can take through the backward sweep and forward mode
(fan-out with either sign, parts of arrays, quotient rules, a negated result), against JAX to
second order."""

from __future__ import annotations

import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp
from gpuad import primitives as P

from .conftest import all_backends
from .helpers import oracle
from .spec import GpuadNS, JaxNS

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)


def f_fanout(ns, x):
    """One value reaching the output with both signs, several times (accumulation in place and by
    subtraction, negated on either side)."""
    y = ns.exp(x * 0.3)
    return ns.sum(2.0 * y - (-y) - ns.cos(y) * 3.0 - ns.negative(y * y))


def f_parts(ns, x):
    """Negated cotangents of parts of an array (getitem) and of a gather (take)."""
    idx = ns.asarray([2, 0])
    return ns.sum(-(x[0] * x[1]) - ns.sin(x[1:3]) - ns.cos(x)[idx])


def f_quotients(ns, x):
    """Quotient rule, reciprocal, acos, atan2 and remainder: each negates inside its rule."""
    q = 1.0 / (1.0 + ns.exp(-x))
    return ns.sum(q * ns.acos(x * 0.4) - ns.atan2(x, 1.5 + q) + ns.remainder(x + 3.0, 1.7 + q)) - ns.sum(1.0 / (2.0 + x * x))


def f_result_negated(ns, x):
    """The input's whole cotangent is a negation."""
    return -ns.sum(ns.sin(x) * x)


def f_whole_parts(ns, x):
    """Reads that cover a whole array (``m[..., 0]`` of a size-1 axis, a full slice) beside whole
    uses of it with either sign, and a read in another order (a reversed slice) that does not."""
    m = ns.max(x, axis=-1, keepdims=True)
    lse = ns.log(ns.sum(ns.exp(x - m), axis=-1)) + m[..., 0]
    return lse - ns.sum(x[..., :] * 0.5) - ns.sum(x[..., ::-1] * x)


FUNCS = [f_fanout, f_parts, f_quotients, f_result_negated, f_whole_parts]


@pytest.mark.parametrize("fn", FUNCS, ids=lambda f: f.__name__)
def test_derivatives_match_jax(fn):
    x = np.random.default_rng(0).uniform(-1.2, 1.2, size=(4,))
    G, J = GpuadNS(), JaxNS()
    g = lambda v: fn(G, v)
    j = lambda v: fn(J, v)
    t = np.linspace(0.5, -0.5, 4)
    X = np.random.default_rng(1).uniform(-1.2, 1.2, size=(6, 4))
    # JAX's side, one compiled program.
    want_g, want_h, want_t, want_batch = (
        np.asarray(w)
        for w in oracle(lambda x, t, X: (jax.grad(j)(x), jax.hessian(j)(x), jax.jvp(j, (x,), (t,))[1], jax.vmap(jax.grad(j))(X)))(
            x, t, X
        )
    )
    for backend in all_backends():
        bx = backend.asarray(x)
        np.testing.assert_allclose(backend.to_numpy(gpuad.grad(g)(bx)), want_g, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(backend.to_numpy(gpuad.hessian(g)(bx)), want_h, rtol=1e-11, atol=1e-11)
        np.testing.assert_allclose(backend.to_numpy(gpuad.jacrev(gpuad.grad(g))(bx)), want_h, rtol=1e-11, atol=1e-11)
        got_t = gpuad.jvp(g, (bx,), (backend.asarray(t),))[1]
        np.testing.assert_allclose(backend.to_numpy(got_t), want_t, rtol=1e-12, atol=1e-12)
    # Batched, with the per-point function.
    got = gpuad.vmap(gpuad.grad(g))(X)
    np.testing.assert_allclose(got, want_batch, rtol=1e-12, atol=1e-12)


def test_a_checkpointed_segment_receives_a_negated_cotangent():
    seg = gpuad.checkpoint(lambda v: gnp.sin(v) * v)
    f = lambda v: gnp.sum(1.0 - seg(v * 2.0))
    x = np.linspace(-1.0, 1.0, 5)
    want = -(np.cos(2 * x) * 2 * x + np.sin(2 * x)) * 2
    np.testing.assert_allclose(gpuad.grad(f)(x), want, rtol=1e-13)


def test_results_own_their_memory():
    """A gradient that is a negation of a value of the computation comes back as a new array."""
    x = np.linspace(0.1, 1.0, 4)
    g = gpuad.grad(lambda v: -gnp.sum(v))(x)
    g2 = gpuad.grad(lambda v: gnp.sum(gnp.negative(v * 2.0)))(x)
    np.testing.assert_array_equal(g, -np.ones(4))
    np.testing.assert_array_equal(g2, -2 * np.ones(4))
    g2[:] = 0.0  # ours to write
    np.testing.assert_array_equal(x, np.linspace(0.1, 1.0, 4))


def test_a_read_of_the_whole_array_is_joined_by_one_operation():
    """Log-sum-exp as written per point, ``log(sum(exp(z - m))) + m[..., 0]``: m's cotangent from
    ``z - m`` and the part ``m[..., 0]`` (which is all of m) meet in one addition, with no
    embedding into a buffer."""
    Z = np.random.default_rng(4).standard_normal((30, 5))

    def lse(z):
        m = gnp.max(z, axis=-1, keepdims=True)
        return gnp.log(gnp.sum(gnp.exp(z - m), axis=-1)) + m[..., 0]

    embeds = []
    impl = P.embed_add.impl

    def spy(xp, *arrays, **params):
        embeds.append(1)
        return impl(xp, *arrays, **params)

    vg = gpuad.vmap(gpuad.value_and_grad(lse))
    object.__setattr__(P.embed_add, "impl", spy)
    try:
        vg(Z)
    finally:
        object.__setattr__(P.embed_add, "impl", impl)
    assert embeds == []
    value, g = vg(Z)
    e = np.exp(Z - Z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(value, np.log(np.exp(Z).sum(axis=1)), rtol=1e-14)
    np.testing.assert_allclose(g, e / e.sum(axis=1, keepdims=True), rtol=1e-13, atol=1e-16)
