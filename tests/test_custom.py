"""custom_jvp and custom_vjp against JAX's: the rules are used in every mode, under vmap and under
nesting, with nondiff_argnums; and their bad-input paths."""

from __future__ import annotations

import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402


def make_pair():
    """The same custom-derivative function in gpuad and in JAX: f(x, y) = sin(x) * y with a
    deliberately wrong JVP (so tests can tell the rule was used): d/dx -> 3*t, d/dy -> sin(x)*t."""

    def build(lib, ns):
        @lib.custom_jvp
        def f(x, y):
            return ns.sin(x) * y

        @f.defjvp
        def f_jvp(primals, tangents):
            x, y = primals
            tx, ty = tangents
            return f(x, y), 3.0 * tx + ns.sin(x) * ty

        return f

    return build(gpuad, gnp), build(jax, jnp)


X = np.asarray([0.2, 0.5, 1.1])
Y = np.asarray([2.0, -1.0, 0.5])


def test_custom_jvp_rule_is_used_in_every_mode():
    f, jf = make_pair()
    s = lambda ns, fn: (lambda x, y: ns.sum(fn(x, y) ** 2))
    jx, jy = jnp.asarray(X), jnp.asarray(Y)
    np.testing.assert_allclose(gpuad.jvp(f, (X, Y), (np.ones(3), np.ones(3)))[1], jax.jvp(jf, (jx, jy), (jnp.ones(3), jnp.ones(3)))[1], rtol=1e-14)
    for g, w in zip(gpuad.grad(s(gnp, f), argnums=(0, 1))(X, Y), jax.grad(s(jnp, jf), argnums=(0, 1))(jx, jy)):
        np.testing.assert_allclose(g, w, rtol=1e-14)
    for g, w in zip(gpuad.jacrev(f, argnums=(0, 1))(X, Y), jax.jacrev(jf, argnums=(0, 1))(jx, jy)):
        np.testing.assert_allclose(g, w, rtol=1e-14)
    for g, w in zip(gpuad.jacfwd(f, argnums=(0, 1))(X, Y), jax.jacfwd(jf, argnums=(0, 1))(jx, jy)):
        np.testing.assert_allclose(g, w, rtol=1e-14)


def test_custom_jvp_under_vmap_and_nesting():
    f, jf = make_pair()
    jx, jy = jnp.asarray(X), jnp.asarray(Y)
    got = gpuad.vmap(gpuad.grad(lambda x, y: f(x, y) * x), in_axes=(0, None))(X, np.asarray(2.0))
    want = jax.vmap(jax.grad(lambda x, y: jf(x, y) * x), in_axes=(0, None))(jx, 2.0)
    np.testing.assert_allclose(got, want, rtol=1e-14)
    h = gpuad.hessian(lambda x: gnp.sum(f(x, x) * x))(X)
    jh = jax.hessian(lambda x: jnp.sum(jf(x, x) * x))(jx)
    np.testing.assert_allclose(h, jh, rtol=1e-13, atol=1e-14)
    gg = gpuad.grad(gpuad.grad(lambda x: f(x, 2.0 * x) * x))(np.asarray(0.4))
    assert float(gg) == pytest.approx(float(jax.grad(jax.grad(lambda x: jf(x, 2.0 * x) * x))(0.4)), rel=1e-13)
    lin = gpuad.linearize(lambda x: f(x, Y), X)[1](np.ones(3))
    np.testing.assert_allclose(lin, jax.linearize(lambda x: jf(x, jnp.asarray(Y)), jx)[1](jnp.ones(3)), rtol=1e-14)


def test_custom_jvp_nondiff_argnums_and_defjvps():
    @gpuad.custom_jvp
    def power(n, x):
        return x**n

    @power.defjvp
    def power_jvp(n, primals, tangents):
        (x,), (t,) = primals, tangents
        return power(n, x), n * x ** (n - 1) * t * 10.0  # scaled to show the rule is used

    power.nondiff_argnums = (0,)
    assert float(gpuad.grad(lambda x: power(3, x))(np.asarray(2.0))) == 120.0

    @gpuad.custom_jvp
    def g(x, y):
        return x * y

    g.defjvps(lambda t, ans, x, y: t * 7.0, None)
    gx, gy = gpuad.grad(g, argnums=(0, 1))(np.asarray(2.0), np.asarray(3.0))
    assert (float(gx), float(gy)) == (7.0, 0.0)


