"""The LSTM of issue 22's done-means: ``python -m bench.lstm [--hidden 8,32,128] [--steps 1024] [--dtype float32]``.

An LSTM (the seed notes' sigmoid/tanh cells) over 1,024 steps, batch 64, input size 16: the gradient
of the mean squared hidden states with respect to the weights. Timed per call, in process CPU time
(the fastest of several repeats, the four variants alternated in each repeat):

* ``jax``: ``jax.jit(jax.grad(loss))`` with ``jax.lax.scan``;
* ``gpuad jit``: ``gpuad.jit(gpuad.grad(loss))`` with ``gpuad.lax.scan``;
* ``gpuad scan``: ``gpuad.grad(loss)`` with ``gpuad.lax.scan``, eager;
* ``gpuad unrolled``: ``gpuad.grad(loss)`` over the same cell in a Python loop, eager.

Run on one pinned core with the allocator's thresholds fixed (see bench/one.py):
``MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=1073741824 OMP_NUM_THREADS=1 taskset -c 0 python -m bench.lstm``.
Needs JAX (the test extra).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

BATCH, INPUTS = 64, 16


def lstm_loss(np_, scan, hidden: int, dtype):
    def sig(z):
        return 1.0 / (1.0 + np_.exp(-z))

    def cell(params, carry, x):
        wx, wh, b = params
        h, c = carry
        z = x @ wx + h @ wh + b
        i, f, o, g = z[:, :hidden], z[:, hidden : 2 * hidden], z[:, 2 * hidden : 3 * hidden], z[:, 3 * hidden :]
        c = sig(f) * c + sig(i) * np_.tanh(g)
        h = sig(o) * np_.tanh(c)
        return (h, c), h

    def zeros():
        return np_.zeros((BATCH, hidden), dtype=dtype)

    def loss(params, xs):
        _, hs = scan(lambda carry, x: cell(params, carry, x), (zeros(), zeros()), xs)
        return np_.mean(hs**2)

    def unrolled(params, xs):
        carry, hs = (zeros(), zeros()), []
        for t in range(xs.shape[0]):
            carry, h = cell(params, carry, xs[t])
            hs.append(h)
        return np_.mean(np_.stack(hs) ** 2)

    return loss, unrolled


def measure(hidden: int, steps: int, dtype: str, repeats: int) -> dict[str, float]:
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax
    import jax.numpy as jnp

    import gpuad
    import gpuad.numpy as gnp
    from gpuad import lax

    jax.config.update("jax_enable_x64", True)
    dt = np.dtype(dtype)
    rng = np.random.default_rng(0)
    params = tuple(
        (rng.normal(size=shape) * scale).astype(dt)
        for shape, scale in (((INPUTS, 4 * hidden), 0.3), ((hidden, 4 * hidden), 0.3), ((4 * hidden,), 0.1))
    )
    xs = rng.normal(size=(steps, BATCH, INPUTS)).astype(dt)
    loss, unrolled = lstm_loss(gnp, lax.scan, hidden, dt)
    loss_j, _ = lstm_loss(jnp, jax.lax.scan, hidden, dt)
    params_j, xs_j = tuple(map(jnp.asarray, params)), jnp.asarray(xs)
    jax_grad = jax.jit(jax.grad(loss_j))
    variants = {
        "jax": lambda: jax.block_until_ready(jax_grad(params_j, xs_j)),
        "gpuad jit": lambda f=gpuad.jit(gpuad.grad(loss)): f(params, xs),
        "gpuad scan": lambda f=gpuad.grad(loss): f(params, xs),
        "gpuad unrolled": lambda f=gpuad.grad(unrolled): f(params, xs),
    }
    want = jax_grad(params_j, xs_j)
    for name, run in variants.items():  # first calls: compile, record; and the answers agree
        got = run()
        if name != "jax":
            for a, b in zip(got, want):
                np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-3 if dt == np.float32 else 1e-9, atol=1e-6)
    best = dict.fromkeys(variants, float("inf"))
    for _ in range(repeats):
        for name, run in variants.items():
            start = time.process_time()
            run()
            best[name] = min(best[name], time.process_time() - start)
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.lstm", description=__doc__.split("\n\n")[0])
    parser.add_argument("--hidden", default="8,32,128", help="hidden sizes, comma-separated")
    parser.add_argument("--steps", type=int, default=1024)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    print(f"LSTM grad, {args.steps} steps, batch {BATCH}, input {INPUTS}, {args.dtype}; ms per call (fastest of {args.repeats})")
    print("| hidden | jax.jit(grad) | gpuad jit(grad) | gpuad grad (scan) | gpuad grad (unrolled) | jit / jax | unrolled / scan |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for hidden in (int(h) for h in args.hidden.split(",")):
        t = measure(hidden, args.steps, args.dtype, args.repeats)
        print(
            f"| {hidden} | {t['jax'] * 1e3:.1f} | {t['gpuad jit'] * 1e3:.1f} | {t['gpuad scan'] * 1e3:.1f} | "
            f"{t['gpuad unrolled'] * 1e3:.1f} | {t['gpuad jit'] / t['jax']:.2f} | {t['gpuad unrolled'] / t['gpuad scan']:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
