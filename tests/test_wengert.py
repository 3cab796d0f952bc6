"""gpuad.make_tape: the Wengert list of a recording, the seed notes' tables (primal, tangent and
adjoint of every intermediate, point by point in a batch), the DOT graph, and the demo."""

from __future__ import annotations

import contextlib
import io
import math
import re

import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp
from gpuad.__main__ import main as demo_main
from gpuad.__main__ import seed1_steps, seed2_steps


def seed1_batch(x):
    """Note 001's f on a batch of points (B, 2)."""
    x1, x2 = x[..., 0], x[..., 1]
    return gnp.log(x1) + x1 * x2 - gnp.sin(x2)


def rounded(table, column):
    """The scalar rows of a column, to the notes' three decimals."""
    return {r.name: round(float(getattr(r, column)), 3) for r in table if np.ndim(r.primal) == 0}


# ---------------------------------------------------------------------------------------------
# The seed notes' tables, exactly
# ---------------------------------------------------------------------------------------------


SEED1_LIST = """\
Wengert list of seed1_steps: 2 inputs, 5 operations, 1 output
  x1 = input     ()  float64
  x2 = input     ()  float64
  v1 = log(x1)   ()  float64
  v2 = x1 * x2   ()  float64
  v3 = sin(x2)   ()  float64
  v4 = v1 + v2   ()  float64
  v5 = v4 - v3   ()  float64
  output: v5"""

SEED1_TABLE = """\
Wengert table of seed1_steps: tangent x1 = 1 (forward mode), adjoint of v5 (reverse mode)
  name  operation  primal  tangent  adjoint
  x1    input       2.000    1.000    5.500
  x2    input       5.000    0.000    1.716
  v1    log(x1)     0.693    0.500    1.000
  v2    x1 * x2    10.000    5.000    1.000
  v3    sin(x2)    -0.959    0.000   -1.000
  v4    v1 + v2    10.693    5.500    1.000
  v5    v4 - v3    11.652    5.500    1.000"""

SEED2_TABLE = """\
Wengert table of seed2_steps: tangent x1 = 1 (forward mode), adjoint of v6 (reverse mode)
  name  operation  primal  tangent  adjoint
  x1    input       1.500    1.000    3.012
  x2    input       0.500    0.000  -13.724
  v1    x1 / x2     3.000    2.000    1.506
  v2    sin(v1)     0.141   -1.980    1.351
  v3    exp(x2)     1.649    0.000   -2.844
  v4    v1 - v3     1.351    2.000    2.844
  v5    v2 + v4     1.492    0.020    1.351
  v6    v5 * v4     2.017    3.012    1.000"""


def test_seed1_wengert_list_and_table_print_as_in_note_001():
    tape = gpuad.make_tape(seed1_steps)(np.asarray(2.0), np.asarray(5.0))
    assert str(tape) == SEED1_LIST
    table = tape.table()
    assert str(table) == SEED1_TABLE


def test_seed1_table_holds_the_note_001_values():
    """Note 001: v1 = ln 2 = 0.693, v2 = 10, v3 = sin 5 = -0.959, v4 = 10.693, v5 = 11.652; with x1
    dotted the tangents 1/2, 5, 0, 5.5, 5.5; the adjoints v5..v1 = 1, 1, -1, 1, 1, x1 = 5.5,
    x2 = 1.716."""
    table = gpuad.make_tape(seed1_steps)(np.asarray(2.0), np.asarray(5.0)).table()
    assert [r.name for r in table] == ["x1", "x2", "v1", "v2", "v3", "v4", "v5"]
    primal = {r.name: float(r.primal) for r in table}
    assert primal["v1"] == pytest.approx(math.log(2), rel=1e-15)
    assert primal["v3"] == pytest.approx(math.sin(5), rel=1e-15)
    assert rounded(table, "primal") == {"x1": 2.0, "x2": 5.0, "v1": 0.693, "v2": 10.0, "v3": -0.959, "v4": 10.693, "v5": 11.652}
    assert {r.name: float(r.tangent) for r in table} == {"x1": 1.0, "x2": 0.0, "v1": 0.5, "v2": 5.0, "v3": 0.0, "v4": 5.5, "v5": 5.5}
    assert rounded(table, "adjoint") == {"x1": 5.5, "x2": 1.716, "v1": 1.0, "v2": 1.0, "v3": -1.0, "v4": 1.0, "v5": 1.0}
    assert float(table["x2"].adjoint) == pytest.approx(2 - math.cos(5), rel=1e-15)
    assert [r.operation for r in table] == ["input", "input", "log(x1)", "x1 * x2", "sin(x2)", "v1 + v2", "v4 - v3"]
    assert table["v4"].inputs == ("v1", "v2") and table["v4"].shape == () and table["v4"].dtype == "float64"


