"""gpuad.scipy.special (issue 23) at the places the spec table does not sample: poles, the edges
of the domains, infinities, NaN, the far tails; its dtypes; the error it gives without SciPy or on
a library without special functions; every argument check. The spec table (tests/spec.py) holds
the smooth interiors against JAX in every transform.

Values and derivatives are compared with JAX x64 op by op; where gpuad's answer differs from JAX's
by design (README, gpuad.scipy.special) the test says so and checks gpuad's against the exact value.
"""

from __future__ import annotations

import math
import pathlib
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest

import gpuad
from gpuad.scipy import special as gs

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import jax.scipy.special as js  # noqa: E402

inf, nan = math.inf, math.nan


def _np(x):
    return np.asarray(gpuad.to_numpy(x))


# ---------------------------------------------------------------------------------------------
# Edge points against JAX: value, jvp, gradient and both second-order compositions
# ---------------------------------------------------------------------------------------------

# name: (the function of a special-function module, points, rtol). Each point is one element of a
# batch: vmap(grad) gives the per-point derivatives.
UNARY = {
    "erf": (lambda s, x: s.erf(x), [0.0, -0.0, 1e-300, 6.0, -6.0, 30.0, inf, -inf, nan], 1e-13),
    "erfc": (lambda s, x: s.erfc(x), [0.0, 6.0, -6.0, 30.0, inf, -inf, nan], 1e-13),
    # +-inf at +-1 (derivative inf), NaN outside [-1, 1]
    "erfinv": (lambda s, x: s.erfinv(x), [1.0, -1.0, 0.0, 1.5, -1.5, 1e-300, nan], 1e-13),
    # inf at 0 and the negative integers (and -inf), derivative NaN there (digamma's)
    "gammaln": (lambda s, x: s.gammaln(x), [0.0, -0.0, -1.0, -2.0, -2.5, 1e-300, 1.0, 2.0, -inf, nan], 1e-13),
    # NaN at 0 and the negative integers, derivative inf (polygamma(1, x)'s)
    "digamma": (lambda s, x: s.digamma(x), [0.0, -0.0, -1.0, -2.0, -2.5, 1e-300, 1.0, -inf, nan], 1e-13),
    "polygamma1": (lambda s, x: s.polygamma(1, x), [0.0, -0.0, -1.0, -2.5, 1e-300, 1.0, -inf, nan], 1e-13),
    "polygamma2": (lambda s, x: s.polygamma(2, x), [0.0, -0.0, -1.0, -2.5, 1e-300, 1.0, -inf, nan], 1e-13),
    "polygamma3": (lambda s, x: s.polygamma(3, x), [0.0, -1.0, -2.5, 1.0, -inf, nan], 1e-13),
    # -inf at 0, inf at 1, NaN outside; derivative inf at both ends, second derivative NaN
    "logit": (lambda s, x: s.logit(x), [0.0, 1.0, 0.5, -0.1, 1.1, 1e-300, nan], 1e-13),
    "expit": (lambda s, x: s.expit(x), [0.0, 800.0, -800.0, 40.0, -40.0, inf, -inf, nan], 1e-13),
    "ndtr": (lambda s, x: s.ndtr(x), [0.0, -40.0, 40.0, -1.0, 1.0, -8.0, 8.0, inf, -inf, nan], 1e-13),
    "log_ndtr": (lambda s, x: s.log_ndtr(x), [-10.0, 0.0, 40.0, inf, -inf, nan], 1e-13),
    # 1 and 0 at 0, derivatives 0 and 1/2 there; ~1/sqrt(2 pi x) for large x, 0 at +-inf. At large
    # x the derivative i1e - i0e cancels 2x-fold, in JAX's rule as in gpuad's.
    "i0e": (lambda s, x: s.i0e(x), [0.0, -0.0, 1e-20, 1e-8, 8.0, 700.0, -700.0, 1e300, inf, -inf, nan], 1e-9),
    "i1e": (lambda s, x: s.i1e(x), [0.0, -0.0, 1e-20, -1e-20, 8.0, 700.0, -700.0, 1e300, inf, -inf, nan], 1e-9),
}


def _unary_modes(lib, f, x):
    value, tangent = lib.jvp(f, (x,), (x * 0 + 1,))
    grad = lib.grad(f)
    return {
        "value": value,
        "jvp": tangent,
        "grad": lib.vmap(grad)(x),
        "rev-over-rev": lib.vmap(lib.grad(grad))(x),
        "fwd-over-rev": lib.vmap(lib.jacfwd(grad))(x),
    }


