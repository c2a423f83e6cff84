"""Numba CPU kernels and their Numba CUDA twins. Arrays in, arrays out: no I/O, no
pandas, no torch."""

import os
import sys

# Numba's default parallel backend here is OpenMP, and torch brings its own OpenMP
# runtime: two of them in one process made torch.tanh on 2 threads return a wrong chunk
# now and then after a Numba call. Numba's own workqueue backend is as fast for our
# one-call-per-run kernels and shares nothing with torch. A user's explicit choice wins.
if "NUMBA_THREADING_LAYER" not in os.environ:
    os.environ["NUMBA_THREADING_LAYER"] = "workqueue"
    if "numba" in sys.modules:  # imported before us: set it before the first parallel launch
        sys.modules["numba"].config.THREADING_LAYER = "workqueue"
