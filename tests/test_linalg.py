"""gpuad.numpy.linalg beyond the spec table: the singular points of a batch (README, "Singular
points in a batch"), the edges where derivatives blow up or are undefined (against JAX), wide QR
(against finite differences: JAX has no rule), and every error path."""

from __future__ import annotations

import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp
from gpuad.testing import check_grads

from .spec import sample_matrices

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402

la = gnp.linalg

# ---------------------------------------------------------------------------------------------
# Singular points in a batch: NaN there, the other points exactly as in an all-regular batch
# ---------------------------------------------------------------------------------------------

N = 1000
BAD = (417,)
SINGULAR = np.asarray([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]])  # row 2 = 2 row 1
B_VEC = np.asarray([1.0, -2.0, 0.5])


def _batches(bad=BAD):
    """N well-conditioned 3x3 matrices, and the same batch with the points ``bad`` made exactly
    singular."""
    regular = sample_matrices(np.random.default_rng(23), (N, 3, 3), "invertible")
    broken = regular.copy()
    broken[list(bad)] = SINGULAR
    return regular, broken


# Per-point functions: their values and gradients under vmap.
SINGULAR_CASES = {
    "inv": lambda xp, a: xp.sum(xp.linalg.inv(a) * xp.asarray([[1.0, 2.0, 3.0]] * 3)),
    "solve": lambda xp, a: xp.sum(xp.linalg.solve(a, xp.asarray(B_VEC.tolist())) ** 2),
    "det": lambda xp, a: xp.linalg.det(a),
    "slogdet": lambda xp, a: xp.linalg.slogdet(a).logabsdet,
}


def _keep(x, bad=BAD):
    return np.delete(gpuad.to_numpy(x), list(bad), axis=0)


@pytest.mark.parametrize("name", sorted(SINGULAR_CASES))
def test_a_singular_point_leaves_the_others_exact(name, backend):
    """One exactly singular matrix among 1,000: the others' values and gradients equal, to the
    last bit, those of the batch without it (NumPy's inv and solve raise for the whole batch)."""
    regular, broken = _batches()
    f = lambda a: SINGULAR_CASES[name](gnp, a)  # noqa: E731
    for fn in (gpuad.vmap(f), gpuad.vmap(gpuad.grad(f))):
        got, want = fn(backend.asarray(broken)), fn(backend.asarray(regular))
        np.testing.assert_array_equal(_keep(got), _keep(want))


def test_the_singular_point_gets_nan_and_jax_gives_no_finite_number_there():
    """At the singular point: inv and solve give NaN (JAX: inf and NaN as its LU meets the zero
    pivot); det is 0 and slogdet (0, -inf), as in JAX; their gradients are NaN (JAX's gradient of
    det there is the adjugate: README)."""
    _, broken = _batches()
    i = BAD[0]
    inv = gpuad.to_numpy(la.inv(broken))[i]
    assert np.isnan(inv).all() and not np.isfinite(np.asarray(jnp.linalg.inv(SINGULAR))).any()
    sol = gpuad.to_numpy(la.solve(broken, B_VEC))[i]
    assert np.isnan(sol).all() and not np.isfinite(np.asarray(jnp.linalg.solve(SINGULAR, B_VEC))).any()
    assert gpuad.to_numpy(la.det(broken))[i] == 0.0 == float(jnp.linalg.det(SINGULAR))
    sign, logabsdet = la.slogdet(broken)
    assert sign[i] == 0.0 and logabsdet[i] == -np.inf
    assert np.flatnonzero(sign == 0).tolist() == list(BAD)  # how to find the singular points
    for name in ("inv", "solve", "det", "slogdet"):
        g = gpuad.vmap(gpuad.grad(lambda a: SINGULAR_CASES[name](gnp, a)))(broken)[i]
        assert np.isnan(g).all(), name
    adjugate = np.asarray(jax.grad(jnp.linalg.det)(SINGULAR))
    assert np.isfinite(adjugate).all() and np.abs(adjugate).max() > 0  # JAX's, documented


