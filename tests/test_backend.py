"""Backend selection and conversions (gpuad/backend.py): GPUAD_BACKEND, the CuPy fallback, import
hygiene, explicit conversions, and the refusal to mix array libraries or devices."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import array_api_strict as xs
import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp

REPO_ROOT = Path(gpuad.__file__).resolve().parents[1]
DEVICE1 = xs.Device("device1")
DEVICE2 = xs.Device("device2")


def _strict(a, device=DEVICE1):
    return xs.asarray(np.asarray(a), device=device)


def _run_python(code: str, *, path_first: Path | None = None, env: dict[str, str] | None = None) -> str:
    """Run ``code`` in a fresh interpreter (GPUAD_BACKEND unset unless ``env`` sets it) and return
    its stdout; ``path_first`` goes in front of sys.path (to shadow an installed package)."""
    full_env = {k: v for k, v in os.environ.items() if k != "GPUAD_BACKEND"}
    paths = ([str(path_first)] if path_first is not None else []) + [str(REPO_ROOT)]
    if full_env.get("PYTHONPATH"):
        paths.append(full_env["PYTHONPATH"])
    full_env["PYTHONPATH"] = os.pathsep.join(paths)
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=str(path_first or REPO_ROOT),
        timeout=300,
    )
    assert proc.returncode == 0, f"subprocess failed:\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc.stdout


# ------------------------------------------------------------------------------------------------
# GPUAD_BACKEND
# ------------------------------------------------------------------------------------------------


def _expected_auto() -> str:
    return "cupy" if gpuad.cupy_status()[0] else "numpy"


def test_env_numpy_selects_numpy(monkeypatch):
    """GPUAD_BACKEND=numpy gives numpy, whatever CuPy can do here."""
    monkeypatch.setenv("GPUAD_BACKEND", "numpy")
    assert gpuad.default_backend() == "numpy"


def test_env_auto_and_unset_agree_with_cupy_status(monkeypatch):
    """Unset means auto; auto is cupy exactly when cupy_status() says CuPy can run."""
    monkeypatch.setenv("GPUAD_BACKEND", "auto")
    assert gpuad.default_backend() == _expected_auto()
    monkeypatch.delenv("GPUAD_BACKEND", raising=False)
    assert gpuad.default_backend() == _expected_auto()


def test_env_cupy_without_device_raises_backend_error(monkeypatch):
    """GPUAD_BACKEND=cupy where CuPy cannot run raises BackendError carrying cupy_status()'s reason
    and the way out; with a GPU it selects cupy."""
    monkeypatch.setenv("GPUAD_BACKEND", "cupy")
    ok, why = gpuad.cupy_status()
    if ok:
        assert gpuad.default_backend() == "cupy"
        return
    with pytest.raises(gpuad.BackendError, match=re.escape(why)) as info:
        gpuad.default_backend()
    assert "GPUAD_BACKEND=numpy" in str(info.value)
    assert isinstance(info.value, RuntimeError)  # BackendError is a RuntimeError, as documented


@pytest.mark.parametrize("value", ["torch", "cuda", "numpy,cupy"])
def test_env_invalid_value_raises_value_error(monkeypatch, value):
    """An unknown GPUAD_BACKEND value raises ValueError naming the variable, the bad value and
    every allowed value."""
    monkeypatch.setenv("GPUAD_BACKEND", value)
    with pytest.raises(ValueError, match="GPUAD_BACKEND") as info:
        gpuad.default_backend()
    message = str(info.value)
    assert repr(value) in message
    for allowed in ("numpy", "cupy", "auto"):
        assert allowed in message


# ------------------------------------------------------------------------------------------------
# auto falls back to NumPy when CuPy imports but no device answers
# ------------------------------------------------------------------------------------------------

_FAKE_RUNTIME = {
    "raises": 'def getDeviceCount():\n    raise RuntimeError("fake cupy: no CUDA driver")\n',
    "zero": "def getDeviceCount():\n    return 0\n",
    "one": "def getDeviceCount():\n    return 1\n",
}

_PROBE = """
    import json, os
    import gpuad
    import cupy
    out = {"cupy_file": cupy.__file__, "status": list(gpuad.cupy_status()), "default": {}}
    for choice in (None, "auto", "cupy", "numpy"):
        if choice is None:
            os.environ.pop("GPUAD_BACKEND", None)
        else:
            os.environ["GPUAD_BACKEND"] = choice
        try:
            out["default"][str(choice)] = ["ok", gpuad.default_backend()]
        except Exception as exc:
            out["default"][str(choice)] = [type(exc).__name__, str(exc)]
    try:
        gpuad.asarray([1.0], backend="cupy")
        out["asarray_cupy"] = ["ok", ""]
    except Exception as exc:
        out["asarray_cupy"] = [type(exc).__name__, str(exc)]
    print(json.dumps(out))
