"""Benchmark: per-point value and gradient of the first seed function over a batch.

    f(x1, x2) = log(x1) + x1*x2 - sin(x2),   X of shape (B, 2), uniform in [1, 3]

Compares, in one process and on the same data,

* gpuad      ``value_and_grad(lambda x: gnp.sum(f(x)))(X)``  (value = the sum, gradient (B, 2));
* hand       hand-written NumPy: per-point values, their sum, and the gradient
             [1/x1 + x2, x1 - cos(x2)] stacked into (B, 2);
* jax jit    ``jit(value_and_grad(lambda x: jnp.sum(f(x))))`` (x64 on, compile excluded);
* jax eager  the same without ``jit``.

Results are checked against the hand-written reference before anything is timed.

Timing: by default the process is pinned to one core and every library to one thread (the
environment variables are set before NumPy or JAX is imported), and each measurement is process
CPU time (``time.process_time``, which also counts any helper thread a library starts). Each of
``--repeats`` repeats times a loop of calls long enough to be well above the clock's resolution;
the table reports the median per call and ratios computed within this run. The "floor" column is
the time to read X and write the gradient once (32 bytes per point in float64) at the copy
bandwidth measured in this process. A second table gives the kernel (system) part of each median:
page faults on memory that glibc returned to the OS and then asked for again, which is where many
short-lived large temporaries cost extra; ``--malloc-tuned`` re-runs with glibc told to keep its
freed memory, to show how much of a gap is that.

    python bench/seed_grad.py [--sizes 1e3,1e5,1e6] [--repeats 7] [--dtype float64|float32]
                              [--out bench/results/seed_grad.md] [--threads 1] [--profile]
                              [--malloc-tuned] [--no-jax]

``--out`` defaults to bench/results/seed_grad.md (float64) or seed_grad_float32.md (float32).
``--profile`` runs cProfile on the gpuad call at the largest size and prints the top 25
functions by tottime, per call, and the time by source file.
"""

from __future__ import annotations

import argparse
import ast
import os
import sys


def _parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="1e3,1e4,1e5,1e6", help="comma-separated batch sizes (1e5 style allowed)")
    p.add_argument("--repeats", type=int, default=7, help="timed repeats per measurement; the median is reported")
    p.add_argument("--min-time", type=float, default=0.05, help="minimum CPU seconds per repeat (calls are looped)")
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    p.add_argument(
        "--out",
        default=None,
        help="markdown file for the table ('' for none; default bench/results/seed_grad[_float32].md)",
    )
    p.add_argument("--threads", type=int, default=1, help="1 (default): pin to core 0 and one thread per library")
    p.add_argument(
        "--malloc-tuned",
        action="store_true",
        help="re-run under glibc malloc settings that keep freed memory (no trim, no mmap for big arrays)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-jax", action="store_true", help="skip JAX even if it is importable")
    p.add_argument(
        "--profile",
        action="store_true",
        help="after the table, cProfile the gpuad call at the largest size and print the top 25 by tottime",
    )
    p.add_argument("--profile-calls", type=int, default=0, help="calls under cProfile (default: about 1 CPU second)")
    args = p.parse_args(argv)
    try:
        args.sizes = [int(float(s)) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        p.error(f"--sizes must be comma-separated numbers such as 1e3,1e5, got {args.sizes!r}")
    if not args.sizes or min(args.sizes) < 1:
        p.error("--sizes needs at least one positive batch size")
    if args.repeats < 1:
        p.error("--repeats must be at least 1")
    if args.threads < 1:
        p.error("--threads must be at least 1")
    if args.out is None:
        suffix = "" if args.dtype == "float64" else f"_{args.dtype}"
        args.out = f"bench/results/seed_grad{suffix}{'_malloc_tuned' if args.malloc_tuned else ''}.md"
    return args


ARGS = _parse_args() if __name__ == "__main__" else None

# glibc reads these when the process starts, so --malloc-tuned re-executes the interpreter.
_MALLOC_ENV = {"MALLOC_TRIM_THRESHOLD_": "1000000000", "MALLOC_MMAP_THRESHOLD_": "33554432"}  # 32 MiB: glibc's maximum
if ARGS is not None and ARGS.malloc_tuned and any(os.environ.get(k) != v for k, v in _MALLOC_ENV.items()):
    os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **_MALLOC_ENV})

# Thread settings only take effect if they are in the environment before the libraries load.
if ARGS is not None:
    n = str(ARGS.threads)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        os.environ[var] = n
    if ARGS.threads == 1:
        os.environ["XLA_FLAGS"] = (
            os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        ).strip()
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {0})  # threads started later inherit this

import cProfile  # noqa: E402
import gc  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from typing import Any, Callable  # noqa: E402

import numpy as np  # noqa: E402

import gpuad  # noqa: E402
import gpuad.numpy as gnp  # noqa: E402

