"""Complex numbers through every transform, with JAX's conventions (issue 23), against JAX (x64):
the complex rows of the elementwise table in forward mode (complex tangents), reverse mode (complex
cotangents), grad of real-valued functions of complex inputs (JAX's conjugate convention),
holomorphic grad/jacfwd/jacrev, second order and vmap; complex64 loosely; real values meeting complex
ones (a real input's cotangent is the real part); and the transforms' errors for complex values
where JAX has them."""

from __future__ import annotations

import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp

from .helpers import check

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402

TIGHT = dict(rtol=1e-10, atol=1e-12)
LOOSE = dict(rtol=2e-4, atol=2e-5)


def sample(rng, shape=(3,), scale=1.0, dtype=np.complex128):
    return ((rng.uniform(-1, 1, shape) + 1j * rng.uniform(-1, 1, shape)) * scale).astype(dtype)


# (name, f(xp, z, w), holomorphic, scale of the sampled points) -- w is a second complex operand.
ROWS = [
    ("exp", lambda xp, z, w: xp.exp(z), True, 1.0),
    ("expm1", lambda xp, z, w: xp.expm1(z), True, 1.0),
    ("log", lambda xp, z, w: xp.log(z), True, 1.0),
    ("log1p", lambda xp, z, w: xp.log1p(z), True, 0.5),
    ("log2", lambda xp, z, w: xp.log2(z), True, 1.0),
    ("log10", lambda xp, z, w: xp.log10(z), True, 1.0),
    ("sqrt", lambda xp, z, w: xp.sqrt(z), True, 1.0),
    ("square", lambda xp, z, w: xp.square(z), True, 1.0),
    ("reciprocal", lambda xp, z, w: 1.0 / z, True, 1.0),
    ("sin", lambda xp, z, w: xp.sin(z), True, 1.0),
    ("cos", lambda xp, z, w: xp.cos(z), True, 1.0),
    ("tan", lambda xp, z, w: xp.tan(z), True, 0.7),
    ("sinh", lambda xp, z, w: xp.sinh(z), True, 1.0),
    ("cosh", lambda xp, z, w: xp.cosh(z), True, 1.0),
    ("tanh", lambda xp, z, w: xp.tanh(z), True, 0.7),
    ("asin", lambda xp, z, w: xp.asin(z), True, 0.7),
    ("acos", lambda xp, z, w: xp.acos(z), True, 0.7),
    ("atan", lambda xp, z, w: xp.atan(z), True, 0.7),
    ("asinh", lambda xp, z, w: xp.asinh(z), True, 0.7),
    ("acosh", lambda xp, z, w: xp.acosh(z + 2.0), True, 0.7),
    ("atanh", lambda xp, z, w: xp.atanh(z), True, 0.7),
    ("multiply", lambda xp, z, w: z * w, True, 1.0),
    ("divide", lambda xp, z, w: z / w, True, 1.0),
    ("add_sub", lambda xp, z, w: (z + w) - 2.0 * w, True, 1.0),
    ("pow", lambda xp, z, w: xp.pow(z, w), True, 1.0),
    ("matmul_sum", lambda xp, z, w: xp.sum(xp.reshape(z, (3, 1)) @ xp.reshape(w, (1, 3)), axis=0), True, 1.0),
    ("where_stack", lambda xp, z, w: xp.where(xp.real(w) > 0, z * z, w)[::-1], True, 1.0),
    ("abs", lambda xp, z, w: xp.abs(z), False, 1.0),
    ("real", lambda xp, z, w: xp.real(z) * xp.imag(w), False, 1.0),
    ("imag", lambda xp, z, w: xp.imag(z * w), False, 1.0),
    ("conj", lambda xp, z, w: xp.conj(z) * w, False, 1.0),
    ("angle", lambda xp, z, w: (gnp.angle if xp is gnp else jnp.angle)(z), False, 1.0),
    ("abs_squared", lambda xp, z, w: xp.real(z * xp.conj(z)) + xp.abs(w) ** 2, False, 1.0),
]
IDS = [r[0] for r in ROWS]


def real_loss(f, xp, weights):
    """A real scalar of a complex-valued function: what grad differentiates."""

    def loss(z, w):
        out = f(xp, z, w)
        if "complex" in str(out.dtype):
            return xp.sum(xp.real(out) * weights[0] + xp.imag(out) * weights[1])
        return xp.sum(out * weights[0])

    return loss


@pytest.mark.parametrize("name,f,holo,scale", ROWS, ids=IDS)
def test_forward_and_reverse_against_jax(name, f, holo, scale):
    rng = np.random.default_rng(abs(hash(name)) % 2**32)
    z, w = sample(rng, scale=scale), sample(rng, scale=scale) + 0.3
    tz, tw = sample(rng), sample(rng)
    ours = lambda z, w: f(gnp, z, w)  # noqa: E731
    theirs = lambda z, w: f(jnp, z, w)  # noqa: E731
    out, t_out = gpuad.jvp(ours, (z, w), (tz, tw))
    want, want_t = jax.jvp(theirs, (z, w), (tz, tw))
    check(out, want, dtype=True, **TIGHT)
    check(t_out, want_t, dtype=True, **TIGHT)
    o, pull = gpuad.vjp(ours, z, w)
    _, pull_j = jax.vjp(theirs, z, w)
    ct = sample(rng).astype(np.asarray(want).dtype) if np.iscomplexobj(want) else rng.uniform(-1, 1, np.shape(want))
    for a, b in zip(pull(ct), pull_j(ct)):
        check(a, b, dtype=True, **TIGHT)


