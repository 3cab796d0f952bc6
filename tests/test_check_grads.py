"""gpuad.testing.check_grads: it passes on every row of the spec table, it catches deliberately wrong
derivative rules and names exactly the points where they are wrong, and every bad input gets a
clear error."""

from __future__ import annotations

import dataclasses

import math
import sys
import zlib

import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp
from gpuad.primitives import Primitive
from gpuad.testing import Failure, GradCheckError, GradCheckReport, check_grads
from gpuad.tracing import Tracer

from .spec import SPECS, Domain, GpuadNS, JaxNS, core

GNS = GpuadNS()
B = 3  # points per spec row: enough to see per-point bookkeeping, cheap enough for every row


def batch(spec, dtype="float64", n=B):
    """n points of each of the row's arguments, sampled in the row's domains (batch on axis 0)."""
    rng = np.random.default_rng(zlib.crc32(spec.name.encode()) + 7)
    return tuple(dataclasses.replace(d, shape=(n,) + d.shape).sample(rng, dtype) for d in spec.args)


def on_gpuad(spec):
    return lambda *a: spec.fn(GNS, *a)


def on_either(spec):
    """The row's function on gpuad's values and, for the JAX oracle, on JAX's."""
    jns = JaxNS()
    return lambda *a: spec.fn(GNS if isinstance(a[0], Tracer) else jns, *a)


# ---------------------------------------------------------------------------------------------
# It passes where gpuad is right: every spec row, so every primitive
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_every_spec_row_passes_first_order(spec):
    """fwd, rev and the oracle agree at every point. Rows whose derivative differs from finite
    differences by design (stop_gradient, a float32 round trip) are checked against JAX."""
    if spec.extra.get("fd", True):
        report = check_grads(on_gpuad(spec), batch(spec), order=1)
    else:
        pytest.importorskip("jax")
        report = check_grads(on_either(spec), batch(spec), order=1, oracle="jax", rtol=spec.extra.get("rtol64"))
    assert report.ok, str(report)
    assert report.n_points == B and report.failing_points == []
    assert [c.name for c in report.comparisons] == [
        f"fwd vs {report.oracle}", f"rev vs {report.oracle}", "rev vs fwd"
    ]


def test_the_first_order_rows_cover_every_primitive():
    """The test above runs every row, and the rows together use every primitive of the table."""
    used = {p for s in SPECS for p in s.prims}
    assert set(gpuad.PRIMITIVES) <= used, sorted(set(gpuad.PRIMITIVES) - used)


def _one_row_per_primitive():
    """The fewest core rows (smooth enough for second derivatives, no JAX needed) that between them
    use every primitive such rows use: second order costs more, so not every row runs it."""
    rows = [s for s in core(SPECS) if s.second_order and s.extra.get("fd", True)]
    # logsumexp_big scales its argument by 300: its fourth derivative is ~300^4, too large for a
    # second difference with the default step (finite differences, not gpuad, are off there).
    rows = [s for s in rows if s.name != "logsumexp_big"]
    chosen, seen = [], set()
    for s in rows:
        if set(s.prims) - seen:
            chosen.append(s)
            seen |= set(s.prims)
    return chosen


@pytest.mark.parametrize("spec", _one_row_per_primitive(), ids=str)
def test_spec_rows_pass_second_order(spec):
    """All four compositions (fwd/rev over fwd/rev) agree with second differences of f."""
    report = check_grads(on_gpuad(spec), batch(spec), order=2)
    assert report.ok, str(report)
    assert sum(c.order == 2 for c in report.comparisons) == 4 + 3


@pytest.mark.parametrize("name", ["sin", "exp", "tanh", "log", "divide[4, 3][4, 3]", "matmul", "softmax", "seed2_batch"])
def test_float32_defaults_pass_on_smooth_rows(name):
    """The float32 defaults allow for finite differences in float32 (steps of ~5e-3)."""
    spec = next(s for s in SPECS if s.name == name)
    report = check_grads(on_gpuad(spec), batch(spec, "float32"), order=2)
    assert report.ok, str(report)
    assert report.dtype == "float32"
    assert report.comparisons[0].rtol == 2e-2


