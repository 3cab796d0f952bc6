"""Small per-point linear algebra as scalars: the table's cholesky, solve, inv, det and slogdet
of matrices up to ``MAX_N`` x ``MAX_N``, unrolled into nodes of a kernel (a Gaussian likelihood's
3 x 3 covariance per point then costs a few dozen multiply-adds in registers instead of a LAPACK
call per point).

Each routine works as LAPACK does for these sizes: LU with partial pivoting (the first row of
largest magnitude, row swaps as selects, so the loop over points still vectorizes) and
substitution for solve, inv, det and slogdet; the column-by-column Cholesky of the lower
triangle. Results agree with the library's to rounding, not bit for bit.

Degenerate points (a zero or non-finite pivot, a matrix that is not positive definite) give the
values the table's impl gives (NaN for solve and inv, NaN on and below the diagonal for
cholesky, 0 and -inf for slogdet), and are also reported through ``Builder.checks``: on the CPU
a kernel that met one runs its operations through the array library instead, so such points get
exactly the eager path's values and warnings.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy  # host-ok: object arrays of symbolic scalars (the compiler's data, not the user's)

from .scalar import Builder, Scalar

__all__ = ["MAX_N", "RULES", "CORE_AXES", "matrix_sizes_ok"]

MAX_N = 4  # bigger: the library's LAPACK (an unrolled LU grows as n^3 in source lines: 6 x 6 took gcc 12 s)


def _lu(b: Builder, a: list[list[Scalar]], rhs: list[list[Scalar]]) -> tuple[list[list[Scalar]], list[list[Scalar]], Scalar, Scalar]:
    """LU with partial pivoting of ``a`` (n x n), the same row operations applied to ``rhs``
    (n x k). Returns U, the transformed rhs, the permutation's sign, and whether a pivot was 0."""
    n = len(a)
    a = [list(row) for row in a]
    rhs = [list(row) for row in rhs]
    dtype = a[0][0].dtype
    zero, one = b.const(0, dtype), b.const(1, dtype)
    sign = one
    singular = b.const(False, "bool")
    for k in range(n):
        # The pivot: the first row of largest magnitude (LAPACK's idamax), as selects.
        best = b.call("fabs", a[k][k])
        later = []
        for i in range(k + 1, n):
            size = b.call("fabs", a[i][k])
            bigger = b.node("gt", (size, best), "bool")
            best = b.select(bigger, size, best)
            later.append((i, bigger))
        chosen = {}
        none_after = b.const(True, "bool")
        for i, bigger in reversed(later):  # row i is the pivot if it is bigger and none after it is
            chosen[i] = b.node("and", (bigger, none_after), "bool")
            none_after = b.node("and", (none_after, b.node("not", (bigger,), "bool")), "bool")
        for rows in (a, rhs):
            top = list(rows[k])
            for i, is_pivot in chosen.items():
                rows[k] = [b.select(is_pivot, x, y) for x, y in zip(rows[i], rows[k])]
                rows[i] = [b.select(is_pivot, t, x) for t, x in zip(top, rows[i])]
        if chosen:
            sign = b.select(none_after, sign, b.node("neg", (sign,), dtype))
        pivot = a[k][k]
        is_zero = b.node("eq", (pivot, zero), "bool")
        singular = b.node("or", (singular, is_zero), "bool")
        # One reciprocal per pivot, as LAPACK's getf2 scales the column (a zero column below:
        # nothing to eliminate).
        scale = b.arith("div", one, b.select(is_zero, one, pivot))
        for i in range(k + 1, n):
            m = b.arith("mul", a[i][k], scale)
            a[i] = [x if j <= k else b.arith("sub", x, b.arith("mul", m, y)) for j, (x, y) in enumerate(zip(a[i], a[k]))]
            rhs[i] = [b.arith("sub", x, b.arith("mul", m, y)) for x, y in zip(rhs[i], rhs[k])]
    return a, rhs, sign, singular


