"""Plain-Python reference of every market feature of design.md section 4.

Written to be read against the table in design.md, one bar at a time, with no NumPy
tricks; the Numba kernels in kernels/features.py are tested against it."""

from __future__ import annotations

import math
from datetime import datetime, timezone

NAN = float("nan")

__all__ = ["naive_feature", "naive_features_matrix"]


def _window(values, t, k):
    """values[t-k+1 .. t]."""
    return [values[i] for i in range(t - k + 1, t + 1)]


def _mean(xs):
    total = 0.0
    for x in xs:
        total += x
    return total / len(xs)


def _pstd(xs):
    m = _mean(xs)
    total = 0.0
    for x in xs:
        total += (x - m) * (x - m)
    return math.sqrt(total / len(xs))


def naive_ret(close, k):
    return [math.log(close[t] / close[t - k]) if t >= k else NAN for t in range(len(close))]


def naive_vol(close, k):
    out = []
    for t in range(len(close)):
        if t < k:
            out.append(NAN)
            continue
        rets = [math.log(close[i] / close[i - 1]) for i in range(t - k + 1, t + 1)]
        out.append(_pstd(rets))
    return out


def naive_sma_ratio(close, k):
    out = []
    for t in range(len(close)):
        if t < k - 1:
            out.append(NAN)
        else:
            out.append(close[t] / _mean(_window(close, t, k)) - 1.0)
    return out


def naive_rsi(close, k):
    out = []
    for t in range(len(close)):
        if t < k:
            out.append(NAN)
            continue
        gains = 0.0
        losses = 0.0
        for i in range(t - k + 1, t + 1):
            change = close[i] - close[i - 1]
            if change > 0:
                gains += change
            else:
                losses += -change
        out.append(0.0 if gains + losses == 0 else (gains - losses) / (gains + losses))
    return out


def naive_hl_range(high, low, close):
    return [(high[t] - low[t]) / close[t] for t in range(len(close))]


def naive_volume_z(volume, k):
    out = []
    for t in range(len(volume)):
        if t < k - 1:
            out.append(NAN)
            continue
        w = _window(volume, t, k)
        if min(w) == max(w):  # std is 0: every value equal
            out.append(0.0)
            continue
        out.append((volume[t] - _mean(w)) / _pstd(w))
    return out


def _utc(ns):
    return datetime.fromtimestamp(ns // 1_000_000_000, tz=timezone.utc)


def naive_time(timestamp, name):
    out = []
    for ns in timestamp:
        dt = _utc(int(ns))
        if name.startswith("hour"):
            angle = 2 * math.pi * dt.hour / 24
        else:
            angle = 2 * math.pi * dt.weekday() / 7  # Monday = 0
        out.append(math.sin(angle) if name.endswith("sin") else math.cos(angle))
    return out


def naive_feature(name, timestamp, high, low, close, volume):
    """One feature column as a list of floats."""
    high, low, close, volume = (
        [float(x) for x in high], [float(x) for x in low], [float(x) for x in close], [float(x) for x in volume]
    )
    if name in ("hour_sin", "hour_cos", "dow_sin", "dow_cos"):
        return naive_time(timestamp, name)
    if name == "hl_range":
        return naive_hl_range(high, low, close)
    kind, _, k = name.rpartition("_")
    k = int(k)
    if kind == "ret":
        return naive_ret(close, k)
    if kind == "vol":
        return naive_vol(close, k)
    if kind == "sma_ratio":
        return naive_sma_ratio(close, k)
    if kind == "rsi":
        return naive_rsi(close, k)
    if kind == "volume_z":
        return naive_volume_z(volume, k)
    raise ValueError(f"no naive reference for {name!r}")


def naive_features_matrix(names, timestamp, high, low, close, volume):
    """All columns as a list of rows (T lists of F floats)."""
    cols = [naive_feature(n, timestamp, high, low, close, volume) for n in names]
    return [[col[t] for col in cols] for t in range(len(close))]
