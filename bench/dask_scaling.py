"""Throughput of ``jit(vmap(value_and_grad(f1)))`` over a Dask batch on a LocalCluster of 1, then
2, single-threaded worker processes (issue 24): points per second, the speed-up, each worker's
peak memory, and a slice checked against the in-memory computation.

    python -m bench.dask_scaling --size 2e8 --chunk 4194304 --workers 1,2

The batch is made on the workers (dask.array's random generator, float32), reduced there (the sum
of the values and of the gradients), so only a few numbers travel back: the run measures the
per-chunk tasks, not the network.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def f1(x):
    import gpuad.numpy as gnp

    return gnp.log(x[0]) + x[0] * x[1] - gnp.sin(x[1])


def batch(n: int, chunk: int, dtype: str):
    import dask.array as da

    r = da.random.default_rng(0).random((n, 2), dtype=dtype, chunks=(chunk, 2))
    return 1 + 2 * r  # in [1, 3): log is defined


def _peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(workers: int, n: int, chunk: int, dtype: str, repeats: int) -> dict:
    import dask
    from dask.distributed import Client, LocalCluster

    import gpuad

    fast = gpuad.jit(gpuad.vmap(gpuad.value_and_grad(f1)))
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=":0", silence_logs=40, memory_limit=0) as cluster, Client(cluster) as client:
        client.run(lambda: __import__("gpuad"))  # imports outside the timing
        X = batch(n, chunk, dtype)
        v, g = fast(X)
        totals = (v.sum(), g.sum(axis=0))
        warm = batch(workers * chunk, chunk, dtype)  # each worker records and compiles (disk cache) once
        dask.compute(*[a.sum() for a in fast(warm)])
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            out = dask.compute(*totals)
            times.append(time.perf_counter() - t0)
        peak = client.run(_peak_rss_mib)
        head = 8 * 1024
        xs, vs, gs = dask.compute(X[:head], v[:head], g[:head])
    fast(xs)  # the first call of a jit returns the recording's values; compare the compiled ones
    want_v, want_g = fast(xs)
    return {
        "workers": workers, "seconds": min(times), "points_per_s": n / min(times), "peak_rss_mib": sorted(peak.values()),
        "slice_equal": bool(np.array_equal(vs, want_v) and np.array_equal(gs, want_g)),
        "slice_max_rel": float(max(np.max(np.abs(vs - want_v) / np.abs(want_v)), np.max(np.abs(gs - want_g) / np.abs(want_g)))),
        "sums": [float(np.asarray(o).sum()) for o in out],
    }


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.dask_scaling", description=__doc__.splitlines()[0])
    p.add_argument("--size", type=float, default=2e8)
    p.add_argument("--chunk", type=int, default=1 << 22)
    p.add_argument("--workers", default="1,2")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    n = int(args.size)
    results = []
    for w in [int(s) for s in args.workers.split(",")]:
        r = run(w, n, args.chunk, args.dtype, args.repeats)
        results.append(r)
        print(
            f"{w} worker(s): {r['seconds']:.2f} s, {r['points_per_s'] / 1e6:.1f} M points/s "
            f"({r['points_per_s'] / w / 1e6:.1f} M per worker), peak RSS per worker {r['peak_rss_mib']} MiB, "
            f"slice equal to in-memory: {r['slice_equal']} (max rel. diff {r['slice_max_rel']:.1e})",
            flush=True,
        )
    if len(results) > 1:
        base = results[0]
        for r in results[1:]:
            print(f"speed-up {r['workers']} vs {base['workers']} worker(s): {r['points_per_s'] / base['points_per_s']:.2f}x")


if __name__ == "__main__":
    main()