def _compare(got, want, rtol, name):
    for mode in want:
        g, w = _np(got[mode]), np.asarray(want[mode])
        assert g.shape == w.shape and g.dtype == w.dtype, (name, mode, g.dtype, w.dtype)
        np.testing.assert_allclose(g, w, rtol=rtol, atol=0, equal_nan=True, err_msg=f"{name}: {mode}")


@pytest.mark.parametrize("name", list(UNARY))
def test_edge_points_match_jax(name):
    f, points, rtol = UNARY[name]
    x = np.asarray(points)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's, for log(0), inf - inf, ...
        got = _unary_modes(gpuad, lambda v: f(gs, v), x)
        with jax.disable_jit():
            want = _unary_modes(jax, lambda v: f(js, v), jnp.asarray(x))
    _compare(got, want, rtol, name)


BINARY = {
    # xlogy(0, y) = 0 for any y but NaN; d/dx = log(y) (-inf at (0, 0)), d/dy = x / y (NaN there)
    "xlogy": [(0.0, 0.0), (0.0, 2.0), (1.0, 0.0), (0.0, nan), (0.0, -1.0), (2.0, -1.0), (-0.0, 3.0), (0.0, inf), (nan, 0.0), (3.0, 2.0)],
    "xlog1py": [(0.0, -1.0), (0.0, 2.0), (1.0, -1.0), (0.0, nan), (0.0, -2.0), (2.0, -2.0), (-0.0, 3.0), (0.0, inf), (nan, 0.0), (3.0, 2.0)],
}


def _binary_modes(lib, f, x, y):
    ones = x * 0 + 1
    both = (0, 1)
    hess = lib.vmap(lib.hessian(f, argnums=both))(x, y)
    rr = lib.vmap(lib.jacrev(lib.jacrev(f, argnums=both), argnums=both))(x, y)
    out = {"value": f(x, y), "jvp": lib.jvp(f, (x, y), (ones, ones))[1]}
    out.update({f"grad_{a}": g for a, g in zip("xy", lib.vmap(lib.grad(f, argnums=both))(x, y))})
    for a, i in (("x", 0), ("y", 1)):
        for b, j in (("x", 0), ("y", 1)):
            out[f"hessian_{a}{b}"], out[f"rev-over-rev_{a}{b}"] = hess[i][j], rr[i][j]
    return out


