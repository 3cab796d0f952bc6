"""The scalar form of a per-point program, and its C and CUDA text.

A kernel computes, for each point ``i``, every element of every per-point value as one scalar
(``Scalar``, a node of an expression graph). Elementwise primitives become one node per element
(``ELEMENTWISE``); the data movement and small reductions of the table (getitem, reshape, embed,
sum, matmul...) run their own ``impl`` from the primitive table on NumPy *object* arrays of these
nodes, so their meaning is the table's, never a second copy of it (the object arrays call the
nodes' ``+`` and ``*``). Equal nodes are made once (common subexpressions), and only the nodes an
output needs are written out (dead values dropped).

The text is the same for C and CUDA apart from the types of booleans and the function around the
loop (``emit_c`` / ``emit_cuda``): ``tests/test_compiler.py`` checks that both say the same.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy  # host-ok: dtype promotion of the compiler's own symbolic values

from . import toolchain

__all__ = ["Scalar", "Builder", "ELEMENTWISE", "C_TYPES", "emit_c", "emit_c_rows", "RowStage", "emit_cuda", "emit_c_summed_product", "emit_cuda_summed_product", "summed_product_threads"]

# The dtypes a kernel handles, and their C types (booleans are one byte holding 0 or 1 in both).
C_TYPES = {
    "float64": "double", "float32": "float", "int64": "int64_t", "int32": "int32_t",
    "int16": "int16_t", "int8": "int8_t", "uint8": "uint8_t", "bool": "_Bool",
}
_CUDA_TYPES = dict(C_TYPES, bool="bool", int64="long long", int32="int", int16="short", int8="signed char", uint8="unsigned char")


class Scalar:
    """One scalar of the per-point program: an operation on other scalars, a load, or a constant.
    Its ``+``, ``-``, ``*`` and ``/`` build nodes, so NumPy's object arrays of scalars run the
    primitive table's structural impls symbolically."""

    __slots__ = ("builder", "op", "args", "dtype", "param", "id")

    def __init__(self, builder: "Builder", op: str, args: tuple["Scalar", ...], dtype: str, param: Any, id_: int):
        self.builder, self.op, self.args, self.dtype, self.param, self.id = builder, op, args, dtype, param, id_

    def __add__(self, other: Any) -> "Scalar":
        return self.builder.arith("add", self, other)

    def __radd__(self, other: Any) -> "Scalar":
        return self.builder.arith("add", other, self)

    def __sub__(self, other: Any) -> "Scalar":
        return self.builder.arith("sub", self, other)

    def __rsub__(self, other: Any) -> "Scalar":
        return self.builder.arith("sub", other, self)

    def __mul__(self, other: Any) -> "Scalar":
        return self.builder.arith("mul", self, other)

    def __rmul__(self, other: Any) -> "Scalar":
        return self.builder.arith("mul", other, self)

    def __truediv__(self, other: Any) -> "Scalar":
        return self.builder.arith("div", self, other)

    def __neg__(self) -> "Scalar":
        return self.builder.node("neg", (self,), self.dtype)

    def __repr__(self) -> str:
        return f"t{self.id}:{self.op}"


