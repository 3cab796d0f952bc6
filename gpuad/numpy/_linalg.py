"""``gpuad.numpy.linalg``: the array API's linear-algebra extension, differentiable in both modes.

Every function takes stacks of matrices (any leading axes, a vmap batch among them) and calls the
library of its input through ``xp.linalg``. The factorizations and inverses are entries of the
table (gpuad/primitives.py: inv, solve, det, slogdet, cholesky, eigh, svd, qr, pinv) with JAX's
derivative rules; the rest are composites of table entries. Matrices are real (float32, float64;
integers are taken as the default float).

Conventions (README, gpuad.numpy.linalg):

- A point of a batch that the library refuses (a singular matrix for inv and solve, one that is
  not positive definite for cholesky, an SVD or eigendecomposition that does not converge) gets
  NaN at that point only, as JAX gives (NumPy would raise for the whole batch); the other points
  are exact. ``gnp.isfinite`` of the result finds them; ``slogdet(x).sign == 0`` finds singular
  matrices.
- cholesky and eigh factor ``(x + x^T) / 2``, as JAX, so their derivatives are symmetric.
- Where a derivative is undefined (repeated eigenvalues, repeated singular values) the values are
  JAX's: inf or NaN in the eigenvectors' (singular vectors') derivatives, finite derivatives of the
  values.

>>> import numpy as np, gpuad, gpuad.numpy as gnp
>>> A = np.asarray([[2.0, 1.0], [1.0, 3.0]])
>>> print(f"{float(gnp.linalg.det(A)):.6f}")
5.000000
>>> np.round(gpuad.grad(gnp.linalg.det)(A), 12).tolist()      # det(A) * inv(A)^T
[[3.0, -1.0], [-1.0, 2.0]]
"""

from __future__ import annotations

import builtins
import math
import operator
from typing import Any, NamedTuple

from .. import backend as _backend
from .. import primitives as _p
from ..tracing import Tracer
from ._composites import vector_norm
from ._core import *  # noqa: F403  (the namespace's functions)
from ._core import _as_array, _operands
from ._indexing import getitem

__all__ = ["linalg", "EighResult", "QRResult", "SlogdetResult", "SVDResult"]


class EighResult(NamedTuple):
    """``eigh``'s result: eigenvalues in ascending order, eigenvectors as columns."""

    eigenvalues: Any
    eigenvectors: Any


class QRResult(NamedTuple):
    """``qr``'s result: Q with orthonormal columns and upper triangular R."""

    Q: Any
    R: Any


class SlogdetResult(NamedTuple):
    """``slogdet``'s result: the sign of the determinant (0 for a singular matrix) and the log of
    its absolute value (-inf for a singular matrix)."""

    sign: Any
    logabsdet: Any


class SVDResult(NamedTuple):
    """``svd``'s result: ``x == U @ (S[..., None] * Vh)``, S descending."""

    U: Any
    S: Any
    Vh: Any


# ---------------------------------------------------------------------------------------------
# Argument checks
# ---------------------------------------------------------------------------------------------


def _real_float(x: Any, where: str) -> Any:
    """``x`` in a real floating dtype: integers and booleans become the default float (as NumPy
    and JAX); complex matrices are refused."""
    if isdtype(x.dtype, "real floating"):
        return x
    if isdtype(x.dtype, "complex floating"):
        raise TypeError(
            f"{where} is complex ({x.dtype}); gpuad.numpy.linalg differentiates real matrices only "
            "for now: carry the real and imaginary parts as real arrays"
        )
    xp, device = _p.namespace_and_device(x)
    return astype(x, _backend.default_float(xp, device))


def _matrices(x: Any, fn: str, name: str = "x", square: builtins.bool = False) -> Any:
    """``x`` as a real stack of matrices (..., m, n), square where ``square``; errors name ``fn``."""
    where = f"linalg.{fn}: {name}"
    x = _as_array(x, where)
    if x.ndim < 2:
        raise ValueError(
            f"{where} must be a matrix or a stack of matrices (at least 2 dimensions), got shape "
            f"{tuple(x.shape)}; for vectors see linalg.vector_norm, vecdot, outer"
        )
    if square and x.shape[-1] != x.shape[-2]:
        raise ValueError(f"{where} must hold square matrices (..., n, n), got shape {tuple(x.shape)}")
    return _real_float(x, where)


def _flag(value: Any, fn: str, name: str) -> builtins.bool:
    if not isinstance(value, builtins.bool):
        raise TypeError(f"linalg.{fn}: {name} must be True or False, got {value!r}")
    return value


