"""gpuad.numpy.einsum beyond the spec rows (tests/spec.py, section "einsum", which hold every
transform against JAX): values over many random subscripts against numpy.einsum, derivatives
of random subscripts against JAX, the interleaved form, every error, the dtypes, the
``optimize`` paths, and that a contraction is one matrix product, also under vmap."""

from __future__ import annotations

import string

import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp
from gpuad import primitives as P

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
jnp = jax.numpy


# ---------------------------------------------------------------------------------------------
# Random subscripts: 1 to 3 operands, indices repeated within an operand (diagonals), summed
# indices named once, size-1 axes that broadcast, '...' with broadcast leading axes, implicit and
# explicit outputs.
# ---------------------------------------------------------------------------------------------

POOL = "abcdeAB"


def random_case(rng: np.random.Generator) -> tuple[str, list[np.ndarray]]:
    sizes = {c: int(rng.integers(1, 4)) for c in POOL}
    ellipsis = rng.random() < 0.3
    ell_shape = [int(d) for d in rng.integers(1, 4, size=int(rng.integers(0, 3)))]
    words, arrays = [], []
    for _ in range(int(rng.integers(1, 4))):
        labels = [str(c) for c in rng.choice(list(POOL), size=int(rng.integers(0, 5)))]
        shape = [sizes[c] for c in labels]
        for pos, c in enumerate(labels):  # an index named once here may have size 1 here
            if labels.count(c) == 1 and rng.random() < 0.15:
                shape[pos] = 1
        word = "".join(labels)
        if ellipsis:
            lead = ell_shape[len(ell_shape) - int(rng.integers(0, len(ell_shape) + 1)) :]
            lead = [1 if rng.random() < 0.2 else d for d in lead]
            cut = int(rng.integers(0, len(labels) + 1))
            word = word[:cut] + "..." + word[cut:]
            shape = shape[:cut] + lead + shape[cut:]
        words.append(word)
        arrays.append(rng.standard_normal(shape))
    subscripts = ",".join(words)
    if rng.random() < 0.6:
        named = sorted({c for w in words for c in w if c != "."})
        out = [str(c) for c in rng.permutation(named)[: int(rng.integers(0, len(named) + 1))]]
        if ellipsis:  # NumPy refuses an output without '...' when the operands have it
            out.insert(int(rng.integers(0, len(out) + 1)), "...")
        subscripts += "->" + "".join(out)
    return subscripts, arrays


CASES = [random_case(np.random.default_rng(seed)) for seed in range(400)]


def test_the_random_cases_cover_every_feature():
    """The generator really makes what the test below claims to check."""
    subs = [s for s, _ in CASES]
    assert any("->" not in s for s in subs) and any("->" in s for s in subs)
    assert any("..." in s for s in subs)
    assert any(len(arrays) == 3 for _, arrays in CASES) and any(len(arrays) == 1 for _, arrays in CASES)
    assert any(any(len(set(w)) < len(w) for w in s.split("->")[0].split(",") if "." not in w) for s in subs)
    assert any(
        any(1 in a.shape for a in arrays) and any(max(a.shape, default=1) > 1 for a in arrays) for _, arrays in CASES
    )


@pytest.mark.parametrize("case", range(len(CASES)))
def test_values_match_numpy_einsum(case):
    subscripts, arrays = CASES[case]
    want = np.einsum(subscripts, *arrays)
    got = gnp.einsum(subscripts, *arrays)
    assert isinstance(got, np.ndarray) or np.isscalar(got)
    assert np.shape(got) == want.shape, subscripts
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=subscripts)


@pytest.mark.parametrize("case", range(0, len(CASES), 8))
def test_cotangents_of_random_subscripts_match_jax(case):
    """vjp with a random cotangent: diagonals, dropped size-1 axes and sums send it back right."""
    subscripts, arrays = CASES[case]
    ct = np.random.default_rng(case).standard_normal(np.einsum(subscripts, *arrays).shape)
    out, back = gpuad.vjp(lambda *a: gnp.einsum(subscripts, *a), *arrays)
    j_out, j_back = jax.vjp(lambda *a: jnp.einsum(subscripts, *a), *arrays)
    np.testing.assert_allclose(out, j_out, rtol=1e-12, atol=1e-12)
    for mine, theirs in zip(back(ct), j_back(ct)):
        assert np.shape(mine) == np.shape(theirs)
        np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-12, err_msg=subscripts)


