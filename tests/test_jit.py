"""gpuad.jit: a recorded program replayed on new inputs gives what the eager transforms give (and
so what JAX gives), re-records only for a new signature, and refuses value-dependent Python."""

from __future__ import annotations

import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp

from .helpers import batch_inputs, close
from .spec import SPECS, GpuadNS, core

GNS = GpuadNS()
SMALL = core([s for s in SPECS if all(int(np.prod(d.shape)) <= 12 for d in s.args)])


TOL = dict(rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("spec", SMALL, ids=str)
def test_replay_equals_eager_for_every_row(spec, monkeypatch):
    """vmap(value_and_grad) of every primitive's row: the recording call, and a replay on other
    points, both equal the eager result (which the oracle tests hold against JAX). The replay of
    the array operations (GPUAD_JIT=replay); test_compiler runs the same rows compiled."""
    monkeypatch.setenv("GPUAD_JIT", "replay")

    def loss(*a):
        return gnp.sum(spec.fn(GNS, *a))

    argnums = tuple(range(len(spec.args)))
    eager = gpuad.vmap(gpuad.value_and_grad(loss, argnums=argnums))
    jitted = gpuad.jit(eager)
    first, second = (batch_inputs(spec, "float64", "all", seed=s)[0] for s in (0, 1))
    close(jitted(*first), eager(*first), **TOL)
    close(jitted(*second), eager(*second), **TOL)
    assert jitted.cache_size() == 1


def seed1(x):
    return gnp.log(x[0]) + x[0] * x[1] - gnp.sin(x[1])


def test_every_transform_under_jit(backend):
    X = np.random.default_rng(0).uniform(1, 3, size=(5, 2))
    Xb, Tb = backend.asarray(X), backend.asarray(X[::-1].copy())
    cases = [
        (gpuad.vmap(gpuad.grad(seed1)), (Xb,)),
        (gpuad.vmap(gpuad.hessian(seed1)), (Xb,)),
        (gpuad.vmap(gpuad.jacfwd(lambda x: gnp.stack([seed1(x), x[0] * x[1]]))), (Xb,)),
        (gpuad.vmap(lambda x, t: gpuad.jvp(seed1, (x,), (t,))), (Xb, Tb)),
        (gpuad.vmap(gpuad.grad(gpuad.checkpoint(seed1))), (Xb,)),
    ]
    for transform, args in cases:
        jitted = gpuad.jit(transform)
        jitted(*args)
        close(jitted(*args), transform(*args), **TOL)


def test_recording_depends_on_shapes_dtypes_and_static_arguments():
    calls = []

    def f(x, n):
        calls.append(1)  # Python runs only while recording
        return gnp.sum(x**n)

    g = gpuad.jit(gpuad.grad(f), static_argnums=1)
    x = np.arange(3.0)
    np.testing.assert_allclose(g(x, 2), 2 * x)
    np.testing.assert_allclose(g(x + 1, 2), 2 * (x + 1))
    assert len(calls) == 1 and g.cache_size() == 1
    np.testing.assert_allclose(g(x, 3), 3 * x**2)  # a new static value
    np.testing.assert_allclose(g(np.arange(4.0), 2), 2 * np.arange(4.0))  # a new shape
    out = g(x.astype(np.float32), 2)  # a new dtype
    assert out.dtype == np.float32
    assert len(calls) == 4 and g.cache_size() == 4


def test_pytrees_keyword_arguments_and_closures():
    W = np.random.default_rng(1).standard_normal((3, 2))

    def loss(params, x, *, scale):
        return scale * gnp.sum(gnp.tanh(x @ params["w"] + params["b"]) * W[0])

    vg = gpuad.value_and_grad(loss)
    jvg = gpuad.jit(vg)
    params = {"w": np.ones((3, 2)), "b": np.zeros(2)}
    x = np.random.default_rng(2).standard_normal((4, 3))
    for s in (1.0, 2.0):
        close(jvg(params, x, scale=s), vg(params, x, scale=s), **TOL)


def test_transforms_of_a_jitted_function_work_on_its_recording():
    """grad, vmap, jvp, hessian of jit(f) equal those of f, and f's Python runs once per signature
    (not once per call): the transforms work on the recording (gpuad/calls.py)."""
    runs = []

    def f(x, w, scale=1.0):
        runs.append(1)
        return gnp.sum(gnp.sin(x * w) * gnp.exp(-x)) * scale + gnp.sum(w**2)

    jf = gpuad.jit(f)
    rng = np.random.default_rng(0)
    x, w, X = rng.standard_normal(5), rng.standard_normal(5), rng.standard_normal((3, 5))
    cases = [
        lambda g: gpuad.grad(g, argnums=(0, 1))(x, w),
        lambda g: gpuad.value_and_grad(lambda x, w: g(x, w, scale=2.5))(x, w),
        lambda g: gpuad.vmap(gpuad.grad(g), in_axes=(0, None))(X, w),
        lambda g: gpuad.jvp(g, (x, w), (w, x)),
        lambda g: gpuad.hessian(g)(x, w),
        lambda g: gpuad.jacrev(lambda w: gpuad.grad(g)(x, w))(w),
    ]
    for case in cases:
        want = case(f)
        runs.clear()
        for _ in range(3):
            close(case(jf), want, **TOL)
        assert len(runs) <= 1, len(runs)  # recorded at most once (the earlier cases' recording serves)
    runs.clear()
    gpuad.grad(jf)(np.ones(7), np.ones(7))  # a new shape: one more recording
    gpuad.grad(jf)(np.ones(7), np.ones(7))
    assert len(runs) == 1


def test_a_jitted_inner_solver_inside_an_outer_gradient():
    """An inner loop jitted and called many times inside an outer grad: the gradient equals the
    plain one, and the inner function's Python ran once."""
    runs = []

    def inner(z, c):
        runs.append(1)
        for _ in range(5):
            z = z - 0.1 * (gnp.tanh(z) - c) * gnp.cos(z)
        return z

    def outer(c, solve):
        z, total = gnp.zeros_like(c), 0.0
        for _ in range(30):
            z = solve(z, c)
            total = total + gnp.sum(z * z)
        return total

    c = np.linspace(-0.5, 0.5, 6)
    want = gpuad.grad(outer)(c, inner)
    runs.clear()
    close(gpuad.grad(outer)(c, gpuad.jit(inner)), want, **TOL)
    assert len(runs) == 1


def test_a_jitted_function_closing_over_a_traced_value():
    """f closes over the outer transform's value: recorded with it each call (never reused)."""
    x0 = np.linspace(0.1, 1.0, 4)

    def loss(w):
        return gnp.sum(gpuad.jit(lambda x: gnp.sin(x * w) * x)(x0))

    for w in (0.5, 1.5):
        np.testing.assert_allclose(gpuad.grad(loss)(w), np.sum(np.cos(x0 * w) * x0 * x0), rtol=1e-14)


def test_jit_inside_a_transform_traces_through():
    f = gpuad.jit(lambda x: gnp.sin(x) * x)
    x = np.linspace(0.1, 1.0, 4)
    np.testing.assert_allclose(gpuad.vmap(gpuad.grad(f))(x), np.cos(x) * x + np.sin(x), rtol=1e-14)
    np.testing.assert_allclose(gpuad.grad(lambda v: gnp.sum(f(v)))(x), np.cos(x) * x + np.sin(x), rtol=1e-14)
    # Inside another jit, the inner jit is part of the outer recording.
    outer = gpuad.jit(gpuad.grad(lambda v: gnp.sum(f(v) * f(v))))
    outer(x)
    np.testing.assert_allclose(outer(x), 2 * np.sin(x) * x * (np.cos(x) * x + np.sin(x)), rtol=1e-14)


def test_results_never_alias_inputs_or_constants():
    x = np.arange(3.0)
    y = np.ones(3)
    g = gpuad.jit(gpuad.grad(lambda a, b: gnp.sum(a * b), argnums=(0, 1)))
    for _ in range(2):  # recording call, then replay
        ga, gb = g(x, y)
        assert not np.shares_memory(ga, y) and not np.shares_memory(gb, x)
        ga += 1  # results are writable
    ident = gpuad.jit(lambda a: a)
    for _ in range(2):
        out = ident(x)
        assert not np.shares_memory(out, x)


def test_python_control_flow_on_a_traced_value_is_refused():
    def f(x):
        return x * 2 if gnp.sum(x) > 0 else -x

    with pytest.raises(gpuad.ConcretizationError, match="Python truth test.*gnp.where.*static_argnums"):
        gpuad.jit(f)(np.ones(2))
    with pytest.raises(gpuad.ConcretizationError, match="float\\(\\)"):
        gpuad.jit(lambda x: float(gnp.sum(x)))(np.ones(2))
    with pytest.raises(gpuad.ConcretizationError):
        gpuad.jit(gpuad.grad(lambda x: gnp.sum(x) if gnp.max(x) > 0 else gnp.sum(-x)))(np.ones(2))


def test_bad_arguments():
    with pytest.raises(TypeError, match="jit: expected a function"):
        gpuad.jit(3)
    with pytest.raises(TypeError, match="static_argnums must be ints"):
        gpuad.jit(lambda x: x, static_argnums="0")
    with pytest.raises(TypeError, match="neither an array nor hashable"):
        gpuad.jit(lambda x, d: x)(np.ones(2), {1, 2})
    with pytest.raises(TypeError, match="static arguments must be hashable"):
        gpuad.jit(lambda x, s: x, static_argnums=1)(np.ones(2), [1])


def test_mixing_libraries_names_the_arguments():
    import array_api_strict as xs

    a = xs.asarray([1.0, 2.0], device=xs.Device("device1"))
    with pytest.raises(TypeError, match="array argument 0 is an? .* array but array argument 1 is"):
        gpuad.jit(lambda p, q: p + q)(np.ones(2), a)


def test_replay_reuses_dead_buffers_without_touching_live_views_or_inputs():
    """Elementwise results write into intermediates nothing reads any more; an intermediate that a
    later view (reshape, getitem, transpose) still shows is kept, and inputs are never written."""

    def f(x):
        a = gnp.sin(x)  # viewed below after its last direct use
        v = gnp.reshape(a, (-1,))
        t = a.T
        b = gnp.exp(a) * 2.0  # a chain of fresh results: each can take the previous one's buffer
        c = gnp.tanh(b) + 1.0
        return gnp.sum(c) + gnp.sum(v[1:] * 3.0) + gnp.sum(t[0])

    x = np.random.default_rng(3).standard_normal((4, 3))
    keep = x.copy()
    g = gpuad.jit(gpuad.value_and_grad(f))
    want = gpuad.value_and_grad(f)(x)
    for _ in range(3):
        close(g(x), want, **TOL)
        np.testing.assert_array_equal(x, keep)