class Builder:
    """Makes the nodes of one kernel, each distinct node once."""

    def __init__(self) -> None:
        self.nodes: list[Scalar] = []
        self._known: dict[Any, Scalar] = {}
        # Conditions under which a point is left to the array library (a degenerate matrix of
        # the small linear algebra, see linalg.py): the CPU kernel reports that one held.
        self.checks: list[Scalar] = []

    def node(self, op: str, args: tuple[Scalar, ...], dtype: str, param: Any = None) -> Scalar:
        key = (op, tuple(a.id for a in args), dtype, param)
        found = self._known.get(key)
        if found is None:
            found = Scalar(self, op, args, dtype, param, len(self.nodes))
            self.nodes.append(found)
            self._known[key] = found
        return found

    def const(self, value: Any, dtype: str) -> Scalar:
        """A literal of ``dtype``, kept bit-exact (NaN, infinities and -0.0 included)."""
        v = numpy.asarray(value).astype(dtype)  # host-ok
        return self.node("const", (), dtype, _literal_key(v))

    def load(self, slot: int, offset: int, dtype: str, varying: bool | str) -> Scalar:
        """Element ``offset`` of kernel operand ``slot``: of the current point (``varying``) or of
        the whole operand (the same for every point); in a flat kernel over rows and columns,
        "row" or "col": the operand's element of the current row (``r``) or column (``c``)."""
        return self.node("load", (), dtype, (slot, offset, varying))

    def lift(self, x: Any, like: str) -> Scalar:
        """A node for a Python or NumPy number met among nodes (a weak scalar: ``like``'s dtype)."""
        if isinstance(x, Scalar):
            return x
        if isinstance(x, numpy.generic) and not isinstance(x, (numpy.bool_,)):
            return self.const(x, str(numpy.result_type(x.dtype, like)))  # host-ok
        return self.const(x, like)

    def cast(self, x: Scalar, dtype: str) -> Scalar:
        return x if x.dtype == dtype else self.node("cast", (x,), dtype)

    def arith(self, op: str, a: Any, b: Any) -> Scalar:
        """``a op b`` with NumPy's promotion (a Python number takes the other side's dtype). An
        integer zero (what NumPy's object ``zeros`` hold) added to a node is that node."""
        if op == "add" and type(a) is int and a == 0 and isinstance(b, Scalar):
            return b
        if op == "add" and type(b) is int and b == 0 and isinstance(a, Scalar):
            return a
        like = a.dtype if isinstance(a, Scalar) else b.dtype
        a, b = self.lift(a, like), self.lift(b, like)
        dtype = str(numpy.result_type(a.dtype, b.dtype))  # host-ok
        return self.node(op, (self.cast(a, dtype), self.cast(b, dtype)), dtype)

    def call(self, fn: str, *args: Scalar, dtype: str | None = None) -> Scalar:
        return self.node(fn, args, dtype or args[0].dtype)

    def select(self, c: Scalar, x: Scalar, y: Scalar) -> Scalar:
        return x if x is y else self.node("select", (c, x, y), x.dtype)

    def check(self, condition: Scalar) -> None:
        """Have the kernel report (on the CPU) when ``condition`` holds at any point."""
        self.checks.append(condition)


def _literal_key(v: numpy.ndarray) -> Any:
    if v.dtype.kind == "f":
        return float(v).hex()  # host-ok: a literal of the source, on the host already
    if v.dtype.kind == "b":
        return bool(v)
    return int(v)


# ---------------------------------------------------------------------------------------------
# Elementwise primitives, as nodes. Each takes the builder, the operand scalars (already of the
# promoted dtype where the primitive computes in it), the primitive's params and the result dtype.
# ---------------------------------------------------------------------------------------------

# One-argument C99 math functions with the same meaning as the array library's (NumPy's rint is
# round-half-even, as C's nearbyint in the default rounding mode).
_C_UNARY = {
    name: name for name in (
        "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh", "acosh",
        "atanh", "exp", "expm1", "log", "log1p", "log2", "log10", "sqrt", "floor", "ceil",
        "trunc", "erf", "erfc",
    )
}
_C_UNARY.update(abs="fabs", round="nearbyint")
_C_BINARY = {"atan2": "atan2", "hypot": "hypot", "pow": "pow", "copysign": "copysign"}
_ARITH = {"add": "add", "subtract": "sub", "multiply": "mul", "divide": "div"}
_COMPARE = {"less": "lt", "less_equal": "le", "greater": "gt", "greater_equal": "ge", "equal": "eq", "not_equal": "ne"}
_LOGICAL = {"logical_and": "and", "logical_or": "or", "logical_xor": "ne"}
_TESTS = {"isnan": "isnan", "isinf": "isinf", "isfinite": "isfinite", "signbit": "signbit"}


def _promoted(b: Builder, xs: list[Scalar], dtype: str) -> list[Scalar]:
    return [b.cast(x, dtype) for x in xs]


def _integer_pow(b: Builder, x: Scalar, n: int) -> Scalar:
    # As the table's impl: products for small powers (exact, as JAX's integer_pow), pow otherwise.
    one = b.const(1, x.dtype)
    if n == 0:
        return one
    if n == 1:
        return x
    if n in (2, 3):
        return b.arith("mul", b.arith("mul", x, x), x) if n == 3 else b.arith("mul", x, x)
    if n in (-1, -2):
        return b.arith("div", one, x if n == -1 else b.arith("mul", x, x))
    return b.call("pow", x, b.const(float(n), x.dtype))  # host-ok: n is a Python int parameter


