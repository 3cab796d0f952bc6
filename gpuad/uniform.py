"""A symbolic cotangent whose elements all equal one Python number.

``grad`` seeds its backward sweep with ones, and the linear rules pass that along unchanged (add,
sum's broadcast, reshape) or scaled (subtract, negation, mean): most cotangents near the output of
a scalar loss are a constant times ones. Kept symbolic, such a cotangent costs nothing to create,
and multiplying by it costs nothing when the constant is 1 (``mul(g, y)`` is ``y``): the
multiplications by ones, negations and broadcasts that an array seed would spend a pass over memory
on are skipped. ``None`` is to zero tangents what ``Uniform`` is to constant ones.

A Uniform becomes an array only where a rule needs one: as a broadcast view of a 0-d array (no
memory), through :meth:`Uniform.view`, which every ``gpuad.numpy`` function and every
primitive applied to plain arrays does on its own. It never reaches user code: results and the
cotangents given to custom rules are real arrays.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["Uniform"]


class Uniform:
    """``value`` in every element of an array of ``shape`` and ``dtype`` (library ``xp``, ``device``)."""

    __slots__ = ("value", "shape", "dtype", "xp", "device")
    __array_ufunc__ = None  # NumPy on the left of an operator hands over to our reflected operators

    def __init__(self, value: float, shape: tuple[int, ...], dtype: Any, xp: Any, device: Any):
        self.value = value
        self.shape = tuple(shape)
        self.dtype = dtype
        self.xp = xp
        self.device = device

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def __repr__(self) -> str:
        return f"Uniform({self.value!r}, {self.shape}, {self.dtype})"

    def like(self, value: float | None = None, shape: tuple[int, ...] | None = None, dtype: Any = None) -> "Uniform":
        return Uniform(
            self.value if value is None else value,
            self.shape if shape is None else shape,
            self.dtype if dtype is None else dtype,
            self.xp,
            self.device,
        )

    def view(self) -> Any:
        """A read-only broadcast view: the shape without the memory."""
        xp = self.xp
        scalar = xp.asarray(self.value, dtype=self.dtype, device=self.device)
        return xp.broadcast_to(scalar, self.shape)

    def full(self) -> Any:
        """A fresh writable array holding the value (what a transform returns to the user)."""
        return self.xp.full(self.shape, self.value, dtype=self.dtype, device=self.device)

    # Negation stays symbolic. Arithmetic with numbers and arrays is the table's (primitives.mul,
    # div, plus, minus: a number scales the constant, an array meets its broadcast view), so
    # primitives.py, which sits above this module, installs those operators.
    def __neg__(self) -> "Uniform":
        return self.like(-self.value)


def as_array(x: Any) -> Any:
    """``x`` with a Uniform replaced by its broadcast view."""
    return x.view() if type(x) is Uniform else x


def reduced_to(u: Uniform, shape: tuple[int, ...], dtype: Any) -> Uniform:
    """The engine's sum of a cotangent back to an input's ``shape``, done on the constant: each
    element of the result receives one copy per summed position."""
    cshape = u.shape
    extra = len(cshape) - len(shape)
    count = 1
    if extra >= 0:
        for d in cshape[:extra]:
            count *= d
        for d, c in zip(shape, cshape[extra:]):
            if d == 1 and c != 1:
                count *= c
    return u.like(u.value * count, tuple(shape), dtype)
