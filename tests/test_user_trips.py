"""What a new user trips on (issue 22): each fixed, each tested here.

1. NumPy's floating-point warnings name the user's line, not gpuad's (eager, grad, jvp, vmap), with
   NumPy's own message, and the user's error settings still decide what happens.
2. A Python list beside an array, in an operator or a function, is taken as NumPy takes it.
3. ``python -m gpuad --help`` names GPUAD_BACKEND and its values.
4. ``python -m gpuad`` with a backend that cannot run says so in one line, before any output.
5. The bench names its extra (README) and runs without matplotlib or tqdm, saying what is missing.
6. Each library has the same plot colour in every run.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pathlib
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp
from gpuad import backend

ROOT = pathlib.Path(__file__).resolve().parent.parent
HERE = os.path.abspath(__file__)


def _line() -> int:
    """The line number of the caller's next line."""
    return sys._getframe(1).f_lineno + 1


def _numpy_says(fn) -> list[str]:
    """The messages of the RuntimeWarnings that NumPy itself gives for ``fn()`` (the oracle)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn()
    return [str(w.message) for w in caught if w.category is RuntimeWarning]


# ---------------------------------------------------------------------------------------------
# 1. Floating-point warnings on the user's line
# ---------------------------------------------------------------------------------------------

needs_numpy2 = pytest.mark.skipif(
    backend.numpy_error_state() is None, reason="NumPy 1: its warnings keep NumPy's place (no context-variable error state)"
)


@needs_numpy2
@pytest.mark.parametrize(
    "fn, numpy_fn, args",
    [
        (gnp.log, np.log, (np.zeros(3),)),
        (gnp.log, np.log, (np.array([-1.0, 0.0]),)),
        (gnp.exp, np.exp, (np.array([1000.0]),)),
        (gnp.divide, np.divide, (np.zeros(2), np.zeros(2))),
        (gnp.multiply, np.multiply, (np.array([1e30], dtype=np.float32), np.array([1e30], dtype=np.float32))),
        (gnp.sqrt, np.sqrt, (np.array([-1.0]),)),
    ],
    ids=["log0", "log-1", "exp-overflow", "0/0", "float32-overflow", "sqrt-1"],
)
def test_eager_warning_names_the_callers_line_with_numpys_message(fn, numpy_fn, args):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = _line()
        fn(*args)
    assert caught
    assert [(w.filename, w.lineno, w.category) for w in caught] == [(HERE, line, RuntimeWarning)] * len(caught)
    assert [str(w.message) for w in caught] == _numpy_says(lambda: numpy_fn(*args))


@needs_numpy2
def test_pytest_warns_sees_the_users_file():
    with pytest.warns(RuntimeWarning, match="^divide by zero encountered in log$") as record:
        line = _line()
        gnp.log(np.zeros(2))
    assert [(w.filename, w.lineno) for w in record] == [(HERE, line)]


@needs_numpy2
def test_grad_warnings_name_the_line_in_f_and_the_grad_call():
    """The forward log warns at the line of f that calls it; its derivative rule (1/x at 0),
    computed by the backward sweep, at the line that called grad."""

    def f(x):
        return gnp.sum(gnp.log(x))  # the forward warning's line

    log_line = f.__code__.co_firstlineno + 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        grad_line = _line()
        g = gpuad.grad(f)(np.zeros(3))
    assert np.all(np.isinf(g))  # the result itself is NumPy's: 1/0 = inf
    assert {w.filename for w in caught} == {HERE}
    at = {(str(w.message), w.lineno) for w in caught}
    assert ("divide by zero encountered in log", log_line) in at
    assert all(line in (log_line, grad_line) for _, line in at)
    assert any(line == grad_line for _, line in at), "the derivative's 1/0 warns too (NumPy says so for 1/x)"
    assert _numpy_says(lambda: 1.0 / np.zeros(3))  # which the oracle confirms


@needs_numpy2
def test_vmap_and_jvp_warnings_name_the_line_in_f():
    def f(x):
        return gnp.log(x)  # both warnings of this line

    line = f.__code__.co_firstlineno + 1
    x = np.array([0.0, -1.0])
    for run in (lambda: gpuad.vmap(f)(x), lambda: gpuad.jvp(f, (x,), (np.ones(2),)), lambda: gpuad.jacfwd(f)(x)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run()
        assert [(w.filename, w.lineno) for w in caught if "in log" in str(w.message)] == [(HERE, line)] * 2
        assert sorted(str(w.message) for w in caught if "in log" in str(w.message)) == sorted(_numpy_says(lambda: np.log(x)))
        assert {w.filename for w in caught} == {HERE}


@needs_numpy2
def test_a_jit_replay_warns_at_the_callers_line():
    """The first call records: its warnings name the line of f, as eager ones do; later calls
    replay the recording, with no line of f running: they name the line that called the jitted
    function. NumPy's messages either way."""
    f_line = _line()
    f = gpuad.jit(lambda x: gnp.log(x) * 2.0)
    x = np.array([0.0, -1.0])
    for recorded in (False, True):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            line = _line()
            f(x)
        assert [(w.filename, w.lineno) for w in caught] == [(HERE, line if recorded else f_line)] * 2
        assert sorted(str(w.message) for w in caught) == sorted(_numpy_says(lambda: np.log(x)))


