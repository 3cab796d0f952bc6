"""Complex values on a differentiated path are refused with a clear error (issue 19, items 4 and 16)
until complex differentiation arrives with JAX's conventions (issue 23): the table's rules are
written for real values, and on complex ones they gave wrong derivatives without a word
(``grad(lambda x: abs(x * 1j))(0.7)`` was 0.0; JAX: 1.0)."""

from __future__ import annotations

import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp

C = np.asarray([1.0 + 2.0j, -0.5j])


@pytest.mark.parametrize(
    "run, mode",
    [
        (lambda: gpuad.grad(lambda x: gnp.abs(x * 1j))(0.7), "reverse mode"),
        (lambda: gpuad.grad(lambda x: gnp.sum(gnp.abs(x * C)))(np.ones(2)), "reverse mode"),
        (lambda: gpuad.jacrev(lambda x: gnp.abs(gnp.astype(x, gnp.complex128)))(np.ones(2)), "reverse mode"),
        (lambda: gpuad.vmap(gpuad.grad(lambda x: gnp.abs(x * 1j)))(np.ones(3)), "reverse mode"),
        (lambda: gpuad.jacfwd(lambda x: gnp.abs(x * 1j))(np.asarray(0.7)), "forward mode"),
        (lambda: gpuad.jvp(lambda x: gnp.abs(x * C), (np.ones(2),), (np.ones(2),)), "forward mode"),
        (lambda: gpuad.hessian(lambda x: gnp.abs(x * 1j))(np.asarray(0.7)), "mode"),
    ],
    ids=["grad_scalar", "grad_array", "jacrev_astype", "vmap_grad", "jacfwd", "jvp", "hessian"],
)
def test_complex_intermediates_are_refused(run, mode):
    with pytest.raises(TypeError, match=f"{mode}.*complex numbers yet.*two real arrays"):
        run()


def test_complex_primal_with_a_tangent_is_named_as_complex():
    with pytest.raises(TypeError, match=r"jvp: argument 0 \(x\) is complex \(complex128\).*two real arrays"):
        gpuad.jvp(lambda x: x * x, (np.asarray([1 + 2j]),), (np.asarray([1 + 0j]),))


def test_complex_constants_off_the_differentiated_path_still_work():
    # |c| is a real constant: the derivative never meets a complex value.
    g = gpuad.grad(lambda x: gnp.sum(x * gnp.abs(C)))(np.ones(2))
    np.testing.assert_allclose(g, np.abs(C), rtol=1e-15)
    y, t = gpuad.jvp(lambda x, c: x * gnp.abs(c), (np.asarray(1.0), np.asarray(2j)), (np.asarray(3.0), None))
    assert float(y) == 2.0 and float(t) == 6.0
