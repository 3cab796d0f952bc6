"""``gpuad.scipy.special``: special functions as ``jax.scipy.special`` has them, differentiable in
both modes and to any order, batched like every gpuad function.

The values come from the array library's own special functions: SciPy's (``scipy.special``) for
NumPy arrays, ``cupyx.scipy.special`` for CuPy arrays, on the device. SciPy is an optional
dependency (``pip install gpuad[scipy]``), imported the first time a function needs it;
``import gpuad`` does not import it. ``xlogy``, ``xlog1py``, ``logit`` and ``expit`` need no
special functions and run on any array-API library. The derivative rules are JAX's (tests compare
them with JAX in float64 and float32, at the poles and in the tails too).

Inputs follow ``jax.scipy.special``: Python scalars and integer arrays become the default
floating dtype (float64; JAX's ``ndtr`` and ``log_ndtr`` refuse integers, gpuad promotes them
too), float32 stays float32, complex inputs are refused.

>>> import numpy as np, gpuad
>>> from gpuad.scipy import special
>>> x = np.asarray([0.5, 1.0, 2.0])
>>> special.gammaln(x).round(6).tolist()
[0.572365, 0.0, 0.0]
>>> gpuad.vmap(gpuad.grad(special.gammaln))(x).round(6).tolist()  # digamma
[-1.96351, -0.577216, 0.422784]
"""

from __future__ import annotations

from typing import Any

from .. import primitives as _p
from ..backend import default_float, dtype_name, is_complex_dtype, is_real_float, result_type, special_functions
from ..numpy._core import _as_array, _operands

__all__ = [
    "erf",
    "erfc",
    "erfinv",
    "gammaln",
    "digamma",
    "polygamma",
    "xlogy",
    "xlog1py",
    "logit",
    "expit",
    "ndtr",
    "log_ndtr",
    "i0e",
    "i1e",
]

_HALF_SQRT_2 = 0.5 * 2.0**0.5


def _real(x: Any, function: str, name: str = "x") -> Any:
    """``x`` as a real floating array (a traced value stays traced): Python numbers and lists become
    arrays, booleans and integers the default floating dtype, as JAX promotes them."""
    x = _as_array(x, f"gpuad.scipy.special.{function}: {name}")
    return _promoted(x, function, name)


def _promoted(x: Any, function: str, name: str) -> Any:
    if is_real_float(x.dtype):
        return x
    if is_complex_dtype(x.dtype):
        raise TypeError(
            f"gpuad.scipy.special.{function}: {name} is {dtype_name(x.dtype)}; only real floating "
            "inputs are supported (as in jax.scipy.special): pass the real part, or use NumPy's "
            "or SciPy's functions for complex values"
        )
    xp, device = _p.namespace_and_device(x)
    return _p.cast(x, default_float(xp, device))


def _real_pair(x: Any, y: Any, function: str) -> tuple[Any, Any]:
    """Two operands of a binary function, in one real floating dtype: a Python number takes the
    other operand's dtype, arrays promote as in NumPy (float32 with float64 gives float64)."""
    a, b = _operands(x, y, names=[f"gpuad.scipy.special.{function}: x", f"gpuad.scipy.special.{function}: y"])
    a, b = _promoted(a, function, "x"), _promoted(b, function, "y")
    if dtype_name(a.dtype) != dtype_name(b.dtype):
        dtype = result_type(a.dtype, b.dtype)
        a, b = _p.cast(a, dtype), _p.cast(b, dtype)
    return a, b


# ---------------------------------------------------------------------------------------------
# Error functions and the normal distribution
# ---------------------------------------------------------------------------------------------


def erf(x: Any) -> Any:
    """The error function ``2/sqrt(pi) * integral(exp(-t**2), t=0..x)`` (``jax.scipy.special.erf``).

    >>> import numpy as np
    >>> erf(np.asarray([0.0, 0.5, 3.0])).round(6).tolist()
    [0.0, 0.5205, 0.999978]
    """
    return _p.erf(_real(x, "erf"))


def erfc(x: Any) -> Any:
    """``1 - erf(x)``, accurate where it is small (``jax.scipy.special.erfc``).

    >>> import numpy as np
    >>> print(f"{float(erfc(np.asarray(10.0))):.6e}")  # 1 - erf(10) would be 0
    2.088488e-45
    """
    return _p.erfc(_real(x, "erfc"))


def erfinv(x: Any) -> Any:
    """The inverse of :func:`erf` (``jax.scipy.special.erfinv``): ``+-inf`` at ``+-1``, NaN
    outside ``[-1, 1]``.

    >>> import numpy as np
    >>> erfinv(np.asarray([0.5205, 1.0, 2.0])).round(4).tolist()
    [0.5, inf, nan]
    """
    return _p.erfinv(_real(x, "erfinv"))


