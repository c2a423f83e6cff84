"""The `stockstats:` features against stockstats itself (a pinned test dependency) on
long randomised series with flat stretches, and against a plain-Python reference of
the truncated definitions."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from engine.features import (
    EMA_TAIL,
    FeatureError,
    compute_features,
    feature_lookback,
    lookback,
    parse_feature,
    smma_alpha,
    span_alpha,
    truncation_length,
)
from engine.store import Bars
from naive_features import naive_stockstats

pd = pytest.importorskip("pandas")
stockstats = pytest.importorskip("stockstats")

HOUR_NS = 3_600_000_000_000
# (foldgate name after "stockstats:", stockstats column)
PAIRS = [
    ("macd", "macd"), ("macds", "macds"), ("macdh", "macdh"),
    ("boll", "boll"), ("boll_ub", "boll_ub"), ("boll_lb", "boll_lb"),
    ("boll_ub_10", "boll_ub_10"), ("boll_lb_10", "boll_lb_10"),
    ("rsi_30", "rsi_30"), ("rsi", "rsi"), ("rsi_6", "rsi_6"), ("rsi_1", "rsi_1"),
    ("cci_30", "cci_30"), ("cci", "cci"), ("dx_30", "dx_30"), ("dx", "dx"), ("dx_5", "dx_5"),
    ("close_30_sma", "close_30_sma"), ("close_60_sma", "close_60_sma"), ("close_10_ema", "close_10_ema"),
    ("atr_14", "atr_14"), ("atr", "atr"), ("atr_1", "atr_1"), ("wr_14", "wr_14"), ("wr_30", "wr_30"),
]


def make_series(n, seed, flat=True):
    rng = np.random.default_rng(seed)
    logret = rng.normal(0.0, rng.uniform(0.002, 0.03), n)
    logret[rng.random(n) < 0.01] *= 10.0
    close = rng.uniform(1.0, 5000.0) * np.exp(np.cumsum(logret))
    high = close * (1.0 + rng.random(n) * 0.02)
    low = close * (1.0 - rng.random(n) * 0.02)
    flats = []
    if flat:
        for _ in range(4):
            a = int(rng.integers(1, n - 80))
            b = a + int(rng.integers(10, 70))
            close[a:b] = close[a - 1]
            if rng.random() < 0.5:  # a dead market: high = low = close
                high[a:b] = close[a - 1]
                low[a:b] = close[a - 1]
                flats.append((a, b))
            else:  # closes repeat, ranges do not
                high[a:b] = np.maximum(high[a:b], close[a - 1])
                low[a:b] = np.minimum(low[a:b], close[a - 1])
    volume = rng.gamma(2.0, 50.0, n)
    ts = 1_704_067_200 * 10**9 + np.arange(n, dtype=np.int64) * HOUR_NS
    bars = Bars("BTCUSD", "1Hour", "crypto", ts, close.copy(), high, low, close, volume)
    return bars, flats


def stockstats_columns(bars, columns):
    df = pd.DataFrame({"open": bars.open, "high": bars.high, "low": bars.low, "close": bars.close, "volume": bars.volume})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sdf = stockstats.StockDataFrame.retype(df)
        out = {}
        for c in columns:
            if c.startswith("boll_") and c[-1].isdigit():
                sdf["boll_" + c.rsplit("_", 1)[1]]  # stockstats names ub/lb after computing boll_k
            out[c] = np.asarray(sdf[c], dtype=np.float64)
    return out


def _in_dead_window(flats, t, k):
    """Bar t's k-bar window lies inside a stretch where high = low = close."""
    return any(a <= t - k + 1 and t < b for a, b in flats)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_matches_stockstats_after_warm_up_below_1e6_relative(seed):
    bars, flats = make_series(6000, seed)
    names = [f"stockstats:{ours}" for ours, _ in PAIRS]
    got = compute_features(bars, names)
    ref = stockstats_columns(bars, [theirs for _, theirs in PAIRS])
    worst = {}
    for j, (ours, theirs) in enumerate(PAIRS):
        look = feature_lookback(names[j])
        col, want = got[:, j], ref[theirs]
        assert np.isnan(col[:look]).all(), ours  # NaN before the lookback, never a partial value
        assert np.isfinite(col[look:]).all(), ours
        keep = np.isfinite(want)
        keep[:look] = False
        if ours.startswith("cci"):
            k = parse_feature(names[j])[1]
            dead = np.array([_in_dead_window(flats, t, k) for t in range(len(col))])
            # there stockstats divides a rounding residue by a zero deviation; foldgate says 0
            assert np.all(col[dead & (np.arange(len(col)) >= look)] == 0.0)
            keep &= ~dead
        if ours.startswith("boll"):
            k = parse_feature(names[j])[1]
            c = bars.close
            equal = np.array([t >= k - 1 and c[t - k + 1:t + 1].min() == c[t - k + 1:t + 1].max() for t in range(len(c))])
            # pandas' rolling std leaves a residue of up to ~1e-6 of the price over equal
            # closes; foldgate's two-pass std is 0 there to rounding
            np.testing.assert_allclose(col[equal], c[equal], rtol=1e-13, err_msg=ours)
            keep &= ~equal
        if ours in ("dx_1", "atr_1", "rsi_1"):
            keep &= want != 0.0  # 0/0 bars, where stockstats gives NaN or 0 by convention
        assert keep.sum() > 1000, ours
        zero = keep & (want == 0.0)
        assert np.all(col[zero] == 0.0), ours  # e.g. %R at the high: exactly 0 both ways
        nz = keep & (want != 0.0)
        rel = np.abs(col[nz] - want[nz]) / np.abs(want[nz])
        worst[ours] = float(rel.max()) if rel.size else 0.0
    bad = {k: v for k, v in worst.items() if not v < 1e-6}
    assert not bad, bad


