"""See inside a recording: the Wengert list of a function, its tables of values, tangents and
adjoints, and its computational graph.

``make_tape(f)(*args)`` runs ``f`` once on a tape that keeps every intermediate value and returns a
:class:`Tape`. Printing it gives the Wengert list (one line per operation, like ``jax.make_jaxpr``);
``tape.table(point=i)`` gives the table of the seed notes for one point of a batch (primal value,
forward-mode tangent and reverse-mode adjoint of every intermediate); ``tape.to_dot()`` gives the
graph as Graphviz DOT text.

Tangents and adjoints are computed by the public transforms (``gpuad.jvp`` and ``gpuad.vjp``) on a
replay of the recorded program, so the table shows exactly what gpuad computes. This is a debugging
tool: it keeps every intermediate, and the tables copy the chosen point to the host.
"""

from __future__ import annotations

import itertools
import keyword
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy  # host-ok: display only; values reach it through _host()

from . import backend
from .reverse import ReverseTrace, ReverseTracer
from .tracing import HigherOrderCall, Tracer, bind, call_higher_order, open_trace
from . import numpy as gnp
from .forward_transforms import jvp
from .transforms import _arg_label, _common_namespace, _normalize_argnums, _param_name, _resolve_argnums, vjp
from .tree import TreeDef, tree_flatten, tree_flatten_up_to, tree_structure, tree_unflatten

__all__ = ["make_tape", "Tape", "Operation", "Table", "Row"]


# ---------------------------------------------------------------------------------------------
# Recording: a reverse-mode trace that also keeps every value
# ---------------------------------------------------------------------------------------------


class _KeepingTrace(ReverseTrace):
    """A reverse-mode tape that also keeps the output value of every record and every input of
    it (the ordinary tape keeps only what the VJP rules read)."""

    def __init__(self, level: int, xp: Any, device: Any = None):
        super().__init__(level, xp, device)
        self.values: dict[int, Any] = {}  # node -> primal value
        self.full_args: list[list[Any]] = []  # per record: every input value

    def new_input(self, value: Any) -> ReverseTracer:
        tracer = super().new_input(value)
        self.values[tracer.node] = value
        return tracer

    def _append(self, record: Any, inputs: list[Any], outputs: Any) -> None:
        self.full_args.append(list(inputs))
        outs = outputs if isinstance(record.out_node, tuple) else [outputs]
        self.values.update((n, o) for n, o in zip(_out_nodes(record), outs) if n is not None)
        super()._append(record, inputs, outputs)


# ---------------------------------------------------------------------------------------------
# The recorded program
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    """One line of the Wengert list: ``outputs = prim(inputs, **params)``. ``inputs`` holds a name
    per input (or a constant's text), ``shape``/``dtype`` describe the (first) output."""

    outputs: tuple[str, ...]
    prim: str
    inputs: tuple[str, ...]
    params: dict[str, Any]
    shape: tuple[int, ...]
    dtype: str
    batched: bool

    @property
    def name(self) -> str:
        return ", ".join(self.outputs)

    @property
    def expression(self) -> str:
        """The right-hand side, e.g. ``x1 * x2`` or ``sum(v3, axis=(-1,), keepdims=False)``."""
        return _expression(self.prim, self.inputs, self.params)