@pytest.mark.parametrize("name,f,holo,scale", ROWS, ids=IDS)
def test_grad_second_order_and_vmap_against_jax(name, f, holo, scale):
    rng = np.random.default_rng(abs(hash(name)) % 2**32 + 1)
    z, w = sample(rng, scale=scale), sample(rng, scale=scale) + 0.3
    weights = (rng.uniform(-1, 1, 3), rng.uniform(-1, 1, 3))
    ours, theirs = real_loss(f, gnp, weights), real_loss(f, jnp, weights)
    check(gpuad.grad(ours, argnums=(0, 1))(z, w)[0], jax.grad(theirs, argnums=(0, 1))(z, w)[0], dtype=True, **TIGHT)
    # second order: forward over reverse, with a complex tangent
    v = sample(rng)
    got = gpuad.jvp(lambda z: gpuad.grad(ours)(z, w), (z,), (v,))[1]
    want = jax.jvp(lambda z: jax.grad(theirs)(z, w), (z,), (v,))[1]
    check(got, want, **TIGHT)
    Z = np.stack([z, z * 0.5 + 0.1j])
    check(gpuad.vmap(gpuad.grad(ours), in_axes=(0, None))(Z, w), jax.vmap(jax.grad(theirs), in_axes=(0, None))(Z, w), **TIGHT)


HOLOMORPHIC = [r for r in ROWS if r[2]]


@pytest.mark.parametrize("name,f,holo,scale", HOLOMORPHIC, ids=[r[0] for r in HOLOMORPHIC])
def test_holomorphic_derivatives_against_jax(name, f, holo, scale):
    rng = np.random.default_rng(abs(hash(name)) % 2**32 + 2)
    z, w = sample(rng, scale=scale), sample(rng, scale=scale) + 0.3
    ours = lambda z: f(gnp, z, w)  # noqa: E731
    theirs = lambda z: f(jnp, z, w)  # noqa: E731
    check(gpuad.jacfwd(ours, holomorphic=True)(z), jax.jacfwd(theirs, holomorphic=True)(z), dtype=True, **TIGHT)
    check(gpuad.jacrev(ours, holomorphic=True)(z), jax.jacrev(theirs, holomorphic=True)(z), dtype=True, **TIGHT)
    scalar = lambda xp: (lambda z: xp.sum(f(xp, z, w)))  # noqa: E731
    check(gpuad.grad(scalar(gnp), holomorphic=True)(z), jax.grad(scalar(jnp), holomorphic=True)(z), dtype=True, **TIGHT)
    check(gpuad.hessian(scalar(gnp), holomorphic=True)(z), jax.hessian(scalar(jnp), holomorphic=True)(z), **TIGHT)


@pytest.mark.parametrize("name", ["exp", "log", "sin", "sqrt", "abs", "conj", "real", "imag", "divide", "tanh"])
def test_complex64_keeps_its_precision(name):
    f = dict((r[0], r[1]) for r in ROWS)[name]
    rng = np.random.default_rng(5)
    z, w = sample(rng, dtype=np.complex64), sample(rng, dtype=np.complex64) + np.complex64(0.3)
    weights = (rng.uniform(-1, 1, 3).astype(np.float32), rng.uniform(-1, 1, 3).astype(np.float32))
    g = gpuad.grad(real_loss(f, gnp, weights))(z, w)
    assert g.dtype == np.complex64
    check(g, jax.grad(real_loss(f, jnp, weights))(z, w), **LOOSE)
    _, t = gpuad.jvp(lambda z: f(gnp, z, w), (z,), (z,))
    assert t.dtype == np.asarray(f(np, z, w)).dtype


def test_complex_values_on_every_backend(backend):
    rng = np.random.default_rng(9)
    z = sample(rng)
    f = lambda xp: (lambda z: xp.sum(xp.abs(xp.exp(z) * xp.conj(z)) + xp.real(xp.sin(z))))  # noqa: E731
    check(gpuad.grad(f(gnp))(backend.asarray(z)), jax.grad(f(jnp))(z), **TIGHT)
    check(gpuad.jit(gpuad.vmap(gpuad.grad(f(gnp))))(backend.asarray(np.stack([z, -z]))), jax.vmap(jax.grad(f(jnp)))(np.stack([z, -z])), **TIGHT)