def _symmetrized(x: Any) -> Any:
    """(x + x^T) / 2: what cholesky and eigh factor, as in JAX (so a derivative is symmetric)."""
    return multiply(add(x, matrix_transpose(x)), 0.5)


def _rtol(rtol: Any, fn: str) -> float | None:
    if rtol is None:
        return None
    if isinstance(rtol, builtins.bool) or not isinstance(rtol, (int, float)):
        raise TypeError(f"linalg.{fn}: rtol must be a Python number (or None for the default), got {type(rtol).__name__}")
    return float(rtol)  # host-ok: a Python number


# ---------------------------------------------------------------------------------------------
# Inverses and determinants
# ---------------------------------------------------------------------------------------------


def det(x: Any, /) -> Any:
    """The determinant of each matrix of ``x`` (..., n, n). Its derivative is
    ``det(x) * inv(x)^T``: NaN at a singular matrix (JAX's there is the adjugate).

    >>> import numpy as np
    >>> print(f"{float(det(np.asarray([[1.0, 2.0], [3.0, 4.0]]))):.6f}")
    -2.000000
    """
    return _p.det(_matrices(x, "det", square=True))


def slogdet(x: Any, /) -> SlogdetResult:
    """``(sign, logabsdet)`` of each matrix of ``x``: the sign of the determinant and the log of
    its absolute value, without overflow. A singular matrix gives sign 0 and logabsdet -inf (the
    way to find singular points of a batch). The sign has derivative 0.

    >>> import numpy as np
    >>> sign, logabsdet = slogdet(np.asarray([[0.0, 2.0], [3.0, 0.0]]))
    >>> print(f"{float(sign)} {float(logabsdet):.6f}")
    -1.0 1.791759
    """
    packed = _p.slogdet(_matrices(x, "slogdet", square=True))
    return SlogdetResult(getitem(packed, (Ellipsis, 0)), getitem(packed, (Ellipsis, 1)))


def inv(x: Any, /) -> Any:
    """The inverse of each matrix of ``x`` (..., n, n); NaN at a singular matrix, the other
    points of the batch exact (README, gpuad.numpy.linalg).

    >>> import numpy as np
    >>> inv(np.asarray([[2.0, 0.0], [0.0, 4.0]])).tolist()
    [[0.5, 0.0], [0.0, 0.25]]
    """
    return _p.inv(_matrices(x, "inv", square=True))


def solve(x1: Any, x2: Any, /) -> Any:
    """The solution of ``x1 @ out == x2``: ``x2`` of shape (..., n, k), or (n,) for one vector
    (the standard's rule: only a 1-D ``x2`` is a vector; write ``solve(a, b[..., None])[..., 0]``
    for a stack of vectors). Leading axes broadcast. NaN at a singular matrix.

    >>> import numpy as np
    >>> solve(np.asarray([[2.0, 0.0], [0.0, 4.0]]), np.asarray([1.0, 1.0])).tolist()
    [0.5, 0.25]
    """
    a = _matrices(x1, "solve", "x1", square=True)
    b = _as_array(x2, "linalg.solve: x2")
    if b.ndim == 0:
        raise ValueError("linalg.solve: x2 must be a vector (n,) or a stack of matrices (..., n, k), got a 0-d array")
    b = _real_float(b, "linalg.solve: x2")
    dtype = result_type(a.dtype, b.dtype)
    a, b = astype(a, dtype, copy=False), astype(b, dtype, copy=False)
    n = a.shape[-1]
    if b.ndim == 1:
        if b.shape[0] != n:
            raise ValueError(f"linalg.solve: x2 of shape {tuple(b.shape)} does not match x1 of shape {tuple(a.shape)} ({b.shape[0]} != {n})")
        out = _p.solve(a, reshape(b, (n, 1)))
        return reshape(out, tuple(out.shape[:-1]))
    if b.shape[-2] != n:
        raise ValueError(
            f"linalg.solve: x2 of shape {tuple(b.shape)} does not match x1 of shape {tuple(a.shape)} "
            f"(its axis -2 has {b.shape[-2]} rows, x1 is {n} x {n}); a stack of vectors is b[..., None]"
        )
    try:
        _p.broadcast_shapes(tuple(a.shape[:-2]), tuple(b.shape[:-2]))
    except ValueError:
        raise ValueError(
            f"linalg.solve: the leading axes of x1 {tuple(a.shape)} and x2 {tuple(b.shape)} do not broadcast"
        ) from None
    return _p.solve(a, b)


