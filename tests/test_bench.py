"""The benchmark suite stays runnable: ``python -m bench --quick`` checks every workload's gpuad
result against its hand-written NumPy derivative and writes the report; bad options are refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _bench(*args, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "bench", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.slow  # every workload in a subprocess (~10 s): in the default run, not in the quick subset
def test_quick_run_checks_every_workload_and_writes_the_report(tmp_path):
    out = tmp_path / "results"
    proc = _bench("--quick", "--no-plots", "--repeats", "1", "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads((out / "suite.json").read_text())
    runs = data["runs"]
    workloads = {r["workload"] for r in runs}
    assert workloads == {"seed1", "seed2", "elem16_grad", "elem16_jvp", "mlp_weights", "mlp_inputs", "ba_jacobian", "gmm_grad", "gauss3_grad", "hess4", "hvp3"}
    assert {r["lib"] for r in runs} == {"gpuad", "gpuad-jit", "hand"}
    assert all(r["ok"] for r in runs), [r for r in runs if not r["ok"]]
    assert all(r["seconds"] > 0 for r in runs)
    md = (out / "suite.md").read_text()
    assert "## seed1" in md and "gpuad/hand" in md and "seed1 value and gradient at B = 1e3, float64, gpuad-jit:" in md
    assert (out / "suite.csv").read_text().splitlines()[0].startswith("workload,kind,dtype,B,lib")
    assert "copy_bandwidth_gb_s" in (out / "machine.md").read_text()


def test_runs_in_pieces_merge_into_one_report(tmp_path):
    """Two runs (one per dtype, as when each is pinned to its own core) merge into one report that
    holds every measurement of both; a measurement repeated later replaces the earlier one."""
    a, b, out = tmp_path / "a", tmp_path / "b", tmp_path / "merged"
    common = ["--quick", "--no-plots", "--repeats", "1", "--tasks", "seed1", "--libs", "gpuad,hand", "--cost"]
    for d, dt in ((a, "float64"), (b, "float32")):
        proc = _bench(*common, "--dtypes", dt, "--out", str(d))
        assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = _bench("--merge", f"{a},{b},{b}", "--out", str(out), "--no-plots")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    pieces = [json.loads((d / "suite.json").read_text()) for d in (a, b)]
    merged = json.loads((out / "suite.json").read_text())
    key = lambda r: (r["workload"], r["dtype"], r["B"], r["lib"])  # noqa: E731
    assert sorted(map(key, merged["runs"])) == sorted(key(r) for p in pieces for r in p["runs"])
    assert {c["dtype"] for c in merged["costs"]} == {"float64", "float32"}
    md = (out / "suite.md").read_text()
    assert "seed1 value and gradient at B = 1e3, float64, gpuad:" in md and "B = 1e3, float32, gpuad:" in md
    assert pieces[0]["machine"]["command"] in merged["machine"]["command"]
    assert pieces[1]["machine"]["command"] in merged["machine"]["command"]
    # Which run gave which measurements: one line per run that still has some in the report.
    by_run = merged["machine"]["pieces"]
    assert len(by_run) == 2 and "(float64)" in by_run[0] and "(float32)" in by_run[1]
    assert "B = 1e3" in by_run[0] and "Measurements by run" in md
    assert "  - B = 1e3" in (out / "machine.md").read_text()


def test_a_run_whose_measurements_were_all_replaced_leaves_the_report(tmp_path):
    """Merging a run with a later one that repeats every measurement: the report names the later
    run alone (its command and date), with no per-run breakdown."""
    a, b, out = tmp_path / "a", tmp_path / "b", tmp_path / "merged"
    for d in (a, b):
        proc = _bench("--quick", "--no-plots", "--repeats", "1", "--tasks", "seed1", "--libs", "gpuad", "--dtypes", "float64", "--out", str(d))
        assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = _bench("--merge", f"{a},{b}", "--out", str(out), "--no-plots")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    machine = json.loads((out / "suite.json").read_text())["machine"]
    later = json.loads((b / "suite.json").read_text())["machine"]
    assert machine["command"] == later["command"] and str(a) not in machine["command"]
    assert "pieces" not in machine


def test_float32_results_are_checked_against_float64_to_the_accuracy_float32_allows():
    """A float32 sum over 1e6 points that cancels is far from exact in every library: the check
    compares with the float64 evaluation and allows 10x the hand-written float32 code's own error,
    no more; float64 keeps the fixed tolerance."""
    sys.path.insert(0, ROOT)
    try:
        from bench.run import TOLERANCE, check, reference
    finally:
        sys.path.remove(ROOT)
    import numpy as np

    class Cancelling:
        @staticmethod
        def hand(d):
            X = d["X"]
            return (np.sum(X) - X.dtype.type(X.size * 1000.0), 2 * X)

    X = np.random.default_rng(0).uniform(999.0, 1001.0, 10**6).astype(np.float32)
    hand32, ref, tols = reference(Cancelling, {"X": X}, "float32")
    assert ref[0].dtype == np.float64 and ref[0] == np.sum(X.astype(np.float64)) - 1e9
    own_error = abs(float(hand32[0]) - float(ref[0])) / max(1.0, abs(float(ref[0])))
    assert own_error > TOLERANCE["float32"]  # the premise: float32 cannot do better here
    assert tols == [10 * own_error, TOLERANCE["float32"]]
    assert check(hand32, ref, "float32", tols) is None
    off = (np.float32(ref[0] + 100 * own_error * max(1.0, abs(float(ref[0])))), hand32[1])
    assert "result 0 differs from the hand-written reference" in check(off, ref, "float32", tols)
    assert "result 1 has dtype float64, expected float32" in check((hand32[0], ref[1]), ref, "float32", tols)

    X64 = X.astype(np.float64)
    hand64, ref64, tols64 = reference(Cancelling, {"X": X64}, "float64")
    assert hand64 is ref64 and tols64 == [TOLERANCE["float64"]] * 2


def test_cost_counter_counts_operations_and_bytes(monkeypatch):
    """The instrumented run sees every array operation: the hand-written seed1 derivative is
    exactly log, multiply, add, sin, subtract (the value) and divide, add, cos, subtract (the
    gradient, written into one empty array)."""
    sys.path.insert(0, ROOT)
    try:
        from bench.cost import count_costs
    finally:
        sys.path.remove(ROOT)
    monkeypatch.delenv("GPUAD_JIT")  # gpuad-jit compiles here (see conftest)
    (row,) = count_costs(["seed1"], ["float64"], [1000])
    assert row["hand_ops"] == 9
    # Each operation reads and writes whole per-point vectors: 8 kB per (1000,) float64 array.
    assert 9 * 2 * 8000 <= row["hand_bytes"] <= 9 * 3 * 8000
    assert row["gpuad_ops"] >= row["hand_ops"] and row["gpuad_bytes"] > 0
    assert row["gpuad_gpu_seconds"] == pytest.approx(row["gpuad_ops"] * 5e-6 + row["gpuad_bytes"] / 3e12)
    # gpuad.jit compiles it into one kernel: one launch, the inputs read and the outputs written once.
    assert row["gpuad-jit_ops"] == 1 and row["gpuad-jit_bytes"] == row["io_bytes"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--tasks", "nope"], "--tasks: unknown workload 'nope'"),
        (["--libs", "gpuad,nope"], "--libs: unknown library 'nope'"),
        (["--sizes", "big"], "--sizes must be comma-separated numbers"),
        (["--dtypes", "float16"], "--dtypes: 'float16' is not float64 or float32"),
        (["--repeats", "0"], "--repeats must be at least 1"),
        (["--merge", "no/such/dir"], "--merge: 'no/such/dir' holds no suite.json"),
        (["--merge", ","], "--merge needs at least one result directory"),
    ],
)
def test_bad_options_are_refused_with_a_message(args, message, tmp_path):
    proc = _bench(*args, "--out", str(tmp_path), "--no-plots", timeout=120)
    assert proc.returncode == 2
    assert message in proc.stderr


def test_interleaved_timing_takes_the_libraries_repeats_in_turn():
    """Each library's repeats alternate with the others' (so drift of a shared machine hits all of
    them alike), every repeat runs that library's calibrated number of calls, and each library gets
    its own median and spread."""
    sys.path.insert(0, ROOT)
    from bench.run import time_interleaved

    log = []

    def make(name, work):
        def run():
            log.append(name)
            sum(i * i for i in range(work))

        return run

    runs = [make("a", 2000), make("b", 200)]
    log.clear()
    out = time_interleaved(runs, repeats=3, min_time=0.002)
    assert len(out) == 2 and all(set(o) == {"seconds", "sys_seconds", "calls", "spread"} for o in out)
    assert all(o["seconds"] > 0 and o["calls"] >= 1 for o in out)
    timed = log[-(3 * (out[0]["calls"] + out[1]["calls"])):]  # after the calibration calls
    blocks = [name for i, name in enumerate(timed) if i == 0 or timed[i - 1] != name]
    assert blocks == ["a", "b", "a", "b", "a", "b"]
    assert timed.count("a") == 3 * out[0]["calls"] and timed.count("b") == 3 * out[1]["calls"]


def test_one_workload_timed_alone_and_its_usage_error():
    """``python -m bench.one`` times one workload in its own process; a wrong name prints the usage
    with the workloads' names and exits non-zero."""
    ok = subprocess.run([sys.executable, "-m", "bench.one", "seed1", "1e3"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("seed1 B=1000 float64: ") and ok.stdout.rstrip().endswith("ms per call")
    bad = subprocess.run([sys.executable, "-m", "bench.one", "nope", "1e3"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0
    assert "usage: python -m bench.one WORKLOAD B" in bad.stderr and "elem16_jvp" in bad.stderr


SECOND_ORDER = ("hess4", "hvp3")


def _bench_modules():
    sys.path.insert(0, ROOT)
    try:
        from bench.libs import LIBRARIES
        from bench.run import check, reference
        from bench.workloads import WORKLOADS
    finally:
        sys.path.remove(ROOT)
    return LIBRARIES, WORKLOADS, check, reference


@pytest.mark.parametrize("name", SECOND_ORDER)
def test_second_order_hand_derivatives_match_jax(name, jax_x64):
    """The written-out Hessian (hess4) and Hessian-vector product (hvp3) against JAX's
    vmap(hessian(f)) and vmap(jvp(grad(f))), float64, on points over the data's whole range."""
    import jax.numpy as jnp
    import numpy as np

    jax = jax_x64
    _, WORKLOADS, _, _ = _bench_modules()
    w = WORKLOADS[name]
    d = w.data(200, "float64", np.random.default_rng(3))
    f = w.fn(jnp)
    if w.kind == "hess_point":
        want = jax.jit(jax.vmap(jax.hessian(f)))(d["X"])
    else:
        want = jax.jit(jax.vmap(lambda x, v: jax.jvp(jax.grad(f), (x,), (v,))[1]))(d["X"], d["V"])
    (got,) = w.hand(d)
    assert got.shape == want.shape and got.dtype == np.float64
    np.testing.assert_allclose(got, np.asarray(want), rtol=1e-12, atol=1e-12)
    if w.kind == "hess_point":
        np.testing.assert_array_equal(got, np.swapaxes(got, -1, -2))


@pytest.mark.parametrize(
    "lib, dtype",
    # JAX eager, torch.func and HIPS autograd run the same transforms as the ones here (the suite
    # checks every result before timing it): left out to keep the suite's time in bounds.
    [(lib, "float64") for lib in ("gpuad", "gpuad-jit", "jax-jit", "torch")]
    + [("gpuad", "float32"), ("gpuad-jit", "float32")],
)
@pytest.mark.parametrize("name", SECOND_ORDER)
def test_second_order_workloads_match_the_hand_reference_in_every_library(name, lib, dtype):
    """The libraries' adapters do the second-order kinds (hess_point, hvp_point) and their results
    pass the suite's own check against the hand-written reference (gpuad in float32 too);
    libraries not installed skip."""
    import numpy as np

    LIBRARIES, WORKLOADS, check, reference = _bench_modules()
    ok, why = LIBRARIES[lib].available()
    if not ok:
        pytest.skip(why)
    w = WORKLOADS[name]
    d = w.data(16, dtype, np.random.default_rng(1))
    _, ref, tolerances = reference(w, d, dtype)
    run, to_numpy = LIBRARIES[lib].build(w, d)
    run()  # jit: the first call records or compiles
    assert check(to_numpy(run()), ref, dtype, tolerances) is None


def test_cost_counter_counts_the_second_order_workloads():
    """The cost counter runs the second-order workloads (gpuad and hand) and counts their operations."""
    sys.path.insert(0, ROOT)
    try:
        from bench.cost import count_costs
    finally:
        sys.path.remove(ROOT)
    rows = count_costs(list(SECOND_ORDER), ["float64"], [100])
    assert [r["workload"] for r in rows] == list(SECOND_ORDER)
    for r in rows:
        assert r["hand_ops"] > 0 and r["gpuad_ops"] > 0 and r["hand_bytes"] > 0 and r["gpuad_bytes"] > 0
