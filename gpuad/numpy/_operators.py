"""The operators and array methods of traced values, installed on Tracer: ``x + y`` is
gpuad.numpy.add, ``x[k]`` getitem, ``x.T`` permute_dims, ``x.__array_namespace__()`` gpuad.numpy."""

from __future__ import annotations

import sys
from typing import Any

from ..tracing import Tracer
from ._core import *  # noqa: F403  (the namespace's functions)
from ._indexing import getitem
from ._updates import at  # functional updates: x.at[idx].set(v)
from ._bitwise import bitwise_and, bitwise_invert, bitwise_left_shift, bitwise_or, bitwise_right_shift, bitwise_xor

# ---------------------------------------------------------------------------------------------
# Operators and array methods of traced values
# ---------------------------------------------------------------------------------------------


def _reshape_method(self: Any, *shape: Any, **kwargs: Any) -> Any:
    if len(shape) == 1 and not isinstance(shape[0], int):
        shape = tuple(shape[0])
    return reshape(self, shape)


def _is_bool(x: Any) -> bool:
    return isdtype(x.dtype, "bool")


def _install_operators(cls: type) -> None:
    """Give traced values the operators and the common methods of NumPy/CuPy arrays."""
    ops = {
        "__array_namespace__": lambda s, api_version=None: _this_module,
        "__add__": add,
        "__radd__": lambda s, o: add(o, s),
        "__sub__": subtract,
        "__rsub__": lambda s, o: subtract(o, s),
        "__mul__": multiply,
        "__rmul__": lambda s, o: multiply(o, s),
        "__truediv__": divide,
        "__rtruediv__": lambda s, o: divide(o, s),
        "__floordiv__": lambda s, o: floor_divide(s, o),
        "__rfloordiv__": lambda s, o: floor_divide(o, s),
        "__mod__": lambda s, o: remainder(s, o),
        "__rmod__": lambda s, o: remainder(o, s),
        "__pow__": lambda s, o: pow(s, o),
        "__rpow__": lambda s, o: pow(o, s),
        "__matmul__": matmul,
        "__rmatmul__": lambda s, o: matmul(o, s),
        "__neg__": negative,
        "__pos__": lambda s: positive(s),
        "__abs__": lambda s: abs(s),
        "__lt__": lambda s, o: less(s, o),
        "__le__": lambda s, o: less_equal(s, o),
        "__gt__": lambda s, o: greater(s, o),
        "__ge__": lambda s, o: greater_equal(s, o),
        "__eq__": lambda s, o: equal(s, o),
        "__ne__": lambda s, o: not_equal(s, o),
        # &, |, ^, ~ are the logical functions on booleans and the bitwise ones on integers.
        "__and__": lambda s, o: (logical_and if _is_bool(s) else bitwise_and)(s, o),
        "__rand__": lambda s, o: (logical_and if _is_bool(s) else bitwise_and)(o, s),
        "__or__": lambda s, o: (logical_or if _is_bool(s) else bitwise_or)(s, o),
        "__ror__": lambda s, o: (logical_or if _is_bool(s) else bitwise_or)(o, s),
        "__xor__": lambda s, o: (logical_xor if _is_bool(s) else bitwise_xor)(s, o),
        "__rxor__": lambda s, o: (logical_xor if _is_bool(s) else bitwise_xor)(o, s),
        "__lshift__": lambda s, o: bitwise_left_shift(s, o),
        "__rlshift__": lambda s, o: bitwise_left_shift(o, s),
        "__rshift__": lambda s, o: bitwise_right_shift(s, o),
        "__rrshift__": lambda s, o: bitwise_right_shift(o, s),
        "__invert__": lambda s: logical_not(s) if _is_bool(s) else bitwise_invert(s),
        "__getitem__": getitem,
        "astype": lambda s, dtype, copy=True: astype(s, dtype, copy=copy),
        "reshape": _reshape_method,
        "sum": lambda s, axis=None, keepdims=False: sum(s, axis=axis, keepdims=keepdims),
        "mean": lambda s, axis=None, keepdims=False: mean(s, axis=axis, keepdims=keepdims),
        "prod": lambda s, axis=None, keepdims=False: prod(s, axis=axis, keepdims=keepdims),
        "max": lambda s, axis=None, keepdims=False: max(s, axis=axis, keepdims=keepdims),
        "min": lambda s, axis=None, keepdims=False: min(s, axis=axis, keepdims=keepdims),
        "var": lambda s, axis=None, keepdims=False: var(s, axis=axis, keepdims=keepdims),
        "std": lambda s, axis=None, keepdims=False: std(s, axis=axis, keepdims=keepdims),
        "squeeze": lambda s, axis=None: squeeze(s, axis=axis),
        "T": property(lambda s: permute_dims(s, tuple(range(s.ndim - 1, -1, -1)))),
        "mT": property(lambda s: matrix_transpose(s)),
        "at": property(lambda s: at(s)),  # functional updates (_updates.py)
    }
    for name, fn in ops.items():
        setattr(cls, name, fn)


_this_module = sys.modules["gpuad.numpy"]  # the package, being initialised: this module is its last step
_install_operators(Tracer)

# ---------------------------------------------------------------------------------------------
# NumPy's protocols (issue 22): np.sin(x), np.sum(x, axis=0), np.stack([...]) and M @ x with a
# NumPy array on the left dispatch to gpuad.numpy (the tables are in _numpy_protocols)
# ---------------------------------------------------------------------------------------------

from ._numpy_protocols import install_numpy_protocols  # noqa: E402  (its own section)

install_numpy_protocols(Tracer)