@needs_numpy2
def test_the_users_error_settings_still_decide():
    x = np.zeros(2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with np.errstate(divide="ignore"):
            gnp.log(x)
            gpuad.grad(lambda x: gnp.sum(gnp.log(x)))(x)
    assert caught == []
    with np.errstate(divide="raise"), pytest.raises(FloatingPointError, match="divide by zero encountered in log"):
        gnp.log(x)
    calls = []
    with np.errstate(all="call", call=lambda kind, flag: calls.append(kind)):
        gnp.log(np.array([0.0, -1.0]))
    assert sorted(calls) == ["divide by zero", "invalid value"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(RuntimeWarning, match="^divide by zero encountered in log$"):
            gnp.log(x)


@needs_numpy2
def test_default_action_shows_a_warning_once_per_user_line_as_numpy_does():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        for _ in range(3):
            gnp.log(np.zeros(2))
        for _ in range(3):
            np.log(np.zeros(2))
    assert len(caught) == 2 and {w.filename for w in caught} == {HERE}


@needs_numpy2
def test_the_users_error_state_is_unchanged_inside_and_after():
    before = np.geterr(), np.geterrcall()
    seen = []

    def f(x):
        seen.append((np.geterr(), np.geterrcall()))
        return gnp.sum(gnp.log(x))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gpuad.grad(f)(np.zeros(2))
        with np.errstate(divide="raise"), pytest.raises(FloatingPointError):
            gnp.log(np.zeros(2))
    assert seen == [before]
    assert (np.geterr(), np.geterrcall()) == before


def test_user_frame_skips_gpuad_numpy_and_array_api_compat():
    frames = []

    def f(x):  # called by vmap: the frame above is gpuad's, the first outside it this test's
        frames.append(backend.user_frame(sys._getframe(1)))
        return x

    gpuad.vmap(f)(np.ones(2))
    frames.append(backend.user_frame(sys._getframe()))
    assert [(fr.f_code.co_filename, fr.f_code.co_name) for fr in frames] == [(HERE, "test_user_frame_skips_gpuad_numpy_and_array_api_compat")] * 2


# ---------------------------------------------------------------------------------------------
# 2. A Python list beside an array: taken as NumPy takes it (JAX refuses it)
# ---------------------------------------------------------------------------------------------

L = [3.0, -2.0]
# (name, operator form, function form, NumPy's value of x and the list, exact gradient of the sum)
LIST_CASES = [
    ("x + L", lambda x: x + L, lambda x: gnp.add(x, L), lambda x, c: x + c, lambda x, c: np.ones_like(x)),
    ("L + x", lambda x: L + x, lambda x: gnp.add(L, x), lambda x, c: c + x, lambda x, c: np.ones_like(x)),
    ("L - x", lambda x: L - x, lambda x: gnp.subtract(L, x), lambda x, c: c - x, lambda x, c: -np.ones_like(x)),
    ("x * L", lambda x: x * L, lambda x: gnp.multiply(x, L), lambda x, c: x * c, lambda x, c: c + 0 * x),
    ("L / x", lambda x: L / x, lambda x: gnp.divide(L, x), lambda x, c: c / x, lambda x, c: -c / x**2),
    ("x ** L", lambda x: x**L, lambda x: gnp.pow(x, L), lambda x, c: x**c, lambda x, c: c * x ** (c - 1)),
    ("x @ L", lambda x: x @ L, lambda x: gnp.matmul(x, L), lambda x, c: x @ c, lambda x, c: c + 0 * x),
    ("max(x, L)", None, lambda x: gnp.maximum(x, L), np.maximum, lambda x, c: (x > c).astype(x.dtype)),
]


@pytest.mark.parametrize(
    "case, form",
    [(c, form) for c in LIST_CASES for form in ("operator", "function") if c[1 if form == "operator" else 2] is not None],
    ids=[f"{c[0]}-{form}" for c in LIST_CASES for form in ("operator", "function") if c[1 if form == "operator" else 2] is not None],
)
def test_a_list_beside_a_traced_array_is_a_constant_array_as_in_numpy(case, form):
    name, op, fn, numpy_value, exact_grad = case
    f = op if form == "operator" else fn
    c = np.asarray(L)
    for dtype in (np.float64, np.float32):
        x = np.array([1.5, 0.5], dtype=dtype)
        want = numpy_value(x, c)  # the oracle: NumPy with the list made an array (dtype promotion included)
        got = f(x)  # on plain arrays
        assert got.dtype == want.dtype and np.allclose(got, want, rtol=1e-6)
        val, tangent = gpuad.jvp(f, (x,), (np.ones_like(x),))
        assert val.dtype == want.dtype and np.allclose(val, want, rtol=1e-6)
        g = gpuad.grad(lambda x: gnp.sum(f(x)))(x)
        assert np.allclose(g, exact_grad(x.astype(np.float64), c), rtol=1e-6)
        assert np.allclose(np.sum(tangent), np.sum(exact_grad(x.astype(np.float64), c)), rtol=1e-6)
        X = np.stack([x, 2 * x])
        assert np.allclose(gpuad.vmap(f)(X), np.stack([numpy_value(X[0], c), numpy_value(X[1], c)]), rtol=1e-6)
        assert np.allclose(gpuad.jit(f)(x), want, rtol=1e-6)


def test_a_float_list_promotes_float32_as_numpy_and_a_scalar_does_not():
    x = np.ones(2, dtype=np.float32)
    assert gpuad.jvp(lambda x: x + [1.0, 2.0], (x,), (x,))[0].dtype == (x + np.asarray([1.0, 2.0])).dtype == np.float64
    assert gpuad.jvp(lambda x: x + 1.0, (x,), (x,))[0].dtype == np.float32
    assert gpuad.jvp(lambda x: x + gnp.asarray([1.0, 2.0], dtype=x.dtype), (x,), (x,))[0].dtype == np.float32


@pytest.mark.parametrize("form", ["operator", "function"])
def test_a_list_holding_a_traced_value_is_differentiated_through(form):
    f = (lambda x: x * [x[1], 2.0]) if form == "operator" else (lambda x: gnp.multiply(x, [x[1], 2.0]))
    x = np.array([3.0, 5.0])
    # sum(f) = x0 x1 + 2 x1: gradient (x1, x0 + 2)
    assert gpuad.grad(lambda x: gnp.sum(f(x)))(x).tolist() == [5.0, 5.0]
    assert gpuad.jacfwd(f)(x).tolist() == [[5.0, 3.0], [0.0, 2.0]]


def test_readme_states_the_list_convention_where_jax_refuses():
    text = (ROOT / "README.md").read_text()
    conventions = text[text.index("## Conventions") : text.index("## Layout")]
    assert "x + [1.0, 2.0]" in conventions and "JAX refuses" in conventions
    jnp = pytest.importorskip("jax.numpy")
    x = jnp.ones(2)
    for refused in (lambda: x + [1.0, 2.0], lambda: [1.0, 2.0] * x, lambda: jnp.add(x, [1.0, 2.0])):
        with pytest.raises(TypeError):
            refused()


# ---------------------------------------------------------------------------------------------
# 3, 4. The demo names GPUAD_BACKEND, and refuses one that cannot run in one line, before output
# ---------------------------------------------------------------------------------------------


def _demo(*args, env=None, timeout=120):
    environ = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "gpuad", *args], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=timeout
    )


