"""The spec table: one row per tested function, each naming the primitives it exercises.

A row's function is written once against an array namespace ``xp`` and runs unchanged on
``gpuad.numpy`` (our side) and ``jax.numpy`` (the oracle), through the two adapters below.
Every primitive of ``gpuad.PRIMITIVES`` must appear in some row (tests/test_spec_coverage.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp
from gpuad import primitives as P


@dataclass(frozen=True)
class Domain:
    """Where an argument is sampled: uniform in [lo, hi], times a random sign when ``signed``; or,
    with ``matrix``, well-conditioned matrices on the last two axes (see ``sample_matrices``)."""

    shape: tuple[int, ...]
    lo: float = -2.0
    hi: float = 2.0
    signed: bool = False
    matrix: str | None = None  # "invertible", "spd" or "spectrum"

    def sample(self, rng: np.random.Generator, dtype: Any) -> np.ndarray:
        if self.matrix is not None:
            return np.asarray(sample_matrices(rng, self.shape, self.matrix), dtype=dtype)
        x = rng.uniform(self.lo, self.hi, size=self.shape)
        if self.signed:
            x = x * rng.choice([-1.0, 1.0], size=self.shape)
        return np.asarray(x, dtype=dtype)


def sample_matrices(rng: np.random.Generator, shape: tuple[int, ...], kind: str) -> np.ndarray:
    """Matrices of ``shape`` (..., m, n) far from the points where linear algebra's derivatives
    blow up:

    - "invertible": square, uniform entries in [-1, 1] plus (n + 1) times a random sign on the
      diagonal (diagonally dominant: condition number below about 3, determinants of either sign);
    - "spd": symmetric positive definite Q diag(w) Q^T, Q random orthogonal, eigenvalues
      1 + i + uniform(0, 0.5) (gaps of at least 0.5);
    - "spectrum": U diag(s) V^T with random orthonormal columns and singular values
      k - i + uniform(0, 0.5), k = min(m, n) (distinct, at least 1)."""
    lead, (m, n) = tuple(shape[:-2]), tuple(shape[-2:])
    if kind == "invertible":
        assert m == n, shape
        signs = rng.choice([-1.0, 1.0], size=lead + (n,))
        return rng.uniform(-1.0, 1.0, size=shape) + (n + 1) * signs[..., :, None] * np.eye(n)
    if kind == "spd":
        assert m == n, shape
        q = np.linalg.qr(rng.standard_normal(shape))[0]
        w = 1.0 + np.arange(n) + rng.uniform(0.0, 0.5, size=lead + (n,))
        return (q * w[..., None, :]) @ np.swapaxes(q, -1, -2)
    if kind == "spectrum":
        k = min(m, n)
        u = np.linalg.qr(rng.standard_normal(lead + (m, k)))[0]
        v = np.linalg.qr(rng.standard_normal(lead + (n, k)))[0]
        s = k - np.arange(k) + rng.uniform(0.0, 0.5, size=lead + (k,))
        return (u * s[..., None, :]) @ np.swapaxes(v, -1, -2)
    raise ValueError(f"unknown matrix kind {kind!r}")


@dataclass(frozen=True)
class Spec:
    name: str
    fn: Callable[..., Any]  # fn(xp, *arrays)
    args: tuple[Domain, ...]
    prims: tuple[str, ...]
    second_order: bool = True  # smooth enough at the sampled points for 2nd derivatives
    rtol32: float = 2e-4
    atol32: float = 2e-5
    extra: dict = field(default_factory=dict)
    # The backends (conftest.BACKENDS names) the row runs on; None: all. A function computed by a
    # library's own special functions (SciPy, cupyx) runs on NumPy and CuPy only: on the others
    # (the strict device among them) test_oracle checks the error that says so.
    backends: tuple[str, ...] | None = None

    def __str__(self) -> str:
        return self.name

    def runs_on(self, backend: str) -> bool:
        return self.backends is None or backend in self.backends


# ---------------------------------------------------------------------------------------------
# The two namespaces a row runs on
# ---------------------------------------------------------------------------------------------


class GpuadNS:
    """gpuad.numpy plus the internal primitives that have no public name."""

    def __getattr__(self, name: str) -> Any:
        if name == "checkpoint":
            return gpuad.checkpoint
        if name == "special":
            return gpuad.scipy.special
        return getattr(gnp, name)

    @staticmethod
    def embed(x: Any, index: tuple, shape: tuple) -> Any:
        return P.embed(x, index=(Ellipsis, *index), shape=shape)

    @staticmethod
    def put_add(x: Any, index: list[int], size: int) -> Any:
        idx = gnp.asarray(index, device=dev(x))
        return P.put_add(x, idx, axis=-1, size=size)

    @staticmethod
    def embed_add(base: Any, pieces: list[Any], indices: list[tuple], shape: tuple) -> Any:
        return P.embed_add(
            base, *pieces, indices=tuple((Ellipsis, *i) for i in indices), shape=shape, has_base=True
        )


class JaxNS:
    """jax.numpy plus the composites that live elsewhere in JAX."""

    def __init__(self) -> None:
        import jax
        import jax.numpy as jnp
        import jax.scipy.special as jss

        self._jnp = jnp
        self._extra = {
            "softmax": jax.nn.softmax,
            "log_softmax": jax.nn.log_softmax,
            "sigmoid": jax.nn.sigmoid,
            "relu": jax.nn.relu,
            "softplus": jax.nn.softplus,
            "logsumexp": jss.logsumexp,
            "stop_gradient": jax.lax.stop_gradient,
            "vector_norm": jnp.linalg.vector_norm,
            "checkpoint": jax.checkpoint,
            "special": jss,
        }

    def __getattr__(self, name: str) -> Any:
        if name in self._extra:
            return self._extra[name]
        return getattr(self._jnp, name)

    def embed(self, x: Any, index: tuple, shape: tuple) -> Any:
        return self._jnp.zeros(shape, dtype=x.dtype).at[index].set(x)

    def put_add(self, x: Any, index: list[int], size: int) -> Any:
        shape = x.shape[:-1] + (size,)
        return self._jnp.zeros(shape, dtype=x.dtype).at[..., self._jnp.asarray(index)].add(x)

    def embed_add(self, base: Any, pieces: list[Any], indices: list[tuple], shape: tuple) -> Any:
        out = base
        for p, i in zip(pieces, indices):
            out = out.at[i].add(p)
        return out


# ---------------------------------------------------------------------------------------------
# Rows
# ---------------------------------------------------------------------------------------------

M = (4, 3)  # a small batch of 3-vectors
R = Domain(M)  # reals
POS = Domain(M, 0.2, 3.0)
UNIT = Domain(M, -0.9, 0.9)
NONZERO = Domain(M, 0.3, 2.0, signed=True)

SPECS: list[Spec] = []

# The mark of the cases that the quick subset (python -m pytest -m "not slow") leaves out: the
# broadcasting variants of the binary rows and the float32 and extra batching-mode variants of the
# table's tests. The default run takes them all.
SLOW = pytest.mark.slow


def is_variant(s) -> bool:
    """A broadcasting variant of a binary op, or another row of a function that has a main row (a
    second domain, a keyword): checked at first order in float64; the higher-order, float32 and
    other-batching runs are its main row's."""
    return bool(s.extra.get("broadcast_variant") or s.extra.get("variant"))