def test_seed1_table_with_x2_dotted():
    """The other forward pass of note 001: x2 dotted gives v3' = cos 5 = 0.284 and v5' = 1.716."""
    table = gpuad.make_tape(seed1_steps)(np.asarray(2.0), np.asarray(5.0)).table(tangent=1)
    assert rounded(table, "tangent") == {"x1": 0.0, "x2": 1.0, "v1": 0.0, "v2": 2.0, "v3": 0.284, "v4": 2.0, "v5": 1.716}
    assert table.title.startswith("Wengert table of seed1_steps: tangent x2 = 1")


def test_seed2_table_prints_and_holds_the_note_004_values():
    """Note 004 at (1.5, 0.5): primals 3.000, 0.141, 1.649, 1.351, 1.492, 2.017; tangents (x1
    dotted) 2.000, -1.980, 0.000, 2.000, 0.020, 3.012; adjoints v6..v1 = 1, 1.351, 2.844, -2.844,
    1.351, 1.506 and x2 = -13.724, x1 = 3.012; value 2.016646669428201."""
    tape = gpuad.make_tape(seed2_steps)(np.asarray(1.5), np.asarray(0.5))
    table = tape.table()
    assert str(table) == SEED2_TABLE
    assert rounded(table, "primal") == {"x1": 1.5, "x2": 0.5, "v1": 3.0, "v2": 0.141, "v3": 1.649, "v4": 1.351, "v5": 1.492, "v6": 2.017}
    assert rounded(table, "tangent") == {"x1": 1.0, "x2": 0.0, "v1": 2.0, "v2": -1.98, "v3": 0.0, "v4": 2.0, "v5": 0.02, "v6": 3.012}
    assert rounded(table, "adjoint") == {"x1": 3.012, "x2": -13.724, "v1": 1.506, "v2": 1.351, "v3": -2.844, "v4": 2.844, "v5": 1.351, "v6": 1.0}
    assert float(table["v6"].primal) == pytest.approx(2.016646669428201, rel=1e-15)
    assert float(table["x1"].adjoint) == pytest.approx(3.011843327673907, rel=1e-14)
    assert float(table["x2"].adjoint) == pytest.approx(-13.723961509314076, rel=1e-14)
    # the note's second forward pass: x2 dotted gives df/dx2 = -13.724
    assert float(tape.table(tangent=1)["v6"].tangent) == pytest.approx(-13.723961509314076, rel=1e-14)


def test_demo_prints_the_seed_tables_then_the_batched_run():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        demo_main(["--size", "1000", "--repeats", "1"])
    text = out.getvalue()
    assert SEED1_LIST in text and SEED1_TABLE in text and SEED2_TABLE in text
    assert "df/dx2 = v6' = -13.724" in text
    assert text.index(SEED2_TABLE) < text.index("per-point gradients of f = ln x1 + x1 x2 - sin x2 over B = 1,000 points")
    assert re.search(r"max \|gradient - exact\| = \d\.\de[+-]\d\d", text)