try:
    from tqdm import tqdm
except ImportError:  # the progress bar is a nicety
    tqdm = None

jax = jnp = None


def _load_jax() -> bool:
    global jax, jnp
    try:
        import jax as _jax

        _jax.config.update("jax_enable_x64", True)
        import jax.numpy as _jnp
    except Exception as exc:  # not installed, or no usable CPU backend
        print(f"# JAX not available ({type(exc).__name__}: {exc}); its columns are left empty", file=sys.stderr)
        return False
    jax, jnp = _jax, _jnp
    return True


# ---------------------------------------------------------------------------------------------
# The workload, four ways
# ---------------------------------------------------------------------------------------------


def f_gpuad(x: Any) -> Any:
    x1, x2 = x[..., 0], x[..., 1]
    return gnp.log(x1) + x1 * x2 - gnp.sin(x2)


gpuad_vg = gpuad.value_and_grad(lambda x: gnp.sum(f_gpuad(x)))


def hand_vg(X: np.ndarray) -> tuple[Any, np.ndarray]:
    """Per-point values, their sum, and the (B, 2) gradient, in plain NumPy with few temporaries."""
    x1, x2 = X[:, 0], X[:, 1]
    v = np.log(x1)
    v += x1 * x2
    v -= np.sin(x2)
    total = v.sum()
    g = np.empty_like(X)
    g0, g1 = g[:, 0], g[:, 1]
    np.divide(1, x1, out=g0)
    g0 += x2
    np.cos(x2, out=g1)
    np.subtract(x1, g1, out=g1)
    return total, g


def _f_jax(x: Any) -> Any:
    x1, x2 = x[..., 0], x[..., 1]
    return jnp.log(x1) + x1 * x2 - jnp.sin(x2)


def make_jax_fns() -> tuple[Callable, Callable]:
    vg = jax.value_and_grad(lambda x: jnp.sum(_f_jax(x)))
    jitted = jax.jit(vg)

    def run_jit(x):
        return jax.block_until_ready(jitted(x))

    def run_eager(x):
        return jax.block_until_ready(vg(x))

    return run_jit, run_eager


# ---------------------------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------------------------


def _loop_time(fn: Callable, x: Any, number: int) -> tuple[float, float]:
    """(process CPU seconds, of which kernel seconds) for ``number`` calls of ``fn(x)``."""
    s0 = resource.getrusage(resource.RUSAGE_SELF).ru_stime
    t0 = time.process_time()
    for _ in range(number):
        fn(x)
    t1 = time.process_time()
    s1 = resource.getrusage(resource.RUSAGE_SELF).ru_stime
    return t1 - t0, s1 - s0


def measure(fn: Callable, x: Any, repeats: int, min_time: float) -> tuple[float, float]:
    """Median process CPU seconds per call of ``fn(x)`` (and the median kernel part of it), over
    ``repeats`` repeats of a loop whose length is chosen so that one repeat takes at least
    ``min_time``."""
    fn(x)  # warm-up: compilation, first allocations, caches
    gc.collect()
    gc.disable()  # as timeit does: a collection landing in one library's loop is noise
    try:
        number = 1
        t, k = _loop_time(fn, x, number)
        while t < min_time:  # grow the loop until one repeat is long enough
            number = max(number * 2, int(number * 1.2 * min_time / max(t, 1e-7)))
            t, k = _loop_time(fn, x, number)
        times, kernel = [t / number], [k / number]  # the calibrating run counts as the first repeat
        for _ in range(repeats - 1):
            t, k = _loop_time(fn, x, number)
            times.append(t / number)
            kernel.append(k / number)
    finally:
        gc.enable()
    return statistics.median(times), statistics.median(kernel)