def test_demo_help_names_gpuad_backend_and_its_values():
    proc = _demo("--help")
    assert proc.returncode == 0, proc.stderr
    env = proc.stdout[proc.stdout.index("environment:") :]
    assert "GPUAD_BACKEND=auto|numpy|cupy" in env
    for value in ("auto", "numpy", "cupy"):
        assert re.search(rf"\b{value}\b", env.split("\n", 2)[2]), value  # each value explained


@pytest.mark.parametrize("value", ["bogus", "cupy"])
def test_demo_with_a_backend_that_cannot_run_says_so_in_one_line_before_any_output(value):
    if value == "cupy" and backend.cupy_status()[0]:
        pytest.skip("CuPy runs here: GPUAD_BACKEND=cupy is possible")
    proc = _demo("--size", "100", "--repeats", "1", env={"GPUAD_BACKEND": value})
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("python -m gpuad: error: GPUAD_BACKEND="), proc.stderr
    assert "Traceback" not in proc.stderr
    if value == "cupy":
        assert "Set GPUAD_BACKEND=numpy or auto" in lines[0]
    else:
        assert "is not a backend; use one of numpy, cupy, auto" in lines[0]


def test_demo_runs_on_the_backend_it_is_given(monkeypatch):
    monkeypatch.setenv("GPUAD_BACKEND", "numpy")
    from gpuad.__main__ import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(["--size", "100", "--repeats", "1"])
    assert "\nbackend: numpy" in out.getvalue()
    monkeypatch.setenv("GPUAD_BACKEND", "bogus")
    with pytest.raises(SystemExit) as exit_, contextlib.redirect_stdout(out := io.StringIO()):
        main(["--size", "100"])
    assert exit_.value.code == 2 and out.getvalue() == ""


