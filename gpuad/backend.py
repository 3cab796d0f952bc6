"""Which array library a call runs on, and the few things that need to know it by name.

The array library of a call is the inputs' own (found with array-api-compat), so NumPy in gives
NumPy out and CuPy in gives CuPy out. Only this module (and ``testing``) imports NumPy; CuPy is
imported only when a caller asks for it, never when ``gpuad`` is imported.
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any, Callable

import array_api_compat
import numpy  # host-ok: the CPU backend and the dtype vocabulary live here

__all__ = [
    "BackendError",
    "default_backend",
    "cupy_status",
    "asarray",
    "to_numpy",
    "namespace_of",
    "namespace_of_backend",
    "namespace_for_device",
    "device_of",
    "is_array",
    "dtype_name",
    "backend_dtype",
    "scatter_add",
    "numpy_error_state",
    "user_frame",
    "special_functions",
]

BACKEND_ENV = "GPUAD_BACKEND"
_BACKEND_CHOICES = ("numpy", "cupy", "auto")


class BackendError(RuntimeError):
    """An array library was asked for that cannot be used here (not installed, no device)."""


# --- Choosing a backend ---


def cupy_status() -> tuple[bool, str]:
    """Tell whether CuPy can run here, and if not, why.

    Without a driver ``cupy.cuda.runtime.getDeviceCount()`` raises instead of returning 0, so
    both an exception and a zero count mean "no GPU".

    >>> ok, why = cupy_status()
    >>> isinstance(ok, bool) and isinstance(why, str)
    True
    """
    try:
        import cupy
    except ImportError as exc:  # not installed, or broken install
        return False, f"CuPy is not installed ({exc}); install gpuad[cuda12] or gpuad[cuda13]"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDARuntimeError without a driver, and friends
        return False, f"CuPy is installed but no CUDA device answers ({type(exc).__name__}: {exc})"
    if count < 1:
        return False, "CuPy is installed but reports 0 CUDA devices"
    return True, f"CuPy {cupy.__version__} with {count} CUDA device(s)"


def default_backend() -> str:
    """The backend used when no input array decides it: ``"numpy"`` or ``"cupy"``.

    Honours ``GPUAD_BACKEND=numpy|cupy|auto`` (default ``auto``: CuPy when it imports AND a device
    answers, else NumPy). Asking for ``cupy`` where it cannot run raises :class:`BackendError`
    saying why.

    >>> import os
    >>> os.environ.get("GPUAD_BACKEND", "auto") != "auto" or default_backend() in ("numpy", "cupy")
    True
    """
    choice = os.environ.get(BACKEND_ENV, "auto").strip().lower() or "auto"
    if choice not in _BACKEND_CHOICES:
        raise ValueError(
            f"{BACKEND_ENV}={os.environ.get(BACKEND_ENV)!r} is not a backend; "
            f"use one of {', '.join(_BACKEND_CHOICES)}"
        )
    if choice == "numpy":
        return "numpy"
    ok, why = cupy_status()
    if choice == "cupy":
        if not ok:
            raise BackendError(f"{BACKEND_ENV}=cupy, but {why}. Set {BACKEND_ENV}=numpy or auto.")
        return "cupy"
    return "cupy" if ok else "numpy"


def namespace_of_backend(backend: str | None = None) -> Any:
    """The array-API namespace of a backend name (``None`` means :func:`default_backend`)."""
    name = default_backend() if backend is None else backend
    if name == "numpy":
        import array_api_compat.numpy as xp

        return xp
    if name == "cupy":
        ok, why = cupy_status()
        if not ok:
            raise BackendError(f"backend='cupy' was asked for, but {why}")
        import array_api_compat.cupy as xp

        return xp
    raise ValueError(f"backend={backend!r} is not a backend; use 'numpy', 'cupy' or None")


# --- The namespace and device of arrays ---

# array_namespace() costs ~15 us a call; the namespace of a given array type never changes, so a
# per-type memo keeps the per-operation dispatch cheap. It is a cache, not state: filling it in any
# order gives the same answers. The dispatch fast paths also read it for membership: a value whose
# type is in it and that is no Tracer (tracer types name a namespace too) is a plain array that
# needs no conversion.
NAMESPACE_BY_TYPE: dict[type, Any] = {}
# Array types a caller may accept without asking array-api-compat (fast paths check their dtype).
FAST_ARRAY_TYPES = frozenset((numpy.ndarray,))


def is_array(x: Any) -> bool:
    """True for an array of any array-API library (not for Python scalars)."""
    if type(x) in NAMESPACE_BY_TYPE or isinstance(x, numpy.generic):
        return True  # NumPy scalars (what full reductions return) are 0-d arrays here
    return not isinstance(x, (bool, int, float, complex)) and array_api_compat.is_array_api_obj(x)


def _namespace_of_one(x: Any) -> Any:
    t = type(x)
    xp = NAMESPACE_BY_TYPE.get(t)
    if xp is None:
        xp = array_api_compat.array_namespace(x)
        if not array_api_compat.is_torch_array(x):  # torch namespaces depend on nothing else either,
            NAMESPACE_BY_TYPE[t] = xp  # but keep the memo to the libraries we test
    return xp


def namespace_of(*arrays: Any, names: list[str] | None = None, op: str | None = None) -> Any:
    """The one array namespace of ``arrays``; a clear TypeError when they come from two libraries.

    ``names`` labels the arrays in the error message (e.g. ``["x", "y"]``), ``op`` the operation.

    >>> import numpy as np
    >>> namespace_of(np.ones(2)).__name__
    'array_api_compat.numpy'
    """
    # Every primitive applied to plain arrays passes here: the common case (types already seen,
    # one library) is a dictionary lookup per array; anything else takes the checking path.
    xp = None
    for a in arrays:
        ns = NAMESPACE_BY_TYPE.get(type(a))
        if ns is None or (xp is not None and ns is not xp):
            return _namespace_of_checked(arrays, names, op)
        xp = ns
    return _namespace_of_checked(arrays, names, op) if xp is None else xp


def _namespace_of_checked(arrays: tuple[Any, ...], names: list[str] | None, op: str | None) -> Any:
    xp = None
    first = None
    where = f"{op}: " if op else ""
    for i, a in enumerate(arrays):
        try:
            ns = _namespace_of_one(a)
        except TypeError:
            label = names[i] if names else f"operand {i}"
            raise TypeError(
                f"{where}{label} is a {type(a).__name__}, not an array; pass a NumPy or CuPy array "
                "(or any array-API array)"
            ) from None
        if xp is None:
            xp, first = ns, i
        elif ns is not xp and _dask_over_numpy(xp, ns, arrays) is not None:
            xp = _dask_over_numpy(xp, ns, arrays)
        elif ns is not xp:
            la = names[first] if names else f"operand {first}"
            lb = names[i] if names else f"operand {i}"
            raise TypeError(
                f"{where}{la} is {_a_library(xp)} array but {lb} is {_a_library(ns)} array; "
                "gpuad does not move data between libraries implicitly. Convert one of them with "
                "gpuad.asarray(x, backend=...) or gpuad.to_numpy(x)."
            )
    if xp is None:
        raise TypeError("no array among the arguments")
    return xp


def _dask_over_numpy(a: Any, b: Any, arrays: tuple[Any, ...]) -> Any:
    """Dask's namespace where NumPy arrays meet Dask arrays of NumPy chunks: they join the lazy
    graph as Dask's own operators let them (no copy between devices; a term of a loss computed
    in memory beside a loss over a Dask batch). None for any other pair."""
    libs = {getattr(a, "__name__", ""): a, getattr(b, "__name__", ""): b}
    dask_ns = libs.get("array_api_compat.dask.array")
    if dask_ns is None or "array_api_compat.numpy" not in libs:
        return None
    metas = [type(getattr(x, "_meta", None)).__module__ for x in arrays if type(x).__module__.startswith("dask.")]
    return dask_ns if all(m == "numpy" for m in metas) else None


def _a_library(xp: Any) -> str:
    name = getattr(xp, "__name__", repr(xp)).replace("array_api_compat.", "")
    return ("an " if name[:1] in "aeiou" else "a ") + name


def check_index_bounds(xp: Any, index: Any, size: int, axis: int) -> None:
    """NumPy's IndexError for integer-array indices outside [-size, size).

    Only host (NumPy) arrays are checked: on a device the check would be a hidden sync, so there,
    as in JAX, out-of-range indices are the library's business."""
    if not array_api_compat.is_numpy_namespace(xp):
        return
    index = numpy.asarray(index)
    bad = (index < -size) | (index >= size)
    if bad.any():
        raise IndexError(f"index {index[bad].flat[0]} is out of bounds for axis {axis} with size {size}")


