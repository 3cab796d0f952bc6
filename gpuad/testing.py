"""Differential gradient checking, point by point: forward mode vs reverse mode vs an oracle.

``check_grads(f, args)`` takes a function written for ONE point and a batch of points (axis 0 of
every argument), computes its first (and second) derivatives at every point with gpuad's batched
transforms in each mode (``vmap(jacfwd(f))``, ``vmap(jacrev(f))``, and for second order every
composition such as ``vmap(hessian(f))``), compares them with each other and with an oracle
(central finite differences, or JAX in float64), and reports *which points* disagree, with their
errors. A wrong derivative rule that only bites in part of the domain shows up as exactly those
points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy  # host-ok: reports only (per-point summaries and failing points come to the host)

from . import backend
from .tracing import Tracer
from .forward_transforms import hessian, jacfwd
from .transforms import _common_namespace, _param_name, jacrev, vmap
from .tree import tree_leaves

__all__ = ["check_grads", "GradCheckReport", "GradCheckError", "Failure"]

MODES = ("fwd", "rev")
ORACLES = ("fd", "jax")

# Default (rtol, atol) by kind of comparison and dtype. "ad": two exact methods (modes against each
# other, or against JAX), which differ only by rounding. "fd1"/"fd2": against central differences of
# first/second order, whose truncation error is what these allow; their rounding error is added
# per element as a noise floor (see _FD_NOISE).
_TOLERANCES = {
    ("ad", "float64"): (1e-8, 1e-11),
    ("ad", "float32"): (1e-3, 1e-5),
    ("fd1", "float64"): (1e-5, 1e-7),
    ("fd1", "float32"): (2e-2, 1e-3),
    ("fd2", "float64"): (1e-4, 1e-6),
    ("fd2", "float32"): (1e-1, 1e-2),
}
# The rounding error of a central difference is about eps * |f| / h (order 1) or eps * |f| / h^2
# (order 2) times the few ulps by which f itself is off; this factor is a generous few ulps.
_FD_NOISE = 100.0
# Points x steps evaluated per call when building finite differences: bounds memory at large batches.
_FD_BUDGET = 1 << 16
_SHOWN = 20


class GradCheckError(AssertionError):
    """Raised by :func:`check_grads` (with ``raise_on_failure=True``) or by
    :meth:`GradCheckReport.raise_if_failed`; ``.report`` holds the report, the message its text."""

    def __init__(self, report: "GradCheckReport"):
        super().__init__(str(report))
        self.report = report


@dataclass(frozen=True)
class Failure:
    """One failing point of one comparison: its index in the batch, the derivative order, the
    comparison (``"rev vs fd"``: the reverse-mode value against the oracle), the largest absolute
    and relative errors over that point's derivatives, and the worst element with both values."""

    point: int
    order: int
    comparison: str
    abs_err: float
    rel_err: float
    element: str
    got: float
    expected: float


@dataclass(frozen=True)
class Comparison:
    """One comparison that was made, over all points, and how many points failed it."""

    order: int
    name: str
    rtol: float
    atol: float
    failing: int


