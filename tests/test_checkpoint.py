"""checkpoint (rematerialization): same derivatives as without it, and a tape that keeps only the
segment's inputs."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp
from gpuad.reverse import ReverseTrace
from gpuad.tracing import open_trace


def block(x, w):
    for _ in range(5):
        x = gnp.tanh(x * w + 0.1) + gnp.sin(x) * 0.5
    return x


def two_outputs(x, w, n):
    return {"a": gnp.exp(x * w) ** n, "b": x * 3.0}


@pytest.mark.parametrize("backend_name", ["numpy", "strict"])
def test_gradients_equal_those_without_checkpoint(backend_name, rng):
    from .conftest import Backend

    b = Backend(backend_name)
    x, w = b.asarray(rng.standard_normal(6)), b.asarray(rng.standard_normal(6))
    plain = lambda x, w: gnp.sum(block(block(x, w), w) ** 2)
    remat = lambda x, w: gnp.sum(gpuad.checkpoint(block)(gpuad.checkpoint(block)(x, w), w) ** 2)
    for g1, g2 in zip(gpuad.grad(plain, argnums=(0, 1))(x, w), gpuad.grad(remat, argnums=(0, 1))(x, w)):
        np.testing.assert_allclose(gpuad.to_numpy(g2), gpuad.to_numpy(g1), rtol=1e-14)


def test_several_outputs_pytrees_and_constant_arguments():
    x, w = np.linspace(0.1, 0.6, 4), np.asarray(0.7)
    f = lambda fn: (lambda x, w: gnp.sum(fn(x, w, 2)["a"]) + gnp.sum(fn(x, w, 2)["b"] ** 2))
    g_plain = gpuad.grad(f(two_outputs), argnums=(0, 1))(x, w)
    g_remat = gpuad.grad(f(gpuad.checkpoint(two_outputs)), argnums=(0, 1))(x, w)
    for a, b in zip(g_plain, g_remat):
        np.testing.assert_allclose(b, a, rtol=1e-14)
    # an output that is not used gets no cotangent; one that is used only partly still works
    only_b = gpuad.grad(lambda x: gnp.sum(gpuad.checkpoint(two_outputs)(x, w, 3)["b"]))(x)
    np.testing.assert_array_equal(only_b, np.full(4, 3.0))


def test_higher_order_and_composition_with_vmap_and_jvp():
    x = np.linspace(-1, 1, 5)
    w = np.asarray(0.3)
    cb = gpuad.checkpoint(block)
    h_plain = gpuad.grad(gpuad.grad(lambda s: gnp.sum(block(x * s, w))))(np.asarray(1.2))
    h_remat = gpuad.grad(gpuad.grad(lambda s: gnp.sum(cb(x * s, w))))(np.asarray(1.2))
    np.testing.assert_allclose(h_remat, h_plain, rtol=1e-13)
    per_point = gpuad.vmap(gpuad.grad(lambda xi: cb(xi, w)))(x)
    np.testing.assert_allclose(per_point, gpuad.vmap(gpuad.grad(lambda xi: block(xi, w)))(x), rtol=1e-14)
    _, t1 = gpuad.jvp(lambda v: cb(v, w), (x,), (np.ones(5),))
    _, t2 = gpuad.jvp(lambda v: block(v, w), (x,), (np.ones(5),))
    np.testing.assert_allclose(t1, t2, rtol=1e-14)


def test_tape_keeps_one_line_per_checkpointed_segment():
    import array_api_compat.numpy as xp

    with open_trace(ReverseTrace, xp, device="cpu") as trace:
        x = trace.new_input(np.ones(3))
        gpuad.checkpoint(block)(x, np.asarray(0.5))
    assert [r.prim.name for r in trace.tape] == ["checkpoint"]
    assert len(trace.tape[0].args) == 2  # the inputs, nothing computed inside


def test_closure_over_a_differentiated_value_is_refused():
    def f(x):
        return gpuad.checkpoint(lambda y: y * x)(x * 2.0)

    with pytest.raises(ValueError, match=r"checkpoint: the function uses a value that is being differentiated"):
        gpuad.grad(lambda x: gnp.sum(f(x)))(np.ones(3))


def _peak_bytes(fn, *args):
    # A transformed function keeps its buffers for the next call (see test_buffers.py): start
    # from none, so that every byte the call needs is allocated, and traced, during the call.
    fn.release_buffers()
    tracemalloc.start()
    try:
        fn(*args)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_checkpointed_chain_needs_less_memory():
    """A 50-layer chain in 5 checkpointed segments holds 5 segment inputs, not 50 layers' values:
    NumPy reports its buffers to tracemalloc, so the peak is measured, not estimated."""
    x = np.random.default_rng(0).standard_normal(200_000)

    def layer(v):
        return gnp.tanh(v * 1.01 + 0.01)

    def segment(v):
        for _ in range(10):
            v = layer(v)
        return v

    plain = gpuad.grad(lambda v: gnp.sum(segment(segment(segment(segment(segment(v)))))))
    seg = gpuad.checkpoint(segment)
    remat = gpuad.grad(lambda v: gnp.sum(seg(seg(seg(seg(seg(v)))))))
    np.testing.assert_allclose(remat(x), plain(x), rtol=1e-13)
    assert _peak_bytes(remat, x) < 0.5 * _peak_bytes(plain, x)