def test_several_singular_points_and_a_lone_singular_matrix():
    """The batch is halved until each refused point stands alone: three of them anywhere (the
    first and last points too) get NaN, the rest exact; one singular matrix alone gives NaN
    rather than an error."""
    bad = (0, 511, N - 1)
    regular, broken = _batches(bad)
    got, want = la.inv(broken), la.inv(regular)
    np.testing.assert_array_equal(_keep(got, bad), _keep(want, bad))
    assert np.isnan(got[list(bad)]).all()
    assert np.isnan(la.inv(SINGULAR)).all()
    stacked = la.solve(broken.reshape(10, 100, 3, 3), np.ones((100, 3, 2)))  # broadcast leading axes
    assert stacked.shape == (10, 100, 3, 2)
    assert np.isnan(stacked.reshape(N, 3, 2)[list(bad)]).all()


def test_cholesky_of_a_matrix_that_is_not_positive_definite_is_jax_s_nan():
    regular = sample_matrices(np.random.default_rng(5), (N, 3, 3), "spd")
    broken = regular.copy()
    broken[7] = -np.eye(3)
    broken[800] = np.diag([1.0, -1.0, 1.0])
    got, want = la.cholesky(broken), la.cholesky(regular)
    np.testing.assert_array_equal(_keep(got, (7, 800)), _keep(want, (7, 800)))
    for i in (7, 800):
        np.testing.assert_array_equal(got[i], np.asarray(jnp.linalg.cholesky(broken[i])))  # NaN below, 0 above
    f = lambda s: gnp.sum(gnp.linalg.cholesky(s) ** 2)  # noqa: E731
    g, g_reg = gpuad.vmap(gpuad.grad(f))(broken), gpuad.vmap(gpuad.grad(f))(regular)
    np.testing.assert_array_equal(_keep(g, (7, 800)), _keep(g_reg, (7, 800)))
    assert np.isnan(g[[7, 800]]).all()


# ---------------------------------------------------------------------------------------------
# Edges, against JAX
# ---------------------------------------------------------------------------------------------


def _rotated(values, seed=0):
    q = np.linalg.qr(np.random.default_rng(seed).standard_normal((len(values),) * 2))[0]
    return (q * np.asarray(values)) @ q.T


def _both(f, *xs, **tol):
    """Value, gradient and a JVP of the scalar f on gpuad and JAX agree within ``tol``."""
    tol = tol or dict(rtol=1e-10, atol=1e-12)
    argnums = tuple(range(len(xs)))
    got = gpuad.value_and_grad(lambda *a: f(gnp, *a), argnums=argnums)(*xs)
    want = jax.value_and_grad(lambda *a: f(jnp, *a), argnums=argnums)(*xs)
    np.testing.assert_allclose(got[0], want[0], **tol)
    for g, w in zip(got[1], want[1]):
        np.testing.assert_allclose(g, w, **tol)
    ts = [np.random.default_rng(9).standard_normal(np.shape(x)) for x in xs]
    _, jt = gpuad.jvp(lambda *a: f(gnp, *a), list(xs), ts)
    _, jt_want = jax.jvp(lambda *a: f(jnp, *a), tuple(xs), tuple(ts))
    np.testing.assert_allclose(jt, jt_want, **tol)


def test_near_singular_matrices_match_jax():
    """Condition number 1e8: derivatives of order 1e16, equal to JAX's to the precision that
    such a matrix leaves."""
    a = _rotated([1.0, 0.5, 1e-8])
    _both(lambda xp, m: xp.sum(xp.linalg.inv(m) * xp.asarray([[1.0, 2.0, 3.0]] * 3)), a, rtol=1e-6)
    _both(lambda xp, m: xp.linalg.slogdet(m).logabsdet, a, rtol=1e-6)
    _both(lambda xp, m: xp.sum(xp.linalg.solve(m, xp.asarray([1.0, 2.0, 3.0]))), a, rtol=1e-6)


