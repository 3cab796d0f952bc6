"""Differential tests: random programs from the primitive table through every transform, gpuad
against JAX (x64). The generator, the evaluators and the comparison live in tests/differential.py.

Quick profile (CI): a few derandomized examples per transform, smooth and special inputs, jit and
chunked variants; the whole file takes well under a minute of CPU. Its random programs are marked
slow: the default run (and CI) runs them, the suite's quick subset (``-m "not slow"``) does not.
Long profile: set
``GPUAD_DIFF_EXAMPLES=5000`` (or select ``-m slow``) to run a campaign that collects every mismatch
by class and prints a summary; ``python -m tests.differential --examples 5000`` does the same
outside pytest and also reduces one example of each class to a small repro.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

jax = pytest.importorskip("jax")
from hypothesis import HealthCheck, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import gpuad  # noqa: E402
from gpuad.tracing import open_trace  # noqa: E402

from . import differential as D  # noqa: E402
from .test_spec_coverage import RecordingTrace, _Seen  # noqa: E402

QUICK = int(os.environ.get("GPUAD_DIFF_QUICK", "3"))  # examples per quick case


def quick(n: int = QUICK):
    return settings(
        max_examples=n,
        deadline=None,
        derandomize=True,  # CI runs the same examples every time
        database=None,
        print_blob=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


def check(ex: D.Example) -> None:
    mismatches, _ = D.run_example(ex)
    mismatches = [m for m in mismatches if not D.known_and_excluded(ex, m)]
    if mismatches:
        pytest.fail(D.report(ex, mismatches), pytrace=False)


# ---------------------------------------------------------------------------------------------
# The generator covers the table
# ---------------------------------------------------------------------------------------------


def test_every_primitive_has_a_generator_entry():
    """A primitive added to gpuad.PRIMITIVES fails here until tests/differential.py's OPS
    generates it (or NOT_GENERATED says why not)."""
    generated = set().union(*(g.prims for g in D.OPS.values()))
    missing = sorted(set(gpuad.PRIMITIVES) - generated - set(D.NOT_GENERATED))
    assert not missing, f"primitives no differential-test generator calls (add an entry to OPS in tests/differential.py): {missing}"
    unknown = sorted(generated - set(gpuad.PRIMITIVES))
    assert not unknown, f"OPS entries claim primitives that do not exist: {unknown}"


def _helpers_for(name: str) -> list[str]:
    """Entries that make the operands an entry needs (booleans for where, logical ops...)."""
    return [name, "greater", "isnan"] if name not in ("greater", "isnan") else [name]


@pytest.mark.slow  # in the default run; the quick subset (-m "not slow") leaves it out
@pytest.mark.parametrize("name", sorted(D.OPS))
@quick(4)
@given(data=st.data())
def test_generator_entry_applies_its_primitives(name, data):
    """Every OPS entry builds valid programs on gpuad, and the primitives entries claim are
    really applied (a recording trace notes them)."""
    profile = "smooth" if D.OPS[name].smooth else "special"
    prog = D.draw_program(data.draw, profile, "float64", ops=_helpers_for(name))
    code = prog.compiled()
    rng = np.random.default_rng(0)
    xs = [rng.uniform(-2, 2, size=s) for s in prog.in_shapes]
    import array_api_compat.numpy as xp

    with np.errstate(all="ignore"), open_trace(RecordingTrace, xp, device="cpu") as trace:
        code["nodes"](D.lib("gpuad").ns, *[_Seen(trace, x) for x in xs])
    claimed = prog.prims()
    assert claimed <= trace.names, f"claimed but not applied: {sorted(claimed - trace.names)}\n{prog.source()}"


# ---------------------------------------------------------------------------------------------
# The quick profile
# ---------------------------------------------------------------------------------------------

ALL = list(D.TRANSFORMS)
CHUNKABLE = [t for t, v in D.TRANSFORMS.items() if v.chunkable and v.order == 1]
JITTED = ["vmap_grad", "vmap_value_and_grad", "vmap_jacfwd", "vmap_jacrev", "vmap_hessian", "jvp", "vjp", "linearize", "grad_of_vmap"]


@pytest.mark.slow  # in the default run; the quick subset (-m "not slow") leaves it out
@pytest.mark.parametrize("transform", ALL)
@quick()
@given(data=st.data())
def test_smooth(transform, data):
    """Smooth programs (sane domains, bounded values) in float64 and float32 through one
    transform, eager and unchunked."""
    check(data.draw(D.examples([transform], "smooth", jit=False, chunk=False, ops=D.quick_ops("smooth"))))


DRAWN = [o for o in D.OP_NAMES if D.OPS[o].smooth]
ROTATION = ["vmap_hessian", "vmap_jacrev", "jvp", "vmap_jacfwd_jacrev", "vjp"]


@pytest.mark.slow  # in the default run; the quick subset (-m "not slow") leaves it out
@pytest.mark.parametrize("name", DRAWN)
@quick(1)
@given(data=st.data())
def test_each_operation(name, data):
    """Every generator entry in a small smooth program of its own, through one transform (a
    rotation of first- and second-order ones): each derivative rule is checked in every run."""
    transform = ROTATION[DRAWN.index(name) % len(ROTATION)]
    ex = data.draw(D.examples([transform], "smooth", dtypes=("float64",), jit=False, chunk=False, ops=_helpers_for(name), large=False))
    assume(name in ex.program.ops())
    check(ex)


@pytest.mark.slow  # in the default run; the quick subset (-m "not slow") leaves it out
@pytest.mark.parametrize("transform", ALL)
@quick(2)
@given(data=st.data())
def test_special_inputs(transform, data):
    """0, -0.0, +-inf, NaN and exact ties among the inputs, guards on or off: NaN positions
    and infinities (with their sign) must be JAX's."""
    check(data.draw(D.examples([transform], "special", dtypes=("float64",), jit=False, chunk=False, ops=D.quick_ops("special"))))