def _logistic(b: Builder, x: Scalar) -> Scalar:
    # The table's impl: exp(-|x|) never overflows.
    e = b.call("exp", b.node("neg", (b.call("fabs", x),), x.dtype))
    one = b.const(1, x.dtype)
    return b.select(b.node("ge", (x, b.const(0, x.dtype)), "bool"), b.arith("div", one, b.arith("add", one, e)), b.arith("div", e, b.arith("add", one, e)))


def _logaddexp(b: Builder, x: Scalar, y: Scalar) -> Scalar:
    delta = b.arith("sub", x, y)
    main = b.arith("add", b.node("max", (x, y), x.dtype), b.call("log1p", b.call("exp", b.node("neg", (b.call("fabs", delta),), x.dtype))))
    return b.select(b.node("isnan", (delta,), "bool"), b.arith("add", x, y), main)


def _sign(b: Builder, x: Scalar) -> Scalar:
    # NumPy's: 1, -1, 0 for either zero, NaN for NaN.
    zero, one = b.const(0, x.dtype), b.const(1, x.dtype)
    neg_one = b.const(-1, x.dtype)
    rest = b.select(b.node("eq", (x, zero), "bool"), zero, x)
    return b.select(b.node("gt", (x, zero), "bool"), one, b.select(b.node("lt", (x, zero), "bool"), neg_one, rest))


def _elementwise_rule(name: str, params: dict[str, Any], operand_dtypes: list[str], out: str) -> Callable[..., Scalar] | None:
    """The node-building rule of an elementwise primitive on operands of these dtypes giving
    ``out``, or None where the compiler does not know it (the op then stays with the library)."""
    floating = out in ("float32", "float64")
    common = str(numpy.result_type(*operand_dtypes)) if operand_dtypes else out  # host-ok
    if name in _C_UNARY and floating and not params:
        fn = _C_UNARY[name]
        return lambda b, x: b.call(fn, b.cast(x, out))
    if name in _C_BINARY and floating and not params:
        fn = _C_BINARY[name]
        return lambda b, x, y: b.call(fn, *_promoted(b, [x, y], out))
    if name in _ARITH and not params and out != "bool" and not (name == "divide" and not floating):
        op = _ARITH[name]
        return lambda b, x, y: b.node(op, tuple(_promoted(b, [x, y], out)), out)
    if name == "negative" and out != "bool" and not params:
        return lambda b, x: b.node("neg", (b.cast(x, out),), out)
    if name == "square" and out != "bool":
        return lambda b, x: b.arith("mul", b.cast(x, out), b.cast(x, out))
    if name == "reciprocal" and floating:
        return lambda b, x: b.arith("div", b.const(1, out), b.cast(x, out))
    if name in ("maximum", "minimum") and floating:
        op = "max" if name == "maximum" else "min"
        return lambda b, x, y: b.node(op, tuple(_promoted(b, [x, y], out)), out)
    if name == "relu" and floating:
        return lambda b, x: b.node("max", (b.cast(x, out), b.const(0, out)), out)
    if name == "logistic" and floating:
        return lambda b, x: _logistic(b, b.cast(x, out))
    if name == "logaddexp" and floating:
        return lambda b, x, y: _logaddexp(b, *_promoted(b, [x, y], out))
    if name == "integer_pow" and floating:
        n = params["n"]
        return lambda b, x: _integer_pow(b, b.cast(x, out), n)
    if name == "sign" and floating:
        return lambda b, x: _sign(b, b.cast(x, out))
    if name in _COMPARE and out == "bool" and common in C_TYPES:
        op = _COMPARE[name]
        return lambda b, x, y: b.node(op, tuple(_promoted(b, [x, y], common)), "bool")
    if name in _LOGICAL and out == "bool" and common == "bool":
        op = _LOGICAL[name]
        return lambda b, x, y: b.node(op, (x, y), "bool")
    if name == "logical_not" and out == "bool" and common == "bool":
        return lambda b, x: b.node("not", (x,), "bool")
    if name in _TESTS and out == "bool" and common in ("float32", "float64"):
        op = _TESTS[name]
        return lambda b, x: b.node(op, (x,), "bool")
    if name == "where" and operand_dtypes and operand_dtypes[0] == "bool":
        return lambda b, c, x, y: b.select(c, *_promoted(b, [x, y], out))
    if name in ("astype", "convert", "stop_gradient", "real", "conj") and common != "complex":
        return lambda b, x: b.cast(x, out)
    return None