def ndtr(x: Any) -> Any:
    """The standard normal distribution function ``P(Z <= x)`` (``jax.scipy.special.ndtr``).

    JAX's composite of :func:`erf` and :func:`erfc`: ``erf`` near 0, ``erfc`` in the tails, so
    both tails keep their relative precision; its derivative is the normal density exactly.

    >>> import numpy as np, gpuad
    >>> ndtr(np.asarray([-1.0, 0.0, 1.0])).round(6).tolist()
    [0.158655, 0.5, 0.841345]
    >>> round(float(gpuad.grad(ndtr)(np.asarray(0.0))), 6)  # 1 / sqrt(2 pi)
    0.398942
    """
    x = _real(x, "ndtr")
    special_functions(_p.namespace_and_device(x)[0], "ndtr")  # an error that names ndtr, not erfc
    w = x * _HALF_SQRT_2
    z = _p.abs_(w)
    tail = _p.erfc(z)
    y = _p.where(z < _HALF_SQRT_2, 1.0 + _p.erf(w), _p.where(w > 0, 2.0 - tail, tail))
    return 0.5 * y


def log_ndtr(x: Any, series_order: int = 3) -> Any:
    """``log(ndtr(x))``, accurate in both tails (``jax.scipy.special.log_ndtr``).

    The values are SciPy's (cupyx's on CuPy), accurate to rounding for every ``x``: far in the
    left tail (``log_ndtr(-40) = -804.608...``) and where ``ndtr(x)`` rounds to 1
    (``log_ndtr(10) = -7.6e-24``). ``series_order`` is accepted and checked as JAX checks it
    (a Python int in ``[0, 30]``), but changes nothing: it is the length of the asymptotic series
    JAX sums below ``x = -20`` (float64), whose truncation gpuad does not make. The derivative is
    ``exp(log pdf(x) - log_ndtr(x))``, JAX's rule, finite in both tails.

    >>> import numpy as np, gpuad
    >>> log_ndtr(np.asarray([-40.0, 0.0])).round(4).tolist()
    [-804.6084, -0.6931]
    >>> round(float(gpuad.grad(log_ndtr)(np.asarray(-40.0))), 4)
    40.025
    """
    if not isinstance(series_order, int) or isinstance(series_order, bool):
        raise TypeError(
            f"gpuad.scipy.special.log_ndtr: series_order must be a Python int, got "
            f"{type(series_order).__name__} ({series_order!r})"
        )
    if not 0 <= series_order <= 30:
        raise ValueError(f"gpuad.scipy.special.log_ndtr: series_order must be in [0, 30] (as in JAX), got {series_order}")
    return _p.log_ndtr(_real(x, "log_ndtr"))


# ---------------------------------------------------------------------------------------------
# Gamma and related functions
# ---------------------------------------------------------------------------------------------


def gammaln(x: Any) -> Any:
    """``log |Gamma(x)|`` (``jax.scipy.special.gammaln``): inf at 0, the negative integers and
    ``-inf``. Its derivative is :func:`digamma`.

    >>> import numpy as np
    >>> gammaln(np.asarray([4.0, 0.0, -1.5])).round(6).tolist()
    [1.791759, inf, 0.860047]
    """
    return _p.gammaln(_real(x, "gammaln"))


def digamma(x: Any) -> Any:
    """The digamma function ``psi(x) = d/dx log Gamma(x)`` (``jax.scipy.special.digamma``): NaN at
    the poles (0 and the negative integers), as in JAX. Its derivative is ``polygamma(1, x)``.

    >>> import numpy as np
    >>> digamma(np.asarray([1.0, 0.0, -2.0])).round(6).tolist()
    [-0.577216, nan, nan]
    """
    return _p.digamma(_real(x, "digamma"))


