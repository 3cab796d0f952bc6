"""The transforms' JAX semantics: argnums, has_aux, pytrees, nesting, and the engine's promises
(iterative backward, memory released, thread safety)."""

from __future__ import annotations

import collections
import gc
import threading
import weakref

import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402


def f3(a, b, c):
    return gnp.sum(a * b) + gnp.sum(gnp.sin(c) * a[0])


def j3(a, b, c):
    return jnp.sum(a * b) + jnp.sum(jnp.sin(c) * a[0])


ARGS = (np.asarray([1.0, 2.0]), np.asarray([3.0, -1.0]), np.asarray([0.5, 0.25, 2.0]))


@pytest.mark.parametrize("argnums", [0, 1, 2, -1, (0, 2), (2, 0), (0, 1, 2), (-3, -2)])
def test_argnums_match_jax(argnums):
    got = gpuad.grad(f3, argnums=argnums)(*ARGS)
    want = jax.grad(j3, argnums=argnums)(*[jnp.asarray(a) for a in ARGS])
    if isinstance(argnums, int):
        got, want = (got,), (want,)
    assert isinstance(got, tuple) and len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-14)


def test_keyword_arguments_pass_through_undifferentiated():
    def f(x, *, scale, name):
        assert name == "label"  # non-array keywords reach the function untouched
        return gnp.sum(x * scale)

    g = gpuad.grad(f)(np.asarray([1.0, 2.0]), scale=np.asarray(3.0), name="label")
    np.testing.assert_array_equal(g, [3.0, 3.0])


def test_non_differentiated_arguments_may_be_anything():
    def f(x, label, n):
        assert label == "w" and n == 3
        return gnp.sum(x**n)

    np.testing.assert_allclose(gpuad.grad(f)(np.asarray([2.0]), "w", 3), [12.0])


def test_value_and_grad_with_aux():
    def f(x):
        y = gnp.sum(x * x)
        return y, {"norm": gnp.sqrt(y), "tag": "aux"}

    (value, aux), g = gpuad.value_and_grad(f, has_aux=True)(np.asarray([3.0, 4.0]))
    assert float(value) == 25.0 and float(aux["norm"]) == 5.0 and aux["tag"] == "aux"
    assert not isinstance(aux["norm"], gpuad.tracing.Tracer)  # aux comes back as plain arrays
    np.testing.assert_array_equal(g, [6.0, 8.0])
    g2, aux2 = gpuad.grad(f, has_aux=True)(np.asarray([3.0, 4.0]))
    np.testing.assert_array_equal(g2, g)
    assert float(aux2["norm"]) == 5.0


Params = collections.namedtuple("Params", ["w", "b"])


def test_pytree_inputs_match_jax():
    """dicts, lists, tuples and namedtuples of arrays, nested: the gradient has the same tree."""
    tree = {"layer": Params(w=np.asarray([[1.0, 2.0], [3.0, 4.0]]), b=np.asarray([0.5, -0.5])), "extra": [np.asarray(2.0), (np.asarray([1.0, 3.0]),)]}

    def loss(p, x, xp):
        h = xp.tanh(p["layer"].w @ x + p["layer"].b)
        return xp.sum(h * p["extra"][0]) + xp.sum(p["extra"][1][0] ** 2)

    x = np.asarray([0.3, -0.7])
    got = gpuad.grad(lambda p: loss(p, x, gnp))(tree)
    want = jax.grad(lambda p: loss(p, jnp.asarray(x), jnp))(jax.tree_util.tree_map(jnp.asarray, tree))
    assert isinstance(got["layer"], Params) and isinstance(got["extra"], list) and isinstance(got["extra"][1], tuple)
    for g, w in zip(gpuad.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        np.testing.assert_allclose(g, w, rtol=1e-13)


def test_vjp_multiple_outputs_and_repeated_calls():
    def f(x, y):
        return {"s": gnp.sin(x) * y, "p": x * y}, x + 1.0

    x, y = np.asarray([0.1, 0.2]), np.asarray([2.0, 3.0])
    out, pull = gpuad.vjp(f, x, y)
    jout, jpull = jax.vjp(lambda a, b: ({"s": jnp.sin(a) * b, "p": a * b}, a + 1.0), jnp.asarray(x), jnp.asarray(y))
    for ct in [({"s": np.ones(2), "p": np.zeros(2)}, np.ones(2)), ({"s": np.asarray([1.0, -2.0]), "p": np.ones(2)}, np.zeros(2))]:
        got = pull(ct)
        want = jpull(jax.tree_util.tree_map(jnp.asarray, ct))
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-14)


def test_jvp_has_aux():
    out, tan, aux = gpuad.jvp(lambda x: (x * x, x + 1.0), (np.asarray(3.0),), (np.asarray(1.0),), has_aux=True)
    assert (float(out), float(tan), float(aux)) == (9.0, 6.0, 4.0)


def test_jacrev_pytrees_match_jax():
    def f(a, b, xp):
        return {"u": xp.sin(a) * b[0], "v": xp.stack([a[0] * b[1], b[0]])}

    a, b = np.asarray([0.3, 0.4, 0.5]), np.asarray([2.0, -1.0])
    got = gpuad.jacrev(lambda a, b: f(a, b, gnp), argnums=(0, 1))(a, b)
    want = jax.jacrev(lambda a, b: f(a, b, jnp), argnums=(0, 1))(jnp.asarray(a), jnp.asarray(b))
    for k in ("u", "v"):
        for g, w in zip(got[k], want[k]):
            assert g.shape == w.shape
            np.testing.assert_allclose(g, w, rtol=1e-14)


