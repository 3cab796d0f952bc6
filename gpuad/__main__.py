"""The demo: ``python -m gpuad [--size N] [--repeats R]``.

Prints the seed notes' worked examples (values and gradients), then takes per-point gradients of
the first seed function over a batch of N points (default 10**6) on the default backend (CuPy when a
GPU answers, else NumPy) and reports the time and points per second.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np  # host-ok: the demo makes its data on the host, then moves it once

from . import backend, numpy as gnp
from .transforms import value_and_grad


def seed1(x):
    """f(x1, x2) = ln x1 + x1 x2 - sin x2, for one point or a batch (x[..., 0], x[..., 1])."""
    x1, x2 = x[..., 0], x[..., 1]
    return gnp.log(x1) + x1 * x2 - gnp.sin(x2)


def seed2(x):
    """f(x1, x2) = (sin(x1/x2) + x1/x2 - exp(x2)) (x1/x2 - exp(x2))."""
    v1 = x[..., 0] / x[..., 1]
    v3 = gnp.exp(x[..., 1])
    return (gnp.sin(v1) + v1 - v3) * (v1 - v3)


def _show(name: str, f, point: list[float]) -> None:
    value, grad = value_and_grad(f)(np.asarray(point))
    print(f"  {name} at {tuple(point)}: value {float(value):.10f}, gradient {np.round(grad, 10).tolist()}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gpuad", description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=float, default=1e6, help="number of points in the batch (default 1e6)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats; the median is reported")
    args = parser.parse_args(argv)

    print("gpuad: the seed notes' worked examples")
    _show("f = ln x1 + x1 x2 - sin x2", seed1, [2.0, 5.0])
    _show("f = (sin(x1/x2) + x1/x2 - e^x2)(x1/x2 - e^x2)", seed2, [1.5, 0.5])

    name = backend.default_backend()
    ok, why = backend.cupy_status()
    print(f"\nbackend: {name}" + ("" if name == "cupy" else f" (no GPU: {why})"))
    n = int(args.size)
    host = np.random.default_rng(0).uniform(1.0, 3.0, size=(n, 2))
    X = backend.asarray(host, backend=name)  # the one explicit host-to-device copy
    vg = value_and_grad(lambda x: gnp.sum(seed1(x)))

    vg(X)  # warm-up (CuPy compiles its kernels on first use)
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        total, grads = vg(X)
        backend.synchronize(grads)
        times.append(time.perf_counter() - t0)
    t = statistics.median(times)

    g = backend.to_numpy(grads)
    expected = np.stack([1 / host[:, 0] + host[:, 1], host[:, 0] - np.cos(host[:, 1])], axis=1)
    err = float(np.max(np.abs(g - expected)))
    print(f"per-point gradients of f = ln x1 + x1 x2 - sin x2 over B = {n:,} points (float64)")
    print(f"  value_and_grad: {t * 1e3:.1f} ms (median of {args.repeats}), {n / t:,.0f} points/s")
    print(f"  sum of values {float(backend.to_numpy(total)):.6e}; max |gradient - exact| = {err:.1e}")


if __name__ == "__main__":
    main()
