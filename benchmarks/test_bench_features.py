"""Feature computation for one symbol: a year of hourly bars, a typical 16-feature set.

    pytest benchmarks/test_bench_features.py --benchmark-enable
    FOLDGATE_BENCH_TINY=1 pytest benchmarks/test_bench_features.py   # CI smoke size
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from engine.features import compute_features
from engine.data.bars import Bars

TINY = os.environ.get("FOLDGATE_BENCH_TINY") == "1"
N_BARS = 500 if TINY else 24 * 365
FEATURES = [
    "ret_1", "ret_4", "ret_24", "vol_24", "vol_168", "sma_ratio_12", "sma_ratio_48",
    "rsi_14", "rsi_48", "hl_range", "volume_z_24", "volume_z_168",
    "hour_sin", "hour_cos", "dow_sin", "dow_cos",
]


def year_of_bars(n: int) -> Bars:
    rng = np.random.default_rng(0)
    ts = 1_764_547_200 * 10**9 + np.arange(n, dtype=np.int64) * 3_600_000_000_000
    close = 90_000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.005, n)))
    open_ = np.concatenate([[close[0]], close[:-1]])
    high = np.maximum(open_, close) * (1 + rng.random(n) * 0.003)
    low = np.minimum(open_, close) * (1 - rng.random(n) * 0.003)
    volume = rng.gamma(2.0, 150.0, n)
    return Bars("BTCUSD", "1Hour", "crypto", ts, open_, high, low, close, volume)


@pytest.mark.benchmark(group="features")
def test_bench_compute_features(benchmark):
    bars = year_of_bars(N_BARS)
    compute_features(bars, FEATURES)  # warm-up: JIT compile (or cache load) is not timed
    out = benchmark(compute_features, bars, FEATURES)
    assert out.shape == (N_BARS, len(FEATURES))
    assert np.isfinite(out[168:]).all()
    benchmark.extra_info.update(bars=N_BARS, features=len(FEATURES))
