"""vmap over a Dask batch, one task per chunk (issue 24): results equal the in-memory ones, stay
lazy, gradients with respect to in-memory parameters are tree-summed over the chunks, a real
two-process cluster (loopback) computes them, also when a worker dies mid-way; bad input is
refused before anything runs."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp
from gpuad import dask_batches

from .helpers import oracle

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
distributed = pytest.importorskip("dask.distributed")
jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402

from .dask_helpers import lazily  # noqa: E402

# The cluster's workers get this module's functions by value (they may not import the tests).
pytest.importorskip("cloudpickle").register_pickle_by_value(sys.modules[__name__])


def seed1(x):
    return gnp.log(x[0]) + x[0] * x[1] - gnp.sin(x[1])


def mlp_loss(params, x, y, ns=gnp):
    """One example's cross-entropy through a 6-16-16-4 MLP (sigmoid, tanh, log-softmax)."""
    W1, b1, W2, b2, W3, b3 = params
    h1 = 1 / (1 + ns.exp(-(x @ W1 + b1)))
    h2 = ns.tanh(h1 @ W2 + b2)
    z = h2 @ W3 + b3
    m = ns.max(z)
    return ns.log(ns.sum(ns.exp(z - m))) + m - ns.sum(z * y)


def mean_loss(params, X, Y):
    return gnp.mean(gpuad.vmap(mlp_loss, in_axes=(None, 0, 0))(params, X, Y))


def mlp_data(B, seed=0):
    rng = np.random.default_rng(seed)
    sizes = (6, 16, 16, 4)
    params = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        params += [rng.standard_normal((a, b)) / np.sqrt(a), 0.1 * rng.standard_normal(b)]
    X = rng.standard_normal((B, 6))
    Y = np.eye(4)[rng.integers(0, 4, size=B)]
    return tuple(params), X, Y


def tasks_named(array, name):
    return [k for k in dict(array.__dask_graph__()) if isinstance(k, tuple) and str(k[0]).startswith(name) or str(k).startswith(name)]


# ---------------------------------------------------------------------------------------------
# One task per chunk, lazy, equal to the in-memory result
# ---------------------------------------------------------------------------------------------


def test_vmap_is_one_task_per_chunk_and_equals_memory():
    Xn = np.random.default_rng(0).uniform(1, 3, size=(1000, 2))
    X = da.from_array(Xn, chunks=(250, 1))  # split along the point's axis too: rechunked
    v, g = lazily(gpuad.vmap(gpuad.value_and_grad(seed1)), X)
    assert v.chunks == ((250,) * 4,) and g.chunks == ((250,) * 4, (2,))
    assert type(g._meta) is np.ndarray
    assert len(tasks_named(g, "_run_chunk")) == 4
    want_v, want_g = gpuad.vmap(gpuad.value_and_grad(seed1))(Xn)
    got_v, got_g = dask.compute(v, g)
    np.testing.assert_array_equal(got_v, want_v)  # the same arithmetic: the same bits
    np.testing.assert_array_equal(got_g, want_g)


def test_batch_axis_out_axes_kwargs_and_chunk_size():
    rng = np.random.default_rng(1)
    Xn, Tn = rng.uniform(1, 3, size=(2, 90)), rng.normal(size=(90, 2))
    X, T = da.from_array(Xn, chunks=(2, 40)), da.from_array(Tn, chunks=(25, 2))  # unequal chunks: aligned
    f = gpuad.vmap(lambda x, t, s: (gpuad.jvp(seed1, (x,), (t * s,)), {"x": x}), in_axes=(1, 0, None), out_axes=-1, chunk_size=16)
    got = dask.compute(lazily(f, X, T, 2.0))[0]
    want = f(Xn, Tn, 2.0)
    for a, b in zip(gpuad.tree_leaves(got), gpuad.tree_leaves(want)):
        np.testing.assert_array_equal(a, b)
    k = gpuad.vmap(lambda x, *, t: gnp.sum(x * t))
    np.testing.assert_array_equal(k(X.T, t=T).compute(), k(Xn.T, t=Tn))