def test_readme_section_shows_real_output():
    """The README's printed table and check_grads report are what its code prints."""
    import pathlib

    text = (pathlib.Path(__file__).parent.parent / "README.md").read_text()
    section = text[text.index("## Seeing inside: Wengert tables and check_grads") : text.index("## Backends")]
    code = re.findall(r"```python\n(.*?)```", section, re.S)
    printed = re.findall(r"```text\n(.*?)```", section, re.S)
    assert len(code) == len(printed) == 2
    namespace: dict = {}
    for block, expected in zip(code, printed):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(block, namespace)
        assert out.getvalue() == expected


# ---------------------------------------------------------------------------------------------
# Batches: point=i
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def points():
    X = np.random.default_rng(3).uniform(1.0, 3.0, size=(50, 2))
    X[7] = [2.0, 5.0]  # note 001's point, somewhere in the batch
    return X


def test_batched_function_table_at_one_point(points):
    """f written on batches (x[..., 0]), summed over the batch: the table at point 7 is note 001's,
    the per-point rows are indexed, the sum over the batch is shown whole."""
    tape = gpuad.make_tape(lambda x: gnp.sum(seed1_batch(x)), batch_axis=0)(points)
    assert tape.batch_size == 50
    text = str(tape)
    assert "  x = input" in text and "(50, 2)  float64  *" in text
    assert re.search(r"v8 = sum\(v7, axis=\(-1,\), keepdims=False\)\s+\(\)\s+float64$", text, re.M)
    assert "(* per point: point=i takes element i along axis 0, the batch of 50)" in text
    table = tape.table(point=7)
    assert table.title.startswith("Wengert table of <lambda> at point 7 of 50: tangent x[0] = 1")
    assert [float(v) for v in table["x"].primal] == [2.0, 5.0]
    assert [round(float(v), 3) for v in table["x"].adjoint] == [5.5, 1.716]
    assert rounded(table, "primal")["v7"] == 11.652 and rounded(table, "tangent")["v7"] == 5.5
    assert table["v8"].batched is False and table["v7"].batched is True and table["v8"].shape == ()
    assert float(table["v8"].primal) == pytest.approx(float(gnp.sum(seed1_batch(points))))
    # every point's adjoints are that point's gradient
    g = gpuad.grad(lambda x: gnp.sum(seed1_batch(x)))(points)
    for i in (0, 7, 49, -1):
        np.testing.assert_allclose(tape.table(point=i)["x"].adjoint, g[i], rtol=1e-15)


def test_per_point_function_under_vmap_table_at_one_point(points):
    """A per-point f batched with gpuad.vmap inside make_tape: the same numbers at point 7."""
    f1 = lambda x: gnp.log(x[0]) + x[0] * x[1] - gnp.sin(x[1])  # noqa: E731
    tape = gpuad.make_tape(gpuad.vmap(f1), batch_axis=0)(points)
    table = tape.table(point=7, tangent=1)
    assert [round(float(v), 3) for v in table["x"].adjoint] == [5.5, 1.716]
    out = tape.outputs[0]
    assert round(float(table[out].primal), 3) == 11.652 and round(float(table[out].tangent), 3) == 1.716
    assert all(r.batched for r in table)


def test_two_batched_arguments_and_an_unbatched_one(points):
    """batch_axis per argument: x1 and x2 are batched, the weight w is shared by all points."""

    def f(x1, x2, w):
        return w * seed1_steps(x1, x2)

    tape = gpuad.make_tape(f, batch_axis=(0, 0, None))(points[:, 0], points[:, 1], np.asarray(3.0))
    table = tape.table(point=7)
    assert table["w"].batched is False and table["x1"].batched is True
    assert round(float(table["x1"].adjoint), 3) == 16.5  # 3 * 5.5
    assert float(table["w"].adjoint) == pytest.approx(float(gnp.sum(seed1_steps(points[:, 0], points[:, 1]))))