# Primitives that call a math library function per element (vector exp, log, tanh...): worth
# computing once and reading after, where a cheap operation (add, multiply) is worth computing again.
TRANSCENDENTAL = frozenset(
    (set(_C_UNARY) - {"abs", "round", "floor", "ceil", "trunc", "sqrt"}) | {"atan2", "hypot", "pow", "logistic", "logaddexp"}
)

ELEMENTWISE = frozenset(
    set(_C_UNARY) | set(_C_BINARY) | set(_ARITH) | set(_COMPARE) | set(_LOGICAL) | set(_TESTS)
    | {"negative", "square", "reciprocal", "maximum", "minimum", "relu", "logistic", "logaddexp",
       "integer_pow", "sign", "logical_not", "where", "astype", "convert", "stop_gradient", "real", "conj"}
)


def elementwise_rule(name: str, params: dict[str, Any], operand_dtypes: list[str], out: str) -> Callable[..., Scalar] | None:
    if out not in C_TYPES or any(d not in C_TYPES for d in operand_dtypes):
        return None
    return _elementwise_rule(name, params, operand_dtypes, out)


# ---------------------------------------------------------------------------------------------
# Text
# ---------------------------------------------------------------------------------------------

_INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/", "lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!=", "and": "&&", "or": "||"}


def _literal(node: Scalar, types: dict[str, str]) -> str:
    v, dtype = node.param, node.dtype
    if dtype in ("float64", "float32"):
        x = float.fromhex(v)
        f = "f" if dtype == "float32" else ""
        if math.isnan(x):
            return f"(({types[dtype]})NAN)"
        if math.isinf(x):
            return f"(({types[dtype]}){'-' if x < 0 else ''}INFINITY)"
        return f"{v}{f}"
    if dtype == "bool":
        return "1" if v else "0"
    return f"(({types[dtype]}){v}LL)" if dtype == "int64" else f"(({types[dtype]}){v})"


def expression(node: Scalar, name: Callable[[Scalar], str], types: dict[str, str]) -> str:
    """The C (and CUDA) expression of one node over its arguments' names."""
    a = [name(x) for x in node.args]
    op, dtype = node.op, node.dtype
    f = "f" if dtype == "float32" or (node.args and node.args[0].dtype == "float32") else ""
    if op in _INFIX:
        return f"({a[0]} {_INFIX[op]} {a[1]})"
    if op == "neg":
        return f"(-{a[0]})"
    if op == "not":
        return f"(!{a[0]})"
    if op == "select":
        return f"({a[0]} ? {a[1]} : {a[2]})"
    if op == "cast":
        if dtype == "bool":
            return f"({a[0]} != 0)"
        return f"(({types[dtype]}){a[0]})"
    # NumPy's maximum/minimum: NaN wins, and of two equal values (0.0 and -0.0) the second.
    if op == "max":
        return f"(({a[0]} > {a[1]} || {a[0]} != {a[0]}) ? {a[0]} : {a[1]})"
    if op == "min":
        return f"(({a[0]} < {a[1]} || {a[0]} != {a[0]}) ? {a[0]} : {a[1]})"
    if op in ("isnan", "isinf", "isfinite", "signbit"):
        return f"({op}({a[0]}) != 0)"
    if op == "exp" and f:  # float32 exp without libmvec's slow path (toolchain.PRELUDE)
        return f"gpuad_expf({a[0]})"
    if op == "tanh" and not f:  # float64 tanh through expm1 (toolchain.PRELUDE: 1.7x libmvec's)
        return f"gpuad_tanh({a[0]})"
    return f"{op}{f}({', '.join(a)})"  # a C math function


