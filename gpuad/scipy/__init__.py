"""``gpuad.scipy``: the SciPy namespaces that JAX mirrors in ``jax.scipy``; so far ``special``.

>>> import numpy as np, gpuad
>>> float(gpuad.scipy.special.erf(np.asarray(0.0)))
0.0
"""

from . import special

__all__ = ["special"]
