"""Numba kernels for the market features of docs/design.md section 4.

Each kernel writes one feature of one series into a 1-D float64 `out` (NaN where the
lookback is not yet available). Every window is summed afresh at each bar instead of
updated with a running sum: a running sum carries rounding error from the start of
the history, so the value at t would depend on where the stored history begins, and
training (which sees a different start) would drift from validation. The windows
are short (tens to hundreds of bars), so O(T * k) is a few milliseconds a year.

`features_nb` fills a whole (T, F) matrix from feature codes, one compiled call per
series. Codes are the indices of FEATURE_KINDS; `engine/features.py` parses names.

The `ss_*_nb` kernels reproduce stockstats' indicators (FinRL's defaults) with one
change: an exponential average there weighs the whole history; here it is the same
adjust=True weighted mean over the last L inputs only, so a value never depends on
where the history starts. engine/features.py decides L and alpha and calls each
kernel by itself: kept out of `features_nb`'s dispatch, they are compiled only by a
run that uses them (inlined there, they tripled every cold start).
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Order defines the integer codes passed to features_nb.
FEATURE_KINDS = (
    "ret", "vol", "sma_ratio", "rsi", "hl_range", "volume_z",
    "hour_sin", "hour_cos", "dow_sin", "dow_cos",
)
CODE_RET, CODE_VOL, CODE_SMA_RATIO, CODE_RSI, CODE_HL_RANGE, CODE_VOLUME_Z = 0, 1, 2, 3, 4, 5
CODE_HOUR_SIN, CODE_HOUR_COS, CODE_DOW_SIN, CODE_DOW_COS = 6, 7, 8, 9
# stockstats' Bollinger width in standard deviations (StockDataFrame.BOLL_STD_TIMES)
_BOLL_STD_TIMES = 2.0
# stockstats' CCI constant
_CCI_SCALE = 0.015

_NS_PER_HOUR = 3_600_000_000_000
_HOURS_PER_DAY = 24
_TWO_PI = 2.0 * np.pi


@njit(cache=True)
def ret_nb(close, k, out):
    """ln(c_t / c_{t-k})."""
    for t in range(close.shape[0]):
        if t < k:
            out[t] = np.nan
        else:
            out[t] = np.log(close[t] / close[t - k])


@njit(cache=True)
def vol_nb(close, k, out):
    """Population std of the k log returns ending at t (two-pass, so no cancellation)."""
    n = close.shape[0]
    r = np.empty(n)
    r[0] = np.nan
    for i in range(1, n):
        r[i] = np.log(close[i] / close[i - 1])
    for t in range(n):
        if t < k:
            out[t] = np.nan
            continue
        s = 0.0
        for i in range(t - k + 1, t + 1):
            s += r[i]
        mean = s / k
        ss = 0.0
        for i in range(t - k + 1, t + 1):
            dev = r[i] - mean
            ss += dev * dev
        out[t] = np.sqrt(ss / k)


@njit(cache=True)
def sma_ratio_nb(close, k, out):
    """c_t / mean(c_{t-k+1..t}) - 1 (the mean is ss_sma_nb's, so the two cannot drift)."""
    ss_sma_nb(close, k, out)
    for t in range(close.shape[0]):
        out[t] = close[t] / out[t] - 1.0  # NaN before the lookback stays NaN


@njit(cache=True)
def rsi_nb(close, k, out):
    """Cutler RSI on the last k price changes, scaled to [-1, 1]:
    (gains - losses) / (gains + losses), 0 when both are 0."""
    for t in range(close.shape[0]):
        if t < k:
            out[t] = np.nan
            continue
        gains = 0.0
        losses = 0.0
        for i in range(t - k + 1, t + 1):
            d = close[i] - close[i - 1]
            if d > 0.0:
                gains += d
            elif d < 0.0:
                losses -= d
        tot = gains + losses
        out[t] = 0.0 if tot == 0.0 else (gains - losses) / tot


@njit(cache=True)
def hl_range_nb(high, low, close, out):
    """(h_t - l_t) / c_t."""
    for t in range(close.shape[0]):
        out[t] = (high[t] - low[t]) / close[t]


@njit(cache=True)
def volume_z_nb(volume, k, out):
    """(v_t - mean) / std_ddof0 over v_{t-k+1..t}; 0 when the window is constant.

    A constant window is tested by value, not by std == 0: the mean of k equal numbers
    can differ from them in the last bit, and that residue must not become a z-score."""
    for t in range(volume.shape[0]):
        if t < k - 1:
            out[t] = np.nan
            continue
        s = 0.0
        lo = volume[t]
        hi = volume[t]
        for i in range(t - k + 1, t + 1):
            v = volume[i]
            s += v
            if v < lo:
                lo = v
            if v > hi:
                hi = v
        if lo == hi:
            out[t] = 0.0
            continue
        mean = s / k
        ss = 0.0
        for i in range(t - k + 1, t + 1):
            dev = volume[i] - mean
            ss += dev * dev
        std = np.sqrt(ss / k)
        out[t] = 0.0 if std == 0.0 else (volume[t] - mean) / std


@njit(cache=True)
def hour_of_day_nb(timestamp, out):
    """UTC hour (0..23) of each bar's start, as float64; floor division keeps
    pre-1970 timestamps right."""
    for t in range(timestamp.shape[0]):
        out[t] = (timestamp[t] // _NS_PER_HOUR) % _HOURS_PER_DAY


@njit(cache=True)
def weekday_nb(timestamp, out):
    """UTC weekday, Monday = 0 (1970-01-01 was a Thursday, weekday 3)."""
    for t in range(timestamp.shape[0]):
        days = timestamp[t] // (_NS_PER_HOUR * _HOURS_PER_DAY)
        out[t] = (days + 3) % 7


@njit(cache=True)
def cyclic_nb(values, period, use_cos, out):
    """sin or cos of 2*pi*value/period."""
    for t in range(values.shape[0]):
        a = _TWO_PI * values[t] / period
        out[t] = np.cos(a) if use_cos else np.sin(a)


# ---------------------------------------------------------------------------
# stockstats' indicators (stockstats 0.6.10 definitions), truncated to L bars

@njit(cache=True)
def ewm_trunc_nb(x, alpha, length, first, out):
    """out[t] = sum_{i<L} w^i x[t-i] / sum_{i<L} w^i with w = 1 - alpha, for t >= first
    (first >= L - 1), NaN before: pandas' ewm(adjust=True) mean over the last L inputs
    only. Summed afresh at each t so the value depends on those L inputs alone."""
    n = x.shape[0]
    wts = np.empty(length)
    wsum = 0.0
    wi = 1.0
    for i in range(length):
        wts[i] = wi
        wsum += wi
        wi *= 1.0 - alpha
    for t in range(n):
        if t < first:
            out[t] = np.nan
            continue
        s = 0.0
        for i in range(length):
            s += wts[i] * x[t - i]
        out[t] = s / wsum


@njit(cache=True)
def ss_sma_nb(x, k, out):
    """Mean of x[t-k+1..t] (stockstats' `close_k_sma`)."""
    for t in range(x.shape[0]):
        if t < k - 1:
            out[t] = np.nan
            continue
        s = 0.0
        for i in range(t - k + 1, t + 1):
            s += x[i]
        out[t] = s / k


@njit(cache=True)
def ss_boll_nb(close, k, side, out):
    """Bollinger: mean of the last k closes + side * 2 * their sample std (ddof 1);
    side 0 = the middle band, +1 upper, -1 lower."""
    for t in range(close.shape[0]):
        if t < k - 1:
            out[t] = np.nan
            continue
        s = 0.0
        for i in range(t - k + 1, t + 1):
            s += close[i]
        mean = s / k
        ss = 0.0
        for i in range(t - k + 1, t + 1):
            d = close[i] - mean
            ss += d * d
        out[t] = mean + side * _BOLL_STD_TIMES * np.sqrt(ss / (k - 1))


@njit(cache=True)
def ss_rsi_nb(close, alpha, length, out):
    """100 * SMMA(up) / (SMMA(up) + SMMA(down)) of the close changes, SMMA = ewm with
    alpha (1/k) over the last `length` changes; 50 when both are 0."""
    n = close.shape[0]
    up = np.zeros(n)
    down = np.zeros(n)
    for i in range(1, n):
        d = close[i] - close[i - 1]
        if d > 0.0:
            up[i] = d
        elif d < 0.0:
            down[i] = -d
    su = np.empty(n)
    sd = np.empty(n)
    ewm_trunc_nb(up, alpha, length, length, su)
    ewm_trunc_nb(down, alpha, length, length, sd)
    for t in range(n):
        if t < length:
            out[t] = np.nan
            continue
        tot = su[t] + sd[t]
        out[t] = 100.0 * (su[t] / tot) if tot != 0.0 else 50.0


@njit(cache=True)
def _true_range_nb(high, low, close, tr):
    """max(h - l, |h - c_prev|, |l - c_prev|); tr[0] = h - l (no previous close)."""
    n = close.shape[0]
    for t in range(n):
        c1 = high[t] - low[t]
        if t == 0:
            tr[t] = c1
            continue
        c2 = abs(high[t] - close[t - 1])
        c3 = abs(low[t] - close[t - 1])
        tr[t] = max(c1, max(c2, c3))


@njit(cache=True)
def ss_atr_nb(high, low, close, alpha, length, out):
    """SMMA (alpha 1/k) of the true range over the last `length` bars."""
    n = close.shape[0]
    tr = np.empty(n)
    _true_range_nb(high, low, close, tr)
    ewm_trunc_nb(tr, alpha, length, length, out)


@njit(cache=True)
def ss_dx_nb(high, low, close, alpha, length, out):
    """DX = 100 * |+DI - -DI| / (+DI + -DI), +DI = 100 * SMMA(+DM) / ATR, -DI likewise,
    all SMMAs alpha (1/k) over the last `length` bars (for k = 1, alpha 1 makes each
    SMMA its last input, as stockstats' unsmoothed +-DM); 0 when +DI + -DI is 0 or the
    true range is 0 throughout (stockstats would divide 0 by 0 there)."""
    n = close.shape[0]
    pdm = np.zeros(n)
    ndm = np.zeros(n)
    for i in range(1, n):
        hd = high[i] - high[i - 1]
        ld = low[i - 1] - low[i]
        if hd > 0.0 and hd > ld:
            pdm[i] = hd
        if ld > 0.0 and ld > hd:
            ndm[i] = ld
    tr = np.empty(n)
    _true_range_nb(high, low, close, tr)
    sp = np.empty(n)
    sn = np.empty(n)
    atr = np.empty(n)
    ewm_trunc_nb(pdm, alpha, length, length, sp)
    ewm_trunc_nb(ndm, alpha, length, length, sn)
    ewm_trunc_nb(tr, alpha, length, length, atr)
    for t in range(n):
        if t < length:
            out[t] = np.nan
            continue
        if atr[t] == 0.0:
            out[t] = 0.0
            continue
        pdi = sp[t] / atr[t] * 100.0
        ndi = sn[t] / atr[t] * 100.0
        div = pdi + ndi
        out[t] = abs(pdi - ndi) / div * 100.0 if div != 0.0 else 0.0


@njit(cache=True)
def ss_cci_nb(high, low, close, k, out):
    """(tp - SMA_k(tp)) / (0.015 * mean absolute deviation of tp over k bars),
    tp = (c + h + l) / 3; 0 when the deviation is 0. A constant window is tested by
    value: the mean of k equal numbers can miss them in the last bit, and that residue
    over a residue-sized deviation would be noise, not a CCI."""
    n = close.shape[0]
    tp = np.empty(n)
    for t in range(n):
        tp[t] = (close[t] + high[t] + low[t]) / 3.0
    for t in range(n):
        if t < k - 1:
            out[t] = np.nan
            continue
        s = 0.0
        lo = tp[t]
        hi = tp[t]
        for i in range(t - k + 1, t + 1):
            s += tp[i]
            lo = min(lo, tp[i])
            hi = max(hi, tp[i])
        if lo == hi:
            out[t] = 0.0
            continue
        mean = s / k
        sa = 0.0
        for i in range(t - k + 1, t + 1):
            sa += abs(tp[i] - mean)
        div = _CCI_SCALE * (sa / k)
        out[t] = (tp[t] - mean) / div if div != 0.0 else 0.0


@njit(cache=True)
def ss_wr_nb(high, low, close, k, out):
    """Williams %R: -100 * (max high - c) / (max high - min low) over k bars; 0 when
    the range is 0."""
    for t in range(close.shape[0]):
        if t < k - 1:
            out[t] = np.nan
            continue
        hn = high[t]
        ln = low[t]
        for i in range(t - k + 1, t + 1):
            if high[i] > hn:
                hn = high[i]
            if low[i] < ln:
                ln = low[i]
        rng = hn - ln
        out[t] = -100.0 * ((hn - close[t]) / rng) if rng != 0.0 else -0.0


@njit(cache=True)
def ss_macd_nb(close, lengths, alphas, part, out):
    """MACD of stockstats: macd = EMA_short - EMA_long of close, macds = EMA_signal of
    macd, macdh = macd - macds (part 0, 1, 2); each EMA = ewm(alpha) truncated to its
    length; lengths and alphas = (short, long, signal)."""
    n = close.shape[0]
    es = np.empty(n)
    el = np.empty(n)
    long_len = lengths[1]
    signal_len = lengths[2]
    first = max(lengths[0], long_len) - 1
    ewm_trunc_nb(close, alphas[0], lengths[0], first, es)
    ewm_trunc_nb(close, alphas[1], long_len, first, el)
    macd = np.empty(n)
    for t in range(n):
        macd[t] = es[t] - el[t]
    if part == 0:
        out[:] = macd
        return
    sig = np.empty(n)
    # the signal's first input is macd[first]: a NaN-free window starts L_sig - 1 later
    sig_first = first + signal_len - 1
    ewm_trunc_nb(macd, alphas[2], signal_len, sig_first, sig)
    for t in range(n):
        out[t] = sig[t] if part == 1 else macd[t] - sig[t]


@njit(cache=True)
def feature_nb(code, k, timestamp, high, low, close, volume, out):
    """One feature by code into the 1-D `out`."""
    if code == CODE_RET:
        ret_nb(close, k, out)
    elif code == CODE_VOL:
        vol_nb(close, k, out)
    elif code == CODE_SMA_RATIO:
        sma_ratio_nb(close, k, out)
    elif code == CODE_RSI:
        rsi_nb(close, k, out)
    elif code == CODE_HL_RANGE:
        hl_range_nb(high, low, close, out)
    elif code == CODE_VOLUME_Z:
        volume_z_nb(volume, k, out)
    elif code == CODE_HOUR_SIN or code == CODE_HOUR_COS:
        hours = np.empty(timestamp.shape[0])
        hour_of_day_nb(timestamp, hours)
        cyclic_nb(hours, 24.0, code == CODE_HOUR_COS, out)
    elif code == CODE_DOW_SIN or code == CODE_DOW_COS:
        days = np.empty(timestamp.shape[0])
        weekday_nb(timestamp, days)
        cyclic_nb(days, 7.0, code == CODE_DOW_COS, out)
    else:
        raise ValueError("unknown feature code")


@njit(cache=True, nogil=True)
def features_nb(timestamp, high, low, close, volume, codes, ks, out):
    """Fill out[:, j] with feature codes[j] (window ks[j]); out is (T, F) float64.
    Without the GIL: a run computes two series' features at once (engine/simulation.py)."""
    n = close.shape[0]
    col = np.empty(n)
    for j in range(codes.shape[0]):
        feature_nb(codes[j], ks[j], timestamp, high, low, close, volume, col)
        for t in range(n):
            out[t, j] = col[t]