def test_seed_function_on_many_points():
    """The seed function of note 001 at 1000 points, both orders."""
    X = np.random.default_rng(1).uniform(1.0, 3.0, size=(1000, 2))
    report = check_grads(lambda x: gnp.log(x[0]) + x[0] * x[1] - gnp.sin(x[1]), (X,))
    assert report.ok, str(report)
    assert report.n_points == 1000 and str(report).startswith("check_grads: every point passes (order 2")


# ---------------------------------------------------------------------------------------------
# It catches wrong rules, and names exactly the points where they are wrong
# ---------------------------------------------------------------------------------------------


def _cos_rule(g, ans, x):
    return gnp.multiply(g, gnp.cos(x))


def _wrong_above_one(g, ans, x):
    """Twice the right factor where x > 1, right elsewhere."""
    return gnp.multiply(g, gnp.where(x > 1.0, 2.0 * gnp.cos(x), gnp.cos(x)))


# Two sines that are not in the table: one with a wrong VJP (its JVP is right), one with a wrong JVP.
SIN_BAD_VJP = Primitive("sin_bad_vjp", lambda xp, x: xp.sin(x), jvp=(_cos_rule,), vjp=(_wrong_above_one,), residuals=("args",))
SIN_BAD_JVP = Primitive("sin_bad_jvp", lambda xp, x: xp.sin(x), jvp=(_wrong_above_one,), vjp=(_cos_rule,), residuals=("args",))

X = np.asarray([0.5, 1.5, 0.2, 2.0, -1.0, 1.0001, 0.9999])
ABOVE_ONE = [1, 3, 5]


def failing(report, comparison):
    return [f.point for f in report.failures if f.comparison == comparison]


def test_catches_a_wrong_vjp_at_exactly_the_points_where_it_is_wrong():
    """f = sin(x) x with the VJP of sin doubled where x > 1: reverse mode is off by cos(x) x at those
    points; forward mode is right everywhere."""
    report = check_grads(lambda x: SIN_BAD_VJP(x) * x, X, order=1)
    assert not report.ok
    assert report.failing_points == ABOVE_ONE
    assert failing(report, "fwd vs fd") == []
    assert failing(report, "rev vs fd") == ABOVE_ONE
    assert failing(report, "rev vs fwd") == ABOVE_ONE
    for f in report.failures:
        x = X[f.point]
        right = math.cos(x) * x + math.sin(x)
        assert f.order == 1 and f.element == "d out / d x"
        assert f.got == pytest.approx(right + math.cos(x) * x, rel=1e-12)
        assert f.expected == pytest.approx(right, rel=1e-8)
        assert f.abs_err == pytest.approx(abs(math.cos(x) * x), rel=1e-6)
        assert f.rel_err == pytest.approx(abs(math.cos(x) * x) / max(abs(f.got), abs(f.expected)), rel=1e-6)
    text = str(report)
    assert "3 of 7 points fail" in text and "points [1, 3, 5]" in text
    assert "rev vs fd" in text and "d out / d x" in text


def test_catches_a_wrong_jvp_and_tells_it_from_a_wrong_vjp():
    """The mirror image: the JVP is wrong where x > 1, so fwd disagrees with fd and rev, rev is right."""
    report = check_grads(lambda x: SIN_BAD_JVP(x) * x, X, order=1)
    assert report.failing_points == ABOVE_ONE
    assert failing(report, "fwd vs fd") == ABOVE_ONE
    assert failing(report, "rev vs fd") == []
    assert failing(report, "rev vs fwd") == ABOVE_ONE


def test_a_wrong_rule_also_fails_the_second_order_compositions_that_use_it():
    """At order 2 the wrong VJP spoils every composition with a reverse pass, not fwd-over-fwd."""
    report = check_grads(lambda x: SIN_BAD_VJP(x) * x, X, order=2)
    assert report.failing_points == ABOVE_ONE
    by = {c.name: c.failing for c in report.comparisons if c.order == 2}
    assert by["fwd-over-fwd vs fd"] == 0
    assert by["fwd-over-rev vs fd"] == by["rev-over-fwd vs fd"] == by["rev-over-rev vs fd"] == 3
    assert {f.element for f in report.failures if f.order == 2} == {"d2 out / d x d x"}


