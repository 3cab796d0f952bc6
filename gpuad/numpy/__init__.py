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
# Functional updates: gnp.at(x)[idx].set(v), x.at on traced values
from ._updates import at  # noqa: F401
from . import _operators  # noqa: F401, E402  (installs the operators of traced values)

# einsum (issue 22)
from ._einsum import einsum  # noqa: F401, E402