def _body(nodes: list[Scalar], outputs: list[tuple[str, str, list[Scalar]]], types: dict[str, str], batched: bool, cuda: bool, checks: list[Scalar] = ()) -> tuple[list[str], list[str], list[str]]:
    """The invariant loads (before the loop), the per-point lines (inside it) and, for outputs
    summed over the points, the sums' names. ``outputs``: (dtype, kind, scalars) with kind
    "point" (``o{k}[i * size + j] = ...``) or "sum" (``o{k}[j]`` is the sum over the points).
    ``checks``: conditions or-ed into ``bad`` (the C kernel's only)."""
    live = set()
    stack = [s for _, _, out in outputs for s in out] + list(checks)
    while stack:
        s = stack.pop()
        if s.id not in live:
            live.add(s.id)
            stack.extend(s.args)
    names: dict[int, str] = {}

    def name(s: Scalar) -> str:
        return names[s.id]

    def local(s: Scalar) -> str:
        # Truth values held as int: gcc 12 vectorizes no loop that turns a _Bool into a float.
        return "int" if s.dtype == "bool" else types[s.dtype]

    before, inside, sums = [], [], []
    for s in nodes:
        if s.id not in live:
            continue
        if s.op == "const":
            names[s.id] = _literal(s, types)
            continue
        names[s.id] = f"t{s.id}"
        if s.op == "load":
            slot, offset, varying = s.param
            if varying == "product":  # a dense product's element (r, c): the emitters define D<slot>
                inside.append(f"const {local(s)} t{s.id} = D{slot};")
            elif varying in ("row", "col"):
                inside.append(f"const {local(s)} t{s.id} = a{slot}[{'r' if varying == 'row' else 'c'}];")
            elif varying:
                inside.append(f"const {local(s)} t{s.id} = a{slot}[{'i * P' + str(slot) + ' + ' if batched else ''}{offset}];")
            else:
                before.append(f"const {local(s)} t{s.id} = a{slot}[{offset}];")
            continue
        inside.append(f"const {local(s)} t{s.id} = {expression(s, name, types)};")
    for k, (_, kind, out) in enumerate(outputs):
        for j, s in enumerate(out):
            if kind == "sum":
                if cuda:  # the points' threads add into the zeroed output
                    inside.append(f"atomicAdd(&o{k}[{j}], {name(s)});")
                else:
                    sums.append(f"s{k}_{j}")
                    inside.append(f"s{k}_{j} += {name(s)};")
            else:
                at = "(i - i0)" if kind == "block" else "i"  # (a buffer of the block's rows: emit_c_rows)
                inside.append(f"o{k}[{at + ' * Q' + str(k) + ' + ' if batched else ''}{j}] = {name(s)};")
    for s in checks:  # (on a GPU the table's values stand: no library to leave a point to)
        if not cuda:
            inside.append(f"bad |= {name(s)};")
    return before, inside, sums


def _signature(operands: list[tuple[str, int]], outputs: list[str], types: dict[str, str], restrict: str) -> str:
    ins = [f"const {types[d]} *{restrict} a{k}" for k, (d, _) in enumerate(operands)]
    outs = [f"{types[d]} *{restrict} o{k}" for k, d in enumerate(outputs)]
    return ", ".join(ins + outs)


# Strides of interleaved accesses that gcc 12's loop vectorizer handles as such (by shuffles); with
# any other constant stride (a point of 5, 10, 12 or 15 numbers) it vectorizes nothing at all.
_INTERLEAVED = (1, 2, 3, 4, 8, 16, 32)


def _sizes(operands: list[tuple[str, int]], outputs: list[int], opaque: bool) -> list[str]:
    """Each operand's (P) and output's (Q) numbers per point. On the CPU, a stride gcc cannot
    interleave is hidden from it (an empty asm): it then loads and stores element by element
    and the loop still vectorizes."""
    lines = []
    for letter, sizes in (("P", [size for _, size in operands]), ("Q", outputs)):
        for k, size in enumerate(sizes):
            if opaque and size not in _INTERLEAVED:
                lines.append(f'int64_t {letter}{k} = {size}; __asm__("" : "+r"({letter}{k}));')
            else:
                lines.append(f"enum {{ {letter}{k} = {size} }};")
    return lines


# The floating-point exceptions raised, as the launcher reads them (lowering._RAISED).
_REPORT = "(raised & FE_DIVBYZERO ? 1 : 0) | (raised & FE_INVALID ? 2 : 0) | (raised & FE_OVERFLOW ? 4 : 0) | (raised & FE_UNDERFLOW ? 8 : 0)"