def test_catches_a_wrong_custom_vjp_in_reverse_mode():
    """A custom_vjp whose bwd forgets a factor 2: wrong at every point (custom_vjp has no forward
    mode, so only rev is checked)."""

    @gpuad.custom_vjp
    def square(x):
        return x * x

    square.defvjp(lambda x: (x * x, x), lambda x, g: (g * x,))  # d(x^2)/dx is 2x
    pts = np.asarray([1.0, -2.0, 3.0])
    report = check_grads(lambda x: square(x), pts, modes=("rev",), order=1)
    assert report.failing_points == [0, 1, 2]
    assert [c.name for c in report.comparisons] == ["rev vs fd"]
    assert [f.got for f in report.failures] == pytest.approx(list(pts))
    assert [f.expected for f in report.failures] == pytest.approx(list(2 * pts), rel=1e-8)


def test_catches_a_wrong_custom_jvp_in_both_modes():
    """A custom_jvp rule feeds both modes in gpuad (reverse transposes it): both disagree with fd
    where the rule is wrong, and agree with each other."""

    @gpuad.custom_jvp
    def f(x):
        return gnp.sin(x)

    @f.defjvp
    def f_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        return f(x), t * gnp.where(x > 1.0, 2.0 * gnp.cos(x), gnp.cos(x))

    report = check_grads(f, X, order=1)
    assert report.failing_points == ABOVE_ONE
    assert failing(report, "fwd vs fd") == failing(report, "rev vs fd") == ABOVE_ONE
    assert failing(report, "rev vs fwd") == []


def test_a_rule_right_to_first_order_only_fails_at_second_order():
    """A JVP rule that stops the gradient of its own factor gives right first derivatives and a
    second derivative missing the -sin term: order=1 passes, order=2 fails."""

    @gpuad.custom_jvp
    def f(x):
        return gnp.sin(x)

    @f.defjvp
    def f_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        return f(x), t * gpuad.stop_gradient(gnp.cos(x))

    pts = np.asarray([0.3, 1.2, -0.7])
    assert check_grads(f, pts, order=1).ok
    report = check_grads(f, pts, order=2)
    assert report.failing_points == [0, 1, 2]
    assert {f.order for f in report.failures} == {2}
    assert all(f.got == 0.0 for f in report.failures if f.comparison.endswith("vs fd"))


def test_raise_on_failure_raises_an_assertion_error_with_the_report():
    with pytest.raises(GradCheckError) as info:
        check_grads(lambda x: SIN_BAD_VJP(x) * x, X, order=1, raise_on_failure=True)
    assert isinstance(info.value, AssertionError)
    assert "points [1, 3, 5]" in str(info.value) and "rev vs fd" in str(info.value)
    assert isinstance(info.value.report, GradCheckReport) and info.value.report.failing_points == ABOVE_ONE
    report = check_grads(lambda x: SIN_BAD_VJP(x) * x, X, order=1)
    with pytest.raises(AssertionError, match="3 of 7 points fail"):
        report.raise_if_failed()
    good = check_grads(gnp.sin, X, order=1)
    assert good.raise_if_failed() is good


