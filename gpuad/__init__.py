"""gpuad: batched automatic differentiation on NumPy and CuPy arrays, with JAX's transforms.

>>> import numpy as np, gpuad as ad, gpuad.numpy as gnp
>>> f = lambda x: gnp.sum(gnp.log(x[..., 0]) + x[..., 0] * x[..., 1] - gnp.sin(x[..., 1]))
>>> ad.grad(f)(np.asarray([[2.0, 5.0]])).round(3).tolist()
[[5.5, 1.716]]
"""

from . import lax, numpy, scipy
from .backend import BackendError, asarray, cupy_status, default_backend
from .numpy import stop_gradient
from .primitives import PRIMITIVES, Primitive
from .tracing import LeakedTracerError, to_numpy
from .custom import custom_jvp, custom_vjp
from .forward_transforms import hessian, hvp, jacfwd, jacobian, jvp, linearize
from .compiler.lowering import CompileWarning
from .compiler.toolchain import CompileError
from .jit import ConcretizationError
from .calls import jit
from .transforms import checkpoint, grad, jacrev, value_and_grad, vjp, vmap
from .tree import tree_flatten, tree_leaves, tree_map, tree_structure, tree_unflatten
from .wengert import make_tape
from . import testing

__version__ = "0.1.0"

__all__ = [
    "numpy",
    "lax",
    "scipy",
    "grad",
    "value_and_grad",
    "vjp",
    "jvp",
    "jacrev",
    "vmap",
    "jit",
    "ConcretizationError",
    "CompileWarning",
    "CompileError",
    "checkpoint",
    "jacfwd",
    "jacobian",
    "hessian",
    "hvp",
    "linearize",
    "custom_jvp",
    "custom_vjp",
    "stop_gradient",
    "asarray",
    "to_numpy",
    "default_backend",
    "cupy_status",
    "BackendError",
    "LeakedTracerError",
    "Primitive",
    "PRIMITIVES",
    "tree_flatten",
    "tree_unflatten",
    "tree_map",
    "tree_leaves",
    "tree_structure",
    "make_tape",
    "testing",
]