@dataclass
class GradCheckReport:
    """What :func:`check_grads` found. ``ok`` is True when every point passed every comparison;
    ``failures`` lists each failing (point, comparison); ``failing_points`` the sorted indices;
    ``str(report)`` a readable summary with the failing points first."""

    n_points: int
    dtype: str
    modes: tuple[str, ...]
    order: int
    oracle: str
    comparisons: list[Comparison] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def failing_points(self) -> list[int]:
        return sorted({f.point for f in self.failures})

    def raise_if_failed(self) -> "GradCheckReport":
        """Raise :class:`GradCheckError` (an AssertionError) with this report if any point failed;
        return the report otherwise.

        >>> import numpy as np, gpuad.numpy as gnp
        >>> check_grads(gnp.sin, np.asarray([0.1, 0.2]), order=1).raise_if_failed().ok
        True
        """
        if not self.ok:
            raise GradCheckError(self)
        return self

    def __str__(self) -> str:
        what = (f"order {self.order}, modes {'+'.join(self.modes)}, oracle {self.oracle}, {self.dtype}, "
                f"{self.n_points} point{'s' * (self.n_points != 1)}")
        if self.ok:
            head = f"check_grads: every point passes ({what})"
        else:
            pts = self.failing_points
            shown = ", ".join(str(p) for p in pts[:_SHOWN]) + (", ..." if len(pts) > _SHOWN else "")
            head = f"check_grads: {len(pts)} of {self.n_points} points fail ({what}): points [{shown}]"
        lines = [head, f"  {'order':>5}  {'comparison':<30}  {'rtol':>8}  {'atol':>8}  failing points"]
        for c in self.comparisons:
            lines.append(f"  {c.order:>5}  {c.name:<30}  {c.rtol:>8.1e}  {c.atol:>8.1e}  {c.failing}")
        if self.failures:
            lines.append("  failing points (worst element of each):")
            width = max(len(f.element) for f in self.failures[:_SHOWN])
            lines.append(
                f"  {'point':>5}  {'order':>5}  {'comparison':<30}  {'max abs err':>11}  {'max rel err':>11}  "
                f"{'element':<{width}}  {'got':>10}  {'expected':>10}"
            )
            for f in self.failures[:_SHOWN]:
                lines.append(
                    f"  {f.point:>5}  {f.order:>5}  {f.comparison:<30}  {f.abs_err:>11.3e}  {f.rel_err:>11.3e}  "
                    f"{f.element:<{width}}  {f.got:>10.4g}  {f.expected:>10.4g}"
                )
            if len(self.failures) > _SHOWN:
                lines.append(f"  ... and {len(self.failures) - _SHOWN} more (report.failures lists them all)")
        return "\n".join(lines)

    __repr__ = __str__


# ---------------------------------------------------------------------------------------------
# check_grads
# ---------------------------------------------------------------------------------------------