# ---------------------------------------------------------------------------------------------
# What the list shows, and that the columns are gpuad's derivatives
# ---------------------------------------------------------------------------------------------


def test_list_shows_params_constants_names_and_shapes():
    def f(x, params, n):
        y = x[..., 1:] * 2.0 + params["bias"]
        return gnp.sum(y**2, axis=-1) / n + gnp.sum(x @ params["w"])

    tape = gpuad.make_tape(f)(np.ones((4, 3)), {"w": np.ones((3, 2)), "bias": np.zeros(2)}, 3)
    assert tape.inputs == ["x", "params.bias", "params.w"]
    ops = [f"{op.name} = {op.expression}" for op in tape.operations]
    assert ops[:3] == ["v1 = x[:, 1:]", "v2 = v1 * 2.0", "v3 = v2 + params.bias"]
    assert "v4 = v3 ** 2" in ops and "v5 = sum(v4, axis=(-1,), keepdims=False)" in ops
    assert "v6 = v5 / 3.0" in ops and "v7 = x @ params.w" in ops
    assert tape.outputs == [tape.operations[-1].name]
    assert tape.operations[1].shape == (4, 2) and tape.operations[1].dtype == "float64"
    assert len(tape) == len(tape.operations) == 9
    np.testing.assert_array_equal(tape.value("v2"), 2 * np.ones((4, 2)))


def test_argnums_makes_other_arguments_constants():
    def f(x, y):
        return x * y

    tape = gpuad.make_tape(f, argnums=1)(np.full(3, 2.0), np.ones(3))
    assert tape.inputs == ["y"]
    assert str(tape.operations[0].expression) == "const * y"
    table = tape.table()
    np.testing.assert_array_equal(table["y"].adjoint, [2.0, 2.0, 2.0])


def test_tangents_and_adjoints_are_jvp_and_grad():
    """For a random function the output's tangent is the JVP and the inputs' adjoints the gradient."""
    rng = np.random.default_rng(5)
    x, y, t = rng.uniform(0.5, 2.0, 4), rng.uniform(0.5, 2.0, 4), rng.standard_normal(4)

    def f(x, y):
        return gnp.sum(gnp.tanh(x * y) / gnp.sqrt(y) + gnp.exp(-x))

    table = gpuad.make_tape(f)(x, y).table(tangent=(t, None))
    gx, gy = gpuad.grad(f, argnums=(0, 1))(x, y)
    _, jt = gpuad.jvp(f, (x, y), (t, np.zeros(4)))
    np.testing.assert_allclose(table["x"].adjoint, gx, rtol=1e-15)
    np.testing.assert_allclose(table["y"].adjoint, gy, rtol=1e-15)
    assert float(table[table.rows[-1].name].tangent) == pytest.approx(float(jt), rel=1e-14)
    assert table.title.split(": ")[1].startswith("tangent given")


def test_cotangent_weights_the_outputs():
    tape = gpuad.make_tape(lambda x: (gnp.sin(x), 3.0 * x))(np.asarray([0.0, 1.0]))
    table = tape.table(cotangent=(np.asarray([1.0, 0.0]), None))
    np.testing.assert_allclose(table["x"].adjoint, [1.0, 0.0])
    both = tape.table()
    np.testing.assert_allclose(both["x"].adjoint, np.cos([0.0, 1.0]) + 3.0)
    assert "adjoint of v1 + v2" in both.title
    assert tape.outputs == ["v1", "v2"] and "output: (v1, v2)" in str(tape)