# ---------------------------------------------------------------------------------------------
# 5. The bench's extra: named in the README; without it the suite runs and says what it leaves out
# ---------------------------------------------------------------------------------------------

TQDM_STUB = """
import sys


class tqdm:
    def __init__(self, *args, **kwargs):
        sys.stderr.write("STUB-TQDM in use\\n")

    def set_postfix_str(self, text):
        pass

    def update(self, n=1):
        pass

    def close(self):
        pass
"""


def _bench(tmp_path, *args, broken=(), working=()):
    """``python -m bench`` (one tiny workload) with ``broken`` packages failing to import and
    ``working`` ones replaced by stubs, whatever this environment has installed."""
    stubs = tmp_path / "stubs"
    for name in broken:
        (stubs / name).mkdir(parents=True)
        (stubs / name / "__init__.py").write_text('raise ImportError("blocked by the test")\n')
    for name in working:
        stubs.mkdir(exist_ok=True)
        (stubs / f"{name}.py").write_text({"tqdm": TQDM_STUB}[name])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(stubs), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "bench", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


TINY = ["--tasks", "seed1", "--sizes", "1e2", "--libs", "gpuad,hand", "--dtypes", "float64", "--repeats", "1", "--min-time", "0.001"]
EXTRA = 'pip install -e ".[bench]"'


def test_readme_names_the_bench_extra_that_pyproject_defines():
    extra = re.search(r"^bench = \[(.*?)\]", (ROOT / "pyproject.toml").read_text(), re.M | re.S).group(1)
    assert '"tqdm' in extra and '"matplotlib' in extra
    text = (ROOT / "README.md").read_text()
    speed = text[text.index("## Speed") :]
    assert EXTRA in speed and "matplotlib" in speed and "tqdm" in speed