def check_grads(
    f: Callable[..., Any],
    args: Any,
    *,
    modes: Sequence[str] | str = ("fwd", "rev"),
    order: int = 2,
    oracle: str = "fd",
    rtol: float | None = None,
    atol: float | None = None,
    eps: float | None = None,
    raise_on_failure: bool = False,
) -> GradCheckReport:
    """Check the derivatives of ``f`` at every point of a batch, and say which points fail.

    * ``f`` is written for ONE point (as for ``gpuad.vmap``): ``f(*point_args)`` returns an array
      (or a tuple/dict of arrays) of floats.
    * ``args``: an array, or a tuple of arrays, one per argument of ``f``, each holding the batch
      on axis 0 (all with the same number of points and the same floating dtype).
    * ``modes``: which of gpuad's modes to check, ``"fwd"`` (``jacfwd``) and/or ``"rev"``
      (``jacrev``). Second order checks every composition (``fwd-over-rev`` is ``hessian``). Use
      ``modes=("rev",)`` for a ``custom_vjp`` function, which has no forward mode.
    * ``order``: 1 (Jacobians) or 2 (Jacobians and second derivatives).
    * ``oracle``: ``"fd"``, central finite differences of ``f`` in the inputs' dtype, with the step
      ``eps * max(1, |x|)`` (default eps: machine epsilon ** (1/3) for first and ** (1/4) for
      second derivatives); or ``"jax"``, JAX's ``jacfwd``/``hessian`` of the same ``f`` with
      float64 enabled, for which ``f`` must be written against the array API (``xp =
      x.__array_namespace__()``), not ``gpuad.numpy``.
    * ``rtol``, ``atol``: an element passes when ``|got - expected| <= atol + rtol * max(|got|,
      |expected|)`` (plus the rounding noise of the differences against ``"fd"``). Defaults
      depend on the dtype and the comparison (see the report); giving one sets it for all.
    * ``raise_on_failure``: raise :class:`GradCheckError` (an AssertionError) carrying the report
      instead of returning a failing report.

    The derivatives are computed for all points at once (no Python loop over points); only the
    per-point summaries and the failing points come to the host.

    >>> import numpy as np, gpuad.numpy as gnp
    >>> def f(x):                                    # one point: x.shape == (2,)
    ...     return gnp.log(x[0]) + x[0] * x[1] - gnp.sin(x[1])
    >>> X = np.random.default_rng(0).uniform(1.0, 3.0, size=(100, 2))
    >>> report = check_grads(f, (X,))
    >>> report.ok, report.failing_points
    (True, [])
    >>> print(str(report).splitlines()[0])
    check_grads: every point passes (order 2, modes fwd+rev, oracle fd, float64, 100 points)
    """
    if not callable(f):
        raise TypeError(f"check_grads: f must be a function, got {type(f).__name__} ({f!r:.80})")
    arrays = _check_args(f, args)
    modes = _check_modes(modes)
    if isinstance(order, bool) or order not in (1, 2):
        raise ValueError(f"check_grads: order must be 1 or 2, got {order!r}")
    if oracle not in ORACLES:
        raise ValueError(f"check_grads: oracle must be 'fd' (finite differences) or 'jax', got {oracle!r}")
    rtol = _check_tol(rtol, "rtol")
    atol = _check_tol(atol, "atol")
    if eps is not None and (isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps < 1):
        raise ValueError(
            f"check_grads: eps (the relative finite-difference step) must be a number in (0, 1), got {eps!r}"
        )
    if not isinstance(raise_on_failure, bool):
        raise TypeError(f"check_grads: raise_on_failure must be True or False, got {raise_on_failure!r}")

    xp = backend.namespace_of(*arrays)
    device = backend.device_of(arrays[0])
    dtype = backend.dtype_name(arrays[0].dtype)
    B = arrays[0].shape[0]
    shapes = [tuple(a.shape[1:]) for a in arrays]
    sizes = [math.prod(s) for s in shapes]
    Z = xp.concat([xp.reshape(a, (B, n)) for a, n in zip(arrays, sizes)], axis=1)
    F, out_shapes = _flat_function(f, shapes, sizes)

    Y = vmap(F)(Z)  # (B, M): also fills in ``out_shapes``
    if not xp.isdtype(Y.dtype, "real floating"):
        raise TypeError(f"check_grads: f must return floating-point arrays, got dtype {Y.dtype}")
    report = GradCheckReport(B, dtype, modes, order, oracle)
    if Y.shape[1] == 0 or Z.shape[1] == 0:  # nothing to differentiate
        return report
    describe = _describer(out_shapes, shapes, [_param_name(f, i) for i in range(len(arrays))])
    jac = {"fwd": jacfwd, "rev": jacrev}
    derivatives = {1: {m: jac[m](F) for m in modes}}
    if order == 2:
        derivatives[2] = {
            f"{outer}-over-{inner}": hessian(F) if (outer, inner) == ("fwd", "rev") else jac[outer](jac[inner](F))
            for outer in modes
            for inner in modes
        }
    key = dtype if dtype in ("float64", "float32") else "float32"
    for k, funs in derivatives.items():
        got = {name: vmap(fun)(Z) for name, fun in funs.items()}
        if oracle == "fd":
            ref, ref_noise = _finite_differences(F, Z, k, xp, device, eps)
        else:
            ref, ref_noise = _jax_derivatives(F, Z, k, xp, device), None
        ref_kind = f"fd{k}" if oracle == "fd" else "ad"
        first = next(iter(got))
        # Every mode against the oracle, then every other mode against the first (two exact methods).
        checks = [(f"{name} vs {oracle}", got[name], ref, ref_kind, ref_noise) for name in got]
        checks += [(f"{name} vs {first}", got[name], got[first], "ad", None) for name in got if name != first]
        for name, value, expected, kind, noise in checks:
            d_rtol, d_atol = _TOLERANCES[(kind, key)]
            r = d_rtol if rtol is None else rtol
            a = d_atol if atol is None else atol
            failures = _compare(value, expected, noise, r, a, xp, k, name, describe)
            report.comparisons.append(Comparison(k, name, r, a, len(failures)))
            report.failures.extend(failures)

    report.failures.sort(key=lambda x: (x.point, x.order))
    if raise_on_failure:
        report.raise_if_failed()
    return report


# ---------------------------------------------------------------------------------------------
# Checking what the user passed
# ---------------------------------------------------------------------------------------------


