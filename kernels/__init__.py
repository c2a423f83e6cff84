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
