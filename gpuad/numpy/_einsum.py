"""``einsum``: Einstein summation with JAX's semantics, built from gpuad.numpy's differentiable
functions, so every transform (grad, jvp, hessian, vmap, jit) works with no rule of its own.

How it computes: each operand first loses what concerns it alone (its repeated indices become a
diagonal, read as one strided slice; its size-1 axes that broadcast against another operand are
dropped; the indices no other operand and not the output name are summed). Then the operands are
contracted two at a time, in a greedy order by the size of what each step makes, each step being
ONE matrix product: indices both operands share and something later needs are the batch (leading)
axis, the shared ones nothing needs any more are merged into the contracted axis, and the others
into the rows and the columns. A step that contracts nothing is a broadcast multiply. Never a
Python loop over index values. Under vmap the batch axis leads, so a per-point einsum is still one
matrix product per step (matmul's batch rule merges a per-point side with a shared one).
"""

from __future__ import annotations

import builtins
import math
import operator
from typing import Any

from .. import primitives as _p
from ..tracing import Tracer
from ._core import _as_array, astype, result_type
from ._indexing import getitem

__all__ = ["einsum"]

# The letters in NumPy's order for the interleaved form's integers (0 is "A", 26 is "a"): an
# index is its position here, so sorting indices sorts the letters by character code, which is
# how NumPy and JAX order the output of the implicit form.
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_INDEX_OF = {c: i for i, c in enumerate(_LETTERS)}
_ELLIPSIS = "..."
# What ``optimize`` may name (opt_einsum's strategies, as JAX and NumPy accept them); every one is
# served by the greedy order below, which is optimal for two operands and good for a few.
_STRATEGIES = {
    "auto", "auto-hq", "greedy", "optimal", "dp", "eager", "branch-all", "branch-2", "branch-1",
    "random-greedy", "random-greedy-128",
}


def einsum(subscripts: Any, /, *operands: Any, optimize: Any = "auto") -> Any:
    """Einstein summation over the operands' indices, as ``jax.numpy.einsum``.

    ``subscripts`` names each operand's axes with letters (``"ij,jk->ik"``); ``...`` stands for
    broadcast leading axes; an index repeated in one operand takes its diagonal; without ``->``
    the output is the indices named once, in alphabetical order (uppercase first), after the
    ``...`` axes. An explicit output that leaves out ``...`` sums over those axes (as JAX does).
    Size-1 axes broadcast against the other operands. The interleaved form
    ``einsum(x, [0, 1], y, [1, 2], [0, 2])`` names indices with integers (0 is ``A``, 26 is
    ``a``) and ``...`` with ``Ellipsis``.

    ``optimize`` picks the order of the pairwise contractions: any of JAX's strategy names or
    True (all give the greedy order), False (left to right), or a path as a list of tuples of
    positions in the list of operands still to contract, each result going to the end of the list
    (opt_einsum's format; a leading ``"einsum_path"`` is allowed; a path that stops early is
    completed greedily). Each contraction is one matrix product.

    >>> import numpy as np
    >>> a, b = np.arange(6.0).reshape(2, 3), np.arange(12.0).reshape(3, 4)
    >>> einsum("ij,jk->ik", a, b).tolist() == (a @ b).tolist()
    True
    >>> float(einsum("ii", np.eye(3)))
    3.0
    """
    if not isinstance(subscripts, str):
        subscripts, operands = _from_interleaved((subscripts,) + operands)
    if not operands:
        raise ValueError("einsum: no operands given; pass the arrays after the subscripts, e.g. einsum('ij->ji', x)")
    arrays = [_as_array(x, f"einsum: operand {i}") for i, x in enumerate(operands)]
    terms, output = _parse(subscripts, arrays)
    sizes = _sizes(terms, arrays)
    arrays = _common_dtype(arrays)
    path = _given_path(optimize, len(arrays))

    ops = [_reduce_alone(x, labels, sizes, i, terms, output) for i, (x, labels) in enumerate(zip(arrays, terms))]
    while len(ops) > 1:
        i, j = next(path, None) or _next_pair(ops, sizes, output, optimize is False)
        rest = [op for k, op in enumerate(ops) if k not in (i, j)]
        needed = set(output).union(*(labels for _, labels in rest))
        ops = rest + [_contract(ops[i], ops[j], needed, sizes)]
    x, labels = ops[0]
    x, labels = _sum_out(x, labels, set(output))
    return _permuted(x, [labels.index(label) for label in output])


# ---------------------------------------------------------------------------------------------
# Reading the subscripts
# ---------------------------------------------------------------------------------------------