def _check_args(f: Callable[..., Any], args: Any) -> list[Any]:
    if backend.is_array(args) and not isinstance(args, Tracer):
        args = (args,)
    if not isinstance(args, (tuple, list)) or not args:
        raise TypeError(
            "check_grads: args must be an array or a non-empty tuple of arrays (one per argument of f, "
            f"batch on axis 0), got {type(args).__name__}"
        )
    labels = [f"argument {i} ({_param_name(f, i)})" for i in range(len(args))]
    for label, a in zip(labels, args):
        if isinstance(a, Tracer) or not backend.is_array(a):
            raise TypeError(
                f"check_grads: {label} must be an array (NumPy, CuPy or any array-API array) holding the "
                f"batch of points on axis 0, got {type(a).__name__}"
            )
        if not backend.namespace_of(a).isdtype(a.dtype, "real floating"):
            raise TypeError(f"check_grads: {label} has dtype {a.dtype}; the derivatives need float32 or float64")
        if len(a.shape) == 0:
            raise ValueError(
                f"check_grads: {label} is 0-dimensional, but axis 0 of every argument is the batch of points; "
                "for a single point pass x[None]"
            )
    first = args[0]
    for label, a in zip(labels[1:], args[1:]):
        if a.shape[0] != first.shape[0]:
            raise ValueError(
                f"check_grads: the arguments disagree on the number of points (axis 0): {labels[0]} "
                f"has {first.shape[0]} but {label} has {a.shape[0]}"
            )
        if backend.dtype_name(a.dtype) != backend.dtype_name(first.dtype):
            raise TypeError(
                f"check_grads: {labels[0]} is {backend.dtype_name(first.dtype)} but {label} "
                f"is {backend.dtype_name(a.dtype)}; give all arguments one dtype"
            )
    if first.shape[0] == 0:
        raise ValueError(
            "check_grads: the batch is empty (axis 0 of the arguments has size 0); give at least one point"
        )
    try:
        _common_namespace(args, labels)
    except (TypeError, ValueError) as exc:  # two libraries or two devices
        raise type(exc)(f"check_grads: {exc}") from None
    return list(args)


def _check_modes(modes: Any) -> tuple[str, ...]:
    if isinstance(modes, str):
        modes = (modes,)
    if not isinstance(modes, (tuple, list)) or not modes:
        raise ValueError(f"check_grads: modes must be a non-empty tuple of 'fwd' and/or 'rev', got {modes!r}")
    for m in modes:
        if m not in MODES:
            raise ValueError(f"check_grads: unknown mode {m!r}; modes are 'fwd' (jacfwd) and 'rev' (jacrev)")
    return tuple(dict.fromkeys(modes))  # in order, without repeats


