"""Feature kernels against the plain-Python reference, plus the properties training
relies on: values at t do not depend on where the history starts."""

from __future__ import annotations

import numpy as np
import pytest

from engine.features import (
    FeatureError,
    KNOWN_FEATURES,
    compute_features,
    feature_lookback,
    lookback,
    parse_feature,
)
from engine.store import Bars
from naive_features import naive_features_matrix

HOUR_NS = 3_600_000_000_000
NAMES = [
    "ret_1", "ret_4", "ret_24", "vol_1", "vol_2", "vol_24", "sma_ratio_1", "sma_ratio_12",
    "rsi_1", "rsi_14", "hl_range", "volume_z_1", "volume_z_24",
    "hour_sin", "hour_cos", "dow_sin", "dow_cos",
]


def make_bars(n, seed=0, start_ns=1_735_689_600 * 10**9, level=100.0, step=HOUR_NS, constant=False, zero_volume=False):
    rng = np.random.default_rng(seed)
    ts = start_ns + np.arange(n, dtype=np.int64) * step
    if constant:
        close = np.full(n, level)
    else:
        close = level * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
        close[rng.random(n) < 0.1] = np.nan  # repeated prices: zero changes inside windows
        for i in range(n):
            if np.isnan(close[i]):
                close[i] = close[i - 1] if i else level
    high = close * (1 + rng.random(n) * 0.01)
    low = close * (1 - rng.random(n) * 0.01)
    volume = np.zeros(n) if zero_volume else rng.gamma(2.0, 50.0, n)
    if not zero_volume:
        volume[rng.random(n) < 0.1] = 0.0
        volume[5:9] = 7.0  # a constant stretch: volume_z must be exactly 0 there
    return Bars("BTCUSD", "1Hour", "crypto", ts, close.copy(), high, low, close, volume)


def naive(bars, names):
    rows = naive_features_matrix(names, bars.timestamp, bars.high, bars.low, bars.close, bars.volume)
    return np.array(rows, dtype=np.float64).reshape(len(bars), len(names))


def assert_same(got, want):
    assert got.shape == want.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kernels_match_naive_on_random_series(seed):
    bars = make_bars(240, seed=seed, level=[0.05, 100.0, 90_000.0][seed])
    assert_same(compute_features(bars, NAMES), naive(bars, NAMES))


def test_constant_prices_and_zero_volume():
    bars = make_bars(60, constant=True, zero_volume=True)
    got = compute_features(bars, NAMES)
    assert_same(got, naive(bars, NAMES))
    col = {n: got[:, j] for j, n in enumerate(NAMES)}
    assert np.all(col["rsi_14"][14:] == 0.0)
    assert np.all(col["volume_z_24"][23:] == 0.0)
    assert np.all(col["vol_24"][24:] == 0.0)
    assert np.all(col["ret_4"][4:] == 0.0)


def test_windows_longer_than_the_series_are_all_nan():
    bars = make_bars(10)
    names = ["ret_10", "vol_50", "sma_ratio_11", "rsi_10", "volume_z_11"]
    got = compute_features(bars, names)
    assert np.isnan(got).all()
    assert_same(got, naive(bars, names))
    # exactly enough bars: only the last row is defined
    got = compute_features(bars, ["ret_9", "sma_ratio_10", "volume_z_10"])
    assert np.isnan(got[:-1]).all() and np.isfinite(got[-1]).all()


def test_k1_and_nan_rows_follow_lookback():
    bars = make_bars(30, seed=4)
    for name in NAMES:
        col = compute_features(bars, [name])[:, 0]
        lb = feature_lookback(name)
        assert np.isnan(col[:lb]).all(), name
        assert np.isfinite(col[lb:]).all(), name
    sma1 = compute_features(bars, ["sma_ratio_1"])[:, 0]
    assert np.all(sma1 == 0.0)


def test_empty_and_single_bar():
    assert compute_features(make_bars(0), NAMES).shape == (0, len(NAMES))
    one = compute_features(make_bars(1), NAMES)
    assert one.shape == (1, len(NAMES))
    assert_same(one, naive(make_bars(1), NAMES))
    assert compute_features(make_bars(5), []).shape == (5, 0)


def test_output_layout():
    out = compute_features(make_bars(50), NAMES)
    assert out.dtype == np.float64 and out.flags.c_contiguous and out.shape == (50, len(NAMES))


@pytest.mark.parametrize("cut", [1, 7, 30, 100])
def test_values_do_not_depend_on_where_history_starts(cut):
    bars = make_bars(400, seed=7, level=3000.0)
    full = compute_features(bars, NAMES)
    part = compute_features(bars.slice(cut, None), NAMES)
    lb = lookback(NAMES)
    np.testing.assert_allclose(part[lb:], full[cut + lb:], rtol=0, atol=1e-12)
    # a value that needs more history than the slice has is NaN, never a guess
    for j, name in enumerate(NAMES):
        assert np.isnan(part[: feature_lookback(name), j]).all()


