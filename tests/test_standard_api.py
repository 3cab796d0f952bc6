"""gpuad.numpy against the array API standard (2024.12): every name of the main namespace exists
(except the NOT_YET set, which only shrinks), and the standard's signatures, dtypes, errors and
edge cases, with array_api_strict (the reference implementation) as the oracle for integer
results and dtypes."""

from __future__ import annotations

import numpy as np
import pytest

import gpuad.numpy as gnp

# Every function and constant of the 2024.12 standard's main namespace, by category (the
# array-api repository's src/array_api_stubs/_2024_12, which array_api_strict implements; isin is
# 2025.12 and not listed). linalg and fft are the extensions' namespaces.
STANDARD_2024_12 = {
    # constants
    "e", "inf", "nan", "newaxis", "pi",
    # creation functions
    "arange", "asarray", "empty", "empty_like", "eye", "from_dlpack", "full", "full_like",
    "linspace", "meshgrid", "ones", "ones_like", "tril", "triu", "zeros", "zeros_like",
    # data type functions
    "astype", "can_cast", "finfo", "iinfo", "isdtype", "result_type",
    # data types
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float32", "float64", "complex64", "complex128",
    # elementwise functions
    "abs", "acos", "acosh", "add", "asin", "asinh", "atan", "atan2", "atanh", "bitwise_and",
    "bitwise_left_shift", "bitwise_invert", "bitwise_or", "bitwise_right_shift", "bitwise_xor",
    "ceil", "clip", "conj", "copysign", "cos", "cosh", "divide", "equal", "exp", "expm1",
    "floor", "floor_divide", "greater", "greater_equal", "hypot", "imag", "isfinite", "isinf",
    "isnan", "less", "less_equal", "log", "log1p", "log2", "log10", "logaddexp", "logical_and",
    "logical_not", "logical_or", "logical_xor", "maximum", "minimum", "multiply", "negative",
    "nextafter", "not_equal", "positive", "pow", "real", "reciprocal", "remainder", "round",
    "sign", "signbit", "sin", "sinh", "square", "sqrt", "subtract", "tan", "tanh", "trunc",
    # indexing functions
    "take", "take_along_axis",
    # inspection
    "__array_namespace_info__",
    # linear algebra functions
    "matmul", "matrix_transpose", "tensordot", "vecdot",
    # manipulation functions
    "broadcast_arrays", "broadcast_to", "concat", "expand_dims", "flip", "moveaxis",
    "permute_dims", "repeat", "reshape", "roll", "squeeze", "stack", "tile", "unstack",
    # searching functions
    "argmax", "argmin", "count_nonzero", "nonzero", "searchsorted", "where",
    # set functions
    "unique_all", "unique_counts", "unique_inverse", "unique_values",
    # sorting functions
    "argsort", "sort",
    # statistical functions
    "cumulative_prod", "cumulative_sum", "diff", "max", "mean", "min", "prod", "std", "sum", "var",
    # utility functions
    "all", "any",
    # the version, and the extensions
    "__array_api_version__", "linalg", "fft",
}

# Names gpuad.numpy does not have yet, each with what will bring it. This set only shrinks: the
# test below also fails on an entry that gpuad.numpy now has.
NOT_YET = {
    "conj",  # complex numbers (issue 23)
    "real",  # complex numbers (issue 23)
    "imag",  # complex numbers (issue 23)
    "fft",  # the fft extension (later work)
    "__array_namespace_info__",  # the inspection namespace (this issue, part 2)
    "take", "take_along_axis", "tile", "repeat", "roll", "unstack", "tril", "triu", "meshgrid",  # composites (this issue, part 3)
    "diff", "cumulative_prod",  # composites (this issue, part 3)
    "sort", "argsort", "searchsorted", "count_nonzero", "nonzero",  # sorting and searching (this issue, part 3)
    "copysign", "nextafter", "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_invert",  # table entries (this issue, part 3)
    "bitwise_left_shift", "bitwise_right_shift", "from_dlpack",  # table entries, creation (this issue, part 3)
    "unique_all", "unique_counts", "unique_inverse", "unique_values",  # data-dependent shapes (this issue, part 3, eager only)
}


def test_the_list_is_the_standard():
    """Every listed name is in array_api_strict, which has every name of the 2024.12 standard
    (plus 2025.12's isin and broadcast_shapes, and its own flags and device class)."""
    strict = pytest.importorskip("array_api_strict")
    assert sorted(n for n in STANDARD_2024_12 if not hasattr(strict, n)) == []
    extra = {n for n in strict.__all__ if not n.startswith("_")} - STANDARD_2024_12
    assert extra <= {"isin", "broadcast_shapes", "Device", "ArrayAPIStrictFlags", "get_array_api_strict_flags",
                     "set_array_api_strict_flags", "reset_array_api_strict_flags"}


def test_every_standard_name_exists():
    missing = sorted(n for n in STANDARD_2024_12 - NOT_YET if not hasattr(gnp, n))
    assert not missing, f"gpuad.numpy lacks these names of the 2024.12 standard: {missing}"


def test_not_yet_only_shrinks():
    present = sorted(n for n in NOT_YET if hasattr(gnp, n))
    assert not present, f"gpuad.numpy now has {present}: remove them from NOT_YET"
    assert NOT_YET <= STANDARD_2024_12


def test_version():
    assert gnp.__array_api_version__ == "2024.12"
