"""The demo: ``python -m gpuad [--size N] [--repeats R] [--dask WORKERS [--chunk C]]``.

Prints the seed notes' worked examples (values and gradients), then their Wengert tables as
``gpuad.make_tape`` records them (each intermediate's primal value, forward-mode tangent and
reverse-mode adjoint: the numbers of notes 001 and 004), then takes per-point gradients of the
first seed function over a batch of N points (default 10**6) on the backend that GPUAD_BACKEND
names (auto, the default: CuPy when a GPU answers, else NumPy) and reports the time and points per
second. With ``--dask WORKERS`` the batched part runs on a local Dask cluster instead.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np  # host-ok: the demo makes its data on the host, then moves it once

from . import backend, numpy as gnp
from .jit import jit
from .transforms import value_and_grad, vmap
from .wengert import make_tape


def seed1(x):
    """f(x1, x2) = ln x1 + x1 x2 - sin x2, for one point or a batch (x[..., 0], x[..., 1])."""
    x1, x2 = x[..., 0], x[..., 1]
    return gnp.log(x1) + x1 * x2 - gnp.sin(x2)


def seed2(x):
    """f(x1, x2) = (sin(x1/x2) + x1/x2 - exp(x2)) (x1/x2 - exp(x2))."""
    v1 = x[..., 0] / x[..., 1]
    v3 = gnp.exp(x[..., 1])
    return (gnp.sin(v1) + v1 - v3) * (v1 - v3)


def seed1_steps(x1, x2):
    """Note 001's Wengert list, step by step, so that the tape numbers v1..v5 as the note does."""
    v1 = gnp.log(x1)
    v2 = x1 * x2
    v3 = gnp.sin(x2)
    v4 = v1 + v2
    return v4 - v3  # v5


def seed2_steps(x1, x2):
    """Note 004's Wengert list: v1 = x1/x2, v2 = sin v1, v3 = exp x2, v4 = v1 - v3, v5 = v2 + v4."""
    v1 = x1 / x2
    v2 = gnp.sin(v1)
    v3 = gnp.exp(x2)
    v4 = v1 - v3
    v5 = v2 + v4
    return v5 * v4  # v6


def _tables() -> None:
    """The notes' tables: primal, tangent (x1 dotted) and adjoint of every intermediate."""
    tape = make_tape(seed1_steps)(np.asarray(2.0), np.asarray(5.0))
    print("\nnote 001: f = ln x1 + x1 x2 - sin x2 at (2, 5), recorded by gpuad.make_tape")
    print(tape)
    print(tape.table())
    tape = make_tape(seed2_steps)(np.asarray(1.5), np.asarray(0.5))
    print("\nnote 004: f = (sin(x1/x2) + x1/x2 - e^x2)(x1/x2 - e^x2) at (1.5, 0.5)")
    print(tape.table())
    v6 = tape.table(tangent=1)["v6"].tangent
    print(f"  with x2 dotted instead (tape.table(tangent=1)): df/dx2 = v6' = {float(v6):.3f}")


def _show(name: str, f, point: list[float]) -> None:
    value, grad = value_and_grad(f)(np.asarray(point))
    print(f"  {name} at {tuple(point)}: value {float(value):.10f}, gradient {np.round(grad, 10).tolist()}")