def pinv(x: Any, /, *, rtol: float | None = None) -> Any:
    """The Moore-Penrose pseudo-inverse (..., n, m) of ``x`` (..., m, n). Singular values at or
    below ``rtol`` times the largest count as 0; the default is JAX's, ``10 * max(m, n) * eps``.
    The derivative is Golub and Pereyra's (JAX's), right where the rank does not change.

    >>> import numpy as np
    >>> pinv(np.asarray([[2.0], [0.0]])).tolist()
    [[0.5, 0.0]]
    """
    a = _matrices(x, "pinv")
    tol = _rtol(rtol, "pinv")
    if tol is None:
        tol = 10.0 * builtins.max(a.shape[-2:]) * finfo(a.dtype).eps
    return _p.pinv(a, rtol=tol)


def matrix_power(x: Any, n: int, /) -> Any:
    """``x`` multiplied by itself ``n`` times (an integer; a negative power is of ``inv(x)``,
    n = 0 the identity), by repeated squaring as JAX.

    >>> import numpy as np
    >>> matrix_power(np.asarray([[1.0, 1.0], [0.0, 1.0]]), 3).tolist()
    [[1.0, 3.0], [0.0, 1.0]]
    """
    a = _matrices(x, "matrix_power", square=True)
    if isinstance(n, builtins.bool):
        raise TypeError("linalg.matrix_power: n must be an integer, got a bool")
    try:
        n = operator.index(n)
    except TypeError:
        raise TypeError(f"linalg.matrix_power: n must be an integer, got {type(n).__name__} ({n!r})") from None
    if n == 0:
        xp, device = _p.namespace_and_device(a)
        return broadcast_to(xp.eye(a.shape[-1], dtype=a.dtype, device=device), tuple(a.shape))
    if n < 0:
        a, n = inv(a), -n
    if n == 1:
        return a
    if n == 2:
        return matmul(a, a)
    if n == 3:
        return matmul(matmul(a, a), a)
    z = result = None
    while n > 0:
        z = a if z is None else matmul(z, z)
        n, bit = divmod(n, 2)
        if bit:
            result = z if result is None else matmul(result, z)
    return result


# ---------------------------------------------------------------------------------------------
# Factorizations
# ---------------------------------------------------------------------------------------------


def cholesky(x: Any, /, *, upper: builtins.bool = False) -> Any:
    """The Cholesky factor of each symmetric positive-definite matrix of ``x``: lower triangular
    ``L`` with ``x == L @ L^T`` (``upper=True``: ``U = L^T``, ``x == U^T @ U``). It factors
    ``(x + x^T) / 2``, as JAX. A matrix that is not positive definite gives NaN on and below the
    diagonal (zeros above), as in JAX; the other points of the batch are exact.

    >>> import numpy as np
    >>> cholesky(np.asarray([[4.0, 2.0], [2.0, 2.0]])).tolist()
    [[2.0, 0.0], [1.0, 1.0]]
    """
    a = _matrices(x, "cholesky", square=True)
    factor = _p.cholesky(_symmetrized(a))
    return matrix_transpose(factor) if _flag(upper, "cholesky", "upper") else factor


def eigh(x: Any, /) -> EighResult:
    """Eigenvalues (ascending) and eigenvectors (columns) of each symmetric matrix of ``x``; it
    factors ``(x + x^T) / 2``, as JAX. An eigenvector's sign is the library's choice. Where two
    eigenvalues are equal the eigenvectors' derivative is inf or NaN (as JAX's); the
    eigenvalues' stays finite.

    >>> import numpy as np
    >>> eigh(np.asarray([[2.0, 0.0], [0.0, 1.0]])).eigenvalues.tolist()
    [1.0, 2.0]
    """
    a = _matrices(x, "eigh", square=True)
    n = a.shape[-1]
    packed = _p.eigh(_symmetrized(a))
    return EighResult(getitem(packed, (Ellipsis, slice(None), n)), getitem(packed, (Ellipsis, slice(None), slice(0, n))))


def eigvalsh(x: Any, /) -> Any:
    """The eigenvalues (ascending) of each symmetric matrix of ``x`` (``eigh(x).eigenvalues``).

    >>> import numpy as np
    >>> eigvalsh(np.asarray([[0.0, 1.0], [1.0, 0.0]])).tolist()
    [-1.0, 1.0]
    """
    return eigh(_matrices(x, "eigvalsh", square=True)).eigenvalues


