"""Every primitive of the table has a spec row, and every row really exercises what it claims."""

from __future__ import annotations

import numpy as np
import pytest

import gpuad
from gpuad.tracing import Trace, Tracer, bind, open_trace

from .spec import SPECS, GpuadNS


class _Seen(Tracer):
    __slots__ = ("value",)

    def __init__(self, trace, value):
        self._trace = trace
        self.value = value

    shape = property(lambda self: tuple(self.value.shape))
    dtype = property(lambda self: self.value.dtype)
    device = property(lambda self: self._trace.device)


class RecordingTrace(Trace):
    """A do-nothing transform that notes the name of every primitive applied to its values,
    including those without a derivative (their results stay traced too)."""

    def __init__(self, level, xp, device=None):
        super().__init__(level, xp, device)
        self.names: set[str] = set()

    def process_call(self, call):
        self.names.add(call.name)  # a higher-order primitive; its body's operations come here too
        return call.run()

    def process(self, prim, args, params):
        self.names.add(prim.name)
        plain = [a.value if isinstance(a, _Seen) and a._trace is self else a for a in args]
        return _Seen(self, bind(prim, *plain, **params))


def primitives_used(spec) -> set[str]:
    rng = np.random.default_rng(0)
    xs = [d.sample(rng, "float64") for d in spec.args]
    import array_api_compat.numpy as xp

    with open_trace(RecordingTrace, xp, device="cpu") as trace:
        spec.fn(GpuadNS(), *[_Seen(trace, x) for x in xs])
    return trace.names


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_row_uses_the_primitives_it_names(spec):
    missing = set(spec.prims) - primitives_used(spec)
    assert not missing, f"row {spec.name} claims {sorted(missing)} but never applies them"


def _higher_order_primitives() -> set[str]:
    """The primitives outside the table: the records of custom_jvp/custom_vjp calls and checkpoints."""
    from gpuad import custom, reverse

    found = {v.name for m in (custom, reverse) for v in vars(m).values() if isinstance(v, gpuad.Primitive)}
    return found - set(gpuad.PRIMITIVES)


# A custom_vjp function has no forward mode (gpuad and JAX both refuse it), so it cannot be a spec
# row (every row runs through every transform): tests/test_custom.py compares it with JAX.
NO_SPEC_ROW = {"custom_vjp_call"}


def test_every_primitive_has_a_spec_row():
    covered = set()
    for spec in SPECS:
        covered |= set(spec.prims)
    assert _higher_order_primitives() == {"custom_jvp_call", "custom_vjp_call", "checkpoint"}
    missing = sorted((set(gpuad.PRIMITIVES) | _higher_order_primitives()) - NO_SPEC_ROW - covered)
    assert not missing, f"primitives without a spec row in tests/spec.py: {missing}"
    unknown = sorted(covered - set(gpuad.PRIMITIVES) - _higher_order_primitives())
    assert not unknown, f"spec rows name primitives that do not exist: {unknown}"


def test_standard_entries_are_gpuad_numpy_functions_of_their_names():
    """An entry whose impl is the array API's function of its name (``_UNARY``/``_BINARY`` in the
    table) is exported by gpuad.numpy under that name, and calling it applies that entry."""
    import array_api_compat.numpy as xp

    import gpuad.numpy as gnp

    standard = [p for p in gpuad.PRIMITIVES.values() if p.standard is not None]
    assert len(standard) >= 50  # the elementwise functions, comparisons and logical functions
    for prim in standard:
        fn = getattr(gnp, prim.name, None)
        assert callable(fn), f"gpuad.numpy has no {prim.name} for the table entry {prim.name}"
        x = np.array([True, False]) if prim.name.startswith("logical_") else np.array([0.25, 0.5])
        args = (x,) if prim.standard == "unary" else (x, x[::-1].copy())
        with open_trace(RecordingTrace, xp, device="cpu") as trace:
            fn(*[_Seen(trace, a) for a in args])
        assert trace.names == {prim.name}, f"gpuad.numpy.{prim.name} applied {sorted(trace.names)}"
