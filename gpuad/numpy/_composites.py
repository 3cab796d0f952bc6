"""Composites users expect, written to be numerically stable; logsumexp, softplus and the 2-norm
carry their own derivative rules (custom_jvp)."""

from __future__ import annotations

import builtins
from typing import Any

from .. import primitives as _p
from ..custom import custom_jvp as _custom_jvp
from ._core import *  # noqa: F403  (the namespace's functions)
from ._core import _as_array, _normalize_axes

__all__ = ["angle", "logsumexp", "softmax", "log_softmax", "sigmoid", "softplus", "vector_norm", "relu"]

# ---------------------------------------------------------------------------------------------
# Composites users expect, written to be numerically stable
# ---------------------------------------------------------------------------------------------


def _stable_max(x: Any, axes: tuple[int, ...]) -> Any:
    """The max over ``axes`` (kept), as a constant and with infinities replaced by 0, so that
    subtracting it never makes inf - inf = nan."""
    m = stop_gradient(max(x, axis=axes, keepdims=True))
    return where(isfinite(m), m, 0)


def _logsumexp_value(x: Any, axes: tuple[int, ...], keepdims: builtins.bool) -> Any:
    m = _stable_max(x, axes)
    out = log(sum(exp(x - m), axis=axes, keepdims=True)) + m
    return out if keepdims else squeeze(out, axis=axes)


def _logsumexp_jvp(axes: tuple[int, ...], keepdims: builtins.bool, primals: Any, tangents: Any) -> Any:
    # The derivative is softmax(x): computed as exp(x - lse), one stable pass, and the tape keeps
    # only x and the result instead of every intermediate of the composite.
    (x,), (t,) = primals, tangents
    out = _logsumexp(x, axes, keepdims)
    kept = out if keepdims else expand_dims(out, axis=axes)
    weights = exp(x - kept)
    return out, sum(multiply(weights, t), axis=axes, keepdims=keepdims)  # t may be traced, weights not


def logsumexp(x: Any, /, *, axis: Any = None, keepdims: builtins.bool = False) -> Any:
    """``log(sum(exp(x)))`` without overflow; its gradient is ``softmax(x)`` (a custom JVP rule).

    >>> import numpy as np
    >>> print(f"{float(logsumexp(np.asarray([1000.0, 1000.0]))):.4f}")
    1000.6931
    """
    x = _as_array(x)
    return _logsumexp(x, _normalize_axes(axis, x.ndim), keepdims)


def softmax(x: Any, /, *, axis: Any = -1) -> Any:
    """``exp(x) / sum(exp(x))`` along ``axis``, shifted by the max for stability."""
    x = _as_array(x)
    axes = _normalize_axes(axis, x.ndim)
    unnormalized = exp(x - _stable_max(x, axes))
    return unnormalized / sum(unnormalized, axis=axes, keepdims=True)


def log_softmax(x: Any, /, *, axis: Any = -1) -> Any:
    """``x - logsumexp(x)`` along ``axis``, stable for large inputs."""
    x = _as_array(x)
    axes = _normalize_axes(axis, x.ndim)
    shifted = x - _stable_max(x, axes)
    return shifted - log(sum(exp(shifted), axis=axes, keepdims=True))


def angle(z: Any, /, deg: builtins.bool = False) -> Any:
    """The argument of complex numbers, ``atan2(imag(z), real(z))`` (in degrees with ``deg``), as
    ``jnp.angle``; 0 or pi for real numbers.

    >>> import numpy as np
    >>> float(angle(np.asarray(1j)))
    1.5707963267948966
    """
    z = _as_array(z)
    a = _p.atan2(_p.imag(z), _p.real(z))
    return a * (180.0 / 3.141592653589793) if deg else a


def sigmoid(x: Any, /) -> Any:
    """The logistic function ``1 / (1 + exp(-x))``, without overflow for large ``|x|``."""
    return _p.logistic(_as_array(x))


def _softplus_value(x: Any) -> Any:
    return logaddexp(x, 0.0)


