"""The system C compiler, the compile cache, and loading what they build.

A kernel library is built from one C source with the system compiler (``CC``, else ``cc``) and kept
in the user's cache directory (``GPUAD_CACHE_DIR``, else ``$XDG_CACHE_HOME/gpuad``, else
``~/.cache/gpuad``; created private to the user) under a name that is the hash of everything that
made it: the source, the compiler's identity, the flags and the CPU. A library is written to a
temporary file and renamed into place (two processes compiling the same source at once each
rename a complete file), and it carries its own hash as a symbol: a file whose symbol does not
match its name (a truncated or foreign file) is rebuilt, never run.

Flags: ``-O3 -march=native`` with ``-fno-math-errno -fno-trapping-math`` so that calls to the math
functions vectorize through glibc's vector math library (libmvec), but none of ``-ffast-math``'s
value-changing parts: NaN, infinities and signed zeros behave as in the array library, and
``-ffp-contract=off`` keeps a * b + c two roundings as NumPy has it. ``sin`` and ``cos`` of one
argument are kept apart (``-fno-builtin-sin``...): gcc would merge them into ``sincos``, which has
no vector form and stops the whole loop from vectorizing. The straight-line (SLP) vectorizer is
off: the loop over points is what vectorizes, and gcc 12's SLP pass drops the rounding of
double -> float -> double conversion chains (found by tests/test_compiler.py's astype row).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import time
from typing import Any

__all__ = ["CompileError", "compiler", "cache_dir", "build", "C_FLAGS", "PRELUDE", "cuda_ptx", "DENSE_ROWS", "CHAIN_ROWS", "dense_layout"]

CACHE_ENV = "GPUAD_CACHE_DIR"


class CompileError(RuntimeError):
    """The C compiler is missing or refused a generated source."""


C_FLAGS = (
    "-O3", "-march=native", "-fPIC", "-shared", "-fno-math-errno", "-fno-trapping-math",
    "-ffp-contract=off", "-fwrapv", "-fno-builtin-sin", "-fno-builtin-cos", "-fno-builtin-sinf",
    "-fno-builtin-cosf", "-fno-tree-slp-vectorize", "-fno-tree-pre", "-fopenmp",
)

# Vector forms of the math functions for the loop over points, declared where glibc's libmvec has
# them (its own header declares them only under -ffast-math).
_VECTOR_MATH = {
    (2, 22): ("sin", "cos", "exp", "log", "pow"),
    (2, 35): ("acos", "acosh", "asin", "asinh", "atan", "atan2", "atanh", "cosh", "erf", "erfc",
              "expm1", "hypot", "log10", "log1p", "log2", "sinh", "tan", "tanh"),
}


def _prelude() -> str:
    lines = ["#include <math.h>", "#include <stdint.h>", "#include <string.h>", "#include <fenv.h>", "#if defined(__x86_64__) && defined(__GLIBC__) && !defined(GPUAD_NO_VECTOR_MATH)"]
    for (major, minor), names in _VECTOR_MATH.items():
        lines.append(f"#if __GLIBC_PREREQ({major}, {minor})")
        for fn in names:
            two = fn in ("atan2", "hypot", "pow")
            for t, s in (("double", ""), ("float", "f")):
                args = f"{t}, {t}" if two else t
                lines.append(f'__attribute__((simd("notinbranch"), const, nothrow)) {t} {fn}{s}({args});')
        lines.append("#endif")
    lines.append("#endif")
    # float32 exp inline, 1.6x libmvec's expf (which also leaves its vector path for |x| > 87,
    # common in saturating sigmoids): exp(x) = 2^n exp(r), n = round(x / ln 2) read from the
    # bits of x / ln 2 + 1.5 * 2^23 (no float -> int conversion), r = x - n ln 2 in two parts
    # (the first product exact), exp(r) by its Taylor series to r^7 with fused multiply-adds, and
    # 2^n as two powers of two (each a normal float: one rounding where the result is
    # subnormal). 0.93 ulps at most (tested from underflow to overflow). x is clamped to where a
    # float result is 0 or inf anyway: overflow and underflow are raised as by expf. A NaN is
    # kept away from the clamp (min/max instructions raise invalid on it) and returned as it is.
    lines.append("static inline float gpuad_expf(float x) {")
    lines.append("  const float q = x == x ? x : 0.0f;")
    lines.append("  const float c = q < -104.0f ? -104.0f : (q > 100.0f ? 100.0f : q);")
    lines.append("  const float big = c * 0x1.715476p+0f + 12582912.0f;")
    lines.append("  const float n = big - 12582912.0f;")
    lines.append("  int32_t bits;")
    lines.append("  memcpy(&bits, &big, 4);")
    lines.append("  const float r = fmaf(-n, 0x1.7f7d1cp-20f, fmaf(-n, 0x1.62e4p-1f, c));")
    lines.append("  float p = 0x1.a01a02p-13f;")
    for coefficient in ("0x1.6c16c2p-10f", "0x1.111112p-7f", "0x1.555556p-5f", "0x1.555556p-3f", "0.5f", "1.0f", "1.0f"):
        lines.append(f"  p = fmaf(p, r, {coefficient});")
    lines.append("  const int32_t m = bits - 0x4B400000, a = m >> 1, b = m - a;")
    lines.append("  const int32_t ia = (a + 127) << 23, ib = (b + 127) << 23;")
    lines.append("  float sa, sb;")
    lines.append("  memcpy(&sa, &ia, 4);")
    lines.append("  memcpy(&sb, &ib, 4);")
    lines.append("  return x == x ? p * sa * sb : x;")
    lines.append("}")
    # libmvec's float64 tanh costs 1.7x this (and 1.2x NumPy's): expm1(2x) / (expm1(2x) + 2),
    # 3.5 ulps at most, exact at 0, -0.0, +-inf (clamped where tanh rounds to +-1) and NaN.
    # gcc's PRE would move the clamp's choices outside the call (expm1(c ? a : x) -> c ?
    # expm1(a) : expm1(x), two vector calls): -fno-tree-pre.
    lines.append("static inline double gpuad_tanh(double x) {")
    lines.append("  const double c = x < -20.0 ? -20.0 : (x > 20.0 ? 20.0 : x);")
    lines.append("  const double e = expm1(2.0 * c);")
    lines.append("  return e / (e + 2.0);")
    lines.append("}")
    return "\n".join(lines) + "\n" + _DENSE


# Matrix products a kernel computes itself (fusion.py's dense products: rows of the points' values
# times a small shared matrix, up to 128 x 128). The shared matrix is packed once per call into
# panels of DENSE_COLS columns; a tile of DENSE_ROWS rows times one panel is held in 12 vector
# registers over the products' sum (a register tile, as BLAS's kernels), and the tile of all
# columns goes to a buffer the kernel's elementwise loop reads. Multiply-adds are fused here
# only (the optimize attribute; the kernels' own arithmetic keeps -ffp-contract=off): BLAS fuses
# them too, and a product's value is not NumPy's to the bit anyway (its blocking differs).
DENSE_ROWS = 6
DENSE_VECTOR_BYTES = 32
CHAIN_ROWS = 48  # rows of a block of a run of kernels (lowering.runs): its values stay in the cache


@functools.lru_cache(maxsize=1)
def _wide_vectors() -> bool:
    """Whether -march=native gives 64-byte vectors (AVX-512): the tiles' registers then hold 16
    doubles per row (without it, 64-byte vectors would be split and spill registers)."""
    return " avx512f" in _cpu()


def dense_layout(ctype: str, n: int) -> tuple[int, str]:
    """Columns of one packed panel (two vectors) for a product of ``n`` columns, and the suffix
    of its functions: 64-byte vectors where the CPU has them and they pad ``n`` no more than
    32-byte ones (a 10-column float32 product keeps panels of 16): 3-8% faster on 64 x 64."""
    size, letter = (8, "d") if ctype == "double" else (4, "f")
    narrow = 2 * DENSE_VECTOR_BYTES // size
    if _wide_vectors() and -(-n // (2 * narrow)) * 2 * narrow <= -(-n // narrow) * narrow:
        return 2 * narrow, letter + "w"
    return narrow, letter


def _dense_source(ctype: str, suffix: str, vector_bytes: int = DENSE_VECTOR_BYTES) -> str:
    lanes = vector_bytes // (8 if ctype == "double" else 4)
    cols = 2 * lanes
    return f"""typedef {ctype} gpuad_v{suffix} __attribute__((vector_size({vector_bytes}), aligned(sizeof({ctype}))));