def test_report_names_outputs_and_arguments():
    """Several arguments and a tuple of outputs: the worst element is named by parameter and index."""

    def f(x, y):
        return gnp.sin(x) * y[0], SIN_BAD_VJP(x[1]) * y

    xs = np.asarray([[0.1, 2.0], [0.1, 0.5]])
    ys = np.asarray([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    report = check_grads(f, (xs, ys), order=1)
    assert report.failing_points == [0]
    assert {f.element for f in report.failures} == {"d out.1[2] / d x[1]"}


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning", "ignore:divide by zero:RuntimeWarning")
def test_nan_where_the_oracle_is_nan_too_is_agreement():
    """sqrt at a negative point: every method gives NaN there, which is not a failure; an infinite
    derivative where differences are finite is one."""
    assert check_grads(gnp.sqrt, np.asarray([-1.0, 4.0]), order=1).ok
    report = check_grads(gnp.sqrt, np.asarray([4.0, 0.0]), order=1)
    assert report.failing_points == [1]
    assert all(f.got == math.inf for f in report.failures if f.comparison != "rev vs fwd")


def test_user_tolerances_replace_the_defaults():
    report = check_grads(gnp.sin, X, order=1, rtol=0.0, atol=0.0)
    assert {(c.rtol, c.atol) for c in report.comparisons} == {(0.0, 0.0)}
    loose = check_grads(lambda x: SIN_BAD_VJP(x) * x, X, order=1, rtol=2.0)
    assert loose.ok  # a factor-2 error passes a 200% relative tolerance
    assert check_grads(gnp.exp, X, order=1, eps=1e-7).ok


def test_on_the_strict_device(backend):
    """The stand-in GPU: no implicit host copies, and the same points fail."""
    report = check_grads(lambda x: SIN_BAD_VJP(x) * x, backend.asarray(X), order=2)
    assert report.failing_points == ABOVE_ONE
    assert check_grads(lambda x: gnp.sum(gnp.exp(x) * x), backend.asarray(np.ones((2, 3)))).ok


# ---------------------------------------------------------------------------------------------
# The JAX oracle
# ---------------------------------------------------------------------------------------------


def seed2_array_api(x):
    """Note 004's function written against the array API, so that it runs on JAX too."""
    xp = x.__array_namespace__()
    v1 = x[0] / x[1]
    v3 = xp.exp(x[1])
    return (xp.sin(v1) + v1 - v3) * (v1 - v3)


def test_jax_oracle_agrees_on_the_seed_function_and_catches_the_wrong_vjp():
    pytest.importorskip("jax")
    P = np.asarray([[1.5, 0.5], [2.0, 1.0], [0.7, 1.3]])
    report = check_grads(seed2_array_api, P, order=2, oracle="jax")
    assert report.ok, str(report)
    assert [c.name for c in report.comparisons][:2] == ["fwd vs jax", "rev vs jax"]

    def f(x):  # the wrong sine under gpuad; plain sine on JAX, which is right
        return (SIN_BAD_VJP(x) if isinstance(x, Tracer) else x.__array_namespace__().sin(x)) * x

    report = check_grads(f, X, order=1, oracle="jax")
    assert failing(report, "rev vs jax") == ABOVE_ONE and failing(report, "fwd vs jax") == []


def test_jax_oracle_error_when_f_fails_on_jax_arrays():
    pytest.importorskip("jax")

    def gpuad_only(x):
        ns = gnp if isinstance(x, Tracer) else None  # nothing to call on a JAX array
        return ns.sin(x)

    with pytest.raises(TypeError, match="oracle='jax' runs f on JAX arrays, and f failed there.*array API"):
        check_grads(gpuad_only, X, order=1, oracle="jax")


def test_jax_oracle_error_without_jax(monkeypatch):
    monkeypatch.setitem(sys.modules, "jax", None)  # as if JAX were not installed
    with pytest.raises(ImportError, match=r"oracle='jax' needs JAX \(pip install jax\); without it use oracle='fd'"):
        check_grads(gnp.sin, X, order=1, oracle="jax")


# ---------------------------------------------------------------------------------------------
# Bad input: each error names what is wrong
# ---------------------------------------------------------------------------------------------


def sin1(x):
    return gnp.sin(x)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(modes=("fwd", "backward")), ValueError, "unknown mode 'backward'; modes are 'fwd' \\(jacfwd\\) and 'rev'"),
        (dict(modes=()), ValueError, "modes must be a non-empty tuple of 'fwd' and/or 'rev', got \\(\\)"),
        (dict(modes=None), ValueError, "modes must be a non-empty tuple"),
        (dict(order=3), ValueError, "order must be 1 or 2, got 3"),
        (dict(order=True), ValueError, "order must be 1 or 2, got True"),
        (dict(oracle="torch"), ValueError, "oracle must be 'fd' \\(finite differences\\) or 'jax', got 'torch'"),
        (dict(rtol=-1.0), ValueError, "rtol must be a non-negative finite number or None, got -1.0"),
        (dict(atol="small"), ValueError, "atol must be a non-negative finite number or None, got 'small'"),
        (dict(rtol=math.inf), ValueError, "rtol must be a non-negative finite number"),
        (dict(eps=0.0), ValueError, "eps \\(the relative finite-difference step\\) must be a number in \\(0, 1\\), got 0.0"),
        (dict(eps=2), ValueError, "eps .* got 2"),
        (dict(raise_on_failure="yes"), TypeError, "raise_on_failure must be True or False, got 'yes'"),
    ],
)
def test_bad_options(kwargs, error, message):
    with pytest.raises(error, match="check_grads: " + message):
        check_grads(sin1, X, **kwargs)


