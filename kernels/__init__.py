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


def _writable_dir(path: str) -> bool:
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        return False
    return os.access(path, os.W_OK | os.X_OK)


# Compile once: Numba caches next to this package when it can. An installed package is
# often read-only; then Numba falls back to ~/.cache/numba, and with a read-only home too
# it refuses to cache at all and cache=True kernels fail to import. Pick a writable place
# ourselves before any kernel is defined. A user's NUMBA_CACHE_DIR wins.
if "NUMBA_CACHE_DIR" not in os.environ and not _writable_dir(
        os.path.join(os.path.dirname(os.path.abspath(__file__)), "__pycache__")):
    import tempfile

    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    candidates = [os.path.join(base, "foldgate", "numba"),
                  os.path.join(tempfile.gettempdir(), f"foldgate-numba-{os.getuid() if hasattr(os, 'getuid') else 0}")]
    for candidate in candidates:
        if _writable_dir(candidate):
            os.environ["NUMBA_CACHE_DIR"] = candidate
            if "numba" in sys.modules:
                sys.modules["numba"].config.CACHE_DIR = candidate
            break


# A kernel's cache entry is valid for the whole package's source, not only its own
# file (kernels/jit_cache.py says why); set up before any kernel is defined.
from numba.core import caching as _caching  # noqa: E402

from .jit_cache import stamp_kernel_caches  # noqa: E402

stamp_kernel_caches(_caching)


# Numba probes for a BLAS when numba.np.arraymath is first imported (as the first kernel
# loads from cache or compiles), by importing scipy.linalg: half a second
# of every CLI start-up since scipy became a dependency (docs/design.md 10 asks < 1 s warm).
# No foldgate kernel calls BLAS, and a later np.dot in anyone's jitted code still finds
# scipy's BLAS when it compiles (numba checks again then); only the import-time probe
# is skipped, and only when we are the first to load that module.
if "numba.np.arraymath" not in sys.modules and "scipy.linalg.cython_blas" not in sys.modules:
    sys.modules["scipy.linalg.cython_blas"] = None  # a None entry fails that import at once
    try:
        import numba.np.arraymath  # noqa: F401
    finally:
        if sys.modules.get("scipy.linalg.cython_blas", 0) is None:
            del sys.modules["scipy.linalg.cython_blas"]
