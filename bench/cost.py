"""A cost counter for the GPU we do not have: run a workload on NumPy arrays that count every array
operation dispatched on them (ufuncs, in place or not, and NumPy functions) and the bytes each reads
and writes, then turn the counts into a GPU estimate:

    time ~ operations x 5 us (kernel launch and Python dispatch) + bytes / 3 TB/s (H100 HBM3)

next to the floor (the inputs and outputs moved once at 3 TB/s). Views (reshape, broadcast_to,
transposes, basic indexing) move no data and launch nothing, so they count for nothing; array
creation (zeros, ones, full) counts as one operation writing its bytes, as a memset kernel would.
The same instrument runs the hand-written NumPy derivative, for comparison, and gpuad.jit's
compiled program (``gpuad-jit``): each compiled kernel counts as one operation reading its operands
and writing its outputs once (the array operations left to NumPy count as above).

    python -m bench.cost [--tasks seed1,mlp_weights] [--sizes 1e5] [--dtypes float64]
"""

from __future__ import annotations

import argparse
import contextlib
from typing import Any, Iterator

import numpy as np

LAUNCH_SECONDS = 5e-6
GPU_BANDWIDTH = 3e12  # bytes/s, H100 SXM

_VIEWS = {
    np.reshape, np.broadcast_to, np.transpose, np.moveaxis, np.squeeze, np.expand_dims, np.swapaxes,
    np.ravel, np.shape, np.ndim, np.size, np.result_type, np.can_cast, np.may_share_memory, np.shares_memory,
    np.empty_like,  # an allocation, not a kernel
}
_VIEWS |= {getattr(np, n) for n in ("permute_dims", "matrix_transpose") if hasattr(np, n)}


class Tally:
    def __init__(self) -> None:
        self.ops = 0
        self.bytes = 0

    def add(self, arrays_in: list, arrays_out: list) -> None:
        self.ops += 1
        self.bytes += sum(int(a.nbytes) for a in arrays_in + arrays_out if isinstance(a, (np.ndarray, np.generic)))


_TALLY: list[Tally] = []  # the active tally (set only inside counting(); the bench runs one thread)


def _plain(x: Any) -> Any:
    if isinstance(x, Counted):
        return x.view(np.ndarray)
    if isinstance(x, (list, tuple)):
        return type(x)(_plain(v) for v in x)
    return x


def _wrap(x: Any) -> Any:
    if type(x) is np.ndarray:
        return x.view(Counted)
    if isinstance(x, tuple):
        return tuple(_wrap(v) for v in x)
    if isinstance(x, list):
        return [_wrap(v) for v in x]
    return x


def _arrays(x: Any) -> list:
    if isinstance(x, (np.ndarray, np.generic)):
        return [x]
    if isinstance(x, (list, tuple)):
        return [a for v in x for a in _arrays(v)]
    return []


class Counted(np.ndarray):
    """A NumPy array whose operations are tallied (results stay Counted)."""

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        given_out = kwargs.get("out")
        if given_out is not None:
            kwargs["out"] = tuple(_plain(o) for o in given_out)
        ins = [_plain(i) for i in inputs]
        result = getattr(ufunc, method)(*ins, **kwargs)
        if _TALLY:
            written = _arrays(kwargs["out"]) if given_out is not None else _arrays(result)
            _TALLY[-1].add(_arrays(ins), written)
        if method == "at":
            return None  # ufunc.at works in place
        if given_out is not None:
            return given_out[0] if len(given_out) == 1 else tuple(given_out)
        return _wrap(result)

    def __array_function__(self, func, types, args, kwargs):
        plain_args = _plain(list(args))
        plain_kwargs = {k: _plain(v) for k, v in kwargs.items()}
        result = func(*plain_args, **plain_kwargs)
        if _TALLY and func not in _VIEWS:
            _TALLY[-1].add(_arrays(plain_args) + _arrays(list(plain_kwargs.values())), _arrays(result))
        return _wrap(result)