def synchronize(x: Any) -> None:
    """Wait until the work producing ``x`` has finished (CuPy runs asynchronously); for timing."""
    if array_api_compat.is_cupy_array(x):
        import cupy

        cupy.cuda.get_current_stream().synchronize()


def is_float0(x: Any) -> bool:
    """True for a JAX-style float0 tangent (a NumPy array of the void dtype JAX uses for the
    tangents of integer values)."""
    dtype = getattr(x, "dtype", None)
    return isinstance(dtype, numpy.dtype) and dtype.kind == "V"


def is_writable(x: Any) -> bool:
    """True for an array that can be updated in place: ``x[key] = v`` writes into it and ``x += v``
    updates it rather than rebinding the name (not a NumPy scalar, not a read-only view, not an
    immutable array such as JAX's, not a Dask array, whose ``+=`` makes a new array)."""
    if isinstance(x, numpy.ndarray):
        return x.flags.writeable
    t = type(x)
    answer = _UPDATES_IN_PLACE.get(t)
    if answer is None:
        answer = _UPDATES_IN_PLACE[t] = array_api_compat.is_writeable_array(x) and hasattr(t, "__iadd__")
    return answer


_UPDATES_IN_PLACE: dict[type, bool] = {}  # array type -> is_writable's answer (a cache, not state)


