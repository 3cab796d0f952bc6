"""A recorded program with its kernels compiled: what ``gpuad.jit`` replays.

``compile_program`` plans the kernels (``fusion.plan``), writes them as one C source (NumPy) or
CUDA source (CuPy), builds it (``toolchain.build``, cached) and returns the program with each
kernel's run of operations replaced by one operation that launches it (a ``Primitive`` whose
``fresh`` results are the kernel's output arrays). Where nothing can be compiled the program is
returned as it was, with the reason (the caller warns once and replays).
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass, field
from typing import Any

import numpy  # host-ok: the C kernels run on NumPy memory (the CUDA launcher below on CuPy's)

from .. import backend
from ..primitives import Primitive
from ..speedups import pooled_empty
from ..tracing import current_pool
from . import fusion, scalar, toolchain

__all__ = ["CompileReport", "CompileWarning", "compile_program", "JIT_ENV", "jit_mode", "sources"]

JIT_ENV = "GPUAD_JIT"  # "replay" or "compile" forces either; unset (or "auto"): compile where possible


class CompileWarning(UserWarning):
    """gpuad.jit could not compile a recording and replays its array operations instead."""


def jit_mode() -> str:
    mode = os.environ.get(JIT_ENV, "auto") or "auto"
    if mode not in ("auto", "replay", "compile"):
        raise ValueError(f"{JIT_ENV}={mode!r} is not a jit mode; use 'replay', 'compile' or leave it unset")
    return mode


@dataclass
class CompileReport:
    """What gpuad.jit did with one recording (``jitted.reports()``)."""

    target: str  # "C", "CUDA", or "replay"
    operations: int  # in the recording
    compiled: int = 0  # of them, inside kernels
    library: list[str] = field(default_factory=list)  # names of the operations left to the array library
    kernels: list[str] = field(default_factory=list)  # "per point over 1000 points: 14 operations"
    seconds: float = 0.0  # spent compiling (0 when loaded from the cache)
    cached: bool = False
    reason: str | None = None  # why nothing (or not everything) was compiled
    warn: bool = False  # whether the user is told (a fallback they can act on)

    def __str__(self) -> str:
        if not self.kernels:
            return f"replayed: {self.operations} array operations ({self.reason})"
        how = "loaded from the cache" if self.cached else f"compiled in {self.seconds:.2f} s"
        left = f" (the library runs {', '.join(self.library)})" if self.library else ""
        return (
            f"{self.target}: {len(self.kernels)} kernel(s) ({'; '.join(self.kernels)}), {self.compiled} of "
            f"{self.operations} operations compiled{left}, {how}"
        )


def _is_numpy(xp: Any) -> bool:
    return backend.is_numpy_namespace(xp)


def _is_cupy(xp: Any) -> bool:
    return "cupy" in getattr(xp, "__name__", "")


def _read_outside(program: list, kernels: list[fusion.Kernel], outputs: list[Any]) -> set[int]:
    """The kernels' values read by an operation of another kernel (one that does not compute
    them itself), by the array library, or returned."""
    owners: dict[int, set[int]] = {}
    where: dict[int, set[int]] = {}
    for k in kernels:
        for v in k.inside:
            owners.setdefault(v, set()).add(id(k))
        for i in k.ops:
            where.setdefault(i, set()).add(id(k))
    outside = set()
    for i, (_, refs, _, _) in enumerate(program):
        for r in refs:
            if type(r) is int and r in owners and not where.get(i, {None}) <= owners[r]:
                outside.add(r)
    for kind, o in outputs:
        if kind != "const" and o in owners:
            outside.add(o)
    return outside


@dataclass
class _Run:
    """Kernels launched as one C function (``fusion.chains``; on CUDA each kernel is a run of its
    own): the refs it reads, in argument order, the variables it writes, and each kernel's
    arguments by the function's names for them (a later kernel reads an earlier one's output).
    ``local``: values only later kernels' products of the run read, never written to memory: a
    block's rows go through a buffer of the thread's (``blocks``: their dtypes and row widths)."""

    builts: list[fusion.Built]
    local: set[int] = field(default_factory=set)
    blocks: list[tuple[str, int]] = field(default_factory=list)
    refs: list[Any] = field(default_factory=list)
    in_dtypes: list[str] = field(default_factory=list)
    outputs: list[int] = field(default_factory=list)
    out_shapes: list[tuple[int, ...]] = field(default_factory=list)
    out_dtypes: list[str] = field(default_factory=list)
    out_kinds: list[str] = field(default_factory=list)
    args: list[list[str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        slots: dict[Any, int] = {}
        buffers: dict[int, str] = {}
        for built in self.builts:
            names = []
            for r, (dtype, _, _) in zip(built.refs, built.operand_specs):
                if type(r) is int and r in buffers:
                    names.append(buffers[r])
                    continue
                if type(r) is int and r in self.outputs:
                    names.append(f"o{self.outputs.index(r)}")
                    continue
                key = r if type(r) is int else id(r)
                if key not in slots:
                    slots[key] = len(self.refs)
                    self.refs.append(r)
                    self.in_dtypes.append(dtype)
                names.append(f"a{slots[key]}")
            for v, shape, dtype, kind in zip(built.outputs, built.out_shapes, built.out_dtypes, built.out_kinds):
                if v in self.local:
                    buffers[v] = f"bf{len(self.blocks)}"
                    names.append(buffers[v])
                    self.blocks.append((dtype, built.kernel.inner))
                    continue
                names.append(f"o{len(self.outputs)}")
                self.outputs.append(v)
                self.out_shapes.append(tuple(shape))
                self.out_dtypes.append(dtype)
                self.out_kinds.append(kind)
            self.args.append(names)

    @property
    def ops(self) -> list[int]:
        return sorted({i for b in self.builts for i in b.kernel.ops})


def runs(program: list, builts: list[fusion.Built], target: str, outputs: list[Any]) -> list[_Run]:
    """The launches of a recording's kernels on ``target`` ("C" or "CUDA"), in program order."""
    if target != "C":
        return [_Run([b]) for b in builts]
    of = {id(b.kernel): b for b in builts}
    readers = fusion.readers(program)
    returned = {o for kind, o in outputs if kind != "const"}
    launched = []
    for chain in fusion.chains(program, [b.kernel for b in builts]):
        local = set()
        for s, kernel in enumerate(chain):
            later = {i for k in chain[s + 1:] for i in k.ops}
            for v in of[id(kernel)].outputs:
                # read by later kernels' products alone (whole rows of the block), and not returned
                if v not in returned and readers.get(v) and all(
                    i in later and program[i][0].name == "matmul" and program[i][1][0] == v and program[i][1][1] != v
                    for i in readers[v]
                ):
                    local.add(v)
        launched.append(_Run([of[id(k)] for k in chain], local))
    return launched