class Tape:
    """A recorded program with all its values: what :func:`make_tape` returns.

    ``str(tape)`` is the Wengert list; ``tape.table(point=i)`` the table of values, tangents and
    adjoints; ``tape.to_dot()`` the graph. ``tape.value(name)`` is the recorded value of an input
    or intermediate (an array of the inputs' library).
    """

    def __init__(
        self,
        *,
        fun_name: str,
        input_names: list[str],
        input_nodes: list[int],
        batched_inputs: list[bool],
        xp: Any,
        device: Any,
        records: list[Any],
        full_args: list[list[Any]],
        values: dict[int, Any],
        out_leaves: list[tuple[str, Any]],
        out_tree: TreeDef,
        batch_size: int | None,
    ) -> None:
        self.fun_name: str = fun_name
        self.batch_size: int | None = batch_size
        self._input_names: list[str] = input_names
        self._input_nodes: list[int] = input_nodes
        self._xp, self._device = xp, device
        self._records = records
        self._full_args = full_args
        self._values = values
        self._out_leaves = out_leaves  # per output leaf: ("node", id) or ("const", value)
        self._out_tree = out_tree
        # Every input and intermediate in recording order: its name, and whether it is per point.
        self._names: dict[int, str] = dict(zip(input_nodes, input_names))
        self._batched: dict[int, bool] = dict(zip(input_nodes, batched_inputs))
        count = 0
        for rec in records:
            batched_in = any(self._batched.get(n, False) for n in rec.in_nodes)
            for n in _out_nodes(rec):
                if n is not None:
                    count += 1
                    self._names[n] = f"v{count}"
                    shape = tuple(values[n].shape)
                    self._batched[n] = bool(batched_in and len(shape) >= 1 and shape[0] == batch_size)
        self.operations: list[Operation] = [self._operation(i, rec) for i, rec in enumerate(records)]

    # -- what the program is ----------------------------------------------------------------

    @property
    def inputs(self) -> list[str]:
        """The names of the inputs, in the order of the function's (flattened) arguments."""
        return list(self._input_names)

    @property
    def outputs(self) -> list[str]:
        """The name of each output leaf (``const`` for an output that does not depend on the inputs)."""
        return [self._names[v] if kind == "node" else "const" for kind, v in self._out_leaves]

    @property
    def names(self) -> list[str]:
        """Every input and intermediate, in recording order."""
        return list(self._names.values())

    def __len__(self) -> int:
        return len(self.operations)

    def value(self, name: str) -> Any:
        """The recorded value of an input or intermediate, by name (an array of the inputs' library).

        >>> import numpy as np, gpuad, gpuad.numpy as gnp
        >>> gpuad.make_tape(lambda x: gnp.exp(x) * x)(np.asarray([0.0, 1.0])).value("v1").tolist()
        [1.0, 2.718281828459045]
        """
        for node, n in self._names.items():
            if n == name:
                return self._values[node]
        raise KeyError(f"make_tape: no input or intermediate is named {name!r}; the names are {self.names}")

    def _operation(self, i: int, rec: Any) -> Operation:
        outs = [n for n in _out_nodes(rec) if n is not None]
        ins = tuple(
            self._names[n] if n is not None else _const_text(a) for n, a in zip(rec.in_nodes, self._full_args[i])
        )
        first_in = rec.in_nodes[0] if rec.in_nodes else None
        in_ndim = None if first_in is None else len(self._values[first_in].shape)
        params = _shown_params(rec.prim.name, rec.params, in_ndim)
        op = rec.prim.name
        custom = _custom_fun(rec)
        if custom is not None:  # one line with its own rule: show whose
            op = f"{getattr(custom, '__name__', 'custom').lstrip('_')}[{op[: -len('_call')]}]"
            params = {}
        v = self._values[outs[0]]
        names = tuple(self._names[n] for n in outs)
        return Operation(names, op, ins, params, tuple(v.shape), backend.dtype_name(v.dtype), self._batched[outs[0]])

    def __str__(self) -> str:
        n_in, n_op, n_out = len(self._input_names), len(self.operations), len(self._out_leaves)
        lines = [
            f"Wengert list of {self.fun_name}: {n_in} input{'s' * (n_in != 1)}, {n_op} "
            f"operation{'s' * (n_op != 1)}, {n_out} output{'s' * (n_out != 1)}"
        ]
        rows = []
        for name, node in zip(self._input_names, self._input_nodes):
            v = self._values[node]
            rows.append((f"{name} = input", _shape_text(v.shape), backend.dtype_name(v.dtype), self._batched[node]))
        for op in self.operations:
            rows.append((f"{op.name} = {op.expression}", _shape_text(op.shape), op.dtype, op.batched))
        w0 = max(len(r[0]) for r in rows)
        w1 = max(len(r[1]) for r in rows)
        for a, b, c, batched in rows:
            lines.append(f"  {a.ljust(w0)}   {b.ljust(w1)}  {c}{'  *' if batched else ''}")
        out = self.outputs
        out = out[0] if self._out_tree.kind == "leaf" else str(tree_unflatten(self._out_tree, out)).replace("'", "")
        lines.append(f"  output: {out}")
        if self.batch_size is not None:
            lines.append(f"  (* per point: point=i takes element i along axis 0, the batch of {self.batch_size})")
        return "\n".join(lines)

    __repr__ = __str__

    # -- replaying it ------------------------------------------------------------------------

    def _replay(self, inputs: Sequence[Any], eps: dict[int, Any] | None = None, forward: bool = False) -> dict:
        """Evaluate the recorded program again with the primitives (so that an enclosing transform
        sees every operation): node -> value. ``eps`` adds a perturbation to chosen nodes."""
        env: dict[int, Any] = dict(zip(self._input_nodes, inputs))
        for rec, full_args in zip(self._records, self._full_args):
            args = [env[n] if n is not None else a for n, a in zip(rec.in_nodes, full_args)]
            if isinstance(rec.out_node, tuple):
                outs = _replay_multi(rec, args, forward)
            else:
                outs = [bind(rec.prim, *args, **rec.params)]
            for n, o in zip(_out_nodes(rec), outs):
                if n is not None:
                    env[n] = gnp.add(o, eps[n]) if eps and n in eps else o
        return env

    def _tangents(self, tangent: Any) -> tuple[list[Any], str]:
        """The tangent column for every input and intermediate, and its label: one tangent per
        input, e_k of the per-point inputs (an int k) or arrays given per input, pushed by jvp."""
        ins = [self._values[n] for n in self._input_nodes]
        if tangent is None:
            tangent = 0
        if isinstance(tangent, int) and not isinstance(tangent, bool):
            shapes = [tuple(x.shape[1:] if self._batched[n] else x.shape) for n, x in zip(self._input_nodes, ins)]
            sizes = [math.prod(s) for s in shapes]
            total = sum(sizes)
            if not 0 <= tangent < total:
                raise ValueError(
                    f"make_tape table: tangent={tangent} picks an input coordinate, but the inputs have "
                    f"{total} coordinate(s) per point; use 0 to {total - 1}, or give one array per input"
                )
            tans = []
            offset = 0
            for name, x, shape, size in zip(self._input_names, ins, shapes, sizes):
                k = tangent - offset
                offset += size
                if 0 <= k < size:
                    onehot = gnp.astype(gnp.arange(size, device=self._device) == k, x.dtype)
                    tans.append(gnp.broadcast_to(gnp.reshape(onehot, shape), tuple(x.shape)))
                    label = f"{name}{_index_text(shape, k)} = 1"
                else:
                    tans.append(gnp.zeros_like(x))
        else:
            given = list(tangent) if isinstance(tangent, (tuple, list)) else [tangent] if len(ins) == 1 else None
            if given is None or len(given) != len(ins):
                raise ValueError(
                    f"make_tape table: tangent must be an int (an input coordinate) or a tuple with one array "
                    f"(or None) per input ({len(ins)}: {', '.join(self._input_names)}), got "
                    + (f"{len(given)} entries" if given is not None else type(tangent).__name__)
                )
            tans = [
                gnp.zeros_like(x) if t is None else _fit(t, x, f"the tangent of {name}")
                for name, x, t in zip(self._input_names, ins, given)
            ]
            label = "given"
        nodes = list(self._names)

        def everything(*xs: Any) -> tuple[Any, ...]:
            env = self._replay(xs, forward=True)
            return tuple(env[n] for n in nodes)

        _, ts = jvp(everything, tuple(ins), tuple(tans))
        return list(ts), label

    def _adjoints(self, cotangent: Any) -> tuple[list[Any], str]:
        """The adjoint column for every input and intermediate, and its label: vjp of the outputs
        (weighted by ``cotangent``) in the inputs and in a zero perturbation added to each
        floating-point intermediate."""
        out_nodes = [v for kind, v in self._out_leaves if kind == "node"]
        if cotangent is None:
            cts = [gnp.ones_like(self._values[n]) for n in out_nodes]
            label = " + ".join(self._names[n] for n in out_nodes) or "nothing"
        else:
            try:
                given = tree_flatten_up_to(self._out_tree, cotangent)
            except (ValueError, TypeError) as exc:  # TypeError: tree.py takes len() of a 0-d array
                raise ValueError(
                    f"make_tape table: cotangent has structure {tree_structure(cotangent)} but the function's "
                    f"output has structure {self._out_tree} ({exc}); give one array (or None) per output"
                ) from None
            cts = [
                gnp.zeros_like(self._values[v]) if c is None else _fit(c, self._values[v], f"the cotangent of {name}")
                for (kind, v), c, name in zip(self._out_leaves, given, self.outputs)
                if kind == "node"
            ]
            label = "given"
        ins = [self._values[n] for n in self._input_nodes]
        inner = [n for n in list(self._names)[len(ins) :] if backend.is_real_float(self._values[n].dtype)]

        def outputs(xs: Any, eps: Any) -> tuple[Any, ...]:
            env = self._replay(xs, dict(zip(inner, eps)))
            return tuple(env[n] for n in out_nodes)

        _, pullback = vjp(outputs, tuple(ins), tuple(gnp.zeros_like(self._values[n]) for n in inner))
        g_in, g_inner = pullback(tuple(cts))
        adj = dict(zip(self._input_nodes, g_in)) | dict(zip(inner, g_inner))
        return [adj.get(n) for n in self._names], label

    # -- the table ---------------------------------------------------------------------------

    def table(self, point: int | None = None, tangent: Any = None, cotangent: Any = None, digits: int = 3) -> "Table":
        """The table of the seed notes: for every input and intermediate, its primal value, its
        tangent (forward mode) and its adjoint (reverse mode), at batch point ``point``.

        * ``point``: with a batch (``make_tape(..., batch_axis=0)``), the point whose values to show:
          element ``point`` along axis 0 of every per-point value; values that are not per point
          (constants, a sum over the batch) are shown whole. Without a batch, leave it None.
        * ``tangent``: the input direction of the forward-mode column. An int ``k`` is the k-th
          coordinate of one point's inputs, flattened in argument order (default 0: the first
          coordinate of the first input, at every point); or one array (or None) per input,
          broadcast to its shape.
        * ``cotangent``: the output weights of the adjoint column; default ones for every output,
          so a per-point output gives every point its own adjoints ``d f(point) / d v``.
        * ``digits``: decimals in the printed table (the rows keep full precision).

        A custom_jvp or custom_vjp function is one line whose columns come from its own rules;
        a custom_vjp function has no forward mode (as in JAX), so its tangent is its body's.

        >>> import numpy as np, gpuad, gpuad.numpy as gnp
        >>> tape = gpuad.make_tape(lambda x, y: gnp.sin(x) * y)(np.asarray(0.0), np.asarray(2.0))
        >>> print(tape.table())
        Wengert table of <lambda>: tangent x = 1 (forward mode), adjoint of v2 (reverse mode)
          name  operation  primal  tangent  adjoint
          x     input       0.000    1.000    2.000
          y     input       2.000    0.000    0.000
          v1    sin(x)      0.000    1.000    2.000
          v2    v1 * y      0.000    2.000    1.000
        """
        if not isinstance(digits, int) or isinstance(digits, bool) or not 0 <= digits <= 17:
            raise ValueError(f"make_tape table: digits must be an int from 0 to 17, got {digits!r}")
        if point is not None:
            if self.batch_size is None:
                raise ValueError(
                    "make_tape table: point= needs a batch; record with make_tape(f, batch_axis=0) to say that "
                    "axis 0 of the inputs is the batch, or leave point=None to show whole values"
                )
            if not isinstance(point, int) or isinstance(point, bool):
                raise TypeError(f"make_tape table: point must be an int, got {type(point).__name__}")
            if not -self.batch_size <= point < self.batch_size:
                raise IndexError(
                    f"make_tape table: point {point} is out of range for a batch of {self.batch_size} points"
                )
            point %= self.batch_size
        tangents, t_label = self._tangents(tangent)
        adjoints, a_label = self._adjoints(cotangent)
        ops = {name: op for op in self.operations for name in op.outputs}
        rows = []
        for (node, name), t, a in zip(self._names.items(), tangents, adjoints):
            op = ops.get(name)
            operation, inputs = ("input", ()) if op is None else (op.expression, op.inputs)
            if op is not None and len(op.outputs) > 1:
                operation = f"{operation}[{op.outputs.index(name)}]"
            v = self._values[node]
            sel = point if self._batched[node] else None  # a value that is not per point is shown whole
            shape = tuple(v.shape[1:] if sel is not None else v.shape)
            row = Row(name=name, operation=operation, inputs=inputs, shape=shape, dtype=backend.dtype_name(v.dtype),
                      batched=self._batched[node], primal=_host(v, sel), tangent=_host(t, sel, like=v),
                      adjoint=_host(a, sel, like=v))
            rows.append(row)
        where = "" if point is None else f" at point {point} of {self.batch_size}"
        title = (f"Wengert table of {self.fun_name}{where}: tangent {t_label} (forward mode), "
                 f"adjoint of {a_label} (reverse mode)")
        return Table(title, rows, digits)

    # -- the graph ---------------------------------------------------------------------------

    def to_dot(self) -> str:
        """The computational graph as Graphviz DOT text: a box per input, an ellipse per operation,
        a plain node per constant, a double box per output, edges from inputs to their uses.

        >>> import numpy as np, gpuad, gpuad.numpy as gnp
        >>> dot = gpuad.make_tape(lambda x: gnp.sin(x) * 2.0)(np.asarray(1.0)).to_dot()
        >>> print(dot.splitlines()[0])
        digraph "<lambda>" {
        """
        lines = [f"digraph {_q(self.fun_name)} {{", "  rankdir=LR;", '  node [fontname="Helvetica"];']
        edges = []
        const_ids = (f"const{k}" for k in itertools.count(1))

        def constant(text: str, to: str) -> None:
            cid = next(const_ids)
            lines.append(f"  {_q(cid)} [shape=plaintext, label={_q(text)}];")
            edges.append((cid, to))

        for name, node in zip(self._input_names, self._input_nodes):
            v = self._values[node]
            label = f"{name}\n{_shape_text(v.shape)} {backend.dtype_name(v.dtype)}"
            lines.append(f"  {_q(name)} [shape=box, style=rounded, label={_q(label)}];")
        for op, rec in zip(self.operations, self._records):
            node_id = op.outputs[0]
            label = f"{op.name} = {op.expression}\n{_shape_text(op.shape)} {op.dtype}"
            lines.append(f"  {_q(node_id)} [shape=ellipse, label={_q(label)}];")
            for n, text in zip(rec.in_nodes, op.inputs):
                if n is None:
                    constant(text, node_id)
                else:
                    edges.append((self._names[n], node_id))
            for extra in op.outputs[1:]:
                lines.append(f"  {_q(extra)} [shape=point, xlabel={_q(extra)}];")
                edges.append((node_id, extra))
        for k, (kind, v) in enumerate(self._out_leaves):
            oid = f"output{k}"
            label = f"output {k}" if len(self._out_leaves) > 1 else "output"
            lines.append(f"  {_q(oid)} [shape=box, peripheries=2, label={_q(label)}];")
            if kind == "node":
                edges.append((self._names[v], oid))
            else:
                constant(_const_text(v), oid)
        lines.extend(f"  {_q(a)} -> {_q(b)};" for a, b in edges)
        lines.append("}")
        return "\n".join(lines) + "\n"

    def to_graphviz(self) -> Any:
        """The graph as a ``graphviz.Source`` (renders in Jupyter; ``.render()`` writes a file).
        Needs the optional ``graphviz`` Python package and Graphviz's ``dot`` program to render;
        :meth:`to_dot` needs neither.

        >>> import numpy as np, gpuad, gpuad.numpy as gnp
        >>> tape = gpuad.make_tape(gnp.sin)(np.asarray(1.0))
        >>> tape.to_graphviz().render("sin", format="png")  # doctest: +SKIP
        'sin.png'
        """
        try:
            import graphviz
        except ImportError:
            raise ImportError(
                "Tape.to_graphviz needs the optional 'graphviz' Python package (pip install graphviz) and "
                "Graphviz's dot program to render; Tape.to_dot() gives the same graph as DOT text without them"
            ) from None
        return graphviz.Source(self.to_dot())