def test_nearly_repeated_eigenvalues_match_jax():
    """Eigenvalues 1e-6 apart: the eigenvectors' derivative is of order 1e6, as JAX's."""
    a = _rotated([1.0, 1.0 + 1e-6, 3.0], seed=1)
    _both(lambda xp, m: xp.sum(xp.linalg.eigh(m).eigenvectors ** 2 * xp.asarray([1.0, 2.0, 3.0])), a, rtol=1e-5, atol=1e-6)
    _both(lambda xp, m: xp.sum(xp.linalg.eigvalsh(m) * xp.asarray([1.0, 2.0, 3.0])), a)


def test_repeated_eigenvalues_and_singular_values_are_jax_s():
    """At equal eigenvalues (singular values) the eigenvectors' derivative is NaN in both
    libraries, while the values' derivatives stay finite and equal JAX's, in both modes."""
    a = np.diag([1.0, 1.0, 2.0])
    weights = lambda xp: xp.asarray([1.0, 2.0, 3.0])  # noqa: E731
    # Forward mode computes the unused eigenvectors' tangent, inf * 0 there (as JAX): NumPy warns.
    np_errors = np.seterr(divide="ignore", invalid="ignore")
    try:
        _check_repeated(a, weights)
    finally:
        np.seterr(**np_errors)


def _check_repeated(a, weights):
    _both(lambda xp, m: xp.sum(xp.linalg.eigvalsh(m) * weights(xp)), a)
    _both(lambda xp, m: xp.sum(xp.linalg.eigh(m).eigenvalues * weights(xp)), a)
    _both(lambda xp, m: xp.sum(xp.linalg.svdvals(m) * weights(xp)), np.eye(3))
    _both(lambda xp, m: xp.linalg.matrix_norm(m, ord="nuc"), _rotated([1.0, 1.0, 1.0]))
    _both(lambda xp, m: xp.sum(xp.linalg.svdvals(m)), np.asarray([[1.0, 0.0], [0.0, 0.0], [0.0, 0.0]]))  # rank 1 of 2
    vec = lambda xp, m: xp.sum(xp.linalg.eigh(m).eigenvectors ** 2 * weights(xp))  # noqa: E731
    got = gpuad.grad(lambda m: vec(gnp, m))(a)
    assert np.isnan(got).all() and np.isnan(np.asarray(jax.grad(lambda m: vec(jnp, m))(a))).all()


@pytest.mark.parametrize("scale", [1e-150, 1e150])
def test_large_and_small_scales_match_jax(scale):
    """Matrices scaled by 1e+-150: det over- or underflows (in both libraries alike), slogdet,
    inv and solve do not."""
    a = sample_matrices(np.random.default_rng(3), (3, 3), "invertible") * scale
    _both(lambda xp, m: xp.linalg.slogdet(m).logabsdet, a)
    _both(lambda xp, m: xp.sum(xp.linalg.inv(m)) * scale, a)
    _both(lambda xp, m: xp.sum(xp.linalg.solve(m, xp.asarray([1.0, 2.0, 3.0]) * scale)), a)
    _both(lambda xp, m: xp.linalg.matrix_norm(m, ord=2) / scale, a)
    # det overflows to inf (underflows to 0) in both; the sign of an overflow is each library's
    # (NumPy: +inf here, JAX: -inf): slogdet's sign is the answer, equal in both.
    with np.errstate(over="ignore"):
        assert np.abs(la.det(a)) == np.abs(float(jnp.linalg.det(a))) == (np.inf if scale > 1 else 0.0)
    assert la.slogdet(a).sign == float(jnp.linalg.slogdet(a).sign)


def test_wide_qr_against_finite_differences():
    """A wide matrix's QR (JAX refuses its derivative) is the QR of its first m columns: both
    modes and the second order agree with finite differences, and the factors with NumPy's."""
    a = sample_matrices(np.random.default_rng(4), (4, 2, 4), "spectrum")
    q, r = la.qr(a)
    q_np, r_np = np.linalg.qr(a)
    np.testing.assert_allclose(q, q_np, atol=1e-14)
    np.testing.assert_allclose(r, r_np, atol=1e-14)

    def f(m):
        q, r = gnp.linalg.qr(m)
        return gnp.concat([gnp.reshape(q, (-1,)), gnp.reshape(r, (-1,))])

    report = check_grads(f, (a,), order=2)
    assert report.ok, str(report)