def test_flat_market_longer_than_the_window_gives_the_conventions():
    n = 3000
    ts = np.arange(n, dtype=np.int64) * HOUR_NS
    c = np.full(n, 50.0)
    bars = Bars("X", "1Hour", "crypto", ts, c, c, c, c, np.ones(n))
    names = ["stockstats:rsi_14", "stockstats:dx_14", "stockstats:cci_14", "stockstats:wr_14", "stockstats:atr_14",
             "stockstats:macd", "stockstats:boll_ub"]
    got = compute_features(bars, names)
    row = got[-1]
    assert row[0] == 50.0 and row[1] == 0.0 and row[2] == 0.0 and row[3] == 0.0 and row[4] == 0.0
    assert abs(row[5]) < 1e-12 and abs(row[6] - 50.0) < 1e-12


@pytest.mark.parametrize("seed", [4, 5])
def test_kernels_match_the_plain_reference_of_the_truncated_definitions(seed):
    bars, _ = make_series(1500, seed)
    names = ["macd", "macds", "macdh", "boll_ub_7", "boll_lb_7", "boll_5", "rsi_5", "rsi_1", "cci_9", "dx_4",
             "dx_1", "atr_3", "wr_6", "close_5_sma", "close_4_ema"]
    got = compute_features(bars, [f"stockstats:{x}" for x in names])
    for j, x in enumerate(names):
        want = np.array(naive_stockstats(x, bars.high, bars.low, bars.close))
        np.testing.assert_array_equal(np.isnan(got[:, j]), np.isnan(want), err_msg=x)
        np.testing.assert_allclose(got[:, j], want, rtol=1e-10, atol=1e-10, equal_nan=True, err_msg=x)


def test_truncation_lengths_follow_the_documented_rule():
    for alpha in (smma_alpha(30), smma_alpha(14), span_alpha(26), span_alpha(12), span_alpha(9), 0.5):
        length = truncation_length(alpha)
        assert (1 - alpha) ** length <= EMA_TAIL < (1 - alpha) ** (length - 1)
    assert truncation_length(smma_alpha(1)) == 1
    # the lookbacks that docs/features.md lists
    assert lookback(["stockstats:rsi_30"]) == truncation_length(1 / 30) == 951
    assert lookback(["stockstats:atr_14"]) == 435
    assert lookback(["stockstats:macd"]) == truncation_length(2 / 27) - 1 == 418
    assert lookback(["stockstats:macds"]) == 418 + truncation_length(0.2) - 1
    assert lookback(["stockstats:close_30_sma"]) == 29 and lookback(["stockstats:wr_14"]) == 13


def test_value_does_not_depend_on_where_the_history_starts():
    bars, _ = make_series(4000, 9)
    names = ["stockstats:rsi_30", "stockstats:macdh", "stockstats:dx_30", "stockstats:atr_14"]
    full = compute_features(bars, names)
    start = 1234
    late = compute_features(bars.slice(start, len(bars)), names)
    for j, x in enumerate(names):
        look = feature_lookback(x)
        np.testing.assert_array_equal(late[look:, j], full[start + look:, j])


@pytest.mark.parametrize("name", [
    "stockstats:rsi_0", "stockstats:boll_ub_1", "stockstats:close_30", "stockstats:macd_5",
    "stockstats:foo", "stockstats:rsi_99999999", "stockstats:rsi_1001", "stockstats:close_0_sma",
])
def test_bad_stockstats_names_are_refused(name):
    with pytest.raises(FeatureError) as exc:
        parse_feature(name)
    assert name in str(exc.value) and "\n" not in str(exc.value)


def test_stockstats_is_not_imported_at_run_time():
    import subprocess
    import sys

    code = (
        "import sys, numpy as np; from engine.features import compute_features; from engine.store import Bars;"
        "n=1000; c=np.linspace(1,2,n); b=Bars('X','1Hour','crypto',np.arange(n,dtype=np.int64),c,c,c,c,c);"
        "compute_features(b,['stockstats:rsi_14','stockstats:macd']);"
        "print('pandas' in sys.modules, 'stockstats' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]
    assert math.isfinite(EMA_TAIL)