# ---------------------------------------------------------------------------------------------
# The table of one point
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One row of a :class:`Table`: an input or intermediate and its values at the chosen point
    (NumPy arrays; a 0-d array for a scalar). ``tangent``/``adjoint`` are None where the value has
    no derivative (an integer value)."""

    name: str
    operation: str
    inputs: tuple[str, ...]
    shape: tuple[int, ...]
    dtype: str
    batched: bool
    primal: Any
    tangent: Any
    adjoint: Any


class Table:
    """The rows of a Wengert table (``table.rows``, ``table["v3"]``, iteration) and their printed
    form (``str(table)``)."""

    def __init__(self, title: str, rows: list[Row], digits: int = 3):
        self.title = title
        self.rows = rows
        self.digits = digits

    def __iter__(self) -> Any:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, name: str) -> Row:
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(f"no row named {name!r}; the rows are {[r.name for r in self.rows]}")

    def __str__(self) -> str:
        d = self.digits
        cells = [("name", "operation", "primal", "tangent", "adjoint")]
        for r in self.rows:
            cells.append((r.name, r.operation, _fmt(r.primal, d), _fmt(r.tangent, d), _fmt(r.adjoint, d)))
        w = [max(len(c[i]) for c in cells) for i in range(5)]
        lines = [self.title]
        for c in cells:
            lines.append("  " + "  ".join([c[0].ljust(w[0]), c[1].ljust(w[1])] + [c[i].rjust(w[i]) for i in (2, 3, 4)]))
        return "\n".join(line.rstrip() for line in lines)

    __repr__ = __str__


# ---------------------------------------------------------------------------------------------
# make_tape
# ---------------------------------------------------------------------------------------------


def make_tape(
    fun: Callable[..., Any],
    argnums: int | Sequence[int] | None = None,
    *,
    batch_axis: int | None | Sequence[int | None] = None,
) -> Callable[..., Tape]:
    """A function that records ``fun`` on a tape and returns the :class:`Tape`: the Wengert list of
    the program ``fun`` ran, with every value, like ``jax.make_jaxpr`` for gpuad's tape.

    * ``argnums``: the positional arguments whose (floating-point) arrays are the tape's inputs;
      default all of them. Everything else (other arguments, integer arrays, Python numbers) is a
      constant of the program.
    * ``batch_axis``: None (no batch), or 0 when axis 0 of the inputs is a batch of points
      (``fun`` written on batches, e.g. with ``x[..., 0]``, or ``gpuad.vmap(f)`` of a per-point
      ``f``); a tuple gives one entry (0 or None) per argument. An intermediate is per point when
      it depends on a batched input and its axis 0 has the batch's size; ``table(point=i)`` shows
      element i of those. Pick a batch size that differs from the per-point sizes.

    Inputs are named after ``fun``'s parameters (``x``, ``params.w`` for a dict leaf, ``xs.0`` for
    a tuple element); intermediates are ``v1, v2, ...`` in the order they were computed, as in the
    seed notes.

    >>> import numpy as np, gpuad, gpuad.numpy as gnp
    >>> def f(x1, x2):
    ...     return gnp.log(x1) + x1 * x2
    >>> print(gpuad.make_tape(f)(np.asarray(2.0), np.asarray(5.0)))
    Wengert list of f: 2 inputs, 3 operations, 1 output
      x1 = input     ()  float64
      x2 = input     ()  float64
      v1 = log(x1)   ()  float64
      v2 = x1 * x2   ()  float64
      v3 = v1 + v2   ()  float64
      output: v3
    """
    if not callable(fun):
        raise TypeError(f"make_tape: expected a function to record, got {type(fun).__name__} ({fun!r:.80})")
    nums = None if argnums is None else _normalize_argnums(argnums, "make_tape")
    axes_spec = _check_batch_axis(batch_axis)
    fun_name = getattr(fun, "__name__", None) or type(fun).__name__

    def recorder(*args: Any, **kwargs: Any) -> Tape:
        positions = tuple(range(len(args))) if nums is None else _resolve_argnums(nums, len(args), "make_tape", argnums)
        if isinstance(axes_spec, tuple) and len(axes_spec) != len(args):
            raise ValueError(
                f"make_tape: batch_axis has {len(axes_spec)} entries but the function was called with "
                f"{len(args)} positional arguments; give one entry (0 or None) per argument"
            )
        flat = [tree_flatten(arg) for arg in args]  # per argument: (leaves, tree)
        slots = []  # per input: (arg position, leaf index, name, batched)
        used: set[str] = set()
        for pos in sorted(positions):
            leaves, tree = flat[pos]
            base = _param_name(fun, pos)
            axis = axes_spec[pos] if isinstance(axes_spec, tuple) else axes_spec
            for j, (leaf, path) in enumerate(zip(leaves, _leaf_paths(tree))):
                if not ((isinstance(leaf, Tracer) or backend.is_array(leaf)) and backend.is_real_float(leaf.dtype)):
                    continue
                name = _unique(base + path, used)
                if axis is not None and len(leaf.shape) == 0:
                    raise ValueError(
                        f"make_tape: {_arg_label(fun, pos)}{' leaf ' + path if path else ''} is batched "
                        f"(batch_axis=0) but is 0-dimensional; give it a batch axis or use None for it in batch_axis"
                    )
                slots.append((pos, j, name, axis is not None))
        if not slots:
            raise TypeError(
                "make_tape: no input to record: the arguments hold no floating-point array"
                + ("" if nums is None else f" among argnums={argnums!r}")
                + "; pass the values to follow as float arrays (e.g. np.asarray(2.0))"
            )
        arrays = [flat[pos][0][j] for pos, j, _, _ in slots]
        names = [name for _, _, name, _ in slots]
        batches = [(name, a.shape[0]) for a, (_, _, name, batched) in zip(arrays, slots) if batched]
        for name, n in batches[1:]:
            if n != batches[0][1]:
                raise ValueError(
                    f"make_tape: the batched inputs disagree on the batch size: {batches[0][0]} has {batches[0][1]} "
                    f"points along axis 0 but {name} has {n}"
                )
        try:
            xp, device = _common_namespace(arrays, names)
        except (TypeError, ValueError) as exc:  # two libraries or two devices
            raise type(exc)(f"make_tape: {exc}") from None
        with open_trace(_KeepingTrace, xp, device=device) as trace:
            new_leaves = [list(leaves) for leaves, _ in flat]
            for pos, j, _, _ in slots:
                new_leaves[pos][j] = trace.new_input(new_leaves[pos][j])
            out = fun(*(tree_unflatten(tree, leaves) for leaves, (_, tree) in zip(new_leaves, flat)), **kwargs)
        out_flat, out_tree = tree_flatten(out)
        out_leaves = []
        for o in out_flat:
            mine = type(o) is ReverseTracer and o._trace is trace
            out_leaves.append(("node", o.node) if mine and o.node is not None else ("const", o.primal if mine else o))
        kept = [i for i, r in enumerate(trace.tape) if r is not None]
        return Tape(
            fun_name=fun_name,
            input_names=names,
            input_nodes=[new_leaves[pos][j].node for pos, j, _, _ in slots],
            batched_inputs=[batched for _, _, _, batched in slots],
            xp=xp,
            device=device,
            records=[trace.tape[i] for i in kept],
            full_args=[trace.full_args[i] for i in kept],
            values=trace.values,
            out_leaves=out_leaves,
            out_tree=out_tree,
            batch_size=batches[0][1] if batches else None,
        )

    recorder.__name__ = f"make_tape({fun_name})"
    recorder.__doc__ = f"Record {fun_name} on a tape and return the Tape."
    return recorder


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def _check_batch_axis(spec: Any) -> Any:
    def one(a: Any) -> Any:
        if a is None:
            return None
        if isinstance(a, bool) or not isinstance(a, int):
            raise TypeError(f"make_tape: batch_axis entries must be 0 or None, got {a!r}")
        if a != 0:
            raise ValueError(
                f"make_tape: batch_axis={a} is not supported: the batch must be axis 0 (move it first with "
                "gnp.moveaxis(x, axis, 0)), or None for no batch"
            )
        return 0

    if isinstance(spec, (tuple, list)):
        return tuple(one(a) for a in spec)
    return one(spec)


def _out_nodes(rec: Any) -> tuple[int | None, ...]:
    """The node of each output of a record, None for an output that is not an array."""
    if isinstance(rec.out_node, tuple):
        return tuple(n if n is not None and n >= 0 else None for n in rec.out_node)
    return (rec.out_node,)


def _custom_fun(rec: Any) -> Any:
    """The custom_jvp/custom_vjp function a record calls, or None."""
    if rec.prim.name in ("custom_jvp_call", "custom_vjp_call"):
        return rec.params.get("cj", rec.params.get("cv"))
    return None


def _replay_multi(rec: Any, args: list[Any], forward: bool = False) -> list[Any]:
    """Replay a record with several outputs. Checkpointed segments are simply run again (their
    derivatives are those of their inside); custom-rule functions are called again, so their rules
    apply, except that forward-mode tangents through a custom_vjp function (which has no JVP, as in
    JAX) are its body's."""
    if rec.prim.name == "checkpoint":
        fun, in_tree = rec.params["fun"], rec.params["in_tree"]
        return [o if hasattr(o, "shape") else None for o in tree_flatten(fun(*tree_unflatten(in_tree, args)))[0]]
    custom = _custom_fun(rec)
    if custom is not None:
        # Calling the custom function again keeps its rule in force for jvp/vjp of the replay.
        full = rec.params["split"].full(tree_unflatten(rec.params["in_tree"], args))
        if forward and rec.prim.name == "custom_vjp_call":
            custom = custom.fun
        return list(tree_flatten(custom(*full))[0])
    call = rec.params.get("call")
    if isinstance(call, HigherOrderCall):  # a loop (gpuad.lax.scan): the same loop on the new operands
        again = call.again(args)
        return list(call_higher_order(again, again.leaves))
    raise NotImplementedError(f"make_tape cannot replay a '{rec.prim.name}' record with several outputs")