@contextlib.contextmanager
def counting() -> Iterator[Tally]:
    """Tally operations on Counted arrays, and count array creation in array-api-compat's NumPy
    namespace (the functions gpuad calls to make zeros and constants)."""
    import array_api_compat.numpy as compat

    tally = Tally()
    patched = {}

    def creator(name: str):
        original = getattr(compat, name)

        def make(*a, **k):
            out = original(*a, **k)
            if isinstance(out, np.ndarray) and name != "empty":
                tally.add([], [out])
            return _wrap(out) if isinstance(out, np.ndarray) else out

        return original, make

    for name in ("zeros", "ones", "full", "empty", "eye"):
        patched[name], replacement = creator(name)
        setattr(compat, name, replacement)
    # A compiled kernel (gpuad.jit): one launch, its operands read and its outputs written once.
    from gpuad.compiler import lowering

    launch = lowering._CPULaunch.__call__

    def counted_launch(self, xp, *operands):
        outs = launch(self, xp, *[_plain(a) for a in operands])
        tally.add(_arrays(list(operands)), _arrays(list(outs)))
        return _wrap(outs)

    lowering._CPULaunch.__call__ = counted_launch
    _TALLY.append(tally)
    try:
        yield tally
    finally:
        _TALLY.pop()
        lowering._CPULaunch.__call__ = launch
        for name, original in patched.items():
            setattr(compat, name, original)


def _counted_data(d: dict) -> dict:
    return {k: (tuple(v.view(Counted) for v in val) if isinstance(val, tuple) else val.view(Counted)) for k, val in d.items()}


def count_costs(tasks: list[str], dtypes: list[str], sizes: list[int], seed: int = 0) -> list[dict]:
    """Operations and bytes of one gpuad call and one hand-written call per (workload, dtype, B)."""
    from .libs import LIBRARIES
    from .run import _nbytes
    from .workloads import WORKLOADS

    rows = []
    for name in tasks:
        w = WORKLOADS[name]
        for dtype in dtypes:
            for B in sizes:
                data = w.data(B, dtype, np.random.default_rng(seed))
                io_bytes = _nbytes(data) + _nbytes(w.hand(data))
                row = {"workload": name, "dtype": dtype, "B": B, "io_bytes": io_bytes}
                for lib in ("gpuad", "gpuad-jit", "hand"):
                    run, _ = LIBRARIES[lib].build(w, _counted_data(data))
                    run()  # warm-up (and gpuad.jit's recording and compile)
                    with counting() as tally:
                        run()
                    row[f"{lib}_ops"] = tally.ops
                    row[f"{lib}_bytes"] = tally.bytes
                    row[f"{lib}_gpu_seconds"] = tally.ops * LAUNCH_SECONDS + tally.bytes / GPU_BANDWIDTH
                row["floor_gpu_seconds"] = io_bytes / GPU_BANDWIDTH
                rows.append(row)
    return rows


def cost_table(rows: list[dict]) -> str:
    lines = [
        "| workload | dtype | B | gpuad ops | gpuad-jit ops | hand ops | gpuad MB moved | gpuad-jit MB moved | hand MB moved | "
        "inputs + outputs MB | gpuad GPU est. ms | gpuad-jit GPU est. ms | hand GPU est. ms | floor ms |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    def jit(key: str, scale: float, fmt: str) -> str:  # rows of runs before gpuad-jit was counted: n/a
        return format(r[key] * scale, fmt) if key in r else "n/a"

    for r in rows:
        lines.append(
            f"| {r['workload']} | {r['dtype']} | {r['B']:.0e} | {r['gpuad_ops']} | {jit('gpuad-jit_ops', 1, 'd')} | {r['hand_ops']} | "
            f"{r['gpuad_bytes'] / 1e6:.1f} | {jit('gpuad-jit_bytes', 1e-6, '.1f')} | {r['hand_bytes'] / 1e6:.1f} | {r['io_bytes'] / 1e6:.1f} | "
            f"{r['gpuad_gpu_seconds'] * 1e3:.3f} | {jit('gpuad-jit_gpu_seconds', 1e3, '.3f')} | "
            f"{r['hand_gpu_seconds'] * 1e3:.3f} | {r['floor_gpu_seconds'] * 1e3:.4f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    from .workloads import WORKLOADS

    p = argparse.ArgumentParser(prog="python -m bench.cost", description=__doc__.splitlines()[0])
    p.add_argument("--tasks", default=",".join(WORKLOADS))
    p.add_argument("--sizes", default="1e5")
    p.add_argument("--dtypes", default="float64")
    a = p.parse_args(argv)
    rows = count_costs([t for t in a.tasks.split(",") if t], a.dtypes.split(","), [int(float(s)) for s in a.sizes.split(",")])
    print(cost_table(rows))


if __name__ == "__main__":
    main()