def test_checkpoint_is_one_line_and_the_table_goes_through_it():
    seg = gpuad.checkpoint(lambda a: (gnp.sin(a), gnp.cos(a) * a))

    def f(x):
        s, c = seg(x)
        return s * c

    x = np.asarray(0.7)
    tape = gpuad.make_tape(f)(x)
    assert [f"{op.name} = {op.expression}" for op in tape.operations] == ["v1, v2 = checkpoint(x)", "v3 = v1 * v2"]
    table = tape.table()
    assert [r.operation for r in table][1:3] == ["checkpoint(x)[0]", "checkpoint(x)[1]"]
    assert float(table["x"].adjoint) == pytest.approx(float(gpuad.grad(f)(x)), rel=1e-15)
    assert float(table["v3"].tangent) == pytest.approx(float(gpuad.grad(f)(x)), rel=1e-15)
    assert "v2" in tape.to_dot()


def test_custom_rules_are_one_line_and_the_table_uses_their_rules():
    """vector_norm has a custom JVP whose gradient at 0 is 0 (its body's would be NaN); logsumexp
    and a custom_vjp function show as one line each, and the table's adjoints are grad's."""
    @gpuad.custom_vjp
    def clipped(v):
        return v * 1.0

    clipped.defvjp(lambda v: (v * 1.0, None), lambda res, g: (gnp.clip(g, -0.5, 0.5),))

    def f(x):
        return gnp.vector_norm(x) + gnp.logsumexp(clipped(x) * 3.0)

    for x in (np.zeros(3), np.asarray([0.3, -1.0, 2.0])):
        tape = gpuad.make_tape(f)(x)
        ops = [op.expression for op in tape.operations]
        assert ops[0] == "vector_norm_2[custom_jvp](x)" and ops[1] == "clipped[custom_vjp](x)", ops
        assert any(op.startswith("logsumexp_value[custom_jvp]") for op in ops), ops
        np.testing.assert_allclose(tape.table()["x"].adjoint, gpuad.grad(f)(x), rtol=1e-14)
        assert np.all(np.isfinite(tape.table()["x"].adjoint))


def test_constant_output_and_static_arguments():
    tape = gpuad.make_tape(lambda x, k: (x * k, np.ones(2)))(np.asarray(2.0), 3)
    assert tape.outputs == ["v1", "const"]
    assert tape.operations[0].expression == "x * 3.0"  # a scalar constant shows its value
    assert float(tape.table()["x"].adjoint) == 3.0


def test_vectors_print_abbreviated_and_rows_keep_full_values():
    tape = gpuad.make_tape(lambda x: gnp.exp(x))(np.linspace(0.0, 1.0, 8))
    text = str(tape.table(digits=2))
    assert "[1.00, 1.15, 1.33, ..., 2.72]" in text
    np.testing.assert_allclose(tape.table()["v1"].primal, np.exp(np.linspace(0.0, 1.0, 8)))


def test_on_the_strict_device(backend):
    """The stand-in GPU: recording and the table work without implicit host copies (only the
    table's explicit copy of the chosen point)."""
    X = backend.asarray([[2.0, 5.0], [1.0, 1.0]])
    table = gpuad.make_tape(seed1_batch, batch_axis=0)(X).table(point=0)
    assert rounded(table, "primal")[table.rows[-1].name] == 11.652
    assert [round(float(v), 3) for v in table["x"].adjoint] == [5.5, 1.716]


# ---------------------------------------------------------------------------------------------
# The graph
# ---------------------------------------------------------------------------------------------


_NODE = re.compile(r'^  ("(?:[^"\\]|\\.)*") \[(.*)\];$')
_EDGE = re.compile(r'^  ("(?:[^"\\]|\\.)*") -> ("(?:[^"\\]|\\.)*");$')


def parse_dot(text):
    """A structural check of our DOT: a digraph, balanced braces outside strings, every line a node,
    an edge or a setting, and every edge between declared nodes. Returns (nodes, edges)."""
    lines = text.strip().splitlines()
    assert re.fullmatch(r'digraph "(?:[^"\\]|\\.)*" \{', lines[0]) and lines[-1] == "}"
    unquoted = re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)
    assert unquoted.count("{") == unquoted.count("}") == 1
    nodes, edges = {}, []
    for line in lines[1:-1]:
        if m := _EDGE.match(line):
            edges.append((m.group(1), m.group(2)))
        elif m := _NODE.match(line):
            nodes[m.group(1)] = m.group(2)
        else:
            assert re.fullmatch(r"  (rankdir=LR|node \[.*\]);", line), line
    for a, b in edges:
        assert a in nodes and b in nodes, (a, b)
    return nodes, edges