def _leaf_paths(tree: TreeDef, prefix: str = "") -> list[str]:
    """A suffix per leaf: '' for a leaf argument, '.w' for a dict key, '.0' for a tuple element."""
    if tree.kind == "leaf":
        return [prefix]
    if tree.kind == "dict":
        keys = tree.meta
    elif tree.kind == "namedtuple":
        keys = tree.meta._fields
    else:
        keys = range(len(tree.children))
    return [path for k, c in zip(keys, tree.children) for path in _leaf_paths(c, f"{prefix}.{k}")]


def _unique(name: str, used: set[str]) -> str:
    """Input names must not collide with each other or with the v1, v2, ... of intermediates."""
    if re.fullmatch(r"v\d+", name) or keyword.iskeyword(name) or name == "const":
        name = f"{name}_"
    base, k = name, 1
    while name in used:
        k += 1
        name = f"{base}_{k}"
    used.add(name)
    return name


def _index_text(shape: tuple[int, ...], k: int) -> str:
    if not shape:
        return ""
    return "[" + ", ".join(str(int(i)) for i in numpy.unravel_index(k, shape)) + "]"


def _fit(t: Any, x: Any, what: str) -> Any:
    """``t`` as an array of ``x``'s shape, dtype, library and device (broadcast if it is smaller)."""
    if not (isinstance(t, Tracer) or backend.is_array(t)):
        raise TypeError(f"make_tape table: {what} must be an array or None, got {type(t).__name__}")
    try:
        shape = numpy.broadcast_shapes(tuple(t.shape), tuple(x.shape))
    except ValueError:
        shape = None
    if shape != tuple(x.shape):
        raise ValueError(
            f"make_tape table: {what} has shape {tuple(t.shape)}, which does not broadcast to the value's "
            f"shape {tuple(x.shape)}"
        )
    t = gnp.broadcast_to(t, tuple(x.shape)) if tuple(t.shape) != tuple(x.shape) else t
    return gnp.astype(t, x.dtype) if t.dtype != x.dtype else t