def test_factorizations_agree_with_their_definitions():
    a = sample_matrices(np.random.default_rng(6), (2, 3, 3), "spd")
    lower, upper = la.cholesky(a), la.cholesky(a, upper=True)
    np.testing.assert_array_equal(upper, np.swapaxes(lower, -1, -2))
    np.testing.assert_allclose(lower @ np.swapaxes(lower, -1, -2), a, atol=1e-13)
    full, reduced = la.svd(a), la.svd(a, full_matrices=False)  # square: full is reduced
    for x, y in zip(full, reduced):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(la.qr(a, mode="complete").R, la.qr(a).R)
    rank_deficient = np.asarray([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0]])
    assert int(la.matrix_rank(rank_deficient)) == 1 == int(jnp.linalg.matrix_rank(rank_deficient))
    assert la.matrix_rank(a).dtype == np.int64
    assert la.det(np.asarray([[2, 1], [1, 1]])).dtype == np.float64  # integers: the default float
    assert la.inv(a.astype(np.float32)).dtype == np.float32


def test_linalg_in_jit_and_vmap_of_hessian():
    a = sample_matrices(np.random.default_rng(8), (5, 3, 3), "spd")

    def f(s):
        return gnp.linalg.slogdet(s).logabsdet + gnp.sum(gnp.linalg.solve(s, gnp.asarray([1.0, 0.0, 2.0])))

    h = gpuad.jit(gpuad.vmap(gpuad.hessian(f)))(a)
    want = jax.vmap(jax.hessian(lambda s: jnp.linalg.slogdet(s)[1] + jnp.sum(jnp.linalg.solve(s, jnp.asarray([1.0, 0.0, 2.0])))))(a)
    np.testing.assert_allclose(h, want, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# Errors: each names the function, the argument and what to do
# ---------------------------------------------------------------------------------------------

SQ = np.eye(3)
RECT = np.ones((3, 2))
VEC = np.ones(3)

ERRORS = [
    (lambda: la.det(RECT), ValueError, r"linalg\.det: x must hold square matrices"),
    (lambda: la.inv(VEC), ValueError, r"linalg\.inv: x must be a matrix or a stack of matrices \(at least 2 dimensions\)"),
    (lambda: la.slogdet(RECT), ValueError, r"linalg\.slogdet: x must hold square"),
    (lambda: la.cholesky(RECT), ValueError, r"linalg\.cholesky: x must hold square"),
    (lambda: la.cholesky(SQ, upper="yes"), TypeError, r"linalg\.cholesky: upper must be True or False"),
    (lambda: la.eigh(RECT), ValueError, r"linalg\.eigh: x must hold square"),
    (lambda: la.eigvalsh(VEC), ValueError, r"linalg\.eigvalsh: x must be a matrix"),
    (lambda: la.solve(RECT, VEC), ValueError, r"linalg\.solve: x1 must hold square"),
    (lambda: la.solve(SQ, np.ones(4)), ValueError, r"linalg\.solve: x2 of shape \(4,\) does not match x1"),
    (lambda: la.solve(SQ, np.ones((2, 3))), ValueError, r"axis -2 has 2 rows.*b\[\.\.\., None\]"),
    (lambda: la.solve(SQ, np.asarray(1.0)), ValueError, r"linalg\.solve: x2 must be a vector"),
    (lambda: la.solve(np.ones((2, 3, 3)), np.ones((4, 3, 1))), ValueError, r"leading axes of x1 \(2, 3, 3\) and x2 \(4, 3, 1\) do not broadcast"),
    (lambda: la.svd(RECT), ValueError, r"linalg\.svd: full_matrices=True for a 3 x 2 matrix.*full_matrices=False"),
    (lambda: la.svd(SQ, full_matrices=1), TypeError, r"linalg\.svd: full_matrices must be True or False"),
    (lambda: la.svdvals(VEC), ValueError, r"linalg\.svdvals: x must be a matrix"),
    (lambda: la.qr(SQ, mode="r"), ValueError, r"linalg\.qr: mode must be 'reduced' or 'complete', got 'r'"),
    (lambda: la.qr(RECT, mode="complete"), ValueError, r"mode='complete' of a 3 x 2 matrix.*use mode='reduced'"),
    (lambda: la.pinv(SQ, rtol=np.asarray(0.1)), TypeError, r"linalg\.pinv: rtol must be a Python number"),
    (lambda: la.pinv(VEC), ValueError, r"linalg\.pinv: x must be a matrix"),
    (lambda: la.matrix_rank(SQ, rtol="small"), TypeError, r"linalg\.matrix_rank: rtol must be a Python number"),
    (lambda: la.matrix_norm(SQ, ord=3), ValueError, r"linalg\.matrix_norm: ord must be one of 'fro', 'nuc', 1, -1, 2, -2, inf, -inf, got 3"),
    (lambda: la.matrix_norm(SQ, ord="f"), ValueError, r"ord must be one of.*got 'f'"),
    (lambda: la.matrix_norm(SQ, ord=True), ValueError, r"ord must be one of.*got True"),
    (lambda: la.matrix_norm(SQ, keepdims=None), TypeError, r"linalg\.matrix_norm: keepdims must be True or False"),
    (lambda: la.matrix_power(SQ, 1.5), TypeError, r"linalg\.matrix_power: n must be an integer, got float"),
    (lambda: la.matrix_power(SQ, True), TypeError, r"linalg\.matrix_power: n must be an integer, got a bool"),
    (lambda: la.matrix_power(RECT, 2), ValueError, r"linalg\.matrix_power: x must hold square"),
    (lambda: la.diagonal(VEC), ValueError, r"linalg\.diagonal: x must have at least 2 dimensions"),
    (lambda: la.diagonal(SQ, offset=1.0), TypeError, r"linalg\.diagonal: offset must be an int"),
    (lambda: la.trace(VEC), ValueError, r"linalg\.trace: x must have at least 2 dimensions"),
    (lambda: la.outer(SQ, VEC), ValueError, r"linalg\.outer: x1 must be a vector.*x1\[\.\.\., :, None\]"),
    (lambda: la.cross(np.ones(2), np.ones(2)), ValueError, r"linalg\.cross: .* must both have 3 entries along axis -1"),
    (lambda: la.cross(VEC, VEC, axis=0), ValueError, r"linalg\.cross: axis must be negative .* in \[-1, -1\]"),
    (lambda: la.cross(VEC, VEC, axis=None), TypeError, r"linalg\.cross: axis must be an int"),
    (lambda: la.det(SQ * 1j), TypeError, r"linalg\.det: x is complex \(complex128\); gpuad\.numpy\.linalg differentiates real matrices only"),
    (lambda: la.norm, AttributeError, r"gpuad\.numpy\.linalg has no norm .*linalg\.vector_norm or linalg\.matrix_norm"),
    (lambda: la.lstsq, AttributeError, r"has no lstsq .*pinv"),
    (lambda: la.frobnicate, AttributeError, r"gpuad\.numpy\.linalg has no attribute 'frobnicate'"),
]


@pytest.mark.parametrize("call, error, message", ERRORS, ids=[str(i) for i in range(len(ERRORS))])
def test_errors_name_the_function_the_argument_and_what_to_do(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_the_namespace_lists_the_standard_s_functions():
    names = {
        "cholesky", "cross", "det", "diagonal", "eigh", "eigvalsh", "inv", "matmul", "matrix_norm", "matrix_power",
        "matrix_rank", "matrix_transpose", "outer", "pinv", "qr", "slogdet", "solve", "svd", "svdvals", "tensordot",
        "trace", "vecdot", "vector_norm",
    }
    assert names <= set(dir(la)) and all(callable(getattr(la, n)) for n in names)
