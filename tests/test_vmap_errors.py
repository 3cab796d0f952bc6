"""vmap's bad-input paths: each raises an error naming the argument and saying what to do."""

from __future__ import annotations

import numpy as np
import pytest

import gpuad
import gpuad.numpy as gnp

X = np.ones((3, 2))
Y = np.ones((4, 2))


def add(x, y):
    return x + y


def test_in_axes_length_differs_from_arguments():
    with pytest.raises(ValueError, match=r"in_axes has 2 entries but the function was called with 3 positional"):
        gpuad.vmap(lambda a, b, c: a, in_axes=(0, 0))(X, X, X)


def test_in_axes_structure_differs_from_a_pytree_argument():
    with pytest.raises(ValueError, match=r"in_axes \{'a': 0\} does not match the structure of argument 0 \(p\)"):
        gpuad.vmap(lambda p: p["a"] + p["b"], in_axes=({"a": 0},))({"a": X, "b": X})


@pytest.mark.parametrize("bad", ["0", 1.0, True, [0, "x"]])
def test_in_axes_entries_must_be_ints_or_none(bad):
    with pytest.raises(TypeError, match=r"in_axes entries must be ints or None"):
        gpuad.vmap(add, in_axes=bad)


def test_out_axes_entries_must_be_ints_or_none():
    with pytest.raises(TypeError, match=r"out_axes entries must be ints or None"):
        gpuad.vmap(add, out_axes="1")


def test_batch_sizes_that_differ_name_both_arguments():
    with pytest.raises(
        ValueError,
        match=r"inconsistent sizes.*argument 0 \(x\) has size 3 along axis 0.*argument 1 \(y\) has size 4 along axis 0",
    ):
        gpuad.vmap(add)(X, Y)


def test_batch_sizes_that_differ_inside_a_pytree():
    with pytest.raises(ValueError, match=r"argument 0 \(p\), leaf 1 .* has size 4"):
        gpuad.vmap(lambda p: p[0] + p[1])((X, Y))


@pytest.mark.parametrize("axis", [2, -3, 5])
def test_axis_out_of_range(axis):
    with pytest.raises(ValueError, match=rf"argument 0 \(x\) is mapped along axis {axis}, but it has only 2 dimension"):
        gpuad.vmap(lambda x: x, in_axes=axis)(X)


def test_zero_dimensional_mapped_argument():
    with pytest.raises(ValueError, match=r"argument 0 \(x\) is mapped along axis 0, but it is 0-dimensional.*None in in_axes"):
        gpuad.vmap(lambda x: x)(np.asarray(1.0))


def test_no_mapped_argument():
    with pytest.raises(ValueError, match=r"at least one mapped argument"):
        gpuad.vmap(add, in_axes=(None, None))(X, X)


def test_mapped_argument_that_is_not_an_array():
    with pytest.raises(TypeError, match=r"argument 1 \(y\) is mapped along axis 0 but is a str, not an array"):
        gpuad.vmap(lambda x, y: x)(X, "label")


def test_out_axes_none_for_a_batched_output():
    with pytest.raises(ValueError, match=r"output leaf 0 depends on the mapped inputs, but out_axes is None"):
        gpuad.vmap(lambda x: x * 2, out_axes=None)(X)


def test_out_axes_out_of_range():
    with pytest.raises(ValueError, match=r"out_axes 3 is out of range for output leaf 0, which has 1 dimension"):
        gpuad.vmap(lambda x: x * 2, out_axes=3)(X)


@pytest.mark.parametrize("chunk", [0, -2, 1.5, True])
def test_chunk_size_must_be_positive(chunk):
    with pytest.raises(ValueError, match=r"chunk_size must be a positive int or None"):
        gpuad.vmap(add, chunk_size=chunk)


def test_python_control_flow_on_a_batched_value():
    def f(x):
        if gnp.sum(x) > 0:
            return x
        return -x

    with pytest.raises(TypeError, match=r"different for each point.*gnp.where"):
        gpuad.vmap(f)(X)


def test_not_callable():
    with pytest.raises(TypeError, match=r"vmap: expected a function to transform, got int"):
        gpuad.vmap(3)


def test_mixed_libraries_across_mapped_arguments():
    import array_api_strict as xs

    with pytest.raises(TypeError, match=r"argument 0 \(x\).*numpy.*argument 1 \(y\).*array_api_strict"):
        gpuad.vmap(add)(X, xs.asarray(X, device=xs.Device("device1")))
