"""Peak memory of batched gradients: each scenario runs in its own process under GNU time (``time -v``)
and reports the maximum resident set size, next to the same process's baseline (imports and input
data only) and the bytes of inputs plus outputs.

    python bench/memory.py [--scenarios seed1_1e7,seed1_1e8_f32_chunked,chain50] [--out bench/results/memory.md]

Scenarios
  seed1_1e7              vmap(grad(f)) of the first seed function, B = 1e7 float64 (target: peak
                         above baseline <= 6 x (inputs + outputs))
  seed1_1e8_f32_chunked  the same at B = 1e8 float32 with vmap(..., chunk_size=1e7): must fit in 24 GiB
  chain50                a 50-layer tanh chain (B = 2e6 float64) differentiated plainly and with
                         checkpoint around segments of 10 layers

Needs GNU time (Debian package ``time``) at /usr/bin/time.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# Each child prints one JSON line: the bytes of inputs + outputs and the seconds of the timed work.
CHILD = r"""
import json, sys, time
import numpy as np
import gpuad, gpuad.numpy as gnp

scenario, phase = sys.argv[1], sys.argv[2]

def seed1(x):
    return gnp.log(x[0]) + x[0] * x[1] - gnp.sin(x[1])

if scenario.startswith("seed1"):
    f32 = "f32" in scenario
    n = int(1e8) if "1e8" in scenario else int(1e7)
    dtype = np.float32 if f32 else np.float64
    X = np.random.default_rng(0).random((n, 2), dtype=dtype)  # made in place: no temporary copy
    X *= 2
    X += 1
    io = 2 * X.nbytes  # inputs + the gradient, same size
    if phase == "run":
        chunk = int(1e7) if "chunked" in scenario else None
        t0 = time.perf_counter()
        G = gpuad.vmap(gpuad.grad(seed1), chunk_size=chunk)(X)
        seconds = time.perf_counter() - t0
        expected0 = np.asarray([1 / X[0, 0] + X[0, 1], X[0, 0] - np.cos(X[0, 1])])
        assert G.shape == X.shape and G.dtype == X.dtype
        np.testing.assert_allclose(G[0], expected0, rtol=1e-5)
    else:
        seconds = 0.0
elif scenario.startswith("chain50"):
    n = int(2e6)
    x = np.random.default_rng(0).standard_normal(n)
    io = 2 * x.nbytes

    def segment(v):
        for _ in range(10):
            v = gnp.tanh(v * 1.01 + 0.01)
        return v

    seg = gpuad.checkpoint(segment) if scenario.endswith("checkpoint") else segment
    f = lambda v: gnp.sum(seg(seg(seg(seg(seg(v))))))
    seconds = 0.0
    if phase == "run":
        t0 = time.perf_counter()
        g = gpuad.grad(f)(x)
        seconds = time.perf_counter() - t0
        assert g.shape == x.shape
print(json.dumps({"io_bytes": io, "seconds": seconds}))
"""

SCENARIOS = {
    "seed1_1e7": ["seed1_1e7"],
    "seed1_1e8_f32_chunked": ["seed1_1e8_f32_chunked"],
    "chain50": ["chain50_plain", "chain50_checkpoint"],
}


def run_child(scenario: str, phase: str) -> dict:
    cmd = ["/usr/bin/time", "-v", sys.executable, "-c", CHILD, scenario, phase]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{scenario}/{phase} failed:\n{proc.stderr[-3000:]}")
    peak_kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    info["peak_bytes"] = peak_kib * 1024
    return info


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenarios", default=",".join(SCENARIOS))
    p.add_argument("--out", default=os.path.join(HERE, "results", "memory.md"))
    args = p.parse_args(argv)
    if not os.path.exists("/usr/bin/time"):
        sys.exit("GNU time is needed at /usr/bin/time (Debian package 'time')")

    rows = []
    for name in args.scenarios.split(","):
        for scenario in SCENARIOS[name]:
            base = run_child(scenario, "baseline")
            run = run_child(scenario, "run")
            extra = run["peak_bytes"] - base["peak_bytes"]
            rows.append(
                (scenario, run["io_bytes"], base["peak_bytes"], run["peak_bytes"], extra, extra / run["io_bytes"], run["seconds"])
            )
            print(f"{scenario}: peak {run['peak_bytes'] / 2**20:.0f} MiB, above baseline {extra / 2**20:.0f} MiB "
                  f"= {extra / run['io_bytes']:.2f} x inputs+outputs, {run['seconds']:.2f} s", flush=True)

    lines = [
        "| scenario | inputs+outputs MiB | baseline peak MiB | peak MiB | peak / (in+out) | peak - baseline MiB | (peak - baseline) / (in+out) | seconds |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s, io, b, pk, ex, ratio, sec in rows:
        lines.append(
            f"| {s} | {io / 2**20:.0f} | {b / 2**20:.0f} | {pk / 2**20:.0f} | {pk / io:.2f} | {ex / 2**20:.0f} | {ratio:.2f} | {sec:.2f} |"
        )
    text = "\n".join(lines) + (
        "\n\nPeak = maximum resident set size from GNU `time -v`, one process per row. Baseline = the same "
        "process with its imports and input data but without the gradient (the input array is part of it).\n"
        f"Measured {time.strftime('%Y-%m-%d')} with `python bench/memory.py`.\n"
    )
    print("\n" + text)
    if args.out:
        os.makedirs(os.path.dirname(args.out), exist_ok=True)
        with open(args.out, "w") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