def test_dot_graph_of_seed2():
    tape = gpuad.make_tape(seed2_steps)(np.asarray(1.5), np.asarray(0.5))
    nodes, edges = parse_dot(tape.to_dot())
    assert set(nodes) == {f'"{n}"' for n in ["x1", "x2", "v1", "v2", "v3", "v4", "v5", "v6", "output0"]}
    assert ('"x1"', '"v1"') in edges and ('"x2"', '"v1"') in edges and ('"v4"', '"v6"') in edges
    assert ('"v6"', '"output0"') in edges
    assert len(edges) == 2 + 1 + 1 + 2 + 2 + 2 + 1  # v1..v6 inputs, and the output
    assert "shape=box" in nodes['"x1"'] and "v1 = x1 / x2" in nodes['"v1"']


def test_dot_graph_with_constants_and_awkward_names():
    tape = gpuad.make_tape(lambda p: p['a"b'] * 2.0 + p["c\\d"])({'a"b': np.ones(2), "c\\d": np.ones(2)})
    dot = tape.to_dot()
    nodes, edges = parse_dot(dot)
    assert '"p.a\\"b"' in nodes and '"p.c\\\\d"' in nodes
    consts = [n for n, attrs in nodes.items() if "plaintext" in attrs]
    assert len(consts) == 1 and 'label="2.0"' in nodes[consts[0]]


def test_dot_parses_with_graphviz_where_installed():
    graphviz = pytest.importorskip("graphviz")
    tape = gpuad.make_tape(seed1_steps)(np.asarray(2.0), np.asarray(5.0))
    source = tape.to_graphviz()
    assert isinstance(source, graphviz.Source)
    try:
        out = source.pipe(format="dot")
    except graphviz.ExecutableNotFound:
        pytest.skip("the graphviz package is installed but Graphviz's dot program is not")
    assert b"v5" in out


def test_to_graphviz_without_the_package(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "graphviz", None)
    tape = gpuad.make_tape(seed1_steps)(np.asarray(2.0), np.asarray(5.0))
    with pytest.raises(ImportError, match=r"needs the optional 'graphviz' Python package \(pip install graphviz\).*to_dot\(\)"):
        tape.to_graphviz()


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def tape1():
    return gpuad.make_tape(seed1_steps)(np.asarray(2.0), np.asarray(5.0))


def test_make_tape_errors():
    with pytest.raises(TypeError, match="make_tape: expected a function to record, got int"):
        gpuad.make_tape(3)
    with pytest.raises(TypeError, match="make_tape: argnums must be an int or a non-empty tuple of ints"):
        gpuad.make_tape(seed1_steps, argnums="x")
    with pytest.raises(TypeError, match="make_tape: differentiating with respect to argnums=5 requires at least 6"):
        gpuad.make_tape(seed1_steps, argnums=5)(np.asarray(1.0), np.asarray(1.0))
    with pytest.raises(ValueError, match=r"batch_axis=1 is not supported: the batch must be axis 0 \(move it first with gnp.moveaxis"):
        gpuad.make_tape(seed1_batch, batch_axis=1)
    with pytest.raises(TypeError, match="make_tape: batch_axis entries must be 0 or None, got '0'"):
        gpuad.make_tape(seed1_batch, batch_axis="0")
    with pytest.raises(ValueError, match="batch_axis has 1 entries but the function was called with 2 positional arguments"):
        gpuad.make_tape(seed1_steps, batch_axis=(0,))(np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match=r"argument 1 \(x2\) is batched \(batch_axis=0\) but is 0-dimensional"):
        gpuad.make_tape(seed1_steps, batch_axis=0)(np.ones(3), np.asarray(1.0))
    with pytest.raises(ValueError, match="disagree on the batch size: x1 has 3 points along axis 0 but x2 has 4"):
        gpuad.make_tape(seed1_steps, batch_axis=0)(np.ones(3), np.ones(4))
    with pytest.raises(TypeError, match="make_tape: no input to record: the arguments hold no floating-point array"):
        gpuad.make_tape(lambda n: n + 1)(np.arange(3))


