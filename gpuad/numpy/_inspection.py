"""The array API's inspection namespace, ``__array_namespace_info__()``: what gpuad.numpy can do,
and the devices and dtypes of the default backend's library (the library gpuad.numpy makes arrays
with when no array says otherwise), its dtypes named as gpuad.numpy names them."""

from __future__ import annotations

from typing import Any

from .. import backend as _backend

__all__ = ["__array_namespace_info__"]


class Info:
    """The answers of ``gnp.__array_namespace_info__()`` (the standard's inspection API)."""

    __module__ = "gpuad.numpy"

    def __init__(self) -> None:
        self._xp = _backend.namespace_of_backend(None)

    def _library(self) -> Any:
        return self._xp.__array_namespace_info__()

    def capabilities(self) -> dict[str, Any]:
        """gpuad's own capabilities, as JAX's: boolean-mask indexing and functions whose output
        shape depends on the data (nonzero, unique_*, repeat by an array) work on plain arrays
        only, not inside a transform, so both are False."""
        try:
            max_dims = self._library().capabilities().get("max dimensions")
        except Exception:  # a library without the inspection API  # noqa: BLE001
            max_dims = None
        return {"boolean indexing": False, "data-dependent shapes": False, "max dimensions": max_dims}

    def default_device(self) -> Any:
        """The default backend library's default device."""
        return self._library().default_device()

    def devices(self) -> list[Any]:
        """The default backend library's devices."""
        return list(self._library().devices())

    def default_dtypes(self, *, device: Any = None) -> dict[str, Any]:
        """The default dtypes on ``device`` ("real floating", "complex floating", "integral",
        "indexing"), as gpuad.numpy's dtype objects."""
        found = self._library().default_dtypes(device=device)
        return {kind: _backend.named_dtype(_backend.dtype_name(dt)) for kind, dt in found.items()}

    def dtypes(self, *, device: Any = None, kind: Any = None) -> dict[str, Any]:
        """The dtypes the library has on ``device`` (of ``kind``: a kind name, a dtype or a tuple,
        as ``isdtype`` takes), by name, as gpuad.numpy's dtype objects."""
        found = self._library().dtypes(device=device, kind=kind)
        return {name: _backend.named_dtype(name) for name in found}


def __array_namespace_info__() -> Info:
    """The standard's inspection namespace.

    >>> info = __array_namespace_info__()
    >>> info.capabilities()["data-dependent shapes"]
    False
    """
    return Info()
