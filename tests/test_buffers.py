"""Buffer reuse (gpuad.speedups.BufferPool): a transformed function writes its large NumPy results
into buffers nothing else refers to any more. The tests prove that reuse happens, that it never
overwrites anything a caller (or a view, or another thread) can still read, that it keeps within
the memory a call needs anyway, and that results stay those of JAX."""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp
from gpuad.speedups import BufferPool, pooled_call

pytestmark = pytest.mark.skipif(
    not gpuad.speedups._CAN_POOL, reason="buffer reuse needs CPython's exact reference counts"
)

MB = 1 << 20
B = 40_000  # a (B, 16) float64 array is 5 MB: above the pool's threshold


def f16(x):
    """Per point, 16 inputs: the benchmark's elementwise function."""
    return gnp.sum(gnp.sin(x) * gnp.exp(-(x * x))) + gnp.sum(x[:-1] * x[1:])


def f16_grad_by_hand(X):
    s, c, e = np.sin(X), np.cos(X), np.exp(-X * X)
    g = c * e - 2 * X * s * e
    g[:, :-1] += X[:, 1:]
    g[:, 1:] += X[:, :-1]
    return (s * e).sum(1) + (X[:, :-1] * X[:, 1:]).sum(1), g


def data(seed, n=B):
    return np.random.default_rng(seed).uniform(-2, 2, size=(n, 16))


# ------------------------------------------------------------------------------------------------
# The pool on its own
# ------------------------------------------------------------------------------------------------


def test_a_free_buffer_is_reused_and_a_referenced_one_is_not():
    pool = BufferPool()
    a = pool.empty((MB,), np.dtype("float64"))
    a[:] = 1.0
    b = pool.empty((MB,), np.dtype("float64"))  # a is still referenced here: a new buffer
    assert not np.shares_memory(a, b)
    assert (pool.fresh, pool.reused) == (2, 0)
    a_address = a.__array_interface__["data"][0]
    del a
    c = pool.empty((MB,), np.dtype("float64"))
    assert c.__array_interface__["data"][0] == a_address and pool.reused == 1
    assert c.shape == (MB,) and c.dtype == np.float64 and c.flags.writeable


def test_a_view_keeps_its_buffer_in_use():
    pool = BufferPool()
    a = pool.empty((MB,), np.dtype("float64"))
    a[:] = 7.0
    part = a[::3]  # NumPy's view refers to the buffer that owns the memory, not to ``a``
    del a
    b = pool.empty((MB,), np.dtype("float64"))
    b[:] = -1.0
    assert np.all(part == 7.0)
    assert pool.reused == 0


def test_shapes_and_dtypes_share_buffers_of_about_the_same_size():
    pool = BufferPool()
    a = pool.empty((1000, 200), np.dtype("float64"))  # 1.6 MB
    del a
    b = pool.empty((2000, 190), np.dtype("float32"))  # 1.52 MB: fits, within 25%
    assert b.shape == (2000, 190) and b.dtype == np.float32 and pool.reused == 1
    del b
    c = pool.empty((1000, 100), np.dtype("float64"))  # 0.8 MB: the free 1.6 MB buffer is too big
    assert pool.reused == 1 and pool.fresh == 2
    del c