def assigns_items(x: Any) -> bool:
    """True where a fresh array of ``x``'s library takes item assignment (``out[key] = v``); False
    for immutable arrays (JAX's), whose results must be built without it."""
    return isinstance(x, numpy.ndarray) or array_api_compat.is_writeable_array(x)


def _memory_owner(x: Any) -> Any:
    """The array that owns ``x``'s memory (NumPy and CuPy views name it through ``base``)."""
    base = getattr(x, "base", None)
    while base is not None and is_array(base):
        x, base = base, getattr(base, "base", None)
    return x


def unaliased(results: list[Any], inputs: list[Any]) -> list[Any]:
    """``results`` with every array that is one of ``inputs``, or a view of one, replaced by a
    copy, so that a caller writing into a result never writes into its arguments. (Views are
    recognised where the library names a view's owner, as NumPy and CuPy do.)"""
    owners = {id(_memory_owner(a)) for a in inputs if is_array(a)}
    if not owners:
        return results
    return [
        _namespace_of_one(r).asarray(r, copy=True) if is_array(r) and id(_memory_owner(r)) in owners else r
        for r in results
    ]


def writable(x: Any) -> Any:
    """A result the caller may write into: NumPy views that are read-only (broadcasts) are copied."""
    return x.copy() if isinstance(x, numpy.ndarray) and not x.flags.writeable else x


def device_of(x: Any) -> Any:
    """The device of an array (``"cpu"`` for NumPy)."""
    if type(x) is numpy.ndarray:  # the common case, without array-api-compat's type dispatch
        return "cpu"
    return array_api_compat.device(x)


def namespace_for_device(device: Any) -> Any | None:
    """The namespace that owns ``device``, or None when the device does not say."""
    if isinstance(device, str):
        return namespace_of_backend("numpy") if device == "cpu" else None
    module = type(device).__module__ or ""
    if module.startswith("array_api_strict"):
        import array_api_strict

        return array_api_strict
    if module.startswith("cupy"):
        import array_api_compat.cupy as xp

        return xp
    return None


