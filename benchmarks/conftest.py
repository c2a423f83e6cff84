"""Benchmark options: `--tiny` (or FOLDGATE_BENCH_TINY=1) runs every suite at sizes CI
can afford; timing is on only with --benchmark-enable (pyproject disables it).

A plain `pytest` (CI) runs each benchmark once with timing off: that only checks the
suites still work, so it uses the tiny sizes too. `--benchmark-enable` times the full
sizes unless `--tiny` is given."""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
for p in (str(HERE), str(HERE.parent)):
    if p not in sys.path:
        sys.path.insert(0, p)


def pytest_addoption(parser):
    parser.addoption("--tiny", action="store_true", default=False,
                     help="run the benchmarks at tiny sizes (same as FOLDGATE_BENCH_TINY=1)")


def pytest_configure(config):
    # before collection: suites read the environment when their module is imported
    timing = config.getoption("benchmark_enable", default=False) or not config.getoption(
        "benchmark_disable", default=True)
    if config.getoption("--tiny", default=False) or (not timing and "FOLDGATE_BENCH_TINY" not in os.environ):
        os.environ["FOLDGATE_BENCH_TINY"] = "1"
