"""Per-point kernels: a recorded program with runs of operations replaced by compiled kernels.

The recording of a vmapped function has the batch axis in front of every batched value, and every
primitive's parameters are per point (negative axes, per-point shapes). A kernel loops over that
axis (``n`` points) and computes, for each point, every element of every value it holds as one
scalar (``scalar.py``): elementwise maths, reductions and products over the per-point axes,
indexing and its transposes, all in registers; only the values read outside the kernel are
written to memory. An operation joins a kernel only if its result at point ``i`` depends on its
operands at point ``i`` alone (checked per primitive in ``_operand_forms``), its per-point sizes
are small, and the compiler knows it; anything else (a big matrix product, a sort, a linear
solve) stays an array-library operation between kernels, and a kernel ends where such an
operation reads one of its values.

A program without a batch axis (``jit(grad(f))`` on one point) is one "point": every value whole,
a loop of one. ``plan`` tries both readings and keeps the one that compiles more operations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy  # host-ok: object arrays of symbolic scalars (the compiler's data, not the user's)

from .. import backend
from ..primitives import Primitive, _TABLE
from . import linalg, scalar, toolchain
from .scalar import Builder, Scalar

__all__ = ["Kernel", "Built", "schedule", "plan", "chains", "readers", "build_kernel", "compiles"]

MAX_POINT_ELEMENTS = 48  # elements of one value per point (wider values: the library, until fused loops come)
MAX_KERNEL_ELEMENTS = 6000  # per-point elements written by one kernel's operations (compile time)
MAX_WHOLE_ELEMENTS = 256  # elements of an operand every point reads whole (more spill registers)
MAX_MATMUL = 64  # multiply-adds per point of a matrix product in a kernel (bigger: BLAS does better)
INLINE_CONSTANT = 64  # constants up to this size become literals of the source
MIN_OPS = 2  # a kernel of one operation is no better than the library's own
MAX_DENSE = 128  # rows times a shared matrix of up to this many rows and columns: the kernels' own product

_LINALG = frozenset(linalg.RULES)  # small matrices per point, unrolled (linalg.py)
_STRUCTURAL = frozenset((
    "getitem", "reshape", "broadcast_to", "permute_dims", "flip", "concat", "embed", "embed_add",
    "sum", "prod", "cumulative_sum", "matmul", "max", "min",
)) | _LINALG
_ONE_OPERAND_LEAD = frozenset(("getitem", "permute_dims", "embed"))


@dataclass
class Kernel:
    """A run of program operations (indices) compiled as one loop over ``n`` points
    (``batched``), or over one point holding every value whole."""

    batched: bool
    n: int
    flat: bool = False  # every value of one shape, elementwise: its elements are the points
    summed_product: bool = False  # x^T g summed over n rows (and g's column sums): ``summed_products``
    inner: int | None = None  # a flat kernel with broadcast operands: its shape's last axis (a loop of its own)
    recomputed: set[int] = field(default_factory=set)  # operations of other kernels it computes again (never writes)
    ops: list[int] = field(default_factory=list)
    inside: set[int] = field(default_factory=set)  # variables its operations compute
    summed: set[int] = field(default_factory=set)  # of them, sums over the points (read only outside)
    elements: int = 0


def _shape_dtype(ref: Any, avals: list[Any]) -> tuple[tuple[int, ...], str] | None:
    if type(ref) is int:
        aval = avals[ref]
        return None if aval is None else (aval[0], backend.dtype_name(aval[1]))
    v = ref.value
    if type(v) in (bool, int, float):
        return (), "weak"  # a Python number: it takes the other operands' dtype, as in NumPy
    if not backend.is_array(v) and not isinstance(v, numpy.generic):
        return None
    return tuple(v.shape), backend.dtype_name(v.dtype)


def _concrete(dtypes: list[str], out_dtype: str) -> list[str]:
    """Operand dtypes with Python numbers given the dtype they compute in."""
    typed = [d for d in dtypes if d != "weak"]
    common = str(numpy.result_type(*typed)) if typed else out_dtype  # host-ok
    return [common if d == "weak" else d for d in dtypes]


def _operand_forms(prim: Primitive, refs: tuple[Any, ...], params: dict[str, Any], out_shape: tuple[int, ...], avals: list[Any], n: int | None, inside: set[int]) -> list[str] | None:
    """How each operand is read per point ("point": its slice at the point; "whole": all of it,
    the same for every point), or None if the operation cannot join a kernel in this reading
    (``n`` points along axis 0; None: one point, every value whole)."""
    shapes = [_shape_dtype(r, avals) for r in refs]
    if any(s is None for s in shapes):
        return None
    if n is None:
        return ["whole"] * len(refs)
    name = prim.name
    forms = []
    for r, (shape, _) in zip(refs, shapes):
        at_points = len(shape) >= 1 and shape[0] == n
        internal = type(r) is int and r in inside
        if name in _STRUCTURAL:
            aligned = at_points and _aligned_structural(name, params, shape, out_shape, len(forms))
        else:  # elementwise, with NumPy's broadcasting: an operand of full rank lines up with the result
            aligned = at_points and len(shape) == len(out_shape)
        if aligned:
            forms.append("point")
        elif internal or math.prod(shape) > MAX_WHOLE_ELEMENTS:
            return None  # a value of the kernel is only known one point at a time
        elif name in _STRUCTURAL and not _whole_allowed(name, params, shape, out_shape, len(forms)):
            return None
        else:
            forms.append("whole")
    if name in _STRUCTURAL and "point" not in forms and name != "broadcast_to":
        return None
    return forms


def _lead(name: str, params: dict[str, Any], shape: tuple[int, ...], position: int) -> int:
    """How many leading axes of the operand the primitive's per-point parameters leave alone."""
    if name == "getitem":
        return len(shape) - sum(1 for item in params["index"][1:] if item is not None)
    if name == "embed":
        return len(shape) - _index_ndim(params["index"])
    if name == "embed_add":
        has_base = params["has_base"]
        if has_base and position == 0:
            return -1  # the base: elementwise with the result
        index = params["indices"][position - (1 if has_base else 0)]
        return len(shape) - _index_ndim(index)
    if name == "permute_dims":
        return len(shape) - len(params["axes"])
    if name in ("reshape", "broadcast_to"):
        return len(shape) - params["in_ndim"]
    return 0