def _check_tol(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 or math.isinf(value):
        raise ValueError(f"check_grads: {name} must be a non-negative finite number or None, got {value!r}")
    return float(value)


def _flat_function(
    f: Callable[..., Any], shapes: list[tuple[int, ...]], sizes: list[int]
) -> tuple[Callable[..., Any], list[tuple[int, ...]]]:
    """``F(z)``: ``f`` on the arguments cut out of one flat vector ``z`` (all inputs of a point),
    returning all its outputs as one flat vector. Written against ``z``'s own namespace, so the same
    F runs on gpuad and on JAX. The list returned with it receives the shapes of ``f``'s outputs
    at the first call."""
    out_shapes: list[tuple[int, ...]] = []

    def F(z: Any) -> Any:
        ns = z.__array_namespace__() if hasattr(z, "__array_namespace__") else backend.namespace_of(z)
        parts = []
        offset = 0
        for shape, n in zip(shapes, sizes):
            parts.append(ns.reshape(z[offset : offset + n], shape))
            offset += n
        leaves = tree_leaves(f(*parts))
        if not leaves or not all(hasattr(o, "shape") and hasattr(o, "dtype") for o in leaves):
            raise TypeError("check_grads: f must return an array, or a tuple/list/dict of arrays")
        if not out_shapes:
            out_shapes.extend(tuple(int(d) for d in o.shape) for o in leaves)
        flat = [ns.reshape(o, (-1,)) for o in leaves]
        return flat[0] if len(flat) == 1 else ns.concat(flat, axis=0)

    return F, out_shapes


# ---------------------------------------------------------------------------------------------
# Oracles
# ---------------------------------------------------------------------------------------------


def _evaluate(F: Callable[..., Any], points: list[Any], xp: Any) -> list[Any]:
    """``vmap(F)`` at each of several batches of points, concatenated into few calls."""
    B = points[0].shape[0]
    per_call = max(1, _FD_BUDGET // max(B, 1))
    out: list[Any] = []
    for start in range(0, len(points), per_call):
        group = points[start : start + per_call]
        Y = vmap(F)(group[0] if len(group) == 1 else xp.concat(group, axis=0))
        out.extend(Y[k * B : (k + 1) * B, ...] for k in range(len(group)))
    return out


def _finite_differences(F: Callable[..., Any], Z: Any, order: int, xp: Any, device: Any, eps: float | None) -> Any:
    """Central differences of the function values in every input coordinate, (B, M, N) for order
    1 and (B, M, N, N) for order 2, and the rounding noise of each. They use f only, so they do not
    depend on any derivative rule."""
    tiny = float(xp.finfo(Z.dtype).eps)
    c = eps if eps is not None else tiny ** (1 / (order + 2))
    N = Z.shape[1]
    absz = xp.abs(Z)
    H = c * xp.maximum(absz, xp.ones_like(absz))
    eye = xp.eye(N, dtype=Z.dtype, device=device)
    step = [H[:, k : k + 1] * eye[k : k + 1, :] for k in range(N)]
    dh = (Z + H) - (Z - H)  # twice the steps actually taken, after rounding
    if order == 1:
        vals = _evaluate(F, [p for s in step for p in (Z + s, Z - s)], xp)
        cols, noise = [], []
        for k in range(N):
            plus, minus = vals[2 * k], vals[2 * k + 1]
            cols.append((plus - minus) / dh[:, k : k + 1])
            noise.append(_FD_NOISE * tiny * xp.maximum(xp.abs(plus), xp.abs(minus)) / dh[:, k : k + 1])
        return xp.stack(cols, axis=-1), xp.stack(noise, axis=-1)
    half = [dh[:, k : k + 1] / 2 for k in range(N)]
    pairs = [(i, j) for i in range(N) for j in range(i, N)]
    points = []
    for i, j in pairs:
        points += [Z + step[i] + step[j], Z + step[i] - step[j], Z - step[i] + step[j], Z - step[i] - step[j]]
    vals = _evaluate(F, points, xp)
    value: list[list[Any]] = [[None] * N for _ in range(N)]
    noise = [[None] * N for _ in range(N)]
    for p, (i, j) in enumerate(pairs):
        pp, pm, mp, mm = vals[4 * p : 4 * p + 4]
        denom = 4 * half[i] * half[j]
        top = xp.maximum(xp.maximum(xp.abs(pp), xp.abs(pm)), xp.maximum(xp.abs(mp), xp.abs(mm)))
        value[i][j] = value[j][i] = ((pp - pm) - (mp - mm)) / denom
        noise[i][j] = noise[j][i] = _FD_NOISE * tiny * top / denom
    return tuple(xp.stack([xp.stack(row, axis=-1) for row in m], axis=-2) for m in (value, noise))


def _x64(jax: Any) -> Any:
    """JAX's float64 switch as a context manager where this JAX has one."""
    manager = getattr(jax, "enable_x64", None)
    if callable(manager):
        return manager(True)
    from jax.experimental import enable_x64  # older JAX

    return enable_x64()


def _jax_derivatives(F: Callable[..., Any], Z: Any, order: int, xp: Any, device: Any) -> Any:
    """JAX's derivatives of the same flat function at every point: (B, M, N) or (B, M, N, N)."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        raise ImportError(
            "check_grads: oracle='jax' needs JAX (pip install jax); without it use oracle='fd'"
        ) from None
    host = backend.to_numpy(Z)  # host-ok: JAX gets its own copy of the points
    with _x64(jax):
        z = jnp.asarray(host)
        try:
            d = jax.jit(jax.vmap(jax.jacfwd(F) if order == 1 else jax.hessian(F)))(z)
        except Exception as exc:  # the user's code failed on JAX arrays
            raise TypeError(
                "check_grads: oracle='jax' runs f on JAX arrays, and f failed there "
                f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}). Write f against the "
                "array API (xp = x.__array_namespace__(); xp.sin(x), ...) rather than gpuad.numpy, or use oracle='fd'"
            ) from exc
        result = numpy.asarray(d)  # host-ok
    return xp.asarray(result, device=device)


# ---------------------------------------------------------------------------------------------
# Comparing, point by point
# ---------------------------------------------------------------------------------------------


def _compare(got, expected, noise, rtol, atol, xp, order, name, describe) -> list[Failure]:
    B = got.shape[0]
    g = xp.reshape(got, (B, -1))
    e = xp.reshape(xp.astype(expected, g.dtype), (B, -1))
    zeros = xp.zeros_like(g)
    inf = xp.full_like(g, math.inf)
    # Equal non-finite values (NaN and NaN, inf and inf) agree; any other non-finite pair fails.
    # Arithmetic only on finite values, so that no NaN/inf warnings come from the check itself.
    same = (g == e) | (xp.isnan(g) & xp.isnan(e))
    finite = xp.isfinite(g) & xp.isfinite(e)
    gf, ef = xp.where(finite, g, zeros), xp.where(finite, e, zeros)
    diff = xp.where(finite, xp.abs(gf - ef), xp.where(same, zeros, inf))
    scale = xp.where(finite, xp.maximum(xp.abs(gf), xp.abs(ef)), inf)
    tol = atol + rtol * xp.where(finite, scale, zeros)
    if noise is not None:
        tol = tol + xp.reshape(xp.astype(noise, g.dtype), (B, -1))
    bad = (diff > tol) | (~same & ~finite)
    divisible = finite & (scale > 0)
    rel = xp.where(divisible, diff / xp.where(divisible, scale, xp.ones_like(scale)), xp.where(diff > 0, inf, zeros))
    point_bad = backend.to_numpy(xp.any(bad, axis=1))  # host-ok: one flag per point
    idx = numpy.nonzero(point_bad)[0]
    if idx.size == 0:
        return []
    sel = xp.asarray(idx, device=backend.device_of(g))  # host-ok: the failing points' indices, to the device
    ratio = xp.where(bad, diff / xp.where(tol > 0, tol, xp.full_like(tol, 1e-300)), xp.full_like(diff, -1.0))
    worst = backend.to_numpy(xp.argmax(xp.take(ratio, sel, axis=0), axis=1))  # host-ok: failing points only
    # host-ok: the failing points only
    got_h, expected_h, diff_h, rel_h = (backend.to_numpy(xp.take(v, sel, axis=0)) for v in (g, e, diff, rel))
    out = []
    for row, (p, w) in enumerate(zip(idx.tolist(), worst.tolist())):
        out.append(
            Failure(point=p, order=order, comparison=name, abs_err=float(numpy.max(diff_h[row])),
                    rel_err=float(numpy.max(rel_h[row])), element=describe(order, w), got=float(got_h[row, w]),
                    expected=float(expected_h[row, w]))
        )
    return out


def _describer(out_shapes: list[tuple[int, ...]], in_shapes: list[tuple[int, ...]], names: list[str]) -> Callable:
    """Names an element of a flat derivative: ``d out[1] / d x[0]``, ``d2 out / d x[0] d y``."""

    def slots(shapes: list[tuple[int, ...]], labels: list[str]) -> list[str]:
        return [
            label + ("[" + ", ".join(str(int(i)) for i in numpy.unravel_index(k, shape)) + "]" if shape else "")
            for shape, label in zip(shapes, labels)
            for k in range(math.prod(shape))
        ]

    outs = slots(out_shapes, ["out"] if len(out_shapes) == 1 else [f"out.{i}" for i in range(len(out_shapes))])
    ins = slots(in_shapes, names)

    def describe(order: int, flat: int) -> str:
        n = len(ins)
        if order == 1:
            m, i = divmod(flat, n)
            return f"d {outs[m]} / d {ins[i]}"
        m, rest = divmod(flat, n * n)
        i, j = divmod(rest, n)
        return f"d2 {outs[m]} / d {ins[i]} d {ins[j]}"

    return describe
