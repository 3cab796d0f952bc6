"""custom_jvp and custom_vjp: user-defined derivative rules, with JAX's interface.

A call looks at the innermost transform among its differentiated arguments:
  * forward mode runs the custom JVP rule one level down;
  * reverse mode records one line on the tape; its VJP is the custom VJP (custom_vjp), or the
    transpose of the custom JVP rule obtained by reverse-differentiating that rule's tangent map,
    which is linear (custom_jvp);
  * vmap batches the function and its rules (with vmap) and calls the custom function again one
    level down, so the rules keep applying to outer transforms;
  * anything else (no transform, a recording trace) just calls the function.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

from .backend import is_float_array
from .batching import BatchTrace, BatchTracer
from .forward import JVPTrace, JVPTracer
from .primitives import Primitive, add, filled_like, summed
from .reverse import Record, ReverseTrace, ReverseTracer, backward
from .tracing import HigherOrderCall, call_higher_order, open_trace
from .transforms import vmap
from .tree import tree_flatten, tree_unflatten
from .uniform import Uniform

__all__ = ["custom_jvp", "custom_vjp"]


class _Split:
    """A call's arguments split into the non-differentiated ones (by position) and the rest."""

    def __init__(self, args: tuple[Any, ...], nondiff: tuple[int, ...], name: str):
        for i in nondiff:
            if i >= len(args):
                raise TypeError(f"{name}: nondiff_argnums contains {i}, but the function got {len(args)} arguments")
        self.n = len(args)
        self.nondiff = nondiff
        self.static = [args[i] for i in nondiff]
        self.diff_pos = [i for i in range(len(args)) if i not in nondiff]
        self.diff = tuple(args[i] for i in self.diff_pos)

    def full(self, diff: Sequence[Any]) -> list[Any]:
        out: list[Any] = [None] * self.n
        for i, v in zip(self.nondiff, self.static):
            out[i] = v
        for i, v in zip(self.diff_pos, diff):
            out[i] = v
        return out


def _check_nondiff(nondiff_argnums: Any, name: str) -> tuple[int, ...]:
    nums = tuple(nondiff_argnums)
    if any(not isinstance(i, int) or isinstance(i, bool) or i < 0 for i in nums):
        raise TypeError(f"{name}: nondiff_argnums must be non-negative ints, got {nondiff_argnums!r}")
    return nums


def _zeros_like_tree(tree: Any) -> Any:
    leaves, treedef = tree_flatten(tree)
    return tree_unflatten(treedef, [filled_like(v, 0) if is_float_array(v) else None for v in leaves])


# ---------------------------------------------------------------------------------------------
# custom_jvp
# ---------------------------------------------------------------------------------------------


class custom_jvp:
    """A function with a custom JVP rule, as ``jax.custom_jvp``.

    >>> import numpy as np, gpuad, gpuad.numpy as gnp
    >>> @custom_jvp
    ... def f(x):
    ...     return gnp.sin(x)
    >>> @f.defjvp
    ... def f_jvp(primals, tangents):
    ...     (x,), (t,) = primals, tangents
    ...     return f(x), 2.0 * t  # a deliberately different rule
    >>> float(gpuad.grad(f)(np.asarray(0.3)))
    2.0
    """

    def __init__(self, fun: Callable[..., Any], nondiff_argnums: Sequence[int] = ()):
        if not callable(fun):
            raise TypeError(f"custom_jvp: expected a function, got {type(fun).__name__}")
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.nondiff_argnums = _check_nondiff(nondiff_argnums, "custom_jvp")
        self.jvp_rule: Callable[..., Any] | None = None

    def defjvp(self, jvp: Callable[..., Any]) -> Callable[..., Any]:
        """Set the rule ``jvp(primals, tangents) -> (primal_out, tangent_out)`` (with
        nondiff_argnums, ``jvp(*nondiff_args, primals, tangents)``)."""
        if not callable(jvp):
            raise TypeError(f"custom_jvp.defjvp: expected a function, got {type(jvp).__name__}")
        self.jvp_rule = jvp
        return jvp

    def defjvps(self, *rules: Callable[..., Any] | None) -> None:
        """Set one rule per argument, ``rule(t, primal_out, *primals) -> tangent contribution``."""

        def jvp(primals: tuple[Any, ...], tangents: tuple[Any, ...]) -> tuple[Any, Any]:
            out = self.fun(*primals)
            total = None
            for rule, t in zip(rules, tangents):
                if rule is None or t is None:
                    continue
                c = rule(t, out, *primals)
                total = c if total is None else add(total, c)
            return out, (total if total is not None else _zeros_like_tree(out))

        self.jvp_rule = jvp

    def _rule(self, split: _Split, primals: tuple[Any, ...], tangents: tuple[Any, ...]) -> tuple[Any, Any]:
        out = self.jvp_rule(*split.static, primals, tangents)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise TypeError(
                f"custom_jvp rule of {self.__name__} must return a pair (primal_out, tangent_out), "
                f"got {type(out).__name__}"
            )
        p_out, t_out = out
        p_flat, p_tree = tree_flatten(p_out)
        t_flat, t_tree = tree_flatten(t_out)
        if p_tree != t_tree:
            raise TypeError(
                f"custom_jvp rule of {self.__name__} returned a tangent of structure {t_tree} for a "
                f"primal output of structure {p_tree}; they must match"
            )
        for i, (p, t) in enumerate(zip(p_flat, t_flat)):
            if tuple(t.shape) != tuple(p.shape):
                raise ValueError(
                    f"custom_jvp rule of {self.__name__}: tangent output {i} has shape {tuple(t.shape)} "
                    f"but the primal output has shape {tuple(p.shape)}"
                )
        return p_out, t_out

    def __call__(self, *args: Any) -> Any:
        if self.jvp_rule is None:
            raise AttributeError(f"no JVP rule defined for custom_jvp function {self.__name__}; use defjvp")
        call = _CustomJVPCall(self, args, _Split(args, self.nondiff_argnums, f"custom_jvp {self.__name__}"))
        return call_higher_order(call, call.leaves)