def _index_ndim(index: tuple[Any, ...]) -> int:
    return sum(1 for item in index[1:] if item is None or isinstance(item, slice))


def _aligned_structural(name: str, params: dict[str, Any], shape: tuple[int, ...], out_shape: tuple[int, ...], position: int) -> bool:
    """Whether the primitive maps the operand's axis 0 to the result's axis 0 point by point."""
    ndim = len(shape)
    if name == "embed_add" and params["has_base"] and position == 0:
        return ndim == len(out_shape)
    if name in _ONE_OPERAND_LEAD or name == "embed_add":
        lead = _lead(name, params, shape, position)
        if lead >= 1:
            return True
        if name == "permute_dims":
            return params["axes"][0] == 0
        if name == "getitem":
            first = params["index"][1]
            return isinstance(first, slice) and first.indices(shape[0]) == (0, shape[0], 1)
        return False
    if name in ("reshape", "broadcast_to"):
        if _lead(name, params, shape, position) >= 1:
            return True
        return len(params["shape"]) >= 1 and params["shape"][0] == shape[0] and len(out_shape) >= 1
    if name in ("sum", "prod", "flip", "max", "min"):
        return -ndim not in params["axis"]
    if name == "cumulative_sum":
        return params["axis"] % ndim != 0
    if name == "concat":
        return params["axis"] % len(out_shape) != 0 and ndim == len(out_shape)
    if name in _LINALG:  # stacks of matrices: the point's axis a stack axis of the result's depth
        cores, out_core = linalg.CORE_AXES[name]
        stack = ndim - cores[position]
        return stack >= 1 and stack == len(out_shape) - out_core
    if name == "matmul":
        # The operand's leading axis is the result's: the rows of a single product, or a stack
        # axis of a stack as deep as the result's (NumPy broadcasts the shallower one).
        va, vb = params.get("vec", (False, False))
        if position == 0 and ndim == 2 and not va:
            return len(out_shape) == 2
        stack = ndim - (1 if (va if position == 0 else vb) else 2)
        out_stack = len(out_shape) - (0 if va else 1) - (0 if vb else 1)
        return stack >= 1 and stack == out_stack
    return False


def _whole_allowed(name: str, params: dict[str, Any], shape: tuple[int, ...], out_shape: tuple[int, ...], position: int) -> bool:
    """Whether an operand the points do not index may be read whole by this structural primitive."""
    if name == "matmul" or name in _LINALG:  # a matrix every point uses
        return True
    if name == "broadcast_to":  # a shared value repeated over the points
        return _lead(name, params, shape, position) == 0 and (len(shape) < len(params["shape"]) or shape[0] == 1)
    if name == "embed_add" and params["has_base"] and position == 0:
        return True
    return False


def compiles(prim: Primitive) -> bool:
    """Whether the compiler knows the primitive at all (it may still leave a given use of it to
    the array library: big per-point sizes, an operand read across points, other dtypes)."""
    return _TABLE.get(prim.name) is prim and (prim.name in _STRUCTURAL or prim.name in scalar.ELEMENTWISE)


