"""``gpuad.numpy.fft``: the array API's fft extension (2024.12), differentiable in both modes.

Every transform is built from three table entries (primitives.py: ``fft_c2c``, ``rfft``, ``irfft``
along one axis, unnormalised), zero padding or truncation for ``n``/``s`` (differentiable indexing),
and a constant factor for ``norm``; the n-dimensional ones apply them axis by axis. Derivatives
follow JAX's conventions for complex numbers (a VJP is the transpose of the JVP).

>>> import numpy as np, gpuad, gpuad.numpy as gnp
>>> x = np.asarray([1.0, 2.0, 0.0, -1.0])
>>> gnp.fft.rfft(x).tolist()
[(2+0j), (1-3j), 0j]
>>> gpuad.grad(lambda v: gnp.sum(gnp.abs(gnp.fft.rfft(v)) ** 2))(x).tolist()
[6.0, 10.0, 2.0, -2.0]
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from .. import primitives as _p
from ._core import _as_array, _normalize_axis, astype, conj, isdtype, multiply
from ._indexing import getitem
from ._manipulation import roll

__all__ = [
    "fft", "ifft", "fftn", "ifftn", "rfft", "irfft", "rfftn", "irfftn", "hfft", "ihfft",
    "fftfreq", "rfftfreq", "fftshift", "ifftshift",
]

_NORMS = ("backward", "ortho", "forward")


def _check_norm(norm: str, name: str) -> None:
    if norm not in _NORMS:
        raise ValueError(f"fft.{name}: norm must be 'backward', 'ortho' or 'forward', got {norm!r}")


def _scaled(y: Any, n: int, norm: str, inverse: bool) -> Any:
    """The unnormalised transform (the inverse with its 1/n, as the library's "backward") scaled
    to ``norm``."""
    if norm == "backward" or n == 0:
        return y
    if norm == "ortho":
        return multiply(y, math.sqrt(n) if inverse else 1.0 / math.sqrt(n))
    return multiply(y, float(n) if inverse else 1.0 / n)  # host-ok: n is a Python int


def _complex(x: Any) -> Any:
    """``x`` as complex numbers of its precision (real arrays are taken as real parts)."""
    if isdtype(x.dtype, "complex floating"):
        return x
    if not isdtype(x.dtype, "real floating"):
        raise TypeError(f"the fft functions take floating-point arrays, got dtype {x.dtype}")
    xp, _ = _p.namespace_and_device(x)
    return astype(x, xp.complex64 if str(x.dtype).endswith("float32") else xp.complex128)


def _resized(x: Any, axis: int, n: int | None, name: str, what: str = "n") -> Any:
    """``x`` truncated or zero-padded to length ``n`` along ``axis`` (None: as it is)."""
    if n is None:
        return x
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"fft.{name}: {what} must be a positive int, got {n!r}")
    m = x.shape[axis]
    if n < m:
        items = [slice(None)] * x.ndim
        items[axis] = slice(0, n)
        return getitem(x, (Ellipsis, *items))
    if n > m:
        return _p._padded_along(x, axis, n)
    return x


def _axis(x: Any, axis: int, name: str) -> int:
    if x.ndim == 0:
        raise ValueError(f"fft.{name}: x must have at least one dimension")
    return _normalize_axis(axis, x.ndim, f"fft.{name}: axis")


def fft(x: Any, /, *, n: int | None = None, axis: int = -1, norm: str = "backward") -> Any:
    """The one-dimensional discrete Fourier transform along ``axis`` (real input is taken as
    complex), zero-padded or truncated to ``n``."""
    return _c2c(x, n, axis, norm, False, "fft")


def ifft(x: Any, /, *, n: int | None = None, axis: int = -1, norm: str = "backward") -> Any:
    """The inverse of :func:`fft`."""
    return _c2c(x, n, axis, norm, True, "ifft")


def _c2c(x: Any, n: int | None, axis: int, norm: str, inverse: bool, name: str) -> Any:
    _check_norm(norm, name)
    x = _complex(_as_array(x, f"fft.{name}: x"))
    ax = _axis(x, axis, name)
    x = _resized(x, ax, n, name)
    return _scaled(_p.fft_c2c(x, axis=ax, inverse=inverse), x.shape[ax], norm, inverse)


def rfft(x: Any, /, *, n: int | None = None, axis: int = -1, norm: str = "backward") -> Any:
    """The discrete Fourier transform of real ``x`` along ``axis``: its ``n // 2 + 1``
    non-negative frequencies."""
    _check_norm(norm, "rfft")
    x = _as_array(x, "fft.rfft: x")
    if not isdtype(x.dtype, "real floating"):
        raise TypeError(f"fft.rfft: x must have a real floating-point dtype, got {x.dtype}; use fft.fft for complex input")
    ax = _axis(x, axis, "rfft")
    x = _resized(x, ax, n, "rfft")
    return _scaled(_p.rfft(x, axis=ax), x.shape[ax], norm, False)


def irfft(x: Any, /, *, n: int | None = None, axis: int = -1, norm: str = "backward") -> Any:
    """The inverse of :func:`rfft`: a real signal of length ``n`` (default ``2 * (m - 1)`` for
    ``m`` input frequencies) from its non-negative frequencies."""
    _check_norm(norm, "irfft")
    x = _complex(_as_array(x, "fft.irfft: x"))
    ax = _axis(x, axis, "irfft")
    m = x.shape[ax]
    if n is None:
        n = 2 * (m - 1)
        if n < 1:
            raise ValueError(f"fft.irfft: {m} input frequencies give no output points; pass n")
    x = _resized(x, ax, n // 2 + 1 if isinstance(n, int) and not isinstance(n, bool) and n >= 1 else n, "irfft")
    return _scaled(_p.irfft(x, axis=ax, n=n), n, norm, True)


_SWAPPED = {"backward": "forward", "ortho": "ortho", "forward": "backward"}


def hfft(x: Any, /, *, n: int | None = None, axis: int = -1, norm: str = "backward") -> Any:
    """The transform of a signal with Hermitian symmetry, given by its first half: a real
    spectrum of length ``n`` (``irfft(conj(x))`` with the opposite normalisation)."""
    _check_norm(norm, "hfft")
    return irfft(conj(_complex(_as_array(x, "fft.hfft: x"))), n=n, axis=axis, norm=_SWAPPED[norm])


def ihfft(x: Any, /, *, n: int | None = None, axis: int = -1, norm: str = "backward") -> Any:
    """The inverse of :func:`hfft` for real ``x`` (``conj(rfft(x))`` with the opposite normalisation)."""
    _check_norm(norm, "ihfft")
    return conj(rfft(x, n=n, axis=axis, norm=_SWAPPED[norm]))


def _axes_and_sizes(x: Any, s: Sequence[int] | None, axes: Sequence[int] | None, name: str) -> tuple[list[int], list[Any]]:
    if axes is None:
        axes = list(range(-len(s), 0)) if s is not None else list(range(-x.ndim, 0))
    axes = [_axis(x, a, name) for a in axes]
    if len(set(axes)) != len(axes):
        raise ValueError(f"fft.{name}: axes must be distinct, got {axes}")
    if s is None:
        return axes, [None] * len(axes)
    s = list(s)
    if len(s) != len(axes):
        raise ValueError(f"fft.{name}: s has {len(s)} entries but there are {len(axes)} axes; give one size per axis")
    return axes, [None if k == -1 else k for k in s]


def fftn(x: Any, /, *, s: Sequence[int] | None = None, axes: Sequence[int] | None = None, norm: str = "backward") -> Any:
    """The n-dimensional discrete Fourier transform over ``axes`` (all by default), each axis
    padded or truncated to the size ``s`` gives."""
    return _c2c_n(x, s, axes, norm, False, "fftn")


def ifftn(x: Any, /, *, s: Sequence[int] | None = None, axes: Sequence[int] | None = None, norm: str = "backward") -> Any:
    """The inverse of :func:`fftn`."""
    return _c2c_n(x, s, axes, norm, True, "ifftn")


def _c2c_n(x: Any, s: Any, axes: Any, norm: str, inverse: bool, name: str) -> Any:
    _check_norm(norm, name)
    x = _complex(_as_array(x, f"fft.{name}: x"))
    ax, sizes = _axes_and_sizes(x, s, axes, name)
    for a, n in zip(ax, sizes):
        x = _c2c(x, n, a, norm, inverse, name)
    return x


def rfftn(x: Any, /, *, s: Sequence[int] | None = None, axes: Sequence[int] | None = None, norm: str = "backward") -> Any:
    """:func:`rfft` over the last of ``axes``, then :func:`fft` over the others."""
    _check_norm(norm, "rfftn")
    x = _as_array(x, "fft.rfftn: x")
    ax, sizes = _axes_and_sizes(x, s, axes, "rfftn")
    y = rfft(x, n=sizes[-1], axis=ax[-1], norm=norm)
    for a, n in zip(ax[:-1], sizes[:-1]):
        y = _c2c(y, n, a, norm, False, "rfftn")
    return y


def irfftn(x: Any, /, *, s: Sequence[int] | None = None, axes: Sequence[int] | None = None, norm: str = "backward") -> Any:
    """The inverse of :func:`rfftn`: :func:`ifft` over all of ``axes`` but the last, then
    :func:`irfft` over the last (of length ``s[-1]``, default ``2 * (m - 1)``)."""
    _check_norm(norm, "irfftn")
    x = _complex(_as_array(x, "fft.irfftn: x"))
    ax, sizes = _axes_and_sizes(x, s, axes, "irfftn")
    for a, n in zip(ax[:-1], sizes[:-1]):
        x = _c2c(x, n, a, norm, True, "irfftn")
    return irfft(x, n=sizes[-1], axis=ax[-1], norm=norm)


def fftfreq(n: int, /, *, d: float = 1.0, dtype: Any = None, device: Any = None) -> Any:
    """The sample frequencies of :func:`fft`'s output for ``n`` points spaced ``d`` apart."""
    return _freq("fftfreq", n, d, dtype, device)


def rfftfreq(n: int, /, *, d: float = 1.0, dtype: Any = None, device: Any = None) -> Any:
    """The sample frequencies of :func:`rfft`'s output for ``n`` points spaced ``d`` apart."""
    return _freq("rfftfreq", n, d, dtype, device)


def _freq(name: str, n: int, d: float, dtype: Any, device: Any) -> Any:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"fft.{name}: n must be a positive int, got {n!r}")
    xp, dev = _p.creation_target(device)
    out = getattr(xp.fft, name)(n, d=d, device=dev)
    return out if dtype is None else xp.astype(out, dtype)


def fftshift(x: Any, /, *, axes: int | Sequence[int] | None = None) -> Any:
    """The zero frequency moved to the middle along ``axes`` (all by default)."""
    return _shift(x, axes, +1, "fftshift")


def ifftshift(x: Any, /, *, axes: int | Sequence[int] | None = None) -> Any:
    """The inverse of :func:`fftshift`."""
    return _shift(x, axes, -1, "ifftshift")


def _shift(x: Any, axes: Any, sign: int, name: str) -> Any:
    x = _as_array(x, f"fft.{name}: x")
    axes = list(range(x.ndim)) if axes is None else [axes] if isinstance(axes, int) else list(axes)
    axes = [_normalize_axis(a, x.ndim, f"fft.{name}: axes") for a in axes]
    if not axes:
        return x
    return roll(x, tuple(sign * (x.shape[a] // 2) for a in axes), axis=tuple(axes))
