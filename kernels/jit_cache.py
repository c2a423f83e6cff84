"""Which of the run's Numba kernels would compile now instead of loading from the cache.

A cold start (a fresh install, a new Numba or CPU, an edited kernel file) compiles
every kernel once, some 10 s on a 2-core machine, and then runs warm from Numba's
on-disk cache. `cold_kernels()` reads the cache indexes, without compiling or loading
anything (~1 ms), so that a caller can say "compiling kernels (once, ~N s)" before a
silent pause rather than after it.

A kernel counts as cached when its index (kernels/__pycache__ or NUMBA_CACHE_DIR) is
current for its source file and holds an entry compiled for this CPU. The index is
Numba's private format: if it cannot be read, the kernel counts as cold, so the worst
a Numba upgrade can do here is an unneeded notice.
"""

from __future__ import annotations

import importlib

SIMULATE_KERNEL = "kernels.simulate._simulate_nb"
# (module, dispatcher, typical cold compile in seconds on the 2-core reference machine)
RUN_KERNELS = (
    ("kernels.simulate", "_simulate_nb", 4.5),
    ("kernels.features", "features_nb", 3.0),
    ("kernels.metrics", "_trajectory_metrics_nb", 1.5),
    ("kernels.metrics", "_returns_nb", 0.5),
)


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