def _known(prim: Primitive, refs: tuple[Any, ...], params: dict[str, Any], out: Any, avals: list[Any]) -> bool:
    if type(out) is not int or avals[out] is None or _TABLE.get(prim.name) is not prim:
        return False
    out_dtype = backend.dtype_name(avals[out][1])
    if out_dtype not in scalar.C_TYPES:
        return False
    shapes = [_shape_dtype(r, avals) for r in refs]
    if any(s is None for s in shapes):
        return False
    dtypes = _concrete([s[1] for s in shapes], out_dtype)
    if prim.name in _LINALG and (out_dtype not in ("float32", "float64") or not linalg.matrix_sizes_ok(prim.name, [s[0] for s in shapes])):
        return False
    if prim.name in _STRUCTURAL:
        # In the result's dtype throughout: a sum of booleans counts in integers (NumPy's
        # promotion), which the scalar form of its additions would not.
        return all(d == out_dtype for d in dtypes)
    return scalar.elementwise_rule(prim.name, params, dtypes, out_dtype) is not None


def _point_elements(shape: tuple[int, ...], n: int | None) -> int:
    return math.prod(shape[1:]) if n is not None else math.prod(shape)


def _partition(program: list, avals: list[Any], n: int | None, taken: set[int]) -> list[Kernel]:
    """Kernels of one reading (``n`` points, or one point) over the operations not ``taken`` by
    kernels already planned (those count as array-library operations here)."""
    kernels: list[Kernel] = []
    current: Kernel | None = None
    for k, (prim, refs, params, out) in enumerate(program):
        forms = None
        if k not in taken and _known(prim, refs, params, out, avals):
            shape = avals[out][0]
            if (n is None or (len(shape) >= 1 and shape[0] == n)) and _point_elements(shape, n) <= MAX_POINT_ELEMENTS:
                inside = current.inside - current.summed if current else set()
                forms = _operand_forms(prim, refs, params, shape, avals, n, inside)
                if forms is not None and current and any(type(r) is int and r in current.summed for r in refs):
                    forms = None
                if forms is not None and n is None and any(math.prod(_shape_dtype(r, avals)[0]) > MAX_POINT_ELEMENTS for r in refs):
                    forms = None
                if forms is not None and prim.name == "matmul" and _matmul_cost(refs, avals, n) > MAX_MATMUL:
                    forms = None
        sums_points = forms is None and k not in taken and _sums_points(prim, refs, params, out, avals, n)
        if forms is not None or sums_points:
            size = _point_elements(avals[out][0], n) if forms is not None else math.prod(avals[out][0])
            if current is None or current.elements + size > MAX_KERNEL_ELEMENTS:
                current = Kernel(batched=n is not None, n=n if n is not None else 1)
                kernels.append(current)
            current.ops.append(k)
            current.inside.add(out)
            if sums_points:
                current.summed.add(out)
            current.elements += size
            continue
        # An array-library operation: a kernel whose value it reads ends here (it runs before it).
        if current is not None and any(type(r) is int and r in current.inside for r in refs):
            current = None
    return [kern for kern in kernels if len(kern.ops) >= MIN_OPS]


def _sums_points(prim: Primitive, refs: tuple[Any, ...], params: dict[str, Any], out: Any, avals: list[Any], n: int | None) -> bool:
    """A floating sum over the points' axis (and per-point axes) of one operand read per point:
    the kernel adds up each point's part as it goes (a shared parameter's gradient)."""
    if n is None or prim.name != "sum" or not _known(prim, refs, params, out, avals):
        return False
    shape, dtype = _shape_dtype(refs[0], avals)
    return (
        dtype in ("float32", "float64") and len(shape) >= 1 and shape[0] == n and -len(shape) in params["axis"]
        and math.prod(shape[1:]) <= MAX_POINT_ELEMENTS
    )


def _matmul_cost(refs: tuple[Any, ...], avals: list[Any], n: int | None) -> int:
    (a, _), (b, _) = (_shape_dtype(r, avals) for r in refs)
    a_pt = a[1:] if n is not None and len(a) >= 2 and a[0] == n else a
    return math.prod(a_pt) * (b[-1] if len(b) >= 2 else 1)


def schedule(program: list, avals: list[Any], in_vars: list[int]) -> list:
    """The program with the operations that work on no point (a loss's total, the shared
    parameters' own arithmetic) moved after the per-point ones, except those a per-point
    operation needs: one that reads a sum over the points would otherwise end the kernel that
    computes the sum, and the per-point work after it would need a kernel of its own (a
    gradient's backward sweep after its forward one). The points are the largest leading size
    of the inputs. The order stays topological (the recording has no side effects)."""
    sizes = [avals[v][0][0] for v in in_vars if avals[v] is not None and len(avals[v][0]) >= 1]
    if not sizes:
        return program
    n = max(sizes)

    def batched(ref: Any) -> bool:
        return type(ref) is int and avals[ref] is not None and len(avals[ref][0]) >= 1 and avals[ref][0][0] == n

    producer = {}
    for k, (_, refs, _, out) in enumerate(program):
        for o in (out if type(out) is tuple else (out,)):
            producer[o] = k
    needed = set()  # the per-point operations and everything they read, transitively
    for k in reversed(range(len(program))):
        _, refs, _, out = program[k]
        outs = out if type(out) is tuple else (out,)
        if k in needed or any(batched(r) for r in refs) or any(batched(o) for o in outs):
            needed.add(k)
            needed.update(producer[r] for r in refs if type(r) is int and r in producer)
    return [op for k, op in enumerate(program) if k in needed] + [op for k, op in enumerate(program) if k not in needed]


