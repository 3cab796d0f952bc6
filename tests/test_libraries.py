"""Array libraries beyond NumPy and CuPy: Dask (lazy, and its ``+=`` makes a new array), jax.Array
(immutable: no item assignment), PyTorch (through array-api-compat) and array_api_strict.

Results must equal NumPy's (the engine is the same; only the library changes) or JAX's, come back
in the inputs' library, and, for Dask, stay lazy: gpuad never computes a Dask graph on its own (the
Dask analogue of a host sync)."""

from __future__ import annotations

import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp
from gpuad import backend
from gpuad import primitives as P

from .helpers import close, oracle

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402

from .dask_helpers import lazily as dask_lazily  # noqa: E402

X3 = np.array([0.3, 0.5, 0.7])


def issue_f(x):
    """Issue 19, item 3: whole uses of x (sin, cos, exp) and a read of one element."""
    return gnp.sum(gnp.sin(x)) + gnp.sum(gnp.cos(x)) + gnp.sum(gnp.exp(x)) + x[0]


def point_f(x):
    """One point (3,): parts, broadcasting, reductions and a matrix product."""
    m = gnp.stack([x[0] * x[1], gnp.sin(x[2]), x[1] - x[0]])
    return gnp.sum(gnp.tanh(m) * x + x[..., 1:] @ x[:2]) + gnp.max(x) * x[2]


def vec_f(x):
    """A vector output, for Jacobians and JVPs."""
    return gnp.sin(x) * x[0] + gnp.exp(x[1:2]) / (1.0 + x * x)


def lazily(fn, *args):
    """dask_helpers.lazily, results that are functions (a vjp's pullback) allowed."""
    return dask_lazily(fn, *args, functions=True)


# ---------------------------------------------------------------------------------------------
# Item 3: cotangents of an array read in parts, on libraries that do not update in place
# ---------------------------------------------------------------------------------------------


def test_dask_grad_keeps_every_cotangent_contribution():
    want = gpuad.grad(issue_f)(X3)
    np.testing.assert_allclose(want, np.cos(X3) - np.sin(X3) + np.exp(X3) + [1.0, 0.0, 0.0], rtol=1e-14)
    got = lazily(gpuad.grad(issue_f), da.from_array(X3))
    close(got, want)


def test_jax_array_grad_keeps_every_cotangent_contribution():
    want = gpuad.grad(issue_f)(X3)
    got = gpuad.grad(issue_f)(jnp.asarray(X3))
    assert isinstance(got, jax.Array)
    close(got, want)


@pytest.mark.parametrize(
    "make", [da.from_array, pytest.param(jnp.asarray, marks=pytest.mark.slow)], ids=["dask", "jax"]
)  # on JAX arrays gpuad's every operation is JAX op by op: in the default run, not the quick subset
def test_parts_and_vmap_on_immutable_libraries(make):
    """Reads in parts under vmap (embed_add with and without a base, strided and single
    elements), through grad and hessian, against NumPy."""
    X = np.random.default_rng(0).uniform(0.5, 1.5, size=(7, 3))
    f = lambda x: point_f(x) + x[::2][0] * x[-1] + gnp.sum(x[1:]) * x[1]  # noqa: E731
    for t in (gpuad.grad, gpuad.hessian):
        close(gpuad.vmap(t(f))(make(X)), gpuad.vmap(t(f))(X))


def test_embed_without_item_assignment_matches_numpy():
    """The embedding that JAX's immutable arrays get (built with take, no item assignment) equals
    the one NumPy writes in place, for integers (negative too), strided and reversed slices and new
    axes, with and without a base."""
    import array_api_compat.numpy as xnp

    E = Ellipsis
    shape = (5, 4, 3)
    indices = [
        (E, 1, slice(None), slice(None)),
        (E, -1, slice(1, 4, 2), 0),
        (E, slice(None, None, -2), None, 2, slice(0, 3)),
        (E, slice(4, 0, -1), slice(None), -3),
        (E, 2, 3, 1),
        (E, None, slice(1, 2), slice(None), slice(None, None, 3)),
    ]
    rng = np.random.default_rng(1)
    for index in indices:
        g = rng.normal(size=np.zeros((2,) + shape)[index].shape)
        base = rng.normal(size=(2,) + shape)
        want = P._embed_impl(xnp, g, index=index, shape=shape)
        got = P._embed_impl(jnp, jnp.asarray(g), index=index, shape=shape)
        np.testing.assert_array_equal(np.asarray(got), want)
        want = P._embed_add_impl(xnp, base, g, g, indices=(index, index), shape=shape, has_base=True)
        got = P._embed_add_impl(
            jnp, jnp.asarray(base), jnp.asarray(g), jnp.asarray(g), indices=(index, index), shape=shape, has_base=True
        )
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-15)