# ---------------------------------------------------------------------------------------------
# custom_vjp
# ---------------------------------------------------------------------------------------------


class custom_vjp:
    """A function with a custom VJP, as ``jax.custom_vjp``: ``defvjp(fwd, bwd)`` with
    ``fwd(*args) -> (out, residuals)`` and ``bwd(residuals, g) -> tuple of cotangents`` (one per
    differentiated argument; with nondiff_argnums, ``bwd(*nondiff_args, residuals, g)``). As in JAX,
    forward mode (jvp) through it is an error; use custom_jvp for that.

    >>> import numpy as np, gpuad, gpuad.numpy as gnp
    >>> @custom_vjp
    ... def clip_gradient(x):
    ...     return x
    >>> clip_gradient.defvjp(lambda x: (x, None), lambda res, g: (gnp.clip(g, -1.0, 1.0),))
    >>> float(gpuad.grad(lambda x: 5.0 * clip_gradient(x))(np.asarray(2.0)))
    1.0
    """

    def __init__(self, fun: Callable[..., Any], nondiff_argnums: Sequence[int] = ()):
        if not callable(fun):
            raise TypeError(f"custom_vjp: expected a function, got {type(fun).__name__}")
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.nondiff_argnums = _check_nondiff(nondiff_argnums, "custom_vjp")
        self.fwd: Callable[..., Any] | None = None
        self.bwd: Callable[..., Any] | None = None

    def defvjp(self, fwd: Callable[..., Any], bwd: Callable[..., Any]) -> None:
        if not callable(fwd) or not callable(bwd):
            raise TypeError("custom_vjp.defvjp: fwd and bwd must be functions")
        self.fwd, self.bwd = fwd, bwd

    def _forward(self, split: _Split, diff: tuple[Any, ...]) -> tuple[Any, Any]:
        out = self.fwd(*split.full(diff))
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise TypeError(
                f"custom_vjp fwd of {self.__name__} must return a pair (output, residuals), got {type(out).__name__}"
            )
        return out[0], out[1]

    def _backward(self, split: _Split, res: Any, g: Any) -> tuple[Any, ...]:
        cts = self.bwd(*split.static, res, g)
        if not isinstance(cts, (tuple, list)) or len(cts) != len(split.diff):
            raise TypeError(
                f"custom_vjp bwd of {self.__name__} must return a tuple with one cotangent per "
                f"differentiated argument ({len(split.diff)}), got {type(cts).__name__}"
                + (f" of length {len(cts)}" if isinstance(cts, (tuple, list)) else "")
            )
        return tuple(cts)

    def __call__(self, *args: Any) -> Any:
        if self.fwd is None:
            raise AttributeError(f"no VJP defined for custom_vjp function {self.__name__}; use defvjp")
        call = _CustomVJPCall(self, args, _Split(args, self.nondiff_argnums, f"custom_vjp {self.__name__}"))
        return call_higher_order(call, call.leaves)


# ---------------------------------------------------------------------------------------------
# The recorded calls: higher-order records like checkpoint, living with the tape machinery
# rather than in the table
# ---------------------------------------------------------------------------------------------


def _custom_impl(xp, *leaves, split, in_tree, cj=None, cv=None, **_):
    """A recorded custom call's body (what a replay runs)."""
    return tuple(tree_flatten((cj or cv).fun(*split.full(tree_unflatten(in_tree, list(leaves)))))[0])