def test_per_point_hessian_of_a_quadratic_form():
    """vmap(hessian) through einsum: x^T A x has Hessian A + A^T at every point."""
    A = np.random.default_rng(1).standard_normal((3, 3))
    X = np.random.default_rng(2).standard_normal((7, 3))
    H = gpuad.vmap(gpuad.hessian(lambda x: gnp.einsum("i,ij,j", x, A, x)))(X)
    np.testing.assert_allclose(H, np.broadcast_to(A + A.T, (7, 3, 3)), rtol=1e-13)


# ---------------------------------------------------------------------------------------------
# Semantics that the random cases do not reach
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "subscripts, shapes",
    [
        ("...i->i", [(2, 3)]),  # JAX sums the '...' axes an explicit output leaves out (NumPy refuses)
        ("...i,...i->i", [(1, 3), (4, 3)]),
        ("i...->", [(3, 2)]),
        ("ij,jk", [(2, 0), (0, 3)]),  # empty contraction: zeros
        ("ii->i", [(0, 0)]),
        ("ij, jk -> ik", [(2, 3), (3, 4)]),  # spaces
    ],
)
def test_jax_semantics(subscripts, shapes):
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s) for s in shapes]
    want = np.asarray(jnp.einsum(subscripts, *arrays))
    got = gnp.einsum(subscripts, *arrays)
    assert np.shape(got) == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-13)


def test_implicit_output_is_ordered_by_character_code():
    a, b = np.ones((2, 3)), np.ones((3, 4))
    assert gnp.einsum("Ca,ab", a, b).shape == np.einsum("Ca,ab", a, b).shape == (2, 4)  # 'C' < 'b'
    assert gnp.einsum("bA,Ac", a, b).shape == np.einsum("bA,Ac", a, b).shape == (2, 4)


def test_interleaved_form():
    rng = np.random.default_rng(3)
    x, y, z = rng.standard_normal((2, 3)), rng.standard_normal((3, 4)), rng.standard_normal((5, 2, 3))
    np.testing.assert_allclose(gnp.einsum(x, [0, 1], y, [1, 2], [0, 2]), x @ y, rtol=1e-13)
    np.testing.assert_allclose(gnp.einsum(x, [0, 1], y, [1, 2]), np.einsum(x, [0, 1], y, [1, 2]), rtol=1e-13)
    np.testing.assert_allclose(gnp.einsum(y, [30, 1], x, [0, 30]), np.einsum(y, [30, 1], x, [0, 30]), rtol=1e-13)
    np.testing.assert_allclose(
        gnp.einsum(z, [Ellipsis, 1], [Ellipsis]), np.einsum(z, [Ellipsis, 1], [Ellipsis]), rtol=1e-13
    )
    g = gpuad.grad(lambda a: gnp.sum(gnp.einsum(a, [0, 1], y, [1, 2], [0, 2])))(x)
    np.testing.assert_allclose(g, np.broadcast_to(y.sum(axis=1), (2, 3)), rtol=1e-13)


def test_dtypes_follow_numpy():
    f32, f64 = np.ones((2, 3), np.float32), np.ones((3, 2), np.float64)
    assert gnp.einsum("ij,jk", f32, f32.T).dtype == np.float32
    assert gnp.einsum("ij,jk", f32, f64).dtype == np.float64
    i = np.arange(6, dtype=np.int64).reshape(2, 3)
    got = gnp.einsum("ij,kj->ik", i, i)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, np.einsum("ij,kj->ik", i, i))
    assert float(gnp.einsum(",->", 2.0, 3.0)) == 6.0


def test_a_copy_free_result_where_nothing_is_computed():
    x = np.ones((2, 3))
    assert gnp.einsum("ij", x) is x


@pytest.mark.parametrize(
    "optimize",
    [True, False, "greedy", "optimal", [(0, 1), (0, 1)], [(1, 2), (0, 1)], ["einsum_path", (0, 2), (0, 1)], [(1, 2)]],
)
def test_optimize_orders_give_the_same_values(optimize):
    rng = np.random.default_rng(4)
    a, b, c = rng.standard_normal((2, 3)), rng.standard_normal((3, 4)), rng.standard_normal((4, 5))
    got = gnp.einsum("ij,jk,kl->il", a, b, c, optimize=optimize)
    np.testing.assert_allclose(got, a @ b @ c, rtol=1e-13)