def polygamma(n: Any, x: Any) -> Any:
    """The n-th derivative of :func:`digamma` (``jax.scipy.special.polygamma``); ``polygamma(0, x)``
    is ``digamma(x)``. Differentiable in ``x``; ``n`` is an integer (a Python int or an integer
    array, broadcast against ``x``), without derivative. At the poles: +inf for odd ``n``, NaN for
    even ``n`` (as JAX); at ``+inf``: 0 for ``n >= 1`` (the limit, SciPy's; JAX gives NaN).
    Negative ``n`` in an array gives NaN, as in JAX.

    >>> import numpy as np
    >>> polygamma(1, np.asarray([1.0, 0.0])).round(6).tolist()  # pi**2 / 6
    [1.644934, inf]
    """
    if isinstance(n, int) and not isinstance(n, bool):
        if n < 0:
            raise ValueError(f"gpuad.scipy.special.polygamma: n must be >= 0, got {n}")
        return _p.polygamma(float(n), _real(x, "polygamma"))  # host-ok: a Python int
    n = _as_array(n, "gpuad.scipy.special.polygamma: n")
    kind = dtype_name(n.dtype)
    if not kind.startswith(("int", "uint")):
        raise ValueError(
            f"gpuad.scipy.special.polygamma: n must be an int or an array of an integer dtype (as in "
            f"JAX), got dtype {kind}: the order of the derivative is a whole number"
        )
    x = _real(x, "polygamma")
    return _p.polygamma(_p.cast(n, x.dtype), x)


# ---------------------------------------------------------------------------------------------
# Logarithms and the logistic function
# ---------------------------------------------------------------------------------------------


def xlogy(x: Any, y: Any) -> Any:
    """``x * log(y)``, and 0 where ``x`` is 0 unless ``y`` is NaN (``jax.scipy.special.xlogy``).

    JAX's derivatives: ``log(y)`` in ``x`` (so -inf at ``x = 0, y = 0``) and ``x / y`` in ``y``
    (NaN there). Runs on any array-API library.

    >>> import numpy as np, gpuad
    >>> xlogy(np.asarray([0.0, 2.0]), np.asarray([0.0, np.e])).tolist()
    [0.0, 2.0]
    >>> gpuad.grad(xlogy)(np.asarray(0.0), np.asarray(2.0)).round(6).tolist()  # log 2
    0.693147
    """
    a, b = _real_pair(x, y, "xlogy")
    return _p.xlogy(a, b)


def xlog1py(x: Any, y: Any) -> Any:
    """``x * log1p(y)``, and 0 where ``x`` is 0 unless ``y`` is NaN
    (``jax.scipy.special.xlog1py``); derivatives ``log1p(y)`` and ``x / (1 + y)``, as JAX's.

    >>> import numpy as np
    >>> xlog1py(np.asarray([0.0, 2.0]), np.asarray([-1.0, 0.0])).tolist()
    [0.0, 0.0]
    """
    a, b = _real_pair(x, y, "xlog1py")
    return _p.xlog1py(a, b)


def logit(x: Any) -> Any:
    """``log(x / (1 - x))``, the inverse of :func:`expit` (``jax.scipy.special.logit``): -inf at
    0, inf at 1, NaN outside ``[0, 1]``; derivative ``1 / (x (1 - x))`` (inf at 0 and 1). On
    NumPy the infinities at 0 and 1 come with NumPy's divide-by-zero warning, as ``log(0)`` does.

    >>> import numpy as np
    >>> with np.errstate(divide="ignore"):
    ...     logit(np.asarray([0.0, 0.5, 1.0])).tolist()
    [-inf, 0.0, inf]
    """
    return _p.logit(_real(x, "logit"))


def expit(x: Any) -> Any:
    """The logistic function ``1 / (1 + exp(-x))`` (``jax.scipy.special.expit``), without overflow
    for any ``x`` (gpuad.numpy's ``sigmoid``).

    >>> import numpy as np
    >>> expit(np.asarray([-800.0, 0.0, 800.0])).tolist()
    [0.0, 0.5, 1.0]
    """
    return _p.logistic(_real(x, "expit"))


# ---------------------------------------------------------------------------------------------
# Bessel functions
# ---------------------------------------------------------------------------------------------


def i0e(x: Any) -> Any:
    """The exponentially scaled modified Bessel function of order 0, ``exp(-|x|) I0(x)``
    (``jax.scipy.special.i0e``): 1 at 0, ``~ 1/sqrt(2 pi |x|)`` for large ``|x|``, 0 at
    ``+-inf``. Its derivative ``i1e(x) - sign(x) i0e(x)`` is 0 at 0 (JAX's).

    >>> import numpy as np
    >>> i0e(np.asarray([0.0, 1.0, 1e6])).round(6).tolist()
    [1.0, 0.46576, 0.000399]
    """
    return _p.i0e(_real(x, "i0e"))


def i1e(x: Any) -> Any:
    """The exponentially scaled modified Bessel function of order 1, ``exp(-|x|) I1(x)``
    (``jax.scipy.special.i1e``); its derivative is 1/2 at 0 (JAX's).

    >>> import numpy as np
    >>> i1e(np.asarray([0.0, 1.0, -1.0])).round(6).tolist()
    [0.0, 0.20791, -0.20791]
    """
    return _p.i1e(_real(x, "i1e"))
