"""The runner: data, correctness check, timing and results for every (workload, dtype, size, library)."""

from __future__ import annotations

import gc
import os
import platform
import resource
import statistics
import sys
import time
from typing import Any

import numpy as np

from .libs import LIBRARIES
from .workloads import WORKLOADS

try:
    from tqdm import tqdm
except ImportError:  # the progress bar is a nicety
    tqdm = None

# Agreement with the hand-written reference: relative to the reference's scale, per dtype.
TOLERANCE = {"float64": 1e-8, "float32": 2e-3}


def _nbytes(tree: Any) -> int:
    if isinstance(tree, dict):
        return sum(_nbytes(v) for v in tree.values())
    if isinstance(tree, (tuple, list)):
        return sum(_nbytes(v) for v in tree)
    return int(getattr(tree, "nbytes", 0))


def copy_bandwidth(nbytes: int = 1 << 28) -> float:
    """Bytes per second of np.copyto between two large arrays (read + write counted)."""
    a = np.ones(nbytes // 8)
    b = np.empty_like(a)
    np.copyto(b, a)
    best = min(_cpu_time(lambda: np.copyto(b, a)) for _ in range(5))
    return 2 * a.nbytes / best


def _cpu_time(fn) -> float:
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def _relative_error(a, b) -> float:
    """Largest difference, relative to the reference's scale (at least 1)."""
    if not np.size(b):
        return 0.0
    scale = max(1.0, float(np.max(np.abs(b))))
    return float(np.max(np.abs(np.asarray(a).astype(np.float64) - b))) / scale


def _as_float64(tree: Any) -> Any:
    if isinstance(tree, dict):
        return {k: _as_float64(v) for k, v in tree.items()}
    if isinstance(tree, (tuple, list)):
        return type(tree)(_as_float64(v) for v in tree)
    if isinstance(tree, np.ndarray) and np.issubdtype(tree.dtype, np.floating):
        return tree.astype(np.float64)
    return tree


def reference(w, data, dtype: str) -> tuple[tuple, tuple, list[float]]:
    """The hand-written results, what every library's result is checked against, and a tolerance
    per result.

    In float64 that is the hand-written derivative, to TOLERANCE. In float32 it is the hand-written
    derivative evaluated in float64 on the same data, and a result passes within TOLERANCE or within
    10x the error of the hand-written float32 code, whichever is larger: a sum over millions of
    points that cancels (the GMM's mixture-weight gradient at B = 4e6) is only as exact as float32
    accumulation allows, in every library alike."""
    ref = w.hand(data)
    if dtype == "float64":
        return ref, ref, [TOLERANCE[dtype]] * len(ref)
    ref64 = w.hand(_as_float64(data))
    return ref, ref64, [max(TOLERANCE[dtype], 10 * _relative_error(a, b)) for a, b in zip(ref, ref64)]


def check(out: tuple, ref: tuple, dtype: str, tolerances: list[float] | None = None) -> str | None:
    """None when ``out`` matches the reference (to ``tolerances``, default TOLERANCE), else what differs."""
    if len(out) != len(ref):
        return f"{len(out)} results, expected {len(ref)}"
    for i, (a, b) in enumerate(zip(out, ref)):
        a = np.asarray(a)
        if a.shape != np.shape(b):
            return f"result {i} has shape {a.shape}, expected {np.shape(b)}"
        if str(a.dtype) != dtype:
            return f"result {i} has dtype {a.dtype}, expected {dtype}"
        err = _relative_error(a, b)
        tol = TOLERANCE[dtype] if tolerances is None else tolerances[i]
        if not err <= tol:
            return f"result {i} differs from the hand-written reference by {err:.2e} (relative; tolerance {tol:.1e})"
    return None


def calibrate(run, min_time: float) -> int:
    """Calls per timed repeat: doubled until one repeat takes at least ``min_time`` CPU seconds."""
    calls = 1
    t = _cpu_time(run)
    while t * calls < min_time and calls < 1 << 20:
        calls *= 2
    return calls


def time_repeat(run, calls: int) -> tuple[float, float]:
    """CPU and system time per call over one repeat of ``calls`` calls."""
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.process_time()
    for _ in range(calls):
        run()
    t1 = time.process_time()
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    return (t1 - t0) / calls, (r1.ru_stime - r0.ru_stime) / calls


def summarize(per_call: list[float], sys_per_call: list[float], calls: int) -> dict:
    """The median of the repeats, and their spread relative to it."""
    med = statistics.median(per_call)
    return {"seconds": med, "sys_seconds": statistics.median(sys_per_call), "calls": calls,
            "spread": (max(per_call) - min(per_call)) / max(med, 1e-12)}


def time_calls(run, repeats: int, min_time: float) -> dict:
    """Median CPU time per call over ``repeats`` repeats, each looping calls for >= min_time."""
    calls = calibrate(run, min_time)
    times = [time_repeat(run, calls) for _ in range(repeats)]
    return summarize([t for t, _ in times], [s for _, s in times], calls)


def time_interleaved(runs: list, repeats: int, min_time: float) -> list[dict]:
    """:func:`time_calls` for several libraries on one workload, their repeats taken in turn
    (library 1, 2, ..., 1, 2, ...): a machine whose speed drifts (a shared VM) slows every library
    alike instead of whichever happened to be measured then, so the ratios stay honest."""
    calls = [calibrate(run, min_time) for run in runs]
    per_call = [[] for _ in runs]
    sys_per_call = [[] for _ in runs]
    for _ in range(repeats):
        for i, run in enumerate(runs):
            t, st = time_repeat(run, calls[i])
            per_call[i].append(t)
            sys_per_call[i].append(st)
    return [summarize(p, s, c) for p, s, c in zip(per_call, sys_per_call, calls)]


# Up to this batch size every library of a cell is built before any is timed, and their repeats
# are interleaved; above it one library's state at a time (their working memory would add up).
INTERLEAVE_MAX_B = 100_000


def machine_description(args, bandwidth: float) -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = {"python": platform.python_version(), "numpy": np.__version__}
    for mod in ("gpuad", "jax", "torch", "autograd", "cupy"):
        m = sys.modules.get(mod)
        if m is not None:
            versions[mod] = getattr(m, "__version__", "?")
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else 0
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem / 2**30, 1),
        "platform": platform.platform(),
        "threads": args.threads,
        "pinned": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "copy_bandwidth_gb_s": round(bandwidth / 1e9, 2),
        "versions": versions,
        "date": time.strftime("%Y-%m-%d"),
        "command": "python -m bench " + " ".join(sys.argv[1:]),
    }