def test_jit_of_vmap_compiles_per_chunk():
    Xn = np.random.default_rng(2).uniform(1, 3, size=(1000, 2))
    fast = gpuad.jit(gpuad.vmap(gpuad.value_and_grad(seed1)))
    v, g = dask.compute(*lazily(fast, da.from_array(Xn, chunks=(256, 2))))
    want_v, want_g = gpuad.vmap(gpuad.value_and_grad(seed1))(Xn)
    np.testing.assert_allclose(v, want_v, rtol=1e-14)  # vector maths: within a few ulps
    np.testing.assert_allclose(g, want_g, rtol=1e-14)


# ---------------------------------------------------------------------------------------------
# Gradients with respect to in-memory parameters: per-chunk tasks, tree-summed
# ---------------------------------------------------------------------------------------------


def _jax_mean_loss(params, X, Y):
    return jnp.mean(jax.vmap(lambda x, y: mlp_loss(params, x, y, ns=jnp))(X, Y))


def test_grad_of_mean_loss_wrt_in_memory_params():
    params, Xn, Yn = mlp_data(4000)
    X, Y = da.from_array(Xn, chunks=(100, 6)), da.from_array(Yn, chunks=(100, 4))
    value, grads = lazily(gpuad.value_and_grad(mean_loss), params, X, Y)
    # The tree reduction: one task per chunk (its cotangent, x and y chunks, the 6 parameters),
    # and no task after them adds up more than SPLIT_EVERY partial gradients (40 chunks).
    graph = dict(grads[0].__dask_graph__())
    fan_in = {str(k): len(dask.core.get_dependencies(graph, k)) for k in graph}
    assert sum(k.startswith("_vjp_chunk") for k in fan_in) == 40
    assert max(n for k, n in fan_in.items() if not k.startswith("_vjp_chunk")) <= dask_batches.SPLIT_EVERY
    value, grads = dask.compute(value, grads)
    want_value, want_grads = gpuad.value_and_grad(mean_loss)(params, Xn, Yn)
    np.testing.assert_allclose(value, want_value, rtol=1e-12)
    for a, b in zip(grads, want_grads):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    jax_grads = oracle(jax.grad(_jax_mean_loss))(params, Xn, Yn)
    for a, b in zip(grads, jax_grads):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)