def _host(v: Any, point: int | None, like: Any = None) -> Any:
    """A NumPy copy of ``v`` (element ``point`` along axis 0 if given): only what the table shows
    crosses to the host. None stays None for integer values; a missing derivative is zero."""
    if like is not None and not backend.is_real_float(like.dtype):
        return None
    if v is None:
        if like is None:
            return None
        shape = tuple(like.shape[1:]) if point is not None else tuple(like.shape)
        return numpy.zeros(shape, dtype=backend.dtype_name(like.dtype))  # host-ok: display
    if point is not None:
        v = v[point, ...]
    return numpy.array(backend.to_numpy(backend.writable(v)))  # host-ok: the one copy for display


def _fmt(v: Any, digits: int) -> str:
    if v is None:
        return "-"
    a = numpy.asarray(v)
    if a.ndim == 0:
        return _fmt_scalar(a.item(), digits)
    flat = a.reshape(-1)
    items = [_fmt_scalar(x, digits) for x in flat[:5].tolist()]
    if flat.size > 5:  # the first three, and the last
        items = items[:3] + ["...", _fmt_scalar(flat[-1].item(), digits)]
    text = "[" + ", ".join(items) + "]"
    return text if a.ndim == 1 else f"{text} {tuple(a.shape)}"


def _fmt_scalar(x: Any, digits: int) -> str:
    if isinstance(x, int) or x != x or x in (float("inf"), float("-inf")):  # bools too
        return str(x)
    if x == 0 or 10.0 ** -digits <= abs(x) < 1e6:
        text = f"{x:.{digits}f}"
        return "0." + "0" * digits if text.startswith("-") and float(text) == 0 else text
    return f"{x:.{max(digits - 1, 1)}e}"