"""


def _fake_cupy(root: Path, runtime: str) -> Path:
    """A tiny package named ``cupy`` whose ``cuda.runtime.getDeviceCount`` behaves as asked."""
    pkg = root / "cupy"
    (pkg / "cuda").mkdir(parents=True)
    (pkg / "__init__.py").write_text('__version__ = "0.0.fake"\nfrom . import cuda\n')
    (pkg / "cuda" / "__init__.py").write_text(
        "from . import runtime\n\ndef is_available():\n    return runtime.getDeviceCount() > 0\n"
    )
    (pkg / "cuda" / "runtime.py").write_text(_FAKE_RUNTIME[runtime])
    return root


@pytest.mark.parametrize(
    "runtime, reason",
    [("raises", "RuntimeError: fake cupy: no CUDA driver"), ("zero", "0 CUDA devices")],
)
def test_auto_falls_back_with_fake_cupy_without_device(tmp_path, runtime, reason):
    """With an importable CuPy whose device count raises or is 0: auto (and unset) pick numpy,
    cupy_status() says why, and asking for cupy raises BackendError with that reason."""
    out = json.loads(_run_python(_PROBE, path_first=_fake_cupy(tmp_path, runtime)))
    assert Path(out["cupy_file"]).resolve().is_relative_to(tmp_path.resolve())  # the fake was used
    ok, why = out["status"]
    assert ok is False and reason in why
    assert out["default"]["None"] == ["ok", "numpy"]
    assert out["default"]["auto"] == ["ok", "numpy"]
    assert out["default"]["numpy"] == ["ok", "numpy"]
    kind, message = out["default"]["cupy"]
    assert kind == "BackendError" and reason in message and "GPUAD_BACKEND" in message
    kind, message = out["asarray_cupy"]
    assert kind == "BackendError" and reason in message


def test_auto_selects_cupy_with_fake_cupy_with_device(tmp_path):
    """Control for the fallback test: the same fake reporting one device makes auto pick cupy,
    so the fallback above is decided by the device count and not hard-wired."""
    out = json.loads(_run_python(_PROBE, path_first=_fake_cupy(tmp_path, "one")))
    assert out["status"][0] is True
    assert out["default"]["None"] == ["ok", "cupy"]
    assert out["default"]["auto"] == ["ok", "cupy"]
    assert out["default"]["cupy"] == ["ok", "cupy"]
    assert out["default"]["numpy"] == ["ok", "numpy"]


def test_auto_with_real_cupy(monkeypatch):
    """With the installed CuPy: where it imports but no device answers, auto picks numpy and
    cupy_status() agrees with CuPy's own view (is_available() False, device count raising or 0);
    on a GPU machine auto picks cupy."""
    if importlib.util.find_spec("cupy") is None:
        pytest.skip("CuPy is not installed")
    ok, why = gpuad.cupy_status()
    monkeypatch.setenv("GPUAD_BACKEND", "auto")
    if ok:
        assert gpuad.default_backend() == "cupy"
        return
    assert gpuad.default_backend() == "numpy"
    monkeypatch.delenv("GPUAD_BACKEND")
    assert gpuad.default_backend() == "numpy"
    try:
        import cupy
    except ImportError:
        assert "not installed" in why
        return
    assert not cupy.cuda.is_available()
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception:
        assert "no CUDA device answers" in why
    else:
        assert count == 0 and "0 CUDA devices" in why


# ------------------------------------------------------------------------------------------------
# Import hygiene
# ------------------------------------------------------------------------------------------------


def test_import_gpuad_imports_neither_cupy_nor_jax():
    """`import gpuad` and `import gpuad.numpy` load no CuPy and no JAX, and neither does
    differentiating a NumPy function (grad, jacrev, jvp, vjp with indexing and where)."""
    code = """
        import sys
        def loaded():
            roots = ("cupy", "cupyx", "cupy_backends", "jax", "jaxlib")
            return sorted(m for m in sys.modules if m.split(".")[0] in roots)
        import gpuad
        import gpuad.numpy as gnp
        print(loaded())
        import numpy as np
        x = np.arange(1.0, 4.0)
        f = lambda v: gnp.sum(gnp.where(v > 1, v * v, 0.0)[np.asarray([0, 2, 2])]) + gnp.sum(gnp.concat([v, v[1:]]))
        gpuad.grad(f)(x)
        gpuad.jacrev(lambda v: gnp.sin(v[::-1]))(x)
        gpuad.jvp(gnp.exp, (x,), (x,))
        gpuad.vjp(gnp.tanh, x)[1](x)
        print(loaded())
    """
    lines = _run_python(code).strip().splitlines()
    assert lines == ["[]", "[]"]


# ------------------------------------------------------------------------------------------------
# Explicit conversions
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_asarray_numpy_from_any_backend(backend, dtype):
    """asarray(x, backend="numpy") gives a NumPy array with the same values and dtype, from NumPy
    arrays and from strict arrays on device1."""
    data = np.arange(6).reshape(2, 3).astype(dtype)
    out = gpuad.asarray(backend.asarray(data), backend="numpy")
    assert type(out) is np.ndarray
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, data)


def test_asarray_numpy_from_python_lists():
    """asarray of (nested) Python lists gives NumPy arrays; dtype= is honoured."""
    out = gpuad.asarray([[1.0, 2.0], [3.0, 4.0]], backend="numpy")
    assert type(out) is np.ndarray and out.dtype == np.float64 and out.shape == (2, 2)
    np.testing.assert_array_equal(out, [[1.0, 2.0], [3.0, 4.0]])
    out32 = gpuad.asarray([1, 2, 3], backend="numpy", dtype=np.float32)
    assert out32.dtype == np.float32
    np.testing.assert_array_equal(out32, [1.0, 2.0, 3.0])


def test_asarray_with_dtype_from_strict():
    """asarray(strict_array, backend="numpy", dtype=...) converts the dtype too."""
    out = gpuad.asarray(_strict(np.asarray([1.5, 2.5])), backend="numpy", dtype="float32")
    assert type(out) is np.ndarray and out.dtype == np.float32
    np.testing.assert_array_equal(out, np.asarray([1.5, 2.5], dtype=np.float32))


def test_asarray_unknown_backend_raises():
    """asarray with an unknown backend name raises ValueError naming it and the choices."""
    with pytest.raises(ValueError, match=r"backend='torch'.*'numpy', 'cupy'"):
        gpuad.asarray([1.0], backend="torch")


def test_asarray_cupy_without_gpu_raises_backend_error():
    """asarray(x, backend="cupy") without a working CuPy raises BackendError with the reason."""
    ok, why = gpuad.cupy_status()
    if ok:
        pytest.skip("a CUDA device is present; the refusal cannot be observed")
    with pytest.raises(gpuad.BackendError, match=re.escape(why)):
        gpuad.asarray(np.ones(3), backend="cupy")
    with pytest.raises(gpuad.BackendError, match="cupy"):
        gpuad.asarray([1.0, 2.0], backend="cupy")


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.bool_])
def test_to_numpy_of_arrays(backend, dtype):
    """to_numpy returns a NumPy array with the same values, shape and dtype, for NumPy arrays and
    for strict arrays on device1 (which np.asarray refuses)."""
    data = (np.arange(12).reshape(3, 4) % 5).astype(dtype)
    x = backend.asarray(data)
    if backend.name == "strict":
        with pytest.raises(RuntimeError):
            np.asarray(x)  # the stand-in GPU really refuses implicit conversion
    out = gpuad.to_numpy(x)
    assert type(out) is np.ndarray
    assert out.dtype == data.dtype and out.shape == data.shape
    np.testing.assert_array_equal(out, data)


def test_to_numpy_of_numpy_scalars_and_python_numbers():
    """to_numpy of NumPy scalars and Python numbers gives 0-d NumPy arrays."""
    for value, dtype in [(np.float32(1.5), np.float32), (2.5, np.float64), (3, np.int64), (True, np.bool_)]:
        out = gpuad.to_numpy(value)
        assert type(out) is np.ndarray and out.shape == () and out.dtype == dtype and out == value


def test_to_numpy_of_python_lists():
    """to_numpy of (nested) Python lists gives the NumPy array NumPy would make."""
    np.testing.assert_array_equal(gpuad.to_numpy([1.0, 2.0]), np.asarray([1.0, 2.0]))
    np.testing.assert_array_equal(gpuad.to_numpy([[1, 2], [3, 4]]), np.asarray([[1, 2], [3, 4]]))


def test_results_on_strict_device_convert_with_to_numpy(backend):
    """A gradient comes back on the input's library and device, and to_numpy reads it back."""
    x = backend.asarray(np.asarray([1.0, 2.0, 3.0]))
    g = gpuad.grad(lambda v: gnp.sum(v * v))(x)
    assert type(g) is type(x)
    if backend.name == "strict":
        assert g.device == DEVICE1
    np.testing.assert_array_equal(gpuad.to_numpy(g), [2.0, 4.0, 6.0])


