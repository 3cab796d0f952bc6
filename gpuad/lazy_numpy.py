"""``gpuad.numpy`` for the modules it imports itself (the primitive table, the symbolic values):
they cannot import it at the top, and an ``import`` statement inside a function costs about a
microsecond on every call, which the per-operation paths cannot afford."""

from __future__ import annotations

from typing import Any

__all__ = ["gnp"]


class _LazyNamespace:
    """``gpuad.numpy``, imported on first use."""

    def __getattr__(self, name: str) -> Any:
        from . import numpy as module

        value = getattr(module, name)
        setattr(self, name, value)  # cache: later lookups skip __getattr__
        return value


gnp: Any = _LazyNamespace()
