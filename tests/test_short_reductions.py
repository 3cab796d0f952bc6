"""Reductions over a few trailing elements per row take a faster form on NumPy
(``gpuad.speedups.reduce_short_rows``): the results must be NumPy's, NaN and infinities included,
and the fast form must be taken exactly where it applies."""

from __future__ import annotations

import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp
from gpuad.backend import namespace_of
from gpuad.speedups import SHORT_REDUCTION_MAX, reduce_short_rows

SHAPES_AND_AXES = [
    ((1000, 16), (-1,)),
    ((500, 3), (-1,)),
    ((200, 4, 5), (-2, -1)),
    ((70, 3, 2), (-1,)),
    ((100, SHORT_REDUCTION_MAX), (-1,)),
]


@pytest.mark.parametrize("op", ["sum", "max", "min"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shape, axis", SHAPES_AND_AXES)
def test_matches_numpy(op, dtype, shape, axis):
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    xp = namespace_of(x)
    for keepdims in (False, True):
        got = reduce_short_rows(xp, op, x, axis, keepdims)
        want = getattr(np, op)(x, axis=axis, keepdims=keepdims)
        assert got is not None and got.shape == want.shape and got.dtype == want.dtype
        if op == "sum":
            # summation order differs (BLAS vs pairwise): within a few ulps of the row's scale
            tol = dict(rtol=2e-6, atol=2e-5) if dtype == "float32" else dict(rtol=1e-14, atol=1e-13)
            np.testing.assert_allclose(got, want, **tol)
        else:
            np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(getattr(gnp, op)(x, axis=axis, keepdims=keepdims), got)


@pytest.mark.parametrize("op", ["sum", "max", "min"])
def test_nan_and_infinities_as_numpy(op):
    x = np.random.default_rng(1).standard_normal((200, 8))
    x[3, 2] = np.nan
    x[5, :] = np.inf
    x[7, 0], x[7, 1] = np.inf, -np.inf
    x[9, 4] = -np.inf
    got = reduce_short_rows(namespace_of(x), op, x, (-1,), False)
    want = getattr(np, op)(x, axis=-1)
    assert np.isnan(got[3]) and got[5] == np.inf and np.isnan(got[7]) == (op == "sum")
    if op == "sum":
        np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-13)  # equal_nan is the default
    else:
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shape, axis", [((1000, 64), (-2,)), ((300, 4, 5), (-3,)), ((100, 7, 3), (-3, -2))])
def test_sums_over_leading_axes_match_numpy(dtype, shape, axis):
    x = np.random.default_rng(4).standard_normal(shape).astype(dtype) + 0.25
    for keepdims in (False, True):
        got = reduce_short_rows(namespace_of(x), "sum", x, axis, keepdims)
        want = np.sum(x, axis=axis, keepdims=keepdims)
        assert got is not None and got.shape == want.shape and got.dtype == want.dtype
        tol = dict(rtol=2e-5, atol=2e-5) if dtype == "float32" else dict(rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(got, want, **tol)
        truth = np.sum(x.astype(np.float64), axis=axis, keepdims=keepdims)  # no less exact than NumPy
        assert np.max(np.abs(got - truth)) <= 2 * np.max(np.abs(want - truth)) + 1e-12 * np.max(np.abs(truth))
    assert reduce_short_rows(namespace_of(x), "max", x, axis, False) is None  # maxima stay NumPy's


def test_declines_where_it_does_not_apply():
    xp = namespace_of(np.ones(1))
    rng = np.random.default_rng(2)
    long_rows = rng.standard_normal((100, SHORT_REDUCTION_MAX + 1))
    few_rows = rng.standard_normal((SHORT_REDUCTION_MAX, 4))
    fortran = np.asfortranarray(rng.standard_normal((300, 4)))
    ints = np.ones((300, 4), dtype=np.int64)
    x = rng.standard_normal((300, 4))
    assert reduce_short_rows(xp, "sum", long_rows, (-1,), False) is None
    assert reduce_short_rows(xp, "sum", few_rows, (-1,), False) is None
    assert reduce_short_rows(xp, "sum", fortran, (-1,), False) is None
    assert reduce_short_rows(xp, "sum", ints, (-1,), False) is None
    assert reduce_short_rows(xp, "sum", x[:, :3].copy()[:50], (-2,), False) is None  # few rows
    assert reduce_short_rows(xp, "sum", rng.standard_normal((100, 5000)), (-2,), False) is None  # many kept
    assert reduce_short_rows(xp, "sum", rng.standard_normal((100, 4, 3)), (-2,), False) is None  # middle
    assert reduce_short_rows(xp, "sum", x, (-2, -1), False) is None  # everything
    import array_api_strict as xs

    s = xs.asarray(x)
    assert reduce_short_rows(xs, "sum", s, (-1,), False) is None


def test_gradients_through_the_fast_form_match_jax():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    from .helpers import oracle

    X = np.random.default_rng(3).standard_normal((500, 6))

    def f(ns):
        return lambda x: ns.sum(ns.sin(x)) * ns.max(x) - ns.min(x * x)

    got = gpuad.vmap(gpuad.value_and_grad(f(gnp)))(X)
    want, want_h = oracle(lambda X: (jax.vmap(jax.value_and_grad(f(jnp)))(X), jax.vmap(jax.hessian(f(jnp)))(X[:100])))(X)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, np.asarray(w), rtol=1e-12, atol=1e-12)
    H = gpuad.vmap(gpuad.hessian(f(gnp)))(X[:100])
    np.testing.assert_allclose(H, np.asarray(want_h), rtol=1e-11, atol=1e-11)