def run_suite(args) -> int:
    from . import report

    tasks = list(WORKLOADS) if args.tasks is None else [t.strip() for t in args.tasks.split(",") if t.strip()]
    for t in tasks:
        if t not in WORKLOADS:
            print(f"--tasks: unknown workload {t!r}; choose from {', '.join(WORKLOADS)}", file=sys.stderr)
            return 2
    if args.libs is None:
        names = ["gpuad", "gpuad-jit", "hand"] if args.quick else list(LIBRARIES)
    else:
        names = [n.strip() for n in args.libs.split(",") if n.strip()]
    for n in names:
        if n not in LIBRARIES:
            print(f"--libs: unknown library {n!r}; choose from {', '.join(LIBRARIES)}", file=sys.stderr)
            return 2
    if "hand" not in names:
        names.append("hand")  # the reference of every ratio
    libs, notes = [], []
    for n in names:
        ok, why = LIBRARIES[n].available()
        if ok:
            libs.append(LIBRARIES[n])
        else:
            notes.append(f"{n} skipped: {why}")
            print(f"note: {n} skipped: {why}")

    import gpuad  # noqa: F401  (for the versions in the machine description)

    bandwidth = copy_bandwidth(1 << 26 if args.quick else 1 << 28)
    machine = machine_description(args, bandwidth)
    grid = [(w, dt, B) for w in tasks for dt in args.dtypes for B in args.sizes]
    total = sum(len(libs) for w, dt, B in grid if B <= WORKLOADS[w].max_size)
    bar = tqdm(total=total, desc="bench", unit="run", file=sys.stderr) if tqdm is not None else None
    rows: list[dict] = []
    failures = 0
    for wname, dtype, B in grid:
        w = WORKLOADS[wname]
        if B > w.max_size:
            notes.append(f"{wname}: B = {B:g} skipped (above its max_size {w.max_size:g}, memory)")
            continue
        data = w.data(B, dtype, np.random.default_rng(args.seed))
        hand_out, ref, tolerances = reference(w, data, dtype)
        io_bytes = _nbytes(data) + _nbytes(hand_out)
        interleave = B <= INTERLEAVE_MAX_B
        pending = []  # (row, run) of checked libraries waiting for interleaved timing
        for lib in libs:
            if bar is not None:
                bar.set_postfix_str(f"{wname} {dtype} B={B:g} {lib.name}")
            row = {"workload": wname, "kind": w.kind, "dtype": dtype, "B": B, "lib": lib.name, "io_bytes": io_bytes,
                   "floor_seconds": io_bytes / bandwidth}
            try:
                run, to_numpy = lib.build(w, data)
                run()  # the first call compiles or records (jit); the checked result is a later call's
                problem = check(to_numpy(run()), ref, dtype, tolerances)
            except Exception as exc:  # a peer that cannot do this workload is reported, not fatal
                problem = f"{type(exc).__name__}: {str(exc)[:200]}"
            if problem is None:
                if interleave:
                    pending.append((row, run))
                else:
                    row.update(time_calls(run, args.repeats, args.min_time))
                    row["points_per_second"] = B / row["seconds"]
                row["ok"] = True
            else:
                row["ok"] = False
                row["error"] = problem
                if lib.name.startswith("gpuad") or lib.name == "hand":  # ours must be right
                    failures += 1
                print(f"\n{wname} {dtype} B={B:g} {lib.name}: {problem}", file=sys.stderr)
            rows.append(row)
            run = to_numpy = None
            if not interleave:
                gc.collect()
            if bar is not None:
                bar.update(1)
        if pending:
            if bar is not None:
                bar.set_postfix_str(f"{wname} {dtype} B={B:g} timing {len(pending)} libraries in turn")
            for (row, _), timing in zip(pending, time_interleaved([r for _, r in pending], args.repeats, args.min_time)):
                row.update(timing)
                row["points_per_second"] = B / row["seconds"]
            pending = None
            gc.collect()
        del data, ref, hand_out
        gc.collect()
    if bar is not None:
        bar.close()

    cost_rows = []
    if args.cost:
        from .cost import count_costs

        cost_rows = count_costs(tasks, args.dtypes, sizes=[min(args.sizes[-1], 100_000)], seed=args.seed)

    os.makedirs(args.out, exist_ok=True)
    report.write_all(args.out, rows, cost_rows, machine, notes, plots=not args.no_plots)
    print(report.summary_text(rows, cost_rows))
    print(f"results written to {args.out}")
    return 1 if failures else 0