def plan(program: list, avals: list[Any], in_vars: list[int]) -> list[Kernel]:
    """The kernels of the best reading: points along an input's leading axis (then one-point
    kernels over the rest: the shared parameters' own work), or one point for everything; then
    flat kernels for what is left. Best: the most operations compiled, then the fewest kernels."""
    sizes = []
    for v in in_vars:
        shape = avals[v][0] if avals[v] is not None else ()
        if len(shape) >= 1 and shape[0] not in sizes:
            sizes.append(shape[0])
    best: list[Kernel] = []
    for n in [*sizes, None]:
        kernels = _partition(program, avals, n, set())
        if n is not None:
            # Where a kernel's results are read by a later kernel of another reading, the closing
            # rule (an operation outside a kernel that reads it ends it) keeps every kernel's
            # launch, placed after its last operation, after everything it reads.
            kernels = kernels + _partition(program, avals, None, {i for k in kernels for i in k.ops})
        taken = {i for k in kernels for i in k.ops}
        more = summed_products(program, avals, taken)
        kernels = kernels + more
        taken |= {i for k in more for i in k.ops}
        # What is left of elementwise work on values too wide per point (an MLP's hidden layers):
        # fused loops over all their elements, one shape at a time.
        for shape in _elementwise_shapes(program, avals, taken):
            more = _partition_flat(program, avals, shape, taken)
            kernels = kernels + more
            taken |= {i for k in more for i in k.ops}
        if (len(taken), -len(kernels)) > (sum(len(k.ops) for k in best), -len(best)):
            best = kernels
    return sorted(best, key=lambda k: k.ops[0])


MAX_RECOMPUTE = 8  # operations of an elementwise chain a flat kernel computes again rather than read


def recompute(program: list, avals: list[Any], kernels: list[Kernel], outputs: list[Any]) -> None:
    """Let flat kernels compute again the short chains of cheap elementwise operations of earlier
    flat kernels they would read, where those values are written for them alone (a sigmoid's
    1 + exp(-x) that its backward kernel needs: computed again from exp(-x), the forward kernel
    writes one array instead of two and the backward one reads one instead of two). A chain
    starts from values in memory: a product's, or a math function's (exp, tanh: never computed
    twice)."""
    native = {i: k for k in kernels for i in k.ops}
    producer = {out: i for i, (_, _, _, out) in enumerate(program) if type(out) is int}
    written = {o for kind, o in outputs if kind != "const"}  # read where a recomputation cannot help
    for i, (prim, refs, _, _) in enumerate(program):
        if i not in native or not native[i].flat or prim.name == "matmul":  # (a product reads whole rows)
            written.update(r for r in refs if type(r) is int)

    def chain(v: int, shape: tuple[int, ...], ops: set[int]) -> bool:
        """Add to ``ops`` the operations that compute ``v`` from values in memory; False if it
        takes more than MAX_RECOMPUTE of them or anything but flat elementwise ones."""
        j = producer.get(v)
        if j is not None and j in native and (program[j][0].name == "matmul" or program[j][0].name in scalar.TRANSCENDENTAL):
            # Read from memory (its kernel writes it: one array, not the chain's): a product, or a
            # math function's value (an exp costs more than reading the number it gives).
            return True
        if j is None or j not in native or not native[j].flat or j in ops:
            return j is not None and j in ops
        prim, refs, _, out = program[j]
        if prim.name in _STRUCTURAL or tuple(avals[out][0]) != shape:
            return False
        ops.add(j)
        if len(ops) > MAX_RECOMPUTE:
            return False
        for r in refs:
            if type(r) is int and r in native_inside and r not in written and not chain(r, shape, ops):
                return False
        return True

    native_inside = {v for k in kernels if k.flat for v in k.inside}
    for k in kernels:
        if not k.flat:
            continue
        shape = tuple(avals[program[k.ops[-1]][3]][0])
        for i in sorted(k.ops):
            for r in program[i][1]:
                if type(r) is not int or r in k.inside or r in written or r not in native_inside:
                    continue
                ops: set[int] = set()
                if chain(r, shape, ops):
                    k.recomputed |= ops
                    k.ops = sorted(set(k.ops) | ops)
                    k.inside |= {program[j][3] for j in ops}
                    if any(f in ("row", "col") for j in ops for f in _flat_forms(program[j][1], shape, avals, set())):
                        k.inner = shape[-1]