def test_bench_without_matplotlib_and_tqdm_runs_and_says_which_extra(tmp_path):
    out = tmp_path / "out"
    proc = _bench(tmp_path, *TINY, "--out", str(out), broken=("tqdm", "matplotlib"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    note = proc.stdout.splitlines()[0]
    assert "no progress bar (tqdm" in note and "no plots (matplotlib" in note and note.endswith(EXTRA + " adds them")
    assert (out / "suite.md").exists() and not list(out.glob("*.png"))
    # The merge needs no progress bar: its note names matplotlib alone.
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--merge", str(out), "--out", str(tmp_path / "merged")], cwd=ROOT,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "stubs"), str(ROOT)])},
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    note = proc.stdout.splitlines()[0]
    assert "no plots (matplotlib" in note and "tqdm" not in note and EXTRA in note


@pytest.mark.slow  # two more runs of the suite in subprocesses
def test_bench_names_only_what_is_missing_and_needed(tmp_path):
    proc = _bench(tmp_path / "a", *TINY, "--no-plots", "--out", str(tmp_path / "a" / "out"), broken=("tqdm", "matplotlib"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    note = proc.stdout.splitlines()[0]
    assert "no progress bar (tqdm" in note and "matplotlib" not in note and EXTRA in note
    proc = _bench(tmp_path / "b", *TINY, "--out", str(tmp_path / "b" / "out"), broken=("matplotlib",), working=("tqdm",))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    note = proc.stdout.splitlines()[0]
    assert "no plots (matplotlib" in note and "tqdm" not in note and EXTRA in note
    assert "STUB-TQDM in use" in proc.stderr  # the bar is used where tqdm imports


def test_missing_extras_is_none_when_everything_imports(monkeypatch):
    from bench.__main__ import missing_extras

    for name in ("tqdm", "matplotlib"):
        monkeypatch.setitem(sys.modules, name, type(sys)(name))
    assert missing_extras() is None
    monkeypatch.setitem(sys.modules, "tqdm", None)  # None in sys.modules: the import fails
    assert "tqdm" in missing_extras() and missing_extras(progress=False) is None


# ---------------------------------------------------------------------------------------------
# 6. One fixed plot colour per library
# ---------------------------------------------------------------------------------------------


def test_every_library_has_its_own_fixed_colour():
    from bench.libs import LIBRARIES
    from bench.report import LIB_COLOURS, lib_colour

    colours = [lib_colour(name) for name in LIBRARIES]
    assert colours == [LIB_COLOURS[name] for name in LIBRARIES]
    assert len(set(colours)) == len(colours)
    assert all(re.fullmatch(r"#[0-9a-f]{6}", c) for c in colours)


def test_a_colour_is_the_same_in_every_process():
    code = "from bench.report import lib_colour; print([lib_colour(n) for n in ('gpuad', 'hand', 'mylib', 'other-lib')])"
    seen = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        seen.add(proc.stdout)
    assert len(seen) == 1


class _FakeAx:
    def __init__(self, lines):
        self.lines = lines

    def plot(self, xs, ys, **kwargs):
        self.lines.append((kwargs["label"], kwargs.get("color")))

    def get_legend_handles_labels(self):
        return [], []

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def _plotted_colours(monkeypatch, tmp_path, libs):
    """The (library, colour) of every line report.plot draws, with matplotlib stood in for."""
    from bench import report

    lines = []
    plt = type(sys)("matplotlib.pyplot")

    def subplots(nrows, cols, **kwargs):
        axes = np.empty((nrows, cols), dtype=object)
        for i in range(axes.size):
            axes.flat[i] = _FakeAx(lines)
        return _FakeAx(lines), axes

    plt.subplots, plt.close = subplots, lambda fig: None
    mpl = type(sys)("matplotlib")
    mpl.use, mpl.pyplot = (lambda backend: None), plt
    monkeypatch.setitem(sys.modules, "matplotlib", mpl)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", plt)
    rows = [
        {"workload": "seed1", "dtype": "float64", "B": B, "lib": lib, "ok": True, "points_per_second": 1e6}
        for lib in libs
        for B in (1000, 10000)
    ]
    report.plot(str(tmp_path), rows)
    return dict(lines)


def test_plots_colour_a_library_alike_whichever_others_ran(monkeypatch, tmp_path):
    from bench.report import LIB_COLOURS

    one = _plotted_colours(monkeypatch, tmp_path, ["gpuad", "hand", "jax-jit", "torch"])
    two = _plotted_colours(monkeypatch, tmp_path, ["autograd", "gpuad", "gpuad-jit", "hand"])
    assert one == {lib: LIB_COLOURS[lib] for lib in one} and two == {lib: LIB_COLOURS[lib] for lib in two}
    assert one["gpuad"] == two["gpuad"] and one["hand"] == two["hand"]
