"""gpuad's compiler: recorded programs as C (CPU) or CUDA (GPU) kernels, one loop per run of
per-point operations (see fusion.py, scalar.py, toolchain.py, lowering.py)."""
