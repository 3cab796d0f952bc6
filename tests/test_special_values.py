"""Special values (NaN, inf, signed zeros, ties) against JAX x64, in every mode (issue 19, items
7-11): relu at NaN; maximum/minimum/clip, max/min, where, abs and sign with NaN or inf inputs and
inf tangents; hypot at 0; the vector norms at 0 and at ties; remainder at infinities and zeros.

One table of cases, each run on both libraries through jvp (value and tangent), grad of the sum,
vjp (where a case gives a cotangent), jacfwd, jacrev and (where second derivatives matter) the
Hessian of the sum. The places where gpuad keeps its own answer (README, Conventions) are tested
below the table, against the true values, finite differences or NumPy.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import gpuad

from .spec import GpuadNS, JaxNS

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402

inf, nan = math.inf, math.nan
G, J = GpuadNS(), JaxNS()


def _pair(xp, v):
    return v[0], v[1]


# name: (f(xp, x), x, tangent for jvp (None: ones), cotangent for vjp (None: no vjp))
CASES = {
    # 7: relu is max(x, 0) (NaN stays NaN) with a chosen derivative: 0 at 0 and at NaN, and an
    # inf derivative where relu gives 0 is dropped, not turned into NaN.
    "relu": (lambda xp, x: xp.relu(x), [nan, 0.0, -0.0, -1.0, 2.0, -inf, inf], [1, 1, 1, inf, 1, inf, 1], None),
    "relu_of_sqrt": (lambda xp, x: xp.relu(-xp.sqrt(x)) + xp.relu(xp.sqrt(x)), [0.0, 1.0], None, None),
    # 8: maximum/minimum multiply the tangent by a 0/0.5/1 share, so an inf or NaN derivative of
    # the input not chosen gives NaN in both modes.
    "maximum_sqrt": (lambda xp, x: xp.maximum(xp.sqrt(x), 1.0), [0.0, 4.0], None, None),
    "minimum_sqrt": (lambda xp, x: xp.minimum(-xp.sqrt(x), -1.0), [0.0, 4.0], None, None),
    "maximum_special": (lambda xp, x: xp.maximum(x, 1.0), [nan, 1.0, inf, -inf, 0.0], [1, inf, 1, inf, nan], [1, inf, 1, 1, inf]),
    "minimum_special": (lambda xp, x: xp.minimum(1.0, x), [nan, 1.0, inf, -inf, 0.0], [1, inf, inf, 1, 1], [1, 1, inf, 1, 1]),
    "maximum_self": (lambda xp, x: xp.maximum(x, x), [1.0, nan, inf, -inf], [1, 1, inf, 1], None),
    "maximum_pair_tie": (lambda xp, x: xp.maximum(*_pair(xp, x)), [2.0, 2.0], None, None),
    "maximum_pair_nan": (lambda xp, x: xp.maximum(*_pair(xp, x)) + xp.minimum(*_pair(xp, x)), [nan, 1.0], None, None),
    "maximum_pair_inf": (lambda xp, x: xp.maximum(*_pair(xp, x)) * 2.0, [inf, inf], None, None),
    "clip_sqrt": (lambda xp, x: xp.clip(xp.sqrt(x), 1.0, 2.0), [0.0, 1.0, 4.0, 9.0], None, None),
    "clip_special": (lambda xp, x: xp.clip(x, 0.0, 1.0), [nan, 0.0, 1.0, inf, -inf], [1, inf, 1, inf, inf], None),
    "clip_arrays": (lambda xp, x: xp.clip(x[0], x[1], x[2]), [0.0, 0.0, 0.0], None, None),
    "max_sqrt": (lambda xp, x: xp.max(xp.sqrt(x)), [0.0, 1.0], None, None),
    "max_nan": (lambda xp, x: xp.max(x), [1.0, nan, 1.0], None, None),
    "min_inf_tie": (lambda xp, x: xp.min(x) + xp.max(x), [inf, inf, -inf], [1, inf, 1], None),
    "where_sqrt": (lambda xp, x: xp.where(x > 0, xp.sqrt(x), 0.0), [0.0, 4.0], None, None),
    "where_nan": (lambda xp, x: xp.where(x > 0, x, 2.0 * x), [nan, inf, -inf], [inf, nan, 1], None),
    "abs_special": (lambda xp, x: xp.abs(x), [nan, 0.0, -0.0, inf, -inf], [1, inf, inf, 1, 1], None),
    "abs_sqrt": (lambda xp, x: xp.abs(xp.sqrt(x)) + xp.abs(-xp.sqrt(x)), [0.0, 1.0], None, None),
    "sign_sqrt": (lambda xp, x: xp.sign(xp.sqrt(x)) + xp.sign(x) * x, [0.0, nan, -inf], None, None),
    # 9: hypot at 0 shares 0.5 each (JAX's max/min form), and its Hessian there is 0.
    "hypot_zero": (lambda xp, x: xp.hypot(*_pair(xp, x)), [0.0, 0.0], None, None),
    "hypot_signed_zero": (lambda xp, x: xp.hypot(*_pair(xp, x)), [-0.0, 0.0], None, None),
    "hypot_axis": (lambda xp, x: xp.hypot(*_pair(xp, x)), [0.0, -3.0], None, None),
    "hypot_nan": (lambda xp, x: xp.hypot(*_pair(xp, x)), [nan, 1.0], None, None),
    # 10: the vector norms at 0 and at ties (ord=inf is max(max|x|, 0), as JAX's amax(initial=0)).
    "norm_inf_zero1": (lambda xp, x: xp.vector_norm(x, ord=inf), [0.0], None, None),
    "norm_inf_zero2": (lambda xp, x: xp.vector_norm(x, ord=inf), [0.0, 0.0], None, None),
    "norm_inf_rows": (lambda xp, x: xp.vector_norm(xp.reshape(x, (2, 2)), axis=-1, ord=inf), [0.0, 0.0, 1.0, -1.0], None, None),
    "norm_inf_tie": (lambda xp, x: xp.vector_norm(x, ord=inf), [1.0, -1.0, 0.5], None, None),
    "norm_inf_nan": (lambda xp, x: xp.vector_norm(x, ord=inf), [nan, 1.0], None, None),
    "norm_minf_zero": (lambda xp, x: xp.vector_norm(x, ord=-inf), [0.0, 0.0], None, None),
    "norm_minf_tie": (lambda xp, x: xp.vector_norm(x, ord=-inf), [1.0, -1.0, 2.0], None, None),
    "norm_1_zero": (lambda xp, x: xp.vector_norm(x, ord=1), [0.0, 0.0], None, None),
    "norm_3_zero": (lambda xp, x: xp.vector_norm(x, ord=3), [0.0, 0.0], None, None),
    "norm_3_part": (lambda xp, x: xp.vector_norm(x, ord=3), [0.0, 2.0], None, None),
    "norm_half_part": (lambda xp, x: xp.vector_norm(x, ord=0.5), [0.0, 2.0], None, None),
    "norm_2_part": (lambda xp, x: xp.vector_norm(x), [0.0, 2.0], None, None),
    # 11: remainder at infinities and zeros: where x / y is 0 but the result is x + y, the
    # y-derivative is 1.
    "rem_3_minf": (lambda xp, x: xp.remainder(*_pair(xp, x)), [3.0, -inf], None, None),
    "rem_m3_inf": (lambda xp, x: xp.remainder(*_pair(xp, x)), [-3.0, inf], None, None),
    "rem_3_inf": (lambda xp, x: xp.remainder(*_pair(xp, x)), [3.0, inf], None, None),
    "rem_m3_minf": (lambda xp, x: xp.remainder(*_pair(xp, x)), [-3.0, -inf], None, None),
    "rem_tiny_quotient": (lambda xp, x: xp.remainder(*_pair(xp, x)), [1e-300, -1e300], None, None),
    "rem_0_m2": (lambda xp, x: xp.remainder(*_pair(xp, x)), [0.0, -2.0], None, None),
    "rem_m0_2": (lambda xp, x: xp.remainder(*_pair(xp, x)), [-0.0, 2.0], None, None),
    "rem_3_0": (lambda xp, x: xp.remainder(*_pair(xp, x)), [3.0, 0.0], None, None),
    "rem_3_m0": (lambda xp, x: xp.remainder(*_pair(xp, x)), [3.0, -0.0], None, None),
    "rem_0_0": (lambda xp, x: xp.remainder(*_pair(xp, x)), [0.0, 0.0], None, None),
    "rem_inf_2": (lambda xp, x: xp.remainder(*_pair(xp, x)), [inf, 2.0], None, None),
    "rem_inf_inf": (lambda xp, x: xp.remainder(*_pair(xp, x)), [-inf, inf], None, None),
    "rem_nan": (lambda xp, x: xp.remainder(*_pair(xp, x)), [nan, 2.0], None, None),
    "rem_multiple": (lambda xp, x: xp.remainder(*_pair(xp, x)), [-4.0, 2.0], None, None),
    "rem_regular": (lambda xp, x: xp.remainder(*_pair(xp, x)), [-3.5, 2.0], None, None),
    "rem_operator": (lambda xp, x: x % -inf + (-x) % inf, [3.0, -3.0, 0.0], None, None),
}


# Where second derivatives matter (the others are piecewise linear away from their special points).
SECOND_ORDER = {
    "relu", "maximum_pair_tie", "clip_arrays", "max_sqrt", "hypot_zero", "hypot_axis", "norm_inf_zero2",
    "norm_inf_rows", "norm_minf_tie", "norm_3_part", "norm_2_part", "rem_3_minf", "rem_tiny_quotient",
}


def _all_modes(lib, ns, name, x, t, c):
    """Value and tangent of jvp, the gradient of the sum, vjp, jacfwd, jacrev and (where second
    derivatives matter) the Hessian of the sum, as NumPy arrays."""
    f = lambda v: CASES[name][0](ns, v)
    total = lambda v: ns.sum(f(v))
    value, tangent = lib.jvp(f, (x,), (t,))
    out = {"value": value, "jvp": tangent, "grad": lib.grad(total)(x)}
    out.update(jacfwd=lib.jacfwd(f)(x), jacrev=lib.jacrev(f)(x))
    if c is not None:
        out["vjp"] = lib.vjp(f, x)[1](c)[0]
    if name in SECOND_ORDER:
        out["hessian"] = lib.hessian(total)(x)
    return {k: np.asarray(gpuad.to_numpy(v) if lib is gpuad else v) for k, v in out.items()}


@pytest.mark.slow  # JAX op by op, every mode: in the default run, not in the quick subset (-m "not slow")
@pytest.mark.parametrize("name", list(CASES))
def test_special_values_match_jax(name):
    _, x, t, c = CASES[name]
    x = np.asarray(x, dtype=np.float64)
    t = np.ones_like(x) if t is None else np.asarray(t, dtype=np.float64)
    c = None if c is None else np.asarray(c, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's warnings for inf * 0 and 0 / 0
        got = _all_modes(gpuad, G, name, x, t, c)
        with jax.disable_jit():  # under jit, XLA may turn JAX's tangent * mask into a choice (max)
            want = _all_modes(jax, J, name, jnp.asarray(x), jnp.asarray(t), None if c is None else jnp.asarray(c))
    for mode in want:
        assert got[mode].shape == want[mode].shape, f"{name}: {mode}"
        np.testing.assert_allclose(got[mode], want[mode], rtol=1e-13, atol=0, equal_nan=True, err_msg=f"{name}: {mode}")


# ---------------------------------------------------------------------------------------------
# Where gpuad keeps its own answer (README, Conventions)
# ---------------------------------------------------------------------------------------------


def _fd_hessian(f, x, h=1e-4):
    n = x.size
    H = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            ei, ej = np.eye(n)[i] * h, np.eye(n)[j] * h
            H[i, j] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (4 * h * h)
    return H


@pytest.mark.parametrize("point", [[1.0, -1.0], [-2.0, -2.0], [3.0, 4.0]])
def test_hypot_hessian_at_equal_magnitudes_is_the_true_one(point):
    """At |a| = |b| JAX's Hessian of hypot is 0 (its max/min form loses the curvature); gpuad's is
    the true one, (I - u u^T) / r, which finite differences confirm. First derivatives agree."""
    x = np.asarray(point)
    f = lambda v: gpuad.numpy.hypot(v[0], v[1])
    H = gpuad.to_numpy(gpuad.hessian(f)(x))
    r = math.hypot(*point)
    u = x / r
    np.testing.assert_allclose(H, (np.eye(2) - np.outer(u, u)) / r, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(H, _fd_hessian(lambda v: math.hypot(*v), x), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(gpuad.to_numpy(gpuad.jacfwd(gpuad.jacrev(f))(x)), H, rtol=1e-13, atol=1e-15)
    g = gpuad.to_numpy(gpuad.grad(f)(x))
    np.testing.assert_allclose(g, np.asarray(jax.grad(lambda v: jnp.hypot(v[0], v[1]))(jnp.asarray(x))), rtol=1e-14)


def test_vector_norm_2_is_zero_at_zero():
    """ord=2 keeps its custom rule: gradient and Hessian 0 at the zero vector (JAX: NaN)."""
    f = lambda v: gpuad.numpy.vector_norm(v)
    x = np.zeros(3)
    for jac in (gpuad.grad, gpuad.jacfwd, gpuad.jacrev):
        np.testing.assert_array_equal(gpuad.to_numpy(jac(f)(x)), np.zeros(3))
    np.testing.assert_array_equal(gpuad.to_numpy(gpuad.hessian(f)(x)), np.zeros((3, 3)))
    assert np.isnan(np.asarray(jax.grad(lambda v: jnp.linalg.vector_norm(v))(jnp.zeros(3)))).all()


@pytest.mark.parametrize(
    "x, y, dy",
    [(-1.0, 0.1, 10.0), (-0.3, 0.1, 3.0), (5.5, 2.0, -2.0), (3.0, -inf, 1.0), (-3.0, inf, 1.0), (1e-300, -1e300, 1.0)],
)
def test_remainder_y_derivative_is_minus_the_floor_quotient(x, y, dy):
    """d remainder(x, y) / dy = -floor(x / y), and 1 where x / y is 0 but the result is x + y
    (as JAX). At (-1, 0.1), where x / y rounds to -10 though x is no multiple of y, the floor
    quotient is -10 (NumPy's floor_divide agrees) and gpuad gives 10; JAX's trunc(x / y) plus a
    correction gives 11. (Where the rounding goes the other way, 7 / -0.7, floor(x / y) is one
    off NumPy's exact -11 and JAX is right: neither form is exact at such points.)"""
    f = lambda a, b: gpuad.numpy.remainder(a, b)
    assert -float(np.floor_divide(x, y)) == dy
    for jac in (gpuad.jacfwd, gpuad.jacrev):
        got = [float(gpuad.to_numpy(d)) for d in jac(f, argnums=(0, 1))(np.asarray(x), np.asarray(y))]
        assert got == [1.0, dy]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_changed_rules_on_every_backend(backend, dtype):
    """relu, clip, hypot at 0, the inf norm at 0 and remainder at infinities on each backend (the
    strict device stands in for a GPU): the values of the JAX table above, in the input's dtype."""
    import gpuad.numpy as gnp

    def run(f, x):
        x = backend.asarray(np.asarray(x, dtype=dtype))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            value, tangent = gpuad.jvp(f, (x,), (gnp.ones_like(x),))
            jac = gpuad.jacrev(f)(x)
        out = [backend.to_numpy(a) for a in (value, tangent, jac)]
        assert all(a.dtype == dtype for a in out)
        return out

    elementwise = lambda v: gnp.relu(v) + gnp.clip(gnp.sqrt(gnp.abs(v)), 0.5, 1.0) + gnp.hypot(v, 0.0)
    value, tangent, jac = run(elementwise, [nan, 0.0, -4.0, 2.0])
    np.testing.assert_array_equal(value, [nan, 0.5, 5.0, 5.0])
    # at 0, sqrt's inf derivative times clip's share 0 is NaN in both modes
    np.testing.assert_array_equal(tangent, [nan, nan, -1.0, 2.0])
    np.testing.assert_array_equal(np.diag(jac), [nan, nan, -1.0, 2.0])
    value, tangent, jac = run(lambda v: gnp.vector_norm(v, ord=inf), [0.0, 0.0])
    np.testing.assert_array_equal(jac, [0.25, 0.25])
    value, tangent, jac = run(lambda y: gnp.remainder(3.0, y), [-inf, inf, -2.0])
    np.testing.assert_array_equal(value, [-inf, 3.0, -1.0])
    np.testing.assert_array_equal(np.diag(jac), [1.0, 0.0, 2.0])


@pytest.mark.parametrize(
    "name, g, j",
    [
        ("softplus", lambda x: x + gpuad.numpy.softplus(gpuad.numpy.floor(x)), lambda x: x + jax.nn.softplus(jnp.floor(x))),
        ("logsumexp", lambda x: x + gpuad.numpy.logsumexp(gpuad.numpy.round(x)), lambda x: x + jax.nn.logsumexp(jnp.round(x))),
    ],
)
@pytest.mark.parametrize("x", [math.nan, math.inf, 1.5])
def test_a_custom_jvp_call_with_only_zero_tangents_has_a_zero_tangent(name, g, j, x):
    # Found by the differential tests (class I): the rule multiplied zero tangents by NaN weights.
    x = np.asarray(x)
    want = jax.jacfwd(j)(jnp.asarray(x))
    np.testing.assert_array_equal(gpuad.jacfwd(g)(x), want)
    np.testing.assert_array_equal(gpuad.jvp(g, (x,), (np.asarray(1.0),))[1], want)