def _back_substitute(b: Builder, u: list[list[Scalar]], y: list[list[Scalar]]) -> list[list[Scalar]]:
    n = len(u)
    one = b.const(1, u[0][0].dtype)
    x: list[list[Scalar]] = [[] for _ in range(n)]
    for i in reversed(range(n)):
        pivot = b.select(b.node("eq", (u[i][i], b.const(0, u[i][i].dtype)), "bool"), one, u[i][i])
        scale = b.arith("div", one, pivot)  # one division per row, as LAPACK's trsm/trti2
        row = []
        for c in range(len(y[i])):
            acc = y[i][c]
            for j in range(i + 1, n):
                acc = b.arith("sub", acc, b.arith("mul", u[i][j], x[j][c]))
            row.append(b.arith("mul", acc, scale))
        x[i] = row
    return x


def _finite_pivots(b: Builder, u: list[list[Scalar]]) -> Scalar:
    ok = b.const(True, "bool")
    for i in range(len(u)):
        ok = b.node("and", (ok, b.node("isfinite", (u[i][i],), "bool")), "bool")
    return ok


def _rows(m: numpy.ndarray) -> list[list[Scalar]]:
    return [list(row) for row in m]


def _nan_where(b: Builder, bad: Scalar, rows: list[list[Scalar]]) -> numpy.ndarray:
    nan = b.const(float("nan"), rows[0][0].dtype)  # host-ok: a literal of the generated source
    out = numpy.empty((len(rows), len(rows[0])), dtype=object)  # host-ok
    for i, row in enumerate(rows):
        for j, x in enumerate(row):
            out[i, j] = b.select(bad, nan, x)
    return out


def _factored(b: Builder, a: numpy.ndarray, rhs: list[list[Scalar]]) -> tuple[list[list[Scalar]], list[list[Scalar]], Scalar, Scalar]:
    """``_lu`` of ``a``, with its degenerate points (a zero or non-finite pivot) checked."""
    u, y, sign, singular = _lu(b, _rows(a), rhs)
    b.check(b.node("or", (singular, b.node("not", (_finite_pivots(b, u),), "bool")), "bool"))
    return u, y, sign, singular


def _solve(b: Builder, a: numpy.ndarray, rhs: numpy.ndarray) -> numpy.ndarray:
    u, y, _, singular = _factored(b, a, _rows(rhs))
    return _nan_where(b, singular, _back_substitute(b, u, y))


def _inv(b: Builder, a: numpy.ndarray) -> numpy.ndarray:
    n = a.shape[0]
    dtype = a[0, 0].dtype
    eye = [[b.const(1 if i == j else 0, dtype) for j in range(n)] for i in range(n)]
    return _solve(b, a, numpy.asarray(eye, dtype=object))  # host-ok


def _det(b: Builder, a: numpy.ndarray) -> numpy.ndarray:
    u, _, sign, singular = _factored(b, a, [[] for _ in range(a.shape[0])])
    product = sign
    for i in range(len(u)):
        product = b.arith("mul", product, u[i][i])
    return numpy.asarray(b.select(singular, b.const(0, product.dtype), product), dtype=object)  # host-ok


def _slogdet(b: Builder, a: numpy.ndarray) -> numpy.ndarray:
    u, _, sign, singular = _factored(b, a, [[] for _ in range(a.shape[0])])
    dtype = sign.dtype
    zero, one = b.const(0, dtype), b.const(1, dtype)
    log_abs = zero
    for i in range(len(u)):
        d = u[i][i]
        sign = b.select(b.node("lt", (d, zero), "bool"), b.node("neg", (sign,), dtype), sign)
        size = b.call("fabs", d)
        log_abs = b.arith("add", log_abs, b.call("log", b.select(b.node("eq", (size, zero), "bool"), one, size)))
    out = numpy.empty(2, dtype=object)  # host-ok
    out[0] = b.select(singular, zero, sign)
    out[1] = b.select(singular, b.const(float("-inf"), dtype), log_abs)  # host-ok: a literal
    return out