# ---------------------------------------------------------------------------------------------
# Errors: NumPy's (and JAX's) exception types, with messages that name the problem
# ---------------------------------------------------------------------------------------------

ERRORS = [
    # (subscripts, shapes, exception, words of the message, whether numpy.einsum raises it too)
    ("ij->i", [(2, 3), (3, 4)], ValueError, "name 1 operand\\(s\\) but 2 were given", True),
    ("ij,jk->ik", [(2, 3)], ValueError, "name 2 operand\\(s\\) but 1 were given", True),
    ("ijk->i", [(2, 3)], ValueError, "operand 0 has 2 dimension\\(s\\) .* name 3", True),
    ("i->i", [(2, 3)], ValueError, "operand 0 has 2 dimension\\(s\\) .* name 1; use '...'", True),
    ("ij,ij->i", [(2, 3), (3, 4)], ValueError, "index 'i' has size 3 in operand 1 .* but size 2", True),
    ("ii->i", [(2, 3)], ValueError, "index 'i' is repeated in operand 0 .* different sizes 2 and 3", True),
    ("...ij,...jk->...ik", [(5, 2, 3), (4, 3, 4)], ValueError, "'...' axis -1 has size 4 in operand 1", True),
    ("i1->i", [(2, 3)], ValueError, "invalid subscript '1' in the subscripts of operand 0", True),
    ("ij->i$", [(2, 3)], ValueError, "invalid subscript '\\$' in the output", True),
    ("ij->k", [(2, 3)], ValueError, "output subscript 'k' .* appears in no operand", True),
    ("ij->ii", [(2, 3)], ValueError, "output subscript 'i' appears more than once", True),
    ("ij->i->j", [(2, 3)], ValueError, "at most one '->'", True),
    ("ij-", [(2, 3)], ValueError, "at most one '->'", True),
    ("i.j->i", [(2, 3)], ValueError, "'.' that is not part of a single '...'", True),
    ("...i...->i", [(2, 3)], ValueError, "'.' that is not part of a single '...'", True),
    ("i->....", [(2,)], ValueError, "'.' that is not part of a single '...'", False),
]