def _const_text(a: Any) -> str:
    """A scalar constant by value (``2.0``), any other constant as ``const``."""
    if isinstance(a, (bool, int, float)):
        return repr(a)
    shape = getattr(a, "shape", None)
    if shape is not None and len(shape) == 0 and not isinstance(a, Tracer):
        return repr(backend.to_numpy(a).item())  # host-ok: one number, for display
    return "const"


def _shape_text(shape: Any) -> str:
    return str(tuple(int(s) for s in shape))


_INFIX = {"add": "+", "subtract": "-", "multiply": "*", "divide": "/", "matmul": "@", "pow": "**"}


def _expression(prim: str, inputs: tuple[str, ...], params: dict[str, Any]) -> str:
    if prim in _INFIX and len(inputs) == 2 and not params:
        return f"{inputs[0]} {_INFIX[prim]} {inputs[1]}"
    if prim == "negative" and len(inputs) == 1:
        return f"-{inputs[0]}"
    if prim == "integer_pow" and set(params) == {"n"}:
        return f"{inputs[0]} ** {params['n']}"
    if prim == "getitem" and set(params) == {"index"}:
        return f"{inputs[0]}[{params['index']}]"
    items = list(inputs) + [f"{k}={v!r}" for k, v in params.items()]
    return f"{prim}({', '.join(items)})"