def test_the_pool_never_holds_more_than_the_most_in_use_at_once():
    pool = BufferPool()
    held = [pool.empty((n * MB // 8,), np.dtype("float64")) for n in (2, 3, 4)]
    assert pool.high_water == 9 * MB
    del held
    for n in (5, 6, 7, 8):  # sizes nothing free fits: free buffers make room first
        x = pool.empty((n * MB // 8,), np.dtype("float64"))
        assert pool.total <= pool.high_water
        del x
    assert pool.total <= pool.high_water <= 9 * MB + 8 * MB


def test_the_pool_stops_following_results_a_caller_keeps():
    pool = BufferPool()
    kept = [pool.empty((MB // 8,), np.dtype("float64")) for _ in range(BufferPool.MAX_TRACKED + 10)]
    assert len(pool.buffers) <= BufferPool.MAX_TRACKED
    for i, k in enumerate(kept):
        k[:] = i
    del k
    for _ in range(20):
        pool.empty((MB // 8,), np.dtype("float64"))[:] = -1.0
    assert all(np.all(k == i) for i, k in enumerate(kept))


def test_pooled_call_declines_what_it_cannot_do():
    pool = BufferPool()
    big = np.ones(MB)
    assert pooled_call(pool, gpuad.backend.namespace_of(big), "sin", (np.ones(10),)) is None  # small
    assert pooled_call(pool, gpuad.backend.namespace_of(big), "add", (big, big.astype(np.float32))) is None
    assert pooled_call(pool, gpuad.backend.namespace_of(big), "add", (big.astype(np.int64), big.astype(np.int64))) is None
    assert pooled_call(pool, gpuad.backend.namespace_of(big), "add", (big, np.ones(3))) is None  # no broadcast
    out = pooled_call(pool, gpuad.backend.namespace_of(big), "matmul", (np.ones((MB // 64, 8)), np.ones((8, 8))))
    np.testing.assert_array_equal(out, np.full((MB // 64, 8), 8.0))
    import array_api_strict as xs

    s = xs.ones(MB)
    assert pooled_call(pool, xs, "sin", (s,)) is None  # only NumPy arrays take out=


# ------------------------------------------------------------------------------------------------
# Transformed functions
# ------------------------------------------------------------------------------------------------


def test_repeated_calls_reuse_buffers_and_give_the_right_answers():
    vg = gpuad.vmap(gpuad.value_and_grad(f16))
    for seed in range(3):
        X = data(seed)
        v, g = vg(X)
        want_v, want_g = f16_grad_by_hand(X)
        np.testing.assert_allclose(v, want_v, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(g, want_g, rtol=1e-12, atol=1e-12)
        del v, g
    stats = vg.buffer_stats()
    assert stats["reused"] > stats["fresh"] > 0


def test_results_kept_by_the_caller_are_never_overwritten():
    vg = gpuad.vmap(gpuad.value_and_grad(f16))
    X1, X2 = data(1), data(2)
    v1, g1 = vg(X1)
    views = (g1[::2], v1[1:])
    del g1, v1  # only views of the results are left
    kept = [vg(X2) for _ in range(3)]  # later calls, each result kept
    want_v1, want_g1 = f16_grad_by_hand(X1)
    np.testing.assert_allclose(views[0], want_g1[::2], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(views[1], want_v1[1:], rtol=1e-12, atol=1e-12)
    want_v2, want_g2 = f16_grad_by_hand(X2)
    for i, (v, g) in enumerate(kept):
        np.testing.assert_allclose(g, want_g2, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(v, want_v2, rtol=1e-12, atol=1e-12)
        assert not any(np.shares_memory(g, other) for _, other in kept[:i])


def test_aux_outputs_and_intermediates_a_function_stores_survive():
    stored = []

    def f(x):
        y = gnp.sin(x) * 2.0
        stored.append(gpuad.stop_gradient(y))  # an intermediate leaves through a side channel
        return gnp.sum(y * x), y

    vg = gpuad.value_and_grad(f, has_aux=True)
    X = data(3, 2 * B)
    (_, aux), g = vg(X)
    aux_copy = np.array(aux)
    for seed in range(4, 7):
        vg(data(seed, 2 * B))
    np.testing.assert_array_equal(aux, aux_copy)
    np.testing.assert_allclose(g, 2 * np.sin(X) + 2 * X * np.cos(X), rtol=1e-12)


def test_per_example_mlp_gradients_at_scale_match_jax(jax_x64):
    import jax.numpy as jnp

    from .spec import GpuadNS, JaxNS
    from .test_mlp import init, loss_stable

    rng = np.random.default_rng(5)
    params = init(rng, "float64")
    n = 6000  # (n, 64) float64 activations are 3 MB: pooled
    G, J = GpuadNS(), JaxNS()
    per_example = gpuad.vmap(gpuad.value_and_grad(lambda p, x, y: loss_stable(G, p, x, y), argnums=1), in_axes=(None, 0, 0))
    want_fn = jax_x64.jit(jax_x64.vmap(jax_x64.value_and_grad(lambda p, x, y: loss_stable(J, p, x, y), argnums=1), in_axes=(None, 0, 0)))
    for _ in range(2):  # the second call runs on the buffers of the first
        X = rng.standard_normal((n, 32))
        labels = rng.integers(0, 10, size=n)
        v, g = per_example(params, X, labels)
        wv, wg = want_fn({k: jnp.asarray(a) for k, a in params.items()}, jnp.asarray(X), jnp.asarray(labels))
        np.testing.assert_allclose(v, np.asarray(wv), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(g, np.asarray(wg), rtol=1e-10, atol=1e-12)
    assert per_example.buffer_stats()["reused"] > 0


def test_threads_calling_one_function_get_their_own_buffers():
    vg = gpuad.vmap(gpuad.value_and_grad(f16))
    inputs = [data(10 + i) for i in range(4)]
    wanted = [f16_grad_by_hand(X)[1] for X in inputs]
    errors = []

    def work(i):
        try:
            for _ in range(3):
                _, g = vg(inputs[i])
                np.testing.assert_allclose(g, wanted[i], rtol=1e-12, atol=1e-12)
        except Exception as exc:  # reported below, in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often, inside calls
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert not errors, errors


def test_nested_transforms_use_the_outer_pool_and_release_buffers_frees_them():
    inner = gpuad.value_and_grad(f16)
    outer = gpuad.vmap(inner)
    outer(data(20))
    assert inner.buffer_stats() == {"fresh": 0, "reused": 0, "bytes": 0}
    assert outer.buffer_stats()["bytes"] > 0
    outer.release_buffers()
    assert outer.buffer_stats()["bytes"] == 0
    _, g = outer(data(21))
    np.testing.assert_allclose(g, f16_grad_by_hand(data(21))[1], rtol=1e-12, atol=1e-12)


def test_jit_replays_a_function_with_a_pool(jax_x64):
    vg = gpuad.jit(gpuad.vmap(gpuad.value_and_grad(f16)))
    for seed in (30, 31):
        X = data(seed)
        v, g = vg(X)
        want_v, want_g = f16_grad_by_hand(X)
        np.testing.assert_allclose(g, want_g, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(v, want_v, rtol=1e-12, atol=1e-12)


def test_no_pool_on_the_strict_device():
    import array_api_strict as xs

    X = data(40)
    vg = gpuad.vmap(gpuad.value_and_grad(f16))
    _, g = vg(xs.asarray(X, device=xs.Device("device1")))
    np.testing.assert_allclose(gpuad.to_numpy(g), f16_grad_by_hand(X)[1], rtol=1e-12, atol=1e-12)
    assert vg.buffer_stats()["fresh"] == 0
