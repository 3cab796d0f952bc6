"""gpuad's modules form layers: each imports only modules below it (README, Layout). The imports are
read from the source (ast), those inside functions included (a late import hides a cycle, it
does not remove it); only imports under ``if TYPE_CHECKING:`` are exempt."""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent / "gpuad"

# Bottom to top. A module may import any module before it in this list, none after it.
ORDER = [
    # libraries, by name
    "tree", "backend", "speedups",
    # the symbolic values rules return (a constant array, a pending negation)
    "uniform",
    # the trace stack and dispatch
    "tracing",
    # the primitive table
    "lazy_numpy", "primitives",
    # the engines
    "cotangents", "forward", "reverse", "batching", "jit",
    # the transforms
    "transforms", "forward_transforms", "custom",
    # the gpuad.numpy namespace
    "numpy",
    # tools
    "wengert", "testing", "__main__", "__init__",
]

# Upward imports still there, each with what removes it. The list only shrinks: a new upward
# import fails the test, and so does an entry here that no longer occurs.
KNOWN_UPWARD = {
    # The table's rules and the engines call gpuad.numpy's functions (reshape, sum, where, ...)
    # through this lazy namespace; table-level binders for them would remove it (issue 20).
    ("lazy_numpy", "numpy"),
}


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING"
    )


def imports_of(path: pathlib.Path) -> set[str]:
    """The gpuad modules ``path`` imports, anywhere in the file except under TYPE_CHECKING."""
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 or (node.level == 0 and (node.module or "").split(".")[0] == "gpuad"):
                parts = (node.module or "").split(".")
                if node.level == 0:
                    parts = parts[1:]
                if parts and parts[0]:
                    found.add(parts[0])
                else:  # from . import numpy
                    found.update(a.name for a in node.names)
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("gpuad."):
                    found.add(a.name.split(".")[1])
    return found


def _edges() -> list[tuple[str, str]]:
    modules = {p.stem for p in ROOT.glob("*.py")}
    return sorted((p.stem, dep) for p in ROOT.glob("*.py") for dep in imports_of(p) if dep in modules and dep != p.stem)


def test_every_module_has_a_layer():
    modules = {p.stem for p in ROOT.glob("*.py")}
    assert modules == set(ORDER), f"add to ORDER: {sorted(modules - set(ORDER))}; remove: {sorted(set(ORDER) - modules)}"


def test_no_upward_import():
    rank = {m: i for i, m in enumerate(ORDER)}
    upward = {(a, b) for a, b in _edges() if rank[b] >= rank[a]}
    assert upward - KNOWN_UPWARD == set(), f"modules importing from above their layer: {sorted(upward - KNOWN_UPWARD)}"
    assert KNOWN_UPWARD - upward == set(), f"gone, remove from KNOWN_UPWARD: {sorted(KNOWN_UPWARD - upward)}"


@pytest.mark.parametrize(
    "source, expected",
    [
        ("from .backend import x\n", {"backend"}),
        ("def f():\n    from . import numpy as gnp\n", {"numpy"}),
        ("from gpuad.tracing import bind\n", {"tracing"}),
        ("import gpuad.reverse\n", {"reverse"}),
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .primitives import Primitive\n", set()),
    ],
)
def test_the_reader_sees_every_import(tmp_path, source, expected):
    """The check itself: late imports count, type-checking-only ones do not."""
    path = tmp_path / "m.py"
    path.write_text(source)
    assert imports_of(path) == expected