def test_higher_order_derivatives():
    """grad of grad of grad of x^4 is 24 x; jvp over grad and grad over jvp agree."""
    x = np.asarray(1.5)
    d3 = gpuad.grad(gpuad.grad(gpuad.grad(lambda x: x**4)))(x)
    assert float(d3) == pytest.approx(24 * 1.5, rel=1e-15)
    _, fwd_over_rev = gpuad.jvp(gpuad.grad(lambda x: gnp.sin(x) * x), (x,), (np.asarray(1.0),))
    rev_over_fwd = gpuad.grad(lambda x: gpuad.jvp(lambda y: gnp.sin(y) * y, (x,), (np.asarray(1.0),))[1])(x)
    exact = 2 * np.cos(1.5) - 1.5 * np.sin(1.5)
    assert float(fwd_over_rev) == pytest.approx(exact, rel=1e-14)
    assert float(rev_over_fwd) == pytest.approx(exact, rel=1e-14)


def test_no_perturbation_confusion():
    """d/dx [x * d/dy (x + y)] = 1 for any x: the inner derivative must not see x as a variable
    (the classic test of Siskind and Pearlmutter), in reverse and forward mode."""

    def f(x):
        inner = gpuad.grad(lambda y: x + y)(np.asarray(1.0))
        return x * inner

    assert float(gpuad.grad(f)(np.asarray(3.0))) == 1.0

    def f_fwd(x):
        _, inner = gpuad.jvp(lambda y: x + y, (np.asarray(1.0),), (np.asarray(1.0),))
        return x * inner

    assert float(gpuad.jvp(f_fwd, (np.asarray(3.0),), (np.asarray(1.0),))[1]) == 1.0


def test_nested_closure_captures_outer_traced_value():
    """An inner gradient of a closure over an outer traced value: d/dx [d/dy (x*y^2)](y=2) = 2*2."""
    def outer(x):
        return gpuad.grad(lambda y: x * y * y)(np.asarray(2.0))

    assert float(gpuad.grad(outer)(np.asarray(5.0))) == 4.0
    want = jax.grad(lambda x: jax.grad(lambda y: x * y * y)(2.0))(5.0)
    assert float(gpuad.grad(outer)(np.asarray(5.0))) == float(want)


def test_python_float_inputs():
    g = gpuad.grad(lambda x: x * x)(3.0)
    assert float(g) == 6.0 and g.dtype == np.float64


def test_deep_chain_has_no_recursion_and_frees_the_tape():
    """100 000 chained operations differentiate (backward is a loop), and once grad returns the
    intermediate arrays are gone."""
    kept = []

    def f(x):
        for _ in range(50_000):
            x = x * 1.00001
            x = x - 1e-9
        kept.append(weakref.ref(x.primal))
        return gnp.sum(x)

    g = gpuad.grad(f)(np.ones(3))
    np.testing.assert_allclose(g, np.full(3, 1.00001**50_000), rtol=1e-9)
    gc.collect()
    assert kept[0]() is None


def test_backward_releases_records_as_it_goes():
    """With consume=True the sweep empties the tape while it runs."""
    from gpuad.reverse import ReverseTrace, backward
    from gpuad.tracing import open_trace
    import array_api_compat.numpy as xp

    with open_trace(ReverseTrace, xp, device="cpu") as trace:
        x = trace.new_input(np.ones(4))
        y = gnp.sum(gnp.exp(gnp.sin(x) * 2.0))
    assert len([r for r in trace.tape if r is not None]) == 4
    (g,) = backward(trace.tape, {y.node: np.asarray(1.0)}, [x.node], consume=True)
    assert all(r is None for r in trace.tape)
    np.testing.assert_allclose(g, np.exp(np.sin(1.0) * 2) * 2 * np.cos(1.0) * np.ones(4), rtol=1e-14)


def test_threads_do_not_see_each_other():
    """Two threads taking different gradients at the same time both get their own answers."""
    errors = []
    x = np.linspace(0.1, 1.0, 50)

    def worker(fun, expected):
        try:
            for _ in range(40):
                g = gpuad.grad(lambda v: gnp.sum(fun(v)))(x)
                np.testing.assert_allclose(g, expected, rtol=1e-14)
                h = gpuad.grad(gpuad.grad(lambda s: gnp.sum(fun(s * x))))(np.asarray(1.0))
                assert np.isfinite(h)
        except Exception as exc:  # reported to the main thread
            errors.append(exc)

    threads = [
        threading.Thread(target=worker, args=(gnp.sin, np.cos(x))),
        threading.Thread(target=worker, args=(gnp.exp, np.exp(x))),
        threading.Thread(target=worker, args=(lambda v: v**3, 3 * x**2)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_stop_gradient_in_both_modes():
    f = lambda x: gnp.stop_gradient(x * x) * x
    assert float(gpuad.grad(f)(np.asarray(3.0))) == 9.0
    assert float(gpuad.jvp(f, (np.asarray(3.0),), (np.asarray(1.0),))[1]) == 9.0
