"""The seed notes' MLP (note 003): sigmoid, tanh, softmax and cross-entropy, with per-example
gradients for every weight and bias from vmap(grad(loss), in_axes=(None, 0, 0)), against JAX."""

from __future__ import annotations

import functools

import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp

from .helpers import oracle
from .spec import GpuadNS, JaxNS

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)

SIZES = (32, 64, 64, 10)


def init(rng, dtype):
    params = {}
    for i, (a, b) in enumerate(zip(SIZES[:-1], SIZES[1:]), start=1):
        params[f"W{i}"] = (rng.standard_normal((a, b)) / np.sqrt(a)).astype(dtype)
        params[f"b{i}"] = (0.1 * rng.standard_normal(b)).astype(dtype)
    return params


def forward(ns, p, x):
    h1 = ns.sigmoid(x @ p["W1"] + p["b1"])
    h2 = ns.tanh(h1 @ p["W2"] + p["b2"])
    return h2 @ p["W3"] + p["b3"]


def loss_stable(ns, p, x, label):
    """cross_entropy(softmax(z), label) as -log_softmax(z)[label]."""
    return -ns.log_softmax(forward(ns, p, x))[label]


def loss_as_in_the_notes(ns, p, x, onehot):
    """y = softmax(z); L = -sum(y_true * log(y)), literally."""
    y = ns.softmax(forward(ns, p, x))
    return -ns.sum(onehot * ns.log(y))


def _data(dtype, loss):
    rng = np.random.default_rng(0)
    params = init(rng, dtype)
    X = rng.standard_normal((16, 32)).astype(dtype)
    labels = rng.integers(0, 10, size=16)
    target = labels if loss is loss_stable else np.eye(10, dtype=dtype)[labels]
    return params, X, target


@functools.lru_cache(maxsize=None)
def _jax_per_example_gradients(dtype, loss):
    """JAX's per-example gradients, computed once for every backend's test."""
    J = JaxNS()
    return oracle(jax.vmap(jax.grad(lambda p, x, y: loss(J, p, x, y)), in_axes=(None, 0, 0)))(*_data(dtype, loss))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("loss", [loss_stable, loss_as_in_the_notes], ids=["log_softmax", "notes"])
def test_per_example_gradients_match_jax(backend, dtype, loss):
    params, X, target = _data(dtype, loss)
    G = GpuadNS()
    got = gpuad.vmap(gpuad.grad(lambda p, x, y: loss(G, p, x, y)), in_axes=(None, 0, 0))(
        {k: backend.asarray(v) for k, v in params.items()}, backend.asarray(X), backend.asarray(target)
    )
    want = _jax_per_example_gradients(dtype, loss)
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == "float64" else dict(rtol=2e-3, atol=2e-5)
    assert set(got) == set(params)
    for k in params:
        g = gpuad.to_numpy(got[k])
        assert g.shape == (16,) + params[k].shape and g.dtype == np.dtype(dtype)
        np.testing.assert_allclose(g, np.asarray(want[k]), **tol, err_msg=k)


def test_mean_loss_gradient_is_the_mean_of_per_example_gradients():
    rng = np.random.default_rng(1)
    params = init(rng, "float64")
    X = rng.standard_normal((8, 32))
    labels = rng.integers(0, 10, size=8)
    G = GpuadNS()
    per_example = gpuad.vmap(gpuad.grad(lambda p, x, y: loss_stable(G, p, x, y)), in_axes=(None, 0, 0))(params, X, labels)
    mean_loss = lambda p: gnp.mean(gpuad.vmap(lambda x, y: loss_stable(G, p, x, y))(X, labels))
    whole = gpuad.grad(mean_loss)(params)
    for k in params:
        np.testing.assert_allclose(whole[k], per_example[k].mean(axis=0), rtol=1e-12, atol=1e-14)