# --- Conversions the user asks for explicitly ---


def asarray(x: Any, backend: str | None = None, dtype: Any = None) -> Any:
    """Put ``x`` on a backend (``"numpy"``, ``"cupy"``, or None for :func:`default_backend`).

    This is the explicit way to move data between host and device; gpuad never does it on its own.

    >>> import gpuad
    >>> gpuad.asarray([1.0, 2.0], backend="numpy").dtype
    dtype('float64')
    """
    name = default_backend() if backend is None else backend
    dtype = backend_dtype(namespace_of_backend(name), dtype)
    library = numpy
    if name == "cupy":
        import cupy as library

        if isinstance(x, library.ndarray):
            return x if dtype is None else x.astype(dtype)
    host = to_numpy(x) if is_array(x) else x  # other libraries' arrays come through the host
    return library.asarray(host, dtype=dtype)


def to_numpy(x: Any) -> numpy.ndarray:
    """A NumPy copy (or view) of any array: CuPy arrays come to the host, strict arrays to the CPU.

    >>> import numpy as np
    >>> to_numpy(np.ones(2)).tolist()
    [1.0, 1.0]
    """
    if isinstance(x, numpy.ndarray):
        return x
    if isinstance(x, (numpy.generic, bool, int, float, complex, list, tuple)):
        return numpy.asarray(x)
    if array_api_compat.is_cupy_array(x):
        return x.get()
    if type(x).__module__.startswith("array_api_strict"):  # its device arrays refuse NumPy's conversions
        import array_api_strict

        return numpy.asarray(x.to_device(array_api_strict.Device("CPU_DEVICE")))
    if hasattr(x, "__dlpack__"):
        return numpy.from_dlpack(x)
    return numpy.asarray(x)


# --- dtypes: NumPy's dtype objects are the vocabulary; strict arrays get theirs by name ---


_DTYPE_NAMES: dict[tuple[type, Any], str] = {}  # a memo (dtype objects never change their name)


def dtype_name(dtype: Any) -> str:
    """The standard name of a dtype object of any library (``"float32"``, ``"int64"``, ...)."""
    # Keyed with the type first, so dtypes of two libraries are never compared with each other
    # (array_api_strict warns about that).
    key = (type(dtype), dtype)
    try:
        return _DTYPE_NAMES[key]
    except KeyError:
        name = _DTYPE_NAMES[key] = _dtype_name(dtype)
        return name
    except TypeError:  # unhashable
        return _dtype_name(dtype)


def _dtype_name(dtype: Any) -> str:
    if isinstance(dtype, str):
        return numpy.dtype(dtype).name
    name = getattr(dtype, "name", None)
    if isinstance(name, str) and not str(type(dtype).__module__).startswith("array_api_strict"):
        return name
    text = str(dtype)
    if text.startswith(("array_api_strict.", "torch.")):  # their dtype objects have no .name
        return text.split(".", 1)[1]
    return numpy.dtype(dtype).name


# The usual dtypes of differentiated values: callers on hot paths test these by identity first.
FLOAT64, FLOAT32 = numpy.dtype("float64"), numpy.dtype("float32")


def is_real_float(dtype: Any) -> bool:
    """Whether a dtype of any library is a real floating one (what gpuad differentiates)."""
    if dtype is FLOAT64 or dtype is FLOAT32:
        return True
    if isinstance(dtype, numpy.dtype):  # NumPy's and CuPy's
        return dtype.kind == "f"
    return dtype_name(dtype) in ("float16", "float32", "float64")


def is_float_array(x: Any) -> bool:
    """Whether ``x`` is an array (or traced value: anything with a shape and a dtype) of a real
    floating dtype."""
    return hasattr(x, "dtype") and hasattr(x, "shape") and is_real_float(x.dtype)


def is_complex_dtype(dtype: Any) -> bool:
    """Whether a dtype of any library is complex."""
    if isinstance(dtype, numpy.dtype):  # NumPy's and CuPy's
        return dtype.kind == "c"
    return dtype_name(dtype).startswith("complex")


