"""grad and value_and_grad called inside a vmap. Every spec row of that composition is checked
against JAX in tests/test_vmap.py (vmap(grad)); here: the compositions that stress it (closures over
batched values, aux outputs, constant outputs, shared weights, second order, differentiating an
unbatched argument, custom rules and checkpoint closing over the vmap's values), and its errors."""

from __future__ import annotations

import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp

from .conftest import all_backends

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402


@pytest.mark.parametrize("backend", all_backends(), ids=repr)
def test_per_example_gradients_with_closures_aux_and_shared_weights(backend):
    """The MLP-style call: unbatched weights (not differentiated; matmul, max and the broadcast of
    per-point values of different rank go through the batch level), a batched input, a batched
    value closed over, an aux output; against JAX on every backend."""
    rng = np.random.default_rng(4)
    W, X, Y = rng.standard_normal((3, 4)), rng.standard_normal((6, 3)), rng.standard_normal((6, 4))

    def per_point(ns, vg):
        def run(w, x, y):
            s = ns.sin(y)  # at the vmap's level, outside the tape

            def loss(v):
                h = ns.tanh(v @ w)
                m = ns.max(h, axis=-1, keepdims=True)
                return ns.sum((h - s) ** 2 * m) + m[0] * ns.sum(v), (h, s)

            return vg(loss, has_aux=True)(x)

        return run

    (jv, (jh, js)), jg = jax.vmap(per_point(jnp, jax.value_and_grad), in_axes=(None, 0, 0))(W, X, Y)
    (value, (h, s)), g = gpuad.vmap(per_point(gnp, gpuad.value_and_grad), in_axes=(None, 0, 0))(
        backend.asarray(W), backend.asarray(X), backend.asarray(Y)
    )
    for got, want in [(value, jv), (g, jg), (h, jh), (s, js)]:
        np.testing.assert_allclose(backend.to_numpy(got), np.asarray(want), rtol=1e-12, atol=1e-14)


def test_gradients_for_an_unbatched_argument_stay_per_point():
    """Differentiating an argument shared by all points (per-example weight gradients) must not sum
    over the batch: that call keeps the tape above the vmap."""
    rng = np.random.default_rng(5)
    W, X = rng.standard_normal((3, 2)), rng.standard_normal((5, 3))
    got = gpuad.vmap(gpuad.grad(lambda w, x: gnp.sum(gnp.sin(x @ w))), in_axes=(None, 0))(W, X)
    want = jax.vmap(jax.grad(lambda w, x: jnp.sum(jnp.sin(x @ w))), in_axes=(None, 0))(W, X)
    assert got.shape == (5, 3, 2)
    np.testing.assert_allclose(got, want, rtol=1e-13)


def test_constant_outputs_and_second_order():
    """A value that does not depend on the input has zero gradients; a closed-over batched value
    returned as the output too; hessian and grad(grad) per point agree with JAX."""
    rng = np.random.default_rng(6)
    X, Y = rng.uniform(-1, 1, (4, 3)), rng.uniform(-1, 1, 4)
    zero = gpuad.vmap(gpuad.grad(lambda x: gnp.sum(gnp.ones(3))))(X)
    np.testing.assert_array_equal(zero, np.zeros_like(X))
    value, zero = gpuad.vmap(lambda x, y: gpuad.value_and_grad(lambda v: y)(x))(X, Y)
    np.testing.assert_array_equal(value, Y)
    np.testing.assert_array_equal(zero, np.zeros_like(X))
    f, jf = (lambda v: gnp.sum(gnp.exp(v) * v)), (lambda v: jnp.sum(jnp.exp(v) * v))
    np.testing.assert_allclose(gpuad.vmap(gpuad.hessian(f))(X), jax.vmap(jax.hessian(jf))(X), rtol=1e-13)
    s, js = (lambda v: gnp.sin(v[0]) * v[1]), (lambda v: jnp.sin(v[0]) * v[1])
    got = gpuad.vmap(gpuad.grad(lambda v: gpuad.grad(s)(v)[0] * v[2]))(X)
    want = jax.vmap(jax.grad(lambda v: jax.grad(js)(v)[0] * v[2]))(X)
    np.testing.assert_allclose(got, want, rtol=1e-13)


@pytest.mark.parametrize("kind", ["custom_jvp", "custom_vjp", "checkpoint"])
def test_custom_rules_and_checkpoint_close_over_the_vmaps_values(kind):
    """A custom rule stays in force, per point, and may close over the vmap's values; the function
    runs once."""
    rng = np.random.default_rng(7)
    X, Y = rng.uniform(0.5, 1.5, (5, 3)), rng.uniform(-1, 1, (5, 3))

    if kind == "custom_jvp":
        op = gpuad.custom_jvp(lambda v: gnp.sin(v))
        op.defjvp(lambda p, t: (gnp.sin(p[0]), 3.0 * t[0]))  # deliberately not cos: the rule is used
        want_rule = lambda x, y: 3.0 * y
    elif kind == "custom_vjp":
        op = gpuad.custom_vjp(lambda v: gnp.sin(v))
        op.defvjp(lambda v: (gnp.sin(v), v), lambda v, g: (g * v,))  # deliberately not cos
        want_rule = lambda x, y: y * x
    else:
        op = gpuad.checkpoint(lambda v: gnp.sin(v))
        want_rule = lambda x, y: y * np.cos(x)
    runs = {"n": 0}

    def per_point(x, y):
        def loss(v):
            runs["n"] += 1
            w = v * 1.0
            u = op(w)
            return gnp.sum(u * y)  # y: closed over, per point

        return gpuad.grad(loss)(x)

    got = gpuad.vmap(per_point)(X, Y)
    assert runs["n"] == 1
    np.testing.assert_allclose(got, want_rule(X, Y), rtol=1e-14)


def test_python_control_flow_on_a_point_is_refused_as_under_vmap():
    X = np.ones((3, 2))

    def f(v):
        if v[0] > 0:
            return gnp.sum(v)
        return -gnp.sum(v)

    with pytest.raises(TypeError, match="the truth value of a batched value"):
        gpuad.vmap(gpuad.grad(f))(X)
    with pytest.raises(gpuad.ConcretizationError, match=r"float\(x\) of a value that grad is differentiating"):
        gpuad.vmap(gpuad.grad(lambda v: gnp.sum(v) * float(v[0])))(X)
    with pytest.raises(TypeError, match="batched value has one number per point"):
        gpuad.vmap(gpuad.grad(lambda v: gnp.sum(v) * float(gpuad.stop_gradient(v[0]))))(X)


def test_scalar_output_error_and_leaked_values():
    with pytest.raises(TypeError, match=r"value_and_grad: gradient only defined for scalar-output functions. Output had shape: \(3,\)"):
        gpuad.vmap(gpuad.value_and_grad(lambda x: gnp.sin(x)))(np.ones((2, 3)))
    kept = []

    def leaky(v):
        kept.append(v * 2.0)
        return gnp.sum(v)

    X = np.ones((2, 3))
    gpuad.vmap(gpuad.grad(leaky))(X)
    with pytest.raises(gpuad.LeakedTracerError, match=r"escaped from the transform.*Return it from the function"):
        gnp.sin(kept[0])
