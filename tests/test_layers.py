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
    "primitives",
    # the engines
    "cotangents", "forward", "reverse", "batching",
    # the compiler jit uses (issue 21): toolchain, scalar form and its text, kernel plans, lowering
    "compiler", "compiler.toolchain", "compiler.scalar", "compiler.linalg", "compiler.fusion", "compiler.lowering", "jit",
    # vmap over Dask arrays, one task per chunk (issue 24)
    "dask_batches",
    # the transforms
    "transforms", "forward_transforms", "custom",
    # the gpuad.numpy namespace: its functions, indexing, composites with custom rules, the
    # operators of traced values, and the package that gathers them
    "numpy._core", "numpy._indexing", "numpy._composites", "numpy._updates",
    # the array API standard's remaining functions and einsum (issue 22)
    "numpy._inspection", "numpy._manipulation", "numpy._searching", "numpy._bitwise", "numpy._einsum", "numpy.fft",
    # the array API's linalg extension (issue 23)
    "numpy._linalg",
    # NumPy's __array_ufunc__/__array_function__ on traced values (issue 22), installed by _operators
    "numpy._numpy_protocols",
    "numpy._operators", "numpy",
    # special functions (jax.scipy.special), on the table's entries and gpuad.numpy's helpers
    "scipy.special", "scipy",
    # control flow (jax.lax's loops and branches), above the namespace its selections use; jit's
    # calls under other transforms (a recording called like a loop of one step)
    "lax", "calls",
    # tools
    "wengert", "testing", "__main__", "__init__",
]


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING"
    )


def module_name(path: pathlib.Path, root: pathlib.Path = ROOT) -> str:
    """``numpy._core`` for gpuad/numpy/_core.py, ``numpy`` for gpuad/numpy/__init__.py."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if len(parts) > 1 and parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: pathlib.Path, root: pathlib.Path = ROOT) -> set[str]:
    """The gpuad modules ``path`` imports, anywhere in the file except under TYPE_CHECKING (names
    as module_name gives them; ``from . import x`` names the module x where there is one)."""
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    package = list(path.relative_to(root).parent.parts)  # the importing module's package, below gpuad
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else list(package)
            elif (node.module or "").split(".")[0] == "gpuad":
                base = []
            else:
                continue
            mod = [p for p in (node.module or "").split(".") if p]
            if node.level == 0:
                mod = mod[1:]
            target = base + mod
            if mod:  # from .x import y (from . import y names modules, below)
                found.add(".".join(target[:2]) if target[0] == "numpy" and len(target) > 1 else target[0])
            for a in node.names:  # from . import numpy, from . import _core
                sub = base + mod + [a.name]
                if (root.joinpath(*sub).with_suffix(".py")).exists() or (root.joinpath(*sub) / "__init__.py").exists():
                    found.add(".".join(sub))
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("gpuad."):
                    found.add(a.name.split(".")[1])
    return found


def _modules() -> set[str]:
    return {module_name(p) for p in ROOT.rglob("*.py")}


def _edges() -> list[tuple[str, str]]:
    modules = _modules()
    return sorted(
        (module_name(p), dep) for p in ROOT.rglob("*.py") for dep in imports_of(p) if dep in modules and dep != module_name(p)
    )


def test_every_module_has_a_layer():
    modules = _modules()
    assert modules == set(ORDER), f"add to ORDER: {sorted(modules - set(ORDER))}; remove: {sorted(set(ORDER) - modules)}"


def test_no_upward_import():
    rank = {m: i for i, m in enumerate(ORDER)}
    upward = {(a, b) for a, b in _edges() if rank[b] >= rank[a]}
    assert upward == set(), f"modules importing from above their layer: {sorted(upward)}"


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
    for name in ("backend", "numpy", "tracing", "reverse", "primitives"):
        (tmp_path / f"{name}.py").write_text("")
    assert imports_of(path, tmp_path) == expected


def test_the_reader_resolves_imports_inside_the_namespace_package(tmp_path):
    (tmp_path / "numpy").mkdir()
    path = tmp_path / "numpy" / "_composites.py"
    path.write_text("from ..custom import custom_jvp\nfrom ._core import x\nfrom . import _operators\n")
    for name in ("custom.py", "numpy/_core.py", "numpy/_operators.py", "numpy/__init__.py"):
        (tmp_path / name).write_text("")
    assert imports_of(path, tmp_path) == {"custom", "numpy._core", "numpy._operators"}
    assert module_name(tmp_path / "numpy" / "__init__.py", tmp_path) == "numpy"