def test_bad_function_and_arguments():
    with pytest.raises(TypeError, match="check_grads: f must be a function, got int"):
        check_grads(3, X)
    with pytest.raises(TypeError, match="args must be an array or a non-empty tuple of arrays .* got NoneType"):
        check_grads(sin1, None)
    with pytest.raises(TypeError, match="args must be an array or a non-empty tuple"):
        check_grads(sin1, ())
    with pytest.raises(TypeError, match=r"argument 0 \(x\) must be an array .* holding the batch of points on axis 0, got list"):
        check_grads(sin1, ([1.0, 2.0],))
    with pytest.raises(TypeError, match=r"argument 0 \(x\) has dtype int64; the derivatives need float32 or float64"):
        check_grads(sin1, np.arange(3))
    with pytest.raises(ValueError, match=r"argument 0 \(x\) is 0-dimensional, but axis 0 of every argument is the batch"):
        check_grads(sin1, (np.asarray(1.0),))

    def f2(x, y):
        return x * y

    with pytest.raises(ValueError, match=r"disagree on the number of points \(axis 0\): argument 0 \(x\) has 3 but argument 1 \(y\) has 2"):
        check_grads(f2, (np.ones(3), np.ones(2)))
    with pytest.raises(TypeError, match=r"argument 0 \(x\) is float64 but argument 1 \(y\) is float32; give all arguments one dtype"):
        check_grads(f2, (np.ones(3), np.ones(3, dtype=np.float32)))


def test_empty_batch_and_mixed_libraries():
    with pytest.raises(ValueError, match=r"check_grads: the batch is empty \(axis 0 of the arguments has size 0\)"):
        check_grads(sin1, np.ones((0, 2)))
    import array_api_strict as xs

    strict = xs.asarray(np.ones(3), device=xs.Device("device1"))
    with pytest.raises(TypeError, match=r"^check_grads: argument 0 \(x\) is a numpy array but argument 1 \(y\) is a array_api_strict array"):
        check_grads(lambda x, y: x * y, (np.ones(3), strict))


def test_bad_outputs():
    with pytest.raises(TypeError, match="check_grads: f must return an array, or a tuple/list/dict of arrays"):
        check_grads(lambda x: "not an array", X)
    with pytest.raises(TypeError, match="check_grads: f must return floating-point arrays, got dtype"):
        check_grads(lambda x: gnp.astype(x > 0, gnp.int64), X)


def test_x64_switch_on_an_older_jax(monkeypatch):
    """JAX without jax.enable_x64 (before 0.4.36 or so): the experimental context manager."""
    import types

    from gpuad.testing import _x64

    marker = object()
    experimental = types.ModuleType("jax.experimental")
    experimental.enable_x64 = lambda: marker
    monkeypatch.setitem(sys.modules, "jax.experimental", experimental)
    old_jax = types.ModuleType("jax")
    old_jax.experimental = experimental
    assert _x64(old_jax) is marker


def test_nothing_to_differentiate_is_a_vacuous_pass():
    report = check_grads(lambda x: x[:0], np.ones((3, 2)), order=1)
    assert report.ok and report.comparisons == []


def test_failure_record_fields():
    f = Failure(point=2, order=1, comparison="rev vs fd", abs_err=1.0, rel_err=0.5, element="d out / d x", got=3.0, expected=2.0)
    assert (f.point, f.comparison) == (2, "rev vs fd")