def test_custom_vjp_matches_jax_and_composes():
    def build(lib, ns):
        @lib.custom_vjp
        def f(x, y):
            return ns.sin(x) * y

        def fwd(x, y):
            return f(x, y), (ns.cos(x), ns.sin(x), y)

        def bwd(res, g):
            cos_x, sin_x, y = res
            return (cos_x * y * g * 2.0, sin_x * g)  # x-part doubled: visible if used

        f.defvjp(fwd, bwd)
        return f

    f, jf = build(gpuad, gnp), build(jax, jnp)
    jx, jy = jnp.asarray(X), jnp.asarray(Y)
    s = lambda ns, fn: (lambda x, y: ns.sum(fn(x, y) * x))
    for g, w in zip(gpuad.grad(s(gnp, f), argnums=(0, 1))(X, Y), jax.grad(s(jnp, jf), argnums=(0, 1))(jx, jy)):
        np.testing.assert_allclose(g, w, rtol=1e-14)
    got = gpuad.vmap(gpuad.grad(lambda x, y: f(x, y) * x, argnums=(0, 1)), in_axes=(0, None))(X, np.asarray(1.5))
    want = jax.vmap(jax.grad(lambda x, y: jf(x, y) * x, argnums=(0, 1)), in_axes=(0, None))(jx, 1.5)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-14)
    # reverse over reverse differentiates through fwd and bwd, as in JAX
    gg = gpuad.grad(gpuad.grad(lambda x: f(x, 2.0) * x))(np.asarray(0.3))
    assert float(gg) == pytest.approx(float(jax.grad(jax.grad(lambda x: jf(x, 2.0) * x))(0.3)), rel=1e-13)
    # hessian = jacfwd(jacrev): the outer forward pass reaches fwd, which calls f itself: an error
    # in both libraries (forward mode through a custom_vjp function)
    with pytest.raises(TypeError, match=r"can't apply forward-mode"):
        gpuad.hessian(lambda x: gnp.sum(f(x, x)))(X)
    with pytest.raises(TypeError):
        jax.hessian(lambda x: jnp.sum(jf(x, x)))(jx)


def test_custom_vjp_refuses_forward_mode_like_jax():
    @gpuad.custom_vjp
    def f(x):
        return x * 2.0

    f.defvjp(lambda x: (f(x), None), lambda r, g: (g * 2.0,))
    with pytest.raises(TypeError, match=r"can't apply forward-mode differentiation .* custom_vjp function f; define it with custom_jvp"):
        gpuad.jvp(f, (np.ones(2),), (np.ones(2),))


def test_custom_rules_bad_structures():
    @gpuad.custom_jvp
    def f(x):
        return x * 2.0

    @f.defjvp
    def bad(primals, tangents):
        return f(primals[0])  # not a pair

    with pytest.raises(TypeError, match=r"custom_jvp rule of f must return a pair \(primal_out, tangent_out\)"):
        gpuad.jvp(f, (np.ones(2),), (np.ones(2),))

    @f.defjvp
    def wrong_tree(primals, tangents):
        return f(primals[0]), (tangents[0], tangents[0])

    with pytest.raises(TypeError, match=r"returned a tangent of structure \(\*, \*\) for a primal output of structure \*"):
        gpuad.grad(lambda x: gnp.sum(f(x)))(np.ones(2))

    @f.defjvp
    def wrong_shape(primals, tangents):
        return f(primals[0]), tangents[0][:1]

    with pytest.raises(ValueError, match=r"tangent output 0 has shape \(1,\) but the primal output has shape \(2,\)"):
        gpuad.jvp(f, (np.ones(2),), (np.ones(2),))

    @gpuad.custom_vjp
    def v(x, y):
        return x * y

    v.defvjp(lambda x, y: (v(x, y), (x, y)), lambda res, g: (g,))
    with pytest.raises(TypeError, match=r"bwd of v must return a tuple with one cotangent per differentiated argument \(2\), got tuple of length 1"):
        gpuad.grad(lambda x: gnp.sum(v(x, x)))(np.ones(2))

    @gpuad.custom_jvp
    def no_rule(x):
        return x

    with pytest.raises(AttributeError, match=r"no JVP rule defined for custom_jvp function no_rule; use defjvp"):
        no_rule(np.ones(2))
    with pytest.raises(TypeError, match=r"nondiff_argnums must be non-negative ints"):
        gpuad.custom_jvp(lambda x: x, nondiff_argnums=("a",))


def test_library_rules_norm_softplus_logsumexp():
    """The library's own custom rules: norm's gradient at 0 is 0 (not NaN), softplus and
    logsumexp stay finite at extreme inputs."""
    np.testing.assert_array_equal(gpuad.grad(lambda v: gnp.vector_norm(v))(np.zeros(3)), np.zeros(3))
    g = gpuad.grad(lambda v: gnp.sum(gnp.softplus(v)))(np.asarray([-800.0, 0.0, 800.0]))
    np.testing.assert_allclose(g, [0.0, 0.5, 1.0], atol=1e-300)
    g = gpuad.grad(lambda v: gnp.logsumexp(v))(np.asarray([1000.0, 1000.0, -1000.0]))
    np.testing.assert_allclose(g, [0.5, 0.5, 0.0], atol=1e-300)
