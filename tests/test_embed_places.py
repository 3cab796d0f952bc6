"""The cotangent of an array read in parts (``embed_add`` without a base) on large batches: places
made of integers and whole axes are written once (assigned, summed only where a place has several
pieces) into an uninitialised buffer where they cover it, zeros otherwise. Every case against the
obvious computation (zeros, then each piece added at its place), with the uninitialised buffer
filled with NaN so that an element left unwritten shows."""

from __future__ import annotations

import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp
from gpuad import primitives as P

from .conftest import all_backends

ROWS = 20000  # rows x per-point elements above primitives._EMBED_PLAN_MIN_ELEMENTS
E = Ellipsis

# (per-point shape, indices, whether the places cover the buffer)
CASES = {
    "columns": ((2,), [(E, 0), (E, 1)], True),
    "columns read twice": ((2,), [(E, 0), (E, 1), (E, 0), (E, 1)], True),
    "negative index is the same place": ((2,), [(E, 1), (E, 0), (E, -1)], True),
    "some columns": ((4,), [(E, 0), (E, 2), (E, 2)], False),
    "rows of a matrix": ((3, 2), [(E, 0, slice(None)), (E, 2, slice(None)), (E, 1, slice(None))], True),
    "entries of a matrix": ((2, 2), [(E, 0, 0), (E, 1, 1), (E, 0, 1)], False),
    "with a new axis": ((2,), [(E, None, 0), (E, 1)], True),
    # Not planned (the general path): integers on different axes may overlap, a partial slice.
    "row and column overlap": ((2, 2), [(E, 0, slice(None)), (E, slice(None), 1)], False),
    "partial slice": ((4,), [(E, slice(1, 3)), (E, 0)], False),
}


def _items(index, shape):
    """(item, size it reads) per item after the Ellipsis, for the items that keep an axis (slices,
    and new axes of size 1)."""
    dims = iter(shape)
    out = []
    for item in index[1:]:
        if item is None:
            out.append((item, 1))
            continue
        d = next(dims)
        if isinstance(item, slice):
            out.append((item, len(range(*item.indices(d)))))
    return out


def _expected(pieces, indices, shape):
    out = np.zeros((ROWS,) + shape)
    for g, index in zip(pieces, indices):
        key = (E,) + tuple(item for item in index[1:] if item is not None)
        kept = tuple(n for item, n in _items(index, shape) if item is not None)
        out[key] += g.reshape((ROWS,) + kept)
    return out


def _pieces(indices, shape, rng):
    out = []
    for index in indices:
        piece = tuple(n for _, n in _items(index, shape))
        out.append(rng.standard_normal((ROWS,) + piece))
    return out


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("backend", all_backends(), ids=repr)
def test_pieces_land_where_they_belong(case, backend, monkeypatch):
    shape, indices, covers = CASES[case]
    pieces = _pieces(indices, shape, np.random.default_rng(7))
    made_empty = []
    real_empty = P.empty_in_layout_of

    def poisoned(xp, full, like):  # an uninitialised buffer, made obviously so
        made_empty.append(full)
        buf = real_empty(xp, full, like)
        buf[...] = float("nan")
        return buf

    monkeypatch.setattr(P, "empty_in_layout_of", poisoned)
    out = P.embed_add(*[backend.asarray(g) for g in pieces], indices=tuple(indices), shape=shape, has_base=False)
    np.testing.assert_allclose(backend.to_numpy(out), _expected(pieces, indices, shape), rtol=1e-15, atol=0)
    assert made_empty == ([(ROWS,) + shape] if covers else [])


@pytest.mark.parametrize("backend", all_backends(), ids=repr)
def test_pieces_are_not_written_into(backend):
    """Assigning the first piece at a place must copy it: the pieces are cotangents the sweep may
    still hold."""
    shape, indices, _ = CASES["columns read twice"]
    pieces = [backend.asarray(g) for g in _pieces(indices, shape, np.random.default_rng(8))]
    before = [backend.to_numpy(g).copy() for g in pieces]
    P.embed_add(*pieces, indices=tuple(indices), shape=shape, has_base=False)
    for g, b in zip(pieces, before):
        np.testing.assert_array_equal(backend.to_numpy(g), b)


@pytest.mark.parametrize("backend", all_backends(), ids=repr)
def test_seed_gradient_at_a_large_batch(backend):
    """The first seed function per point, x read by columns (twice each): the gradient of the
    worked formula, on a batch large enough for the planned embedding."""
    X = np.random.default_rng(9).uniform(1.0, 3.0, size=(ROWS, 2))

    def f(x):
        x1, x2 = x[..., 0], x[..., 1]
        return gnp.log(x1) + x1 * x2 - gnp.sin(x2)

    value, g = gpuad.vmap(gpuad.value_and_grad(f))(backend.asarray(X))
    x1, x2 = X[:, 0], X[:, 1]
    np.testing.assert_allclose(backend.to_numpy(value), np.log(x1) + x1 * x2 - np.sin(x2), rtol=1e-14)
    np.testing.assert_allclose(backend.to_numpy(g), np.stack([1 / x1 + x2, x1 - np.cos(x2)], axis=1), rtol=1e-14)