def _has_products(kernel: Kernel, program: list) -> bool:
    return kernel.flat and any(program[i][0].name == "matmul" for i in kernel.ops)


def chains(program: list, kernels: list[Kernel]) -> list[list[Kernel]]:
    """The kernels in runs that the C code runs as one launch, block of rows by block: flat
    kernels with dense products over the same rows where each one's products read values of the
    one before (a network's layers, forward or backward), so that a layer's product reads the
    rows the layer before has just written from the cache instead of memory, and a value only
    later layers' products read is never written to memory at all (``lowering.runs``: the MLP's
    input gradient in float64 13% faster from B = 1e5, 3% at 1e4; float32 unchanged). The
    launch runs after the run's last operation: no operation outside the run may read its
    values before. Every other kernel is a run of its own (on CUDA every kernel is)."""
    runs: list[list[Kernel]] = []
    for kernel in sorted(kernels, key=lambda k: k.ops[-1]):
        run = runs[-1] if runs else None
        if run is not None and _has_products(kernel, program) and _has_products(run[-1], program) and _chains_onto(run, kernel, program):
            run.append(kernel)
        else:
            runs.append([kernel])
    return runs


def _chains_onto(run: list[Kernel], kernel: Kernel, program: list) -> bool:
    """Whether ``kernel`` can join the run: the same rows, a product of the run's last kernel's
    value, and nothing else reading the run's values before the run's launch."""
    last = run[-1]
    if last.n // last.inner != kernel.n // kernel.inner:
        return False
    if not any(program[i][0].name == "matmul" and program[i][1][0] in last.inside for i in kernel.ops if i not in kernel.recomputed):
        return False
    inside = {i for k in run + [kernel] for i in k.ops}
    values = {v for k in run for v in k.inside}
    return not any(
        type(r) is int and r in values
        for j in range(run[0].ops[-1] + 1, kernel.ops[-1]) if j not in inside for r in program[j][1]
    )


def dense(prim: Primitive, refs: tuple[Any, ...], params: dict[str, Any], out: Any, avals: list[Any]) -> bool:
    """A product of rows (R, K) times a shared matrix (K, N), K and N up to MAX_DENSE, in float32
    or float64: a flat kernel over (R, N) computes it itself (``toolchain``'s register tiles),
    for the elementwise work on it (a layer's bias and activation) to read from its buffer."""
    if prim.name != "matmul" or params.get("vec", (False, False))[1] or not _known(prim, refs, params, out, avals):
        return False
    (a, dtype), (b, _) = (_shape_dtype(r, avals) for r in refs)
    return (
        dtype in ("float32", "float64") and len(a) == 2 and len(b) == 2 and a[1] == b[0]
        and 1 <= b[0] <= MAX_DENSE and 1 <= b[1] <= MAX_DENSE and a[0] >= 1
    )


def readers(program: list) -> dict[int, list[int]]:
    """The operations (indices) that read each variable."""
    read_by: dict[int, list[int]] = {}
    for i, (_, refs, _, _) in enumerate(program):
        for r in refs:
            if type(r) is int:
                read_by.setdefault(r, []).append(i)
    return read_by


MIN_SUMMED_ROWS = toolchain.TPRODUCT_ROWS  # fewer rows: the library's product costs less than a call


def summed_products(program: list, avals: list[Any], taken: set[int]) -> list[Kernel]:
    """Kernels for products summed over rows, ``matmul(permute_dims(x), g)`` with x (R, K) and
    g (R, N), K and N up to MAX_DENSE, in float32 or float64 (a layer's weight gradient): the
    kernel reads x and g as they are (the transpose is never made) and sums over the rows in
    register tiles (``toolchain``), with g's column sums (``sum(g, axis=-2)``: the bias
    gradient) as a column of ones appended to x."""
    producer = {out: i for i, (_, _, _, out) in enumerate(program) if type(out) is int}
    read_by = readers(program)
    taken = set(taken)
    kernels = []
    for m, (prim, refs, params, out) in enumerate(program):
        if m in taken or prim.name != "matmul" or any(params.get("vec", ())) or not _known(prim, refs, params, out, avals):
            continue
        transposed, g = refs
        p = producer.get(transposed) if type(transposed) is int else None
        if p is None or p in taken or program[p][0].name != "permute_dims" or tuple(program[p][2]["axes"]) != (1, 0) or read_by[transposed] != [m]:
            continue
        x = program[p][1][0]
        (xs, dtype), (gs, _) = _shape_dtype(x, avals), _shape_dtype(g, avals)
        if not (
            dtype in ("float32", "float64") and len(xs) == 2 and len(gs) == 2 and xs[0] == gs[0] >= MIN_SUMMED_ROWS
            and 1 <= xs[1] <= MAX_DENSE and 1 <= gs[1] <= MAX_DENSE
        ):
            continue
        kernel = Kernel(batched=True, n=xs[0], summed_product=True, ops=sorted([p, m]), inside={transposed, out})
        for s in read_by.get(g, []) if type(g) is int else []:
            s_prim, s_refs, s_params, s_out = program[s]
            if s not in taken and s_prim.name == "sum" and tuple(s_params["axis"]) == (-2,) and _known(s_prim, s_refs, s_params, s_out, avals):
                ops = sorted(kernel.ops + [s])
                # The launch runs after its last operation: nothing before that may read a result.
                if not any(type(r) is int and r in (s_out, out) for j in range(ops[0], ops[-1]) if j not in ops for r in program[j][1]):
                    kernel.ops, kernel.inside = ops, kernel.inside | {s_out}
                    break
        taken.update(kernel.ops)
        kernels.append(kernel)
    return kernels


