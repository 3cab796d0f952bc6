"""The benchmark suite: ``python -m bench [options]`` (run from the repository root).

    python -m bench                    # everything installed, all workloads, B = 1e3 .. 4e6, both dtypes
    python -m bench --quick            # under a minute: gpuad and hand NumPy only, small sizes (CI runs it)
    python -m bench --tasks seed1,gmm_grad --sizes 1e5,1e6 --dtypes float64 --libs gpuad,hand,jax-jit
    python -m bench --cost             # also count gpuad's array operations and bytes (the GPU estimate)
    python -m bench --merge a,b        # one report from runs written with --out a and --out b

Every library's result is checked against the hand-written NumPy derivative before it is timed.
With ``--threads 1`` (the default) the process is pinned to one core and every library to one
thread, and the time of a call is process CPU time (``time.process_time``: it counts every thread),
median over ``--repeats``. Results go to ``--out`` (default bench/results, or bench/results/quick
for --quick): suite.md, suite.csv, suite.json, machine.md, and suite_<dtype>.png plots.
"""

from __future__ import annotations

import argparse
import os
import sys

DEFAULT_SIZES = "1e3,1e4,1e5,1e6,4e6"
QUICK_SIZES = "1e3,1e4"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="gpuad and hand NumPy only, sizes 1e3 and 1e4, 2 repeats")
    p.add_argument("--tasks", default=None, help="comma-separated workload names (default: all)")
    p.add_argument("--sizes", default=None, help=f"comma-separated batch sizes (default {DEFAULT_SIZES})")
    p.add_argument("--dtypes", default="float64,float32", help="comma-separated: float64, float32")
    p.add_argument("--libs", default=None, help="comma-separated libraries (default: every one installed)")
    p.add_argument("--threads", type=int, default=1, help="1: pin to one core, one thread per library")
    p.add_argument("--repeats", type=int, default=None, help="timed repeats per measurement (default 5; 2 with --quick)")
    p.add_argument("--min-time", type=float, default=None, help="CPU seconds per repeat; calls are looped (default 0.1)")
    p.add_argument("--out", default=None, help="directory for the results")
    p.add_argument("--cost", action="store_true", help="count gpuad's array operations and bytes, and print the GPU estimate")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--merge", default=None, metavar="DIRS",
                   help="comma-separated result directories of earlier runs: write one report of them all to --out")
    args = p.parse_args(argv)
    if args.threads < 1:
        p.error("--threads must be at least 1")
    sizes = args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES)
    try:
        args.sizes = sorted({int(float(s)) for s in sizes.split(",") if s.strip()})
    except ValueError:
        p.error(f"--sizes must be comma-separated numbers such as 1e3,1e5, got {sizes!r}")
    if not args.sizes or args.sizes[0] < 1:
        p.error("--sizes needs at least one positive batch size")
    args.dtypes = [s.strip() for s in args.dtypes.split(",") if s.strip()]
    for dt in args.dtypes:
        if dt not in ("float64", "float32"):
            p.error(f"--dtypes: {dt!r} is not float64 or float32")
    if args.repeats is None:
        args.repeats = 2 if args.quick else 5
    if args.repeats < 1:
        p.error("--repeats must be at least 1")
    args.min_time = args.min_time if args.min_time is not None else (0.01 if args.quick else 0.1)
    if args.merge is not None:
        args.merge = [d.strip() for d in args.merge.split(",") if d.strip()]
        if not args.merge:
            p.error("--merge needs at least one result directory")
        for d in args.merge:
            if not os.path.isfile(os.path.join(d, "suite.json")):
                p.error(f"--merge: {d!r} holds no suite.json; write one there with python -m bench --out {d}")
    if args.out is None:
        here = os.path.dirname(os.path.abspath(__file__))
        args.out = os.path.join(here, "results", "quick") if args.quick else os.path.join(here, "results")
    return args


def pin_threads(threads: int) -> None:
    """Thread settings must be in the environment before NumPy, JAX or torch is imported."""
    n = str(threads)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        os.environ[var] = n
    if threads == 1:
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false").strip()
        if hasattr(os, "sched_setaffinity"):
            try:
                os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
            except OSError:
                pass


# What the bench extra (pip install -e ".[bench]") adds, and what the suite does without it.
EXTRAS = {"tqdm": "no progress bar", "matplotlib": "no plots"}


def missing_extras(plots: bool = True, progress: bool = True) -> str | None:
    """A note naming the bench extra's packages that do not import here and what the run leaves
    out without them (None: nothing missing); a package the run does not need (``plots``: the
    plots are wanted; ``progress``: a bar is shown) is not asked for. The suite runs either way."""
    missing = []
    for name, without in EXTRAS.items():
        if (name == "matplotlib" and not plots) or (name == "tqdm" and not progress):
            continue
        try:
            __import__(name)
        except ImportError as exc:
            missing.append(f"{without} ({name} does not import: {exc})")
    if not missing:
        return None
    return "note: running with " + " and ".join(missing) + '; pip install -e ".[bench]" adds them'


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.merge:
        pin_threads(args.threads)  # before anything imports NumPy (matplotlib does)
    note = missing_extras(plots=not args.no_plots, progress=not args.merge)
    if note:
        print(note, flush=True)
    if args.merge:
        from . import report

        rows, cost_rows = report.merge(args.merge, args.out, plots=not args.no_plots)
        print(report.summary_text(rows, cost_rows))
        print(f"results of {len(args.merge)} runs merged into {args.out}")
        return 0
    from .run import run_suite  # imports NumPy: after the thread settings

    return run_suite(args)


if __name__ == "__main__":
    sys.exit(main())