def core(specs):
    """The rows without the variants (is_variant): for the expensive higher-order tests
    (broadcasting and the variants' domains are covered by the first-order tests of every row)."""
    return [s for s in specs if not is_variant(s)]


def spec_cases(specs):
    """One case per row, the broadcasting variants marked slow (the quick subset leaves them out)."""
    return [pytest.param(sp, id=sp.name, marks=SLOW if is_variant(sp) else ()) for sp in specs]


def dtype_cases(specs):
    """(spec, dtype) pairs: float64 for every row, float32 for the core rows only (float32 adds
    tolerance, not coverage, to the broadcasting variants): keeps the suite's time in bounds.
    The float32 cases and the broadcasting variants are marked slow: ``-m "not slow"`` (the quick
    subset) leaves them out."""
    core_names = {c.name for c in core(specs)}
    out = []
    for sp in specs:
        for dt in ("float64", "float32"):
            if dt == "float32" and sp.name not in core_names:
                continue
            slow = dt == "float32" or is_variant(sp)
            out.append(pytest.param(sp, dt, id=f"{dt}-{sp.name}", marks=SLOW if slow else ()))
    return out


def dev(x):
    """The device of x, for creating constants next to it (JAX tracers have none: None)."""
    try:
        return x.device
    except AttributeError:
        return None


def row(name, fn, args, prims, **kw):
    SPECS.append(Spec(name, fn, tuple(args), tuple(prims), **kw))


# Unary elementwise
row("negative", lambda xp, x: xp.negative(x), [R], ["negative"])
row("neg_operator", lambda xp, x: -x, [R], ["negative"])
row("positive", lambda xp, x: xp.positive(x) * x, [R], ["square"])  # positive(x) is x: x * x is square
row("abs", lambda xp, x: xp.abs(x), [NONZERO], ["abs"])
row("exp", lambda xp, x: xp.exp(x), [R], ["exp"])
# The fft extension's three primitives, real in and out (tests/test_fft.py has every function)
row(
    "fft_roundtrip",
    lambda xp, x: xp.fft.irfft(xp.fft.rfft(x * x) * xp.real(xp.fft.fft(x)[..., :3]), n=4) + xp.imag(xp.fft.ifft(x * 1j + x)),
    [Domain((4,))],
    ["fft_c2c", "rfft", "irfft", "multiply", "real", "imag", "getitem", "add"],
)
# Real in, real out, complex in between (tests/test_complex.py has the complex inputs): the real
# input's cotangent is the real part of a complex one (JAX's convention).
row(
    "complex_parts",
    lambda xp, x: xp.real(xp.exp(x * 1j)) * xp.imag(xp.sin(x * (0.5 + 1j))) + xp.real(xp.conj(x * (1 - 2j)) * x) + xp.abs(x * (1 + 1j)),
    [NONZERO],
    ["real", "imag", "conj", "exp", "sin", "multiply", "add", "abs"],
)
row("expm1", lambda xp, x: xp.expm1(x), [R], ["expm1"])
row("log", lambda xp, x: xp.log(x), [POS], ["log"])
row("log1p", lambda xp, x: xp.log1p(x), [Domain(M, -0.8, 3.0)], ["log1p"])
row("log2", lambda xp, x: xp.log2(x), [POS], ["log2"])
row("log10", lambda xp, x: xp.log10(x), [POS], ["log10"])
row("sqrt", lambda xp, x: xp.sqrt(x), [POS], ["sqrt"])
row("square", lambda xp, x: xp.square(x), [R], ["square"])
row("reciprocal", lambda xp, x: xp.reciprocal(x), [NONZERO], ["reciprocal"])
row("sin", lambda xp, x: xp.sin(x), [R], ["sin"])
row("cos", lambda xp, x: xp.cos(x), [R], ["cos"])
row("tan", lambda xp, x: xp.tan(x), [Domain(M, -1.2, 1.2)], ["tan"])
row("asin", lambda xp, x: xp.asin(x), [UNIT], ["asin"])
row("acos", lambda xp, x: xp.acos(x), [UNIT], ["acos"])
row("atan", lambda xp, x: xp.atan(x), [R], ["atan"])
row("sinh", lambda xp, x: xp.sinh(x), [R], ["sinh"])
row("cosh", lambda xp, x: xp.cosh(x), [R], ["cosh"])
row("tanh", lambda xp, x: xp.tanh(x), [R], ["tanh"])
row("asinh", lambda xp, x: xp.asinh(x), [R], ["asinh"])
row("acosh", lambda xp, x: xp.acosh(x), [Domain(M, 1.1, 4.0)], ["acosh"])
row("atanh", lambda xp, x: xp.atanh(x), [UNIT], ["atanh"])
row("sigmoid", lambda xp, x: xp.sigmoid(x), [Domain(M, -6.0, 6.0)], ["logistic"])
row("sigmoid_tails", lambda xp, x: xp.sigmoid(x), [Domain(M, 20.0, 40.0, signed=True)], ["logistic"])
row("pow_int2", lambda xp, x: x**2, [R], ["integer_pow"])
row("pow_int3", lambda xp, x: x**3, [R], ["integer_pow"])
row("pow_int5", lambda xp, x: xp.pow(x, 5), [R], ["integer_pow"])
row("pow_int_neg2", lambda xp, x: x**-2, [NONZERO], ["integer_pow"])
row("pow_int_neg1", lambda xp, x: x**-1, [NONZERO], ["integer_pow"])
row("pow_int0_and_1", lambda xp, x: x**0 * x**1 + x, [R], ["integer_pow", "add", "multiply"])
row("scalar_ops", lambda xp, x: 2.5 * x - x / 3 + (1.5 - x) * 0.5 + 2.0**x, [R], ["multiply", "subtract", "divide", "pow", "add"])
row("pow_float_scalar", lambda xp, x: x**2.5, [POS], ["pow"])