def test_to_numpy_inside_a_transform_raises():
    """to_numpy on a traced value raises TypeError telling the user to call it on results."""
    with pytest.raises(TypeError, match="traced value.*results of a transform"):
        gpuad.grad(lambda v: gnp.sum(gpuad.to_numpy(v)))(np.ones(2))


# ------------------------------------------------------------------------------------------------
# Mixing libraries and devices is refused, loudly
# ------------------------------------------------------------------------------------------------

_LIBS = r"(?s)(?=.*numpy)(?=.*array_api_strict)"


@pytest.mark.parametrize("op", [gnp.add, gnp.multiply, gnp.maximum, gnp.matmul])
@pytest.mark.parametrize("strict_first", [False, True])
def test_numpy_function_refuses_two_libraries(op, strict_first):
    """gpuad.numpy functions given a NumPy and a strict array raise TypeError naming both
    arguments and both libraries, in either order."""
    a, b = np.ones((2, 2)), _strict(np.ones((2, 2)))
    if strict_first:
        a, b = b, a
    first, second = ("array_api_strict", "numpy") if strict_first else ("numpy", "array_api_strict")
    with pytest.raises(TypeError, match=rf"operand 0 is an? {first} array but operand 1 is an? {second} array"):
        op(a, b)


def test_grad_refuses_two_libraries():
    """grad over (NumPy, strict) arguments raises TypeError naming both parameters and both
    libraries, and saying how to convert."""
    f = lambda a, b: gnp.sum(a * b)
    with pytest.raises(TypeError, match=_LIBS) as info:
        gpuad.grad(f, argnums=(0, 1))(np.ones(3), _strict(np.ones(3)))
    message = str(info.value)
    assert "argument 0 (a)" in message and "argument 1 (b)" in message
    assert "gpuad.asarray" in message


