"""gpuad.numpy.fft (the array API's fft extension) against jax.numpy.fft (x64): every function with
every norm and with padding and truncation, values and derivatives in both modes (complex inputs
and outputs with JAX's conventions), second order, vmap and jit, on every backend; and every error
path."""

from __future__ import annotations

import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp

from .helpers import check

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402

TIGHT = dict(rtol=1e-10, atol=1e-11)
NORMS = ["backward", "ortho", "forward"]
RNG = np.random.default_rng(2212)
X = RNG.normal(size=5)
Z = RNG.normal(size=5) + 1j * RNG.normal(size=5)
X3 = RNG.normal(size=(3, 4, 5))


def weighted(name, **kw):
    """A real scalar of each transform's output (weights break the symmetries a plain sum has)."""

    def make(xp):
        def f(v):
            out = getattr(xp.fft, name)(v, **kw)
            w = xp.reshape(xp.arange(1.0, out.size + 1.0), out.shape) / out.size
            return xp.sum(xp.abs(out) ** 2 * w) + xp.sum(xp.real(out) * w)

        return f

    return make


ONE_D = [(name, n) for name in ["fft", "ifft", "rfft", "ihfft"] for n in [None, 3, 8]]
COMPLEX_IN = [(name, n) for name in ["fft", "ifft", "irfft", "hfft"] for n in [None, 4, 5, 9]]


@pytest.mark.parametrize("k,name,n", [(k, *c) for k, c in enumerate(ONE_D)])
def test_one_dimensional_transforms_of_real_input(k, name, n):
    for norm in NORMS:
        check(getattr(gnp.fft, name)(X, n=n, norm=norm), getattr(jnp.fft, name)(X, n=n, norm=norm), dtype=True, **TIGHT)
    make = weighted(name, n=n, norm=NORMS[k % 3])  # the derivatives, each norm in turn
    check(gpuad.grad(make(gnp))(X), jax.grad(make(jnp))(X), **TIGHT)
    t = RNG.normal(size=5)
    check(gpuad.jvp(make(gnp), (X,), (t,))[1], jax.jvp(make(jnp), (X,), (t,))[1], **TIGHT)


@pytest.mark.parametrize("k,name,n", [(k, *c) for k, c in enumerate(COMPLEX_IN)])
def test_one_dimensional_transforms_of_complex_input(k, name, n):
    for norm in NORMS:
        check(getattr(gnp.fft, name)(Z, n=n, norm=norm), getattr(jnp.fft, name)(Z, n=n, norm=norm), dtype=True, **TIGHT)
    make = weighted(name, n=n, norm=NORMS[k % 3])
    check(gpuad.grad(make(gnp))(Z), jax.grad(make(jnp))(Z), **TIGHT)
    t = RNG.normal(size=5) + 1j * RNG.normal(size=5)
    check(gpuad.jvp(make(gnp), (Z,), (t,))[1], jax.jvp(make(jnp), (Z,), (t,))[1], **TIGHT)
    # second order: forward over reverse
    check(gpuad.jvp(gpuad.grad(make(gnp)), (Z,), (t,))[1], jax.jvp(jax.grad(make(jnp)), (Z,), (t,))[1], **TIGHT)


@pytest.mark.parametrize("name", ["fftn", "ifftn", "rfftn"])
@pytest.mark.parametrize("s,axes", [(None, None), ((4, 6), (0, 2)), (None, (1,)), ((2, 3), None)])
def test_n_dimensional_transforms(name, s, axes):
    check(getattr(gnp.fft, name)(X3, s=s, axes=axes), getattr(jnp.fft, name)(X3, s=s, axes=axes), dtype=True, **TIGHT)
    make = weighted(name, s=s, axes=axes, norm="ortho")
    check(gpuad.grad(make(gnp))(X3), jax.grad(make(jnp))(X3), **TIGHT)