@pytest.mark.slow  # in the default run; the quick subset (-m "not slow") leaves it out
@pytest.mark.parametrize("transform", JITTED)
@quick()
@given(data=st.data())
def test_jit(transform, data):
    """gpuad.jit over the transform, called twice with different inputs: both answers JAX's,
    and the first not overwritten by the second call."""
    check(data.draw(D.examples([transform], "smooth", jit=True, chunk=False, ops=D.quick_ops("smooth"))))


@pytest.mark.slow  # in the default run; the quick subset (-m "not slow") leaves it out
@pytest.mark.parametrize("transform", CHUNKABLE)
@quick()
@given(data=st.data())
def test_chunked(transform, data):
    """vmap with chunk_size smaller than the batch: the answer of the whole batch."""
    check(data.draw(D.examples([transform], "smooth", jit=False, chunk=True, ops=D.quick_ops("smooth"))))


# ---------------------------------------------------------------------------------------------
# The checks can fail
# ---------------------------------------------------------------------------------------------


class _WrongSin(D.OracleNS):
    def sin(self, x):
        return self._jnp.sin(x) + 1e-6 * self._jnp.square(x)


@quick(4)
@given(data=st.data())
def test_a_wrong_answer_is_caught(data):
    """Self-test of the comparison: a slightly wrong sin on one side (value and derivative off
    by ~1e-6) must be reported, in every transform that sees it."""
    ex = data.draw(D.examples(["vmap_grad", "jvp", "vjp", "vmap_hessian"], "smooth", dtypes=("float64",), jit=False, chunk=False, ops=["sin"]))
    J = D.lib("jax")
    right = J.ns
    J.ns = _WrongSin()
    try:
        mismatches, _ = D.run_example(ex)
    finally:
        J.ns = right
    assert any(m.kind == "value" for m in mismatches), D.report(ex, mismatches) if mismatches else ex.program.source()


def test_report_shows_program_inputs_transform_and_answers():
    ex = D.Example(D.parse_program("v1 = xp.sin(x0)", [(3,)]), "vmap_grad", 0, (0,), 2, 7)
    m = D.Mismatch("value", 0, 0, "1 of 6 entries differ", [1], np.zeros((2, 3)), np.ones((2, 3)))
    text = D.report(ex, [m])
    for piece in ("def f(xp, x0)", "v1 = xp.sin(x0)", "L.vmap(L.grad(g, argnums=A), in_axes=IA)", "x0 = ", "gpuad: ", "JAX:   "):
        assert piece in text, (piece, text)


# ---------------------------------------------------------------------------------------------
# Known open bugs: strict xfails that turn into errors once fixed
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow  # in the default run; the quick subset (-m "not slow") leaves it out
@pytest.mark.parametrize(
    "known", [pytest.param(k, id=k.item, marks=pytest.mark.xfail(strict=True, reason=k.reason)) for k in D.KNOWN]
)
def test_known_bug_repro(known):
    """The smallest repro of each known bug; when it passes, delete the KNOWN entry (which also
    gives its operations back to the quick profile)."""
    ex = known.repro()
    mismatches, stats = D.run_example(ex)
    assert stats["jax_error"] is None, stats["jax_error"]
    assert not mismatches, D.report(ex, mismatches)


# ---------------------------------------------------------------------------------------------
# The long profile
# ---------------------------------------------------------------------------------------------


def _campaign_size(config) -> int:
    n = os.environ.get("GPUAD_DIFF_EXAMPLES")
    if n:
        return int(n)
    if "slow" in (config.option.markexpr or ""):
        return 2000
    return 0


@pytest.mark.slow
def test_campaign(request):
    """Many random programs (GPUAD_DIFF_EXAMPLES of them; 2000 with -m slow), every transform,
    both profiles; prints the mismatches by class and fails on any class not known."""
    n = _campaign_size(request.config)
    if not n:
        pytest.skip("set GPUAD_DIFF_EXAMPLES=5000 (or run -m slow) for the long differential campaign")
    camp = D.campaign(n, seed=int(os.environ.get("GPUAD_DIFF_SEED", "0")), reduce=False, verbose=False)
    summary = camp.summary()
    print(summary)
    new = {k: v for k, v in camp.by_class.items() if k[0] == "NEW"}
    assert not new, "mismatches of classes not known:\n" + summary + "\n\nfirst of each:\n\n" + "\n\n".join(
        D.report(v[0][0], [v[0][1]]) for v in new.values()
    )