# Binary elementwise, with broadcasting and size-1 axes
SHAPE_PAIRS = [((4, 3), (4, 3)), ((4, 3), (3,)), ((4, 1), (1, 3)), ((), (3,)), ((2, 1, 3), (4, 1))]


def binary(name, fn, prims, dx=(-2.0, 2.0), dy=(-2.0, 2.0), sy=False, **kw):
    base_extra = kw.pop("extra", {})
    for k, (sa, sb) in enumerate(SHAPE_PAIRS):
        extra = dict(base_extra, broadcast_variant=k > 0)
        row(
            f"{name}{list(sa)}{list(sb)}",
            fn,
            [Domain(sa, *dx), Domain(sb, *dy, signed=sy)],
            prims,
            extra=extra,
            **kw,
        )


binary("add", lambda xp, x, y: xp.add(x, y), ["add"])
binary("subtract", lambda xp, x, y: x - y, ["subtract"])
binary("multiply", lambda xp, x, y: x * y, ["multiply"])
binary("divide", lambda xp, x, y: x / y, ["divide"], dy=(0.4, 2.0), sy=True)
binary("pow", lambda xp, x, y: xp.pow(x, y), ["pow"], dx=(0.3, 2.0))
binary("maximum", lambda xp, x, y: xp.maximum(x, y), ["maximum"], second_order=True)
binary("minimum", lambda xp, x, y: xp.minimum(x, y), ["minimum"])
binary("atan2", lambda xp, x, y: xp.atan2(x, y), ["atan2"], dy=(0.3, 2.0), sy=True)
binary("hypot", lambda xp, x, y: xp.hypot(x, y), ["hypot"], dx=(0.3, 2.0))
binary("logaddexp", lambda xp, x, y: xp.logaddexp(x, y), ["logaddexp"])
binary("remainder", lambda xp, x, y: xp.remainder(x, y), ["remainder"], dx=(-5.0, 5.0), dy=(0.7, 2.0))
row("where", lambda xp, c, x, y: xp.where(c > 0, x * y, y - x), [R, R, Domain((3,))], ["where", "greater"])
row("where_scalar", lambda xp, x: xp.where(x > 0, x, 0.0) + xp.where(x < 0.5, 1.0, x * x), [R], ["where", "less"])
row("clip", lambda xp, x: xp.clip(x, -0.5, 0.8), [R], ["maximum", "minimum"])
row("clip_arrays", lambda xp, x, lo: xp.clip(x, lo, 1.0), [R, Domain((3,), -1.0, 0.0)], ["maximum", "minimum"])

