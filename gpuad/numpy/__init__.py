"""``gpuad.numpy``: the differentiable array-API namespace.

Every function accepts NumPy, CuPy or any array-API array, Python scalars where the 2024.12
standard accepts them, and traced values inside a transform. On plain arrays it computes directly
(NumPy in, NumPy out); on traced values it goes through the transforms. Composites (mean, var,
softmax, logsumexp, ...) are plain Python on the primitives of :mod:`gpuad.primitives`.

>>> import numpy as np, gpuad.numpy as gnp
>>> float(gnp.sum(gnp.sin(np.zeros(3))))
0.0
"""

from ._core import *  # noqa: F401, F403  (every public function of gpuad.numpy)
from ._core import __array_api_version__  # noqa: F401
from ._indexing import getitem  # noqa: F401
from ._composites import *  # noqa: F401, F403
from ._updates import at  # noqa: F401  (gnp.at(x)[idx].set(v); x.at on traced values)
from ._einsum import einsum  # noqa: F401
from . import fft  # noqa: F401  (the standard's fft extension: gnp.fft.fft, ...)
from ._linalg import linalg  # noqa: F401  (the array API's linalg extension)
# The array API standard's remaining functions: inspection, manipulation, sorting, searching,
# bitwise and set functions, and NumPy's spellings.
from ._inspection import __array_namespace_info__  # noqa: F401
from ._manipulation import *  # noqa: F401, F403
from ._searching import *  # noqa: F401, F403
from ._bitwise import *  # noqa: F401, F403
from ._bitwise import numpy_name_error as _numpy_name_error
from . import _operators  # noqa: F401  (installs the operators of traced values: last, it needs them all)

# The star imports bring their modules' own imports along (typing's names, Tracer, bind, math...):
# they are not gpuad.numpy's (tests/test_standard_api.py checks what the namespace holds).
for _name in ("annotations", "Any", "Sequence", "Tracer", "Uniform", "bind", "eager", "builtins", "math", "operator"):
    globals().pop(_name, None)
del _name


def __getattr__(name: str):  # noqa: ANN202  (the module's attribute hook)
    """NumPy spellings without an alias name the standard's function in their AttributeError."""
    error = _numpy_name_error(name)
    if error is not None:
        raise error
    raise AttributeError(f"module 'gpuad.numpy' has no attribute {name!r}")