def _custom_jvp_transpose(gs, ans, *leaves, cj, split, in_tree, active, xp, device, **_):
    """VJP of a custom_jvp call: reverse mode through the rule's (linear) tangent map."""
    primals = tree_unflatten(in_tree, list(leaves))
    with open_trace(ReverseTrace, xp, device=device) as trace:
        tangent_in = [trace.new_input(filled_like(v, 0)) if act else None for v, act in zip(leaves, active)]
        tangents = [t if t is not None else (filled_like(v, 0) if is_float_array(v) else None) for t, v in zip(tangent_in, leaves)]
        _, t_out = cj._rule(split, primals, tree_unflatten(in_tree, tangents))
    seeds: dict[int, Any] = {}
    for t, g in zip(tree_flatten(t_out)[0], gs):
        if g is None or not (type(t) is ReverseTracer and t._trace is trace and t.node is not None):
            continue
        seeds[t.node] = add(seeds[t.node], g) if t.node in seeds else g
    wanted = [t.node for t in tangent_in if t is not None]
    grads = iter(backward(trace.tape, seeds, wanted, consume=True))
    return tuple(next(grads) if act else None for act in active)


def _custom_jvp_replay(tangents, ans, *leaves, cj, split, in_tree, active, xp, device, **_):
    """JVP of a recorded custom_jvp call (linearize's replay): the rule itself."""
    full = [t if t is not None else (filled_like(v, 0) if is_float_array(v) else None) for t, v in zip(tangents, leaves)]
    _, t_out = cj._rule(split, tree_unflatten(in_tree, list(leaves)), tree_unflatten(in_tree, full))
    return tuple(tree_flatten(t_out)[0])


def _custom_vjp_bwd(gs, ans, *leaves, cv, split, in_tree, active, xp, device, res, out_tree, out_avals):
    """VJP of a custom_vjp call: the user's bwd, given zeros for outputs that got no cotangent."""
    g_leaves = [
        xp.zeros(shape, dtype=dtype, device=device) if g is None else (g.full() if type(g) is Uniform else g)
        for g, (shape, dtype) in zip(gs, out_avals)
    ]
    cts = cv._backward(split, res, tree_unflatten(out_tree, g_leaves))
    flat, tree = tree_flatten(tuple(cts))
    if len(flat) != len(leaves):
        raise TypeError(
            f"custom_vjp bwd of {cv.__name__} returned cotangents of structure {tree}, which does not "
            f"match the differentiated arguments {in_tree}"
        )
    return tuple(c if act else None for c, act in zip(flat, active))


_CUSTOM_JVP_CALL = Primitive(
    "custom_jvp_call", _custom_impl, jvp=_custom_jvp_replay, vjp=_custom_jvp_transpose, residuals=("args",)
)
_CUSTOM_VJP_CALL = Primitive("custom_vjp_call", _custom_impl, vjp=_custom_vjp_bwd, residuals=("args",))


# ---------------------------------------------------------------------------------------------
# The calls, as each transform sees them
# ---------------------------------------------------------------------------------------------


class _CustomCall(HigherOrderCall):
    """A call of a custom_jvp or custom_vjp function ``f`` on ``args`` (``split``: its
    differentiated and static arguments; ``leaves``: the differentiated ones, flat). Each kind says
    how it runs one level down under reverse mode (``below``: the output, and the parameters of the
    line recorded) and what custom function of the batched arguments vmap calls (``batched``)."""

    prim: Primitive  # the line reverse mode records

    def __init__(self, f: Any, args: tuple[Any, ...], split: _Split):
        self.f, self.args, self.split = f, args, split
        self.leaves, self.in_tree = tree_flatten(split.diff)

    def run(self) -> Any:
        return self.f.fun(*self.args)

    def again(self, leaves: list[Any]) -> "_CustomCall":
        args = tuple(self.split.full(tree_unflatten(self.in_tree, leaves)))
        return type(self)(self.f, args, _Split(args, self.split.nondiff, self.name))

    def reverse(self, trace: ReverseTrace) -> Any:
        """Evaluate the call one level down and record it as one multi-output line."""
        mine = [type(v) is ReverseTracer and v._trace is trace for v in self.leaves]
        primals = [v.primal if m else v for v, m in zip(self.leaves, mine)]
        in_nodes = [v.node if m else None for v, m in zip(self.leaves, mine)]
        active = tuple(n is not None for n in in_nodes)
        out, params = self.below(tree_unflatten(self.in_tree, primals))
        out_flat, out_tree = tree_flatten(out)
        if not any(active):
            return tree_unflatten(out_tree, [ReverseTracer(trace, o, None) for o in out_flat])
        nodes = tuple(trace.new_node() for _ in out_flat)
        in_avals = [None if n is None else (tuple(p.shape), p.dtype) for n, p in zip(in_nodes, primals)]
        params.update(split=self.split, in_tree=self.in_tree, active=active, xp=trace.xp, device=trace.device)
        params.update(out_tree=out_tree, out_avals=[(tuple(o.shape), o.dtype) for o in out_flat])
        trace._append(Record(self.prim, in_nodes, nodes, primals, None, params, in_avals), primals, list(out_flat))
        return tree_unflatten(out_tree, [ReverseTracer(trace, o, n) for o, n in zip(out_flat, nodes)])

    def batch(self, trace: BatchTrace) -> Any:
        """Batch the function and its rules with vmap, and call the batched custom function one level
        down, so that the rules keep applying to the transforms below."""
        arg_flags = [type(v) is BatchTracer and v._trace is trace for v in self.leaves]
        vals = [v.val if m else v for v, m in zip(self.leaves, arg_flags)]
        axes = tuple(tree_unflatten(self.in_tree, [0 if m else None for m in arg_flags]))
        fun_b = vmap(lambda *d: self.f.fun(*self.split.full(d)), in_axes=axes)
        out = self.batched(fun_b, axes, arg_flags)(*tree_unflatten(self.in_tree, vals))
        out_flat, out_tree = tree_flatten(out)
        return tree_unflatten(out_tree, [BatchTracer(trace, o) for o in out_flat])


