"""Plain-Python reference of every market feature of docs/design.md section 4.

Written to be read against the table in docs/design.md, one bar at a time, with no NumPy
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


# ---------------------------------------------------------------------------
# stockstats' indicators as foldgate truncates them (docs/features.md): each
# exponential average is pandas' ewm(adjust=True) mean over its last L inputs only,
# L the fewest with (1 - alpha)^L <= 1e-14.

TAIL = 1e-14
MACD_SPANS = (12, 26, 9)


def _length(alpha):
    if alpha >= 1.0:
        return 1
    n, w = 0, 1.0
    while w > TAIL:
        w *= 1.0 - alpha
        n += 1
    return n


def _ewm_at(xs, t, alpha, length):
    num = den = 0.0
    for i in range(length):
        w = (1.0 - alpha) ** i
        num += w * xs[t - i]
        den += w
    return num / den


def _ewm_series(xs, alpha, first):
    """Truncated ewm of xs at every t >= first (NaN before); first >= L - 1."""
    length = _length(alpha)
    return [_ewm_at(xs, t, alpha, length) if t >= first else NAN for t in range(len(xs))], length


def _changes(close):
    up, down = [0.0], [0.0]
    for i in range(1, len(close)):
        d = close[i] - close[i - 1]
        up.append(d if d > 0 else 0.0)
        down.append(-d if d < 0 else 0.0)
    return up, down


def _true_range(high, low, close):
    tr = [high[0] - low[0]]
    for i in range(1, len(close)):
        tr.append(max(high[i] - low[i], abs(high[i] - close[i - 1]), abs(low[i] - close[i - 1])))
    return tr


def _ss_rsi(close, k):
    length = _length(1.0 / k)
    up, down = _changes(close)
    su, _ = _ewm_series(up, 1.0 / k, length)
    sd, _ = _ewm_series(down, 1.0 / k, length)
    return [NAN if t < length else (50.0 if su[t] + sd[t] == 0 else 100.0 * su[t] / (su[t] + sd[t]))
            for t in range(len(close))]


def _ss_atr(high, low, close, k):
    length = _length(1.0 / k)
    return _ewm_series(_true_range(high, low, close), 1.0 / k, length)[0]


def _ss_dx(high, low, close, k):
    length = _length(1.0 / k)
    pdm, ndm = [0.0], [0.0]
    for i in range(1, len(close)):
        hd, ld = high[i] - high[i - 1], low[i - 1] - low[i]
        pdm.append(hd if hd > 0 and hd > ld else 0.0)
        ndm.append(ld if ld > 0 and ld > hd else 0.0)
    sp = _ewm_series(pdm, 1.0 / k, length)[0]
    sn = _ewm_series(ndm, 1.0 / k, length)[0]
    atr = _ss_atr(high, low, close, k)
    out = []
    for t in range(len(close)):
        if t < length:
            out.append(NAN)
        elif atr[t] == 0:
            out.append(0.0)
        else:
            pdi, ndi = 100.0 * sp[t] / atr[t], 100.0 * sn[t] / atr[t]
            out.append(0.0 if pdi + ndi == 0 else 100.0 * abs(pdi - ndi) / (pdi + ndi))
    return out


def _ss_macd(close, part):
    a_s, a_l, a_g = (2.0 / (s + 1.0) for s in MACD_SPANS)
    first = max(_length(a_s), _length(a_l)) - 1
    es = _ewm_series(close, a_s, first)[0]
    el = _ewm_series(close, a_l, first)[0]
    macd = [es[t] - el[t] for t in range(len(close))]
    if part == "macd":
        return macd
    sig, lg = _ewm_series(macd, a_g, first + _length(a_g) - 1)
    return sig if part == "macds" else [macd[t] - sig[t] for t in range(len(close))]


def _ss_boll(close, k, side):
    out = []
    for t in range(len(close)):
        if t < k - 1:
            out.append(NAN)
            continue
        w = _window(close, t, k)
        m = _mean(w)
        sd = math.sqrt(sum((x - m) ** 2 for x in w) / (k - 1))
        out.append(m + side * 2.0 * sd)
    return out


def _ss_cci(high, low, close, k):
    tp = [(close[t] + high[t] + low[t]) / 3.0 for t in range(len(close))]
    out = []
    for t in range(len(close)):
        if t < k - 1:
            out.append(NAN)
            continue
        w = _window(tp, t, k)
        if min(w) == max(w):
            out.append(0.0)
            continue
        m = _mean(w)
        mad = sum(abs(x - m) for x in w) / k
        out.append(0.0 if mad == 0 else (tp[t] - m) / (0.015 * mad))
    return out


def _ss_wr(high, low, close, k):
    out = []
    for t in range(len(close)):
        if t < k - 1:
            out.append(NAN)
            continue
        hn, ln = max(_window(high, t, k)), min(_window(low, t, k))
        out.append(0.0 if hn == ln else -100.0 * (hn - close[t]) / (hn - ln))
    return out


def naive_stockstats(name, high, low, close):
    """The column of `stockstats:<name>` as a list of floats."""
    high, low, close = [float(x) for x in high], [float(x) for x in low], [float(x) for x in close]
    if name in ("macd", "macds", "macdh"):
        return _ss_macd(close, name)
    if name.startswith("close_"):
        _, k, what = name.split("_")
        k = int(k)
        if what == "sma":
            return [NAN if t < k - 1 else _mean(_window(close, t, k)) for t in range(len(close))]
        a = 2.0 / (k + 1.0)
        return _ewm_series(close, a, _length(a) - 1)[0]
    base, _, k = name.rpartition("_")
    if not k.isdigit():
        base, k = name, {"boll": 20, "boll_ub": 20, "boll_lb": 20}.get(name, 14)
    k = int(k)
    if base in ("boll", "boll_ub", "boll_lb"):
        return _ss_boll(close, k, {"boll": 0.0, "boll_ub": 1.0, "boll_lb": -1.0}[base])
    if base == "rsi":
        return _ss_rsi(close, k)
    if base == "atr":
        return _ss_atr(high, low, close, k)
    if base == "dx":
        return _ss_dx(high, low, close, k)
    if base == "cci":
        return _ss_cci(high, low, close, k)
    if base == "wr":
        return _ss_wr(high, low, close, k)
    raise ValueError(f"no naive reference for stockstats:{name}")
