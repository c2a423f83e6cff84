"""Python's cycle collector paused while a command builds and writes its reports.

A bulk run allocates millions of small objects that live until the process ends (a
report record per window, a dict per trade) and makes no garbage cycles worth
collecting; the collector's passes over them cost ~7% of the CPU time of a 1,000-model
validate (15.6 -> 14.5 CPU-s, `python benchmarks/phases.py validate ...` with and
without). Reference counting still frees everything that is not in a cycle."""

from __future__ import annotations

import contextlib
import gc
from typing import Iterator


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """The collector off inside, back to its previous state after (even on an error)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