def _operands(built: fusion.Built) -> list[tuple[str, int]]:
    """(dtype, elements per point) of each operand, as the emitters take them."""
    return [(d, per_point) for d, per_point, _ in built.operand_specs]


def _outputs(built: fusion.Built) -> list[tuple[str, str, list[Any]]]:
    """(dtype, kind, scalars) of each output, as the emitters take them."""
    return [(backend.dtype_name(d), kind, s) for d, kind, s in zip(built.out_dtypes, built.out_kinds, built.scalars)]


def _summed_shape(built: fusion.Built) -> tuple[str, int, int, bool]:
    """A summed-product kernel's dtype, K, N and whether it sums the columns too."""
    return (built.out_dtypes[0], *built.summed_product, len(built.outputs) > 1)


def _c_function(name: str, run: _Run) -> str:
    built = run.builts[0]
    if built.summed_product is not None:
        return scalar.emit_c_summed_product(name, *_summed_shape(built))
    if len(run.builts) == 1 and not built.products:
        return scalar.emit_c(name, built.builder, _operands(built), _outputs(built), built.kernel.batched, built.kernel.inner)
    stages = [
        scalar.RowStage(b.builder, _operands(b), _outputs(b), b.kernel.inner, b.products, args)
        for b, args in zip(run.builts, run.args)
    ]
    return scalar.emit_c_rows(name, run.in_dtypes, run.out_dtypes, stages, run.blocks)