def _softplus_jvp(primals: Any, tangents: Any) -> Any:
    (x,), (t,) = primals, tangents
    return _softplus(x), multiply(t, sigmoid(x))  # sigmoid never overflows, whatever x is


def softplus(x: Any, /) -> Any:
    """``log(1 + exp(x))`` as ``logaddexp(x, 0)``: no overflow, exact for large negative x; its
    derivative is ``sigmoid(x)`` (a custom JVP rule)."""
    return _softplus(_as_array(x))


def _vector_norm_2(x: Any, axes: tuple[int, ...], keepdims: builtins.bool) -> Any:
    return sqrt(sum(x * x, axis=axes, keepdims=keepdims))


def _vector_norm_jvp(axes: tuple[int, ...], keepdims: builtins.bool, primals: Any, tangents: Any) -> Any:
    # x / |x| with the double-where guard: the derivative at 0 is 0 (a subgradient) instead of
    # the NaN of 0/0, and no NaN leaks into the branch not taken.
    (x,), (t,) = primals, tangents
    n = _vector_norm_2_custom(x, axes, keepdims)
    kept = n if keepdims else expand_dims(n, axis=axes)
    zero = kept == 0
    unit = where(zero, 0.0, x / where(zero, 1.0, kept))
    return n, sum(multiply(unit, t), axis=axes, keepdims=keepdims)


def vector_norm(x: Any, /, *, axis: Any = None, keepdims: builtins.bool = False, ord: Any = 2) -> Any:  # noqa: A002
    """The vector norm over ``axis`` (the array API's ``linalg.vector_norm``). For ``ord=2`` the
    gradient at 0 is 0, not NaN (a custom JVP rule), so ``norm`` is safe inside losses.

    >>> import numpy as np, gpuad
    >>> gpuad.grad(lambda v: vector_norm(v))(np.zeros(3)).tolist()
    [0.0, 0.0, 0.0]
    """
    x = _as_array(x)
    axes = _normalize_axes(axis, x.ndim)
    if isdtype(x.dtype, "complex floating"):  # a norm of the moduli: a real result
        x = abs(x)
    if ord == 2:
        return _vector_norm_2_custom(x, axes, keepdims)
    if ord == 1:
        return sum(abs(x), axis=axes, keepdims=keepdims)
    if ord == math.inf:
        # As JAX (amax with initial=0): at the zero vector the max ties with that 0 and gets
        # half the derivative, 0.5 / n for each of n entries.
        return maximum(max(abs(x), axis=axes, keepdims=keepdims), 0.0)
    if ord == -math.inf:
        return min(abs(x), axis=axes, keepdims=keepdims)
    if isinstance(ord, (int, float)) and not isinstance(ord, builtins.bool) and ord > 0:
        return sum(abs(x) ** ord, axis=axes, keepdims=keepdims) ** (1.0 / ord)
    raise ValueError(f"vector_norm: ord must be a positive number or +-inf, got {ord!r}")


def relu(x: Any, /) -> Any:
    """``max(x, 0)`` with derivative 0 at 0, as JAX's ``jax.nn.relu`` (``relu(nan)`` is nan).

    >>> import numpy as np, gpuad
    >>> gpuad.grad(lambda v: sum(relu(v)))(np.asarray([-1.0, 0.0, 2.0])).tolist()
    [0.0, 0.0, 1.0]
    """
    return _p.relu(_as_array(x))


# Composites with their own derivative rules (custom_jvp lives on top of the transforms, so these
# are made once everything they need exists).

_logsumexp = _custom_jvp(_logsumexp_value, nondiff_argnums=(1, 2))
_logsumexp.defjvp(_logsumexp_jvp)
_softplus = _custom_jvp(_softplus_value)
_softplus.defjvp(_softplus_jvp)
_vector_norm_2_custom = _custom_jvp(_vector_norm_2, nondiff_argnums=(1, 2))
_vector_norm_2_custom.defjvp(_vector_norm_jvp)