def named_dtype(name: str) -> Any:
    """The NumPy dtype object of a standard dtype name (the vocabulary of ``gpuad.numpy``)."""
    return numpy.dtype(name)


def _numpy_dtype_of(x: Any) -> Any:
    if isinstance(x, (bool, int, float, complex)):
        return x  # Python scalars stay weak in NumPy 2's promotion
    src = x.dtype if hasattr(x, "dtype") and not isinstance(x, (numpy.dtype, type)) else x
    return numpy.dtype(dtype_name(src))


def result_type(*arrays_and_dtypes: Any) -> Any:
    """NumPy's promotion over arrays, dtypes (of any library) and Python scalars."""
    return numpy.result_type(*(_numpy_dtype_of(a) for a in arrays_and_dtypes))


def can_cast(from_: Any, to: Any) -> bool:
    """NumPy's safe-casting rule between two dtypes of any library."""
    return bool(numpy.can_cast(numpy.dtype(dtype_name(from_)), numpy.dtype(dtype_name(to))))


def finfo(dtype: Any) -> Any:
    """Machine limits of a floating dtype of any library."""
    return numpy.finfo(numpy.dtype(dtype_name(dtype)))


def iinfo(dtype: Any) -> Any:
    """Machine limits of an integer dtype of any library."""
    return numpy.iinfo(numpy.dtype(dtype_name(dtype)))


# namespace -> whether it is NumPy's: asked on every operation with a scalar; a cache, not state.
# (Importing array_api_compat.numpy to compare against would slow down ``import gpuad``.)
_IS_NUMPY_NAMESPACE: dict[Any, bool] = {}


def is_numpy_namespace(xp: Any) -> bool:
    """Whether ``xp`` is NumPy's namespace (NumPy itself or array-api-compat's wrapper of it)."""
    answer = _IS_NUMPY_NAMESPACE.get(xp)
    if answer is None:
        answer = _IS_NUMPY_NAMESPACE[xp] = array_api_compat.is_numpy_namespace(xp)
    return answer


def scalar_array(xp: Any, value: Any, dtype: Any, device: Any) -> Any:
    """A 0-d array of ``xp`` holding a Python scalar (a fast path for NumPy, where operators with
    scalars happen on every operation)."""
    if (dtype is None or isinstance(dtype, numpy.dtype)) and is_numpy_namespace(xp):
        return numpy.asarray(value, dtype=dtype)
    return xp.asarray(value, dtype=backend_dtype(xp, dtype), device=device)


def default_float(xp: Any, device: Any) -> Any:
    """The default real floating dtype of ``xp`` on ``device`` (float32 where a device has no float64)."""
    try:
        return xp.__array_namespace_info__().default_dtypes(device=device)["real floating"]
    except Exception:  # libraries without info(), or whose info() does not know this device
        return xp.float64


def backend_dtype(xp: Any, dtype: Any) -> Any:
    """``dtype`` translated into ``xp``'s own dtype object (NumPy dtypes serve NumPy and CuPy)."""
    if dtype is None:
        return None
    if array_api_compat.is_numpy_namespace(xp) or array_api_compat.is_cupy_namespace(xp):
        return dtype if isinstance(dtype, numpy.dtype) else numpy.dtype(dtype_name(dtype))
    return getattr(xp, dtype_name(dtype))


# --- Scatter-add: the one operation the array-API standard lacks and reverse mode needs ---


def scatter_add(xp: Any, target: Any, axis: int, index: Any, values: Any) -> Any:
    """Add ``values`` into ``target`` along ``axis`` (negative) at positions ``index`` (1-D ints).

    Repeated indices accumulate. ``target`` is a fresh array owned by the caller and is updated in
    place where the library allows it; the result is returned either way.
    """
    key = (Ellipsis, index) + (slice(None),) * (-axis - 1)
    if array_api_compat.is_numpy_namespace(xp):
        numpy.add.at(target, key, values)
        return target
    if array_api_compat.is_cupy_namespace(xp):
        import cupyx

        cupyx.scatter_add(target, key, values)
        return target
    # Generic fallback for other libraries: a one-hot matrix product, O(len(index) * size) memory.
    size = target.shape[axis]
    positions = xp.arange(size, dtype=index.dtype, device=device_of(target))
    one_hot = xp.astype(index[:, None] == positions[None, :], values.dtype)
    moved = xp.moveaxis(values, axis, -1)
    added = xp.moveaxis(xp.matmul(moved, one_hot), -1, axis)
    return target + added


