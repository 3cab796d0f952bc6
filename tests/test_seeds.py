"""The worked examples of the seed notes (shared/seeds/), exactly: values, gradients, and the
tangents and adjoints of their Wengert tables."""

from __future__ import annotations

import math

import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp


def seed1(x):
    """f(x1, x2) = ln x1 + x1 x2 - sin x2 (notes 001, 002)."""
    return gnp.log(x[0]) + x[0] * x[1] - gnp.sin(x[1])


def seed2(x):
    """f(x1, x2) = (sin(x1/x2) + x1/x2 - e^x2)(x1/x2 - e^x2) (note 004)."""
    v1 = x[0] / x[1]
    v3 = gnp.exp(x[1])
    return (gnp.sin(v1) + v1 - v3) * (v1 - v3)


def test_seed1_value_and_gradient(backend):
    """At (2, 5): value ln 2 + 10 - sin 5, gradient (5.5, 1.716) = (1/x1 + x2, x1 - cos x2)."""
    value, g = gpuad.value_and_grad(seed1)(backend.asarray([2.0, 5.0]))
    assert float(gpuad.to_numpy(value)) == pytest.approx(math.log(2) + 10 - math.sin(5), rel=1e-15)
    g = gpuad.to_numpy(g)
    assert g[0] == pytest.approx(5.5, rel=1e-15)
    assert g[1] == pytest.approx(2 - math.cos(5), rel=1e-15)
    assert round(g[1], 3) == 1.716


def test_seed1_forward_table():
    """The forward-mode table of note 001 with x1 dotted: v1' = 1/2, v2' = 5, v3' = 0,
    v4' = 5.5, v5' = 5.5."""

    def intermediates(x):
        v1 = gnp.log(x[0])
        v2 = x[0] * x[1]
        v3 = gnp.sin(x[1])
        v4 = v1 + v2
        v5 = v4 - v3
        return v1, v2, v3, v4, v5

    _, tangents = gpuad.jvp(intermediates, (np.asarray([2.0, 5.0]),), (np.asarray([1.0, 0.0]),))
    assert [float(t) for t in tangents] == [0.5, 5.0, 0.0, 5.5, 5.5]


def test_seed1_reverse_table():
    """The adjoints of note 001: v5 = v4 - v3 gives (v4_bar, v3_bar) = (1, -1); v4 = v1 + v2 gives
    (1, 1); sin's adjoint -cos 5 = -0.284; x2_bar = -0.284 + 2 = 1.716, x1_bar = 5 + 0.5 = 5.5."""
    v4_bar, v3_bar = gpuad.grad(lambda v4, v3: v4 - v3, argnums=(0, 1))(np.asarray(3.0), np.asarray(1.0))
    assert (float(v4_bar), float(v3_bar)) == (1.0, -1.0)
    v1_bar, v2_bar, v0_bar = gpuad.grad(lambda v1, v2, v0: v1 + v2 - gnp.sin(v0), argnums=(0, 1, 2))(
        np.asarray(math.log(2)), np.asarray(10.0), np.asarray(5.0)
    )
    assert (float(v1_bar), float(v2_bar)) == (1.0, 1.0)
    assert round(float(v0_bar), 3) == -0.284
    x_bar = gpuad.grad(seed1)(np.asarray([2.0, 5.0]))
    assert round(float(x_bar[0]), 3) == 5.5 and round(float(x_bar[1]), 3) == 1.716


def test_seed2_value_and_gradient(backend):
    """At (1.5, 0.5): value 2.016646669428201, gradient (3.011843327673907, -13.723961509314076),
    the numbers the note's tape implementation prints."""
    value, g = gpuad.value_and_grad(seed2)(backend.asarray([1.5, 0.5]))
    assert float(gpuad.to_numpy(value)) == pytest.approx(2.016646669428201, rel=1e-14)
    np.testing.assert_allclose(gpuad.to_numpy(g), [3.011843327673907, -13.723961509314076], rtol=1e-14)


