"""Whether numba-cuda and a CUDA GPU are here, without building any kernel: the
probes `--device auto`, `foldgate bench` and kernels/gpu_simulate.py share.

numba.cuda is imported on first use, not at import: the import costs ~0.4 s on every
start of the CLI, fails where numba-cuda is not installed, and must come after
NUMBA_ENABLE_CUDASIM is set for the simulator to be used.
"""

from __future__ import annotations

import os


def import_cuda():
    """numba.cuda, or None where numba-cuda (or its CUDA bindings) is missing."""
    try:
        from numba import cuda as c  # lazy: see the module docstring
    except Exception:  # ImportError, or a broken install: no CUDA here either way
        return None
    return c


def simulating(c) -> bool:
    """Whether numba.cuda was imported as the simulator."""
    try:
        from numba.cuda.core import config  # lazy: as numba.cuda
        return bool(config.ENABLE_CUDASIM)
    except Exception:
        pass
    try:
        from numba.core import config  # lazy: only where numba-cuda's own config is not there
        return bool(getattr(config, "ENABLE_CUDASIM", 0))
    except Exception:
        return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


def cuda_available() -> bool:
    """True only when a real CUDA GPU is usable through numba-cuda.

    False where numba-cuda or the driver is missing, where no device is found, and
    under the simulator (NUMBA_ENABLE_CUDASIM=1), which is not a GPU. Never raises.
    Imports numba.cuda (~0.4 s) on its first call.
    """
    try:
        c = import_cuda()
        if c is None or simulating(c):
            return False
        return bool(c.is_available()) and len(c.gpus) > 0
    except Exception:
        return False


def simulator_active() -> bool:
    """True when numba.cuda is (or will be, on first import) Numba's CUDA simulator:
    NUMBA_ENABLE_CUDASIM=1 set before numba.cuda was imported. The simulator runs
    the CUDA kernel as Python on the CPU: slow, for tests of the whole --device cuda
    path. Never raises."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM", "0") in ("", "0"):
        return False
    try:
        c = import_cuda()
        return c is not None and simulating(c)
    except Exception:
        return False


def device_name() -> str | None:
    """The GPU that gpu_simulate would use, e.g. "NVIDIA H100 80GB HBM3 (cc 9.0)";
    "CUDA simulator" under the simulator; None when there is none. Never raises."""
    try:
        c = import_cuda()
        if c is None:
            return None
        if simulating(c):
            return "CUDA simulator"
        if not cuda_available():
            return None
        dev = c.get_current_device()
        name = dev.name.decode() if isinstance(dev.name, bytes) else str(dev.name)
        major, minor = dev.compute_capability
        return f"{name} (cc {major}.{minor})"
    except Exception:
        return None


def sm_count(c) -> int:
    """The current device's multiprocessors (1 under the simulator)."""
    try:
        return int(c.get_current_device().MULTIPROCESSOR_COUNT)
    except Exception:  # the simulator's device has no such attribute
        return 1


__all__ = ["cuda_available", "device_name", "import_cuda", "simulating", "simulator_active",
           "sm_count"]