def _elementwise_shapes(program: list, avals: list[Any], taken: set[int]) -> list[tuple[int, ...]]:
    shapes: list[tuple[int, ...]] = []
    for k, (prim, refs, params, out) in enumerate(program):
        if k not in taken and ((prim.name not in _STRUCTURAL and _known(prim, refs, params, out, avals)) or dense(prim, refs, params, out, avals)):
            shape = tuple(avals[out][0])
            if math.prod(shape) > 1 and shape not in shapes:
                shapes.append(shape)
    return shapes


def _flat_forms(refs: tuple[Any, ...], shape: tuple[int, ...], avals: list[Any], inside: set[int]) -> list[str] | None:
    """Operand forms of an elementwise operation in a flat kernel over ``shape``: of that shape
    (read element by element), single numbers from outside, or (NumPy's broadcasting along the
    last axis) from outside a vector along the last axis ("col": a bias) or a column of one
    number per row ("row": a softmax's normaliser, shape (..., 1))."""
    forms = []
    for r in refs:
        s = tuple(_shape_dtype(r, avals)[0])
        if s == shape:
            forms.append("point")
        elif type(r) is int and r in inside:
            return None
        elif math.prod(s) == 1:
            forms.append("whole")
        elif len(shape) >= 2 and len(s) <= len(shape) and s[-1] == shape[-1] and math.prod(s) == shape[-1]:
            forms.append("col")
        elif len(s) == len(shape) and s[-1] == 1 and s[:-1] == shape[:-1]:
            forms.append("row")
        else:
            return None
    return forms


def _partition_flat(program: list, avals: list[Any], shape: tuple[int, ...], taken: set[int]) -> list[Kernel]:
    kernels: list[Kernel] = []
    current: Kernel | None = None
    for k, (prim, refs, params, out) in enumerate(program):
        product = k not in taken and dense(prim, refs, params, out, avals) and tuple(avals[out][0]) == shape
        reads_current = current is not None and any(type(r) is int and r in current.inside for r in refs)
        if product and reads_current:
            current = None  # a product reads whole rows: of values of an earlier kernel only
        ok = product or (
            k not in taken and prim.name not in _STRUCTURAL and _known(prim, refs, params, out, avals)
            and tuple(avals[out][0]) == shape
            and _flat_forms(refs, shape, avals, current.inside if current else set()) is not None
        )
        if ok:
            if current is None or current.elements >= MAX_KERNEL_ELEMENTS:
                current = Kernel(batched=True, n=math.prod(shape), flat=True)
                kernels.append(current)
            if product or any(f in ("row", "col") for f in _flat_forms(refs, shape, avals, current.inside)):
                current.inner = shape[-1]
            current.ops.append(k)
            current.inside.add(out)
            current.elements += 1
            continue
        if reads_current:
            current = None
    # A product alone is still a kernel: the register tiles beat the library's BLAS on these shapes.
    return [kern for kern in kernels if len(kern.ops) >= MIN_OPS or any(program[i][0].name == "matmul" for i in kern.ops)]


# ---------------------------------------------------------------------------------------------
# Building a kernel: run its operations on scalars
# ---------------------------------------------------------------------------------------------

_NP = backend.namespace_of_backend("numpy")


