"""Shared fixtures: the backends every test runs on, and JAX in float64 as the oracle."""

from __future__ import annotations

import ctypes
import gc
import os
import sys

import numpy as np
import pytest

os.environ.setdefault("JAX_ENABLE_X64", "1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import gpuad  # noqa: E402


class Backend:
    """How a test puts NumPy data on a backend and reads results back."""

    def __init__(self, name: str):
        self.name = name
        if name == "strict":
            import array_api_strict as xs

            self.xp = xs
            # device1 refuses conversion to NumPy and mixing with other devices: a stand-in GPU.
            self.device = xs.Device("device1")
        elif name == "cupy":
            import cupy

            self.xp = cupy
            self.device = None
        elif name in ("dask", "torch", "jax"):  # only when GPUAD_TEST_BACKENDS names them
            self.xp = None
            self.device = None
        else:
            self.xp = np
            self.device = None

    def asarray(self, a):
        a = np.asarray(a)
        if self.name == "dask":
            import dask.array as da

            return da.from_array(a)
        if self.name == "torch":
            import torch

            return torch.from_numpy(a.copy())
        if self.name == "jax":
            import jax.numpy as jnp

            return jnp.asarray(a)
        if self.name == "strict":
            return self.xp.asarray(a, device=self.device)
        if self.name == "cupy":
            return self.xp.asarray(a)
        return a

    def to_numpy(self, x):
        return gpuad.to_numpy(x)

    def __repr__(self) -> str:
        return self.name


def _gpu_available() -> bool:
    ok, _ = gpuad.cupy_status()
    return ok


BACKENDS = ["numpy", "strict"] + (["cupy"] if _gpu_available() else [])
# GPUAD_TEST_BACKENDS=dask,torch,jax (comma-separated, any of these and the above) runs the
# backend-parametrised tests (the oracle table among them) on those libraries instead.
if os.environ.get("GPUAD_TEST_BACKENDS"):
    BACKENDS = [name.strip() for name in os.environ["GPUAD_TEST_BACKENDS"].split(",") if name.strip()]


def all_backends(spec=None) -> list[Backend]:
    """Every backend, for tests that compute the JAX oracle once and then check each backend (with
    a spec row: those the row runs on, tests/spec.py's ``Spec.backends``)."""
    return [Backend(name) for name in BACKENDS if spec is None or spec.runs_on(name)]


@pytest.fixture(params=BACKENDS)
def backend(request) -> Backend:
    """Every backend the suite runs on here: NumPy, array_api_strict's device1, CuPy with a GPU."""
    return Backend(request.param)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261122)


def pytest_collection_modifyitems(config, items):
    if _gpu_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device and CuPy (marker 'gpu')")
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip)


# A worker that has grown past this (resident memory) frees JAX's caches after the test it is on.
_rss_limit = [1 << 30]


def _resident_bytes() -> int:
    """This process's resident memory (Linux; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return 0


def _free_jax_memory() -> None:
    """Drop JAX's compiled executables (JAX run op by op keeps one per primitive and shape, for
    good) and hand the freed memory back to the system."""
    jax = sys.modules.get("jax")
    if jax is None:
        return
    jax.clear_caches()
    gc.collect()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)  # glibc keeps freed memory otherwise
        except (OSError, AttributeError):
            pass


def pytest_runtest_teardown(item, nextitem):
    """After the last test of a module, and after any test that leaves the worker above
    _rss_limit: free JAX's memory, so that a worker does not grow with the tests it has run."""
    if nextitem is None or nextitem.path != item.path:
        _free_jax_memory()
    elif _resident_bytes() > _rss_limit[0]:
        _free_jax_memory()
        # What JAX did not hold stays: the next check waits for half a GiB more.
        _rss_limit[0] = max(_rss_limit[0], _resident_bytes() + (1 << 29))


@pytest.fixture(scope="session")
def jax_x64():
    """JAX with float64 enabled, the oracle. CI installs it with the test extra."""
    import jax

    jax.config.update("jax_enable_x64", True)
    return jax


# gpuad.jit compiles kernels with the system C compiler (issue 21): a compiler run per new
# recording. The modules about jit itself run the compiled path; elsewhere jit is a means (jit of
# a linalg or fft program, a bench run) and replays, which keeps the suite's CPU time in bounds.
COMPILED_MODULES = {"test_compiler", "test_jit", "test_ownership", "test_differential", "test_buffers", "test_user_trips"}


@pytest.fixture(autouse=True)
def _jit_mode(request, monkeypatch):
    if os.environ.get("GPUAD_JIT") is None and request.module.__name__.rsplit(".", 1)[-1] not in COMPILED_MODULES:
        monkeypatch.setenv("GPUAD_JIT", "replay")
