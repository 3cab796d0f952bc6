"""Oracles that need no JAX: central finite differences, and the inner-product identity
<w, J t> == <J^T w, t> that ties each JVP rule to its VJP rule."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

import gpuad

from .conftest import BACKENDS
from .spec import SPECS, GpuadNS

GNS = GpuadNS()


def sample(spec, seed=0):
    rng = np.random.default_rng(zlib.crc32(spec.name.encode()) + 100 + seed)
    xs = [d.sample(rng, "float64") for d in spec.args]
    ts = [rng.standard_normal(x.shape) for x in xs]
    return xs, ts, rng


def f_of(spec):
    return lambda *a: spec.fn(GNS, *a)


@pytest.mark.parametrize(
    "spec, backend",
    [pytest.param(s, b, id=f"{s.name}-{b}") for s in SPECS for b in BACKENDS if s.runs_on(b)],
    indirect=["backend"],
)
def test_inner_product_identity(spec, backend):
    """<w, jvp(t)> equals <vjp(w), t> to rounding: the JVP and VJP rules are transposes."""
    xs, ts, rng = sample(spec)
    f = f_of(spec)
    out, jt = gpuad.jvp(f, [backend.asarray(x) for x in xs], [backend.asarray(t) for t in ts])
    w = rng.standard_normal(tuple(out.shape))
    _, pullback = gpuad.vjp(f, *[backend.asarray(x) for x in xs])
    jw = pullback(backend.asarray(w))
    lhs = float(np.sum(w * gpuad.to_numpy(jt)))
    rhs = sum(float(np.sum(gpuad.to_numpy(g) * t)) for g, t in zip(jw, ts))
    scale = max(1.0, abs(lhs), abs(rhs))
    assert abs(lhs - rhs) <= spec.extra.get("rtol64", 1e-11) * scale, (lhs, rhs)


@pytest.mark.parametrize("spec", [s for s in SPECS if s.extra.get("fd", True)], ids=str)
def test_jvp_matches_central_differences(spec):
    """The JVP equals (f(x + h t) - f(x - h t)) / 2h in float64."""
    xs, ts, _ = sample(spec)
    f = f_of(spec)
    _, jt = gpuad.jvp(f, xs, ts)
    h = 1e-6
    plus = gpuad.to_numpy(f(*[x + h * t for x, t in zip(xs, ts)]))
    minus = gpuad.to_numpy(f(*[x - h * t for x, t in zip(xs, ts)]))
    fd = (plus - minus) / (2 * h)
    np.testing.assert_allclose(gpuad.to_numpy(jt), fd, rtol=2e-6, atol=2e-6)


@pytest.mark.parametrize("spec", [s for s in SPECS if s.extra.get("fd", True)], ids=str)
def test_second_derivative_matches_differences_of_gradients(spec):
    """The Hessian-vector product (forward over reverse) equals central differences of the
    reverse-mode gradient of sum(w * f)."""
    xs, ts, rng = sample(spec, seed=1)
    f = f_of(spec)
    import gpuad.numpy as gnp

    out = f(*xs)
    w = rng.standard_normal(np.shape(out))
    argnums = tuple(range(len(xs)))
    g = gpuad.grad(lambda *a: gnp.sum(f(*a) * w), argnums=argnums)
    _, hv = gpuad.jvp(g, xs, ts)
    h = 1e-5
    plus = g(*[x + h * t for x, t in zip(xs, ts)])
    minus = g(*[x - h * t for x, t in zip(xs, ts)])
    for got, p, m in zip(hv, plus, minus):
        np.testing.assert_allclose(gpuad.to_numpy(got), (gpuad.to_numpy(p) - gpuad.to_numpy(m)) / (2 * h), rtol=1e-5, atol=1e-5)