def test_in_place_updates_are_decided_by_capability():
    import array_api_strict as xs

    assert backend.is_writable(np.ones(2))
    assert not backend.is_writable(np.broadcast_to(np.ones(1), (2,)))  # a read-only view
    assert not backend.is_writable(np.float64(1.0))
    assert not backend.is_writable(jnp.ones(2))  # immutable
    assert not backend.is_writable(da.ones(2))  # item assignment works, but += makes a new array
    assert backend.assigns_items(da.ones(2)) and not backend.assigns_items(jnp.ones(2))
    assert backend.is_writable(xs.ones(2))


def test_torch_tensors_update_in_place():
    torch = pytest.importorskip("torch")
    assert backend.is_writable(torch.ones(2))


# ---------------------------------------------------------------------------------------------
# Items 6 and 15, and the other transforms: Dask in, Dask out, lazily, equal to NumPy
# ---------------------------------------------------------------------------------------------


def test_dask_chunked_vmap_returns_dask():
    X = np.random.default_rng(2).uniform(0.5, 1.5, size=(10, 3))
    want = gpuad.vmap(gpuad.grad(point_f))(X)
    got = lazily(gpuad.vmap(gpuad.grad(point_f), chunk_size=4), da.from_array(X, chunks=(5, 3)))
    close(got, want)
    got = lazily(gpuad.vmap(lambda x: (vec_f(x), gnp.sum(x)), chunk_size=3), da.from_array(X))
    close(got, gpuad.vmap(lambda x: (vec_f(x), gnp.sum(x)))(X))


@pytest.mark.parametrize("name", ["jacfwd", "hessian", "jacfwd chunked", "jacrev"])
def test_dask_jacobians(name):
    fn = {
        "jacfwd": gpuad.jacfwd(vec_f),
        "hessian": gpuad.hessian(point_f),
        "jacfwd chunked": gpuad.jacfwd(vec_f, chunk_size=2),
        "jacrev": gpuad.jacrev(vec_f),
    }[name]
    close(lazily(fn, da.from_array(X3)), fn(X3))


def test_dask_jvp_vjp_and_vmap():
    x, t = X3, np.array([1.0, -2.0, 0.5])
    close(lazily(gpuad.jvp, vec_f, (da.from_array(x),), (da.from_array(t),)), gpuad.jvp(vec_f, (x,), (t,)))
    out, pull = lazily(gpuad.vjp, vec_f, da.from_array(x))
    want_out, want_pull = gpuad.vjp(vec_f, x)
    close(out, want_out)
    close(lazily(pull, da.from_array(t)), want_pull(t))
    X = np.random.default_rng(3).uniform(0.5, 1.5, size=(6, 3))
    for t in (gpuad.grad, gpuad.hessian, gpuad.jacfwd, gpuad.jacrev):
        f = point_f if t in (gpuad.grad, gpuad.hessian) else vec_f
        close(lazily(gpuad.vmap(t(f)), da.from_array(X, chunks=(2, 3))), gpuad.vmap(t(f))(X))


def test_creation_inside_a_dask_transform_makes_dask_arrays():
    """``gnp.zeros(..., device=x.device)`` names the device "cpu", which NumPy's arrays have too:
    inside a transform over Dask arrays it is Dask's (no library mixing)."""

    def f(x):
        z = gnp.zeros(x.shape, dtype=x.dtype, device=x.device)
        return gnp.sum(gnp.sin(x) + z)

    close(lazily(gpuad.grad(f), da.from_array(X3)), np.cos(X3))