def test_library_mixed_inside_the_function_is_refused():
    """A traced NumPy value combined with a strict constant inside the function raises TypeError
    naming both libraries."""
    c = _strict(np.ones(3))
    with pytest.raises(TypeError, match=_LIBS):
        gpuad.grad(lambda v: gnp.sum(v * c))(np.ones(3))


def test_jvp_refuses_tangent_of_another_library():
    """jvp with a strict primal and a NumPy tangent raises TypeError naming the tangent and both
    libraries."""
    with pytest.raises(TypeError, match=_LIBS + r"(?=.*tangent of argument 0 \(v\))"):
        gpuad.jvp(lambda v: v * v, (_strict(np.ones(3)),), (np.ones(3),))


def test_grad_refuses_two_strict_devices():
    """grad over arrays on device1 and device2 raises ValueError naming both arguments and both
    devices."""
    f = lambda a, b: gnp.sum(a * b)
    x1, x2 = _strict(np.ones(3), DEVICE1), _strict(np.ones(3), DEVICE2)
    with pytest.raises(ValueError, match=r"(?s)(?=.*device1)(?=.*device2)") as info:
        gpuad.grad(f, argnums=(0, 1))(x1, x2)
    assert "argument 0 (a)" in str(info.value) and "argument 1 (b)" in str(info.value)