def _from_interleaved(args: tuple[Any, ...]) -> tuple[str | None, tuple[Any, ...]]:
    """``(x, [0, 1], y, [1, 2], [0, 2])`` as the string form (integers as NumPy's letters)."""
    first = args[0]
    if not (isinstance(first, Tracer) or hasattr(first, "shape")):
        raise TypeError(
            f"einsum: subscripts must be a string such as 'ij,jk->ik' (or the interleaved form "
            f"einsum(x, [0, 1], y, [1, 2])), got {type(first).__name__}"
        )
    operands, terms = list(args[0::2]), list(args[1::2])
    output = None
    if len(operands) > len(terms):  # odd count: the last item is the output's sublist
        output = operands.pop()
        if isinstance(output, Tracer) or hasattr(output, "shape"):
            raise ValueError(
                f"einsum: in the interleaved form each operand needs a sublist after it; operand "
                f"{len(operands)} has none"
            )
    words = [_sublist(t, f"operand {i}") for i, t in enumerate(terms)]
    text = ",".join(words) + ("" if output is None else "->" + _sublist(output, "the output"))
    return text, tuple(operands)


def _sublist(items: Any, what: str) -> str:
    if not isinstance(items, (list, tuple)):
        raise TypeError(f"einsum: the subscripts of {what} must be a list of integers and Ellipsis, got {items!r}")
    out = []
    for k in items:
        if k is Ellipsis:
            out.append(_ELLIPSIS)
            continue
        if isinstance(k, builtins.bool) or not hasattr(k, "__index__"):
            raise TypeError(f"einsum: the subscripts of {what} must be integers or Ellipsis, got {k!r}")
        k = operator.index(k)
        if not 0 <= k < len(_LETTERS):
            raise ValueError(f"einsum: subscript {k} of {what} is not in [0, {len(_LETTERS)})")
        out.append(_LETTERS[k])
    return "".join(out)


def _name(label: int) -> str:
    return f"'{_LETTERS[label]}'" if label >= 0 else f"'...' axis {label}"


def _letters(word: str, where: str) -> list[int | str]:
    """The indices of one term (integers) with ``_ELLIPSIS`` where ``...`` stands."""
    if word.count(_ELLIPSIS) > 1 or "." in word.replace(_ELLIPSIS, ""):
        raise ValueError(f"einsum: {where} {word!r} has a '.' that is not part of a single '...'")
    out: list[int | str] = []
    for part in word.split(_ELLIPSIS):
        for c in part:
            if c not in _INDEX_OF:
                raise ValueError(
                    f"einsum: invalid subscript {c!r} in {where} {word!r}; subscripts are the letters "
                    "a-z and A-Z (and '...')"
                )
            out.append(_INDEX_OF[c])
        out.append(_ELLIPSIS)
    out.pop()  # the marker after the last part
    return out


def _parse(subscripts: str, arrays: list[Any]) -> tuple[list[list[int]], list[int]]:
    """Each operand's indices (the axes under ``...`` as negative indices, -1 the last) and the
    output's."""
    text = subscripts.replace(" ", "")
    if text.count("->") > 1 or text.replace("->", "").count("-") or text.replace("->", "").count(">"):
        raise ValueError(f"einsum: subscripts {subscripts!r} must have at most one '->', before the output")
    explicit = "->" in text
    inputs, out_word = text.split("->") if explicit else (text, "")
    words = inputs.split(",")
    if len(words) != len(arrays):
        raise ValueError(
            f"einsum: subscripts {subscripts!r} name {len(words)} operand(s) but {len(arrays)} were given"
        )
    terms: list[list[int]] = []
    widest = 0
    for i, (word, x) in enumerate(zip(words, arrays)):
        letters = _letters(word, f"the subscripts of operand {i}")
        named = builtins.sum(1 for c in letters if c != _ELLIPSIS)
        has_ellipsis = len(letters) != named
        if named > x.ndim or (named < x.ndim and not has_ellipsis):
            raise ValueError(
                f"einsum: operand {i} has {x.ndim} dimension(s) (shape {tuple(x.shape)}) but its subscripts "
                f"{word!r} name {named}" + ("" if has_ellipsis else "; use '...' for leading axes to broadcast")
            )
        rank = x.ndim - named
        widest = builtins.max(widest, rank)
        labels: list[int] = []
        for c in letters:
            labels.extend(range(-rank, 0) if c == _ELLIPSIS else (c,))
        terms.append(labels)
    if explicit:
        letters = _letters(out_word, "the output subscripts")
        seen: set[int] = set()
        output: list[int] = []
        everywhere = set().union(*terms)
        for c in letters:
            if c == _ELLIPSIS:
                output.extend(range(-widest, 0))
                continue
            if c in seen:
                raise ValueError(f"einsum: output subscript {_name(c)} appears more than once in {subscripts!r}")
            if c not in everywhere:
                raise ValueError(f"einsum: output subscript {_name(c)} of {subscripts!r} appears in no operand")
            seen.add(c)
            output.append(c)
    else:
        counts: dict[int, int] = {}
        for labels in terms:
            for c in labels:
                counts[c] = counts.get(c, 0) + 1
        output = list(range(-widest, 0)) + sorted(c for c, n in counts.items() if n == 1 and c >= 0)
    return terms, output