def test_values_do_not_depend_on_a_longer_prefix():
    long = make_bars(3000, seed=9, level=50_000.0)
    tail = long.slice(2500, None)
    a = compute_features(long, NAMES)[2500 + lookback(NAMES):]
    b = compute_features(tail, NAMES)[lookback(NAMES):]
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


def test_time_features_known_dates():
    # 2024-01-01 was a Monday; 1969-12-31 (negative ns) a Wednesday
    ts = np.array([1_704_067_200, 1_704_067_200 + 6 * 3600, 1_704_067_200 + 3 * 86400, -86400 + 18 * 3600], dtype=np.int64) * 10**9
    n = len(ts)
    bars = Bars("AAPL", "1Hour", "us_equity", ts, np.ones(n), np.ones(n), np.ones(n), np.ones(n), np.ones(n))
    got = compute_features(bars, ["hour_sin", "hour_cos", "dow_sin", "dow_cos"])
    hours = np.array([0, 6, 0, 18])
    days = np.array([0, 0, 3, 2])
    np.testing.assert_allclose(got[:, 0], np.sin(2 * np.pi * hours / 24), atol=1e-15)
    np.testing.assert_allclose(got[:, 1], np.cos(2 * np.pi * hours / 24), atol=1e-15)
    np.testing.assert_allclose(got[:, 2], np.sin(2 * np.pi * days / 7), atol=1e-15)
    np.testing.assert_allclose(got[:, 3], np.cos(2 * np.pi * days / 7), atol=1e-15)
    assert_same(got, naive(bars, ["hour_sin", "hour_cos", "dow_sin", "dow_cos"]))


def test_rsi_is_bounded_and_signed():
    bars = make_bars(200, seed=3)
    rsi = compute_features(bars, ["rsi_14"])[14:, 0]
    assert np.all(rsi >= -1.0) and np.all(rsi <= 1.0)
    up = Bars("X", "1Hour", "us_equity", np.arange(20) * HOUR_NS, *([np.arange(1.0, 21.0)] * 4), np.ones(20))
    assert np.all(compute_features(up, ["rsi_5"])[5:, 0] == 1.0)


def test_read_only_arrays_from_the_store_work(tmp_path):
    from engine.store import BarStore

    store = BarStore(tmp_path)
    bars = make_bars(80, seed=5)
    store.write(bars)
    read = store.read("BTCUSD", "1Hour")
    assert not read.close.flags.writeable
    np.testing.assert_array_equal(compute_features(read, NAMES), compute_features(bars, NAMES))


def test_parse_and_lookback():
    assert parse_feature("ret_4") == ("ret", 4)
    assert parse_feature("sma_ratio_20") == ("sma_ratio", 20)
    assert parse_feature("volume_z_168") == ("volume_z", 168)
    assert parse_feature("hl_range") == ("hl_range", 0)
    assert lookback(["ret_4", "vol_24", "hour_sin"]) == 24
    assert lookback(["sma_ratio_20", "volume_z_10"]) == 19
    assert lookback(["rsi_14"]) == 14
    assert lookback(["hl_range", "dow_cos"]) == 0
    assert lookback([]) == 0


@pytest.mark.parametrize(
    "name, words",
    [
        ("macd_12", ["unknown feature 'macd_12'", "ret_k", "hl_range", "dow_cos"]),
        ("ret_0", ["positive integer"]),
        ("ret", ["needs a window", "ret_14"]),
        ("position", ["state feature", "state_features"]),
        ("RET_4", ["unknown feature 'RET_4'"]),
        ("ret_-1", ["unknown feature"]),
    ],
)
def test_unknown_names_are_named_with_the_known_list(name, words):
    with pytest.raises(FeatureError) as exc:
        compute_features(make_bars(3), ["ret_1", name])
    msg = str(exc.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg


def test_known_list_is_complete():
    assert set(KNOWN_FEATURES) == {
        "ret_k", "vol_k", "sma_ratio_k", "rsi_k", "volume_z_k",
        "hl_range", "hour_sin", "hour_cos", "dow_sin", "dow_cos",
    } | {
        f"stockstats:{n}" for n in (
            "rsi_k", "cci_k", "dx_k", "atr_k", "wr_k", "boll_k", "boll_ub_k", "boll_lb_k",
            "macd", "macds", "macdh", "close_k_sma", "close_k_ema",
        )
    }
    with pytest.raises(FeatureError):
        compute_features(make_bars(3), "ret_1")
