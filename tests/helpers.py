"""Helpers shared by the tests that hold the spec table against JAX: the sampled inputs, the
tolerances, the comparison, and the JAX side compiled as one program per case.

Why the oracle is compiled: JAX run op by op (eager) compiles, and keeps, one XLA executable per
primitive and shape; on the spec table that was most of the suite's time and gigabytes of memory
per worker. One ``jax.jit`` program per case compiles once and frees its executable with the
function. See ``oracle`` for the compiler options.
"""

from __future__ import annotations

import zlib
from typing import Any, Callable

import numpy as np
import pytest

import gpuad

from .spec import SLOW, GpuadNS, JaxNS, core

GNS = GpuadNS()
_JNS: list[JaxNS] = []


def jns() -> JaxNS:
    """jax.numpy with the table's extra names (made on first use: importing this module needs no JAX)."""
    if not _JNS:
        _JNS.append(JaxNS())
    return _JNS[0]


# ---------------------------------------------------------------------------------------------
# A row's function on either side, and its inputs
# ---------------------------------------------------------------------------------------------


def ours(spec) -> Callable[..., Any]:
    """The row's function on gpuad.numpy."""
    return lambda *a: spec.fn(GNS, *a)


def theirs(spec) -> Callable[..., Any]:
    """The row's function on jax.numpy."""
    ns = jns()
    return lambda *a: spec.fn(ns, *a)


def inputs(spec, dtype="float64", seed=0) -> list[np.ndarray]:
    """One sample of each of the row's arguments, from a generator seeded by the row's name."""
    rng = np.random.default_rng(zlib.crc32(spec.name.encode()) + seed)
    return [d.sample(rng, dtype) for d in spec.args]


def batch_inputs(spec, dtype, mode, batch=3, seed=7):
    """Per-argument arrays and in_axes for a batch of ``batch`` points: every argument batched on
    axis 0 (mode "all"), only the first ("first"), or the first on its last axis ("last")."""
    rng = np.random.default_rng(zlib.crc32(spec.name.encode()) + seed)
    xs, axes = [], []
    for i, d in enumerate(spec.args):
        if mode == "first" and i > 0:
            xs.append(d.sample(rng, dtype))
            axes.append(None)
            continue
        pts = np.stack([d.sample(rng, dtype) for _ in range(batch)])
        if mode == "last" and i == 0:
            pts = np.moveaxis(pts, 0, -1)
            axes.append(-1)
        else:
            axes.append(0)
        xs.append(pts)
    return xs, tuple(axes)


VMAP_MODES = ["all", "first", "last"]


def vmap_cases(specs):
    """(spec, mode, dtype) cases for the vmap tests: every row batched along all its arguments in
    float64, the core rows also in float32; the other batching modes (only the first argument,
    along the last axis) on the core rows in float64. Only the core rows batched along all their
    arguments in float64 are not marked slow (the quick subset, ``-m "not slow"``, runs those)."""
    core_names = {c.name for c in core(specs)}
    out = []
    for s in specs:
        for m in VMAP_MODES:
            if m == "first" and len(s.args) < 2:
                continue
            for dt in ("float64", "float32"):
                if m != "all" and (dt == "float32" or s.name not in core_names):
                    continue
                if dt == "float32" and s.name not in core_names:
                    continue
                slow = dt == "float32" or m != "all" or s.name not in core_names
                out.append(pytest.param(s, m, dt, id=f"{dt}-{s.name}-{m}", marks=SLOW if slow else ()))
    return out


# ---------------------------------------------------------------------------------------------
# Tolerances and the comparison
# ---------------------------------------------------------------------------------------------


def tolerances(spec, dtype, loosen32=1.0) -> dict:
    """The row's tolerances: tight in float64, the row's own in float32 (times ``loosen32`` where
    a transform adds rounding, as vmap's and jacfwd's tests do)."""
    if dtype == "float64":
        return dict(rtol=spec.extra.get("rtol64", 1e-10), atol=spec.extra.get("atol64", 1e-12))
    return dict(rtol=spec.rtol32 * loosen32, atol=spec.atol32 * loosen32)


def check(actual, expected, *, dtype=False, **tol) -> None:
    """``actual`` (any backend) has ``expected``'s shape (and its dtype, with ``dtype=True``) and
    values within ``tol`` (numpy.testing.assert_allclose's rtol and atol)."""
    actual = gpuad.to_numpy(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    if dtype:
        assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    np.testing.assert_allclose(actual, expected, **tol)


def check_typed(actual, expected, **tol) -> None:
    """``check`` that also wants ``expected``'s dtype exactly."""
    check(actual, expected, dtype=True, **tol)


def close(got, want, rtol=1e-12, atol=1e-12) -> None:
    """``got`` (any library, a tree) equals ``want`` (the same tree): as many leaves, each of the
    same shape, values within tolerance. Dask leaves are computed here (after any check of
    laziness)."""
    got_l, want_l = gpuad.tree_leaves(got), gpuad.tree_leaves(want)
    assert len(got_l) == len(want_l)
    for g, w in zip(got_l, want_l):
        g = np.asarray(g.compute()) if type(g).__module__.split(".")[0] == "dask" else gpuad.to_numpy(g)
        w = gpuad.to_numpy(w)
        assert g.shape == w.shape, (g.shape, w.shape)
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)


def same_dtype(actual, expected) -> None:
    assert gpuad.backend.dtype_name(actual.dtype) == np.dtype(expected.dtype).name, (actual.dtype, expected.dtype)


# ---------------------------------------------------------------------------------------------
# The JAX oracle, compiled
# ---------------------------------------------------------------------------------------------

# XLA's CPU compiler spends most of its time on the fusion emitters and LLVM's optimisations, which
# buy nothing for programs on a dozen numbers: without them a case compiles about 4 times faster.
# The arithmetic is the same IEEE arithmetic (measured over the spec table: float64 results agree
# with the default compiler's to rounding). A JAX that does not know an option gets the default.
FAST_COMPILE = {
    "xla_cpu_use_fusion_emitters": False,
    "xla_backend_optimization_level": 0,
    "xla_llvm_disable_expensive_passes": True,
}
_fast_compile_ok = [True]


def oracle(fn: Callable[..., Any], spec=None) -> Callable[..., Any]:
    """``fn`` (JAX code) under ``jax.jit``: traced and compiled once, as one program, on the first
    call. Its arguments are arrays (or pytrees of arrays): close over anything else.

    A compiled program may round differently from JAX op by op (XLA fuses operations and may
    reorder a sum): for a row whose results are mostly cancellation (``spec.extra["op_by_op"]``)
    JAX runs op by op, as it did when the row's tolerances were set. Not for special values (NaN,
    inf, ties) either, where XLA may turn JAX's masks into choices: their tests run JAX eagerly."""
    import jax

    if spec is not None and spec.extra.get("op_by_op"):
        return lambda *args: fn(*jax.tree_util.tree_map(jax.numpy.asarray, args))
    plain = jax.jit(fn)
    fast = None
    if _fast_compile_ok[0]:
        try:
            fast = jax.jit(fn, compiler_options=FAST_COMPILE)
        except TypeError:  # a JAX without compiler_options
            _fast_compile_ok[0] = False

    def call(*args):
        if fast is not None and _fast_compile_ok[0]:
            try:
                return fast(*args)
            except Exception as e:  # an XLA that does not know an option: the default compiler
                if "compile option" not in str(e):
                    raise
                _fast_compile_ok[0] = False
        return plain(*args)

    return call


def to_jax(arrays):
    import jax.numpy as jnp

    return [jnp.asarray(a) for a in arrays]