def _sizes(terms: list[list[int]], arrays: list[Any]) -> dict[int, int]:
    """Each index's size; a size 1 broadcasts against any other, as NumPy's broadcasting."""
    sizes: dict[int, int] = {}
    for i, (labels, x) in enumerate(zip(terms, arrays)):
        mine: dict[int, int] = {}
        for label, d in zip(labels, x.shape):
            if mine.setdefault(label, d) != d:
                raise ValueError(
                    f"einsum: index {_name(label)} is repeated in operand {i} (shape {tuple(x.shape)}) "
                    f"with different sizes {mine[label]} and {d}; a repeated index takes a diagonal, "
                    "which needs equal sizes"
                )
            known = sizes.get(label, 1)
            if d != known and d != 1 and known != 1:
                raise ValueError(
                    f"einsum: index {_name(label)} has size {d} in operand {i} (shape {tuple(x.shape)}) "
                    f"but size {known} in an operand before it; sizes of one index must agree (or be 1)"
                )
            sizes[label] = d if known == 1 else known
    return sizes


def _common_dtype(arrays: list[Any]) -> list[Any]:
    """The operands in one dtype (the libraries' matmul may refuse mixed ones)."""
    if len({str(x.dtype) for x in arrays}) <= 1:
        return arrays
    dtype = result_type(*arrays)
    return [astype(x, dtype) if str(x.dtype) != str(dtype) else x for x in arrays]


def _given_path(optimize: Any, n: int) -> Any:
    """An iterator over the pairs a given path contracts (empty for a strategy name)."""
    if isinstance(optimize, builtins.bool) or optimize is None:
        return iter(())
    if isinstance(optimize, str):
        if optimize not in _STRATEGIES:
            raise ValueError(
                f"einsum: optimize={optimize!r} is not a known strategy; use True, False, one of "
                f"{sorted(_STRATEGIES)} or a path (a list of pairs of positions)"
            )
        return iter(())
    if not isinstance(optimize, (list, tuple)):
        raise TypeError(f"einsum: optimize must be a bool, a strategy name or a path, got {type(optimize).__name__}")
    steps = list(optimize)
    if steps and steps[0] == "einsum_path":
        steps = steps[1:]
    pairs = []
    left = n
    for step in steps:
        if not isinstance(step, (list, tuple)) or not builtins.all(isinstance(p, int) for p in step):
            raise ValueError(f"einsum: optimize path step {step!r} must be a tuple of operand positions")
        if len(step) != 2 or len(set(step)) != 2 or not builtins.all(0 <= p < left for p in step):
            raise ValueError(
                f"einsum: optimize path step {step!r} must name two different positions among the "
                f"{left} operands left at that step (gpuad contracts two operands at a time)"
            )
        pairs.append(tuple(sorted(step)))
        left -= 1
    return iter(pairs)


# ---------------------------------------------------------------------------------------------
# Computing: one operand alone, then one contraction of two
# ---------------------------------------------------------------------------------------------

Op = tuple[Any, list[int]]  # an array and the index of each of its axes


def _permuted(x: Any, order: list[int]) -> Any:
    return x if order == list(range(len(order))) else _p.permute_dims(x, axes=tuple(order))


def _reshaped(x: Any, shape: tuple[int, ...]) -> Any:
    return x if tuple(x.shape) == shape else _p.reshape(x, shape=shape, in_ndim=x.ndim)


def _sum_out(x: Any, labels: list[int], needed: set[int]) -> Op:
    """Sum over the axes whose index is not needed."""
    axes = tuple(a - len(labels) for a, label in enumerate(labels) if label not in needed)
    if not axes:
        return x, labels
    return _p.summed(x, axes), [label for label in labels if label in needed]


def _diagonal(x: Any, labels: list[int]) -> Op:
    """The diagonal over one repeated index: its axes moved to the end and merged into one,
    from which a strided slice reads the elements whose indices are all equal."""
    label = next(c for c in labels if labels.count(c) > 1)
    where = [a for a, c in enumerate(labels) if c == label]
    others = [a for a, c in enumerate(labels) if c != label]
    n, k = x.shape[where[0]], len(where)
    x = _permuted(x, others + where)
    x = _reshaped(x, tuple(x.shape[: len(others)]) + (n**k,))
    step = builtins.sum(n**p for p in range(k))  # from (i, ..., i) to (i+1, ..., i+1)
    return getitem(x, (Ellipsis, slice(None, None, step))), [labels[a] for a in others] + [label]


