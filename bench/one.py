"""Time one workload at one size for gpuad alone, in a process of its own:
``python -m bench.one elem16_jvp 1e4 [float64]``.

The suite (``python -m bench``) times every workload in one process, so a cell can carry the memory
state the workloads before it left (glibc's dynamic mmap threshold makes the same code run at two
speeds); to compare two checkouts, run this alternately on each, one pinned core, with the
allocator's thresholds fixed:
``MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=1073741824 OMP_NUM_THREADS=1 taskset -c 0``.
Prints the fastest of 7 repeats (process CPU time per call, each repeat looping for 0.15 s).
"""

from __future__ import annotations

import sys
import time

import numpy as np

from .libs import Gpuad
from .workloads import WORKLOADS


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[0] not in WORKLOADS:
        raise SystemExit(f"usage: python -m bench.one WORKLOAD B [DTYPE]; workloads: {', '.join(WORKLOADS)}")
    w, size = WORKLOADS[argv[0]], int(float(argv[1]))
    dtype = argv[2] if len(argv) > 2 else "float64"
    run, _ = Gpuad().build(w, w.data(size, dtype, np.random.default_rng(0)))
    run()
    best = float("inf")
    for _ in range(7):
        calls, start = 0, time.process_time()
        while time.process_time() - start < 0.15:
            run()
            calls += 1
        best = min(best, (time.process_time() - start) / calls)
    print(f"{w.name} B={size} {dtype}: {best * 1e3:.3f} ms per call")


if __name__ == "__main__":
    main(sys.argv[1:])