class _Operands:
    """The kernel's operands (program variables or constants, each read per point or whole) and
    the scalars that read them."""

    def __init__(self, builder: Builder, kernel: Kernel):
        self.b, self.kernel = builder, kernel
        self.refs: list[Any] = []  # program refs, in slot order
        self.specs: list[tuple[str, int, tuple[int, ...]]] = []  # (dtype, elements per point, shape)
        self.products: list[tuple[int, int, int, int]] = []  # dense products: (rows' slot, matrix's slot, K, N)
        self._slots: dict[Any, int] = {}

    def read(self, ref: Any, form: str, shape: tuple[int, ...], dtype: str) -> numpy.ndarray:
        """An object array of scalars for the operand: its point's slice (with a leading axis of
        1) or all of it."""
        if form in ("row", "col"):  # one element per row, or per column, of a flat kernel
            return self._read_broadcast(ref, form, shape, dtype)
        point = form == "point" and self.kernel.batched
        if type(ref) is not int:
            value = ref.value if backend.is_array(ref.value) else numpy.asarray(ref.value)  # host-ok
            uniform = all(s == 0 for s in getattr(value, "strides", ())) or math.prod(shape) == 1
            # Small constants read whole, and uniform ones (a symbolic zero's view), become literals;
            # a constant that varies along the points' axis is read per point like any operand.
            if uniform or (not point and math.prod(shape) <= INLINE_CONSTANT):
                # host-ok: a constant of the recording, small or uniform, read once when compiling
                host = backend.to_numpy(value[(0,) * value.ndim] if uniform and value.ndim else value)
                flat = host.reshape(-1)
                out = numpy.empty(shape, dtype=object)  # host-ok
                out_flat = out.reshape(-1)
                for j in range(out_flat.size):
                    out_flat[j] = self.b.const(flat[j] if flat.size > 1 else flat[0], dtype)
                return out[:1] if point else out
        slot = self._slot(ref, point, (dtype, math.prod(shape[1:]) if point else math.prod(shape), shape))
        per_point = (1,) + tuple(shape[1:]) if point else shape
        out = numpy.empty(per_point, dtype=object)  # host-ok
        flat = out.reshape(-1)
        for j in range(flat.size):
            flat[j] = self.b.load(slot, j, dtype, point or not self.kernel.batched)
        return out

    def product(self, a: Any, b: Any, avals: list[Any], dtype: str) -> Scalar:
        """The element (row r, column c) of a dense product ``a @ b`` of a flat kernel."""
        (shape_a, _), (shape_b, _) = _shape_dtype(a, avals), _shape_dtype(b, avals)
        k, n = shape_b
        spec = (self._slot(a, "rows", (dtype, k, shape_a)), self._slot(b, "whole", (dtype, k * n, shape_b)), k, n)
        if spec not in self.products:
            self.products.append(spec)
        return self.b.load(self.products.index(spec), 0, dtype, "product")

    def _read_broadcast(self, ref: Any, form: str, shape: tuple[int, ...], dtype: str) -> numpy.ndarray:
        slot = self._slot(ref, form, (dtype, 1, shape))
        return numpy.asarray(self.b.load(slot, 0, dtype, form), dtype=object)  # host-ok

    def _slot(self, ref: Any, how: Any, spec: tuple[str, int, tuple[int, ...]]) -> int:
        """The operand slot of ``ref`` read this way (per point, whole, by row or by column)."""
        key = (id(ref) if type(ref) is not int else ref, how)
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = len(self.refs)
            self.refs.append(ref)
            self.specs.append(spec)
        return slot


def _extremum(builder: Builder, x: numpy.ndarray, op: str, axis: tuple[int, ...], keepdims: bool) -> numpy.ndarray:
    """max/min over negative axes with NumPy's NaN propagation, as one fold per axis."""
    fold = numpy.frompyfunc(lambda a, b: builder.node(op, (a, b), a.dtype), 2, 1)  # host-ok
    for ax in sorted(axis):
        x = fold.reduce(x, axis=ax, keepdims=True)
    return x if keepdims else x.reshape(tuple(d for i, d in enumerate(x.shape) if i - x.ndim not in axis))


def _run_structural(builder: Builder, prim: Primitive, operands: list[numpy.ndarray], params: dict[str, Any], out_shape: tuple[int, ...], n: int | None) -> numpy.ndarray:
    if prim.name in ("max", "min"):
        return _extremum(builder, operands[0], prim.name, params["axis"], params["keepdims"])
    if prim.name in _LINALG:
        return linalg.RULES[prim.name](builder, *operands)
    params = dict(params)
    if n is not None and prim.name in ("reshape", "broadcast_to") and len(params["shape"]) == len(out_shape):
        # A whole-shape reshape or broadcast that keeps the points' axis: per point, the same on a
        # points' axis of 1.
        params["shape"] = (1,) + tuple(params["shape"][1:])
    return prim.impl(_NP, *operands, **params)


def _as_scalars(b: Builder, values: Any, shape: tuple[int, ...], dtype: str) -> numpy.ndarray:
    arr = numpy.asarray(values, dtype=object)  # host-ok
    if tuple(arr.shape) != shape:
        raise toolchain.CompileError(f"internal: a kernel value has shape {arr.shape}, expected {shape}")
    flat = arr.reshape(-1)
    out = numpy.empty(flat.size, dtype=object)  # host-ok
    for j, s in enumerate(flat):
        out[j] = b.cast(s, dtype) if isinstance(s, Scalar) else b.const(s, dtype)
    return out.reshape(shape)