def _reduce_alone(
    x: Any, labels: list[int], sizes: dict[int, int], i: int, terms: list[list[int]], output: list[int]
) -> Op:
    """What one operand can do alone: diagonals, dropping its broadcast size-1 axes, and summing
    the indices that no other operand and not the output name."""
    while len(set(labels)) < len(labels):
        x, labels = _diagonal(x, labels)
    ones = [a for a, c in enumerate(labels) if x.shape[a] == 1 and sizes[c] != 1]
    if ones:  # constant along that index: the other operands supply it
        x = _reshaped(x, tuple(d for a, d in enumerate(x.shape) if a not in ones))
        labels = [c for a, c in enumerate(labels) if a not in ones]
    needed = set(output).union(*(t for k, t in enumerate(terms) if k != i))
    return _sum_out(x, labels, needed)


def _size(labels: Any, sizes: dict[int, int]) -> int:
    return math.prod(sizes[c] for c in labels)


def _next_pair(ops: list[Op], sizes: dict[int, int], output: list[int], in_order: builtins.bool) -> tuple[int, int]:
    """Greedy: the pair whose result is smallest relative to its inputs, pairs sharing an index
    first (outer products last), as opt_einsum's greedy strategy; or the first two in order."""
    if in_order:
        return 0, 1
    best = None
    for i in range(len(ops)):
        for j in range(i + 1, len(ops)):
            a, b = set(ops[i][1]), set(ops[j][1])
            needed = set(output).union(*(set(op[1]) for k, op in enumerate(ops) if k not in (i, j)))
            result = (a | b) & needed
            key = (not (a & b), _size(result, sizes) - _size(a, sizes) - _size(b, sizes), i, j)
            if best is None or key < best:
                best = key
    return best[2], best[3]


def _layout(
    x: Any, labels: list[int], first: list[int], middle: list[int], last: list[int]
) -> tuple[Any, builtins.bool]:
    """x as a (stack of) matrix with axes ``first`` (merged) then rows ``middle`` and columns
    ``last``; when x's axes already run first, last, middle, the transposed view of that layout
    (no copy), flagged True."""
    shape = dict(zip(labels, x.shape))
    lead = (math.prod(shape[c] for c in first),) if first else ()
    order = [labels.index(c) for c in first + middle + last]
    swapped = [labels.index(c) for c in first + last + middle]
    if order != sorted(order) and swapped == sorted(swapped):
        flat = _reshaped(x, lead + (math.prod(shape[c] for c in last), math.prod(shape[c] for c in middle)))
        return flat, True
    x = _permuted(x, order)
    return _reshaped(x, lead + (math.prod(shape[c] for c in middle), math.prod(shape[c] for c in last))), False


def _contract(one: Op, two: Op, needed: set[int], sizes: dict[int, int]) -> Op:
    """Two operands as one: a single (batched) matrix product, or a broadcast multiply when they
    share no index to sum over."""
    (x, lx), (y, ly) = one, two
    x, lx = _sum_out(x, lx, needed | set(ly))
    y, ly = _sum_out(y, ly, needed | set(lx))
    # Batch and contracted indices in the order of the larger operand: it is the one a
    # permutation would copy.
    big = lx if math.prod(x.shape) >= math.prod(y.shape) else ly
    small = ly if big is lx else lx
    shared = [c for c in big if c in small]
    batch = [c for c in shared if c in needed]
    summed = [c for c in shared if c not in needed]
    free_x = [c for c in lx if c not in ly]
    free_y = [c for c in ly if c not in lx]
    out_labels = batch + free_x + free_y
    out_shape = tuple(sizes[c] for c in out_labels)
    if not summed:
        nb, nx, ny = (tuple(sizes[c] for c in group) for group in (batch, free_x, free_y))
        xs = _reshaped(_permuted(x, [lx.index(c) for c in batch + free_x]), nb + nx + (1,) * len(ny))
        ys = _reshaped(_permuted(y, [ly.index(c) for c in batch + free_y]), nb + (1,) * len(nx) + ny)
        return _p.multiply(xs, ys), out_labels
    a, a_swapped = _layout(x, lx, batch, free_x, summed)
    b, b_swapped = _layout(y, ly, batch, summed, free_y)
    out = _p.matmul(_p.transposed(a) if a_swapped else a, _p.transposed(b) if b_swapped else b)
    return _reshaped(out, out_shape), out_labels
