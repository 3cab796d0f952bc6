"""matmul with per-point vectors (the primitive's ``vec`` parameter): every combination of vector
and matrix operands, each batched or shared under vmap, nested vmaps and stacks, through values,
gradients, forward mode and second derivatives, against JAX."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp
from gpuad import primitives as P

from .helpers import oracle

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402

B = 4
# (name, shape of a, shape of b): per point.
PAIRS = [
    ("vec_mat", (3,), (3, 5)),
    ("mat_vec", (4, 3), (3,)),
    ("vec_vec", (3,), (3,)),
    ("vec_stack", (3,), (2, 3, 5)),
    ("stack_vec", (2, 4, 3), (3,)),
]


def f(ns):
    # A nonlinearity around the product, so that second derivatives involve the product's rules.
    return lambda a, b: ns.sum(ns.sin(ns.matmul(a, b)) * 1.5) + ns.sum(a * a)


def data(shape_a, shape_b, batched, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(((B,) if batched[0] else ()) + shape_a)
    b = rng.standard_normal(((B,) if batched[1] else ()) + shape_b)
    return a, b


CASES = [
    pytest.param(name, sa, sb, batched, id=f"{name}-{''.join('B' if x else 'S' for x in batched)}")
    for (name, sa, sb), batched in itertools.product(PAIRS, [(True, False), (False, True), (True, True)])
]


@pytest.mark.parametrize("name, sa, sb, batched", CASES)
def test_vmapped_products_and_derivatives_match_jax(name, sa, sb, batched):
    a, b = data(sa, sb, batched, len(name))
    axes = tuple(0 if x else None for x in batched)
    G, J = f(gnp), f(jnp)
    transforms = [
        (lambda g: g, lambda j: j),
        (lambda g: gpuad.grad(g, argnums=(0, 1)), lambda j: jax.grad(j, argnums=(0, 1))),
        (lambda g: gpuad.jacfwd(g, argnums=(0, 1)), lambda j: jax.jacfwd(j, argnums=(0, 1))),
        (lambda g: gpuad.hessian(g, argnums=(0, 1)), lambda j: jax.hessian(j, argnums=(0, 1))),
        (lambda g: gpuad.jacrev(gpuad.grad(g, argnums=1), argnums=0), lambda j: jax.jacrev(jax.grad(j, argnums=1), argnums=0)),
    ]
    # JAX's side of every transform, as one compiled program.
    wants = oracle(lambda a, b: [jax.vmap(theirs(J), in_axes=axes)(a, b) for _, theirs in transforms])(a, b)
    for (ours, _), want in zip(transforms, wants):
        got = gpuad.vmap(ours(G), in_axes=axes)(a, b)
        for g, w in zip(gpuad.tree_leaves(got), jax.tree_util.tree_leaves(want)):
            np.testing.assert_allclose(g, np.asarray(w), rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("name, sa, sb", [pytest.param(*p, id=p[0]) for p in PAIRS])
def test_nested_vmap_and_plain_batches(name, sa, sb):
    rng = np.random.default_rng(7)
    a = rng.standard_normal((2, B) + sa)
    b = rng.standard_normal((2, B) + sb)
    G, J = f(gnp), f(jnp)
    got = gpuad.vmap(gpuad.vmap(gpuad.grad(G, argnums=(0, 1))))(a, b)
    want = oracle(jax.vmap(jax.vmap(jax.grad(J, argnums=(0, 1)))))(a, b)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, np.asarray(w), rtol=1e-11, atol=1e-12)
    # Without vmap, on one point: NumPy's own matmul semantics.
    np.testing.assert_allclose(gnp.matmul(a[0, 0], b[0, 0]), np.matmul(a[0, 0], b[0, 0]), rtol=1e-14)


def test_vectors_take_no_reshape_and_plain_products_take_no_parameters():
    """A per-point vector goes to the primitive as it is (no reshape round trip, which costs an
    operation each way under every transform), and the product of matrices carries no parameters,
    so that the buffer pool and jit may write it with out=."""
    seen = []
    impl = P.matmul.impl

    def spy(xp, a, b, **params):
        seen.append(params)
        return impl(xp, a, b, **params)

    object.__setattr__(P.matmul, "impl", spy)
    try:
        tape = gpuad.make_tape(lambda x, w: gnp.matmul(x, w))(np.ones(3), np.ones((3, 2)))
        gnp.matmul(np.ones((2, 3)), np.ones((3, 2)))
    finally:
        object.__setattr__(P.matmul, "impl", impl)
    assert "reshape" not in str(tape) and "matmul" in str(tape)
    assert seen[-1] == {} and {"vec": (True, False)} in seen


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"matmul: shapes \(3,\) and \(4, 2\) do not align \(3 != 4\)"):
        gnp.matmul(np.ones(3), np.ones((4, 2)))
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(4,\) do not align \(3 != 4\)"):
        gnp.matmul(np.ones((2, 3)), np.ones(4))