def emit_c(fname: str, builder: Builder, operands: list[tuple[str, int]], outputs: list[tuple[str, str, list[Scalar]]], batched: bool, inner: int | None = None) -> str:
    """A C function ``fname(n, a0, a1, ..., o0, o1, ...)`` looping over ``n`` points. ``operands``:
    (dtype, elements per point) of each operand; ``outputs``: (dtype, kind, scalars per point),
    kind "point" or "sum" (summed over the points). ``inner``: the points are rows of ``inner``
    columns, looped over as such (operands read per row or per column, see ``Builder.load``).
    (Kernels with dense products: ``emit_c_rows``.)"""
    checks = sorted(set(builder.checks), key=lambda s: s.id)
    before, inside, sums = _body(builder.nodes, outputs, C_TYPES, batched, cuda=False, checks=checks)
    lines = [f"int {fname}(int64_t n, {_signature(operands, [d for d, _, _ in outputs], C_TYPES, 'restrict')}) {{"]
    lines += ["  " + s for s in _sizes(operands, [len(out) for _, _, out in outputs], opaque=True)]
    lines += ["  " + s for s in before]
    for k, (dtype, kind, out) in enumerate(outputs):
        if kind == "sum":
            lines.append(f"  {C_TYPES[dtype]} {', '.join(f's{k}_{j} = 0' for j in range(len(out)))};")
    # The floating-point exceptions the points raised (each thread has its own flags): the caller
    # reruns the operations through the array library where NumPy would warn or raise about them.
    lines.append("  int raised = 0, bad = 0;")
    # Threads over strips of points for big batches only (a parallel region costs microseconds);
    # the loop over points is what vectorizes (sums over the points included).
    lines.append("  #pragma omp parallel reduction(|:raised) if(n >= 32768)")
    lines.append("  {")
    lines.append("    feclearexcept(FE_ALL_EXCEPT);")
    reductions = (f" reduction(+:{', '.join(sums)})" if sums else "") + (" reduction(|:bad)" if checks else "")
    if inner is None:
        lines.append(f"    #pragma omp for simd schedule(static){reductions}")
        lines.append("    for (int64_t i = 0; i < n; i++) {")
        lines += ["      " + s for s in inside]
        lines.append("    }")
    else:  # threads over rows, vectors along each row
        lines.append(f"    #pragma omp for schedule(static){reductions}")
        lines += _row_loop(f"r = 0; r < n / {inner}", inner, reductions, inside, "    ")
    lines.append("    raised |= fetestexcept(FE_DIVBYZERO | FE_INVALID | FE_OVERFLOW | FE_UNDERFLOW);")
    lines.append("  }")
    for k, (_, kind, out) in enumerate(outputs):
        if kind == "sum":
            lines += [f"  o{k}[{j}] = s{k}_{j};" for j in range(len(out))]
    lines.append(f"  return {_REPORT} | (bad ? 16 : 0);")
    lines.append("}")
    return "\n".join(lines)


@dataclass
class RowStage:
    """One flat kernel with dense products, as a stage of ``emit_c_rows``: its scalars, operands,
    outputs and products as for ``emit_c``, its rows' width, and the driver's name of each of its
    operands and then outputs ("a3", "o0")."""

    builder: Builder
    operands: list[tuple[str, int]]
    outputs: list[tuple[str, str, list[Scalar]]]
    inner: int
    products: list[tuple[int, int, int, int]]
    args: list[str]