@pytest.mark.parametrize("s", [None, (3, 4, 6), (2, 5)])
def test_irfftn(s):
    Y = np.fft.rfftn(X3) * (1 + 0.2j)
    check(gnp.fft.irfftn(Y, s=s), jnp.fft.irfftn(Y, s=s), dtype=True, **TIGHT)
    make = weighted("irfftn", s=s)
    check(gpuad.grad(make(gnp))(Y), jax.grad(make(jnp))(Y), **TIGHT)


def test_vmap_jit_hessian_and_every_backend(backend):
    f = lambda xp: (lambda v: xp.sum(xp.fft.irfft(xp.fft.rfft(v) * xp.fft.rfft(v * v), n=5) ** 2))  # noqa: E731
    Xs = RNG.normal(size=(3, 5))
    check(gpuad.vmap(gpuad.grad(f(gnp)))(backend.asarray(Xs)), jax.vmap(jax.grad(f(jnp)))(Xs), **TIGHT)
    check(gpuad.jit(gpuad.grad(f(gnp)))(backend.asarray(X)), jax.grad(f(jnp))(X), **TIGHT)
    check(gpuad.hessian(f(gnp))(backend.asarray(X)), jax.hessian(f(jnp))(X), **TIGHT)


def test_single_precision_stays_single():
    x32 = X.astype(np.float32)
    assert gnp.fft.rfft(x32).dtype == np.complex64
    assert gnp.fft.fft(x32).dtype == np.complex64
    g = gpuad.grad(weighted("rfft")(gnp))(x32)
    assert g.dtype == np.float32
    check(g, jax.grad(weighted("rfft")(jnp))(x32), rtol=2e-4, atol=2e-5)


def test_frequencies_and_shifts():
    for n in (5, 6):
        check(gnp.fft.fftfreq(n, d=0.1), np.fft.fftfreq(n, d=0.1), dtype=True, **TIGHT)
        check(gnp.fft.rfftfreq(n), np.fft.rfftfreq(n), dtype=True, **TIGHT)
    assert gnp.fft.fftfreq(4, dtype=gnp.float32).dtype == np.float32
    M = np.arange(12.0).reshape(3, 4)
    for axes in (None, 0, (1,), (0, 1)):
        check(gnp.fft.fftshift(M, axes=axes), np.fft.fftshift(M, axes=axes), **TIGHT)
        check(gnp.fft.ifftshift(gnp.fft.fftshift(M, axes=axes), axes=axes), M, **TIGHT)
    w = np.arange(12.0).reshape(3, 4)
    check(gpuad.grad(lambda m: gnp.sum(gnp.fft.fftshift(m) * w))(M), np.fft.ifftshift(w), **TIGHT)


BAD = [
    (lambda: gnp.fft.fft(X, norm="unitary"), ValueError, "norm must be 'backward', 'ortho' or 'forward'"),
    (lambda: gnp.fft.fft(X, n=0), ValueError, "n must be a positive int"),
    (lambda: gnp.fft.rfft(Z), TypeError, "rfft: x must have a real floating-point dtype"),
    (lambda: gnp.fft.fft(np.arange(3)), TypeError, "floating-point arrays"),
    (lambda: gnp.fft.fft(np.asarray(1.0)), ValueError, "at least one dimension"),
    (lambda: gnp.fft.fft(X, axis=2), ValueError, "fft.fft: axis 2 is out of bounds"),
    (lambda: gnp.fft.irfft(np.asarray([1.0 + 0j])), ValueError, "give no output points; pass n"),
    (lambda: gnp.fft.fftn(X3, s=(2, 3), axes=(0,)), ValueError, "s has 2 entries but there are 1 axes"),
    (lambda: gnp.fft.fftn(X3, axes=(0, 0)), ValueError, "axes must be distinct"),
    (lambda: gnp.fft.fftfreq(0), ValueError, "n must be a positive int"),
]


@pytest.mark.parametrize("call,exc,match", BAD)
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