_ENVIRONMENT = f"""\
environment:
  {backend.BACKEND_ENV}=auto|numpy|cupy
                 the backend of the batched run. auto (the default): CuPy when it imports and a
                 CUDA device answers, else NumPy; numpy: NumPy; cupy: CuPy, or an error saying
                 why it cannot run here (install gpuad[cuda12] or gpuad[cuda13] for it)
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m gpuad", description=__doc__.splitlines()[0], epilog=_ENVIRONMENT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--size", type=float, default=1e6, help="number of points in the batch (default 1e6)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats; the median is reported")
    parser.add_argument(
        "--dask", type=int, metavar="WORKERS", default=0,
        help="run the batched part on a local Dask cluster of WORKERS single-threaded worker processes "
        "(float32, chunks of --chunk points; needs gpuad[dask]) and print the throughput per worker",
    )
    parser.add_argument("--chunk", type=int, default=1 << 22, help="points per Dask chunk (with --dask)")
    args = parser.parse_args(argv)
    if args.dask < 0 or args.chunk <= 0:
        parser.error("--dask takes a number of workers (1 or more) and --chunk a positive number of points")
    try:  # before any output: a backend that cannot run is one line on stderr, not a late traceback
        name = backend.default_backend()
    except (backend.BackendError, ValueError) as exc:
        parser.exit(2, f"python -m gpuad: error: {exc}\n")

    print("gpuad: the seed notes' worked examples")
    _show("f = ln x1 + x1 x2 - sin x2", seed1, [2.0, 5.0])
    _show("f = (sin(x1/x2) + x1/x2 - e^x2)(x1/x2 - e^x2)", seed2, [1.5, 0.5])
    _tables()

    if args.dask:
        _dask_demo(int(args.size), args.chunk, args.dask, args.repeats)
        return
    ok, why = backend.cupy_status()
    print(f"\nbackend: {name}" + ("" if name == "cupy" else f" (no GPU: {why})"))
    n = int(args.size)
    host = np.random.default_rng(0).uniform(1.0, 3.0, size=(n, 2))
    X = backend.asarray(host, backend=name)  # the one explicit host-to-device copy
    vg = value_and_grad(lambda x: gnp.sum(seed1(x)))

    def timed(f):
        f(X)  # warm-up (CuPy builds its kernels, gpuad.jit records and compiles, on first use)
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            out = f(X)
            backend.synchronize(out[1])
            times.append(time.perf_counter() - t0)
        return statistics.median(times), out

    t, (total, grads) = timed(vg)
    fast = jit(vmap(value_and_grad(seed1)))  # one compiled kernel per point (README "Speed")
    t_jit, (values, fast_grads) = timed(fast)

    g = backend.to_numpy(grads)
    expected = np.stack([1 / host[:, 0] + host[:, 1], host[:, 0] - np.cos(host[:, 1])], axis=1)
    err = float(np.max(np.abs(g - expected)))
    print(f"per-point gradients of f = ln x1 + x1 x2 - sin x2 over B = {n:,} points (float64)")
    print(f"  value_and_grad: {t * 1e3:.1f} ms (median of {args.repeats}), {n / t:,.0f} points/s")
    print(f"  sum of values {float(backend.to_numpy(total)):.6e}; max |gradient - exact| = {err:.1e}")
    err_jit = float(np.max(np.abs(backend.to_numpy(fast_grads) - expected)))
    print(f"  jit(vmap(value_and_grad)): {t_jit * 1e3:.1f} ms, {n / t_jit:,.0f} points/s; max |gradient - exact| = {err_jit:.1e}")
    print(f"  ({fast.reports()[0]})")


def _dask_demo(n: int, chunk: int, workers: int, repeats: int) -> None:
    """``jit(vmap(value_and_grad(seed1)))`` over a Dask batch made and reduced on the workers."""
    try:
        import dask
        import dask.array as da
        from dask.distributed import Client, LocalCluster
    except ImportError as exc:
        raise SystemExit(f"python -m gpuad --dask needs Dask: pip install -e \".[dask]\" ({exc})")
    from .calls import jit as jit_anywhere

    fast = jit_anywhere(vmap(value_and_grad(seed1)))
    print(f"\nDask: a local cluster of {workers} single-threaded worker process(es), B = {n:,} float32 points "
          f"in chunks of {chunk:,}")
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=":0", silence_logs=40) as cluster, Client(cluster):
        X = 1 + 2 * da.random.default_rng(0).random((n, 2), dtype="float32", chunks=(chunk, 2))
        values, grads = fast(X)  # lazy: one task per chunk
        totals = (values.sum(), grads.sum(axis=0))
        dask.compute(*totals)  # warm-up: each worker records and compiles once
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            total, grad_sum = dask.compute(*totals)
            times.append(time.perf_counter() - t0)
    t = statistics.median(times)
    print(f"  sum of values {float(total):.6e}, sum of gradients {np.round(grad_sum, 1).tolist()}")
    print(f"  {t:.2f} s (median of {repeats}): {n / t:,.0f} points/s, {n / t / workers:,.0f} per worker")


if __name__ == "__main__":
    main()
