"""gpuad.jit's compiler (issue 21): recorded programs run as compiled C kernels give what the
eager transforms give (held against JAX by the oracle tests) on every row of the spec table,
batched and on one point, in float64 and float32; special values behave as in NumPy; the compile
cache survives corruption and concurrent writers; the CUDA text compiles with nvcc; without a
compiler (or on another library) jit replays, saying why once.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp
from gpuad.compiler import lowering, scalar, toolchain

from .helpers import batch_inputs, close, inputs, tolerances
from .spec import SPECS, GpuadNS, core

GNS = GpuadNS()
# The rows test_jit replays (small points), split into chunks that each compile as one source:
# one compiler run per chunk rather than per row keeps the suite's time in bounds.
ROWS = core([s for s in SPECS if s.runs_on("numpy") and all(int(np.prod(d.shape)) <= 12 for d in s.args)])
CHUNKS = 6


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A compile cache of this test's own."""
    monkeypatch.setenv(toolchain.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(lowering.JIT_ENV, raising=False)
    return tmp_path / "cache"


def _row_transform(spec, batched):
    def loss(*a):
        return gnp.sum(spec.fn(GNS, *a))

    t = gpuad.value_and_grad(loss, argnums=tuple(range(len(spec.args))))
    return gpuad.vmap(t) if batched else t


def _row_inputs(spec, dtype, batched, seed):
    if batched:
        return batch_inputs(spec, dtype, "all", seed=seed)[0]
    return inputs(spec, dtype, seed=seed)


@pytest.mark.parametrize(
    "batched, dtype",
    [(True, "float64"), (False, "float64"), pytest.param(True, "float32", marks=pytest.mark.slow)],
    ids=["vmap-float64", "one_point-float64", "vmap-float32"],
)
@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_every_row_compiled_equals_eager(chunk, batched, dtype):
    """vmap(value_and_grad) (and value_and_grad on one point) of every row, all rows of a chunk in
    one jitted function: compiled kernels on new inputs equal the eager transforms. (float32 on
    one point adds no kernel shape the others lack.)"""
    report = _rows_compiled_equal_eager(ROWS[chunk::CHUNKS], batched, dtype)
    assert report.target == "C" and report.kernels, report
    assert report.compiled >= report.operations // 2, report


def _rows_compiled_equal_eager(rows, batched, dtype):
    """The rows' transforms in one jitted function: its second call (compiled) on new inputs
    equals the eager transforms (float64 to 1e-10, float32 to the oracle tolerances); returns
    the compile report."""
    transforms = [_row_transform(spec, batched) for spec in rows]
    jitted = gpuad.jit(lambda arglists: [t(*a) for t, a in zip(transforms, arglists)])
    jitted([_row_inputs(spec, dtype, batched, 0) for spec in rows])
    arglists = [_row_inputs(spec, dtype, batched, 1) for spec in rows]
    got = jitted(arglists)
    for spec, t, a, g in zip(rows, transforms, arglists, got):
        tol = tolerances(spec, dtype) if dtype == "float32" else dict(rtol=1e-10, atol=1e-12)
        try:
            close(g, t(*a), **tol)
        except AssertionError as e:
            raise AssertionError(f"row {spec.name}: {e}") from None
    return jitted.reports()[0]


LINALG_ROWS = [s for s in SPECS if s.name in (
    "linalg_det", "linalg_det_one", "linalg_slogdet", "linalg_inv", "linalg_solve", "linalg_solve_vector",
    "linalg_solve_shared", "linalg_cholesky", "linalg_cholesky_upper", "linalg_matrix_power_neg2",
)]


@pytest.mark.parametrize(
    "batched, dtype", [(True, "float64"), (False, "float64"), (True, "float32")], ids=["vmap-float64", "one_point-float64", "vmap-float32"]
)
def test_small_linear_algebra_compiles_per_point(cache, batched, dtype):
    """det, slogdet, inv, solve (stacked, a vector, a shared matrix) and cholesky of small
    matrices are unrolled into the kernels (every operation of each row compiled, the rows
    in one kernel per point), with values and gradients equal to the eager path's (LAPACK's)."""
    assert len(LINALG_ROWS) == 10
    report = _rows_compiled_equal_eager(LINALG_ROWS, batched, dtype)
    # (cholesky_upper's vmap folds the points into the rows of one product with a constant: the
    # library's reshapes around a dense product; everything else compiles)
    assert report.library == ([] if not batched else ["reshape"]), report
    assert "(the library runs reshape)" in str(report) or not batched


def test_matrices_above_four_by_four_stay_with_lapack(cache):
    """An unrolled 5 x 5 LU would cost gcc seconds: such matrices stay the library's operation,
    the elementwise work around them compiled."""
    A = np.random.default_rng(6).standard_normal((20, 5, 5)) + 5 * np.eye(5)
    f = gpuad.vmap(gpuad.value_and_grad(lambda a: gnp.sum(gnp.sin(gnp.linalg.inv(a)))))
    got, report = _compiled(f, A)
    close(got, f(A), rtol=1e-13, atol=1e-13)
    assert "inv" in report.library and report.kernels, report


def _degenerate_matrices():
    """A batch of 3 x 3 matrices: regular ones, with a singular one, one that is symmetric but not
    positive definite, one holding NaN and one holding inf, and one needing a row swap."""
    rng = np.random.default_rng(3)
    A = rng.standard_normal((8, 3, 3))
    A = A @ np.swapaxes(A, -1, -2) + np.eye(3)
    A[1] = [[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [0.5, 1.0, 2.0]]  # rank 2: a zero pivot
    A[2] = [[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]]  # symmetric, eigenvalues -1, 1, 3
    A[3, 1, 2] = A[3, 2, 1] = np.nan
    A[4, 0, 0] = np.inf
    A[5] = [[0.0, 1.0, 2.0], [1.0, 0.0, 3.0], [4.0, 5.0, 0.0]]  # a zero first pivot, regular
    return A


def _linalg_degenerate(x):
    sign, logdet = gnp.linalg.slogdet(x)
    b = gnp.ones(x.shape[:-1])
    return [
        gnp.linalg.inv(x), gnp.linalg.solve(x, b), gnp.linalg.cholesky(x), gnp.linalg.det(x), sign, logdet,
    ]


@pytest.mark.parametrize("kernel_only", [False, True], ids=["cpu", "kernel_values"])
def test_degenerate_matrices_give_the_eager_values(cache, monkeypatch, kernel_only):
    """Singular, not positive definite, NaN and inf matrices among regular ones: the CPU kernel
    leaves the batch to the array library (the eager values and warnings, bit for bit); the
    kernel's own values (what the CUDA kernel gives, which has no such fallback) are the table's:
    NaN for inv and solve, NaN on and below the diagonal for cholesky, det 0, slogdet (0, -inf)
    at the singular point, and LAPACK's values to rounding elsewhere."""
    A = _degenerate_matrices()
    f = gpuad.vmap(_linalg_degenerate)
    if kernel_only:
        monkeypatch.setattr(lowering, "_LEFT_TO_LIBRARY", 0)
    with np.errstate(all="ignore"):
        got, report = _compiled(f, A)
        want = f(A)
    assert report.compiled == report.operations, report
    for g, w in zip(got, want):
        if kernel_only:
            close(g, w, rtol=1e-12, atol=1e-12)  # NaN where NaN: close() checks the NaN masks
        else:
            np.testing.assert_array_equal(g, w)
    inv, _, chol, det, sign, logdet = got
    assert np.isnan(inv[1]).all() and det[1] == 0 and sign[1] == 0 and logdet[1] == -np.inf
    assert np.isnan(chol[2][np.tril_indices(3)]).all() and (chol[2][np.triu_indices(3, 1)] == 0).all()
    assert np.isfinite(inv[5]).all() and np.isfinite(inv[[0, 6, 7]]).all()


def _seed1(x):
    return gnp.log(x[..., 0]) + x[..., 0] * x[..., 1] - gnp.sin(x[..., 1])


def _compiled(f, *args):
    """f jitted, called twice (the second call runs the compiled program), and its report."""
    jitted = gpuad.jit(f)
    jitted(*args)
    return jitted(*args), jitted.reports()[0]


def test_seed_function_is_one_kernel_per_point_and_one_point_is_one_kernel(cache):
    X = np.random.default_rng(0).uniform(1, 3, size=(1000, 2))
    f = gpuad.vmap(gpuad.value_and_grad(_seed1))
    got, report = _compiled(f, X)
    close(got, f(X), rtol=1e-14, atol=0)
    assert report.kernels == ["per point over 1000 points: 13 operations"] and report.compiled == report.operations
    g = gpuad.value_and_grad(_seed1)
    got, report = _compiled(g, X[0])
    close(got, g(X[0]), rtol=1e-14, atol=0)
    assert len(report.kernels) == 1 and report.kernels[0].startswith("one point")
    assert "1 kernel(s)" in str(report)


def test_big_matrix_products_stay_with_the_library_between_kernels(cache):
    """The MLP: 64 x 64 weight products are the library's; the elementwise runs between them
    are kernels; gradients of the weights (sums over the points) equal eager ones."""
    rng = np.random.default_rng(0)
    w1, w2 = rng.standard_normal((8, 64)) / 3, rng.standard_normal((64, 3)) / 8
    X = rng.standard_normal((50, 8))

    def loss(w1, w2, X):
        h = gnp.tanh(X @ w1)
        return gnp.mean(gnp.sum(gnp.sin(h @ w2) ** 2, axis=-1))

    f = gpuad.value_and_grad(loss, argnums=(0, 1))
    got, report = _compiled(f, w1, w2, X)
    close(got, f(w1, w2, X), rtol=1e-12, atol=1e-14)
    assert len(report.kernels) >= 2 and report.compiled < report.operations


def _sigmoid_mlp_loss(w1, b1, w2, X):
    h = 1 / (1 + gnp.exp(-(X @ w1 + b1)))  # written out, as the bench's MLP: no logistic primitive
    p = h / gnp.sum(h, axis=-1, keepdims=True)  # a column of one number per row, broadcast
    return gnp.mean(gnp.tanh(p @ w2) ** 2)


def test_flat_kernels_read_biases_and_rows_and_recompute_short_chains(cache):
    """Elementwise work on values too wide per point: the layer's product is computed in the
    kernel (register tiles), the bias (along the last axis) and a per-row normaliser (shape
    (B, 1)) are read inside the fused loops (no separate broadcast add); the backward kernel
    computes the sigmoid's 1 + exp(-x) again from exp(-x) (never exp itself), so the forward
    kernel writes only the activation and exp(-x) (not the chain between them)."""
    rng = np.random.default_rng(2)
    args = (rng.standard_normal((8, 96)) / 3, rng.standard_normal(96), rng.standard_normal((96, 3)) / 9, rng.standard_normal((300, 8)))
    f = gpuad.value_and_grad(_sigmoid_mlp_loss, argnums=(0, 1, 2))
    got, report = _compiled(f, *args)
    close(got, f(*args), rtol=1e-12, atol=1e-14)
    assert "add" not in report.library, report  # the bias add: inside the sigmoid's loop
    c, _ = _sources(f, *args)
    functions = _c_functions(c)
    (forward,) = [k for k in functions if re.search(r"gpuad_dense_dw?\(a0 \+ s0 \* 8, 8, sub", k)]  # X @ w1: 8 columns per row
    first = forward[: forward.index("\n")]
    assert first.count("restrict o") == 2 and re.search(r"a\d\[c\]", forward), first  # exp(-x) and activation; the bias by column
    assert "a2[r]" in c or "a1[r]" in c  # the normaliser, one per row
    assert sum("gpuad_expf" in k or "exp(" in k for k in functions) == 1  # exp once, in the forward kernel
    # 1 + exp(-x) again in the backward kernel, from exp(-x) as the forward kernel wrote it
    again = re.compile(r"const double (t\d+) = a\d+\[i \* P\d+ \+ 0\];\s*const double t\d+ = \(0x1\.0+p\+0 \+ \1\);")
    assert any(again.search(k) for k in functions if k is not forward), c


def _mlp_example_loss(params, x, y):
    w1, b1, w2, b2, w3 = params
    h1 = 1 / (1 + gnp.exp(-(x @ w1 + b1)))
    h2 = gnp.tanh(h1 @ w2 + b2)
    z = h2 @ w3
    return gnp.log(gnp.sum(gnp.exp(z), axis=-1)) - gnp.sum(z * y, axis=-1)


def test_layers_run_as_one_launch_block_of_rows_by_block(cache):
    """A network's layers (flat kernels whose products read the layer before) run as one C
    function, a block of rows through every layer in turn; a value only the next layer's
    product reads (the backward's da2, da1) stays in the thread's block buffer, never in
    memory. Values, float64 and float32, with rows not a multiple of a block's (48) and enough
    for threads, equal eager ones; an infinity gives the eager values and NumPy's warnings."""
    rng = np.random.default_rng(12)
    for dtype, tol, rows in (("float64", dict(rtol=1e-12, atol=1e-13), 301), ("float32", dict(rtol=2e-5, atol=2e-6), 700)):
        params = tuple(a.astype(dtype) for a in (rng.standard_normal((8, 64)) / 3, rng.standard_normal(64), rng.standard_normal((64, 64)) / 8, rng.standard_normal(64), rng.standard_normal((64, 5)) / 8))
        x, y = rng.standard_normal((rows, 8)).astype(dtype), np.eye(5, dtype=dtype)[rng.integers(0, 5, rows)]
        f = gpuad.vmap(gpuad.value_and_grad(_mlp_example_loss, argnums=1), in_axes=(None, 0, 0))
        got, report = _compiled(f, params, x, y)
        close(got, f(params, x, y), **tol)
        c, _ = _sources(f, params, x, y)
        drivers = [k for k in _c_functions(c) if re.search(r"k\d+_1\(r0, rows", k)]
        assert len(drivers) == 2, c  # the forward's layers, the backward's
        assert sum(len(re.findall(r"bf\d\[\d+\]", k)) for k in drivers) == 2  # da2 and da1 in block buffers
    x[3, 2] = np.inf
    jitted = gpuad.jit(f)
    for _ in range(2):  # recording, then the compiled program (its kernels report the invalid operation)
        with pytest.warns(RuntimeWarning):
            got = jitted(params, x, y)
    with np.errstate(all="ignore"):
        close(got, f(params, x, y), rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("wide", [False, True])
def test_dense_products_are_computed_in_the_kernels(cache, monkeypatch, wide):
    """Rows times a shared matrix of up to 128 x 128 (a layer's product, its backward's product
    with the transpose) is computed by the kernels themselves: every shape of the register tiles
    (rows not a multiple of the tile's 6, columns not of a panel's, K and N from 1 to 128, a
    transposed matrix, a constant one), with 32-byte vectors and with 64-byte ones (AVX-512's,
    forced here: elsewhere gcc splits them), equals NumPy's product; a 129-wide one stays BLAS's."""
    monkeypatch.setattr(toolchain, "_wide_vectors", lambda: wide)
    # Wide panels where they pad no more than narrow ones: 64 columns, not 10 floats or 17 doubles.
    assert toolchain.dense_layout("double", 64) == ((16, "dw") if wide else (8, "d"))
    assert toolchain.dense_layout("float", 10) == (16, "f") and toolchain.dense_layout("double", 17) == (8, "d")
    rng = np.random.default_rng(7)
    for dtype, tol in (("float64", dict(rtol=1e-12, atol=1e-12)), ("float32", dict(rtol=2e-5, atol=2e-5))):
        for rows, k, n in ((13, 1, 1), (7, 3, 10), (6, 64, 64), (100, 10, 64), (31, 128, 128), (5, 64, 17)):
            x = rng.standard_normal((rows, k)).astype(dtype)
            w, v = rng.standard_normal((n, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)
            b = rng.standard_normal(n).astype(dtype)

            def layer(x, w, v, b):
                return gnp.tanh(x @ w.T + b), x @ v, x @ gnp.asarray(np.ones((k, n), dtype))

            got, report = _compiled(layer, x, w, v, b)
            assert "matmul" not in report.library and report.target == "C", report
            close(got, (np.tanh(x @ w.T + b), x @ v, x @ np.ones((k, n), dtype)), **tol)
    x, w = rng.standard_normal((20, 129)), rng.standard_normal((129, 4))
    got, report = _compiled(lambda x, w: gnp.sin(x @ w) * 2, x, w)
    assert "matmul" in report.library, report
    close(got, np.sin(x @ w) * 2, rtol=1e-14, atol=0)


def test_dense_products_with_nan_and_inf_give_the_eager_values(cache):
    """A NaN or an infinity in a product's rows: the kernel reports the invalid operation
    (0 * inf in a padded panel column, inf - inf) and the launcher reruns the operations
    through NumPy, so values and warnings are the eager path's."""
    rng = np.random.default_rng(8)
    x, w = rng.standard_normal((9, 5)), rng.standard_normal((5, 3))
    x[2, 1], x[4, 0], x[7, 3] = np.nan, np.inf, -np.inf

    def f(x, w):
        return gnp.exp(x @ w) - 1

    jitted = gpuad.jit(f)
    for _ in range(2):  # recording, then the compiled program: NumPy's own warning both times
        with pytest.warns(RuntimeWarning, match="invalid value encountered in matmul"):
            got = jitted(x, w)
    assert "matmul" not in jitted.reports()[0].library, jitted.reports()[0]
    with np.errstate(all="ignore"):
        expected = np.exp(x @ w) - 1
    close(got, expected, rtol=1e-13, atol=0)


def test_products_summed_over_rows_are_computed_by_a_kernel(cache):
    """x.T @ g over many rows (a layer's weight gradient) and g's column sums (its bias
    gradient) are one kernel reading x and g as they are: every tile shape (K and N from 1 to
    128, not multiples of a tile's 6 rows or a panel's columns, rows not a multiple of a chunk),
    with and without the column sums (kept dims or not), equals NumPy; fewer than 128 rows are
    not summed this way."""
    rng = np.random.default_rng(9)
    for dtype, eps in (("float64", 1e-15), ("float32", 1e-6)):
        shapes = ((128, 1, 1), (131, 3, 10), (1000, 64, 64), (300, 128, 128), (257, 32, 17), (40000, 7, 9))
        for case, (rows, k, n) in enumerate(shapes):
            x, g = rng.standard_normal((rows, k)).astype(dtype), rng.standard_normal((rows, n)).astype(dtype)
            # against the exact product of these numbers, to within a rounding of its terms' scale
            tol = dict(rtol=0, atol=eps * float((np.abs(x.astype(float)).T @ np.abs(g.astype(float))).max()))
            for keep in [(None, True, False)[(case + (dtype == "float32")) % 3]]:  # (each shape one way)
                def f(x, g):
                    if keep is None:
                        return x.T @ g
                    return x.T @ g, gnp.sum(g, axis=0, keepdims=keep)

                got, report = _compiled(f, x, g)
                assert "matmul" not in report.library and "sum" not in report.library, report
                assert report.kernels == [f"a product summed over {rows} rows: {2 if keep is None else 3} operations"], report
                close(got, f(x.astype(float), g.astype(float)), **tol)
    x, g = rng.standard_normal((127, 4)), rng.standard_normal((127, 5))
    got, report = _compiled(lambda x, g: x.T @ g, x, g)
    assert not any(k.startswith("a product summed") for k in report.kernels), report  # (a dense product: 127 columns)
    close(got, x.T @ g, rtol=1e-13, atol=0)


def test_a_layers_weight_gradients_are_summed_products(cache):
    """The MLP's weight and bias gradients through the summed-product kernels equal eager ones,
    float64 and float32; a NaN or an infinity in a gradient gives the eager values (the kernel
    reports the invalid operation and the launcher reruns NumPy) with NumPy's warning."""
    rng = np.random.default_rng(10)
    for dtype, tol in (("float64", dict(rtol=1e-12, atol=1e-13)), ("float32", dict(rtol=1e-4, atol=1e-6))):
        args = [a.astype(dtype) for a in (rng.standard_normal((8, 96)) / 3, rng.standard_normal(96), rng.standard_normal((96, 3)) / 9, rng.standard_normal((300, 8)))]
        f = gpuad.value_and_grad(_sigmoid_mlp_loss, argnums=(0, 1, 2))
        got, report = _compiled(f, *args)
        assert sum(k.startswith("a product summed over 300 rows") for k in report.kernels) == 2, report
        close(got, f(*args), **tol)
    x, g = rng.standard_normal((200, 3)), rng.standard_normal((200, 2))
    x[5, 1], g[5, 0], g[9, 1] = np.inf, 0.0, np.nan
    jitted = gpuad.jit(lambda x, g: x.T @ g)
    for _ in range(2):  # recording, then the compiled program: NumPy's own warning both times
        with pytest.warns(RuntimeWarning, match="invalid value encountered in matmul"):
            got = jitted(x, g)
    assert jitted.reports()[0].kernels[0].startswith("a product summed"), jitted.reports()[0]
    with np.errstate(all="ignore"):
        close(got, x.T @ g, rtol=1e-13, atol=0)


@pytest.mark.skipif(shutil.which("g++") is None, reason="no C++ compiler")
def test_the_cuda_summed_product_sums_what_the_c_one_does(tmp_path):
    """No GPU here: the CUDA kernel's text, compiled as host C++ with a stand-in for CUDA's
    thread indices and atomicAdd, run over every thread it is launched with, gives x.T @ g and
    g's column sums."""
    import ctypes

    rng = np.random.default_rng(11)
    for rows, k, n, sums in ((300, 5, 7, True), (129, 3, 2, False)):
        source = scalar.emit_cuda_summed_product("k0", "float64", k, n, sums)
        shim = (
            "#define __global__\n#define __restrict__ __restrict\nstruct Index { long long x; };\n"
            "static Index blockIdx, blockDim, threadIdx;\n"
            "template <class T> static void atomicAdd(T *p, T v) { *p += v; }\n"
        )
        launch = (
            'extern "C" void run(long long threads, long long n, const double *a0, const double *a1, double *o0, double *o1) {\n'
            "  blockDim.x = 256;\n"
            "  for (long long t = 0; t < threads; t++) { blockIdx.x = t / 256; threadIdx.x = t % 256; "
            f"k0(n, a0, a1, o0{', o1' if sums else ''}); }}\n}}\n"
        )
        cpp = tmp_path / f"k{rows}.cpp"
        cpp.write_text(shim + source + "\n" + launch)
        lib_path = tmp_path / f"k{rows}.so"
        done = subprocess.run(["g++", "-O1", "-shared", "-fPIC", "-o", str(lib_path), str(cpp)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        run = ctypes.CDLL(str(lib_path)).run
        run.argtypes = [ctypes.c_longlong] * 2 + [ctypes.c_void_p] * 4
        x, g = rng.standard_normal((rows, k)), rng.standard_normal((rows, n))
        out, col = np.zeros((k, n)), np.zeros(n)  # (the launcher's zeros)
        run(scalar.summed_product_threads(rows, k, n, sums), rows, x.ctypes.data, g.ctypes.data, out.ctypes.data, col.ctypes.data)
        close(out, x.T @ g, rtol=1e-13, atol=1e-13)
        close(col, g.sum(axis=0) if sums else np.zeros(n), rtol=1e-13, atol=1e-13)


def _gmm_like(params, X):
    means, log_sigmas, alphas = params
    diff = (X[:, None, :] - means) * gnp.exp(-log_sigmas)
    q = -0.5 * gnp.sum(diff * diff, axis=-1) - gnp.sum(log_sigmas, axis=-1) + alphas
    m = gnp.max(q, axis=-1, keepdims=True)
    return -gnp.sum(gnp.log(gnp.sum(gnp.exp(q - m), axis=-1)) + m[..., 0])


def test_a_gradient_of_shared_parameters_is_one_kernel_per_point(cache):
    """The loss's total (read by work on no point) no longer splits the points' forward sweep
    from their backward one: one per-point kernel, its gradient sums inside it."""
    rng = np.random.default_rng(4)
    params = (rng.standard_normal((5, 3)), 0.3 * rng.standard_normal((5, 3)), rng.standard_normal(5))
    X = rng.standard_normal((200, 3))
    f = gpuad.value_and_grad(_gmm_like)
    got, report = _compiled(f, params, X)
    close(got, f(params, X), rtol=1e-12, atol=1e-13)
    assert sum(k.startswith("per point") for k in report.kernels) == 1, report


@pytest.mark.skipif(shutil.which(os.environ.get("CC") or "cc") is None, reason="no C compiler")
def test_every_generated_loop_vectorizes(cache):
    """gcc vectorizes the loop over points of kernels whose points hold 5, 10, 12 or 15 numbers
    (strides it cannot interleave) and that turn comparisons into numbers (the softmax's ties)."""
    if "clang" in toolchain.compiler()[1]:
        pytest.skip("the check reads gcc's vectorizer report")
    rng = np.random.default_rng(5)
    cases = [
        (gpuad.vmap(gpuad.value_and_grad(lambda z: gnp.sum(gnp.sin(z) * z))), rng.standard_normal((64, n)))
        for n in (5, 10, 12, 15)
    ] + [(gpuad.vmap(gpuad.grad(lambda z: gnp.max(z) * gnp.sum(z))), rng.standard_normal((64, 10)).astype(np.float32))]
    for f, x in cases:
        c, _ = _sources(f, x)
        path = cache.parent / "k.c"
        path.write_text(toolchain.PRELUDE + "\n" + c)
        flags = [f for f in toolchain.C_FLAGS if f not in ("-shared", "-fPIC")]
        done = subprocess.run([toolchain.compiler()[0], *flags, "-c", "-fopt-info-vec-optimized", "-o", str(path) + ".o", str(path)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert c.count("int k") >= 1 and "loop vectorized" in done.stderr, (x.shape, done.stderr[-800:])


def test_points_of_a_big_batch_are_split_over_threads(cache):
    """Above 32768 points the loop runs in threads: the same numbers as one point at a time."""
    X = np.random.default_rng(1).uniform(1, 3, size=(40_000, 2))
    f = gpuad.vmap(gpuad.value_and_grad(_seed1))
    got, _ = _compiled(f, X)
    small, _ = _compiled(f, X[:5])
    close(got, f(X), rtol=1e-14, atol=0)
    close([got[0][:5], got[1][:5]], small, rtol=0, atol=0)


def test_special_values_and_ties_behave_as_eager(cache):
    """NaN, infinities, -0.0 and ties at kinks (maximum/minimum, abs, sign, relu, where): the
    compiled kernel gives the eager path's values and derivatives, signs of zeros included
    (every pair of special values, in both orders)."""
    vals = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 2.5, -2.5])
    X = np.stack(np.meshgrid(vals, vals), axis=-1).reshape(-1, 2)

    def f(x):
        a, b = x[..., 0], x[..., 1]
        kinks = gnp.maximum(a, b) + 2 * gnp.minimum(a, b) + gnp.abs(a) * gnp.sign(b) + gnp.relu(a - b)
        return kinks + gnp.where(a > b, a * b, -b) + gnp.copysign(1.0, a) * gnp.sqrt(gnp.abs(b))

    for t in (gpuad.vmap(gpuad.value_and_grad(f)), gpuad.vmap(lambda x: f(x))):
        with np.errstate(all="ignore"):
            got, report = _compiled(t, X)
            want = t(X)
        assert report.compiled == report.operations, report
        for g, w in zip(gpuad.tree_leaves(got), gpuad.tree_leaves(want)):
            np.testing.assert_array_equal(g, w)
            signed = ~np.isnan(w)  # (a NaN's sign bit means nothing)
            np.testing.assert_array_equal(np.signbit(g)[signed], np.signbit(w)[signed])


def test_floating_point_errors_are_numpys_own(cache):
    """A kernel meeting log(0) reruns as array operations: NumPy's warning (naming log), and
    np.errstate's "raise" raises; with "ignore" the kernel's own results stand."""
    t = gpuad.vmap(gpuad.grad(lambda x: gnp.log(x[..., 0]) * x[..., 1]))
    f = gpuad.jit(t)
    X = np.array([[1.0, 2.0], [3.0, 4.0]])
    f(X)
    Z = np.array([[0.0, 2.0], [3.0, 4.0]])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = f(Z)
        t(Z)
    said = [str(w.message) for w in caught]
    assert said[: len(said) // 2] == said[len(said) // 2 :]  # the compiled call's, then eager's
    assert "divide by zero encountered in log" in said
    np.testing.assert_array_equal(got, [[np.inf, -np.inf], [4 / 3, np.log(3.0)]])
    with np.errstate(divide="raise"), pytest.raises(FloatingPointError, match="divide by zero encountered in log"):
        f(Z)
    with np.errstate(divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(f(Z), got)
    assert f.reports()[0].target == "C"


def test_compile_cache_hit_miss_and_a_new_process(cache):
    lib, seconds, cached = toolchain.build("int k0(void) { return 7; }")
    assert not cached and seconds > 0 and lib.k0() == 7
    lib, seconds, cached = toolchain.build("int k0(void) { return 7; }")
    assert cached and seconds == 0.0 and lib.k0() == 7
    _, _, cached = toolchain.build("int k0(void) { return 8; }")
    assert not cached
    assert len(list(cache.glob("gpuad-*.so"))) == 2
    # A new process loads from the cache: a jitted seed function compiled here is not rebuilt there.
    code = (
        "import time, numpy as np, gpuad, gpuad.numpy as gnp\n"
        "f = gpuad.jit(gpuad.vmap(gpuad.grad(lambda x: gnp.log(x[0]) * x[1])))\n"
        "f(np.ones((4, 2)))\n"
        "print(f.reports()[0].cached)\n"
    )
    env = dict(os.environ, **{toolchain.CACHE_ENV: str(cache)})
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True) for _ in range(2)]
    assert [r.stdout.strip() for r in runs] == ["False", "True"]


# The toolchain module alone (it imports only the standard library): a new process in milliseconds.
_TOOLCHAIN = (
    "import importlib.util\n"
    f"spec = importlib.util.spec_from_file_location('toolchain', {toolchain.__file__!r})\n"
    "toolchain = importlib.util.module_from_spec(spec)\n"
    "spec.loader.exec_module(toolchain)\n"
)


def _build_elsewhere(cache, source):
    """toolchain.build(source) in a new process: (what its k0 returns, whether it was cached)."""
    code = _TOOLCHAIN + f"lib, _, cached = toolchain.build({source!r})\nprint(lib.k0(), cached)\n"
    env = dict(os.environ, **{toolchain.CACHE_ENV: str(cache)})
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout.split()
    return int(out[0]), out[1] == "True"


def test_a_corrupt_or_foreign_cached_library_is_rebuilt_never_run(cache):
    """(In new processes: a process keeps the library it loaded, whatever happens to the file.)"""
    source = "int k0(void) { return 41; }"
    assert _build_elsewhere(cache, source) == (41, False)
    (path,) = cache.glob("gpuad-*.so")
    path.write_bytes(b"not a library")
    assert _build_elsewhere(cache, source) == (41, False)
    assert _build_elsewhere(cache, source) == (41, True)
    # A real library under another source's name: its embedded hash does not match, so rebuilt.
    assert _build_elsewhere(cache, "int k0(void) { return 42; }") == (42, False)
    other = next(p for p in cache.glob("gpuad-*.so") if p != path)
    shutil.copyfile(other, path)
    assert _build_elsewhere(cache, source) == (41, False)
    # In this process too: a foreign library loaded under the cache's name is not handed out.
    shutil.copyfile(other, path)
    lib, _, cached = toolchain.build(source)
    assert not cached and lib.k0() == 41


def test_concurrent_writers_leave_a_whole_library(cache):
    """Several processes compiling the same source at once: each gets a working library, and
    the cache holds one complete file."""
    code = _TOOLCHAIN + "lib, _, _ = toolchain.build('int k0(void) { return 5; }  /* concurrent */')\nprint(lib.k0())\n"
    env = dict(os.environ, **{toolchain.CACHE_ENV: str(cache)})
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env) for _ in range(4)]
    outs = [p.communicate()[0].strip() for p in procs]
    assert outs == ["5"] * 4 and all(p.returncode == 0 for p in procs)
    assert len(list(cache.glob("gpuad-*.so"))) == 1
    assert not [p for p in cache.iterdir() if not p.name.endswith(".so")]  # no temporary left behind


def test_without_a_compiler_jit_replays_and_says_why_once(cache, monkeypatch, tmp_path):
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    X = np.random.default_rng(0).uniform(1, 3, size=(6, 2))
    f = gpuad.vmap(gpuad.value_and_grad(_seed1))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        for _ in range(2):  # two recordings from the same line: one warning
            jitted = gpuad.jit(f)
            for _ in range(3):
                got = jitted(X)
    assert len(caught) == 1 and caught[0].category is lowering.CompileWarning
    assert "no-such-cc" in str(caught[0].message) and "GPUAD_JIT=replay" in str(caught[0].message)
    assert caught[0].filename == __file__
    close(got, f(X), rtol=0, atol=0)
    assert jitted.reports()[0].target == "replay"
    monkeypatch.setenv(lowering.JIT_ENV, "compile")
    with pytest.raises(toolchain.CompileError, match="no-such-cc"):
        gpuad.jit(f)(X)


def test_the_jit_mode_setting(cache, monkeypatch):
    X = np.ones((3, 2))
    f = gpuad.vmap(gpuad.grad(_seed1))
    monkeypatch.setenv(lowering.JIT_ENV, "replay")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        jitted = gpuad.jit(f)
        jitted(X)
    assert jitted.reports()[0].target == "replay" and "GPUAD_JIT=replay" in str(jitted.reports()[0])
    monkeypatch.setenv(lowering.JIT_ENV, "fast")
    with pytest.raises(ValueError, match="GPUAD_JIT='fast' is not a jit mode; use 'replay', 'compile'"):
        gpuad.jit(f)(X)
    # "compile" with nothing to compile (an argsort alone) says so.
    monkeypatch.setenv(lowering.JIT_ENV, "compile")
    with pytest.raises(toolchain.CompileError, match="nothing in this recording compiles.*argsort"):
        gpuad.jit(lambda x: gnp.argsort(x))(X)


def test_other_libraries_replay_with_one_warning(cache):
    xs = pytest.importorskip("array_api_strict")
    x = xs.asarray([[1.0, 2.0], [3.0, 4.0]], device=xs.Device("device1"))
    f = gpuad.vmap(gpuad.grad(_seed1))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        jitted = gpuad.jit(f)
        jitted(x)
    assert [w.category for w in caught] == [lowering.CompileWarning]
    assert "NumPy and CuPy arrays, not array_api_strict" in str(caught[0].message)
    close(jitted(x), f(x), rtol=0, atol=0)


def _c_functions(c):
    """The functions of a C source: kernels, and the stages of runs of kernels (``k0_1``)."""
    return ["k" + text for text in re.split(r"(?m)^(?:static inline void|int) k", c)[1:]]


def _sources(f, *args, runs=True):
    """The C and CUDA sources of f's recording (``runs=False``: its C with a function per kernel,
    as CUDA has it, instead of per run of kernels)."""
    seen = []
    original = lowering.sources

    def spy(builts, c_runs=None):
        seen.append(original(builts, c_runs if runs else None))
        return original(builts, c_runs)

    lowering.sources = spy
    try:
        gpuad.jit(f)(*args)
    finally:
        lowering.sources = original
    return seen[0]


def test_c_and_cuda_say_the_same_and_the_cuda_compiles(cache):
    """The per-point statements of both emitters are the same text apart from type names; every
    generated CUDA source compiles with nvcc --ptx (where nvcc is installed)."""
    rng = np.random.default_rng(0)
    mlp = (rng.standard_normal((8, 96)) / 3, rng.standard_normal(96), rng.standard_normal((96, 3)) / 9)
    programs = [
        (gpuad.vmap(gpuad.value_and_grad(_seed1)), rng.uniform(1, 3, (8, 2))),
        (gpuad.vmap(gpuad.hessian(lambda x: gnp.sum(gnp.exp(-x * x) * gnp.sin(x)))), rng.standard_normal((8, 3)).astype(np.float32)),
        (gpuad.vmap(gpuad.grad(lambda x: gnp.sum(gnp.maximum(x, 0.5) * (x > 0)))), rng.standard_normal((8, 4))),
        (gpuad.vmap(_linalg_degenerate), _degenerate_matrices()[[0, 5, 6]]),  # the unrolled linear algebra
        # dense products, and (from 128 rows) products summed over the rows
        (lambda X: gpuad.value_and_grad(_sigmoid_mlp_loss, argnums=(0, 1, 2))(*mlp, X), rng.standard_normal((130, 8))),
        (lambda X: gpuad.grad(_sigmoid_mlp_loss)(*(p.astype(np.float32) for p in mlp), X), rng.standard_normal((30, 8)).astype(np.float32)),
    ]
    summed = 0
    for f, x in programs:
        c, cuda = _sources(f, x, runs=False)
        if shutil.which("nvcc"):
            ptx = toolchain.cuda_ptx(cuda)
            assert ".entry k0" in ptx
        # The scalar kernels' statements (a summed product is a call in C, its own loop in CUDA:
        # test_the_cuda_summed_product_sums_what_the_c_one_does).
        c_functions, cuda_functions = _c_functions(c), cuda.split('extern "C"')[1:]
        summed += sum("gpuad_tproduct" in text for text in c_functions)
        c = "\n".join(text for text in c_functions if "gpuad_tproduct" not in text)
        cuda = "\n".join(text for text in cuda_functions if "r0 = t /" not in text)
        # (the loop's own indices, rows, blocks of rows and columns, are each emitter's)
        loop = re.compile(r"const (int64_t|long long) (i|r|rows|sub|i0) =|o\d+\[\d+\] = s\d+_\d+;")  # (and C's sums over the points)
        c_lines = [line.strip() for line in c.splitlines() if line.strip().startswith(("const", "o")) and not loop.match(line.strip())]
        cuda_lines = [line.strip() for line in cuda.splitlines() if line.strip().startswith(("const", "o")) and not loop.match(line.strip())]
        as_c = {"long long": "int64_t", "bool": "_Bool", "signed char": "int8_t", "unsigned char": "uint8_t", "short": "int16_t", "int ": "int32_t "}
        for cu, cc in as_c.items():
            cuda_lines = [line.replace(f"const {cu}", f"const {cc}") for line in cuda_lines]
        # (truth values are int locals in both: compare int32 and them under one spelling)
        c_lines, cuda_lines = ([line.replace("const int32_t ", "const int ") for line in lines] for lines in (c_lines, cuda_lines))
        assert c_lines == cuda_lines
    assert summed == 2  # the 130-row MLP's weight gradients


def test_cuda_emitter_refusal_is_reported():
    if not shutil.which("nvcc"):
        pytest.skip("nvcc is not installed")
    with pytest.raises(toolchain.CompileError, match="nvcc refused a generated kernel"):
        toolchain.cuda_ptx('extern "C" __global__ void k0() { undefined_thing(); }')


def test_scalar_literals_keep_every_bit():
    b = scalar.Builder()
    for value, dtype in [(-0.0, "float64"), (np.inf, "float32"), (np.nan, "float64"), (0.1, "float32"), (True, "bool"), (-3, "int64")]:
        node = b.const(value, dtype)
        text = scalar._literal(node, scalar.C_TYPES)
        if dtype == "float64" and value == 0:
            assert text.startswith("-0x0")
        if dtype == "float32" and value == 0.1:
            assert float.fromhex(text.rstrip("f")) == float(np.float32(0.1))
    assert b.const(1.0, "float64") is b.const(1, "float64")  # one node per distinct literal



def test_a_loop_is_one_operation_between_kernels(cache, monkeypatch):
    """jit of a function with a gpuad.lax.scan: the loop stays one operation (its step replays:
    a kernel per step would cost more than NumPy's calls on a step's small arrays), the work
    around it compiles, and the result equals the replay's (test_lax holds loops against JAX)."""
    rng = np.random.default_rng(0)
    W, xs = rng.standard_normal((3, 3)) / 2, rng.standard_normal((7, 4, 3))

    def loss(W, xs):
        def step(h, x):
            h = gnp.tanh(h @ W + x) * gnp.exp(-0.1 * x * x)
            return h, gnp.sum(h * h, axis=-1)

        _, ys = gpuad.lax.scan(step, gnp.zeros((4, 3)), gnp.sin(xs) * gnp.cos(xs))
        return gnp.sum(gnp.log1p(ys * ys))

    f = gpuad.value_and_grad(loss, argnums=(0, 1))
    got, report = _compiled(f, W, xs)
    assert report.target == "C" and report.compiled < report.operations, report
    monkeypatch.setenv(lowering.JIT_ENV, "replay")
    close(got, _compiled(f, W, xs)[0], rtol=1e-13, atol=1e-14)


@pytest.mark.gpu
def test_cuda_kernels_on_a_gpu():
    """On a GPU: the CUDA kernels (per point, and a sum over the points) equal the eager path."""
    import cupy

    X = cupy.asarray(np.random.default_rng(0).uniform(1, 3, size=(10_000, 2)))
    w = cupy.asarray([0.5, -1.5])
    for f, args in [
        (gpuad.vmap(gpuad.value_and_grad(_seed1)), (X,)),
        (gpuad.grad(lambda w, X: gnp.mean(gnp.sin(X @ w) ** 2)), (w, X)),
    ]:
        got, report = _compiled(f, *args)
        assert report.target == "CUDA" and report.kernels, report
        close(got, f(*args), rtol=1e-12, atol=1e-14)


def test_a_compiler_bug_falls_back_to_the_replay_and_says_so(cache, monkeypatch):
    from gpuad.compiler import fusion

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(fusion, "build_kernel", broken)
    X = np.random.default_rng(0).uniform(1, 3, size=(4, 2))
    f = gpuad.vmap(gpuad.grad(_seed1))
    with pytest.warns(lowering.CompileWarning, match="internal compiler error, please report: RuntimeError: a bug"):
        jitted = gpuad.jit(f)
        jitted(X)
    close(jitted(X), f(X), rtol=0, atol=0)
    monkeypatch.setenv(lowering.JIT_ENV, "compile")
    with pytest.raises(RuntimeError, match="a bug"):
        gpuad.jit(f)(X)


def test_sums_of_booleans_count_in_integers(cache):
    """NumPy's sum of booleans is an integer count: such a sum stays with the library."""
    X = np.random.default_rng(0).uniform(-1, 1, size=(6, 5))
    f = gpuad.vmap(lambda x: gnp.sum(x > 0) * gnp.sum(x))
    got, _ = _compiled(f, X)
    np.testing.assert_array_equal(got, np.sum(X > 0, axis=1) * np.sum(X, axis=1))


def test_float32_exp_over_its_whole_range(cache, monkeypatch):
    """float32 exp (the kernels' own, toolchain.PRELUDE): NumPy's values within 4 ulps (glibc's
    bound for its vector functions; NumPy's own float32 exp is not correctly rounded either) from
    underflow (denormals and 0) to overflow (inf), NaN kept without an invalid-operation flag (no
    fallback: the values come from the kernel); within 1 ulp of the correctly rounded value."""
    x = np.concatenate([np.linspace(-120, 100, 4001), [np.nan, np.inf, -np.inf, -87.5, -103.9, 88.72, 88.73]]).astype(np.float32)
    f = gpuad.vmap(lambda v: gnp.exp(v) * 1.0)
    with np.errstate(all="ignore"):
        got, report = _compiled(f, x)
        want = np.exp(x)
        exact = np.exp(x.astype(np.float64)).astype(np.float32)
    assert report.kernels, report
    assert got.dtype == np.float32
    finite = np.isfinite(want) & (want > 0)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(got[~finite & ~np.isnan(want)], want[~finite & ~np.isnan(want)])
    for reference, bound in ((want, 4), (exact, 1)):
        ulps = np.abs(got[finite].view(np.int32).astype(np.int64) - reference[finite].view(np.int32).astype(np.int64))
        assert ulps.max() <= bound, ulps.max()
    nans = np.full(40, np.nan, np.float32)  # (their own call: no overflow from the infinities)
    fallbacks = []
    original = lowering._AsArrayOperations.__call__
    monkeypatch.setattr(lowering._AsArrayOperations, "__call__", lambda self, *a: fallbacks.append(1) or original(self, *a))
    assert np.isnan(_compiled(f, nans)[0]).all() and not fallbacks
    x[3] = 1e3  # (an overflow: the launcher does hand it to NumPy, which warns)
    with pytest.warns(RuntimeWarning, match="overflow"):
        _compiled(f, x)
    assert fallbacks


def test_float64_tanh_over_its_whole_range(cache):
    """float64 tanh as expm1(2x) / (expm1(2x) + 2) (toolchain.PRELUDE): within 4 ulps of NumPy's
    and of the correctly rounded value, from subnormals through the cancellation near 0 to where
    it rounds to +-1; 0, -0.0, +-inf and NaN exactly NumPy's."""
    tiny = np.geomspace(5e-324, 1, 2000)
    x = np.concatenate([np.linspace(-30, 30, 6001), tiny, -tiny, [0.0, -0.0, np.inf, -np.inf, np.nan, 19.9, 20.1]])
    got, report = _compiled(gpuad.vmap(lambda v: gnp.tanh(v) * 1.0), x)
    assert report.kernels, report
    special = ~np.isfinite(x) | (x == 0)
    np.testing.assert_array_equal(got[special], np.tanh(x[special]))
    assert np.array_equal(np.signbit(got[special]), np.signbit(np.tanh(x[special])))
    exact = np.tanh(x.astype(np.longdouble)).astype(np.float64)
    for reference in (np.tanh(x), exact):
        ok = ~special
        ulps = np.abs(got[ok].view(np.int64) - reference[ok].view(np.int64))
        assert ulps.max() <= 4, ulps.max()


def _fake_cc(tmp_path, behaviour):
    """A 'C compiler' that answers --version and then fails ("fail") or writes a non-library."""
    script = tmp_path / "fake-cc"
    action = 'echo "fake-cc: error: no" >&2; exit 1' if behaviour == "fail" else 'while [ "$1" != "-o" ]; do shift; done; echo junk > "$2"; exit 0'
    script.write_text(f'#!/bin/sh\nif [ "$1" = "--version" ]; then echo "fake-cc 1.0"; exit 0; fi\n{action}\n')
    script.chmod(0o755)
    return str(script)


def test_a_compiler_that_refuses_or_builds_junk_is_a_clear_error(cache, monkeypatch, tmp_path):
    monkeypatch.setenv("CC", _fake_cc(tmp_path, "fail"))
    with pytest.raises(toolchain.CompileError, match="refused a generated kernel:\nfake-cc: error: no"):
        toolchain.build("int k0(void) { return 1; }")
    monkeypatch.setenv("CC", _fake_cc(tmp_path / "..", "junk"))
    with pytest.raises(toolchain.CompileError, match="a kernel library just built does not load"):
        toolchain.build("int k0(void) { return 2; }")
    with pytest.raises(toolchain.CompileError, match="nvcc does not run"):
        toolchain.cuda_ptx("", nvcc=str(tmp_path / "no-nvcc"))


def test_bad_results_of_a_jitted_function_under_a_transform():
    X = np.ones((3, 2))
    with pytest.raises(TypeError, match="jit: a leaf of the result must be an array or a Python number, got str"):
        gpuad.vmap(gpuad.jit(lambda x: {"a": x, "b": "text"}))(X)
    with pytest.raises(TypeError, match="jit: an argument of type set is neither an array nor hashable"):
        gpuad.vmap(gpuad.jit(lambda x, opts: x * len(opts)), in_axes=(0, None))(X, {1, 2})


@pytest.mark.parametrize(
    "a_shape, b_shape",
    [((3, 2), (3, 2, 2)), ((3, 4, 2), (2, 5)), ((3, 2), (2, 4)), ((2,), (3, 2, 4)), ((3, 2, 4), (4,)), ((3, 1, 2, 2), (3, 2, 2))],
)
def test_matrix_products_of_every_broadcast_shape(cache, a_shape, b_shape):
    """Which operand's leading axis is the points' axis depends on the other operand (NumPy
    broadcasts stacks): every shape pair gives NumPy's product."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
    with warnings.catch_warnings():
        warnings.simplefilter("error", lowering.CompileWarning)  # a wrong plan falls back: not here
        got, report = _compiled(lambda a, b: gnp.sin(a @ b) * 2.0, a, b)
    assert report.kernels, report
    np.testing.assert_allclose(got, np.sin(a @ b) * 2.0, rtol=1e-14, atol=1e-15)


def test_big_kernel_outputs_are_pooled_yet_stay_the_callers(cache):
    """Outputs of a MiB or more come from the call's buffer pool (no fresh pages per call), and a
    result the caller still holds is never written by a later call."""
    rng = np.random.default_rng(0)
    X1, X2 = rng.uniform(1, 3, size=(100_000, 2)), rng.uniform(1, 3, size=(100_000, 2))
    eager = gpuad.vmap(gpuad.value_and_grad(_seed1))
    f = gpuad.jit(eager)
    f(X1)
    v1, g1 = f(X1)
    kept = g1.copy()
    for _ in range(3):
        v2, g2 = f(X2)
        assert not np.shares_memory(g1, g2)
        np.testing.assert_array_equal(g1, kept)
    del v2, g2
    close(f(X2), eager(X2), rtol=1e-14, atol=0)