# --- Scatter with min, max or multiply: functional updates (gpuad.numpy.at) ---

_SCATTER_UFUNCS = {"min": "minimum", "max": "maximum", "multiply": "multiply"}


def scatter_combine(xp: Any, target: Any, axis: int, index: Any, values: Any, how: str) -> Any:
    """Combine ``values`` into ``target`` along ``axis`` (negative) at positions ``index`` (1-D
    ints) with ``how`` ("min", "max" or "multiply"); repeated indices combine them all.

    ``target`` is a fresh array owned by the caller, updated in place where the library allows it;
    the result is returned either way.
    """
    key = (Ellipsis, index) + (slice(None),) * (-axis - 1)
    if array_api_compat.is_numpy_namespace(xp):
        getattr(numpy, _SCATTER_UFUNCS[how]).at(target, key, values)
        return target
    if array_api_compat.is_cupy_namespace(xp) and how != "multiply":
        import cupyx

        getattr(cupyx, f"scatter_{how}")(target, key, values)
        return target
    # Generic fallback (immutable or strict arrays, CuPy's multiply): every update against every
    # position, O(len(index) * size) memory. Positions no update hits keep the target's value, so
    # no identity element (inf, the dtype's limits) is needed.
    size = target.shape[axis]
    positions = xp.arange(size, dtype=index.dtype, device=device_of(target))
    hit = index[:, None] == positions[None, :]  # (m, size)
    t = xp.moveaxis(target, axis, -1)  # (..., size)
    v = xp.moveaxis(values, axis, -1)  # (..., m)
    t, v = t[..., None, :], v[..., :, None]  # (..., 1, size), (..., m, 1)
    if how == "multiply":
        combined = xp.prod(xp.where(hit, v, xp.ones_like(v)), axis=-2) * t[..., 0, :]
    else:
        picked = xp.where(hit, v, t)
        t = xp.broadcast_to(t, tuple(picked.shape[:-2]) + (1, size))
        combined = (xp.min if how == "min" else xp.max)(xp.concat([t, picked], axis=-2), axis=-2)
    return xp.moveaxis(combined, -1, axis)


# --- Special functions (gpuad.scipy.special): the array library's own module ---

SCIPY_MISSING = "gpuad.scipy.special needs SciPy for NumPy arrays: pip install scipy (or gpuad[scipy])"


def special_functions(xp: Any, function: str) -> Any:
    """The module that computes ``function`` (erf, gammaln, ...) on arrays of namespace ``xp``:
    ``scipy.special`` for NumPy, ``cupyx.scipy.special`` for CuPy, imported on first use (SciPy
    is an optional dependency: ``import gpuad`` does not import it).

    Other libraries have none that gpuad knows, and converting their arrays through NumPy would be
    a hidden copy off the device: a TypeError names the library and what to do.

    >>> import array_api_compat.numpy as xp
    >>> special_functions(xp, "erf").__name__
    'scipy.special'
    """
    if is_numpy_namespace(xp):
        try:
            import scipy.special
        except ImportError as exc:
            raise ImportError(SCIPY_MISSING) from exc
        return scipy.special
    if array_api_compat.is_cupy_namespace(xp):
        import cupyx.scipy.special

        return cupyx.scipy.special
    name = getattr(xp, "__name__", repr(xp)).replace("array_api_compat.", "")
    raise TypeError(
        f"gpuad.scipy.special.{function}: {name} arrays are not supported: special functions are "
        "computed by SciPy on NumPy arrays and by cupyx.scipy.special on CuPy arrays, and gpuad does "
        "not copy data between libraries behind your back. Convert explicitly with "
        "gpuad.to_numpy(x) or gpuad.asarray(x, backend='cupy')."
    )