def emit_c_rows(fname: str, operands: list[str], outputs: list[str], stages: list[RowStage], blocks: list[tuple[str, int]] = ()) -> str:
    """A C function ``fname(n, a0, ..., o0, ...)`` over the rows of flat kernels with dense
    products (``n``: the first stage's elements), a block of rows at a time: each stage's products
    of the block (toolchain's register tiles), then its elementwise loop over the block, one
    stage after the other, so that a stage's product reads the rows the stage before it has
    just written from the cache. Threads over blocks. ``operands``, ``outputs``: the dtypes of
    the function's arguments (the stages' ``args`` name them); ``blocks``: (dtype, row width) of
    values kept in each thread's buffer of a block's rows (args ``bf0``, ``bf1``...)."""
    tile, rows = toolchain.DENSE_ROWS, (toolchain.CHAIN_ROWS if len(stages) > 1 else toolchain.DENSE_ROWS)
    lines, calls, packs, tiles = [], [], [], []
    for s, stage in enumerate(stages):
        if any(kind != "point" for _, kind, _ in stage.outputs) or stage.builder.checks:
            raise toolchain.CompileError("internal: a stage over rows has sums over the points or checks")
        # Values only later stages' products read go to the thread's buffer of the block's rows.
        local = [arg.startswith("bf") for arg in stage.args]
        kinds = [(d, "block" if local[len(stage.operands) + k] else kind, out) for k, (d, kind, out) in enumerate(stage.outputs)]
        before, inside, _ = _body(stage.builder.nodes, kinds, C_TYPES, True, cuda=False)
        layouts = [_tile_layout(p, stage.operands) for p in stage.products]
        extra = [f"const {ctype} *restrict pk{j}, {ctype} *restrict tl{j}" for j, (ctype, _, _, _) in enumerate(layouts)]
        lines += [f"#define D{j} tl{j}[(r - s0) * {width} + c]" for j, (_, width, _, _) in enumerate(layouts)]
        lines.append(f"static inline void {fname}_{s}(int64_t r0, int64_t rows, {', '.join([_signature(stage.operands, [d for d, _, _ in stage.outputs], C_TYPES, 'restrict')] + extra)}) {{")
        lines += ["  " + line for line in _sizes(stage.operands, [len(out) for _, _, out in stage.outputs], opaque=True)]
        lines += ["  " + line for line in before]
        if any(local[len(stage.operands):]):
            lines.append(f"  const int64_t i0 = r0 * {stage.inner};")
        lines.append(f"  for (int64_t s0 = r0; s0 < r0 + rows; s0 += {tile}) {{  // the register tiles' rows")
        lines.append(f"    const int64_t sub = r0 + rows - s0 < {tile} ? r0 + rows - s0 : {tile};")
        for j, ((a, _, k, _), (_, _, panels, suffix)) in enumerate(zip(stage.products, layouts)):
            lines.append(f"    gpuad_dense_{suffix}(a{a} + {'(s0 - r0)' if local[a] else 's0'} * {k}, {k}, sub, pk{j}, {panels}, tl{j});")
        lines += _row_loop("r = s0; r < s0 + sub", stage.inner, "", inside, "    ")
        lines.append("  }")
        lines.append("}")
        lines += [f"#undef D{j}" for j in range(len(layouts))]
        for j, ((_, b, k, n), (ctype, width, _, suffix)) in enumerate(zip(stage.products, layouts)):
            # each shared matrix packed once per call, read by every thread
            packs.append(f"  {ctype} pk{s}_{j}[{k * width}] __attribute__((aligned(64)));")
            packs.append(f"  gpuad_pack_{suffix}({stage.args[b]}, {k}, {n}, pk{s}_{j});")
            tiles.append(f"    {ctype} tl{s}_{j}[{tile * width}] __attribute__((aligned(64)));")
        calls.append(f"      {fname}_{s}(r0, rows, {', '.join(stage.args + [f'pk{s}_{j}, tl{s}_{j}' for j in range(len(layouts))])});")
    signature = ", ".join([f"const {C_TYPES[d]} *restrict a{k}" for k, d in enumerate(operands)] + [f"{C_TYPES[d]} *restrict o{k}" for k, d in enumerate(outputs)])
    total = f"n / {stages[0].inner}"
    lines.append(f"int {fname}(int64_t n, {signature}) {{")
    lines += packs
    lines.append("  int raised = 0;")
    lines.append("  #pragma omp parallel reduction(|:raised) if(n >= 32768)")
    lines.append("  {")
    lines.append("    feclearexcept(FE_ALL_EXCEPT);")
    lines += tiles
    lines += [f"    {C_TYPES[d]} bf{j}[{rows * width}] __attribute__((aligned(64)));" for j, (d, width) in enumerate(blocks)]
    lines.append("    #pragma omp for schedule(static)")
    lines.append(f"    for (int64_t r0 = 0; r0 < {total}; r0 += {rows}) {{")
    lines.append(f"      const int64_t rows = {total} - r0 < {rows} ? {total} - r0 : {rows};")
    lines += calls
    lines.append("    }")
    lines.append("    raised |= fetestexcept(FE_DIVBYZERO | FE_INVALID | FE_OVERFLOW | FE_UNDERFLOW);")
    lines.append("  }")
    lines.append(f"  return {_REPORT};")
    lines.append("}")
    return "\n".join(lines)


def _row_loop(rows: str, inner: int, reductions: str, inside: list[str], indent: str) -> list[str]:
    """A loop over rows (``for (int64_t <rows>; r++)``) and, vectorized, over a row's columns."""
    return [
        f"{indent}for (int64_t {rows}; r++) {{",
        f"{indent}  #pragma omp simd{reductions}",
        f"{indent}  for (int64_t c = 0; c < {inner}; c++) {{",
        f"{indent}    const int64_t i = r * {inner} + c;",
        *[f"{indent}    {s}" for s in inside],
        f"{indent}  }}",
        f"{indent}}}",
    ]