def sources(builts: list[fusion.Built], c_runs: list[_Run] | None = None) -> tuple[str, str]:
    """The C source of a recording's runs of kernels (functions ``k0``, ``k1``..., one per run;
    default: one run per kernel) and the CUDA source of its kernels (``k0``, ``k1``...)."""
    c = [_c_function(f"k{i}", run) for i, run in enumerate(c_runs if c_runs is not None else [_Run([b]) for b in builts])]
    cuda = []
    for i, built in enumerate(builts):
        if built.summed_product is not None:
            cuda.append(scalar.emit_cuda_summed_product(f"k{i}", *_summed_shape(built)))
        else:
            cuda.append(scalar.emit_cuda(f"k{i}", built.builder, _operands(built), _outputs(built), built.kernel.batched, built.kernel.inner, built.products))
    # CUDA's expf and tanh need no detour: the C prelude's gpuad_expf and gpuad_tanh are plain
    # there. A dense product's element is its thread's dot product (row r of a, column c of b).
    cuda_prelude = (
        "#include <math.h>\n__device__ __forceinline__ float gpuad_expf(float x) { return expf(x); }\n"
        "__device__ __forceinline__ double gpuad_tanh(double x) { return tanh(x); }\n"
        "template <typename T> __device__ __forceinline__ T gpuad_dense(const T *a, const T *b, long long k, long long n, long long c) {\n"
        "  T s = 0;\n  for (long long q = 0; q < k; q++) s += a[q] * b[q * n + c];\n  return s;\n}\n\n"
    )
    return "\n\n".join(c), cuda_prelude + "\n\n".join(cuda)


# The kernel's report of floating-point exceptions, bit by bit, and NumPy's name for each.
_RAISED = ((1, "divide"), (2, "invalid"), (4, "over"), (8, "under"))
# A point the kernel leaves to the array library (a degenerate matrix: compiler/linalg.py).
_LEFT_TO_LIBRARY = 16


class _AsArrayOperations:
    """A kernel's operations run one by one through the array library: what a kernel falls back
    to on points where NumPy would warn or raise about a floating-point error, so that the
    message (naming the operation) and the user's ``np.errstate`` are NumPy's own, and where a
    matrix of its small linear algebra is degenerate (singular, not positive definite)."""

    def __init__(self, program: list, run: _Run):
        self.ops = [program[k] for k in run.ops]
        self.refs, self.outputs = run.refs, run.outputs

    def __call__(self, xp: Any, *operands: Any) -> tuple[Any, ...]:
        values = {r: v for r, v in zip(self.refs, operands) if type(r) is int}
        for prim, refs, params, out in self.ops:
            args = [values[r] if type(r) is int else r.value for r in refs]
            values[out] = prim.impl(xp, *args, **params)
        return tuple(values[v] for v in self.outputs)


class _CPULaunch:
    """Runs one C function (a run of kernels) on NumPy arrays: operands made C-contiguous in
    their dtype (a copy only where they are not already), outputs allocated fresh."""

    def __init__(self, fn: Any, run: _Run, fallback: _AsArrayOperations):
        self.fn, self.fallback = fn, fallback
        self.n = run.builts[0].kernel.n
        self.in_dtypes = [numpy.dtype(d) for d in run.in_dtypes]  # host-ok
        self.outs = [(s, numpy.dtype(d)) for s, d in zip(run.out_shapes, run.out_dtypes)]  # host-ok
        fn.argtypes = [ctypes.c_int64] + [ctypes.c_void_p] * (len(self.in_dtypes) + len(self.outs))
        fn.restype = ctypes.c_int

    def __call__(self, xp: Any, *operands: Any) -> tuple[Any, ...]:
        arrays = []
        for a, dtype in zip(operands, self.in_dtypes):
            if not isinstance(a, numpy.ndarray) or a.dtype != dtype or not a.flags.c_contiguous:
                a = numpy.ascontiguousarray(a, dtype=dtype)  # host-ok
            arrays.append(a)
        # Large outputs from the call's buffer pool: fresh pages for a big result cost more in
        # page faults than the kernel's arithmetic (README "Buffer reuse").
        pool = current_pool()
        outs = []
        for shape, dtype in self.outs:
            out = pooled_empty(pool, xp, shape, dtype)
            outs.append(numpy.empty(shape, dtype) if out is None else out)  # host-ok
        raised = self.fn(self.n, *[a.ctypes.data for a in arrays], *[o.ctypes.data for o in outs])
        if raised & _LEFT_TO_LIBRARY:
            return self.fallback(xp, *operands)
        if raised:
            modes = numpy.geterr()  # host-ok
            if any(raised & bit and modes[name] != "ignore" for bit, name in _RAISED):
                return self.fallback(xp, *operands)
        return tuple(outs)


