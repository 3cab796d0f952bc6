"""Who owns the arrays a transform returns (issue 19, items 1, 2, 17, 18; jit's ownership rules).

jit: every array a call returns is the caller's. No later call writes into it (not even through a
view of an intermediate), writing into it changes neither the arguments nor later results, and an
output that does not depend on the inputs is a fresh copy on every call. vmap: never returns an
argument or a view of one. jvp/vjp hand back ``f``'s output as ``f`` returned it (README).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp
import importlib

jit_module = importlib.import_module("gpuad.jit")  # the module (gpuad.jit is also the function)


def _calls(f, inputs):
    """Call ``f`` on each input, keeping every result and a snapshot of its values."""
    kept, snapshots = [], []
    for x in inputs:
        out = f(x)
        kept.append(out)
        snapshots.append([np.array(o, copy=True) for o in gpuad.tree_leaves(out)])
    return kept, snapshots


def _assert_unchanged(kept, snapshots):
    for out, snap in zip(kept, snapshots):
        for o, s in zip(gpuad.tree_leaves(out), snap):
            np.testing.assert_array_equal(o, s)


@pytest.mark.parametrize(
    "fun",
    [
        # item 1: r[0] views exp's buffer, which sin's result reused
        lambda x: (lambda r: (r[0], gnp.sin(r)))(gnp.exp(x)),
        # the realistic form: a column of h next to a reduction of h
        gpuad.vmap(lambda x: (lambda h: (h[..., 0], gnp.sum(gnp.square(h))))(gnp.tanh(x) * 2.0)),
        lambda x: (lambda r: (gnp.reshape(r, (-1,)), gnp.cos(r) + 1.0))(gnp.exp(x)),
        lambda x: (lambda r: (r[1:], r * r))(gnp.sin(x) * x),
    ],
    ids=["getitem_beside_sin", "vmap_column_and_sum", "reshape_beside_cos", "slice_beside_square"],
)
def test_jit_results_are_not_written_by_the_same_or_later_calls(fun, rng):
    shape = (4, 3)
    inputs = [rng.uniform(-1, 1, size=shape) for _ in range(4)]
    f = jit_module.jit(fun)
    kept, snapshots = _calls(f, inputs)
    for x, out in zip(inputs, kept):  # each call's results are the eager function's
        for o, e in zip(gpuad.tree_leaves(out), gpuad.tree_leaves(fun(x))):
            np.testing.assert_allclose(o, e, rtol=1e-15)
    _assert_unchanged(kept, snapshots)


def test_jit_constant_output_is_a_fresh_copy_on_every_call():
    c = np.asarray([1.0, 2.0, 3.0])
    g = jit_module.jit(gpuad.grad(lambda w: gnp.sum(w * c)))  # item 2
    w = np.ones(3)
    first = g(w)
    first *= -0.1
    second = g(w)
    np.testing.assert_array_equal(second, c)
    second *= 7.0
    np.testing.assert_array_equal(g(w), c)
    np.testing.assert_array_equal(c, [1.0, 2.0, 3.0])
    assert not np.shares_memory(g(w), c)


@pytest.mark.parametrize(
    "fun",
    [lambda x: x, lambda x: x[0], lambda x: gnp.reshape(x, (-1,)), lambda x: gnp.sum(x, axis=0), lambda x: (x, x * 2.0)],
    ids=["identity", "row", "reshape", "sum", "identity_and_product"],
)
def test_jit_results_never_alias_the_arguments(fun, rng):
    X = rng.uniform(size=(3, 2))
    original = X.copy()
    f = jit_module.jit(fun)
    for _ in range(2):  # the recording call and a replay
        for o in gpuad.tree_leaves(f(X)):
            assert not np.shares_memory(o, X)
            o[...] = -1.0
        np.testing.assert_array_equal(X, original)


def test_jit_results_never_alias_closed_over_constants():
    c = np.arange(6.0).reshape(3, 2)
    f = jit_module.jit(lambda x: (c[0], x + c))
    for _ in range(2):
        row, _ = f(np.ones((3, 2)))
        row[...] = 99.0
    np.testing.assert_array_equal(c, np.arange(6.0).reshape(3, 2))


@pytest.mark.parametrize("fun", [lambda x: x, lambda x: x[0], lambda x: gnp.moveaxis(x, 0, -1)], ids=["identity", "row", "moveaxis"])
def test_vmap_results_never_alias_the_arguments(fun, rng):
    X = rng.uniform(size=(3, 2))  # item 18
    original = X.copy()
    out = gpuad.vmap(fun)(X)
    assert out is not X and not np.shares_memory(out, X)
    np.testing.assert_array_equal(out, np.stack([np.asarray(fun(x)) for x in original]))
    out[...] = -1.0
    np.testing.assert_array_equal(X, original)


def test_jvp_and_vjp_hand_back_the_output_as_f_returned_it():
    # The documented convention (README): no copy is made of what f returns.
    x, t = np.ones(3), np.full(3, 2.0)
    y, ty = gpuad.jvp(lambda v: v, (x,), (t,))
    assert y is x and ty is t
    y, _ = gpuad.vjp(lambda v: v, x)
    assert y is x


# --- item 17: one recording for every Python float, a bounded cache, NaN keyed consistently ----


def test_python_floats_are_traced_once_and_replayed_with_their_value():
    f = jit_module.jit(lambda x, s: x * s + gnp.sin(s))
    x = np.asarray([1.0, 2.0])
    for s in np.linspace(-3, 3, 100):
        np.testing.assert_allclose(f(x, float(s)), x * s + np.sin(s), rtol=1e-15)
    assert f.cache_size() == 1
    np.testing.assert_array_equal(f(x, float("nan")), [np.nan, np.nan])
    np.testing.assert_array_equal(f(x, float("inf")), [np.nan, np.nan])  # sin(inf) is nan
    assert f.cache_size() == 1


def test_python_float_takes_the_dtype_of_the_float_arguments():
    f = jit_module.jit(lambda x, s: x * s)
    x32 = np.ones(3, dtype=np.float32)
    for s in (0.1, 0.2):
        out = f(x32, s)
        assert out.dtype == np.float32
        np.testing.assert_array_equal(out, x32 * s)  # NumPy 2: a Python float is weak
    assert f(np.ones(3), 0.1).dtype == np.float64
    g = jit_module.jit(lambda s: gnp.exp(s))  # no array argument: the default float
    np.testing.assert_allclose(g(0.5), math.exp(0.5), rtol=1e-15)
    np.testing.assert_allclose(g(1.5), math.exp(1.5), rtol=1e-15)


def test_python_control_flow_on_a_traced_float_says_to_make_it_static():
    f = jit_module.jit(lambda x, s: x * math.sin(s))
    with pytest.raises(gpuad.ConcretizationError, match="static_argnums"):
        f(np.ones(2), 1.0)
    g = jit_module.jit(lambda x, s: x * math.sin(s), static_argnums=1)
    np.testing.assert_allclose(g(np.ones(2), 1.0), np.full(2, math.sin(1.0)))


def test_static_floats_are_keyed_by_value_nan_and_signed_zero_included():
    f = jit_module.jit(lambda x, s: x / s if s == s else x * 0.0, static_argnums=1)
    x = np.ones(2)
    for _ in range(3):
        np.testing.assert_array_equal(f(x, float("nan")), [0.0, 0.0])
    assert f.cache_size() == 1
    np.testing.assert_array_equal(f(x, 0.0), [np.inf, np.inf])
    np.testing.assert_array_equal(f(x, -0.0), [-np.inf, -np.inf])  # not 0.0's recording
    assert f.cache_size() == 3


def test_the_cache_keeps_the_most_recently_used_recordings(monkeypatch):
    monkeypatch.setattr(jit_module, "CACHE_SIZE", 4)
    f = jit_module.jit(lambda x: x * 2.0)
    for n in range(1, 20):
        np.testing.assert_array_equal(f(np.ones(n)), np.full(n, 2.0))
        assert f.cache_size() == min(n, 4)
    # ints stay static (shapes, axes, counts): one recording per value, within the bound
    g = jit_module.jit(lambda x, k: x * k)
    for k in range(10):
        np.testing.assert_array_equal(g(np.ones(2), k), [k, k])
    assert g.cache_size() == 4


# --- item 5: float() of a differentiated value is an error, not a silent constant -------------


@pytest.mark.parametrize(
    "run",
    [
        lambda: gpuad.grad(lambda x: float(x) * x)(3.0),
        lambda: gpuad.grad(lambda x: complex(x).real * x)(3.0),
        lambda: gpuad.jvp(lambda x: float(x) * x, (np.asarray(3.0),), (np.asarray(1.0),)),
        lambda: gpuad.jacfwd(lambda x: float(x) * x)(np.asarray(3.0)),
        lambda: gpuad.hessian(lambda x: float(x) * x ** 2)(np.asarray(3.0)),
    ],
    ids=["grad", "grad_complex", "jvp", "jacfwd", "hessian"],
)
def test_float_of_a_differentiated_value_is_refused(run):
    with pytest.raises(gpuad.ConcretizationError, match=r"stop_gradient"):
        run()


def test_float_of_a_constant_inside_grad_still_works():
    # A value that does not carry the derivative may become a Python number (as in JAX's eager grad).
    assert gpuad.grad(lambda x: float(gpuad.stop_gradient(x)) * x)(3.0) == 3.0
    assert gpuad.grad(lambda x, y: float(y) * x)(3.0, 2.0) == 2.0
    y, t = gpuad.jvp(lambda x, y: float(y) * x, (np.asarray(3.0), np.asarray(2.0)), (np.asarray(1.0), None))
    assert float(y) == 6.0 and float(t) == 2.0
    assert gpuad.grad(lambda x: x * int(x))(3.5) == 3.0  # int() is piecewise constant: exact