def _svd_packed(x: Any, fn: str) -> tuple[Any, int, int]:
    a = _matrices(x, fn)
    return _p.svd(a), a.shape[-2], a.shape[-1]


def svd(x: Any, /, *, full_matrices: builtins.bool = True) -> SVDResult:
    """``(U, S, Vh)`` with ``x == U @ (S[..., None] * Vh)``, S descending, k = min(m, n) columns
    of U and rows of Vh. ``full_matrices=True`` (the standard's default) is accepted for square
    matrices, where it is the same; for others pass ``full_matrices=False`` (the completed bases
    are not unique, so have no derivative: JAX refuses it too). Singular vectors' signs are the
    library's; where two singular values are equal their derivative is inf or NaN (as JAX's).

    >>> import numpy as np
    >>> svd(np.asarray([[3.0, 0.0], [0.0, -4.0]])).S.tolist()
    [4.0, 3.0]
    """
    _flag(full_matrices, "svd", "full_matrices")
    a = _matrices(x, "svd")
    m, n = a.shape[-2], a.shape[-1]
    if full_matrices and m != n:
        raise ValueError(
            f"linalg.svd: full_matrices=True for a {m} x {n} matrix completes U or Vh with a basis that is "
            "not unique and has no derivative; pass full_matrices=False (k = min(m, n) columns)"
        )
    packed = _p.svd(a)
    u = getitem(packed, (Ellipsis, slice(0, m), slice(None)))
    s = getitem(packed, (Ellipsis, m, slice(None)))
    vh = matrix_transpose(getitem(packed, (Ellipsis, slice(m + 1, None), slice(None))))
    return SVDResult(u, s, vh)


def svdvals(x: Any, /) -> Any:
    """The singular values of each matrix of ``x``, descending. Their derivative stays finite
    where two are equal.

    >>> import numpy as np
    >>> svdvals(np.asarray([[0.0, 2.0], [1.0, 0.0]])).tolist()
    [2.0, 1.0]
    """
    a = _matrices(x, "svdvals")
    return getitem(_p.svd(a), (Ellipsis, a.shape[-2], slice(None)))


def qr(x: Any, /, *, mode: str = "reduced") -> QRResult:
    """``(Q, R)`` with ``x == Q @ R``, Q with orthonormal columns, R upper triangular (signs as
    the library's Householder QR gives them). ``mode="reduced"`` (k = min(m, n)); ``"complete"``
    is accepted where it is the same (m <= n): for a tall matrix the completed Q is not unique and
    has no derivative. A wide matrix (m < n) is differentiated through the QR of its first m
    columns (JAX refuses that derivative).

    >>> import numpy as np
    >>> q, r = qr(np.asarray([[3.0, 1.0], [4.0, 2.0]]))
    >>> np.round(q @ r, 12).tolist()
    [[3.0, 1.0], [4.0, 2.0]]
    """
    if mode not in ("reduced", "complete"):
        raise ValueError(f"linalg.qr: mode must be 'reduced' or 'complete', got {mode!r}")
    a = _matrices(x, "qr")
    m, n = a.shape[-2], a.shape[-1]
    if mode == "complete" and m > n:
        raise ValueError(
            f"linalg.qr: mode='complete' of a {m} x {n} matrix completes Q with {m - n} columns that are not "
            "unique and have no derivative; use mode='reduced'"
        )
    if m >= n:
        packed = _p.qr(a)
        return QRResult(getitem(packed, (Ellipsis, slice(0, m), slice(None))), getitem(packed, (Ellipsis, slice(m, None), slice(None))))
    # Wide: the Householder reflections of the first m columns make Q; R's other columns are Q^T
    # times the rest.
    q, r = qr(getitem(a, (Ellipsis, slice(None), slice(0, m))))
    rest = matmul(matrix_transpose(q), getitem(a, (Ellipsis, slice(None), slice(m, None))))
    return QRResult(q, concat([r, rest], axis=-1))


# ---------------------------------------------------------------------------------------------
# Norms, rank, and the standard's other linalg functions
# ---------------------------------------------------------------------------------------------

_MATRIX_ORDS = ("'fro'", "'nuc'", "1", "-1", "2", "-2", "inf", "-inf")