def test_seed2_forward_table():
    """Note 004's forward table (x1 dotted): tangents 2.000, -1.980, 0.000, 2.000, 0.020, 3.012."""

    def intermediates(x):
        v1 = x[0] / x[1]
        v2 = gnp.sin(v1)
        v3 = gnp.exp(x[1])
        v4 = v1 - v3
        v5 = v2 + v4
        v6 = v5 * v4
        return v1, v2, v3, v4, v5, v6

    primals, tangents = gpuad.jvp(intermediates, (np.asarray([1.5, 0.5]),), (np.asarray([1.0, 0.0]),))
    assert [round(float(t), 3) for t in tangents] == [2.0, -1.98, 0.0, 2.0, 0.02, 3.012]
    assert [round(float(p), 3) for p in primals] == [3.0, 0.141, 1.649, 1.351, 1.492, 2.017]
    # and x2 dotted gives the other partial derivative, -13.724
    _, t2 = gpuad.jvp(seed2, (np.asarray([1.5, 0.5]),), (np.asarray([0.0, 1.0]),))
    assert float(t2) == pytest.approx(-13.723961509314076, rel=1e-14)


def test_seed2_reverse_table():
    """Note 004's adjoints: v5_bar = 1.351, v4_bar = 2.844, v3_bar = -2.844, v2_bar = 1.351,
    v1_bar = 1.506, then x2_bar = -13.724 and x1_bar = 3.012."""
    v1, v3 = 3.0, math.exp(0.5)
    v2, v4 = math.sin(v1), v1 - v3
    v5_bar, v4_bar_direct = gpuad.grad(lambda v5, v4: v5 * v4, argnums=(0, 1))(np.asarray(v2 + v4), np.asarray(v4))
    assert round(float(v5_bar), 3) == 1.351
    v2_bar, v4_bar = gpuad.grad(lambda v2, v4: (v2 + v4) * v4, argnums=(0, 1))(np.asarray(v2), np.asarray(v4))
    assert (round(float(v2_bar), 3), round(float(v4_bar), 3)) == (1.351, 2.844)
    v1_bar, v3_bar = gpuad.grad(lambda v1, v3: (gnp.sin(v1) + v1 - v3) * (v1 - v3), argnums=(0, 1))(
        np.asarray(v1), np.asarray(v3)
    )
    assert (round(float(v1_bar), 3), round(float(v3_bar), 3)) == (1.506, -2.844)
    x_bar = gpuad.grad(seed2)(np.asarray([1.5, 0.5]))
    assert (round(float(x_bar[0]), 3), round(float(x_bar[1]), 3)) == (3.012, -13.724)


def test_dual_number_example():
    """Note 000: f(x) = x^2 + 2x at 2: f(2 + eps) = 8 + 6 eps."""
    value, tangent = gpuad.jvp(lambda x: x**2 + 2 * x, (np.asarray(2.0),), (np.asarray(1.0),))
    assert (float(value), float(tangent)) == (8.0, 6.0)
    assert float(gpuad.grad(lambda x: x**2 + 2 * x)(np.asarray(2.0))) == 6.0


def test_four_input_graph():
    """Note 003: a = x1 x2, b = x3 + x4, c = a - b, f = c^2 has gradient
    (2c x2, 2c x1, -2c, -2c)."""
    x = np.asarray([1.5, -2.0, 0.25, 3.0])

    def f(x):
        c = x[0] * x[1] - (x[2] + x[3])
        return c**2

    c = x[0] * x[1] - (x[2] + x[3])
    np.testing.assert_allclose(gpuad.grad(f)(x), [2 * c * x[1], 2 * c * x[0], -2 * c, -2 * c], rtol=1e-15)


def test_seed1_batched_per_point_gradients(backend):
    """The issue's headline use: per-point gradients of the seed function over a batch."""
    rng = np.random.default_rng(0)
    X = rng.uniform(1, 3, size=(1000, 2))

    def f(x):
        x1, x2 = x[..., 0], x[..., 1]
        return gnp.log(x1) + x1 * x2 - gnp.sin(x2)

    y, g = gpuad.value_and_grad(lambda x: gnp.sum(f(x)))(backend.asarray(X))
    expected = np.stack([1 / X[:, 0] + X[:, 1], X[:, 0] - np.cos(X[:, 1])], axis=1)
    np.testing.assert_allclose(gpuad.to_numpy(g), expected, rtol=1e-14)
    np.testing.assert_allclose(
        float(gpuad.to_numpy(y)), np.sum(np.log(X[:, 0]) + X[:, 0] * X[:, 1] - np.sin(X[:, 1])), rtol=1e-13
    )