@pytest.mark.parametrize("subscripts, shapes, exc, words, numpy_too", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors(subscripts, shapes, exc, words, numpy_too):
    arrays = [np.ones(s) for s in shapes]
    with pytest.raises(exc, match=words):
        gnp.einsum(subscripts, *arrays)
    if numpy_too:  # the same exception type as NumPy's
        with pytest.raises(exc):
            np.einsum(subscripts, *arrays)


def test_errors_of_the_call():
    x = np.ones((2, 3))
    with pytest.raises(ValueError, match="no operands given"):
        gnp.einsum("ij")
    with pytest.raises(TypeError, match="subscripts must be a string"):
        gnp.einsum(3, x)
    with pytest.raises(TypeError, match="must be an array"):
        gnp.einsum("i", None)
    with pytest.raises(TypeError, match="integers or Ellipsis, got 'a'"):
        gnp.einsum(x, ["a", 1])
    with pytest.raises(TypeError):
        np.einsum(x, ["a", 1])
    with pytest.raises(ValueError, match="subscript 52 of operand 0 is not in \\[0, 52\\)"):
        gnp.einsum(x, [52, 1])
    with pytest.raises(ValueError):
        np.einsum(x, [52, 1])
    with pytest.raises(TypeError, match="list of integers and Ellipsis"):
        gnp.einsum(x, "ij")
    with pytest.raises(ValueError, match="operand 1 has none"):
        gnp.einsum(x, [0, 1], x)


def test_errors_of_optimize():
    x = np.ones((2, 2))
    with pytest.raises(ValueError, match="'fastest' is not a known strategy"):
        gnp.einsum("ij,jk,kl", x, x, x, optimize="fastest")
    with pytest.raises(TypeError, match="optimize must be a bool, a strategy name or a path"):
        gnp.einsum("ij,jk", x, x, optimize=3)
    with pytest.raises(ValueError, match="step \\(0, 3\\) must name two different positions among the 3"):
        gnp.einsum("ij,jk,kl", x, x, x, optimize=[(0, 3), (0, 1)])
    with pytest.raises(ValueError, match="step \\(0, 1, 2\\) must name two"):
        gnp.einsum("ij,jk,kl", x, x, x, optimize=[(0, 1, 2)])
    with pytest.raises(ValueError, match="step 'x' must be a tuple of operand positions"):
        gnp.einsum("ij,jk", x, x, optimize=["x"])
    with pytest.raises(ValueError, match="step \\(0, 1\\) must name two different positions among the 1 operands"):
        gnp.einsum("ij,jk", x, x, optimize=[(0, 1), (0, 1)])


# ---------------------------------------------------------------------------------------------
# One matrix product per contraction, never elementwise products
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def applied():
    """Counts the applications of matmul and multiply (their impls, however they are reached)."""
    counts = {"matmul": 0, "multiply": 0}
    saved = {name: P.PRIMITIVES[name].impl for name in counts}

    def spy(name):
        def impl(xp, *arrays, **params):
            counts[name] += 1
            return saved[name](xp, *arrays, **params)

        return impl

    for name in counts:
        object.__setattr__(P.PRIMITIVES[name], "impl", spy(name))
    try:
        yield counts
    finally:
        for name, impl in saved.items():
            object.__setattr__(P.PRIMITIVES[name], "impl", impl)


RNG = np.random.default_rng(5)
L = RNG.standard_normal((5, 3, 3))
D = RNG.standard_normal((40, 5, 3))


def test_a_contraction_is_one_matmul(applied):
    out = gnp.einsum("krc,nkc->nkr", L, D)
    assert applied == {"matmul": 1, "multiply": 0}
    np.testing.assert_allclose(out, np.einsum("krc,nkc->nkr", L, D), rtol=1e-13)


def test_three_operands_are_two_matmuls(applied):
    gnp.einsum("ij,jk,kl->il", L[0], L[1], L[2])
    assert applied == {"matmul": 2, "multiply": 0}


def test_a_per_point_contraction_under_vmap_is_one_matmul(applied):
    """The batch axis leads: one product for all points, with a shared or a per-point L."""
    shared = gpuad.vmap(lambda d: gnp.einsum("krc,kc->kr", L, d))(D)
    assert applied == {"matmul": 1, "multiply": 0}
    per_point = gpuad.vmap(lambda l, d: gnp.einsum("krc,kc->kr", l, d))(np.broadcast_to(L, (40, 5, 3, 3)), D)
    assert applied == {"matmul": 2, "multiply": 0}
    np.testing.assert_allclose(shared, np.einsum("krc,nkc->nkr", L, D), rtol=1e-13)
    np.testing.assert_allclose(per_point, shared, rtol=1e-13)


def test_per_point_gradients_are_matmuls_too(applied):
    """Forward product and the two cotangents of vmap(grad): three matrix products."""
    f = gpuad.vmap(gpuad.grad(lambda l, d: gnp.sum(gnp.einsum("krc,kc->kr", l, d)), argnums=(0, 1)), in_axes=(None, 0))
    gl, gd = f(L, D)
    assert applied == {"matmul": 3, "multiply": 0}
    np.testing.assert_allclose(gd, np.einsum("krc->kc", L)[None].repeat(40, axis=0), rtol=1e-13)
    np.testing.assert_allclose(gl, np.broadcast_to(D[:, :, None, :], (40, 5, 3, 3)), rtol=1e-13)


def test_an_outer_product_is_one_multiply(applied):
    gnp.einsum("i,j->ij", L[0, 0], L[0, 1])
    assert applied == {"matmul": 0, "multiply": 1}


def test_jit_replays_einsum():
    f = gpuad.jit(lambda l, d: gnp.einsum("krc,nkc->nkr", l, d))
    np.testing.assert_allclose(f(L, D), np.einsum("krc,nkc->nkr", L, D), rtol=1e-13)
    np.testing.assert_allclose(f(L, 2 * D), 2 * np.einsum("krc,nkc->nkr", L, D), rtol=1e-13)


def test_every_letter_is_an_index():
    x = np.ones((1,) * 52)
    assert gnp.einsum(string.ascii_letters + "->", x) == 1.0
