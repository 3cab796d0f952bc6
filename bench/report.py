"""Results of the suite as a markdown report, CSV, JSON and PNG plots."""

from __future__ import annotations

import csv
import json
import math
import os
import zlib
from collections import defaultdict

from .workloads import WORKLOADS

REFERENCE = "hand"
PEER = "jax-jit"
LARGE = 100_000  # "at scale": the sizes the geometric-mean target is about

# Each library's plot colour, the same in every run and every plot: matplotlib's colour cycle
# colours by order, and the order changed with the libraries a run had installed or a merge held.
# gpuad in warm colours, the reference black, the peers in cool ones.
LIB_COLOURS = {
    "gpuad": "#d62728",
    "gpuad-jit": "#ff7f0e",
    "gpuad-cupy": "#8c564b",
    "gpuad-cupy-jit": "#e377c2",
    "hand": "#000000",
    "jax-jit": "#1f77b4",
    "jax-eager": "#17becf",
    "torch": "#2ca02c",
    "torch-func": "#bcbd22",
    "autograd": "#9467bd",
}
_SPARE_COLOURS = ("#7f7f7f", "#aec7e8", "#98df8a", "#ffbb78", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d")


def lib_colour(lib: str) -> str:
    """The plot colour of a library: its own from LIB_COLOURS, or for a library not listed there
    one chosen by a checksum of its name (stable across runs, unlike Python's salted hash)."""
    return LIB_COLOURS.get(lib) or _SPARE_COLOURS[zlib.crc32(lib.encode()) % len(_SPARE_COLOURS)]


def _index(rows):
    table = {}
    for r in rows:
        if r.get("ok"):
            table[(r["workload"], r["dtype"], r["B"], r["lib"])] = r
    return table


def _geomean(values):
    values = [v for v in values if v > 0]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def ratios_at_scale(rows, lib="gpuad", against=REFERENCE):
    """Per dtype: (geometric mean over workloads of the per-workload geometric mean over B >= 1e5
    of time(lib) / time(against), per-workload values)."""
    t = _index(rows)
    per = defaultdict(lambda: defaultdict(list))
    for (w, dt, B, name), r in t.items():
        if name == lib and B >= LARGE and (w, dt, B, against) in t:
            per[dt][w].append(r["seconds"] / t[(w, dt, B, against)]["seconds"])
    return {dt: (_geomean([_geomean(v) for v in ws.values()]), {w: _geomean(v) for w, v in ws.items()}) for dt, ws in per.items()}


def comparison(rows, lib="gpuad", other="autograd"):
    """(runs where lib is faster, runs compared, the slowest ratio lib/other with its run)."""
    t = _index(rows)
    faster = total = 0
    worst = None
    for (w, dt, B, name), r in t.items():
        if name == lib and (w, dt, B, other) in t:
            ratio = r["seconds"] / t[(w, dt, B, other)]["seconds"]
            total += 1
            faster += ratio < 1
            if worst is None or ratio > worst[0]:
                worst = (ratio, w, dt, B)
    return faster, total, worst


def _ms(s):
    ms = s * 1e3
    return f"{ms:.3g}" if ms < 100 else f"{ms:.0f}"


def workload_table(rows, wname, dtype, libs):
    t = _index(rows)
    sizes = sorted({r["B"] for r in rows if r["workload"] == wname and r["dtype"] == dtype})
    present = [l for l in libs if any((wname, dtype, B, l) in t for B in sizes)]
    if not present:
        return ""
    head = ["B"] + [f"{l} ms" for l in present] + ["floor ms"]
    ratio_libs = [l for l in present if l != REFERENCE]
    head += [f"{l}/hand" for l in ratio_libs]
    if PEER in present:
        head += [f"{l}/jax-jit" for l in ratio_libs if l != PEER]
    lines = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    for B in sizes:
        cells = [f"{B:.0e}"]
        for l in present:
            r = t.get((wname, dtype, B, l))
            cells.append(_ms(r["seconds"]) if r else "-")
        floor = next((r["floor_seconds"] for r in rows if r["workload"] == wname and r["dtype"] == dtype and r["B"] == B), None)
        cells.append(f"{floor * 1e3:.3g}" if floor is not None else "-")
        ref = t.get((wname, dtype, B, REFERENCE))
        for l in ratio_libs:
            r = t.get((wname, dtype, B, l))
            cells.append(f"{r['seconds'] / ref['seconds']:.2f}" if r and ref else "-")
        if PEER in present:
            peer = t.get((wname, dtype, B, PEER))
            for l in ratio_libs:
                if l == PEER:
                    continue
                r = t.get((wname, dtype, B, l))
                cells.append(f"{r['seconds'] / peer['seconds']:.2f}" if r and peer else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary_text(rows, cost_rows=()):
    out = []
    for dt, (gm, per) in sorted(ratios_at_scale(rows).items()):
        detail = ", ".join(f"{w} {v:.2f}" for w, v in per.items())
        out.append(f"gpuad / hand NumPy at B >= 1e5, {dt}: geometric mean {gm:.2f}x ({detail})")
    for lib in ("gpuad", "gpuad-jit"):
        for other in ("autograd", "jax-jit", "torch"):
            faster, total, worst = comparison(rows, lib, other)
            if total:
                out.append(f"{lib} faster than {other} in {faster} of {total} runs; slowest ratio {lib}/{other} "
                           f"{worst[0]:.2f} ({worst[1]}, {worst[2]}, B = {worst[3]:.0e})")
    t = _index(rows)
    for lib in ("gpuad", "gpuad-jit"):
        for dt in ("float64", "float32"):
            r = t.get(("seed1", dt, 1000, lib))
            if r:
                out.append(f"seed1 value and gradient at B = 1e3, {dt}, {lib}: {r['seconds'] * 1e3:.3f} ms per call")
    return "\n".join(out)


def markdown(rows, cost_rows, machine, notes):
    libs = []
    for r in rows:
        if r["lib"] not in libs:
            libs.append(r["lib"])
    dtypes = []
    for r in rows:
        if r["dtype"] not in dtypes:
            dtypes.append(r["dtype"])
    parts = [
        "# Benchmark suite",
        "",
        f"`{machine['command']}` on {machine['date']}: {machine['cpu']}, {machine['cores']} cores, "
        f"{machine['memory_gib']} GiB; threads per library {machine['threads']}"
        + (f", pinned to CPU {machine['pinned']}" if machine["threads"] == 1 else "")
        + f"; copy bandwidth {machine['copy_bandwidth_gb_s']} GB/s. Versions: "
        + ", ".join(f"{k} {v}" for k, v in machine["versions"].items()) + ".",
        "",
    ]
    if machine.get("pieces"):
        parts += ["Measurements by run (merged; the latest run's versions above):", ""]
        parts += [f"- {p}" for p in machine["pieces"]] + [""]
    parts += [
        "Each time is the median over repeats of process CPU time per call (ms); every result was "
        "checked against the hand-written NumPy derivative first. `x/hand` is time relative to hand "
        "NumPy, `x/jax-jit` relative to `jax.jit` of the same transform. floor = inputs and outputs "
        "moved once at the copy bandwidth.",
        "",
        "## Summary",
        "",
        "```",
        summary_text(rows, cost_rows),
        "```",
    ]
    if notes:
        parts += ["", "Notes:", ""] + [f"- {n}" for n in notes]
    for wname in WORKLOADS:
        if not any(r["workload"] == wname for r in rows):
            continue
        parts += ["", f"## {wname}", "", WORKLOADS[wname].description + f" (`{WORKLOADS[wname].kind}`)."]
        for dt in dtypes:
            table = workload_table(rows, wname, dt, libs)
            if table:
                parts += ["", f"{dt}:", "", table]
    failed = [r for r in rows if not r.get("ok")]
    if failed:
        parts += ["", "## Runs that did not pass the correctness check", ""]
        parts += [f"- {r['workload']} {r['dtype']} B={r['B']:g} {r['lib']}: {r['error']}" for r in failed]
    if cost_rows:
        from .cost import GPU_BANDWIDTH, LAUNCH_SECONDS, cost_table

        parts += [
            "",
            "## GPU estimate from the cost counter",
            "",
            f"Array operations dispatched and bytes read + written by one call (`python -m bench --cost`); "
            f"estimate = operations x {LAUNCH_SECONDS * 1e6:.0f} us + bytes / {GPU_BANDWIDTH / 1e12:.0f} TB/s "
            "(H100), floor = inputs + outputs once at that bandwidth.",
            "",
            cost_table(cost_rows),
        ]
    return "\n".join(parts) + "\n"


def write_all(out_dir, rows, cost_rows, machine, notes, plots=True):
    with open(os.path.join(out_dir, "suite.json"), "w") as fh:
        json.dump({"machine": machine, "notes": notes, "runs": rows, "costs": list(cost_rows)}, fh, indent=1)
    fields = ["workload", "kind", "dtype", "B", "lib", "ok", "seconds", "sys_seconds", "points_per_second", "calls",
              "spread", "io_bytes", "floor_seconds", "error"]
    with open(os.path.join(out_dir, "suite.csv"), "w", newline="") as fh:
        wr = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        wr.writeheader()
        wr.writerows(rows)
    with open(os.path.join(out_dir, "suite.md"), "w") as fh:
        fh.write(markdown(rows, cost_rows, machine, notes))
    with open(os.path.join(out_dir, "machine.md"), "w") as fh:
        lines = []
        for k, v in machine.items():
            if isinstance(v, list) and v and all(isinstance(x, str) for x in v):
                lines += [f"- {k}:"] + [f"  - {x}" for x in v]
            else:
                lines.append(f"- {k}: {v}")
        fh.write("# Machine\n\n" + "\n".join(lines) + "\n")
    if plots:
        plot(out_dir, rows)


def merge(in_dirs, out_dir, plots=True):
    """Combine the results of several runs (say one per dtype, each pinned to its own core) into
    one report. A measurement repeated in a later directory replaces the earlier one. The report
    describes the runs whose measurements are in it (the latest for the machine and versions) and
    says which sizes came from which."""
    runs, costs, notes, machines, origin = {}, {}, [], [], {}
    for i, d in enumerate(in_dirs):
        with open(os.path.join(d, "suite.json")) as fh:
            data = json.load(fh)
        machines.append(data["machine"])
        for r in data["runs"]:
            key = (r["workload"], r["dtype"], r["B"], r["lib"])
            runs[key] = r
            origin[key] = i
        for c in data["costs"]:
            costs[(c["workload"], c["dtype"], c["B"])] = c
        notes.extend(n for n in data["notes"] if n not in notes)
    kept = sorted(set(origin.values())) or [len(machines) - 1]
    used = [machines[i] for i in kept]
    machine = dict(used[-1])
    machine["command"] = "; ".join(m["command"] for m in used)
    machine["pinned"] = sorted({c for m in used for c in (m.get("pinned") or [])})
    machine["date"] = ", ".join(sorted({d.strip() for m in used for d in m["date"].split(",")}))
    machine["copy_bandwidth_gb_s"] = min(m["copy_bandwidth_gb_s"] for m in used)
    if len(kept) > 1:
        machine["pieces"] = [_piece(machines[i], [k for k, o in origin.items() if o == i]) for i in kept]
    os.makedirs(out_dir, exist_ok=True)
    write_all(out_dir, list(runs.values()), list(costs.values()), machine, notes, plots=plots)
    return list(runs.values()), list(costs.values())


def _piece(machine, keys):
    """Which measurements of a merged report one run gave, and where it ran."""
    sizes = ", ".join(f"{b:.0e}".replace("e+0", "e") for b in sorted({k[2] for k in keys}))
    dtypes = ", ".join(sorted({k[1] for k in keys}))
    torch = machine.get("versions", {}).get("torch")
    return (
        f"B = {sizes} ({dtypes}): {machine['date']}, {machine['platform']}"
        + (f", torch {torch}" if torch else "")
        + f", copy bandwidth {machine['copy_bandwidth_gb_s']} GB/s"
    )


def plot(out_dir, rows):
    """suite_<dtype>.png in ``out_dir``; nothing without matplotlib (``python -m bench`` says so
    before it runs: see ``bench.__main__.missing_extras``)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    t = _index(rows)
    for dt in sorted({r["dtype"] for r in rows}):
        names = [w for w in WORKLOADS if any(k[0] == w and k[1] == dt for k in t)]
        if not names:
            continue
        cols = min(4, len(names))
        nrows = math.ceil(len(names) / cols)
        fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.4 * nrows), squeeze=False)
        libs = sorted({k[3] for k in t if k[1] == dt}, key=lambda l: (l != "gpuad", l != "hand", l))
        for ax, w in zip(axes.flat, names):
            for lib in libs:
                pts = sorted((k[2], r["points_per_second"]) for k, r in t.items() if k[0] == w and k[1] == dt and k[3] == lib)
                if pts:
                    style = {"linewidth": 2.5} if lib == "gpuad" else {"linewidth": 1.2}
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", markersize=3, label=lib,
                            color=lib_colour(lib), **style)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(w, fontsize=10)
            ax.set_xlabel("batch size B")
            ax.set_ylabel("points / s")
            ax.grid(True, which="both", alpha=0.3)
        for ax in list(axes.flat)[len(names):]:
            ax.axis("off")
        handles, labels = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=9)
        fig.suptitle(f"Throughput vs batch size, {dt} (one pinned core; higher is better)")
        fig.tight_layout(rect=(0, 0.06, 1, 0.95))
        fig.savefig(os.path.join(out_dir, f"suite_{dt}.png"), dpi=110)
        plt.close(fig)
