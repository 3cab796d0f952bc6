"""The seed MLP's mean loss over a Dask batch (issue 24): its gradient with respect to the in-memory
parameters, on a LocalCluster, against the gradient computed in memory.

    python -m bench.dask_mlp --size 1e7 --chunk 500000 --workers 2

The batch (float64) is made on the workers by a seeded generator per chunk; the in-memory reference
makes the same chunks on this process and takes gpuad's in-memory gradient of the mean loss over
slices of ``--slice`` examples (the full batch's intermediates would not fit in memory here),
combined with their weights. Prints the largest relative difference per parameter array.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bench.workloads import MLP_SIZES, _cross_entropy, _mlp_logits, mlp_data


def example_loss(params, x, y):
    import gpuad.numpy as gnp

    return _cross_entropy(gnp, _mlp_logits(gnp, params, x), y)


def mean_loss(params, X, Y):
    import gpuad
    import gpuad.numpy as gnp

    return gnp.mean(gpuad.vmap(example_loss, in_axes=(None, 0, 0))(params, X, Y))


def make_block(i: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1000 + i)
    X = rng.standard_normal((n, MLP_SIZES[0]))
    Y = np.eye(MLP_SIZES[-1])[rng.integers(0, MLP_SIZES[-1], size=n)]
    return X, Y


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.dask_mlp", description=__doc__.splitlines()[0])
    p.add_argument("--size", type=float, default=1e7)
    p.add_argument("--chunk", type=int, default=500_000)
    p.add_argument("--slice", type=int, default=1_000_000)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)
    import dask
    import dask.array as da
    from dask.distributed import Client, LocalCluster

    import gpuad

    n, c = int(args.size), args.chunk
    if n % c or args.slice % c:
        p.error("--size and --slice must be multiples of --chunk")
    params = mlp_data(1, np.dtype("float64"), np.random.default_rng(0))["params"]
    sizes = [c] * (n // c)
    blocks = [dask.delayed(make_block, pure=True)(i, c) for i in range(len(sizes))]
    X = da.concatenate([da.from_delayed(b[0], (c, MLP_SIZES[0]), dtype="float64") for b in blocks])
    Y = da.concatenate([da.from_delayed(b[1], (c, MLP_SIZES[-1]), dtype="float64") for b in blocks])
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=":0", silence_logs=40, memory_limit=0) as cluster, Client(cluster):
        value, grads = gpuad.value_and_grad(mean_loss)(params, X, Y)
        t0 = time.perf_counter()
        value, grads = dask.compute(value, grads)
        seconds = time.perf_counter() - t0
    # In memory: the same chunks, gathered a slice at a time.
    per_slice = args.slice // c
    want_value, want = 0.0, [np.zeros_like(q) for q in params]
    for s in range(0, len(sizes), per_slice):
        parts = [make_block(i, c) for i in range(s, s + per_slice)]
        Xs, Ys = np.concatenate([a for a, _ in parts]), np.concatenate([b for _, b in parts])
        v, g = gpuad.value_and_grad(mean_loss)(params, Xs, Ys)
        w = len(Xs) / n
        want_value += w * float(v)
        want = [acc + w * gi for acc, gi in zip(want, g)]
    rel = [float(np.max(np.abs(a - b)) / np.max(np.abs(b))) for a, b in zip(grads, want)]
    print(f"B = {n:,} float64 examples, chunks of {c:,}, {args.workers} worker(s): {seconds:.1f} s")
    print(f"value {float(value):.15f} vs in memory {want_value:.15f}")
    print("largest difference per parameter, relative to its largest entry: " + ", ".join(f"{r:.1e}" for r in rel))
    ok = all(np.allclose(a, b, rtol=1e-12, atol=0) for a, b in zip(grads, want))
    print(f"every entry within rtol 1e-12 (atol 0): {ok}")


if __name__ == "__main__":
    main()