def test_mixed_libraries_error():
    import array_api_strict as xs

    strict = xs.asarray(np.ones(3), device=xs.Device("device1"))
    with pytest.raises(TypeError, match="^make_tape: x1 is a numpy array but x2 is a array_api_strict array"):
        gpuad.make_tape(seed1_steps)(np.ones(3), strict)


def test_unknown_multi_output_record_cannot_be_replayed():
    """Checkpoint and custom-rule records are replayed; any other multi-output record is refused clearly."""
    seg = gpuad.checkpoint(lambda a: (gnp.sin(a), gnp.cos(a)))
    tape = gpuad.make_tape(lambda x: seg(x)[0] * seg(x)[1])(np.asarray(0.5))
    tape._records[0].prim = gpuad.Primitive("mystery", lambda xp, x: (x, x))
    with pytest.raises(NotImplementedError, match="make_tape cannot replay a 'mystery' record with several outputs"):
        tape.table()


def test_table_errors(tape1):
    with pytest.raises(ValueError, match=r"point= needs a batch; record with make_tape\(f, batch_axis=0\)"):
        tape1.table(point=0)
    batched = gpuad.make_tape(seed1_batch, batch_axis=0)(np.ones((4, 2)))
    with pytest.raises(IndexError, match="point 4 is out of range for a batch of 4 points"):
        batched.table(point=4)
    with pytest.raises(TypeError, match="point must be an int, got float"):
        batched.table(point=1.0)
    with pytest.raises(ValueError, match="tangent=2 picks an input coordinate, but the inputs have 2 coordinate"):
        tape1.table(tangent=2)
    with pytest.raises(ValueError, match=r"tangent must be an int \(an input coordinate\) or a tuple with one array \(or None\) per input \(2: x1, x2\), got 1 entries"):
        tape1.table(tangent=(np.asarray(1.0),))
    with pytest.raises(ValueError, match=r"or a tuple .* got ndarray"):
        tape1.table(tangent=np.asarray(1.0))
    with pytest.raises(ValueError, match=r"the tangent of x1 has shape \(3,\), which does not broadcast to the value's shape \(\)"):
        tape1.table(tangent=(np.ones(3), None))
    with pytest.raises(TypeError, match="the tangent of x1 must be an array or None, got float"):
        tape1.table(tangent=(1.0, None))
    with pytest.raises(TypeError, match="the cotangent of v5 must be an array or None, got tuple"):
        tape1.table(cotangent=(np.asarray(1.0), np.asarray(1.0)))
    two = gpuad.make_tape(lambda x: (x, 2.0 * x))(np.asarray(1.0))
    with pytest.raises(ValueError, match=r"cotangent has structure \* but the function's output has structure \(\*, \*\) .*one array \(or None\) per output"):
        two.table(cotangent=np.asarray(1.0))
    with pytest.raises(ValueError, match=r"the cotangent of v5 has shape \(2,\)"):
        tape1.table(cotangent=np.ones(2))
    with pytest.raises(ValueError, match="digits must be an int from 0 to 17, got -1"):
        tape1.table(digits=-1)


def test_lookup_errors(tape1):
    with pytest.raises(KeyError, match=r"no input or intermediate is named 'v9'; the names are \['x1', 'x2', 'v1'"):
        tape1.value("v9")
    with pytest.raises(KeyError, match=r"no row named 'v9'; the rows are \['x1'"):
        tape1.table()["v9"]