# --- NumPy's floating-point warnings, on the user's line (issue 22) ---
#
# NumPy warns about a floating-point error ("divide by zero encountered in log") at the Python
# frame that called the ufunc: inside gpuad, where no user can act on it. gpuad computes every
# primitive with NumPy's handling of the errors that the user has set to "warn" switched to "log",
# whose writer (below) issues the very same RuntimeWarning at the first frame outside gpuad (and
# outside the array libraries it calls through). The frame is looked for only when a warning fires;
# what every operation pays is one context-variable swap (``numpy_error_state``). The user's other
# choices ("ignore", "raise", "print", their own "call"/"log") are left as they are.

_INTERNAL_DIRS = tuple(
    os.path.dirname(os.path.abspath(m.__file__)) + os.sep for m in (numpy, array_api_compat)
) + (os.path.dirname(os.path.abspath(__file__)) + os.sep,)


def user_frame(frame: Any) -> Any:
    """The first frame, from ``frame`` outwards, whose code is not gpuad's, NumPy's or
    array-api-compat's (None if there is none)."""
    while frame is not None and frame.f_code.co_filename.startswith(_INTERNAL_DIRS):
        frame = frame.f_back
    return frame


class _WarnAtUserLine:
    """NumPy's "log" handler: ``write("Warning: <what> encountered in <ufunc>\\n")`` is called by a
    ufunc that met a floating-point error; the warning NumPy would have given goes out with the
    user's file and line (and that module's warning registry, so "default" shows it once there)."""

    __slots__ = ()

    def write(self, message: str) -> None:
        warn_at_user_line(message.removeprefix("Warning: ").rstrip("\n"), RuntimeWarning)


def warn_at_user_line(text: str, category: type[Warning]) -> None:
    """A warning that names the first frame outside gpuad (and the array libraries it calls), with
    that module's warning registry, so "default" shows it once there."""
    frame = user_frame(sys._getframe(1))
    if frame is None:  # called from gpuad itself, with no user code above
        warnings.warn(text, category, stacklevel=3)
        return
    g = frame.f_globals
    warnings.warn_explicit(
        text, category, frame.f_code.co_filename, frame.f_lineno,
        module=g.get("__name__", "<string>"), registry=g.setdefault("__warningregistry__", {}),
        module_globals=g,
    )


def _error_state_api() -> tuple[Any, Any, Any, Any, Any] | None:
    try:  # NumPy 2: the error state is a context variable (older NumPy: warnings stay where they are)
        from numpy._core.umath import _extobj_contextvar, _get_extobj_dict, _make_extobj
    except ImportError:
        return None
    return _extobj_contextvar.get, _extobj_contextvar.set, _extobj_contextvar.reset, _get_extobj_dict, _make_extobj


_ERROR_STATE = _error_state_api()
_FP_WRITER = _WarnAtUserLine()


def numpy_error_state() -> tuple[Any, Any, Any, Callable[[Any], Any]] | None:
    """``(get, set, reset, ours)`` for the per-operation swap of NumPy's floating-point error
    state (None on NumPy 1, whose warnings keep NumPy's place): ``get()`` is the current state,
    ``ours(state)`` the state to compute under while ``state`` is the user's (``state`` itself when
    nothing of it is "warn", or when the user's own "call"/"log" handler is in use), ``set`` and
    ``reset`` those of the context variable that holds it."""
    if _ERROR_STATE is None:
        return None
    get, set_, reset, as_dict, make = _ERROR_STATE

    def ours(state: Any) -> Any:
        token = set_(state)
        try:
            modes = as_dict()
            kinds = [k for k in ("divide", "over", "under", "invalid") if modes[k] == "warn"]
            if not kinds or any(modes[k] in ("call", "log") for k in ("divide", "over", "under", "invalid")):
                return state
            return make(call=_FP_WRITER, **dict.fromkeys(kinds, "log"))
        finally:
            reset(token)

    return get, set_, reset, ours