def test_real_inputs_meeting_complex_values_get_real_cotangents():
    c = np.asarray([1 + 2j, -0.5j])
    cases = [
        lambda xp: (lambda x: xp.abs(x * 1j)),
        lambda xp: (lambda x: xp.sum(xp.abs(x * c))),
        lambda xp: (lambda x: xp.sum(xp.real(xp.exp(1j * x)) * x)),
        lambda xp: (lambda x: xp.sum(xp.abs(xp.astype(x, xp.complex128) + 2j))),
    ]
    x = np.asarray([0.7, -1.3])
    for make in cases:
        g = gpuad.grad(make(gnp))(x if make is not cases[0] else np.asarray(0.7))
        assert g.dtype == np.float64
        check(g, jax.grad(make(jnp))(x if make is not cases[0] else 0.7), **TIGHT)
    check(gpuad.jacfwd(lambda x: gnp.abs(x * c))(x), jax.jacfwd(lambda x: jnp.abs(x * c))(x), **TIGHT)
    check(gpuad.jacfwd(lambda x: x * c)(x), jax.jacfwd(lambda x: x * c)(x), dtype=True, **TIGHT)  # complex output
    check(gpuad.hessian(lambda x: gnp.abs(x * 1j) ** 3)(np.asarray(0.7)), jax.hessian(lambda x: jnp.abs(x * 1j) ** 3)(0.7), **TIGHT)


def test_python_complex_scalars_keep_the_precision():
    z = np.asarray([1 + 1j], dtype=np.complex64)
    assert (gnp.asarray(z) * 2j).dtype == np.complex64
    assert (gnp.asarray(np.float32([1.0])) * 1j).dtype == np.complex64
    _, t = gpuad.jvp(lambda z: z * (0.5 + 1j), (z,), (z,))
    assert t.dtype == np.complex64
    check(gpuad.grad(lambda z: gnp.abs(z) ** 2)(1 + 2j), 2 - 4j, **TIGHT)  # a Python complex input


BAD = [
    (lambda: gpuad.grad(lambda z: z * z)(np.asarray(1 + 1j)), "grad requires real-valued outputs.*holomorphic=True"),
    (lambda: gpuad.jacrev(lambda z: z * z)(np.asarray([1 + 1j])), "jacrev requires real-valued outputs.*holomorphic=True"),
    (lambda: gpuad.jacfwd(lambda z: gnp.abs(z))(np.asarray([1 + 1j])), "jacfwd requires real-valued inputs.*holomorphic=True"),
    (lambda: gpuad.grad(lambda x: x * x, holomorphic=True)(np.asarray(1.0)), "holomorphic=True requires inputs with a complex dtype"),
    (lambda: gpuad.grad(lambda z: gnp.abs(z), holomorphic=True)(np.asarray(1 + 1j)), "holomorphic=True requires outputs with a complex dtype"),
    (lambda: gpuad.jacfwd(lambda z: gnp.abs(z), holomorphic=True)(np.asarray([1 + 1j])), "holomorphic=True requires outputs"),
    (lambda: gpuad.jvp(lambda x: x * 1j, (np.asarray(1.0),), (np.asarray(1j),)), "tangent of .* has dtype complex128 but the primal has dtype float64"),
    (lambda: gpuad.vjp(lambda z: z * 2, np.asarray([1j]))[1](np.ones(1)), "cotangent leaf 0 has dtype float64 but the output has dtype complex128"),
]


@pytest.mark.parametrize("call,match", BAD)
def test_complex_errors_as_jax(call, match):
    with pytest.raises(TypeError if "cotangent" not in match else ValueError, match=match):
        call()


@pytest.mark.parametrize("ord", [2, 1, float("inf"), 3])
def test_vector_norm_and_vecdot_of_complex_arrays(ord):
    a, b = np.asarray([1 + 2j, 3 - 1j]), np.asarray([0.5j, 2 + 1j])
    check(gnp.linalg.vector_norm(a, ord=ord), jnp.linalg.vector_norm(a, ord=ord), dtype=True, **TIGHT)
    check(gpuad.grad(lambda z: gnp.linalg.vector_norm(z, ord=ord))(a), jax.grad(lambda z: jnp.linalg.vector_norm(z, ord=ord))(a), **TIGHT)
    check(gnp.vecdot(a, b), jnp.vecdot(a, b), dtype=True, **TIGHT)  # the first argument conjugated
    check(gpuad.grad(lambda z: gnp.imag(gnp.vecdot(z, b)))(a), jax.grad(lambda z: jnp.imag(jnp.vecdot(z, b)))(a), **TIGHT)


def test_numpy_spellings_on_complex_traced_values():
    z = np.asarray([1 + 1j, 2 - 0.5j])
    ours = lambda z: np.sum(np.abs(np.conj(z) * np.exp(z)) + np.real(z) + np.angle(z) + np.imag(np.conjugate(z)))  # noqa: E731
    theirs = lambda z: jnp.sum(jnp.abs(jnp.conj(z) * jnp.exp(z)) + jnp.real(z) + jnp.angle(z) + jnp.imag(jnp.conjugate(z)))  # noqa: E731
    check(gpuad.grad(ours)(z), jax.grad(theirs)(z), **TIGHT)
    check(gpuad.grad(lambda z: np.real(np.vdot(z, z * 2j)))(z), jax.grad(lambda z: jnp.real(jnp.vdot(z, z * 2j)))(z), **TIGHT)