static inline void gpuad_pack_{suffix}(const {ctype} *restrict b, int64_t k, int64_t n, {ctype} *restrict pack) {{
  for (int64_t j = 0; j < (n + {cols - 1}) / {cols}; j++)
    for (int64_t q = 0; q < k; q++)
      for (int64_t c = 0; c < {cols}; c++)
        pack[(j * k + q) * {cols} + c] = j * {cols} + c < n ? b[q * n + j * {cols} + c] : 0;
}}
__attribute__((optimize("fp-contract=fast"), noinline))
static void gpuad_dense_{suffix}(const {ctype} *restrict a, int64_t k, int64_t rows, const {ctype} *restrict pack, int64_t panels, {ctype} *restrict tile) {{
  const {ctype} *row[{DENSE_ROWS}];
  for (int r = 0; r < {DENSE_ROWS}; r++) row[r] = a + (r < rows ? r : rows - 1) * k;
  for (int64_t j = 0; j < panels; j++) {{
    gpuad_v{suffix} acc[{DENSE_ROWS}][2];
    for (int r = 0; r < {DENSE_ROWS}; r++) acc[r][0] = acc[r][1] = (gpuad_v{suffix}){{0}};
    const {ctype} *p = pack + j * k * {cols};
    if (j == 0)  // the rows two blocks on: the hardware's prefetch misses the six rows' interleaved reads
      for (int64_t q = 0; q < {DENSE_ROWS} * k; q += {64 // (8 if ctype == "double" else 4)}) __builtin_prefetch(a + {2 * DENSE_ROWS} * k + q);
    for (int64_t q = 0; q < k; q++) {{
      gpuad_v{suffix} b0, b1;
      memcpy(&b0, p + q * {cols}, sizeof b0);
      memcpy(&b1, p + q * {cols} + {lanes}, sizeof b1);
      for (int r = 0; r < {DENSE_ROWS}; r++) {{
        const {ctype} x = row[r][q];
        acc[r][0] += x * b0;
        acc[r][1] += x * b1;
      }}
    }}
    for (int r = 0; r < {DENSE_ROWS}; r++) memcpy(tile + r * panels * {cols} + j * {cols}, acc[r], sizeof acc[r]);
  }}
}}
"""


# Products summed over the rows, x^T g for x (n, K) and g (n, N) (a layer's weight gradient), and
# g's column sums with them (its bias gradient: a column of ones appended to x). Each thread takes
# chunks of TPRODUCT_ROWS rows: both chunks regrouped in runs (x in tiles of 6 columns, g in
# panels of two vectors: contiguous reads, and no cache set conflicts from the rows' power-of-two
# strides) and multiplied into the thread's register tiles, while the next chunk is prefetched
# (without it the chunk's reads stall the arithmetic: 1.4x the time). The threads' sums are added
# in thread order: the result does not depend on timing.
TPRODUCT_ROWS = 128


def _tproduct_source(ctype: str, suffix: str) -> str:
    lanes = DENSE_VECTOR_BYTES // (8 if ctype == "double" else 4)
    cols, rows = 2 * lanes, TPRODUCT_ROWS
    return f"""static void gpuad_runs_{suffix}(const {ctype} *restrict src, int64_t n, int64_t rows, int64_t w, int ones, {ctype} *restrict dst) {{
  // dst[t][r][w] = src[r][t * w + i]: zeros past column n, or ones at column n (``ones``)
  const int64_t full = n / w, wide = n + (ones != 0);
  for (int64_t t = 0; t < full; t++)
    for (int64_t r = 0; r < rows; r++)
      for (int64_t i = 0; i < w; i++) dst[(t * rows + r) * w + i] = src[r * n + t * w + i];
  if (full * w < wide)
    for (int64_t r = 0; r < rows; r++)
      for (int64_t i = 0; i < w; i++) dst[(full * rows + r) * w + i] = full * w + i < n ? src[r * n + full * w + i] : (full * w + i == n && ones ? 1 : 0);
}}
__attribute__((optimize("fp-contract=fast"), noinline))
static void gpuad_tchunk_{suffix}(const {ctype} *restrict xp, int64_t tiles, const {ctype} *restrict gp, int64_t panels, int64_t rows, {ctype} *restrict acc, const char *nx, int64_t bx, const char *ng, int64_t bg) {{
  const int64_t lines = (bx + bg + 127) / 64;  // the next chunk's rows of x and of g
  for (int64_t t = 0; t < tiles; t++)
    for (int64_t j = 0; j < panels; j++) {{
      gpuad_v{suffix} s[6][2];
      for (int i = 0; i < 6; i++) s[i][0] = s[i][1] = (gpuad_v{suffix}){{0}};
      const {ctype} *x = xp + t * rows * 6, *g = gp + j * rows * {cols};
      for (int64_t r = 0; r < rows; r++) {{
        gpuad_v{suffix} b0, b1;
        memcpy(&b0, g + r * {cols}, sizeof b0);
        memcpy(&b1, g + r * {cols} + {lanes}, sizeof b1);
        for (int i = 0; i < 6; i++) {{
          const {ctype} v = x[r * 6 + i];
          s[i][0] += v * b0;
          s[i][1] += v * b1;
        }}
      }}
      for (int i = 0; i < 6; i++) {{
        {ctype} *o = acc + ((t * 6 + i) * panels + j) * {cols};
        gpuad_v{suffix} o0, o1;
        memcpy(&o0, o, sizeof o0);
        memcpy(&o1, o + {lanes}, sizeof o1);
        o0 += s[i][0];
        o1 += s[i][1];
        memcpy(o, &o0, sizeof o0);
        memcpy(o + {lanes}, &o1, sizeof o1);
      }}
      const int64_t run = t * panels + j;  // the next chunk's lines, spread over the tiles
      for (int64_t l = lines * run / (tiles * panels); l < lines * (run + 1) / (tiles * panels); l++)
        __builtin_prefetch(l * 64 < bx ? nx + l * 64 : ng + (l * 64 - bx), 0, 2);
    }}
}}
static int gpuad_tproduct_{suffix}(int64_t n, int64_t k, int64_t m, const {ctype} *restrict x, const {ctype} *restrict g, {ctype} *restrict out, {ctype} *restrict sums) {{
  // out (k, m) = x^T g over n rows; sums (m) = g's column sums unless NULL
  const int64_t tiles = (k + (sums != 0) + 5) / 6, panels = (m + {cols - 1}) / {cols};
  int raised = 0;
  #pragma omp parallel reduction(|:raised) if(n >= 32768)
  {{
    feclearexcept(FE_ALL_EXCEPT);
    {ctype} acc[tiles * 6 * panels * {cols}], xp[{rows} * tiles * 6], gp[{rows} * panels * {cols}];
    for (int64_t j = 0; j < tiles * 6 * panels * {cols}; j++) acc[j] = 0;
    const int t = GPUAD_THREAD, threads = GPUAD_THREADS;
    const int64_t chunks = (n + {rows - 1}) / {rows}, lo = chunks * t / threads, hi = chunks * (t + 1) / threads;
    for (int64_t c = lo; c < hi; c++) {{
      const int64_t r0 = c * {rows}, rows = n - r0 < {rows} ? n - r0 : {rows};
      gpuad_runs_{suffix}(x + r0 * k, k, rows, 6, sums != 0, xp);
      gpuad_runs_{suffix}(g + r0 * m, m, rows, {cols}, 0, gp);
      const int64_t more = c + 1 < hi ? (n - r0 - rows < {rows} ? n - r0 - rows : {rows}) : 0;  // the next chunk's rows
      gpuad_tchunk_{suffix}(xp, tiles, gp, panels, rows, acc, (const char *)(x + (r0 + rows) * k), more * k * (int64_t)sizeof({ctype}), (const char *)(g + (r0 + rows) * m), more * m * (int64_t)sizeof({ctype}));
    }}
    for (int u = 0; u < threads; u++) {{
      #pragma omp barrier
      if (u == t) {{
        for (int64_t i = 0; i < k + (sums != 0); i++)
          for (int64_t j = 0; j < m; j++) {{
            {ctype} *o = i < k ? out + i * m + j : sums + j;
            *o = u ? *o + acc[i * panels * {cols} + j] : acc[i * panels * {cols} + j];
          }}
      }}
    }}
    raised |= fetestexcept(FE_DIVBYZERO | FE_INVALID | FE_OVERFLOW | FE_UNDERFLOW);
  }}
  return raised;
}}
"""


_DENSE = (
    "#include <string.h>\n#ifdef _OPENMP\n#include <omp.h>\n#define GPUAD_THREAD omp_get_thread_num()\n"
    "#define GPUAD_THREADS omp_get_num_threads()\n#else\n#define GPUAD_THREAD 0\n#define GPUAD_THREADS 1\n#endif\n" + _dense_source("double", "d") + _dense_source("float", "f")
    + _dense_source("double", "dw", 2 * DENSE_VECTOR_BYTES) + _dense_source("float", "fw", 2 * DENSE_VECTOR_BYTES)
    + _tproduct_source("double", "d") + _tproduct_source("float", "f")
)

PRELUDE = _prelude()


@functools.lru_cache(maxsize=8)
def _compiler_identity(cc: str) -> str:
    """The compiler's version line; raises CompileError where it does not run."""
    path = shutil.which(cc)
    if path is None:
        raise CompileError(f"no C compiler: {cc!r} (from CC, else cc) is not on PATH")
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError) as e:
        raise CompileError(f"the C compiler {cc!r} does not run: {e}") from None
    return path + "\n" + out.stdout.splitlines()[0] if out.stdout else path


def compiler() -> tuple[str, str]:
    """The C compiler to use (``CC``, else ``cc``) and its identity; CompileError if it is missing."""
    cc = os.environ.get("CC") or "cc"
    return cc, _compiler_identity(cc)


@functools.lru_cache(maxsize=1)
def _cpu() -> str:
    """What -march=native builds for: the CPU's model and feature flags."""
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
        keep = [line for line in info.splitlines() if line.startswith(("model name", "flags"))][:2]
        return "\n".join(keep)
    except OSError:
        return platform.machine() + platform.processor()


def cache_dir() -> str:
    """The compile cache's directory, created private to the user."""
    path = os.environ.get(CACHE_ENV)
    if not path:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        path = os.path.join(base, "gpuad")
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def _load(path: str, key: str) -> Any | None:
    """The library at ``path`` if it loads and was built from the source named ``key``."""
    try:
        lib = ctypes.CDLL(path)
        built_from = (ctypes.c_char * (len(key) + 1)).in_dll(lib, "gpuad_source_hash").value
    except (OSError, ValueError):
        return None
    return lib if built_from == key.encode() else None


def build(source: str) -> tuple[Any, float, bool]:
    """The loaded library of ``source`` (C, without the prelude): from the cache where it is
    there, else compiled now. Returns (library, seconds spent compiling, whether it was cached)."""
    cc, identity = compiler()
    full = PRELUDE + "\n" + source
    key = hashlib.sha256("\0".join((full, identity, " ".join(C_FLAGS), _cpu())).encode()).hexdigest()[:40]
    full += f'\nconst char gpuad_source_hash[] = "{key}";\n'
    directory = cache_dir()
    path = os.path.join(directory, f"gpuad-{key}.so")
    if os.path.exists(path):
        lib = _load(path, key)
        if lib is not None:
            return lib, 0.0, True
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=directory) as work:
        c_file = os.path.join(work, "kernels.c")
        with open(c_file, "w") as f:
            f.write(full)
        tmp_lib = os.path.join(work, "kernels.so")
        errors = _run_cc(cc, c_file, tmp_lib, C_FLAGS)
        if errors is not None:  # without OpenMP or vector math, before giving up
            flags = tuple(f for f in C_FLAGS if f != "-fopenmp") + ("-DGPUAD_NO_VECTOR_MATH",)
            again = _run_cc(cc, c_file, tmp_lib, flags)
            if again is not None:
                raise CompileError(f"the C compiler {cc!r} refused a generated kernel:\n{errors[-2000:]}")
        # Loaded under its own new name: the dynamic loader hands out a library already loaded
        # under the cache's name (a foreign file found there earlier) instead of reading it again.
        lib = _load(tmp_lib, key)
        if lib is None:
            raise CompileError(f"a kernel library just built does not load: {tmp_lib}")
        os.replace(tmp_lib, path)  # atomic: readers see the old file, no file, or this one whole
    seconds = time.perf_counter() - start
    return lib, seconds, False


