"""A jitted inner function called many times inside an outer gradient (issue 21, "jit everywhere a
user puts it"): ``python -m bench.nested``.

The outer function runs an inner solver step (10 iterations of a damped update, 60 array
operations) 500 times and sums a loss along the way; its gradient is taken with the inner function
plain and jitted. Jitted, the inner function is recorded once and each call is one operation of
the outer gradient (gpuad/calls.py); plain, its Python runs under the gradient at every call.
Run on one pinned core: ``OMP_NUM_THREADS=1 taskset -c 0 python -m bench.nested``.
"""

from __future__ import annotations

import time

import numpy as np

import gpuad
import gpuad.numpy as gnp

CALLS, ITERATIONS = 500, 10


def inner(z, c):
    for _ in range(ITERATIONS):
        z = z - 0.1 * (gnp.tanh(z) - c) * gnp.cos(z)
    return z


def outer(c, solve):
    z, total = gnp.zeros_like(c), 0.0
    for _ in range(CALLS):
        z = solve(z, c)
        total = total + gnp.sum(z * z)
    return total


def main() -> None:
    c = np.linspace(-0.5, 0.5, 8)
    grad = gpuad.grad(outer)
    jitted = gpuad.jit(inner)
    want = grad(c, inner)
    np.testing.assert_allclose(grad(c, jitted), want, rtol=1e-12)
    for name, fn in (("plain", inner), ("jitted", jitted)):
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            grad(c, fn)
            best = min(best, time.perf_counter() - start)
        print(f"inner function {name}: {best * 1e3:.0f} ms per outer gradient, {best / CALLS * 1e6:.0f} us per inner call")


if __name__ == "__main__":
    main()
