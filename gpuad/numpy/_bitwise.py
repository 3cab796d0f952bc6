"""The array API's bitwise functions (integer and boolean arrays, no derivative), and NumPy's and
JAX's spellings of standard functions: aliases where the semantics are the same, an
AttributeError naming the standard's function where they differ (see README, "gpuad.numpy")."""

from __future__ import annotations

import builtins
from typing import Any

from .. import primitives as _p
from ._core import *  # noqa: F403  (the namespace's functions)
from ._core import _binary, _unary

__all__ = [
    "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_invert", "bitwise_left_shift",
    "bitwise_right_shift",
    # NumPy's and JAX's names for the same functions
    "concatenate", "power", "absolute", "arccos", "arccosh", "arcsin", "arcsinh", "arctan",
    "arctan2", "arctanh", "invert", "left_shift", "right_shift", "bitwise_not", "mod",
]


def _check(name: str, label: str, a: Any, kinds: tuple[str, ...]) -> None:
    """Refuse an operand (array, or Python scalar) outside the dtype ``kinds``."""
    dtype = getattr(a, "dtype", None)
    if dtype is not None and isdtype(dtype, kinds):
        return
    if dtype is None and isinstance(a, int) and (isinstance(a, builtins.bool) or "integral" in kinds):
        return
    what = f"dtype {dtype}" if dtype is not None else type(a).__name__
    allowed = " or ".join("boolean" if k == "bool" else "integer" for k in kinds)
    raise TypeError(f"{name}: {label} must be an {allowed} array (or int), got {what}")


def _checked_binary(prim: Any, name: str, kinds: tuple[str, ...]) -> Any:
    fn = _binary(prim, name)

    def checked(x1: Any, x2: Any, /) -> Any:
        _check(name, "x1", x1, kinds)
        _check(name, "x2", x2, kinds)
        return fn(x1, x2)

    checked.__name__ = checked.__qualname__ = name
    checked.__doc__ = f"Elementwise ``{name}`` of the array API ({' or '.join(kinds)} arrays; no derivative)."
    return checked


_LOGICAL = ("integral", "bool")
_SHIFT = ("integral",)
bitwise_and = _checked_binary(_p.bitwise_and, "bitwise_and", _LOGICAL)
bitwise_or = _checked_binary(_p.bitwise_or, "bitwise_or", _LOGICAL)
bitwise_xor = _checked_binary(_p.bitwise_xor, "bitwise_xor", _LOGICAL)
bitwise_left_shift = _checked_binary(_p.bitwise_left_shift, "bitwise_left_shift", _SHIFT)
bitwise_right_shift = _checked_binary(_p.bitwise_right_shift, "bitwise_right_shift", _SHIFT)
_bitwise_invert = _unary(_p.bitwise_invert, "bitwise_invert")


def bitwise_invert(x: Any, /) -> Any:
    """Elementwise ``~x`` of the array API (integer or boolean arrays; no derivative).

    >>> import numpy as np
    >>> bitwise_invert(np.asarray([0, 1])).tolist()
    [-1, -2]
    """
    _check("bitwise_invert", "x", x, _LOGICAL)
    return _bitwise_invert(x)

# NumPy's (and jax.numpy's) names of standard functions with the same semantics.
concatenate = concat
power = pow
absolute = abs
arccos, arccosh, arcsin, arcsinh, arctan, arctan2, arctanh = acos, acosh, asin, asinh, atan, atan2, atanh
invert = bitwise_not = bitwise_invert
left_shift = bitwise_left_shift
right_shift = bitwise_right_shift
mod = remainder

# NumPy names whose NumPy semantics differ from the standard function that replaces them: no
# alias (it would silently change a program), an AttributeError that names the replacement.
NUMPY_NAMES = {
    "transpose": "permute_dims (or matrix_transpose)",
    "cumsum": "cumulative_sum (axis=None flattens in NumPy; the standard requires axis for N-d)",
    "cumprod": "cumulative_prod (axis=None flattens in NumPy; the standard requires axis for N-d)",
    "amax": "max",
    "amin": "min",
    "array": "asarray",
    "split": "unstack (or slicing)",
    "unique": "unique_values (or unique_all, unique_counts, unique_inverse)",
    "dot": "matmul, tensordot or vecdot",
    "fmod": "remainder (whose sign follows x2, as NumPy's mod)",
    "true_divide": "divide",
    "isclose": "abs(a - b) <= atol + rtol * abs(b)",
    "rint": "round",
    "fabs": "abs",
}


def numpy_name_error(name: str) -> AttributeError | None:
    """The AttributeError for a NumPy spelling gpuad.numpy has no alias for, or None."""
    if name not in NUMPY_NAMES:
        return None
    return AttributeError(
        f"gpuad.numpy has no {name!r}: it follows the array API standard (2024.12), whose "
        f"function for this is {NUMPY_NAMES[name]}"
    )