def _run_cc(cc: str, c_file: str, out: str, flags: tuple[str, ...]) -> str | None:
    """Compile; None on success, else the compiler's messages."""
    libs = ["-lmvec", "-lm"] if "-DGPUAD_NO_VECTOR_MATH" not in flags else ["-lm"]
    try:
        done = subprocess.run([cc, *flags, "-o", out, c_file, *libs], capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.SubprocessError) as e:
        return str(e)
    return None if done.returncode == 0 else done.stderr or f"exit status {done.returncode}"


def cuda_ptx(source: str, nvcc: str = "nvcc") -> str:
    """PTX of a generated CUDA source by ``nvcc --ptx`` (what the tests use to check the CUDA
    emitter where no GPU is present); CompileError with nvcc's messages if it refuses."""
    with tempfile.TemporaryDirectory() as work:
        cu = os.path.join(work, "kernels.cu")
        with open(cu, "w") as f:
            f.write(source)
        out = os.path.join(work, "kernels.ptx")
        try:
            done = subprocess.run([nvcc, "--ptx", "-o", out, cu], capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.SubprocessError) as e:
            raise CompileError(f"nvcc does not run: {e}") from None
        if done.returncode != 0:
            raise CompileError(f"nvcc refused a generated kernel:\n{done.stderr[-2000:]}")
        with open(out) as f:
            return f.read()