@pytest.mark.parametrize("name", list(BINARY))
def test_xlogy_and_xlog1py_at_zero_match_jax(name):
    """xlogy(0, 0) = 0 (xlog1py(0, -1) = 0), with JAX's derivatives there, to second order."""
    x = np.asarray([p[0] for p in BINARY[name]])
    y = np.asarray([p[1] for p in BINARY[name]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        got = _binary_modes(gpuad, getattr(gs, name), x, y)
        with jax.disable_jit():
            want = _binary_modes(jax, getattr(js, name), jnp.asarray(x), jnp.asarray(y))
    _compare(got, want, 1e-13, name)
    assert _np(got["value"])[0] == 0.0 and not np.signbit(_np(got["value"])[6])  # 0 at x = -0 too


def test_pinned_special_values():
    """The values the README promises, independent of the oracle."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        poles = np.asarray([0.0, -0.0, -1.0, -2.0, -inf])
        assert (_np(gs.gammaln(poles)) == inf).all()
        assert np.isnan(_np(gs.digamma(poles))).all()
        assert (_np(gs.polygamma(1, poles)) == inf).all() and (_np(gs.polygamma(3, poles)) == inf).all()
        assert np.isnan(_np(gs.polygamma(2, poles))).all() and np.isnan(_np(gs.polygamma(0, poles))).all()
        np.testing.assert_array_equal(_np(gs.erfinv(np.asarray([1.0, -1.0, 1.5, -1.5]))), [inf, -inf, nan, nan])
        np.testing.assert_array_equal(_np(gpuad.vmap(gpuad.grad(gs.erfinv))(np.asarray([1.0, -1.0]))), [inf, inf])
        np.testing.assert_array_equal(_np(gs.logit(np.asarray([0.0, 1.0]))), [-inf, inf])
        np.testing.assert_array_equal(_np(gs.xlogy(np.zeros(3), np.asarray([0.0, inf, -1.0]))), [0.0, 0.0, 0.0])
        np.testing.assert_array_equal(_np(gs.xlog1py(np.zeros(2), np.asarray([-1.0, -5.0]))), [0.0, 0.0])
        np.testing.assert_array_equal(_np(gs.i0e(np.asarray([0.0, inf, -inf]))), [1.0, 0.0, 0.0])
        np.testing.assert_array_equal(_np(gpuad.vmap(gpuad.grad(gs.i0e))(np.asarray([0.0]))), [0.0])
        np.testing.assert_array_equal(_np(gpuad.vmap(gpuad.grad(gs.i1e))(np.asarray([0.0, 1e-300]))), [0.5, 0.5])


# ---------------------------------------------------------------------------------------------
# The tails: exact to rounding (reference values from mpmath at 60 digits)
# ---------------------------------------------------------------------------------------------

# x: (log_ndtr(x), its first and second derivatives)
LOG_NDTR_EXACT = {
    -40.0: (-804.60844201375378817, 40.024968847207263723, -0.99937733162140861123),
    -10.0: (-53.231285150512470578, 10.098093233962511963, -0.99055462217434373884),
    5.0: (-2.8665161296376359338e-7, 1.4867199409049057124e-6, -7.4336019148607112465e-6),
    10.0: (-7.619853024160526066e-24, 7.6945986267064193463e-23, -7.6945986267064193463e-22),
}


def test_log_ndtr_is_exact_in_both_tails():
    """Far in the left tail (-40, where ndtr is 4e-350: 0 in float64) and where ndtr rounds to 1
    (5, 10): the value and the gradient to rounding. The second derivative f' (-x - f') cancels
    x**2-fold in the left tail (1.5e-10 at -40, JAX's rule as gpuad's)."""
    x = np.asarray(list(LOG_NDTR_EXACT))
    value, d1, d2 = (np.asarray(v) for v in zip(*LOG_NDTR_EXACT.values()))
    grad = gpuad.grad(gs.log_ndtr)
    np.testing.assert_allclose(_np(gs.log_ndtr(x)), value, rtol=1e-14)
    np.testing.assert_allclose(_np(gpuad.vmap(grad)(x)), d1, rtol=1e-13)
    np.testing.assert_allclose(_np(gpuad.vmap(gpuad.grad(grad))(x)), d2, rtol=1e-9)


def test_log_ndtr_against_jax_at_the_brief_points():
    """Against JAX at -40, -10 and 5. JAX sums 3 terms of an asymptotic series below -20 (its
    value at -40 is off by 2e-14, its derivative by 1.6e-11 relatively) and takes log(ndtr(x))
    below 8 (at 5 its value is off by 1.5e-10, ndtr's rounding): gpuad agrees with it to those
    errors and is exact where it is not (test above)."""
    x = np.asarray([-40.0, -10.0, 5.0])
    got = _unary_modes(gpuad, gs.log_ndtr, x)
    with jax.disable_jit():
        want = _unary_modes(jax, js.log_ndtr, jnp.asarray(x))
    for mode, rtol in (("value", 2e-10), ("jvp", 2e-11), ("grad", 2e-11), ("fwd-over-rev", 3e-8)):
        np.testing.assert_allclose(_np(got[mode]), np.asarray(want[mode]), rtol=rtol, err_msg=mode)
    np.testing.assert_allclose(_np(got["value"])[:2], np.asarray(want["value"])[:2], rtol=3e-14)
    assert abs(float(want["value"][2]) - LOG_NDTR_EXACT[5.0][0]) > 1e3 * abs(float(got["value"][2]) - LOG_NDTR_EXACT[5.0][0])


def test_tails_of_ndtr_erfc_erfinv_keep_relative_precision():
    x = np.asarray([-30.0, -8.0, 8.0])
    np.testing.assert_allclose(_np(gs.ndtr(x)), [4.9067139271481870595e-198, 6.2209605742717841235e-16, 0.9999999999999993779], rtol=1e-13)
    np.testing.assert_allclose(_np(gs.erfc(np.asarray([10.0, 26.0]))), [2.0884875837625447570e-45, 5.6631924088561018e-296], rtol=1e-13)
    np.testing.assert_allclose(_np(gs.erfinv(np.asarray([0.9999999, -1e-300]))), [3.7665625816384708887, -8.862269254527580e-301], rtol=1e-15)
    # the derivative of ndtr is the normal density, also where ndtr is tiny
    d = _np(gpuad.vmap(gpuad.grad(gs.ndtr))(x))
    np.testing.assert_allclose(d, np.exp(-x * x / 2) / math.sqrt(2 * math.pi), rtol=1e-13)


# ---------------------------------------------------------------------------------------------
# Where gpuad keeps its own answer (README, gpuad.scipy.special)
# ---------------------------------------------------------------------------------------------


def test_polygamma_at_plus_infinity_is_its_limit():
    """psi^(n)(inf) = 0 for n >= 1 (SciPy's value, the limit), so digamma'(inf) and
    gammaln''(inf) are 0; JAX gives NaN. At the poles and everywhere else gpuad is JAX."""
    x = np.asarray([inf])
    for n in (1, 2, 3):
        assert _np(gs.polygamma(n, x)).tolist() == [0.0]
        assert np.isnan(np.asarray(js.polygamma(n, jnp.asarray(x)))).all()
    assert _np(gpuad.vmap(gpuad.grad(gs.digamma))(x)).tolist() == [0.0]
    assert _np(gpuad.vmap(gpuad.hessian(gs.gammaln))(x)).tolist() == [0.0]
    assert _np(gs.digamma(x)).tolist() == [inf] == np.asarray(js.digamma(jnp.asarray(x))).tolist()


@pytest.mark.parametrize("name, zero", [("xlogy", 0.0), ("xlog1py", -1.0)])
def test_xlogy_jvp_in_one_argument_is_that_arguments_term(name, zero):
    """jvp in x alone at (0, 0) is log(0) = -inf, the gradient's value: gpuad's rule for y is not
    applied to the zero tangent of y. JAX's custom rule multiplies that zero by 0/0 and gives NaN
    (its grad gives -inf, as gpuad's). With tangents in both arguments both give NaN."""
    f = getattr(gs, name)
    x, y, one = np.asarray(0.0), np.asarray(zero), np.asarray(1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert float(gpuad.jvp(lambda u: f(u, y), (x,), (one,))[1]) == -inf
        assert float(gpuad.grad(f)(x, y)) == -inf
        assert np.isnan(float(gpuad.jvp(f, (x, y), (one, one))[1]))
    assert np.isnan(float(jax.jvp(lambda u: getattr(js, name)(u, y), (x,), (one,))[1]))


# ---------------------------------------------------------------------------------------------
# dtypes, batches, jit
# ---------------------------------------------------------------------------------------------

ALL = [
    ("erf", lambda x: gs.erf(x)),
    ("erfc", lambda x: gs.erfc(x)),
    ("erfinv", lambda x: gs.erfinv(x * 0.5)),
    ("gammaln", lambda x: gs.gammaln(x)),
    ("digamma", lambda x: gs.digamma(x)),
    ("polygamma", lambda x: gs.polygamma(2, x)),
    ("xlogy", lambda x: gs.xlogy(x, x)),
    ("xlog1py", lambda x: gs.xlog1py(x, x)),
    ("logit", lambda x: gs.logit(x * 0.5)),
    ("expit", lambda x: gs.expit(x)),
    ("ndtr", lambda x: gs.ndtr(x)),
    ("log_ndtr", lambda x: gs.log_ndtr(x)),
    ("i0e", lambda x: gs.i0e(x)),
    ("i1e", lambda x: gs.i1e(x)),
]


@pytest.mark.parametrize("name, f", ALL, ids=[n for n, _ in ALL])
def test_float32_stays_float32_and_integers_promote(name, f):
    x32 = np.asarray([0.5, 1.5], dtype=np.float32)
    value, tangent = gpuad.jvp(f, (x32,), (np.ones(2, np.float32),))
    assert _np(value).dtype == np.float32 and _np(tangent).dtype == np.float32
    assert _np(gpuad.vmap(gpuad.grad(f))(x32)).dtype == np.float32
    got = _np(f(np.asarray([1, 1])))  # integers: the default float dtype, as JAX with x64
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, _np(f(np.asarray([1.0, 1.0]))))
    assert _np(f(1.0)).dtype == np.float64 and _np(f(1.0)).shape == ()


def test_binary_promotion():
    x32, x64 = np.asarray([0.5], np.float32), np.asarray([2.0])
    assert _np(gs.xlogy(x32, x64)).dtype == np.float64
    assert _np(gs.xlogy(x32, 2.0)).dtype == np.float32
    assert _np(gs.xlog1py(3, x32)).dtype == np.float32
    g = gpuad.grad(lambda a, b: gpuad.numpy.sum(gs.xlogy(a, b)), argnums=(0, 1))(x32, x64)
    assert _np(g[0]).dtype == np.float32 and _np(g[1]).dtype == np.float64


def test_polygamma_with_an_array_of_orders_batched_and_differentiated():
    """n an integer array broadcast against x, batched by vmap with x: each point's order."""
    import scipy.special as sc

    n = np.asarray([0, 1, 2, 3])
    x = np.asarray([0.7, 1.5, 2.5, 4.0])
    np.testing.assert_allclose(_np(gs.polygamma(n, x)), sc.polygamma(n, x), rtol=1e-14)
    np.testing.assert_allclose(_np(gs.polygamma(n[:, None], x)), sc.polygamma(n[:, None], x), rtol=1e-14)
    per_point = gpuad.vmap(gpuad.grad(lambda k, v: gs.polygamma(k, v), argnums=1))(n, x)
    np.testing.assert_allclose(_np(per_point), sc.polygamma(n + 1, x), rtol=1e-14)
    want = jax.vmap(jax.grad(js.polygamma, argnums=1))(jnp.asarray(n), jnp.asarray(x))
    np.testing.assert_allclose(_np(per_point), np.asarray(want), rtol=1e-12)


def test_poisson_log_likelihood_under_jit_matches_jax():
    """A per-point model as users write it: the Poisson log-likelihood k log(lam) - lam -
    gammaln(k + 1), its gradient per point under jit(vmap(grad)), against JAX."""

    def loglik(ns, lam, k):
        return ns.xlogy(k, lam) - lam - ns.gammaln(k + 1.0)

    lam = np.random.default_rng(0).uniform(0.5, 5.0, size=64)
    k = np.floor(np.random.default_rng(1).uniform(0.0, 8.0, size=64))
    k[:4] = 0.0  # xlogy(0, lam) = 0
    f = gpuad.jit(gpuad.vmap(gpuad.value_and_grad(lambda a, b: loglik(gs, a, b))))
    want = jax.jit(jax.vmap(jax.value_and_grad(lambda a, b: loglik(js, a, b))))(lam, k)
    for _ in range(2):  # the recording, then its replay
        value, grad = f(lam, k)
        np.testing.assert_allclose(_np(value), np.asarray(want[0]), rtol=1e-13)
        np.testing.assert_allclose(_np(grad), k / lam - 1.0, rtol=1e-13)


def test_the_tape_shows_one_line_per_special_function():
    tape = gpuad.make_tape(lambda x: gs.gammaln(gs.erf(x)))(np.asarray(0.5))
    text = str(tape)
    assert "erf(" in text and "gammaln(" in text


# ---------------------------------------------------------------------------------------------
# SciPy is optional; libraries without special functions
# ---------------------------------------------------------------------------------------------


def test_importing_gpuad_does_not_import_scipy():
    code = (
        "import sys, gpuad, gpuad.scipy.special; "
        "assert 'scipy' not in sys.modules, 'scipy imported'; "
        "gpuad.scipy.special.xlogy(1.0, 2.0); assert 'scipy' not in sys.modules; "
        "gpuad.scipy.special.erf(1.0); assert 'scipy.special' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_without_scipy_a_clear_error_names_the_package(monkeypatch):
    """Without SciPy (an import that fails, as where it is not installed), the functions SciPy
    computes say what to install; those written with the array API still work."""
    monkeypatch.setitem(sys.modules, "scipy", None)
    monkeypatch.setitem(sys.modules, "scipy.special", None)
    x = np.asarray([0.5, 1.5])
    message = r"^gpuad\.scipy\.special needs SciPy for NumPy arrays: pip install scipy \(or gpuad\[scipy\]\)$"
    for f in (gs.erf, gs.erfc, gs.erfinv, gs.gammaln, gs.digamma, gs.ndtr, gs.log_ndtr, gs.i0e, gs.i1e, lambda v: gs.polygamma(1, v)):
        with pytest.raises(ImportError, match=message):
            f(x)
    with pytest.raises(ImportError, match=message):
        gpuad.vmap(gpuad.grad(gs.gammaln))(x)
    np.testing.assert_allclose(_np(gs.xlogy(x, x)), x * np.log(x))
    np.testing.assert_allclose(_np(gs.logit(x / 2)), np.log(x / (2 - x)))
    np.testing.assert_allclose(_np(gs.expit(x)), 1 / (1 + np.exp(-x)))


def test_the_extra_the_error_names_is_defined_and_tested():
    """``gpuad[scipy]`` (the error's advice) is an extra of pyproject.toml, the test extra (CI's)
    has SciPy, and the README's section says so."""
    root = pathlib.Path(__file__).resolve().parent.parent
    project = (root / "pyproject.toml").read_text()
    assert re.search(r'^scipy = \["scipy>=1\.10"\]', project, re.M)
    test_extra = re.search(r"^test = \[(.*?)^\]", project, re.M | re.S).group(1)
    assert '"scipy>=1.10"' in test_extra
    readme = (root / "README.md").read_text()
    section = readme[readme.index("## gpuad.scipy.special") : readme.index("## Loops and branches")]
    assert "pip install gpuad[scipy]" in section and "cupyx.scipy.special" in section


def test_strict_device_arrays_are_refused_by_name_and_the_array_api_ones_work():
    """array_api_strict (the stand-in GPU) has no special functions, and converting through NumPy
    would copy off the device behind the user's back: the error names the library and the
    explicit conversions. xlogy, xlog1py, logit and expit compute there, on the device."""
    import array_api_strict as xs

    dev = xs.Device("device1")
    x = xs.asarray([0.25, 0.5], device=dev)
    for name in ("erf", "erfc", "erfinv", "gammaln", "digamma", "ndtr", "log_ndtr", "i0e", "i1e"):
        with pytest.raises(TypeError, match=rf"^gpuad\.scipy\.special\.{name}: array_api_strict arrays are not supported: .*gpuad\.to_numpy\(x\) or gpuad\.asarray\(x, backend='cupy'\)"):
            getattr(gs, name)(x)
    with pytest.raises(TypeError, match=r"^gpuad\.scipy\.special\.polygamma: array_api_strict arrays"):
        gs.polygamma(1, x)
    for f, want in ((lambda v: gs.xlogy(v, v), [0.25 * math.log(0.25), 0.5 * math.log(0.5)]), (gs.logit, [math.log(1 / 3), 0.0])):
        out = f(x)
        assert out.device == dev
        np.testing.assert_allclose(gpuad.to_numpy(out), want, rtol=1e-15)
    g = gpuad.vmap(gpuad.grad(gs.expit))(x)
    assert g.device == dev


# ---------------------------------------------------------------------------------------------
# Argument checks
# ---------------------------------------------------------------------------------------------


def test_complex_inputs_are_refused():
    with pytest.raises(TypeError, match=r"^gpuad\.scipy\.special\.erf: x is complex128; only real floating inputs"):
        gs.erf(np.asarray([1j]))
    with pytest.raises(TypeError, match=r"^gpuad\.scipy\.special\.xlogy: y is complex64; only real floating inputs"):
        gs.xlogy(np.ones(2), np.ones(2, np.complex64))
    with pytest.raises(TypeError, match=r"^gpuad\.scipy\.special\.polygamma: x is complex128"):
        gs.polygamma(1, np.asarray([1j]))


def test_non_arrays_are_refused():
    with pytest.raises(TypeError, match=r"^gpuad\.scipy\.special\.gammaln: x must be an array, got NoneType"):
        gs.gammaln(None)
    with pytest.raises(TypeError, match=r"^gpuad\.scipy\.special\.xlog1py: y must be an array, got str"):
        gs.xlog1py(1.0, "2")


@pytest.mark.parametrize(
    "n, error, message",
    [
        (1.0, ValueError, r"n must be an int or an array of an integer dtype \(as in JAX\), got dtype float64"),
        (True, ValueError, r"n must be an int .* got dtype bool"),
        (np.asarray([1.0, 2.0]), ValueError, r"n must be an int .* got dtype float64"),
        (-1, ValueError, r"n must be >= 0, got -1"),
        (None, TypeError, r"n must be an array, got NoneType"),
    ],
)
def test_polygamma_order_checks(n, error, message):
    with pytest.raises(error, match=r"^gpuad\.scipy\.special\.polygamma: " + message):
        gs.polygamma(n, np.ones(2))


@pytest.mark.parametrize(
    "order, error, message",
    [
        (3.0, TypeError, r"must be a Python int, got float \(3\.0\)"),
        (True, TypeError, r"must be a Python int, got bool"),
        (-1, ValueError, r"must be in \[0, 30\] \(as in JAX\), got -1"),
        (31, ValueError, r"must be in \[0, 30\] \(as in JAX\), got 31"),
    ],
)
def test_log_ndtr_series_order_checks(order, error, message):
    with pytest.raises(error, match=r"^gpuad\.scipy\.special\.log_ndtr: series_order " + message):
        gs.log_ndtr(np.ones(2), series_order=order)
    np.testing.assert_array_equal(_np(gs.log_ndtr(np.ones(2), series_order=30)), _np(gs.log_ndtr(np.ones(2))))