class _CUDALaunch:
    """Runs one CUDA kernel on CuPy arrays: one launch, no host synchronisation."""

    BLOCK = 256

    def __init__(self, cupy: Any, module: Any, name: str, built: fusion.Built):
        self.cupy, self.kernel = cupy, module.get_function(name)
        self.n = built.kernel.n
        self.in_dtypes = [d for d, _, _ in built.operand_specs]
        self.outs = [(tuple(s), d, kind) for s, d, kind in zip(built.out_shapes, built.out_dtypes, built.out_kinds)]
        self.threads = self.n if built.summed_product is None else scalar.summed_product_threads(self.n, *_summed_shape(built)[1:])

    def __call__(self, xp: Any, *operands: Any) -> tuple[Any, ...]:
        cp = self.cupy
        arrays = [cp.ascontiguousarray(cp.asarray(a, dtype=d)) for a, d in zip(operands, self.in_dtypes)]  # host-ok
        # Sums over the points are added into zeros by the points' threads.
        outs = [(cp.zeros if kind == "sum" else cp.empty)(shape, dtype=d) for shape, d, kind in self.outs]
        grid = (max(1, -(-self.threads // self.BLOCK)),)
        self.kernel(grid, (self.BLOCK,), (numpy.int64(self.n), *arrays, *outs))
        return tuple(outs)


def build_all(program: list, avals: list[Any], in_vars: list[int], outputs: list[Any]) -> list[fusion.Built]:
    kernels = fusion.plan(program, avals, in_vars)
    fusion.recompute(program, avals, kernels, outputs)
    outside = _read_outside(program, kernels, outputs)
    builts = []
    for kernel in kernels:
        builts.append(fusion.build_kernel(kernel, program, avals, outside))
    return builts


def compile_program(xp: Any, program: list, avals: list[Any], in_vars: list[int], outputs: list[Any]) -> tuple[list, CompileReport]:
    """The program with its kernels compiled, and what was done. Raises toolchain.CompileError
    where the compiler is missing or refuses (the caller falls back to the replay)."""
    report = CompileReport(target="replay", operations=len(program))
    if not (_is_numpy(xp) or _is_cupy(xp)):
        report.reason = f"gpuad compiles kernels for NumPy and CuPy arrays, not {getattr(xp, '__name__', xp)}"
        report.warn = True
        return program, report
    program = fusion.schedule(program, avals, in_vars)
    builts = build_all(program, avals, in_vars, outputs)
    if not builts:
        unknown = sorted({prim.name for prim, *_ in program if not fusion.compiles(prim)})
        report.reason = (
            f"no run of operations it can compile (it does not compile {', '.join(unknown[:5])})" if unknown
            else "no run of operations worth compiling"
        )
        return program, report
    target = "CUDA" if _is_cupy(xp) else "C"
    launched = runs(program, builts, target, outputs)
    c_source, cuda_source = sources(builts, launched if target == "C" else None)
    if target == "CUDA":
        import cupy  # host-ok: the CuPy backend is in use, so CuPy is installed

        module = cupy.RawModule(code=cuda_source)
        launches = [_CUDALaunch(cupy, module, f"k{i}", run.builts[0]) for i, run in enumerate(launched)]
    else:
        lib, seconds, cached = toolchain.build(c_source)
        launches = [_CPULaunch(getattr(lib, f"k{i}"), run, _AsArrayOperations(program, run)) for i, run in enumerate(launched)]
        report.seconds, report.cached = seconds, cached
    report.target = target
    # Each run's operations give way to one operation that launches it, placed after its last
    # operation: every operand it reads is computed by then, and nothing before reads its results.
    last = {run.ops[-1]: (run, launch) for run, launch in zip(launched, launches)}
    compiled_ops = {i for b in builts for i in b.kernel.ops}
    new_program = []
    for i, op in enumerate(program):
        if i not in compiled_ops:
            new_program.append(op)
        if i in last:
            run, launch = last[i]
            prim = Primitive(f"kernel{len(report.kernels)}", launch, residuals=(), fresh=True)
            new_program.append((prim, tuple(run.refs), {}, tuple(run.outputs)))
            for built in run.builts:
                kernel = built.kernel
                where = (
                    f"a product summed over {kernel.n} rows" if kernel.summed_product
                    else f"elementwise over {kernel.n} elements" if kernel.flat
                    else f"per point over {kernel.n} points" if kernel.batched else "one point"
                )
                report.kernels.append(f"{where}: {len(kernel.ops)} operations")
    report.compiled = len(compiled_ops)
    report.library = sorted({prim.name for i, (prim, *_) in enumerate(program) if i not in compiled_ops})
    return new_program, report
