"""What the Dask tests share: gpuad builds Dask graphs lazily (imported only by test modules that
have skipped themselves where Dask is missing)."""

from __future__ import annotations

import dask
import dask.array as da

import gpuad


class NoCompute(dask.callbacks.Callback):
    """Counts the Dask graphs computed while active (any compute, persist, bool, float... on the
    local schedulers)."""

    def __init__(self):
        super().__init__()
        self.computes = 0

    def _start(self, dsk):
        self.computes += 1


def lazily(fn, *args, functions=False):
    """``fn(*args)`` with a check that nothing was computed and that every result is a Dask array
    (or, with ``functions``, a function: a vjp's pullback)."""
    with NoCompute() as cb:
        out = fn(*args)
    assert cb.computes == 0, f"gpuad computed {cb.computes} Dask graph(s)"
    for leaf in gpuad.tree_leaves(out):
        assert (functions and callable(leaf)) or isinstance(leaf, da.Array), type(leaf)
    return out