class _CustomJVPCall(_CustomCall):
    name, prim = "custom_jvp_call", _CUSTOM_JVP_CALL

    def jvp(self, trace: JVPTrace) -> Any:
        if not any(type(v) is JVPTracer and v._trace is trace and v.tangent is not None for v in self.leaves):
            # Every tangent is a symbolic zero (inputs through floor, round...): the output's is
            # too, as in JAX; the rule would multiply zeros by weights that may be inf or NaN.
            return self.run()
        primals, tangents = [], []
        for v in self.leaves:
            if type(v) is JVPTracer and v._trace is trace:
                primals.append(v.primal)
                tangents.append(v.tangent if v.tangent is not None else filled_like(v.primal, 0))
            else:
                primals.append(v)
                tangents.append(filled_like(v, 0) if is_float_array(v) else None)
        in_tree = self.in_tree
        p_out, t_out = self.f._rule(self.split, tree_unflatten(in_tree, primals), tree_unflatten(in_tree, tangents))
        p_flat, out_tree = tree_flatten(p_out)
        return tree_unflatten(out_tree, [JVPTracer(trace, p, t) for p, t in zip(p_flat, tree_flatten(t_out)[0])])

    def below(self, primals: Any) -> tuple[Any, dict[str, Any]]:
        # Calling the custom function itself (not its body) one level down keeps the rule in force
        # for the transforms below this one (grad of grad).
        return self.f(*self.split.full(primals)), {"cj": self.f}

    def batched(self, fun_b: Callable[..., Any], axes: tuple[Any, ...], arg_flags: list[bool]) -> custom_jvp:
        batched = custom_jvp(fun_b)
        rule, static = self.f.jvp_rule, self.split.static
        batched.defjvp(lambda p, t: vmap(lambda p1, t1: rule(*static, p1, t1), in_axes=(axes, axes))(p, t))
        return batched


class _CustomVJPCall(_CustomCall):
    name, prim = "custom_vjp_call", _CUSTOM_VJP_CALL

    def jvp(self, trace: JVPTrace) -> Any:
        raise TypeError(
            f"can't apply forward-mode differentiation (jvp, jacfwd, hessian's outer pass) to the "
            f"custom_vjp function {self.f.__name__}; define it with custom_jvp instead (as in JAX)"
        )

    def below(self, primals: Any) -> tuple[Any, dict[str, Any]]:
        out, res = self.f._forward(self.split, primals)
        return out, {"cv": self.f, "res": res}

    def batched(self, fun_b: Callable[..., Any], axes: tuple[Any, ...], arg_flags: list[bool]) -> custom_vjp:
        me, split = self.f, self.split

        def fwd_b(*d: Any) -> Any:
            return vmap(lambda *p: me._forward(split, p), in_axes=axes)(*d)

        def bwd_b(res: Any, g: Any) -> tuple[Any, ...]:
            cts = vmap(lambda r, gg: me._backward(split, r, gg))(res, g)
            # An argument shared by all points (not batched) gets the sum over the points.
            flat, tree = tree_flatten(cts)
            out = [c if f else summed(c, (-c.ndim,)) for c, f in zip(flat, arg_flags)] if len(flat) == len(arg_flags) else flat
            return tuple(tree_unflatten(tree, out))

        batched = custom_vjp(fun_b)
        batched.defvjp(fwd_b, bwd_b)
        return batched