def _cholesky(b: Builder, a: numpy.ndarray) -> numpy.ndarray:
    """The lower factor from the lower triangle (LAPACK's potrf 'L'); not positive definite
    (a pivot <= 0 or NaN): NaN on and below the diagonal, 0 above (the table's impl)."""
    n = a.shape[0]
    dtype = a[0, 0].dtype
    zero, one = b.const(0, dtype), b.const(1, dtype)
    low = [[zero] * n for _ in range(n)]
    ok = b.const(True, "bool")
    for j in range(n):
        s = a[j, j]
        for k in range(j):
            s = b.arith("sub", s, b.arith("mul", low[j][k], low[j][k]))
        positive = b.node("gt", (s, zero), "bool")
        ok = b.node("and", (ok, positive), "bool")
        d = b.call("sqrt", b.select(positive, s, one))
        low[j][j] = d
        for i in range(j + 1, n):
            t = a[i, j]
            for k in range(j):
                t = b.arith("sub", t, b.arith("mul", low[i][k], low[j][k]))
            low[i][j] = b.arith("div", t, d)
    b.check(b.node("not", (ok,), "bool"))
    nan = b.const(float("nan"), dtype)  # host-ok: a literal of the generated source
    out = numpy.empty((n, n), dtype=object)  # host-ok
    for i in range(n):
        for j in range(n):
            out[i, j] = b.select(ok, low[i][j], nan) if i >= j else zero
    return out


def _stacked(fn: Callable[..., numpy.ndarray], operands: list[numpy.ndarray], cores: tuple[int, ...]) -> numpy.ndarray:
    """``fn`` on each matrix of stacks of matrices (leading axes broadcast, as the table's impls)."""
    lead = numpy.broadcast_shapes(*(tuple(x.shape[: x.ndim - c]) for x, c in zip(operands, cores)))  # host-ok
    wide = [numpy.broadcast_to(x, lead + tuple(x.shape[x.ndim - c:])) for x, c in zip(operands, cores)]  # host-ok
    results = [fn(*(w[idx] for w in wide)) for idx in numpy.ndindex(*lead)]  # host-ok
    out = numpy.empty(lead + results[0].shape, dtype=object)  # host-ok
    for idx, r in zip(numpy.ndindex(*lead), results):  # host-ok
        out[idx + (Ellipsis,)] = r  # (a 0-d r's element, not r itself)
    return out


def _rule(fn: Callable[..., numpy.ndarray], cores: tuple[int, ...]) -> Callable[..., numpy.ndarray]:
    return lambda b, *operands: _stacked(lambda *m: fn(b, *m), list(operands), cores)


# name -> rule(builder, *operands as object arrays of scalars) -> result as an object array
RULES: dict[str, Callable[..., Any]] = {
    "cholesky": _rule(_cholesky, (2,)),
    "inv": _rule(_inv, (2,)),
    "solve": _rule(_solve, (2, 2)),
    "det": _rule(_det, (2,)),
    "slogdet": _rule(_slogdet, (2,)),
}

# How many trailing axes of each operand and of the result are the matrices' own.
CORE_AXES = {"cholesky": ((2,), 2), "inv": ((2,), 2), "solve": ((2, 2), 2), "det": ((2,), 0), "slogdet": ((2,), 1)}


def matrix_sizes_ok(name: str, shapes: list[tuple[int, ...]]) -> bool:
    """Whether the operands' matrices are square and small enough to unroll."""
    a = shapes[0]
    if len(a) < 2 or a[-1] != a[-2] or not 1 <= a[-1] <= MAX_N:
        return False
    return name != "solve" or (len(shapes[1]) >= 2 and shapes[1][-2] == a[-1] and shapes[1][-1] <= 4 * MAX_N)