@dataclass
class Built:
    """A kernel ready to emit: its operands, outputs and scalars."""

    kernel: Kernel
    builder: Builder
    refs: list[Any]  # program refs of the operands, in slot order
    operand_specs: list[tuple[str, int, tuple[int, ...]]]
    outputs: list[int]  # program variables it writes
    scalars: list[list[Scalar]]  # per output, its per-point scalars (or per-point parts of a sum)
    out_shapes: list[tuple[int, ...]]
    out_dtypes: list[str]
    out_kinds: list[str]  # "point", or "sum" over the points
    products: list[tuple[int, int, int, int]] = field(default_factory=list)  # dense products (_Operands.products)
    summed_product: tuple[int, int] | None = None  # a summed-product kernel's (K, N) (Kernel.summed_product)


def build_kernel(kernel: Kernel, program: list, avals: list[Any], read_outside: set[int]) -> Built:
    if kernel.summed_product:
        return _build_summed_product(kernel, program, avals)
    b = Builder()
    operands = _Operands(b, kernel)
    values: dict[int, numpy.ndarray] = {}
    n = kernel.n if kernel.batched else None
    for k in kernel.ops:
        prim, refs, params, out = program[k]
        out_shape = tuple(avals[out][0])
        out_dtype = backend.dtype_name(avals[out][1])
        if out in kernel.summed:  # each point's part of a sum over the points
            (r,) = refs
            x = values[r] if type(r) is int and r in values else operands.read(r, "point", _shape_dtype(r, avals)[0], out_dtype)
            per_point_axes = tuple(a for a in params["axis"] if a != -x.ndim)
            part = prim.impl(_NP, x, axis=per_point_axes, keepdims=True) if per_point_axes else x
            values[out] = _as_scalars(b, part, tuple(part.shape), out_dtype)
            continue
        if kernel.flat and prim.name == "matmul":  # a dense product: its element at the point
            values[out] = numpy.asarray([operands.product(*refs, avals, out_dtype)], dtype=object)  # host-ok
            continue
        if kernel.flat:  # every value seen as (n,): one element per point
            forms = _flat_forms(refs, out_shape, avals, kernel.inside)
            out_shape = (kernel.n,)
        else:
            forms = _operand_forms(prim, refs, params, out_shape, avals, n, kernel.inside)
        dtypes = _concrete([_shape_dtype(r, avals)[1] for r in refs], out_dtype)
        args = []
        for r, form, dtype in zip(refs, forms, dtypes):
            if type(r) is int and r in values:
                args.append(values[r])
            else:
                shape = _shape_dtype(r, avals)[0]
                if kernel.flat and form in ("point", "whole"):
                    shape = (kernel.n,) if form == "point" else ()
                args.append(operands.read(r, form, shape, dtype))
        point_shape = ((1,) + out_shape[1:]) if n is not None else out_shape
        if prim.name in _STRUCTURAL:
            result = _run_structural(b, prim, args, params, out_shape, n)
        else:
            rule = scalar.elementwise_rule(prim.name, params, dtypes, out_dtype)
            wide = numpy.broadcast_arrays(*args) if args else []  # host-ok
            result = numpy.empty(wide[0].shape, dtype=object) if args else numpy.empty(point_shape, dtype=object)  # host-ok
            flat = result.reshape(-1)
            parts = [w.reshape(-1) for w in wide]
            for j in range(flat.size):
                flat[j] = rule(b, *(p[j] for p in parts))
            result = numpy.broadcast_to(result, point_shape)  # host-ok
        values[out] = _as_scalars(b, result, point_shape, out_dtype)
    again = {program[j][3] for j in kernel.recomputed}  # (the kernels they come from write them)
    outputs = [v for v in sorted(kernel.inside) if v in read_outside and v not in again]
    return Built(
        kernel, b, operands.refs, operands.specs, outputs, [list(values[v].reshape(-1)) for v in outputs],
        [tuple(avals[v][0]) for v in outputs], [backend.dtype_name(avals[v][1]) for v in outputs],
        ["sum" if v in kernel.summed else "point" for v in outputs], operands.products,
    )


def _build_summed_product(kernel: Kernel, program: list, avals: list[Any]) -> Built:
    """Operands x and g, outputs x^T g and (where the kernel has it) g's column sums."""
    ops = [program[i] for i in kernel.ops]
    (x,) = next(refs for prim, refs, _, _ in ops if prim.name == "permute_dims")
    product, sums = (next((out for prim, _, _, out in ops if prim.name == name), None) for name in ("matmul", "sum"))
    g = next(refs for prim, refs, _, _ in ops if prim.name == "matmul")[1]
    (xs, dtype), (gs, _) = _shape_dtype(x, avals), _shape_dtype(g, avals)
    outputs = [product] + ([sums] if sums is not None else [])
    return Built(
        kernel, Builder(), [x, g], [(dtype, xs[1], xs), (dtype, gs[1], gs)], outputs, [[] for _ in outputs],
        [tuple(avals[v][0]) for v in outputs], [dtype] * len(outputs), ["sum"] * len(outputs),
        summed_product=(xs[1], gs[1]),
    )
