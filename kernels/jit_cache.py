"""Which of the run's Numba kernels would compile now instead of loading from the cache.

A cold start (a fresh install, a new Numba or CPU, an edited kernel file) compiles
every kernel once, some 10 s on a 2-core machine, and then runs warm from Numba's
on-disk cache. `cold_kernels()` reads the cache indexes, without compiling or loading
anything (~1 ms), so that a caller can say "compiling kernels (once, ~N s)" before a
silent pause rather than after it.

A kernel counts as cached when its index (kernels/__pycache__ or NUMBA_CACHE_DIR) is
current for the package's source (`kernels_source_stamp`) and holds an entry compiled
for this CPU. The index is
Numba's private format: if it cannot be read, the kernel counts as cold, so the worst
a Numba upgrade can do here is an unneeded notice.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import os

KERNELS_DIR = os.path.dirname(os.path.abspath(__file__))

SIMULATE_KERNEL = "kernels.simulate._simulate_nb"
# (module, dispatcher, typical cold compile in seconds on the 2-core reference machine)
RUN_KERNELS = (
    ("kernels.simulate", "_simulate_nb", 4.5),
    ("kernels.features", "features_nb", 3.0),
    ("kernels.metrics", "_trajectory_metrics_nb", 1.5),
    ("kernels.metrics", "_returns_nb", 0.5),
    ("kernels.metrics", "evidence_moments_nb", 1.2),
)


@functools.lru_cache(maxsize=1)
def kernels_source_stamp() -> bytes:
    """One digest of every module of this package: what a kernel's cache entry is valid
    for. Numba stamps an entry from the file that defines the function alone (its hash,
    or in numba-cuda its mtime and size), but _simulate_nb inlines kernels/mlp.py, simd.py, codes.py, activations.py:
    after an edit (or a `git pull` into an editable install) that touches only those,
    Numba would go on loading the old machine code without a word."""
    h = hashlib.sha256()
    for name in sorted(os.listdir(KERNELS_DIR)):
        if name.endswith(".py"):
            with open(os.path.join(KERNELS_DIR, name), "rb") as fh:
                h.update(name.encode() + b"\0" + hashlib.sha256(fh.read()).digest())
    return h.digest()


def _in_package(py_file: str) -> bool:
    return os.path.dirname(os.path.abspath(py_file)) == KERNELS_DIR


def stamp_kernel_caches(caching) -> bool:
    """Make `caching` (numba.core.caching, or numba-cuda's) stamp the cache entries of
    this package's functions with `kernels_source_stamp()`: its locators, subclassed,
    go first in the list Numba tries. False where that Numba's cache internals are not
    the ones this was written for (then entries keep Numba's per-file stamp)."""
    impl = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl", None)
    classes = getattr(impl, "_locator_classes", None)
    if not isinstance(classes, list):
        return False
    if any(getattr(cls, "_foldgate_stamp", False) for cls in classes):
        return True
    stamped = []
    for base in classes[:2]:  # the user's NUMBA_CACHE_DIR, then __pycache__ beside the file
        if not hasattr(base, "get_source_stamp") or not hasattr(base, "from_function"):
            return False

        class Stamped(base):
            _foldgate_stamp = True

            def get_source_stamp(self):
                return kernels_source_stamp()

            @classmethod
            def from_function(cls, py_func, py_file):
                if not _in_package(py_file):
                    return None  # everyone else's functions: Numba's own locators
                return super().from_function(py_func, py_file)

        Stamped.__name__ = Stamped.__qualname__ = f"Foldgate{base.__name__.lstrip('_')}"
        stamped.append(Stamped)
    classes[:0] = stamped
    return True


def is_cached(dispatcher) -> bool:
    """Whether Numba's cache holds a compiled version of `dispatcher` for this CPU."""
    try:
        index = dispatcher._cache._cache_file._load_index()
        magic = dispatcher.targetctx.codegen().magic_tuple()
    except Exception:  # no cache (cache=False), or a Numba whose internals moved
        return False
    return any(isinstance(key, tuple) and len(key) > 1 and key[1] == magic for key in index)


def cold_kernels() -> list[tuple[str, float]]:
    """[(qualified name, typical compile seconds)] of the run's kernels not yet cached."""
    cold = []
    for module, name, seconds in RUN_KERNELS:
        try:
            dispatcher = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
        if not is_cached(dispatcher):
            cold.append((f"{module}.{name}", seconds))
    return cold