def _tile_layout(product: tuple[int, int, int, int], operands: list[tuple[str, int]]) -> tuple[str, int, int, str]:
    """A dense product's C type, the width of its tile's rows (whole panels), its panels, and
    the suffix of toolchain's functions for its type."""
    _, b, _, n = product
    ctype = C_TYPES[operands[b][0]]
    cols, suffix = toolchain.dense_layout(ctype, n)
    panels = -(-n // cols)
    return ctype, panels * cols, panels, suffix


def emit_cuda(fname: str, builder: Builder, operands: list[tuple[str, int]], outputs: list[tuple[str, str, list[Scalar]]], batched: bool, inner: int | None = None, products: list[tuple[int, int, int, int]] = ()) -> str:
    """The same computation as ``emit_c`` as a CUDA kernel: one thread per point (sums over the
    points added atomically into outputs the launcher zeroes; a dense product's element as its
    thread's own dot product)."""
    checks = sorted(set(builder.checks), key=lambda s: s.id)  # (computed, as in C; nvcc drops them)
    before, inside, _ = _body(builder.nodes, outputs, _CUDA_TYPES, batched, cuda=True, checks=checks)
    lines = [f"#define D{j} gpuad_dense(a{a} + r * {k}, a{b}, {k}, {n}, c)" for j, (a, b, k, n) in enumerate(products)]
    lines += [f'extern "C" __global__ void {fname}(long long n, {_signature(operands, [d for d, _, _ in outputs], _CUDA_TYPES, "__restrict__")}) {{']
    lines += ["  " + s for s in _sizes(operands, [len(out) for _, _, out in outputs], opaque=False)]
    lines.append("  const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;")
    lines.append("  if (i >= n) return;")
    if inner is not None:
        lines.append(f"  const long long r = i / {inner}, c = i % {inner};")
    lines += ["  " + s for s in before + inside]
    lines.append("}")
    lines += [f"#undef D{j}" for j in range(len(products))]
    return "\n".join(lines)


def emit_c_summed_product(fname: str, dtype: str, k: int, m: int, sums: bool) -> str:
    """A C function ``fname(n, x, g, out[, sums])``: out (k, m) = x^T g over n rows, and g's
    column sums (toolchain's ``gpuad_tproduct``)."""
    t = C_TYPES[dtype]
    also = f", {t} *restrict o1" if sums else ""
    return (
        f"int {fname}(int64_t n, const {t} *restrict a0, const {t} *restrict a1, {t} *restrict o0{also}) {{\n"
        f"  const int raised = gpuad_tproduct_{'d' if dtype == 'float64' else 'f'}(n, {k}, {m}, a0, a1, o0, {'o1' if sums else '0'});\n"
        f"  return {_REPORT};\n}}"
    )


def summed_product_threads(n: int, k: int, m: int, sums: bool) -> int:
    """Threads of the CUDA summed product: one per output element and chunk of rows."""
    return -(-n // toolchain.TPRODUCT_ROWS) * (k + sums) * m


def emit_cuda_summed_product(fname: str, dtype: str, k: int, m: int, sums: bool) -> str:
    """The same as a CUDA kernel: each thread sums one output element over a chunk of rows and
    adds it atomically into the outputs the launcher zeroes."""
    t, rows = _CUDA_TYPES[dtype], toolchain.TPRODUCT_ROWS
    also = f", {t} *__restrict__ o1" if sums else ""
    return "\n".join([
        f'extern "C" __global__ void {fname}(long long n, const {t} *__restrict__ a0, const {t} *__restrict__ a1, {t} *__restrict__ o0{also}) {{',
        "  const long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;",
        f"  const long long c = t % {m}, i = t / {m} % {k + sums}, r0 = t / {m * (k + sums)} * {rows};",
        "  if (r0 >= n) return;",
        f"  const long long r1 = n - r0 < {rows} ? n : r0 + {rows};",
        f"  {t} s = 0;",
        f"  for (long long r = r0; r < r1; r++) s += {f'(i < {k} ? a0[r * {k} + i] : ({t})1)' if sums else f'a0[r * {k} + i]'} * a1[r * {m} + c];",
        f"  atomicAdd({f'i < {k} ? &o0[i * {m} + c] : &o1[c]' if sums else f'&o0[i * {m} + c]'}, s);",
        "}",
    ])