def copy_bandwidth(nbytes: int = 1 << 27) -> float:
    """Bytes moved per second (read + write) by a large ``np.copyto`` in this process."""
    a = np.ones(nbytes // 8)
    b = np.empty_like(a)
    np.copyto(b, a)
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        np.copyto(b, a)
        best = min(best, time.perf_counter() - t0)
    return 2 * a.nbytes / best


def make_batch(B: int, dtype: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(1.0, 3.0, size=(B, 2)).astype(dtype)


def check(X: np.ndarray, jax_fns: tuple[Callable, Callable] | None, dtype: str) -> None:
    """gpuad's (and JAX's) value and gradient against the hand-written reference."""
    rtol_g, rtol_v = (1e-12, 1e-12) if dtype == "float64" else (1e-5, 1e-4)
    ref_v, ref_g = hand_vg(X)
    results = {"gpuad": gpuad_vg(X)}
    if jax_fns is not None:
        xj = jnp.asarray(X)
        results["jax jit"] = jax_fns[0](xj)
        results["jax eager"] = jax_fns[1](xj)
    for name, (v, g) in results.items():
        v, g = np.asarray(v), np.asarray(g)
        if g.shape != X.shape or g.dtype != X.dtype:
            raise AssertionError(f"{name}: gradient {g.shape} {g.dtype}, expected {X.shape} {X.dtype}")
        np.testing.assert_allclose(v, ref_v, rtol=rtol_v, err_msg=f"{name}: value (sum) differs from hand")
        np.testing.assert_allclose(g, ref_g, rtol=rtol_g, err_msg=f"{name}: gradient differs from hand")


# ---------------------------------------------------------------------------------------------
# Running and reporting
# ---------------------------------------------------------------------------------------------


def _ms(t: float | None) -> str:
    if t is None:
        return "-"
    ms = t * 1e3
    return f"{ms:.4f}" if ms < 0.1 else f"{ms:.3f}" if ms < 10 else f"{ms:.1f}"


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None else f"{a / b:.2f}"


def run_table(args: argparse.Namespace, have_jax: bool) -> tuple[list[dict[str, Any]], float]:
    jax_fns = make_jax_fns() if have_jax else None
    bw = copy_bandwidth()
    bytes_per_point = 2 * 2 * np.dtype(args.dtype).itemsize  # read X, write the gradient
    rows = []
    libs = ["gpuad", "hand"] + (["jax_jit", "jax_eager"] if have_jax else [])
    steps = [(B, lib) for B in args.sizes for lib in libs]
    bar = tqdm(total=len(steps), file=sys.stderr, desc="seed_grad", leave=False, disable=None) if tqdm else None
    for B in args.sizes:
        X = make_batch(B, args.dtype, args.seed)
        check(X, jax_fns, args.dtype)
        xj = jnp.asarray(X) if have_jax else None  # on the JAX device once, outside the clock
        fns = {"gpuad": (gpuad_vg, X), "hand": (hand_vg, X)}
        if have_jax:
            fns["jax_jit"] = (jax_fns[0], xj)
            fns["jax_eager"] = (jax_fns[1], xj)
        row: dict[str, Any] = {"B": B, "floor": B * bytes_per_point / bw}
        for lib in libs:
            if bar is not None:
                bar.set_postfix_str(f"B={B:.0e} {lib}")
            fn, x = fns[lib]
            row[lib], row[lib + "_sys"] = measure(fn, x, args.repeats, args.min_time)
            if bar is not None:
                bar.update()
        rows.append(row)
        del X, xj, fns
    if bar is not None:
        bar.close()
    return rows, bw


def format_table(rows: list[dict[str, Any]], args: argparse.Namespace, bw: float) -> str:
    head = [
        "| B | gpuad ms | hand ms | jax jit ms | jax eager ms | gpuad/hand | jax_jit/hand | jax_eager/hand | floor ms |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    body = []
    for r in rows:
        g, h, jj, je = r["gpuad"], r["hand"], r.get("jax_jit"), r.get("jax_eager")
        body.append(
            f"| {r['B']:.0e} | {_ms(g)} | {_ms(h)} | {_ms(jj)} | {_ms(je)} | {_ratio(g, h)} | "
            f"{_ratio(jj, h)} | {_ratio(je, h)} | {_ms(r['floor'])} |"
        )
    sys_head = [
        "",
        "Kernel (system) CPU time inside those medians, ms per call: page faults and zeroing of "
        "memory the allocator handed back to the OS and asked for again.",
        "",
        "| B | gpuad sys ms | hand sys ms | jax jit sys ms | jax eager sys ms |",
        "|---:|---:|---:|---:|---:|",
    ]
    sys_body = [
        f"| {r['B']:.0e} | {_ms(r['gpuad_sys'])} | {_ms(r['hand_sys'])} | {_ms(r.get('jax_jit_sys'))} | "
        f"{_ms(r.get('jax_eager_sys'))} |"
        for r in rows
    ]
    jax_ver = f", jax {jax.__version__}" if jax is not None else ", no jax"
    pin = "pinned to core 0, 1 thread per library" if args.threads == 1 else f"{args.threads} threads, not pinned"
    meta = [
        "",
        f"seed function 1, value_and_grad over X ({args.dtype}, (B, 2), uniform [1, 3], seed {args.seed}). "
        f"Median of {args.repeats} repeats of process CPU time per call; {pin}.",
        f"{platform.python_implementation()} {platform.python_version()}, numpy {np.__version__}{jax_ver}, "
        f"gpuad {gpuad.__version__}; {platform.machine()} {_cpu_name()}; "
        f"floor = read X + write gradient at {bw / 1e9:.1f} GB/s (np.copyto).",
    ]
    if args.malloc_tuned:
        meta.append(f"glibc malloc tuned: {_MALLOC_ENV}.")
    return "\n".join(head + body + meta + sys_head + sys_body)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def profile_gpuad(args: argparse.Namespace) -> None:
    """cProfile the gpuad call at the largest size; per-call times in microseconds.

    Entries are kept per code object (pstats would merge two lambdas defined on one line, as the
    impl and the rule of a primitive are), and lambdas are labelled with their arguments:
    ``(xp, ...)`` is a primitive's impl, ``(g, ans, ...)`` one of its rules."""
    B = max(args.sizes)
    X = make_batch(B, args.dtype, args.seed)
    gpuad_vg(X)
    calls = args.profile_calls
    if calls <= 0:  # about one CPU second of calls
        t = measure(gpuad_vg, X, 1, 0.05)[0]
        calls = max(1, min(20000, int(1.0 / t)))
    prof = cProfile.Profile()
    gc.collect()
    prof.enable()
    for _ in range(calls):
        gpuad_vg(X)
    prof.disable()
    entries = []
    for e in prof.getstats():
        entries.append((e.inlinetime, e.totaltime, e.callcount, _label(e.code)))
    total = sum(e[0] for e in entries)
    print(f"\n## cProfile of gpuad value_and_grad, B={B:.0e} {args.dtype}, {calls} calls")
    print(f"profiled time per call: {total / calls * 1e6:.1f} us (profiler overhead included)\n")
    entries.sort(key=lambda e: -e[0])
    print(f"{'tottime us/call':>16} {'%':>6} {'cumtime us/call':>16} {'ncalls/call':>12}  function")
    for tt, ct, nc, name in entries[:25]:
        print(f"{tt / calls * 1e6:16.2f} {100 * tt / total:6.1f} {ct / calls * 1e6:16.2f} {nc / calls:12.1f}  {name}")
    by_file: dict[str, float] = {}
    for e in prof.getstats():
        key = "C builtins" if isinstance(e.code, str) else _short(e.code.co_filename)
        by_file[key] = by_file.get(key, 0.0) + e.inlinetime
    print("\ntottime by file (us per call):")
    for key, tt in sorted(by_file.items(), key=lambda kv: -kv[1])[:12]:
        print(f"  {tt / calls * 1e6:10.2f}  {100 * tt / total:5.1f}%  {key}")
    # The fixed cost of one call, where array work is negligible, measured without the profiler.
    x1 = make_batch(1, args.dtype, args.seed)
    g1, h1 = measure(gpuad_vg, x1, args.repeats, args.min_time)[0], measure(hand_vg, x1, args.repeats, args.min_time)[0]
    print(
        f"\nfixed cost per call (B=1, no profiler): gpuad {g1 * 1e6:.1f} us, hand {h1 * 1e6:.1f} us, "
        f"difference {(g1 - h1) * 1e6:.1f} us"
    )


def _label(code: Any) -> str:
    if isinstance(code, str):  # a C function
        return code
    name = code.co_name
    if name == "<lambda>":
        name += "(" + ", ".join(code.co_varnames[: code.co_argcount]) + ")"
        prim = _primitive_at(code.co_filename, code.co_firstlineno)
        if prim:
            name += f" [{prim}]"
    return f"{_short(code.co_filename)}:{code.co_firstlineno}({name})"


_PRIM_LINES: dict[str, dict[int, str]] = {}


def _primitive_at(file: str, line: int) -> str | None:
    """The primitive whose table entry holds a lambda starting at ``file:line`` (None outside the
    table), found by parsing the file once: every lambda inside ``_elementwise("name", ...)``,
    ``_nondiff("name", ...)`` or ``Primitive("name", ...)`` belongs to that name."""
    if not file.endswith("primitives.py"):
        return None
    if file not in _PRIM_LINES:
        table: dict[int, str] = {}
        try:
            tree = ast.parse(open(file).read())
        except (OSError, SyntaxError):
            tree = None
        for node in ast.walk(tree) if tree is not None else ():
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", None) in ("_elementwise", "_nondiff", "Primitive")
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                for sub in ast.walk(node):
                    if isinstance(sub, ast.Lambda):
                        table[sub.lineno] = node.args[0].value
        _PRIM_LINES[file] = table
    return _PRIM_LINES[file].get(line)


def _short(file: str) -> str:
    for marker in ("/gpuad/", "/site-packages/"):
        if marker in file:
            return file.split(marker, 1)[1] if marker != "/gpuad/" else "gpuad/" + file.split(marker, 1)[1]
    return os.path.basename(file)


def main() -> int:
    args = ARGS
    have_jax = (not args.no_jax) and _load_jax()
    rows, bw = run_table(args, have_jax)
    table = format_table(rows, args, bw)
    print(table)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as fh:
            fh.write(f"# seed_grad ({args.dtype})\n\n{table}\n")
        print(f"\n(written to {args.out})", file=sys.stderr)
    if args.profile:
        profile_gpuad(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
