"""Numba kernels for the market features of design.md section 4.

Each kernel writes one feature of one series into a 1-D float64 `out` (NaN where the
lookback is not yet available). Every window is summed afresh at each bar instead of
updated with a running sum: a running sum carries rounding error from the start of
the history, so the value at t would depend on where the stored history begins, and
training (which sees a different start) would drift from validation. The windows
are short (tens to hundreds of bars), so O(T * k) is a few milliseconds a year.

`features_nb` fills a whole (T, F) matrix from feature codes, one compiled call per
series. Codes are the indices of FEATURE_KINDS; `engine/features.py` parses names.
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
    """c_t / mean(c_{t-k+1..t}) - 1."""
    for t in range(close.shape[0]):
        if t < k - 1:
            out[t] = np.nan
            continue
        s = 0.0
        for i in range(t - k + 1, t + 1):
            s += close[i]
        out[t] = close[t] / (s / k) - 1.0


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


@njit(cache=True)
def features_nb(timestamp, high, low, close, volume, codes, ks, out):
    """Fill out[:, j] with feature codes[j] (window ks[j]); out is (T, F) float64."""
    n = close.shape[0]
    col = np.empty(n)
    for j in range(codes.shape[0]):
        feature_nb(codes[j], ks[j], timestamp, high, low, close, volume, col)
        for t in range(n):
            out[t, j] = col[t]