# ---------------------------------------------------------------------------------------------
# Item 13: chunked vmap on array_api_strict (which wants full indices)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("device", [None, "device1"])
def test_strict_chunked_vmap(device):
    import array_api_strict as xs

    dev = xs.Device(device) if device else None
    X = np.random.default_rng(4).uniform(0.5, 1.5, size=(10, 3))
    kw = {} if dev is None else {"device": dev}
    xsx = xs.asarray(X, dtype=xs.float64, **kw)
    got = gpuad.vmap(gpuad.grad(point_f), chunk_size=4)(xsx)
    assert got.device == xsx.device
    close(got, gpuad.vmap(gpuad.grad(point_f))(X))
    ones = gpuad.vmap(gpuad.grad(point_f), chunk_size=4)(xs.ones((10, 3), dtype=xs.float64, **kw))
    close(ones, gpuad.vmap(gpuad.grad(point_f))(np.ones((10, 3))))
    out = gpuad.vmap(vec_f, out_axes=1, chunk_size=3)(xsx)
    close(out, gpuad.vmap(vec_f, out_axes=1)(X))


# ---------------------------------------------------------------------------------------------
# Item 14: PyTorch tensors through array-api-compat, against JAX
# ---------------------------------------------------------------------------------------------


def _array_api_fns():
    from array_api_compat import array_namespace

    def scalar(x):
        xp = array_namespace(x)
        return xp.sum(xp.sin(x) * x[0] + xp.exp(x[1:2]) / (1.0 + x * x)) + xp.max(x) * x[2]

    def vector(x):
        xp = array_namespace(x)
        return xp.tanh(x[..., None] * x) @ x + xp.log1p(x * x)

    return scalar, vector


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_torch_transforms_match_jax(dtype):
    torch = pytest.importorskip("torch")
    scalar, vector = _array_api_fns()
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == "float64" else dict(rtol=2e-5, atol=2e-5)
    x = X3.astype(dtype)
    X = np.random.default_rng(5).uniform(0.5, 1.5, size=(6, 3)).astype(dtype)
    t = np.array([1.0, -2.0, 0.5], dtype=dtype)
    T = lambda a: torch.from_numpy(a.copy())  # noqa: E731

    def theirs(x, t, X):  # JAX's side of every case, one compiled program
        return [
            jax.grad(scalar)(x),
            jax.hessian(scalar)(x),
            jax.jacfwd(vector)(x),
            jax.jacrev(vector)(x),
            jax.jvp(vector, (x,), (t,)),
            jax.vjp(vector, x)[1](t),
            jax.vmap(jax.grad(scalar))(X),
            jax.vmap(jax.grad(scalar))(X),
            jax.vmap(jax.hessian(scalar))(X),
            jax.vmap(jax.jacfwd(vector))(X),
        ]

    ours = [
        gpuad.grad(scalar)(T(x)),
        gpuad.hessian(scalar)(T(x)),
        gpuad.jacfwd(vector)(T(x)),
        gpuad.jacrev(vector)(T(x)),
        gpuad.jvp(vector, (T(x),), (T(t),)),
        gpuad.vjp(vector, T(x))[1](T(t)),
        gpuad.vmap(gpuad.grad(scalar))(T(X)),
        gpuad.vmap(gpuad.grad(scalar), chunk_size=4)(T(X)),
        gpuad.vmap(gpuad.hessian(scalar))(T(X)),
        gpuad.vmap(gpuad.jacfwd(vector))(T(X)),
    ]
    cases = zip(ours, oracle(theirs)(x, t, X))
    for got, want in cases:
        for g, w in zip(gpuad.tree_leaves(got), jax.tree_util.tree_leaves(want)):
            assert isinstance(g, torch.Tensor), type(g)
            assert g.dtype == getattr(torch, dtype)
            np.testing.assert_allclose(g.numpy(), np.asarray(w), **tol)


def test_torch_grad_of_the_issue_example():
    torch = pytest.importorskip("torch")
    got = gpuad.grad(lambda x: gnp.sum(x * x))(torch.ones(3, dtype=torch.float64))
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float64
    np.testing.assert_array_equal(got.numpy(), [2.0, 2.0, 2.0])