def test_jvp_refuses_tangent_on_another_device():
    """jvp with primal on device1 and tangent on device2 raises ValueError naming both devices."""
    x1, t2 = _strict(np.ones(3), DEVICE1), _strict(np.ones(3), DEVICE2)
    with pytest.raises(ValueError, match=r"(?s)(?=.*device1)(?=.*device2)(?=.*tangent)"):
        gpuad.jvp(lambda v: v * v, (x1,), (t2,))


def test_numpy_function_refuses_two_strict_devices():
    """gpuad.numpy on arrays from two strict devices raises ValueError naming both devices."""
    with pytest.raises(ValueError, match=r"(?s)(?=.*device1)(?=.*device2)"):
        gnp.add(_strict(np.ones(3), DEVICE1), _strict(np.ones(3), DEVICE2))


@pytest.mark.parametrize("fun", [lambda v: v, lambda v: v * v], ids=["identity", "square"])
@pytest.mark.parametrize(
    "primal, cotangent",
    [
        (lambda: np.ones(3), lambda: _strict(np.ones(3))),
        (lambda: _strict(np.ones(3)), lambda: np.ones(3)),
        (lambda: _strict(np.ones(3), DEVICE1), lambda: _strict(np.ones(3), DEVICE2)),
    ],
    ids=["numpy-strict", "strict-numpy", "device1-device2"],
)
def test_vjp_fn_refuses_cotangent_of_another_library_or_device(fun, primal, cotangent):
    """vjp_fn given a cotangent from another library or device raises an error that names the
    cotangent, instead of returning a gradient on the wrong library or failing deep inside."""
    _, vjp_fn = gpuad.vjp(fun, primal())
    with pytest.raises((TypeError, ValueError), match="cotangent"):
        vjp_fn(cotangent())


def test_index_array_of_another_library_is_refused_clearly():
    """An integer index array from another library than the indexed array raises TypeError naming
    the index and both libraries."""
    x = _strict(np.arange(3.0))
    with pytest.raises(TypeError, match=r"(?is)(?=.*numpy)(?=.*array_api_strict)(?=.*index)"):
        gpuad.grad(lambda v: gnp.sum(v[np.asarray([0, 2])]))(x)


# ------------------------------------------------------------------------------------------------
# A real GPU (skipped without one)
# ------------------------------------------------------------------------------------------------


@pytest.mark.gpu
def test_batched_grad_on_cupy_matches_numpy(rng):
    """A batched gradient (seed example, plus integer-array indexing for the scatter-add path) on
    CuPy arrays returns CuPy arrays on the same device equal to the NumPy result."""
    import cupy

    def f(x):
        a, b = x[..., 0], x[..., 1]
        return gnp.sum(gnp.log(a) + a * b - gnp.sin(b)) + gnp.sum(x[..., [0, 1, 0]] ** 2)

    X = rng.uniform(0.5, 3.0, size=(4096, 2))
    X[0] = [2.0, 5.0]
    g_np = gpuad.grad(f)(X)
    Xc = cupy.asarray(X)
    g_cp = gpuad.grad(f)(Xc)
    assert isinstance(g_cp, cupy.ndarray)
    assert g_cp.device == Xc.device and g_cp.dtype == Xc.dtype and g_cp.shape == X.shape
    np.testing.assert_allclose(cupy.asnumpy(g_cp), g_np, rtol=1e-12, atol=1e-12)
    # d/da = 1/a + b + 4a, d/db = a - cos(b) + 2b at the seed point (2, 5)
    np.testing.assert_allclose(cupy.asnumpy(g_cp[0]), [5.5 + 8.0, 2.0 - np.cos(5.0) + 10.0], rtol=1e-12)