# Zero-derivative operations, used next to a differentiable one. (Rows keep traced values on the
# left of operators where an operand may be a plain array: array_api_strict raises instead of
# deferring to the traced value's reflected operator; NumPy and CuPy defer.)
row("sign", lambda xp, x: x * xp.sign(x), [NONZERO], ["sign"])
row("floor", lambda xp, x: x * xp.floor(x), [Domain(M, -3.0, 3.0)], ["floor"])
row("ceil", lambda xp, x: x * xp.ceil(x), [Domain(M, -3.0, 3.0)], ["ceil"])
row("round", lambda xp, x: x * xp.round(x), [Domain(M, -3.0, 3.0)], ["round"])
row("trunc", lambda xp, x: x * xp.trunc(x), [Domain(M, -3.0, 3.0)], ["trunc"])
row("floor_divide", lambda xp, x, y: x * (x // y), [Domain(M, -3.0, 3.0), Domain((3,), 0.7, 2.0)], ["floor_divide"])


def _mask(xp, m, x):
    return xp.astype(m, x.dtype)


row("isnan_isinf_isfinite", lambda xp, x: x * _mask(xp, xp.isfinite(x) & ~xp.isnan(x) & ~xp.isinf(x), x), [R], ["isnan", "isinf", "isfinite", "logical_and", "logical_not", "convert"])
row("signbit", lambda xp, x: x * _mask(xp, xp.signbit(x), x), [NONZERO], ["signbit"])
row("comparisons", lambda xp, x, y: x * _mask(xp, (x < y) | (x <= y * 0.5), x) + _mask(xp, (x > y) ^ (x >= y * 2), y) * y + x * _mask(xp, (x == y) | (x != y), x), [R, R], ["less", "less_equal", "greater", "greater_equal", "equal", "not_equal", "logical_or", "logical_xor"])
row("stop_gradient", lambda xp, x: x * xp.stop_gradient(x * x), [R], ["stop_gradient"], extra={"fd": False})
row("convert_to_int", lambda xp, x: x * xp.astype(xp.astype(x * 3, xp.int64), x.dtype), [Domain(M, -3.0, 3.0)], ["convert"])
row("astype_roundtrip", lambda xp, x: xp.astype(xp.astype(x, xp.float32), xp.float64) * x, [R], ["astype"], rtol32=2e-4, extra={"rtol64": 1e-6, "fd": False})
row("argmax_argmin", lambda xp, x: xp.sum(x, axis=-1) * xp.astype(xp.argmax(x, axis=-1) - xp.argmin(x, axis=0)[0], x.dtype), [R], ["argmax", "argmin"])
row("all_any", lambda xp, x: x * _mask(xp, xp.all(x > -1.5, axis=0) | xp.any(x > 1.9, axis=0), x), [R], ["all", "any"])

# Reductions
X3 = Domain((4, 3, 2))
row("sum_all", lambda xp, x: xp.sum(x), [X3], ["sum"])
row("sum_axis", lambda xp, x: xp.sum(x, axis=1), [X3], ["sum"])
row("sum_axes_keepdims", lambda xp, x: xp.sum(x * x, axis=(0, 2), keepdims=True), [X3], ["sum"])
row("mean", lambda xp, x: xp.mean(x, axis=-1), [X3], ["sum", "divide"])
row("var", lambda xp, x: xp.var(x, axis=0, correction=1), [X3], ["sum", "square"])
row("std", lambda xp, x: xp.std(x, axis=1, keepdims=True), [X3], ["sqrt", "sum"])
row("prod", lambda xp, x: xp.prod(x, axis=1), [Domain((4, 3, 2), 0.5, 1.5)], ["prod"])
row("prod_all", lambda xp, x: xp.prod(x), [Domain((2, 3), 0.5, 1.5)], ["prod"])
row("prod_with_zeros", lambda xp, x: xp.prod(x * xp.asarray([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 0.0, 1.0]], dtype=x.dtype, device=dev(x)), axis=-1), [Domain(M, 0.5, 1.5)], ["prod"])
row("max", lambda xp, x: xp.max(x, axis=-1), [X3], ["max"])
row("max_all", lambda xp, x: xp.max(x), [X3], ["max"])
row("min", lambda xp, x: xp.min(x, axis=(0, 1), keepdims=True), [X3], ["min"])
row("cumulative_sum", lambda xp, x: xp.cumulative_sum(x, axis=1), [X3], ["cumulative_sum"])
row("cumulative_sum_initial", lambda xp, x: xp.cumulative_sum(x * x, axis=0, include_initial=True), [X3], ["cumulative_sum"])
row("logsumexp", lambda xp, x: xp.logsumexp(x, axis=-1), [X3], ["exp", "log", "max", "sum"])
# Its second derivatives are cancellations (~1e-30 from terms of ~1): JAX compiled as one program
# rounds them to ~1e-11 (float64) and ~1e-2 (float32), JAX op by op to 0 as gpuad does, so its
# oracle runs op by op (tests/helpers.py, oracle).
row("logsumexp_big", lambda xp, x: xp.logsumexp(x * 300.0), [Domain((5,), 1.0, 3.0)], ["exp", "log"], extra={"op_by_op": True})
row("softmax", lambda xp, x: xp.softmax(x, axis=1), [X3], ["exp", "sum", "divide"])
row("log_softmax", lambda xp, x: xp.log_softmax(x, axis=-1), [X3], ["exp", "log", "subtract"])
row("softplus", lambda xp, x: xp.softplus(x), [Domain(M, -30.0, 30.0)], ["logaddexp", "custom_jvp_call"])
# A checkpointed segment: reverse mode records one line that recomputes it (jax.checkpoint).
row("checkpoint", lambda xp, x: xp.checkpoint(lambda v: xp.sin(v) * v)(x), [R], ["checkpoint", "sin", "multiply"])
row("relu", lambda xp, x: xp.relu(x), [NONZERO], ["relu"])
row("vector_norm", lambda xp, x: xp.vector_norm(x, axis=-1), [R], ["sqrt", "sum", "square"])
row("vector_norm_all_keepdims", lambda xp, x: xp.vector_norm(x, keepdims=True), [X3], ["sqrt", "sum"])
row("vector_norm_ord1", lambda xp, x: xp.vector_norm(x, axis=0, ord=1), [NONZERO], ["abs", "sum"])
row("vector_norm_ord3", lambda xp, x: xp.vector_norm(x, axis=-1, ord=3), [NONZERO], ["abs", "pow"])
row("vector_norm_inf", lambda xp, x: xp.vector_norm(x, axis=-1, ord=float("inf")), [NONZERO], ["abs", "max"])

# Linear algebra
row("matmul", lambda xp, a, b: a @ b, [Domain((3, 4)), Domain((4, 5))], ["matmul"])
row("matmul_batched", lambda xp, a, b: xp.matmul(a, b), [Domain((2, 3, 4)), Domain((4, 5))], ["matmul"])
row("matmul_broadcast", lambda xp, a, b: a @ b, [Domain((1, 3, 4)), Domain((2, 4, 5))], ["matmul"])
row("matmul_vec_mat", lambda xp, a, b: a @ b, [Domain((4,)), Domain((4, 5))], ["matmul"])
row("matmul_mat_vec", lambda xp, a, b: a @ b, [Domain((2, 3, 4)), Domain((4,))], ["matmul"])
row("matmul_vec_vec", lambda xp, a, b: xp.matmul(a, b), [Domain((4,)), Domain((4,))], ["matmul"])
row("tensordot_1", lambda xp, a, b: xp.tensordot(a, b, axes=1), [Domain((3, 4)), Domain((4, 5))], ["matmul"])
row("tensordot_pairs", lambda xp, a, b: xp.tensordot(a, b, axes=([0], [1])), [Domain((4, 3)), Domain((5, 4))], ["matmul", "permute_dims"])
row("tensordot_2", lambda xp, a, b: xp.tensordot(a, b, axes=2), [Domain((2, 3, 4)), Domain((3, 4, 5))], ["matmul", "reshape"])
row("vecdot", lambda xp, a, b: xp.vecdot(a, b), [Domain((4, 3)), Domain((3,))], ["multiply", "sum"])
row("matrix_transpose", lambda xp, a: xp.matrix_transpose(a) * a.mT, [Domain((2, 3, 4))], ["permute_dims"])
row("transpose_T", lambda xp, a: a.T @ a, [Domain((3, 4))], ["permute_dims", "matmul"])

# Structure
row("reshape", lambda xp, x: xp.reshape(x, (6, 4)) * 2.0, [X3], ["reshape"])
row("reshape_flat", lambda xp, x: xp.reshape(x, (-1,)), [X3], ["reshape"])
row("permute_dims", lambda xp, x: xp.permute_dims(x, (2, 0, 1)), [X3], ["permute_dims"])
row("expand_dims", lambda xp, x: xp.expand_dims(x, axis=1) * x[:, None, :], [R], ["reshape", "getitem"])
row("squeeze", lambda xp, x: xp.squeeze(x, axis=1), [Domain((4, 1, 3))], ["reshape"])
row("broadcast_to", lambda xp, x: xp.broadcast_to(x, (4, 3)), [Domain((3,))], ["broadcast_to"])
row("broadcast_to_inner", lambda xp, x: xp.broadcast_to(x, (2, 4, 5)), [Domain((4, 1))], ["broadcast_to"])
row("concat", lambda xp, a, b, c: xp.concat([a, b * 2.0, c], axis=-1), [Domain((4, 1)), Domain((4, 3)), Domain((4, 2))], ["concat"])
row("concat_axis0_one_const", lambda xp, a: xp.concat([a, xp.ones_like(a)], axis=0) * 3.0, [R], ["concat"])
row("concat_none", lambda xp, a, b: xp.concat([a, b], axis=None), [R, Domain((2,))], ["concat", "reshape"])
row("stack", lambda xp, a, b: xp.stack([a, b], axis=1), [R, R], ["concat", "reshape"])
row("flip", lambda xp, x: xp.flip(x, axis=0) * x, [X3], ["flip"])
row("flip_all", lambda xp, x: xp.flip(x), [X3], ["flip"])
row("moveaxis", lambda xp, x: xp.moveaxis(x, 0, -1), [X3], ["permute_dims"])

# Indexing
row("slice", lambda xp, x: x[1:, ::2], [X3], ["getitem"])
row("ellipsis_int", lambda xp, x: x[..., 0] * x[..., 1], [X3], ["getitem"])
row("none_int_slice", lambda xp, x: x[None, 0, :], [X3], ["getitem"])
row("negative_int", lambda xp, x: x[-1], [X3], ["getitem"])
row("slice_newaxis", lambda xp, x: x[:, 1:2, None] * 2.0, [X3], ["getitem"])
row("reverse_slice", lambda xp, x: x[::-1, 2:0:-1], [X3], ["getitem"])
row("take_repeats", lambda xp, x: x[xp.asarray([0, 2, 2, 3], device=dev(x))], [X3], ["take"])
row("take_axis1", lambda xp, x: x[:, xp.asarray([2, 0], device=dev(x))], [X3], ["take"])
row("take_negative", lambda xp, x: x[:, xp.asarray([-1, 0, -1], device=dev(x)), 1], [X3], ["take", "reshape"])
row("take_pairs", lambda xp, x: x[xp.asarray([0, 1, 3, 3], device=dev(x)), xp.asarray([2, 2, 0, 2], device=dev(x))], [X3], ["take", "reshape"])
row("take_int_and_array", lambda xp, x: x[1, xp.asarray([0, 2, 0], device=dev(x))], [X3], ["take"])
row("take_2d_index", lambda xp, x: x[xp.asarray([[0, 1], [3, 3]], device=dev(x))], [X3], ["take", "reshape"])
row("embed", lambda xp, x: xp.embed(x, (slice(1, 3), 0), (4, 3)) * 2.0, [Domain((2,))], ["embed"])
row("put_add", lambda xp, x: xp.put_add(x, [0, 2, 2, 1, 0], 3), [Domain((4, 5))], ["put_add"])
# The engine's buffer for the cotangents of several getitems: overlapping parts add up.
row(
    "embed_add",
    lambda xp, b, p, q: xp.embed_add(b, [p, q, p * p], [(0, slice(None)), (slice(1, 3), 2), (3, slice(None))], (4, 3)) * 2.0,
    [Domain((4, 3)), Domain((3,)), Domain((2,))],
    ["embed_add"],
)

# The seed notes' functions, written for a batch of points
row(
    "seed1_batch",
    lambda xp, x: xp.log(x[..., 0]) + x[..., 0] * x[..., 1] - xp.sin(x[..., 1]),
    [Domain((5, 2), 1.0, 3.0)],
    ["log", "multiply", "sin", "add", "subtract", "getitem"],
)
row(
    "seed2_batch",
    lambda xp, x: (xp.sin(x[..., 0] / x[..., 1]) + x[..., 0] / x[..., 1] - xp.exp(x[..., 1]))
    * (x[..., 0] / x[..., 1] - xp.exp(x[..., 1])),
    [Domain((5, 2), 0.5, 2.0)],
    ["sin", "divide", "exp", "multiply"],
)

# einsum (issue 22): each pairwise contraction is one matmul, a broadcast multiply when nothing
# is summed; diagonals are a strided slice of the merged axes.
row("einsum_matmul", lambda xp, a, b: xp.einsum("ij,jk->ik", a, b), [Domain((3, 4)), Domain((4, 5))], ["matmul"])
row("einsum_batched", lambda xp, a, b: xp.einsum("bij,bjk->bik", a, b), [Domain((2, 3, 4)), Domain((2, 4, 5))], ["matmul"])
row("einsum_mixture", lambda xp, L, d: xp.einsum("krc,nkc->nkr", L, d), [Domain((3, 2, 4)), Domain((5, 3, 4))], ["matmul", "permute_dims"])
row("einsum_outer", lambda xp, a, b: xp.einsum("i,j->ij", a, b), [Domain((3,)), Domain((4,))], ["multiply", "reshape"])
row("einsum_dot", lambda xp, a, b: xp.einsum("i,i", a, b), [Domain((4,)), Domain((4,))], ["matmul"])
row("einsum_trace", lambda xp, a: xp.einsum("ii", a), [Domain((3, 3))], ["getitem", "reshape", "sum"])
row("einsum_diagonal", lambda xp, a: xp.einsum("iji->ij", a), [Domain((3, 2, 3))], ["getitem", "reshape", "permute_dims"])
row("einsum_transpose", lambda xp, a: xp.einsum("ijk->kij", a), [X3], ["permute_dims"])
row("einsum_sum", lambda xp, a: xp.einsum("ijk->j", a), [X3], ["sum"])
row("einsum_ellipsis", lambda xp, a, b: xp.einsum("...ij,...jk->...ik", a, b), [Domain((2, 3, 4)), Domain((4, 5))], ["matmul"])
row("einsum_ellipsis_summed", lambda xp, a: xp.einsum("...i->i", a), [X3], ["sum"])
row("einsum_three", lambda xp, a, b, c: xp.einsum("ij,jk,kl->il", a, b, c), [Domain((2, 3)), Domain((3, 4)), Domain((4, 5))], ["matmul"])
row("einsum_bilinear", lambda xp, u, A, v: xp.einsum("i,ij,j", u, A, v), [Domain((3,)), Domain((3, 4)), Domain((4,))], ["matmul"])
row("einsum_size1", lambda xp, a, b: xp.einsum("ij,ij->ij", a, b), [Domain((3, 1)), Domain((3, 4))], ["multiply", "reshape"])
row("einsum_size1_summed", lambda xp, a, b: xp.einsum("ij,jk->ik", a, b), [Domain((3, 1)), Domain((4, 5))], ["sum", "multiply"])

# .at updates: x.at[idx].set(v), .add, .multiply, .min, .max (gpuad.numpy.at on plain arrays,
# which have no .at; the traced values' own .at otherwise, as jax.numpy's arrays)


def at_(x):
    return x.at if hasattr(type(x), "at") else gnp.at(x)


def _ix(xp, x, index):
    return xp.asarray(index, device=dev(x))


row("at_set_basic", lambda xp, x, v: at_(x)[1, 1:].set(v) * 2.0, [Domain((4, 3)), Domain((2,))], ["set_part"])
row("at_set_broadcast", lambda xp, x, v: at_(x)[:, None, 0].set(v), [Domain((4, 3)), Domain(())], ["set_part", "broadcast_to"])
row("at_set_negative_step", lambda xp, x, v: at_(x)[::-2, -1].set(v * v), [Domain((4, 3)), Domain((2,))], ["set_part"])
row("at_add_basic", lambda xp, x, v: at_(x)[..., 1:3].add(v), [Domain((4, 3)), Domain((2,))], ["set_part", "getitem", "add"])
row("at_multiply_basic", lambda xp, x, v: at_(x)[2].multiply(v), [Domain((4, 3)), Domain((3,))], ["set_part", "multiply"])
row("at_min_basic", lambda xp, x, v: at_(x)[1:3].min(v), [Domain((4, 3)), Domain((3,))], ["set_part", "minimum"])
row("at_max_basic", lambda xp, x, v: at_(x)[-1].max(v), [Domain((4, 3)), Domain((3,))], ["set_part", "maximum"])
row("at_set_repeats", lambda xp, x, v: at_(x)[_ix(xp, x, [0, 2, 0, -1])].set(v), [Domain((4, 3)), Domain((4, 3))], ["take", "where"])
row("at_set_repeats_broadcast", lambda xp, x, v: at_(x)[:, _ix(xp, x, [1, -1, 1])].set(v), [Domain((4, 3)), Domain((4, 1))], ["take", "where"])
row("at_add_repeats", lambda xp, x, v: at_(x)[_ix(xp, x, [0, 2, 0, -1])].add(v), [Domain((4, 3)), Domain((4, 3))], ["put_add"])
row("at_add_pairs", lambda xp, x, v: at_(x)[_ix(xp, x, [0, 3, 0]), _ix(xp, x, [2, -1, 2])].add(v), [Domain((4, 3)), Domain((3,))], ["put_add", "reshape"])
row("at_add_slice_and_array", lambda xp, x, v: at_(x)[1:, _ix(xp, x, [2, 0, 2])].add(v), [Domain((4, 3)), Domain((3,))], ["put_add", "set_part"])
# repeated indices: the updates' product (here constant: JAX has no derivative for them) scales x
row("at_multiply_repeats_x", lambda xp, x: at_(x)[_ix(xp, x, [1, 1, 3])].multiply(xp.asarray([[0.5], [-2.0], [3.0]], dtype=x.dtype, device=dev(x))), [Domain((4, 3))], ["multiply"])
# JAX differentiates a multiply with respect to the updates only with unique_indices=True
row("at_multiply_unique", lambda xp, x, v: at_(x)[_ix(xp, x, [2, 0])].multiply(v, unique_indices=True), [Domain((4, 3)), Domain((2, 3))], ["put_mul"])
row("at_min_repeats", lambda xp, x, v: at_(x)[_ix(xp, x, [0, 2, 0, -1])].min(v), [Domain((4, 3)), Domain((4, 3))], ["put_min"])
row("at_max_repeats", lambda xp, x, v: at_(x)[:, _ix(xp, x, [1, 1, 0])].max(v), [Domain((4, 3)), Domain((3,))], ["put_max"])

# array API functions (issue 22): composites of the functions above (their rows name the entries
# they apply), the sorting and searching entries and the elementwise ones without a derivative.
# Integer results join a row through astype (no derivative), as the masks above.


def _bits(xp, x):
    return xp.astype(xp.floor(xp.abs(x) * 4.0), xp.int64)


def _counts(xp, x, counts):
    """repeat's counts as a constant array next to x (for JAX a NumPy array: jnp.repeat under jit
    needs them static)."""
    return np.asarray(counts) if isinstance(xp, JaxNS) else xp.asarray(counts, device=dev(x))


row("take_fn", lambda xp, x: xp.take(x, xp.asarray([2, 0, -1, 2], device=dev(x)), axis=1), [X3], ["take"])
row("take_fn_1d", lambda xp, x: xp.take(x[0, 0], xp.asarray([1, 1, 0], device=dev(x))), [X3], ["take"])
row("take_along_axis", lambda xp, x: xp.take_along_axis(x, xp.asarray([[[1], [0], [-1]]], device=dev(x)), axis=-1), [X3], ["take"])
row("sort", lambda xp, x: xp.sort(x, axis=0) * x, [X3], ["argsort", "take"])
row("sort_descending", lambda xp, x: xp.sort(x, descending=True), [X3], ["argsort", "take", "flip"])
row("argsort_gather", lambda xp, x: xp.take_along_axis(x, xp.argsort(x * x, axis=1, descending=True), axis=1), [X3], ["argsort", "take"])
row("tile", lambda xp, x: xp.tile(x, (2, 1, 3)), [Domain((2, 3))], ["broadcast_to", "reshape"])
row("tile_prepend", lambda xp, x: xp.tile(x, (2,)), [X3], ["broadcast_to", "reshape"])
row("repeat_int", lambda xp, x: xp.repeat(x, 2, axis=1), [X3], ["broadcast_to", "reshape"])
row("repeat_flat", lambda xp, x: xp.repeat(x, 3), [Domain((2, 3))], ["broadcast_to", "reshape"])
row("repeat_array", lambda xp, x: xp.repeat(x, _counts(xp, x, [1, 0, 2]), axis=1), [X3], ["take"])
row("roll", lambda xp, x: xp.roll(x, -1, axis=1) * xp.roll(x, 7, axis=0), [X3], ["getitem", "concat"])
row("roll_flat_tuple", lambda xp, x: xp.roll(x, 5) + xp.roll(x, (1, -2), axis=(0, 2)), [X3], ["getitem", "concat", "reshape"])
row("tril_triu", lambda xp, x: xp.tril(x, k=-1) + xp.triu(x, k=1) * 2.0, [X3], ["where"])
row("diff", lambda xp, x: xp.diff(x, axis=0, n=2), [X3], ["getitem", "subtract"])
row("diff_prepend_append", lambda xp, x, p: xp.diff(x, prepend=p, append=x[..., :2]), [Domain((4, 3)), Domain((4, 1))], ["concat", "getitem", "subtract"])
row("cumulative_prod", lambda xp, x: xp.cumulative_prod(x, axis=1), [X3], ["multiply", "concat"])
row("cumulative_prod_initial", lambda xp, x: xp.cumulative_prod(x[0, 0], include_initial=True), [X3], ["multiply", "concat"])
row("unstack", lambda xp, x: xp.unstack(x, axis=1)[2] * xp.unstack(x)[0][0], [X3], ["getitem", "multiply"])
row("meshgrid", lambda xp, a, b: xp.meshgrid(a, b)[0] * xp.meshgrid(a, b, indexing="ij")[1].T, [Domain((3,)), Domain((2,))], ["broadcast_to", "reshape"])
row("copysign", lambda xp, x, y: xp.copysign(x, y), [NONZERO, Domain((3,), 0.3, 2.0, signed=True)], ["copysign"])
row("nextafter", lambda xp, x: x * xp.nextafter(xp.floor(x * 0.0) + 1.0, 2.0), [R], ["nextafter", "floor"])
row(
    "searchsorted",
    lambda xp, x: x * xp.astype(xp.searchsorted(xp.stop_gradient(xp.sort(x[0])), x, side="right"), x.dtype),
    [R],
    ["searchsorted"],
)
row("count_nonzero", lambda xp, x: x * xp.astype(xp.count_nonzero(xp.floor(x), axis=0), x.dtype), [R], ["not_equal", "convert", "sum"])
row(
    "bitwise",
    lambda xp, x: x * xp.astype(
        xp.bitwise_xor(xp.bitwise_or(xp.bitwise_and(_bits(xp, x), 6), 1), xp.bitwise_right_shift(xp.bitwise_left_shift(_bits(xp, x), 2), 1))
        + xp.bitwise_invert(_bits(xp, x)),
        x.dtype,
    ),
    [R],
    ["bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_left_shift", "bitwise_right_shift", "bitwise_invert"],
)


# Special functions (issue 23): gpuad.scipy.special against jax.scipy.special, each where it is
# smooth. Those computed by SciPy (cupyx on CuPy) run on NumPy and CuPy only (SPECIAL); xlogy,
# xlog1py, logit and expit are written with the array API and run everywhere.
SPECIAL = ("numpy", "cupy")


def special_row(name, fn, args, prims, **kw):
    row(name, fn, args, prims, backends=SPECIAL, **kw)


special_row("erf", lambda xp, x: xp.special.erf(x), [R], ["erf"])
special_row("erf_tails", lambda xp, x: xp.special.erf(x), [Domain(M, 2.5, 5.0, signed=True)], ["erf"])
special_row("erfc", lambda xp, x: xp.special.erfc(x), [Domain(M, -3.0, 6.0)], ["erfc"])
special_row("erfinv", lambda xp, x: xp.special.erfinv(x), [Domain(M, -0.95, 0.95)], ["erfinv"])
special_row("erfinv_near_one", lambda xp, x: xp.special.erfinv(x), [Domain(M, 0.97, 0.997, signed=True)], ["erfinv"])
special_row("gammaln", lambda xp, x: xp.special.gammaln(x), [Domain(M, 0.1, 8.0)], ["gammaln"])
special_row("gammaln_negative", lambda xp, x: xp.special.gammaln(x), [Domain(M, -2.9, -2.1)], ["gammaln"])
special_row("digamma", lambda xp, x: xp.special.digamma(x), [Domain(M, 0.2, 8.0)], ["digamma"])
special_row("digamma_negative", lambda xp, x: xp.special.digamma(x), [Domain(M, -1.8, -1.2)], ["digamma"])
special_row("polygamma", lambda xp, x: xp.special.polygamma(2, x), [Domain(M, 0.3, 5.0)], ["polygamma"])
special_row(
    "polygamma_orders",
    lambda xp, x: xp.special.polygamma(xp.asarray([0, 1, 3], device=dev(x)), x),
    [Domain(M, 0.5, 4.0)],
    ["polygamma"],
)
special_row("ndtr", lambda xp, x: xp.special.ndtr(x), [Domain(M, -4.0, 4.0)], ["erf", "erfc", "where", "abs"])
special_row("log_ndtr", lambda xp, x: xp.special.log_ndtr(x), [Domain(M, -3.0, 3.0)], ["log_ndtr"])
# The left tail, where ndtr(x) is tiny (1e-33 to 1e-88) and, below -37.5, 0 in float64. JAX sums an
# asymptotic series below -20 (float64; -10 in float32), truncated after 3 terms: its values there
# are off by up to 105 / x**8 (4e-9 at -20, 7e-12 at -60) and its derivatives, exp(log pdf - value),
# by as much relatively, where gpuad's (SciPy's) are exact to rounding. So the far tail is compared
# at that tolerance. The second derivative there, f' (-x - f'), cancels x**2-fold in both libraries
# (float32 keeps no digit of it at -50): tests/test_special.py checks it in float64 at chosen points.
special_row("log_ndtr_left_tail", lambda xp, x: xp.special.log_ndtr(x), [Domain(M, -19.9, -8.0)], ["log_ndtr"], second_order=False)
special_row(
    "log_ndtr_far_tail", lambda xp, x: xp.special.log_ndtr(x), [Domain(M, -60.0, -20.0)], ["log_ndtr"], second_order=False, extra={"rtol64": 5e-9}
)
special_row("i0e", lambda xp, x: xp.special.i0e(x), [Domain(M, 0.2, 12.0, signed=True)], ["i0e"])
special_row("i1e", lambda xp, x: xp.special.i1e(x), [Domain(M, 0.2, 12.0, signed=True)], ["i1e"])
row("xlogy", lambda xp, x, y: xp.special.xlogy(x, y), [R, Domain((3,), 0.3, 3.0)], ["xlogy"])
row("xlog1py", lambda xp, x, y: xp.special.xlog1py(x, y), [R, Domain((3,), -0.7, 2.0)], ["xlog1py"])
row("logit", lambda xp, x: xp.special.logit(x), [Domain(M, 0.05, 0.95)], ["logit"])
row("expit", lambda xp, x: xp.special.expit(x * 3.0), [R], ["logistic"])
# gpuad.numpy.linalg (issue 23): the factorizations are table entries, the rest composites.
# Eigenvectors and singular vectors enter through sign-free functions of them (v * v), since
# their signs are each library's choice; QR's are LAPACK's Householder signs in both libraries.


def INV(*shape):
    return Domain(shape, matrix="invertible")


def SPD(*shape):
    return Domain(shape, matrix="spd")


def SPEC(*shape):
    return Domain(shape, matrix="spectrum")


def _eigh_row(xp, a):
    w, v = xp.linalg.eigh(a)
    return v * v * w[..., None, :]


def _svd_row(xp, a):
    u, s, vh = xp.linalg.svd(a, full_matrices=False)
    return (u * u * s[..., None, :]) @ (vh * vh)


def _qr_row(xp, a):
    q, r = xp.linalg.qr(a)
    return xp.concat([q, r], axis=-2)


def _slogdet_row(xp, a):
    sign, logabsdet = xp.linalg.slogdet(a)
    return sign * logabsdet


LOOSE32 = dict(rtol32=2e-3, atol32=2e-4)
row("linalg_det", lambda xp, a: xp.linalg.det(a), [INV(2, 3, 3)], ["det"])
row("linalg_det_one", lambda xp, a: xp.linalg.det(a) * 2.0, [INV(4, 4)], ["det"])
row("linalg_slogdet", _slogdet_row, [INV(2, 3, 3)], ["slogdet", "getitem"])
row("linalg_inv", lambda xp, a: xp.linalg.inv(a), [INV(2, 3, 3)], ["inv"])
row("linalg_solve", lambda xp, a, b: xp.linalg.solve(a, b), [INV(2, 3, 3), Domain((2, 3, 2))], ["solve"])
row("linalg_solve_vector", lambda xp, a, b: xp.linalg.solve(a, b), [INV(3, 3), Domain((3,))], ["solve", "reshape"])
row("linalg_solve_shared", lambda xp, a, b: xp.linalg.solve(a, b), [INV(3, 3), Domain((2, 3, 2))], ["solve"])
row("linalg_cholesky", lambda xp, a: xp.linalg.cholesky(a), [SPD(2, 3, 3)], ["cholesky", "add", "multiply"], **LOOSE32)
row("linalg_cholesky_upper", lambda xp, a: xp.linalg.cholesky(a, upper=True), [SPD(3, 3)], ["cholesky", "permute_dims"], **LOOSE32)
row("linalg_eigh", _eigh_row, [SPD(2, 3, 3)], ["eigh", "getitem"], **LOOSE32)
row("linalg_eigvalsh", lambda xp, a: xp.linalg.eigvalsh(a), [SPD(2, 3, 3)], ["eigh"], **LOOSE32)
row("linalg_svd_tall", _svd_row, [SPEC(2, 4, 3)], ["svd", "getitem", "matmul"], **LOOSE32)
row("linalg_svd_wide", _svd_row, [SPEC(3, 5)], ["svd", "getitem", "matmul"], **LOOSE32)
row("linalg_svd_square", _svd_row, [SPEC(2, 3, 3)], ["svd"], **LOOSE32)
row("linalg_svdvals", lambda xp, a: xp.linalg.svdvals(a), [SPEC(2, 3, 4)], ["svd", "getitem"], **LOOSE32)
row("linalg_qr_tall", _qr_row, [SPEC(2, 4, 3)], ["qr", "getitem", "concat"], **LOOSE32)
row("linalg_qr_square", _qr_row, [INV(3, 3)], ["qr"], **LOOSE32)
row("linalg_pinv_tall", lambda xp, a: xp.linalg.pinv(a), [SPEC(2, 4, 3)], ["pinv"], **LOOSE32)
row("linalg_pinv_wide", lambda xp, a: xp.linalg.pinv(a), [SPEC(3, 5)], ["pinv"], **LOOSE32)
# The orders in two rows (one through singular values, one through sums of |x|): no ties at these
# samples, so the sums' derivatives are the parts'.
row(
    "linalg_matrix_norm_svd_fro",
    lambda xp, a: sum(xp.linalg.matrix_norm(a, ord=o) * w for o, w in (("fro", 1.0), ("nuc", 2.0), (2, 3.0), (-2, 4.0))),
    [SPEC(2, 3, 4)],
    ["svd", "sqrt", "sum", "max", "min"],
    **LOOSE32,
)
row(
    "linalg_matrix_norm_sums",
    lambda xp, a: sum(xp.linalg.matrix_norm(a, ord=o) * w for o, w in ((1, 1.0), (-1, 2.0), (float("inf"), 3.0), (-float("inf"), 4.0))),
    [SPEC(2, 3, 4)],
    ["abs", "sum", "max", "min"],
)
row("linalg_matrix_norm_keepdims", lambda xp, a: xp.linalg.matrix_norm(a, keepdims=True, ord=2), [SPEC(2, 4, 3)], ["svd", "reshape"], **LOOSE32)
row("linalg_matrix_power_3_5", lambda xp, a: xp.linalg.matrix_power(a, 3) + xp.linalg.matrix_power(a, 5), [Domain((2, 3, 3), -1.0, 1.0)], ["matmul"])
row("linalg_matrix_power_neg2", lambda xp, a: xp.linalg.matrix_power(a, -2), [INV(2, 3, 3)], ["inv", "matmul"])
row("linalg_matrix_power_0", lambda xp, a: a * xp.linalg.matrix_power(a, 0), [Domain((2, 3, 3))], ["multiply"])
row("linalg_trace", lambda xp, a: xp.linalg.trace(a), [Domain((2, 3, 3))], ["getitem", "sum", "reshape"])
row("linalg_trace_offset", lambda xp, a: xp.linalg.trace(a * a, offset=1), [Domain((2, 3, 4))], ["getitem", "sum"])
row("linalg_diagonal", lambda xp, a: xp.linalg.diagonal(a, offset=-1), [Domain((2, 4, 3))], ["getitem", "reshape"])
row("linalg_outer", lambda xp, a, b: xp.linalg.outer(a, b), [Domain((3,)), Domain((4,))], ["multiply", "reshape"])
row("linalg_cross", lambda xp, a, b: xp.linalg.cross(a, b), [Domain((2, 3)), Domain((3,))], ["multiply", "subtract", "concat"])
row("linalg_cross_axis", lambda xp, a, b: xp.linalg.cross(a, b, axis=-2), [Domain((3, 2)), Domain((2, 3, 2))], ["multiply", "permute_dims"])
row(
    "linalg_matrix_rank",
    lambda xp, a: a * xp.astype(xp.linalg.matrix_rank(a), a.dtype)[..., None, None],
    [SPEC(2, 3, 4)],
    ["svd", "greater", "convert"],
)


# Second rows of functions with a main row above: first order only (see is_variant).
VARIANTS = {
    "linalg_det_one", "linalg_solve_vector", "linalg_solve_shared", "linalg_cholesky_upper", "linalg_svd_wide",
    "linalg_svd_square", "linalg_qr_square", "linalg_pinv_wide", "linalg_matrix_norm_sums",
    "linalg_matrix_norm_keepdims", "linalg_matrix_power_neg2", "linalg_matrix_power_0", "linalg_trace_offset",
    "linalg_cross_axis", "erf_tails", "erfinv_near_one", "gammaln_negative", "digamma_negative",
}
for _s in SPECS:
    if _s.name in VARIANTS:
        _s.extra["variant"] = True
assert VARIANTS <= {_s.name for _s in SPECS}, sorted(VARIANTS - {_s.name for _s in SPECS})