_HIDDEN_PARAMS = frozenset({"xp", "device", "active"})  # bookkeeping of higher-order records


def _shown_params(prim: str, params: dict[str, Any], in_ndim: int | None) -> dict[str, Any]:
    """The parameters worth printing: plain data only (no functions, namespaces or trees)."""
    shown: dict[str, Any] = {}
    for k, v in params.items():
        if k in _HIDDEN_PARAMS:
            continue
        if k == "index" and prim == "getitem":
            shown[k] = _index_param(v, in_ndim)
        elif _is_plain(v):
            shown[k] = v
    return shown


def _is_plain(v: Any) -> bool:
    if isinstance(v, (tuple, list)):
        return all(_is_plain(x) for x in v)
    return v is None or isinstance(v, (bool, int, float, str))


def _index_param(index: Any, in_ndim: int | None) -> str:
    """``x[0]`` rather than the recorded ``x[..., 0]`` where the index spans every axis."""
    items = list(index) if isinstance(index, tuple) else [index]
    rest = items[1:]
    if items and items[0] is Ellipsis and in_ndim is not None and rest and Ellipsis not in rest:
        if sum(1 for i in rest if i is not None) == in_ndim:
            items = rest
    return ", ".join(_index_item(i) for i in items)


def _index_item(i: Any) -> str:
    if i is Ellipsis:
        return "..."
    if isinstance(i, slice):
        text = ":".join("" if b is None else str(b) for b in (i.start, i.stop))
        return text if i.step is None else f"{text}:{i.step}"
    return str(i) if i is None or isinstance(i, int) else "array"


def _q(text: str) -> str:
    """A DOT string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
