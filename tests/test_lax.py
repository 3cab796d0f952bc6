"""gpuad.lax (scan, fori_loop, while_loop, cond, switch) against jax.lax (x64): values and every
transform over LSTM-style recurrences and smaller loops, the structure of what grad and jit record
(one line, one operation), and every error path."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp
from gpuad import lax

from .helpers import check

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402

B, I, H, T = 3, 2, 4, 6  # batch, input size, hidden size, steps

TIGHT = dict(rtol=1e-10, atol=1e-12)


def leaves(tree):
    return jax.tree_util.tree_leaves(tree)


def check_tree(got, want, **tol):
    got_l, want_l = leaves(got), leaves(want)
    assert len(got_l) == len(want_l)
    for a, b in zip(got_l, want_l):
        check(a, np.asarray(b), **(tol or TIGHT))


def lstm(np_, scan):
    """The seed notes' sigmoid/tanh cells, scanned over xs (T, B, I): a loss of the hidden states
    and the last cell state. ``np_`` and ``scan`` are gpuad's or JAX's."""

    def sig(z):
        return 1.0 / (1.0 + np_.exp(-z))

    def loss(params, xs, h0):
        wx, wh, b = params

        def cell(carry, x):
            h, c = carry
            z = x @ wx + h @ wh + b
            i, f, o, g = z[:, :H], z[:, H : 2 * H], z[:, 2 * H : 3 * H], z[:, 3 * H :]
            c = sig(f) * c + sig(i) * np_.tanh(g)
            h = sig(o) * np_.tanh(c)
            return (h, c), h

        (h, c), hs = scan(cell, (h0, np_.zeros_like(h0)), xs)
        return np_.sum(hs**2) + np_.sum(np_.sin(c))

    return loss


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(2026)
    params = (rng.normal(size=(I, 4 * H)) * 0.5, rng.normal(size=(H, 4 * H)) * 0.5, rng.normal(size=(4 * H,)) * 0.2)
    return params, rng.normal(size=(T, B, I)), rng.normal(size=(B, H)) * 0.3


OURS, THEIRS = lstm(gnp, lax.scan), lstm(jnp, jax.lax.scan)


def test_lstm_value_and_gradient_against_jax(data):
    params, xs, h0 = data
    check(OURS(params, xs, h0), THEIRS(params, xs, h0), **TIGHT)
    check_tree(gpuad.grad(OURS, argnums=(0, 1, 2))(params, xs, h0), jax.grad(THEIRS, argnums=(0, 1, 2))(params, xs, h0))


def test_lstm_on_every_backend(backend, data):
    params, xs, h0 = data
    p, x, h = tuple(backend.asarray(a) for a in params), backend.asarray(xs), backend.asarray(h0)
    want = jax.grad(THEIRS, argnums=(0, 1))(params, xs, h0)
    check_tree(gpuad.grad(OURS, argnums=(0, 1))(p, x, h), want)
    check_tree(gpuad.jit(gpuad.grad(OURS, argnums=(0, 1)))(p, x, h), want)


@pytest.mark.parametrize("transform", ["jit_grad", "jvp", "hvp", "grad_of_grad", "vmap_grad", "grad_vmap", "jacfwd", "jit_vmap_grad"])
def test_lstm_transforms_against_jax(data, transform):
    params, xs, h0 = data
    rng = np.random.default_rng(1)
    v = tuple(rng.normal(size=a.shape) for a in params)
    xs_n = rng.normal(size=(2, T, B, I))  # two sequences, for vmap
    if transform == "jit_grad":
        got, want = gpuad.jit(gpuad.grad(OURS))(params, xs, h0), jax.grad(THEIRS)(params, xs, h0)
    elif transform == "jvp":
        got = gpuad.jvp(lambda p: OURS(p, xs, h0), (params,), (v,))
        want = jax.jvp(lambda p: THEIRS(p, xs, h0), (params,), (v,))
    elif transform == "hvp":  # forward over reverse
        got = gpuad.jvp(lambda p: gpuad.grad(OURS)(p, xs, h0), (params,), (v,))[1]
        want = jax.jvp(lambda p: jax.grad(THEIRS)(p, xs, h0), (params,), (v,))[1]
    elif transform == "grad_of_grad":  # reverse over reverse
        got = gpuad.grad(lambda p: gnp.sum(gpuad.grad(OURS, argnums=1)(p, xs, h0) ** 2))(params)
        want = jax.grad(lambda p: jnp.sum(jax.grad(THEIRS, argnums=1)(p, xs, h0) ** 2))(params)
    elif transform == "vmap_grad":  # per-sequence gradients with shared parameters
        got = gpuad.vmap(gpuad.grad(OURS), in_axes=(None, 0, None))(params, xs_n, h0)
        want = jax.vmap(jax.grad(THEIRS), in_axes=(None, 0, None))(params, xs_n, h0)
    elif transform == "grad_vmap":
        got = gpuad.grad(lambda p: gnp.sum(gpuad.vmap(OURS, in_axes=(None, 0, None))(p, xs_n, h0)))(params)
        want = jax.grad(lambda p: jnp.sum(jax.vmap(THEIRS, in_axes=(None, 0, None))(p, xs_n, h0)))(params)
    elif transform == "jacfwd":
        got, want = gpuad.jacfwd(OURS, argnums=2)(params, xs, h0), jax.jacfwd(THEIRS, argnums=2)(params, xs, h0)
    else:
        got = gpuad.jit(gpuad.vmap(gpuad.grad(OURS), in_axes=(None, 0, None)))(params, xs_n, h0)
        want = jax.vmap(jax.grad(THEIRS), in_axes=(None, 0, None))(params, xs_n, h0)
    check_tree(got, want, rtol=1e-9, atol=1e-11)


def test_lstm_float32(data):
    params, xs, h0 = (tuple(a.astype(np.float32) for a in data[0]), data[1].astype(np.float32), data[2].astype(np.float32))
    got = gpuad.grad(OURS)(params, xs, h0)
    assert all(g.dtype == np.float32 for g in got)
    check_tree(got, jax.grad(THEIRS)(params, xs, h0), rtol=2e-4, atol=2e-5)


def test_checkpointed_body_recomputes_and_agrees(data, monkeypatch):
    params, xs, h0 = data
    ck = lstm(gnp, lambda f, init, xs: lax.scan(gpuad.checkpoint(f), init, xs))
    steps = []
    real = lax._VJPStep.__init__

    def spy(self, *args):
        real(self, *args)
        steps.append(self)

    monkeypatch.setattr(lax._VJPStep, "__init__", spy)
    check_tree(gpuad.grad(ck)(params, xs, h0), jax.grad(THEIRS)(params, xs, h0))
    gpuad.grad(OURS)(params, xs, h0)
    # The checkpointed loop stacks only its two carries (h, c) per step; the plain one also the
    # step's intermediates that the backward sweep reads.
    n_main = 3  # h, c, the ys
    stacked = [len(s.forward.outputs) - n_main for s in steps]
    assert stacked[0] == 2 and stacked[-1] > 6, stacked


def test_grad_records_one_tape_line_and_jit_one_operation(data, monkeypatch):
    params, xs, h0 = data
    tape = gpuad.make_tape(lambda x: OURS(params, x, h0))(xs)
    assert [op.prim for op in tape.operations].count("scan") == 1
    assert len(tape.operations) < 12  # the loop's T steps are not unrolled onto the tape
    # jit: the recording holds the loops as single operations, whatever the number of steps.
    jit_module = importlib.import_module("gpuad.jit")  # (gpuad.jit is the function)

    sizes = []
    real = jit_module._Compiled.__init__

    def spy(self, xp, program, *rest, **kw):
        sizes.append(len(program))
        real(self, xp, program, *rest, **kw)

    monkeypatch.setattr(jit_module._Compiled, "__init__", spy)
    grad = gpuad.grad(OURS, argnums=1)
    gpuad.jit(grad)(params, xs, h0)
    gpuad.jit(grad)(params, np.concatenate([xs] * 5), h0)
    # The same programs (the loops' bodies and jit's own) for 6 and for 30 steps, each a few dozen operations.
    half = len(sizes) // 2
    assert sizes[:half] == sizes[half:] and max(sizes) < 40, sizes


def scan_cases():
    """(name, gpuad function, JAX function, inputs): small loops over pytrees and corner cases."""
    x3 = np.asarray([0.3, -1.2, 0.8])

    def pytree(np_, scan):
        def f(x):
            init = {"a": x[0], "n": np_.asarray(0)}
            xs = (x, np_.stack([x, x * 2.0], axis=1))

            def body(c, inp):
                u, w = inp
                c = {"a": c["a"] * np_.cos(u) + np_.sum(w), "n": c["n"] + 1}
                return c, {"y": c["a"] * u, "z": None}

            c, ys = scan(body, init, xs)
            return c["a"] * c["n"] + np_.sum(ys["y"])

        return f

    def no_xs(np_, scan):
        return lambda x: scan(lambda c, _: (np_.sin(c) * 1.5, None), x, None, length=4)[0]

    def reverse_ys(np_, scan):
        return lambda x: np_.sum(scan(lambda c, u: (c + u, c * u), x[0], x, reverse=True)[1] ** 2)

    def empty(np_, scan):
        return lambda x: scan(lambda c, u: (c * u, c), x[0], x[:0])[0] + np_.sum(x)

    def closure_only(np_, scan):  # the differentiated value enters only through the closure
        return lambda x: scan(lambda c, u: (c + np_.sum(x * u), None), np_.asarray(0.0), np_.stack([x, x]))[0]

    def nested(np_, scan):
        def f(x):
            def outer(c, row):
                c2, _ = scan(lambda a, y: (a * y + c, None), c, row)
                return c2, c2

            return scan(outer, x[0], np_.stack([x, x * 0.5]))[0]

        return f

    def carry_constant(np_, scan):  # a carry the body resets to a constant, and a counter
        return lambda x: np_.sum(scan(lambda c, u: ((np_.asarray(1.0), c[1] * u), c[1]), (x[0], x[1]), x)[1])

    return [
        ("pytree", pytree, x3), ("no_xs", no_xs, x3[:1].reshape(())), ("reverse", reverse_ys, x3),
        ("empty", empty, x3), ("closure", closure_only, x3), ("nested", nested, x3), ("carry_constant", carry_constant, x3),
    ]


@pytest.mark.parametrize("name,make,x", scan_cases(), ids=[c[0] for c in scan_cases()])
def test_scan_cases_against_jax(name, make, x):
    ours, theirs = make(gnp, lax.scan), make(jnp, jax.lax.scan)
    check(ours(x), theirs(x), **TIGHT)
    check(gpuad.grad(ours)(x), jax.grad(theirs)(x), **TIGHT)
    check(gpuad.jit(gpuad.grad(ours))(x), jax.grad(theirs)(x), **TIGHT)
    t = np.ones_like(x)
    check_tree(gpuad.jvp(ours, (x,), (t,)), jax.jvp(theirs, (x,), (t,)))
    X = np.stack([x, x * 0.7 + 0.1])
    check(gpuad.vmap(gpuad.grad(ours))(X), jax.vmap(jax.grad(theirs))(X), **TIGHT)
    check(gpuad.hessian(ours)(x), jax.hessian(theirs)(x), rtol=1e-9, atol=1e-11)


def test_scan_results_keep_shapes_dtypes_and_structure():
    carry, ys = lax.scan(lambda c, x: ((c[0] + 1, c[1] * x), {"p": x, "q": None}), (np.asarray(0), np.float32(1.0)), np.arange(1.0, 4.0, dtype=np.float32))
    assert carry[0].dtype == np.asarray(0).dtype and int(carry[0]) == 3
    assert carry[1].dtype == np.float32 and float(carry[1]) == 6.0
    assert set(ys) == {"p", "q"} and ys["q"] is None and ys["p"].shape == (3,)
    c, ys = lax.scan(lambda c, x: (c, None), np.zeros(2), np.zeros((0, 5)))
    assert ys is None and c.shape == (2,)


def test_scan_vmap_batches_carry_made_batched_by_body():
    # init is shared; the per-point xs make the carry per point after one step.
    f = lambda w, xs: lax.scan(lambda c, x: (c * w + x, c), np.asarray(1.0), xs)  # noqa: E731
    fj = lambda w, xs: jax.lax.scan(lambda c, x: (c * w + x, c), 1.0, xs)  # noqa: E731
    W, XS = np.asarray([0.5, 2.0]), np.arange(6.0).reshape(2, 3)
    check_tree(gpuad.vmap(f)(W, XS), jax.vmap(fj)(W, XS))
    check_tree(gpuad.vmap(f, in_axes=(0, None))(W, XS[0]), jax.vmap(fj, in_axes=(0, None))(W, XS[0]))


def test_custom_rules_inside_a_body_apply():
    @gpuad.custom_vjp
    def clipped(x):
        return x

    clipped.defvjp(lambda x: (x, None), lambda _, g: (gnp.clip(g, -1.0, 1.0),))

    @jax.custom_vjp
    def clipped_j(x):
        return x

    clipped_j.defvjp(lambda x: (x, None), lambda _, g: (jnp.clip(g, -1.0, 1.0),))
    f = lambda x: lax.scan(lambda c, u: (clipped(c * u) * 3.0, None), np.asarray(1.0), x)[0]  # noqa: E731
    fj = lambda x: jax.lax.scan(lambda c, u: (clipped_j(c * u) * 3.0, None), 1.0, x)[0]  # noqa: E731
    x = np.asarray([2.0, 2.0, 0.1])
    # Each step's cotangent (3 times the next one) is clipped to 1: without the rule it would be 3 * 3 * 2 ...
    check(gpuad.grad(f)(x), jax.grad(fj)(x), **TIGHT)
    check(gpuad.jit(gpuad.grad(f))(x), jax.grad(fj)(x), **TIGHT)
    plain = lambda x: lax.scan(lambda c, u: (c * u * 3.0, None), np.asarray(1.0), x)[0]  # noqa: E731
    assert not np.allclose(gpuad.grad(f)(x), gpuad.grad(plain)(x))  # the rule made a difference


def test_fori_loop_against_jax():
    f = lambda x: lax.fori_loop(1, 5, lambda i, v: v * x + gnp.sin(v) * i, x)  # noqa: E731
    fj = lambda x: jax.lax.fori_loop(1, 5, lambda i, v: v * x + jnp.sin(v) * i, x)  # noqa: E731
    x = np.asarray(0.7)
    check(f(x), fj(x), **TIGHT)
    check(gpuad.grad(f)(x), jax.grad(fj)(x), **TIGHT)
    check(gpuad.jit(gpuad.grad(f))(x), jax.grad(fj)(x), **TIGHT)
    check(lax.fori_loop(np.asarray(2), np.asarray(4), lambda i, v: v + i, np.asarray(0)), 5)  # array bounds
    check(lax.fori_loop(5, 2, lambda i, v: v + 1.0, np.asarray(0.0)), 0.0)  # no steps
    # bounds traced by jit: a while_loop, forward mode
    g = gpuad.jit(lambda x, n: lax.fori_loop(0, n, lambda i, v: v * x, x))
    check(g(np.asarray(1.5), np.asarray(3)), 1.5**4, **TIGHT)
    check(gpuad.jit(gpuad.jacfwd(lambda x, n: lax.fori_loop(0, n, lambda i, v: v * x, x)))(np.asarray(1.5), np.asarray(3)), 4 * 1.5**3, **TIGHT)


def whiles():
    def count(np_, wl):  # a counter and a product: forward mode through the product
        return lambda x: wl(lambda v: v[0] < 6, lambda v: (v[0] + 1, v[1] * x + 0.1), (np_.asarray(0), x))[1]

    def grow(np_, wl):  # the number of steps depends on the value: per point under vmap
        return lambda x: wl(lambda v: v < 10.0, lambda v: v * 2.0 + 0.5, x)

    return [("count", count), ("grow", grow)]


@pytest.mark.parametrize("name,make", whiles(), ids=[w[0] for w in whiles()])
def test_while_loop_against_jax(name, make):
    ours, theirs = make(gnp, lax.while_loop), make(jnp, jax.lax.while_loop)
    x = np.asarray(1.1)
    check(ours(x), theirs(x), **TIGHT)
    check_tree(gpuad.jvp(ours, (x,), (np.asarray(1.0),)), jax.jvp(theirs, (x,), (1.0,)))
    X = np.asarray([1.1, 3.0, 0.2, 12.0])
    check(gpuad.vmap(ours)(X), jax.vmap(theirs)(X), **TIGHT)
    check(gpuad.vmap(gpuad.jacfwd(ours))(X), jax.vmap(jax.jacfwd(theirs))(X), **TIGHT)
    check(gpuad.jit(gpuad.vmap(ours))(X), jax.vmap(theirs)(X), **TIGHT)
    check(gpuad.jacfwd(gpuad.vmap(ours))(X), jax.jacfwd(jax.vmap(theirs))(X), **TIGHT)


def test_while_loop_refuses_reverse_mode_but_not_constants():
    f = lambda x: lax.while_loop(lambda v: v < 3.0, lambda v: v + x, x)  # noqa: E731
    with pytest.raises(TypeError, match="reverse-mode differentiation.*while_loop.*scan or fori_loop"):
        gpuad.grad(f)(np.asarray(1.0))
    # A loop that does not depend on the differentiated value is a constant to grad.
    g = gpuad.grad(lambda x: x * lax.while_loop(lambda v: v < 3.0, lambda v: v + 1.0, np.asarray(0.5)))(np.asarray(2.0))
    check(g, 3.5)


def test_cond_and_switch_against_jax():
    def c(np_, cond):
        return lambda x: cond(x > 0.5, lambda v: np_.sin(v) * v, lambda v: v**3, x)

    def s(np_, switch):
        return lambda i, x: switch(i, [lambda v: v + 1.0, lambda v: np_.exp(v), lambda v: v * v], x)

    ours, theirs = c(gnp, lax.cond), c(jnp, jax.lax.cond)
    X = np.asarray([-0.3, 0.9, 2.0])
    for x in X:
        check(ours(np.asarray(x)), theirs(x), **TIGHT)
        check(gpuad.grad(ours)(np.asarray(x)), jax.grad(theirs)(x), **TIGHT)
    check(gpuad.vmap(gpuad.grad(ours))(X), jax.vmap(jax.grad(theirs))(X), **TIGHT)
    check(gpuad.jit(gpuad.vmap(ours))(X), jax.vmap(theirs)(X), **TIGHT)
    so, st = s(gnp, lax.switch), s(jnp, jax.lax.switch)
    idx = np.asarray([-1, 0, 1, 2, 9])
    Xs = np.linspace(0.1, 0.9, 5)
    check(gpuad.vmap(gpuad.grad(so, argnums=1))(idx, Xs), jax.vmap(jax.grad(st, argnums=1))(idx, Xs), **TIGHT)
    check(gpuad.jit(so)(np.asarray(1), np.asarray(0.3)), st(1, 0.3), **TIGHT)
    check(so(7, np.asarray(0.3)), st(7, 0.3), **TIGHT)


def test_cond_inside_scan_body_selects_per_step():
    def body(np_, cond):
        def f(c, x):
            c = cond(c > 1.0, lambda v: v * 0.5, lambda v: v + x, c)
            return c, c

        return f

    xs = np.asarray([0.7, 0.7, 0.7, 0.7, 0.2])
    ours = lambda xs: lax.scan(body(gnp, lax.cond), np.asarray(0.0), xs)[1]  # noqa: E731
    theirs = lambda xs: jax.lax.scan(body(jnp, jax.lax.cond), 0.0, xs)[1]  # noqa: E731
    check(ours(xs), theirs(xs), **TIGHT)
    check(gpuad.jacrev(ours)(xs), jax.jacrev(theirs)(xs), **TIGHT)


BAD_SCANS = [
    (lambda: lax.scan(3, 0.0, np.zeros(2)), TypeError, "f must be a function"),
    (lambda: lax.scan(lambda c, x: (c, x), 0.0, np.asarray(1.0)), ValueError, "xs leaf 0 is 0-d"),
    (lambda: lax.scan(lambda c, x: (c, x), 0.0, (np.zeros(2), np.zeros(3))), ValueError, "different leading axis sizes"),
    (lambda: lax.scan(lambda c, x: (c, x), 0.0, np.zeros(2), length=3), ValueError, "length=3 but xs have leading axis size 2"),
    (lambda: lax.scan(lambda c, x: (c, x), 0.0, None, length=-1), ValueError, "length must be >= 0"),
    (lambda: lax.scan(lambda c, x: (c, x), 0.0), ValueError, "no xs.*and no length"),
    (lambda: lax.scan(lambda c, x: c, 0.0, np.zeros(2)), TypeError, "must return a pair"),
    (lambda: lax.scan(lambda c, x: ((c, c), x), 0.0, np.zeros(2)), TypeError, "carry of structure"),
    (lambda: lax.scan(lambda c, x: (gnp.stack([c, c]), x), 0.0, np.zeros(2)), TypeError, r"carry leaf 0 enters f as float64\[\] but f returns float64\[2\]"),
    (lambda: lax.scan(lambda c, x: (c, x), 0.0, np.zeros(2), unroll=0), ValueError, "unroll must be a positive int"),
    (lambda: lax.scan(lambda c, x: (c, x), "zero", np.zeros(2)), TypeError, "init leaf 0 must be an array"),
    (lambda: lax.scan(lambda c, x: (c, "y"), 0.0, np.zeros(2)), TypeError, "y f returned must be an array"),
    (lambda: lax.scan(lambda c, x: (c + 1 if c > 0 else c, x), 0.0, np.zeros(2)), gpuad.ConcretizationError, "loop body.*Use gpuad.lax.cond"),
    (lambda: gpuad.jit(lambda x: x if x > 0 else -x)(np.asarray(1.0)), gpuad.ConcretizationError, "jit: a Python truth test.*gpuad.lax.cond"),
]


@pytest.mark.parametrize("call,exc,match", BAD_SCANS)
def test_scan_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_scan_carry_dtype_error_names_the_fix():
    # A float32 carry promoted to float64 by the body: the message says how to keep the carry's dtype.
    with pytest.raises(TypeError, match="astype"):
        lax.scan(lambda c, x: (c * x, None), np.zeros((), np.float32), np.zeros(2))


BAD_OTHERS = [
    (lambda: lax.fori_loop(0, 3, None, 0.0), TypeError, "body_fun must be a function"),
    (lambda: gpuad.jit(lambda n: lax.fori_loop(0.5, n, lambda i, v: v, 0.0))(np.asarray(2)), TypeError, "lower must be an int"),
    (lambda: lax.while_loop(None, lambda v: v, 0.0), TypeError, "cond_fun and body_fun must be functions"),
    (lambda: lax.while_loop(lambda v: v, lambda v: v, np.asarray(1.0)), TypeError, "cond_fun must return a boolean scalar"),
    (lambda: lax.while_loop(lambda v: v < 1, lambda v: (v, v), np.asarray(0.0)), TypeError, "body_fun returned a value of structure"),
    (lambda: lax.while_loop(lambda v: v < 1, lambda v: gnp.stack([v, v]), np.asarray(0.0)), TypeError, "must keep its shape and dtype"),
    (lambda: lax.cond(True, None, lambda: 0.0), TypeError, "true_fun and false_fun must be functions"),
    (lambda: lax.cond(np.asarray([True, False]), lambda: 1.0, lambda: 0.0), TypeError, "pred must be a scalar"),
    (lambda: gpuad.vmap(lambda p: lax.cond(p, lambda: gnp.zeros(2), lambda: gnp.zeros(3)))(np.asarray([True])), TypeError, r"output leaf 0 is float64\[2\] in true_fun but float64\[3\] in false_fun"),
    (lambda: gpuad.vmap(lambda p: lax.cond(p, lambda: (gnp.zeros(2),), lambda: gnp.zeros(2)))(np.asarray([True])), TypeError, "structure"),
    (lambda: lax.switch(0, [], 1.0), TypeError, "non-empty sequence of functions"),
    (lambda: lax.switch(0.5, [lambda v: v], 1.0), TypeError, "index must be an integer scalar"),
]


@pytest.mark.parametrize("call,exc,match", BAD_OTHERS)
def test_loop_and_branch_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_a_custom_function_closing_over_a_traced_value_inside_a_body_is_refused():
    def f(w):
        @gpuad.custom_jvp
        def scaled(c):
            return c * w  # w: a value grad is differentiating, reached through a closure

        scaled.defjvp(lambda p, t: (scaled(p[0]), t[0] * w))
        return lax.scan(lambda c, x: (scaled(c) + x, None), np.asarray(1.0), np.ones(3))[0]

    with pytest.raises(TypeError, match="through a closure; pass that value"):
        gpuad.grad(f)(np.asarray(2.0))


def test_linearize_and_vjp_through_scan(data):
    params, xs, h0 = data
    v = np.random.default_rng(3).normal(size=xs.shape)
    out, f_jvp = gpuad.linearize(lambda x: OURS(params, x, h0), xs)
    want_out, want_t = jax.jvp(lambda x: THEIRS(params, x, h0), (xs,), (v,))
    check(out, want_out, **TIGHT)
    check(f_jvp(v), want_t, **TIGHT)
    out, pullback = gpuad.vjp(lambda h: OURS(params, xs, h), h0)
    check(pullback(np.asarray(2.0))[0], 2.0 * jax.grad(THEIRS, argnums=2)(params, xs, h0), **TIGHT)