def test_sum_loss_with_a_term_in_memory_and_jvp():
    params, Xn, Yn = mlp_data(300, seed=3)
    X, Y = da.from_array(Xn, chunks=(64, 6)), da.from_array(Yn, chunks=(64, 4))

    def total(params, X, Y):
        per = gpuad.vmap(mlp_loss, in_axes=(None, 0, 0))(params, X, Y)
        return gnp.sum(per) + gnp.sum(params[0] * params[0])

    got = dask.compute(gpuad.grad(total)(params, da.from_array(Xn, chunks=(64, 6)), Y))[0]
    want = gpuad.grad(total)(params, Xn, Yn)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    tangent = tuple(np.ones_like(p) for p in params)
    out, tan = gpuad.jvp(lambda p: mean_loss(p, X, Y), (params,), (tangent,))
    want_out, want_tan = gpuad.jvp(lambda p: mean_loss(p, Xn, Yn), (params,), (tangent,))
    np.testing.assert_allclose(out.compute(), want_out, rtol=1e-13)
    np.testing.assert_allclose(tan.compute(), want_tan, rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# Bad input: refused when called, before any graph runs
# ---------------------------------------------------------------------------------------------


def test_errors():
    import array_api_strict as xs

    Xn = np.random.default_rng(4).uniform(1, 3, size=(40, 2))
    X = da.from_array(Xn, chunks=(10, 2))
    f = gpuad.vmap(lambda x, y: seed1(x) * y)
    with pytest.raises(TypeError, match=r"x.*Dask array.*y.*in-memory numpy array.*from_array"):
        f(X, Xn[:, 0])
    other = X.map_blocks(lambda b: b, meta=xs.asarray(np.zeros((0, 0))))
    with pytest.raises(TypeError, match=r"chunks of argument 0 \(x\) are numpy arrays but those of argument 1 \(y\) are array_api_strict"):
        gpuad.vmap(lambda x, y: seed1(x) + seed1(y))(X, other)
    with pytest.raises(ValueError, match=r"chunk sizes .* unknown.*compute_chunk_sizes"):
        gpuad.vmap(seed1)(X[X[:, 0] > 2])
    with pytest.raises(TypeError, match=r"\(w\) is a array_api_strict array.*pass argument 1 \(w\) as a numpy array"):
        gpuad.vmap(lambda x, w: seed1(x * w), in_axes=(0, None))(X, xs.asarray([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"out_axes is None for output leaf 1"):
        gpuad.vmap(lambda x: (seed1(x), 1.0), out_axes=(0, None))(X)
    with pytest.raises(ValueError, match=r"inconsistent sizes"):
        gpuad.vmap(lambda x, y: seed1(x) + y)(X, da.ones(39, chunks=13))
    params, Xn6, Yn = mlp_data(50)
    X6, Y = da.from_array(Xn6, chunks=(10, 6)), da.from_array(Yn, chunks=(10, 4))
    with pytest.raises(NotImplementedError, match="nested transforms"):
        gpuad.hessian(lambda b: mean_loss(params[:5] + (b,), X6, Y))(params[5])
    with pytest.raises(NotImplementedError, match="nested transforms"):
        gpuad.vmap(lambda b: mean_loss(params[:5] + (b,), X6, Y))(np.ones((3, 4)))
    with pytest.raises(NotImplementedError, match="nested transforms"):
        gpuad.jit(lambda b: mean_loss(params[:5] + (b,), X6, Y))(params[5])
    with pytest.raises(NotImplementedError, match="cotangents are being traced"):
        gpuad.jacrev(lambda b: gpuad.vmap(mlp_loss, in_axes=(None, 0, 0))(params[:5] + (b,), X6, Y))(params[5])


# ---------------------------------------------------------------------------------------------
# A real cluster: two worker processes on the loopback interface
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0", silence_logs=40
    )
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


def test_cluster_results_equal_memory(client):
    Xn = np.random.default_rng(5).uniform(1, 3, size=(20_000, 2))
    v, g = gpuad.vmap(gpuad.value_and_grad(seed1))(da.from_array(Xn, chunks=(2_500, 2)))
    got_v, got_g = client.compute([v, g], sync=True)
    want_v, want_g = gpuad.vmap(gpuad.value_and_grad(seed1))(Xn)
    np.testing.assert_array_equal(got_v, want_v)
    np.testing.assert_array_equal(got_g, want_g)
    assert len(client.scheduler_info()["workers"]) == 2
    params, Xm, Ym = mlp_data(6000, seed=6)
    value, grads = gpuad.value_and_grad(mean_loss)(params, da.from_array(Xm, chunks=(500, 6)), da.from_array(Ym, chunks=(500, 4)))
    value, grads = client.compute([value, grads], sync=True)
    want_value, want_grads = gpuad.value_and_grad(mean_loss)(params, Xm, Ym)
    np.testing.assert_allclose(value, want_value, rtol=1e-12)
    for a, b in zip(grads, want_grads):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def slow_seed1(x):
    time.sleep(0.3)  # runs once per chunk (vmap traces the function once): slow tasks to kill into
    return seed1(x)


def test_cluster_survives_a_killed_worker(client):
    Xn = np.random.default_rng(7).uniform(1, 3, size=(12_000, 2))
    g = gpuad.vmap(gpuad.grad(slow_seed1))(da.from_array(Xn, chunks=(1_000, 2)))
    future = client.compute(g)
    victim = next(iter(client.run(os.getpid).values()))
    timer = threading.Timer(0.8, os.kill, (victim, signal.SIGKILL))  # mid-way: 12 tasks of >= 0.3 s on 2 workers
    timer.start()
    try:
        got = future.result(timeout=120)
    finally:
        timer.cancel()
    np.testing.assert_array_equal(got, gpuad.vmap(gpuad.grad(seed1))(Xn))
    assert victim not in client.run(os.getpid).values()  # the nanny started a new worker; its tasks ran again


def test_demo_on_a_local_cluster(capsys):
    from gpuad.__main__ import main

    main(["--dask", "1", "--size", "40000", "--chunk", "10000", "--repeats", "1"])
    out = capsys.readouterr().out
    assert "a local cluster of 1 single-threaded worker" in out and "per worker" in out
    X = (1 + 2 * da.random.default_rng(0).random((40000, 2), dtype="float32", chunks=(10000, 2))).compute()
    want = float(np.sum(gpuad.vmap(seed1)(X), dtype=np.float64))
    got = float(out.split("sum of values ")[1].split(",")[0])
    assert abs(got - want) <= 1e-5 * abs(want)
    with pytest.raises(SystemExit):
        main(["--dask", "-1"])
    assert "--dask takes a number of workers" in capsys.readouterr().err
