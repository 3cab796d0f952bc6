"""Pytrees: nested tuples, lists, dicts and namedtuples of arrays, flattened the way JAX does.

Dicts flatten in sorted-key order, ``None`` is an empty node, anything else is a leaf.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["TreeDef", "tree_flatten", "tree_unflatten", "tree_map", "tree_leaves", "tree_structure", "tree_flatten_up_to"]


@dataclass(frozen=True)
class TreeDef:
    """The shape of a pytree without its leaves. ``kind`` is 'leaf', 'none', 'tuple', 'list',
    'dict' or 'namedtuple'; ``meta`` holds dict keys or the namedtuple class."""

    kind: str
    children: tuple["TreeDef", ...] = ()
    meta: Any = None

    @property
    def num_leaves(self) -> int:
        if self.kind == "leaf":
            return 1
        return sum(c.num_leaves for c in self.children)

    def __str__(self) -> str:
        if self.kind == "leaf":
            return "*"
        if self.kind == "none":
            return "None"
        inner = ", ".join(str(c) for c in self.children)
        if self.kind == "tuple":
            return f"({inner}{',' if len(self.children) == 1 else ''})"
        if self.kind == "list":
            return f"[{inner}]"
        if self.kind == "dict":
            return "{" + ", ".join(f"{k!r}: {c}" for k, c in zip(self.meta, self.children)) + "}"
        return f"{self.meta.__name__}({inner})"


_LEAF = TreeDef("leaf")
_NONE = TreeDef("none")
_FLAT_TUPLES: dict[int, TreeDef] = {}  # a memo: the structure of a tuple of n leaves


def tree_flatten(tree: Any) -> tuple[list[Any], TreeDef]:
    """Leaves in order, and the structure to rebuild the tree.

    >>> leaves, d = tree_flatten({"b": 2, "a": (1, None)})
    >>> leaves, str(d)
    ([1, 2], "{'a': (*, None), 'b': *}")
    """
    if tree is not None and not isinstance(tree, (tuple, list, dict)):
        return [tree], _LEAF  # a lone leaf, the common case
    if type(tree) is tuple and not any(c is None or isinstance(c, (tuple, list, dict)) for c in tree):
        n = len(tree)  # a plain tuple of leaves: its structure is memoized
        if n not in _FLAT_TUPLES:
            _FLAT_TUPLES[n] = TreeDef("tuple", (_LEAF,) * n)
        return list(tree), _FLAT_TUPLES[n]
    leaves: list[Any] = []

    def build(node: Any) -> TreeDef:
        if node is None:
            return _NONE
        if isinstance(node, dict):
            keys = sorted(node)
            return TreeDef("dict", tuple(build(node[k]) for k in keys), tuple(keys))
        if isinstance(node, (tuple, list)):
            children = tuple(build(c) for c in node)
            if isinstance(node, tuple) and hasattr(type(node), "_fields"):
                return TreeDef("namedtuple", children, type(node))
            return TreeDef("tuple" if isinstance(node, tuple) else "list", children)
        leaves.append(node)
        return _LEAF

    treedef = build(tree)
    return leaves, treedef


def tree_unflatten(treedef: TreeDef, leaves: Any) -> Any:
    """Rebuild a tree of ``treedef``'s shape from ``leaves``.

    >>> tree_unflatten(tree_flatten((1, [2]))[1], [5, 6])
    (5, [6])
    """
    if treedef is _LEAF:
        return next(iter(leaves))
    if treedef.kind == "tuple" and treedef is _FLAT_TUPLES.get(len(treedef.children)):
        return tuple(leaves)
    it = iter(leaves)

    def build(d: TreeDef) -> Any:
        if d.kind == "leaf":
            return next(it)
        if d.kind == "none":
            return None
        children = [build(c) for c in d.children]
        if d.kind == "tuple":
            return tuple(children)
        if d.kind == "list":
            return children
        if d.kind == "dict":
            return dict(zip(d.meta, children))
        return d.meta(*children)

    return build(treedef)


def tree_flatten_up_to(treedef: TreeDef, tree: Any) -> list[Any]:
    """The subtrees of ``tree`` at the leaf positions of ``treedef`` (so a ``None`` where treedef
    has a leaf is kept as a leaf). Raises ValueError when ``tree`` does not have that structure.

    >>> tree_flatten_up_to(tree_structure((1, [2, 3])), (None, [5, (6, 7)]))
    [None, 5, (6, 7)]
    """
    if type(tree) is tuple and treedef is _FLAT_TUPLES.get(len(tree)):
        return list(tree)  # a tuple of as many leaves (the common case)
    out: list[Any] = []

    def walk(d: TreeDef, node: Any) -> None:
        if d.kind == "leaf":
            out.append(node)
        elif d.kind == "none":
            if node is not None:
                raise ValueError(f"expected None, got {type(node).__name__}")
        elif d.kind == "dict":
            if not isinstance(node, dict) or sorted(node) != list(d.meta):
                raise ValueError(f"expected a dict with keys {list(d.meta)}, got {node!r:.60}")
            for k, c in zip(d.meta, d.children):
                walk(c, node[k])
        elif isinstance(node, {"tuple": tuple, "list": list}.get(d.kind, d.meta)) and len(node) == len(d.children):
            for c, n in zip(d.children, node):
                walk(c, n)
        else:
            try:
                length = f" of length {len(node)}"
            except TypeError:  # 0-d arrays have __len__ but no length
                length = ""
            raise ValueError(f"expected {d}, got {type(node).__name__}{length}")

    walk(treedef, tree)
    return out


def tree_leaves(tree: Any) -> list[Any]:
    """The leaves of ``tree``, in flattening order."""
    return tree_flatten(tree)[0]


def tree_structure(tree: Any) -> TreeDef:
    """The structure of ``tree``."""
    return tree_flatten(tree)[1]


def tree_map(fn: Callable[..., Any], tree: Any, *rest: Any) -> Any:
    """Apply ``fn`` leaf by leaf over trees of the same structure.

    >>> tree_map(lambda a, b: a + b, (1, {"x": 2}), (10, {"x": 20}))
    (11, {'x': 22})
    """
    leaves, treedef = tree_flatten(tree)
    others = []
    for i, r in enumerate(rest):
        rl, rd = tree_flatten(r)
        if rd != treedef:
            raise ValueError(
                f"tree_map: tree {i + 1} has structure {rd}, which differs from the first tree's {treedef}"
            )
        others.append(rl)
    return tree_unflatten(treedef, [fn(*xs) for xs in zip(leaves, *others)])