def matrix_norm(x: Any, /, *, keepdims: builtins.bool = False, ord: Any = "fro") -> Any:  # noqa: A002
    """The matrix norm of each matrix of ``x``: ``ord`` 'fro' (default), 'nuc' (sum of singular
    values), 1 / -1 (max / min column sum of |x|), inf / -inf (max / min row sum), 2 / -2
    (largest / smallest singular value). 'fro' has gradient 0 at 0 (JAX: NaN), as vector_norm.

    >>> import numpy as np
    >>> float(matrix_norm(np.asarray([[3.0, 0.0], [0.0, 4.0]])))
    5.0
    """
    a = _matrices(x, "matrix_norm")
    _flag(keepdims, "matrix_norm", "keepdims")
    if isinstance(ord, str):
        if ord == "fro":
            return vector_norm(a, axis=(-2, -1), keepdims=keepdims)
        if ord == "nuc":
            out = sum(svdvals(a), axis=-1)
        else:
            out = None
    elif isinstance(ord, builtins.bool) or not isinstance(ord, (int, float)):
        out = None
    elif ord in (1, -1):
        out = (max if ord > 0 else min)(sum(abs(a), axis=-2), axis=-1)
    elif ord in (math.inf, -math.inf):
        out = (max if ord > 0 else min)(sum(abs(a), axis=-1), axis=-1)
    elif ord in (2, -2):
        out = (max if ord > 0 else min)(svdvals(a), axis=-1)
    else:
        out = None
    if out is None:
        raise ValueError(f"linalg.matrix_norm: ord must be one of {', '.join(_MATRIX_ORDS)}, got {ord!r}")
    return reshape(out, tuple(out.shape) + (1, 1)) if keepdims else out


def matrix_rank(x: Any, /, *, rtol: float | None = None) -> Any:
    """The number of singular values of each matrix above ``rtol`` times the largest (default
    ``max(m, n) * eps``, the standard's and JAX's), as integers: no derivative.

    >>> import numpy as np
    >>> int(matrix_rank(np.asarray([[1.0, 2.0], [2.0, 4.0]])))
    1
    """
    a = stop_gradient(_matrices(x, "matrix_rank"))
    tol = _rtol(rtol, "matrix_rank")
    if tol is None:
        tol = builtins.max(a.shape[-2:]) * finfo(a.dtype).eps
    s = svdvals(a)
    cutoff = multiply(max(s, axis=-1, keepdims=True), tol)
    return sum(astype(greater(s, cutoff), int64), axis=-1)


def diagonal(x: Any, /, *, offset: int = 0) -> Any:
    """The diagonal ``offset`` (0 the main one, > 0 above it, < 0 below) of each matrix of ``x``,
    as a strided slice (a differentiable view).

    >>> import numpy as np
    >>> diagonal(np.arange(9.0).reshape(3, 3), offset=1).tolist()
    [1.0, 5.0]
    """
    a = _as_array(x, "linalg.diagonal: x")
    if a.ndim < 2:
        raise ValueError(f"linalg.diagonal: x must have at least 2 dimensions, got shape {tuple(a.shape)}")
    if isinstance(offset, builtins.bool) or not isinstance(offset, int):
        raise TypeError(f"linalg.diagonal: offset must be an int, got {type(offset).__name__}")
    rows, cols = a.shape[-2], a.shape[-1]
    start = offset if offset >= 0 else -offset * cols
    length = builtins.max(0, builtins.min(rows, cols - offset) if offset >= 0 else builtins.min(rows + offset, cols))
    flat = reshape(a, tuple(a.shape[:-2]) + (rows * cols,))
    if length == 0:
        return getitem(flat, (Ellipsis, slice(0, 0)))
    return getitem(flat, (Ellipsis, slice(start, start + (length - 1) * (cols + 1) + 1, cols + 1)))


def trace(x: Any, /, *, offset: int = 0, dtype: Any = None) -> Any:
    """The sum of the diagonal ``offset`` of each matrix of ``x`` (in ``dtype`` if given).

    >>> import numpy as np
    >>> float(trace(np.eye(3)))
    3.0
    """
    a = _as_array(x, "linalg.trace: x")
    if a.ndim < 2:
        raise ValueError(f"linalg.trace: x must have at least 2 dimensions, got shape {tuple(a.shape)}")
    return sum(diagonal(a, offset=offset), axis=-1, dtype=dtype)


def outer(x1: Any, x2: Any, /) -> Any:
    """The outer product ``x1[:, None] * x2[None, :]`` of two vectors.

    >>> import numpy as np
    >>> outer(np.asarray([1.0, 2.0]), np.asarray([3.0, 4.0])).tolist()
    [[3.0, 4.0], [6.0, 8.0]]
    """
    a, b = _operands(x1, x2, names=["linalg.outer: x1", "linalg.outer: x2"])
    for name, v in (("x1", a), ("x2", b)):
        if v.ndim != 1:
            raise ValueError(f"linalg.outer: {name} must be a vector (1 dimension), got shape {tuple(v.shape)}; for stacks use x1[..., :, None] * x2[..., None, :]")
    return multiply(reshape(a, (a.shape[0], 1)), reshape(b, (1, b.shape[0])))


def cross(x1: Any, x2: Any, /, *, axis: int = -1) -> Any:
    """The cross product of 3-vectors along ``axis`` (negative: counted from the last axis, as
    the standard asks), other axes broadcast.

    >>> import numpy as np
    >>> cross(np.asarray([1.0, 0.0, 0.0]), np.asarray([0.0, 1.0, 0.0])).tolist()
    [0.0, 0.0, 1.0]
    """
    a, b = _operands(x1, x2, names=["linalg.cross: x1", "linalg.cross: x2"])
    if isinstance(axis, builtins.bool) or not isinstance(axis, int):
        raise TypeError(f"linalg.cross: axis must be an int, got {type(axis).__name__}")
    low = builtins.min(a.ndim, b.ndim)
    if not -low <= axis <= -1:
        raise ValueError(
            f"linalg.cross: axis must be negative (counted from the last axis) and in [-{low}, -1] for shapes "
            f"{tuple(a.shape)} and {tuple(b.shape)}, got {axis}"
        )
    if a.shape[axis] != 3 or b.shape[axis] != 3:
        raise ValueError(
            f"linalg.cross: x1 {tuple(a.shape)} and x2 {tuple(b.shape)} must both have 3 entries along axis {axis}"
        )
    _p.broadcast_shapes(tuple(a.shape), tuple(b.shape))
    a, b = moveaxis(a, axis, -1), moveaxis(b, axis, -1)
    a0, a1, a2 = (getitem(a, (Ellipsis, i)) for i in range(3))
    b0, b1, b2 = (getitem(b, (Ellipsis, i)) for i in range(3))
    out = stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], axis=-1)
    return moveaxis(out, -1, axis)


# ---------------------------------------------------------------------------------------------
# The namespace
# ---------------------------------------------------------------------------------------------

_FUNCTIONS = {
    "cholesky": cholesky, "cross": cross, "det": det, "diagonal": diagonal, "eigh": eigh,
    "eigvalsh": eigvalsh, "inv": inv, "matmul": matmul, "matrix_norm": matrix_norm,
    "matrix_power": matrix_power, "matrix_rank": matrix_rank, "matrix_transpose": matrix_transpose,
    "outer": outer, "pinv": pinv, "qr": qr, "slogdet": slogdet, "solve": solve, "svd": svd,
    "svdvals": svdvals, "tensordot": tensordot, "trace": trace, "vecdot": vecdot,
    "vector_norm": vector_norm,
}

# What to use instead of NumPy's and JAX's linalg functions that the standard's extension lacks.
_INSTEAD = {
    "norm": "linalg.vector_norm or linalg.matrix_norm",
    "eig": "linalg.eigh for symmetric matrices (general eigenvalues are complex: not differentiated yet)",
    "eigvals": "linalg.eigvalsh for symmetric matrices",
    "lstsq": "linalg.pinv(a) @ b, or linalg.solve(a.T @ a, a.T @ b)",
    "cond": "linalg.matrix_norm(x, ord=2) * linalg.matrix_norm(linalg.inv(x), ord=2), or svdvals' ratio",
    "multi_dot": "matmul in a chain",
}


class _Linalg:
    """``gpuad.numpy.linalg``: the array API's linear-algebra extension, every function
    differentiable in both modes and batched over leading axes (see gpuad/numpy/_linalg.py)."""

    EighResult = EighResult
    QRResult = QRResult
    SlogdetResult = SlogdetResult
    SVDResult = SVDResult

    def __init__(self) -> None:
        for name, fn in _FUNCTIONS.items():
            setattr(self, name, fn)

    def __dir__(self) -> list[str]:
        return sorted(list(_FUNCTIONS) + ["EighResult", "QRResult", "SlogdetResult", "SVDResult"])

    def __getattr__(self, name: str) -> Any:
        if name in _INSTEAD:
            raise AttributeError(f"gpuad.numpy.linalg has no {name} (not in the array API standard); use {_INSTEAD[name]}")
        raise AttributeError(f"gpuad.numpy.linalg has no attribute {name!r}")

    def __repr__(self) -> str:
        return "<gpuad.numpy.linalg>"


linalg = _Linalg()
